"""The four HarmoWAM edge networks in torch: world model, gate, reactive expert, predictive expert.

Every network takes and returns raw units (uint8 RGB frames at camera resolution, uint16 depth, radians, metres):
crop, resize, scaling and proprio/action (de)normalisation are part of the modules, so they end up inside the
exported graphs and there is no train/deploy mismatch. The exported graphs are batch 1 with static shapes (design
§3); the same modules take any batch for training (a batch of 1 traces to exactly the graphs it always did).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import cast

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from export.config import Architecture, Normalization
from harmowam_edge.bundle.schema import CameraSpec

# --------------------------------------------------------------------------------------------------------------
# Building blocks


class Attention(nn.Module):
    """Multi-head attention written out in MatMul/Softmax so every exporter and TensorRT see plain ops.

    Cross-attention splits into `project_kv` (memory only) and `attend`, so the unrolled flow graph can compute
    the memory's keys and values once for all its steps.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not a multiple of heads {heads}")
        self.heads = heads
        self.head_dim = dim // heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.out = nn.Linear(dim, dim)

    def _split(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], x.shape[1], self.heads, self.head_dim).transpose(1, 2)

    def project_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        k, v = self.kv(memory).chunk(2, dim=-1)
        return self._split(k), self._split(v)

    def attend(self, x: Tensor, kv: tuple[Tensor, Tensor]) -> Tensor:
        q = self._split(self.q(x))
        k, v = kv
        weights = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * (self.head_dim**-0.5), dim=-1)
        y = torch.matmul(weights, v).transpose(1, 2).reshape(x.shape[0], x.shape[1], self.heads * self.head_dim)
        return self.out(y)

    def forward(self, x: Tensor, memory: Tensor | None = None) -> Tensor:
        return self.attend(x, self.project_kv(x if memory is None else memory))


class MLP(nn.Sequential):
    def __init__(self, dim: int, ratio: float) -> None:
        hidden = int(dim * ratio)
        super().__init__(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class EncoderBlock(nn.Module):
    """Pre-norm transformer block (self-attention, MLP)."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """Pre-norm block with self-attention over the queries and cross-attention to a memory."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.self_attn = Attention(dim, heads)
        self.norm_mem = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.cross_attn = Attention(dim, heads)
        self.norm3 = nn.LayerNorm(dim)
        self.mlp = MLP(dim, mlp_ratio)

    def memory_kv(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        return self.cross_attn.project_kv(self.norm_mem(memory))

    def forward(self, x: Tensor, kv: tuple[Tensor, Tensor]) -> Tensor:
        x = x + self.self_attn(self.norm1(x))
        x = x + self.cross_attn.attend(self.norm2(x), kv)
        return x + self.mlp(self.norm3(x))


def _const(values: tuple[float, ...] | list[float]) -> Tensor:
    return torch.tensor(list(values), dtype=torch.float32)


@dataclass(frozen=True)
class CropResize:
    """Static crop box in camera pixels and the integer average-pool factor applied before the final resize.

    Pooling by an integer factor first keeps a large downscale from aliasing (a plain bilinear resize samples
    only 4 pixels) using only AveragePool and Resize, which every runtime (TensorRT included) supports.
    """

    top: int
    left: int
    height: int
    width: int
    pool_h: int
    pool_w: int

    @classmethod
    def for_camera(cls, camera: CameraSpec, out_h: int, out_w: int) -> CropResize:
        # Centre crop to the model's aspect ratio, then shrink.
        aspect = out_w / out_h
        if camera.width / camera.height > aspect:
            height = camera.height
            width = round(height * aspect)
        else:
            width = camera.width
            height = round(width / aspect)
        top = (camera.height - height) // 2
        left = (camera.width - width) // 2
        return cls(top, left, height, width, max(1, height // out_h), max(1, width // out_w))


class ImageStem(nn.Module):
    """uint8 [B, H, W, 3] (+ uint16 depth [B, H, W]) -> patch tokens [B, n, D] with position embeddings."""

    pix_scale: Tensor
    pix_shift: Tensor

    def __init__(self, camera: CameraSpec, arch: Architecture, norm: Normalization) -> None:
        super().__init__()
        self.has_depth = camera.has_depth
        self.out_h, self.out_w = arch.image_height, arch.image_width
        self.box = CropResize.for_camera(camera, self.out_h, self.out_w)
        self.depth_scale = camera.depth_units_m / arch.max_depth_m
        # /255 and mean/std folded into one per-channel affine.
        mean, std = _const(norm.image_mean), _const(norm.image_std)
        self.register_buffer("pix_scale", (1.0 / (255.0 * std)).reshape(1, 3, 1, 1), persistent=False)
        self.register_buffer("pix_shift", (-mean / std).reshape(1, 3, 1, 1), persistent=False)
        channels = 4 if self.has_depth else 3
        self.patch = nn.Conv2d(channels, arch.dim, kernel_size=arch.patch, stride=arch.patch)
        n = (self.out_h // arch.patch) * (self.out_w // arch.patch)
        self.pos = nn.Parameter(torch.randn(1, n, arch.dim) * 0.02)
        self.keypoints = SpatialKeypoints(channels, arch) if arch.keypoints else None

    def _shrink(self, x: Tensor) -> Tensor:
        b = self.box
        x = x[:, :, b.top : b.top + b.height, b.left : b.left + b.width]
        if b.pool_h > 1 or b.pool_w > 1:
            x = F.avg_pool2d(x, kernel_size=(b.pool_h, b.pool_w), stride=(b.pool_h, b.pool_w))
        if x.shape[-2] != self.out_h or x.shape[-1] != self.out_w:
            x = F.interpolate(x, size=(self.out_h, self.out_w), mode="bilinear", align_corners=False)
        return x

    def forward(self, image: Tensor, depth: Tensor | None = None) -> Tensor:
        # Cast before anything else: TensorRT takes a uint8 input only into a cast to float. Crop and shrink
        # next, scale after: the per-pixel affine then runs on the small image (it commutes with averaging).
        x = self._shrink(image.to(torch.float32).permute(0, 3, 1, 2))
        x = x * self.pix_scale + self.pix_shift
        if depth is not None:
            # z16 -> metres -> [0, 1] over the working range, clamped before averaging so far returns saturate.
            d = torch.clamp(depth.to(torch.float32).unsqueeze(1) * self.depth_scale, 0.0, 1.0)
            x = torch.cat([x, self._shrink(d) * 2.0 - 1.0], dim=1)
        return self._tokens(x)

    def _tokens(self, x: Tensor) -> Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2) + self.pos
        if self.keypoints is not None:
            tokens = tokens + self.keypoints(x).unsqueeze(1)
        return tokens

    # Training caches the shrunk frames (crop + pool + resize run once per frame, not once per step). These three
    # split `forward` at that point; `forward` itself stays as it is, so the exported graph does not change.

    def shrink_color(self, image: Tensor) -> Tensor:
        """uint8 [B, H, W, 3] -> float [B, 3, h, w] in pixel units (0..255), cropped and shrunk."""
        return self._shrink(image.to(torch.float32).permute(0, 3, 1, 2))

    def shrink_depth(self, depth: Tensor) -> Tensor:
        """uint16 [B, H, W] -> float [B, 1, h, w] in [0, 1] over the working range."""
        return self._shrink(torch.clamp(depth.to(torch.float32).unsqueeze(1) * self.depth_scale, 0.0, 1.0))

    def embed_shrunk(self, color: Tensor, depth: Tensor | None = None) -> Tensor:
        """What `forward` does after shrinking: the same tokens from `shrink_color` / `shrink_depth` outputs."""
        x = color * self.pix_scale + self.pix_shift
        if depth is not None:
            x = torch.cat([x, depth * 2.0 - 1.0], dim=1)
        return self._tokens(x)


class SpatialKeypoints(nn.Module):
    """Normalised image [B, C, h, w] -> [B, D]: the expected (x, y) of each keypoint map, embedded.

    Two convolutions make K score maps at half resolution; a softmax over each map's pixels and the pixel
    coordinates give K points in [-1, 1]. The embedding is added to every image token of the camera, and its last
    layer starts at zero, so a network grown with keypoints from one without (`train --init`) computes what it did.
    """

    grid: Tensor

    def __init__(self, channels: int, arch: Architecture) -> None:
        super().__init__()
        width = max(16, arch.keypoints)
        self.maps = nn.Sequential(
            nn.Conv2d(channels, width, kernel_size=3, stride=2, padding=1),
            nn.GELU(),
            nn.Conv2d(width, arch.keypoints, kernel_size=3, padding=1),
        )
        h, w = (arch.image_height + 1) // 2, (arch.image_width + 1) // 2
        ys, xs = torch.meshgrid(torch.linspace(-1.0, 1.0, h), torch.linspace(-1.0, 1.0, w), indexing="ij")
        self.register_buffer("grid", torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1), persistent=False)
        self.embed = nn.Linear(2 * arch.keypoints, arch.dim)
        nn.init.zeros_(self.embed.weight)
        nn.init.zeros_(self.embed.bias)

    def points(self, x: Tensor) -> Tensor:
        """[B, K, 2]: each map's softmax-weighted mean pixel position, x then y."""
        return torch.softmax(self.maps(x).flatten(2), dim=-1) @ self.grid

    def forward(self, x: Tensor) -> Tensor:
        return self.embed(self.points(x).flatten(1))


class Normalizer(nn.Module):
    """(x - mean) / std and back, with the statistics as graph constants."""

    mean: Tensor
    std: Tensor

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.register_buffer("mean", _const(mean).reshape(1, -1), persistent=False)
        self.register_buffer("std", _const(std).reshape(1, -1), persistent=False)

    def normalize(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def denormalize(self, x: Tensor) -> Tensor:
        return x * self.std + self.mean


# --------------------------------------------------------------------------------------------------------------
# The four networks


class WorldModel(nn.Module):
    """Frames + joint state + task -> current latent tokens, predicted latent evolution, pooled context.

    Inputs (in order): image_0..N-1, depth_i for each camera with depth, joint_pos, task_embedding.
    Outputs: latents [B, M, D], future_latents [B, H, M, D], context [B, D].
    """

    def __init__(
        self, arch: Architecture, cameras: tuple[CameraSpec, ...], action_dim: int, norm: Normalization
    ) -> None:
        super().__init__()
        self.arch = arch
        self.cameras = cameras
        self.depth_cameras = tuple(i for i, c in enumerate(cameras) if c.has_depth)
        d = arch.dim
        self.stems = nn.ModuleList(ImageStem(c, arch, norm) for c in cameras)
        self.camera_emb = nn.Parameter(torch.randn(len(cameras), 1, d) * 0.02)
        self.proprio = Normalizer(norm.proprio_mean, norm.proprio_std)
        self.proprio_in = nn.Linear(action_dim, d)
        self.task_in = nn.Linear(arch.task_dim, d)
        self.encoder = nn.ModuleList(EncoderBlock(d, arch.heads, arch.mlp_ratio) for _ in range(arch.depth))
        self.encoder_norm = nn.LayerNorm(d)
        self.latent_queries = nn.Parameter(torch.randn(1, arch.latent_tokens, d) * 0.02)
        self.compress = DecoderBlock(d, arch.heads, arch.mlp_ratio)
        self.latent_norm = nn.LayerNorm(d)
        self.horizon_emb = nn.Parameter(torch.randn(1, arch.horizon, 1, d) * 0.02)
        self.dynamics = nn.ModuleList(EncoderBlock(d, arch.heads, arch.mlp_ratio) for _ in range(arch.dynamics_depth))
        self.future_norm = nn.LayerNorm(d)
        self.context_norm = nn.LayerNorm(d)

    def forward(self, *inputs: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        n_cam = len(self.cameras)
        images = inputs[:n_cam]
        depths = dict(zip(self.depth_cameras, inputs[n_cam : n_cam + len(self.depth_cameras)], strict=True))
        joint_pos, task = inputs[n_cam + len(self.depth_cameras) :]
        tokens = [
            stem(img, depths.get(i)) + self.camera_emb[i]
            for i, (stem, img) in enumerate(zip(self.stems, images, strict=True))
        ]
        return self.encode_tokens(tokens, joint_pos, task)

    def forward_shrunk(
        self, colors: list[Tensor], depths: list[Tensor | None], joint_pos: Tensor, task: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """`forward` from cached shrunk frames (one per camera; depth None where a camera has none)."""
        tokens = [
            cast(ImageStem, stem).embed_shrunk(c, d) + self.camera_emb[i]
            for i, (stem, c, d) in enumerate(zip(self.stems, colors, depths, strict=True))
        ]
        return self.encode_tokens(tokens, joint_pos, task)

    def encode_tokens(self, tokens: list[Tensor], joint_pos: Tensor, task: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        task_tok = self.task_in(task).unsqueeze(1)
        tokens.append(self.proprio_in(self.proprio.normalize(joint_pos)).unsqueeze(1))
        tokens.append(task_tok)
        x = torch.cat(tokens, dim=1)
        for block in self.encoder:
            x = block(x)
        x = self.encoder_norm(x)
        b = x.shape[0]
        # The queries are one [1, M, D] parameter: expanded to the batch, never reshaped with it (a batch of 1
        # keeps the graph it always had).
        queries = self.latent_queries if b == 1 else self.latent_queries.expand(b, -1, -1)
        lat = self.compress(queries, self.compress.memory_kv(x))
        latents = self.latent_norm(lat)
        m, h, d = self.arch.latent_tokens, self.arch.horizon, self.arch.dim
        fut = (latents.unsqueeze(1) + self.horizon_emb).reshape(b, h * m, d)
        for block in self.dynamics:
            fut = block(fut)
        future = latents.unsqueeze(1) + self.future_norm(fut).reshape(b, h, m, d)
        context = self.context_norm(latents.mean(dim=1) + task_tok.squeeze(1))
        return latents, future, context


class Gate(nn.Module):
    """context + joint state -> the predictive expert's weight in [0, 1] for each of the K chunk steps."""

    def __init__(self, arch: Architecture, action_dim: int, norm: Normalization) -> None:
        super().__init__()
        self.proprio = Normalizer(norm.proprio_mean, norm.proprio_std)
        h = arch.gate_hidden
        self.net = nn.Sequential(
            nn.Linear(arch.dim + action_dim, h),
            nn.GELU(),
            nn.Linear(h, h),
            nn.GELU(),
            nn.Linear(h, arch.chunk_size),
        )

    def forward(self, context: Tensor, joint_pos: Tensor) -> Tensor:
        return torch.sigmoid(self.net(torch.cat([context, self.proprio.normalize(joint_pos)], dim=-1)))


class _Memory(nn.Module):
    """World-model tokens (current + predicted) projected to the expert width, with a token-type embedding."""

    def __init__(self, arch: Architecture) -> None:
        super().__init__()
        self.arch = arch
        self.proj = nn.Linear(arch.dim, arch.expert_dim)
        n = arch.latent_tokens * (arch.horizon + 1)
        self.pos = nn.Parameter(torch.randn(1, n, arch.expert_dim) * 0.02)

    def forward(self, latents: Tensor, future_latents: Tensor) -> Tensor:
        a = self.arch
        b = latents.shape[0]
        tokens = torch.cat([latents, future_latents.reshape(b, a.horizon * a.latent_tokens, a.dim)], dim=1)
        return self.proj(tokens) + self.pos


class ReactiveExpert(nn.Module):
    """Inverse dynamics: current + predicted latents + joint state -> K x A joint targets in one pass."""

    def __init__(self, arch: Architecture, action_dim: int, norm: Normalization) -> None:
        super().__init__()
        e = arch.expert_dim
        self.memory = _Memory(arch)
        self.proprio = Normalizer(norm.proprio_mean, norm.proprio_std)
        self.action = Normalizer(norm.action_mean, norm.action_std)
        self.proprio_in = nn.Linear(action_dim, e)
        self.relative = arch.relative_actions
        self.queries = nn.Parameter(torch.randn(1, arch.chunk_size, e) * 0.02)
        self.blocks = nn.ModuleList(
            DecoderBlock(e, arch.expert_heads, arch.mlp_ratio) for _ in range(arch.reactive_depth)
        )
        self.norm = nn.LayerNorm(e)
        self.head = nn.Linear(e, action_dim)

    def decoders(self) -> list[DecoderBlock]:
        return [cast(DecoderBlock, b) for b in self.blocks]

    def forward(self, latents: Tensor, future_latents: Tensor, joint_pos: Tensor) -> Tensor:
        mem = self.memory(latents, future_latents)
        x = self.queries + self.proprio_in(self.proprio.normalize(joint_pos)).unsqueeze(1)
        for block in self.decoders():
            x = block(x, block.memory_kv(mem))
        return to_setpoints(self.action.denormalize(self.head(self.norm(x))), joint_pos, self.relative)


def to_setpoints(actions: Tensor, joint_pos: Tensor, relative: bool) -> Tensor:
    """Denormalised expert outputs [B, K, A] -> absolute setpoints (offsets from the joint state when relative)."""
    return actions + joint_pos.unsqueeze(1) if relative else actions


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of the flow time t [B] in [0, 1] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32) * (-math.log(1000.0) / max(half - 1, 1)))
    angles = t.reshape(t.shape[0], 1) * 1000.0 * freqs.reshape(1, half)
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


class PredictiveExpert(nn.Module):
    """Flow matching over the normalised action chunk, conditioned on the world model's tokens.

    Flow time runs from 0 (noise) to 1 (actions); one Euler step is x + dt * v(x, t). `prepare` computes what
    does not depend on the flow state (memory keys/values, conditioning), once per policy step.
    """

    def __init__(self, arch: Architecture, action_dim: int, norm: Normalization) -> None:
        super().__init__()
        self.arch = arch
        e = arch.expert_dim
        self.memory = _Memory(arch)
        self.proprio = Normalizer(norm.proprio_mean, norm.proprio_std)
        self.action = Normalizer(norm.action_mean, norm.action_std)
        self.cond_in = nn.Linear(arch.dim + action_dim, e)
        self.action_in = nn.Linear(action_dim, e)
        self.pos = nn.Parameter(torch.randn(1, arch.chunk_size, e) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(e, e), nn.GELU(), nn.Linear(e, e))
        self.blocks = nn.ModuleList(
            DecoderBlock(e, arch.expert_heads, arch.mlp_ratio) for _ in range(arch.predictive_depth)
        )
        self.norm = nn.LayerNorm(e)
        self.head = nn.Linear(e, action_dim)

    def decoders(self) -> list[DecoderBlock]:
        return [cast(DecoderBlock, b) for b in self.blocks]

    def prepare(
        self, latents: Tensor, future_latents: Tensor, context: Tensor, joint_pos: Tensor
    ) -> tuple[Tensor, list[tuple[Tensor, Tensor]]]:
        mem = self.memory(latents, future_latents)
        cond = self.cond_in(torch.cat([context, self.proprio.normalize(joint_pos)], dim=-1)).unsqueeze(1)
        return cond + self.pos, [block.memory_kv(mem) for block in self.decoders()]

    def velocity(self, x: Tensor, t: Tensor, cond: Tensor, kvs: list[tuple[Tensor, Tensor]]) -> Tensor:
        h = self.action_in(x) + cond + self.time_mlp(timestep_embedding(t, self.arch.expert_dim)).unsqueeze(1)
        for block, kv in zip(self.decoders(), kvs, strict=True):
            h = block(h, kv)
        return self.head(self.norm(h))

    def sample(
        self, latents: Tensor, future_latents: Tensor, context: Tensor, joint_pos: Tensor, noise: Tensor
    ) -> Tensor:
        """N Euler steps from noise; returns denormalised actions [B, K, A]."""
        cond, kvs = self.prepare(latents, future_latents, context, joint_pos)
        n = self.arch.flow_steps
        x = noise
        for i in range(n):
            t = torch.full((1,), i / n, dtype=torch.float32)
            x = x + (1.0 / n) * self.velocity(x, t, cond, kvs)
        return to_setpoints(self.action.denormalize(x), joint_pos, self.arch.relative_actions)

    def step(
        self,
        latents: Tensor,
        future_latents: Tensor,
        context: Tensor,
        joint_pos: Tensor,
        x_t: Tensor,
        t: Tensor,
        dt: Tensor,
    ) -> tuple[Tensor, Tensor]:
        cond, kvs = self.prepare(latents, future_latents, context, joint_pos)
        x_next = x_t + dt.reshape(dt.shape[0], 1, 1) * self.velocity(x_t, t, cond, kvs)
        return x_next, to_setpoints(self.action.denormalize(x_next), joint_pos, self.arch.relative_actions)


class UnrolledFlow(nn.Module):
    """The exported `predictive_expert` graph: every flow step in one graph, memory keys/values computed once."""

    def __init__(self, expert: PredictiveExpert) -> None:
        super().__init__()
        self.expert = expert

    def forward(
        self, latents: Tensor, future_latents: Tensor, context: Tensor, joint_pos: Tensor, noise: Tensor
    ) -> Tensor:
        return self.expert.sample(latents, future_latents, context, joint_pos, noise)


class FlowStep(nn.Module):
    """The exported `predictive_expert_step` graph: one Euler step, looped by the runtime."""

    def __init__(self, expert: PredictiveExpert) -> None:
        super().__init__()
        self.expert = expert

    def forward(
        self,
        latents: Tensor,
        future_latents: Tensor,
        context: Tensor,
        joint_pos: Tensor,
        x_t: Tensor,
        t: Tensor,
        dt: Tensor,
    ) -> tuple[Tensor, Tensor]:
        return self.expert.step(latents, future_latents, context, joint_pos, x_t, t, dt)

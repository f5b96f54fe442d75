"""The in-memory training set: episodes -> shrunk frames + per-frame targets, and random batches of them.

Frames are cropped and shrunk once, by the world model's own stem (`ImageStem.shrink_color`), and kept as uint8 at
the model's input size: a training step then runs only the stem's affine + patch embedding, exactly as the
exported graph does after its Resize. Episodes are split into training and held-out ones, never frames of one
episode into both.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from export.config import Architecture, Normalization
from export.errors import DatasetError
from export.learning.data import SETPOINT_PHASE, frame_targets
from export.learning.episodes import EpisodeData
from export.networks import ImageStem
from harmowam_edge.bundle.schema import ActionSpace, CameraSpec

STD_FLOOR_FRACTION = 0.01  # a dimension's std is at least this share of its limit range (a joint that never moves)
OFFSET_FLOOR_FRACTION = 0.002  # the same for setpoint offsets (a 0.25 s chunk moves a joint a few hundredths)
REOPEN_FRACTION = 0.1  # a label opening the fingers by this share of their range within the chunk reopens them
SHUT_FRACTION = 0.25  # fingers within this share of their range above the closed stop are shut (20 mm of 80)


def task_embedding(name: str, dim: int) -> tuple[float, ...]:
    """A unit vector from the task name's words (`pick_red_cube` = pick + red + cube), each word a seeded vector.

    Compositional, so a task never trained on (`pick_green_cube` when only red was) still shares its verb and
    shape with known ones; deterministic across machines (the seed is a hash of the word).
    """
    total = np.zeros(dim, np.float64)
    for word in name.split("_"):
        seed = int.from_bytes(hashlib.sha256(word.encode()).digest()[:8], "little")
        total += np.random.default_rng(seed).standard_normal(dim)
    total /= max(float(np.linalg.norm(total)), 1e-12)
    return tuple(float(x) for x in total)


def reopening_frames(joint_pos: np.ndarray, chunks: np.ndarray, space: ActionSpace) -> np.ndarray:
    """bool [T]: frames with shut fingers whose label opens them (a missed grasp's retry).

    Why they matter: fingers half open above the table look, to the state, like fingers holding the cube (whose
    label squeezes), and a teacher that shut its fingers beside the cube opened and closed them by turns for the
    rest of the episode. These frames are few among the many where shut fingers rightly stay shut. Fingers wider
    than `SHUT_FRACTION` do not count: a rule without that limit also took every perturbed demonstration start
    (fingers at 26-78 mm, opened on the way), a third of all frames, and the weighted teacher lost ground.
    """
    out = np.zeros(len(joint_pos), bool)
    for i, d in enumerate(space.dims):
        if d.kind == "gripper":
            opens = chunks[:, :, i].max(axis=1) - joint_pos[:, i] >= REOPEN_FRACTION * d.range
            out |= opens & (joint_pos[:, i] - d.lower <= SHUT_FRACTION * d.range)
    return out


def camera_specs(ep: EpisodeData) -> tuple[CameraSpec, ...]:
    """The cameras an episode was recorded with: sizes from its frames; the rate the dataset states (a camera
    recorded at a lower rate still runs at its own on the robot), else the one its capture times show."""
    rate = 1.0 / float(np.median(np.diff(ep.t_frame)))
    stated = ep.meta.get("cameras")
    specs = []
    for i, (name, img) in enumerate(zip(ep.camera_names, ep.images, strict=True)):
        depth = i < len(ep.depths) and ep.depths[i] is not None
        fps = max(1, round(rate))
        if isinstance(stated, list) and i < len(stated) and isinstance(stated[i], dict):
            v = stated[i].get("fps")
            if isinstance(v, int) and not isinstance(v, bool) and v > 0:
                fps = v
        specs.append(
            CameraSpec(
                name=name,
                width=int(img.shape[2]),
                height=int(img.shape[1]),
                fps=fps,
                streams=("color", "depth") if depth else ("color",),
            )
        )
    return tuple(specs)


def normalization_from_data(
    joint_pos: np.ndarray, setpoints: np.ndarray, space: ActionSpace, action_floor: float = STD_FLOOR_FRACTION
) -> Normalization:
    """Per-dimension mean/std of the measured state and of the commanded setpoints (or their offsets from the
    state), std floored at a share of each dimension's range."""
    floor = np.array([d.range * STD_FLOOR_FRACTION for d in space.dims])
    action_floor_v = np.array([d.range * action_floor for d in space.dims])
    jp = joint_pos.astype(np.float64)
    sp = setpoints.astype(np.float64)
    return Normalization(
        proprio_mean=tuple(float(x) for x in jp.mean(0)),
        proprio_std=tuple(float(x) for x in np.maximum(jp.std(0), floor)),
        action_mean=tuple(float(x) for x in sp.mean(0)),
        action_std=tuple(float(x) for x in np.maximum(sp.std(0), action_floor_v)),
    )


GOAL_PHASE = "grasp"  # the auxiliary goal target: the expert's joint configuration where this phase begins


def episode_goal(ep: EpisodeData) -> np.ndarray | None:
    """Where the expert grasps in this episode (its first `grasp` setpoint), or None where the data cannot say.

    A training-only target: the grasp configuration is fixed by where the object lies, which only the image
    shows, so regressing it from the world model's latents makes the latents carry the object's position (a
    policy that follows the joint state alone cannot know where to go)."""
    sp_phase = ep.meta.get(SETPOINT_PHASE)
    if GOAL_PHASE not in ep.phase_names or not isinstance(sp_phase, np.ndarray):
        return None
    if sp_phase.shape != ep.t_setpoint.shape:
        return None
    hits = np.flatnonzero(sp_phase == ep.phase_names.index(GOAL_PHASE))
    return ep.setpoints[hits[0]].astype(np.float32) if len(hits) else None


@dataclass
class Batch:
    """One batch (B frames) as tensors, on the training device."""

    colors: list[Tensor]  # per camera float [B, 3, h, w] in pixel units (0..255)
    depths: list[Tensor | None]  # per camera float [B, 1, h, w] in [0, 1], or None
    joint_pos: Tensor  # [B, A]
    task: Tensor  # [B, E]
    chunk: Tensor  # [B, K, A] raw units
    gate: Tensor  # [B]: 1 predictive, 0 reactive, -1 unknown
    weight: Tensor  # [B]: 0 = no action target
    future_colors: list[Tensor]  # per camera [B * H, 3, h, w]: the frames at the horizon steps
    future_depths: list[Tensor | None]
    future_joint_pos: Tensor  # [B * H, A]
    future_task: Tensor  # [B * H, E]
    goal: Tensor | None = None  # [B, A] the episode's grasp configuration (raw units), see `episode_goal`
    goal_weight: Tensor | None = None  # [B]: 0 where the episode has no goal


class TrainingSet:
    """Every frame of every episode with its targets; `split` says which frames are held out."""

    def __init__(
        self,
        episodes: Iterable[EpisodeData],
        arch: Architecture,
        space: ActionSpace,
        tasks: Sequence[str] = (),
        val_fraction: float = 0.1,
        seed: int = 0,
        demo_timing: str = "recorded",
        reopen_weight: float = 1.0,
    ) -> None:
        """`reopen_weight`: `reopening_frames` are drawn this many times as often as the others."""
        self.arch = arch
        self.space = space
        self.action_names = tuple(d.name for d in space.dims)
        colors: list[list[np.ndarray]] = []
        depths: list[list[np.ndarray]] = []
        jp, chunks, hor, gate, weight, ep_id, task_names, setpoints = [], [], [], [], [], [], [], []
        goals: list[np.ndarray] = []
        self.sources: list[str] = []
        self.skipped_failed: list[str] = []
        self.cameras: tuple[CameraSpec, ...] = ()
        stems: list[ImageStem] = []
        offset = 0
        self.seeds: list[int] = []  # layout seeds of every episode read (a held-out evaluation must avoid them)
        for ep in episodes:
            seed_value = ep.meta.get("seed")
            if isinstance(seed_value, int) and not isinstance(seed_value, bool):
                self.seeds.append(seed_value)
            if ep.success is False:
                self.skipped_failed.append(ep.source)  # a failed demonstration is no target
                continue
            if ep.action_names != self.action_names:
                raise DatasetError(
                    f"{ep.source}: action_names: expected {list(self.action_names)} (the action space), "
                    f"got {list(ep.action_names)}"
                )
            cams = camera_specs(ep)
            if not self.cameras:
                self.cameras = cams
                dummy = Normalization.from_limits(space)
                stems = [ImageStem(c, arch, dummy) for c in cams]
                colors = [[] for _ in cams]
                depths = [[] for _ in cams]
            elif [(c.name, c.width, c.height, c.has_depth) for c in cams] != [
                (c.name, c.width, c.height, c.has_depth) for c in self.cameras
            ]:
                raise DatasetError(
                    f"{ep.source}: cameras: {[c.describe() for c in cams]} differ from the first episode's "
                    f"{[c.describe() for c in self.cameras]}"
                )
            with torch.no_grad():
                for i, stem in enumerate(stems):
                    colors[i].append(
                        _shrink_all(stem.shrink_color, ep.images[i]).round().clamp(0, 255).to(torch.uint8).numpy()
                    )
                    if stem.has_depth:
                        d = ep.depths[i]
                        assert d is not None
                        depths[i].append(_shrink_all(stem.shrink_depth, d).to(torch.float16).numpy())
            tg = frame_targets(
                ep, arch.chunk_size, arch.action_rate_hz, arch.horizon, arch.horizon_dt_s, demo_timing=demo_timing
            )
            jp.append(ep.joint_pos)
            chunks.append(tg.chunks)
            hor.append(tg.horizon_frames + offset)
            gate.append(tg.gate)
            weight.append(tg.weight)
            ep_id.append(np.full(ep.frames, len(self.sources), np.int64))
            task_names.append(ep.task)
            setpoints.append(ep.setpoints)
            goal = episode_goal(ep)
            goals.append(np.full((ep.frames, len(self.action_names)), np.nan, np.float32) if goal is None
                         else np.repeat(goal[None, :], ep.frames, axis=0))  # fmt: skip
            self.sources.append(ep.source)
            offset += ep.frames
        if not self.sources:
            raise DatasetError("--data: no episodes in the given folders")
        self.episode_tasks = task_names
        self.tasks = tuple(dict.fromkeys([*sorted(set(task_names)), *tasks]))
        table = np.array([task_embedding(t, arch.task_dim) for t in self.tasks], np.float32)
        self.task_table = table
        task_idx = np.concatenate(
            [np.full(len(j), self.tasks.index(t), np.int64) for j, t in zip(jp, task_names, strict=True)]
        )
        self.frames = offset
        self.colors = [torch.from_numpy(np.concatenate(c)) for c in colors]
        self.depths: list[Tensor | None] = [torch.from_numpy(np.concatenate(d)) if d else None for d in depths]
        self.joint_pos = np.concatenate(jp).astype(np.float32)
        self.chunks = np.concatenate(chunks).astype(np.float32)
        self.horizon_frames = np.concatenate(hor)
        self.gate = np.concatenate(gate)
        self.weight = np.concatenate(weight)
        self.episode = np.concatenate(ep_id)
        self.task_index = task_idx
        goal_all = np.concatenate(goals)
        self.goal_weight = np.isfinite(goal_all).all(axis=1).astype(np.float32)
        self.goal = np.nan_to_num(goal_all).astype(np.float32)
        # Held-out episodes: a seeded choice, at least one when there are two or more.
        n_ep = len(self.sources)
        n_val = 0 if n_ep < 2 else max(1, round(n_ep * val_fraction))
        val_eps = set(np.random.default_rng(seed).permutation(n_ep)[:n_val].tolist())
        self.val_episodes = sorted(val_eps)
        is_val = np.isin(self.episode, list(val_eps))
        usable = self.weight > 0
        self.train_index = np.flatnonzero(~is_val & usable)
        self.val_index = np.flatnonzero(is_val & usable)
        if len(self.train_index) == 0:
            raise DatasetError("--data: no training frames left (every frame held out or masked)")
        self.reopening = reopening_frames(self.joint_pos, self.chunks, space)
        p = np.where(self.reopening[self.train_index], reopen_weight, 1.0)
        self.train_p = None if reopen_weight == 1.0 else p / p.sum()
        train_eps = ~np.isin(np.arange(n_ep), list(val_eps))
        if arch.relative_actions:  # the experts' outputs are offsets from the state: their statistics
            rows = self.train_index
            offsets = (self.chunks[rows] - self.joint_pos[rows, None, :]).reshape(-1, len(self.action_names))
            self.normalization = normalization_from_data(self.joint_pos[~is_val], offsets, space, OFFSET_FLOOR_FRACTION)
        else:
            sp_train = np.concatenate([s for s, keep in zip(setpoints, train_eps, strict=True) if keep])
            self.normalization = normalization_from_data(self.joint_pos[~is_val], sp_train, space)

    @property
    def episodes(self) -> int:
        return len(self.sources)

    def batch(self, index: np.ndarray, device: torch.device) -> Batch:
        idx = torch.from_numpy(index)
        fut = torch.from_numpy(self.horizon_frames[index].reshape(-1))

        def take(t: Tensor | None, i: Tensor) -> Tensor | None:
            return None if t is None else t[i].to(device=device, dtype=torch.float32)

        task = torch.from_numpy(self.task_table[self.task_index[index]])
        h = self.arch.horizon
        return Batch(
            colors=[take(c, idx) for c in self.colors],  # type: ignore[misc]
            depths=[take(d, idx) for d in self.depths],
            joint_pos=torch.from_numpy(self.joint_pos[index]).to(device),
            task=task.to(device),
            chunk=torch.from_numpy(self.chunks[index]).to(device),
            gate=torch.from_numpy(self.gate[index]).to(device),
            weight=torch.from_numpy(self.weight[index]).to(device),
            future_colors=[take(c, fut) for c in self.colors],  # type: ignore[misc]
            future_depths=[take(d, fut) for d in self.depths],
            future_joint_pos=torch.from_numpy(self.joint_pos[fut.numpy()]).to(device),
            future_task=task.repeat_interleave(h, dim=0).to(device),
            goal=torch.from_numpy(self.goal[index]).to(device),
            goal_weight=torch.from_numpy(self.goal_weight[index]).to(device),
        )

    def sample(self, rng: np.random.Generator, batch_size: int) -> np.ndarray:
        if self.train_p is None:
            return rng.choice(self.train_index, size=batch_size, replace=len(self.train_index) < batch_size)
        return rng.choice(self.train_index, size=batch_size, p=self.train_p)

    def validation_index(self, limit: int, seed: int = 0) -> np.ndarray:
        """A fixed subset of the held-out frames (the same every evaluation)."""
        if len(self.val_index) <= limit:
            return self.val_index
        return np.sort(np.random.default_rng(seed).choice(self.val_index, size=limit, replace=False))

    def describe_sample(self) -> dict[str, list[int]]:
        b = self.batch(self.train_index[:1], torch.device("cpu"))
        out = {f"color_{i}": list(c.shape) for i, c in enumerate(b.colors)}
        out.update({f"depth_{i}": list(d.shape) for i, d in enumerate(b.depths) if d is not None})
        out.update(
            joint_pos=list(b.joint_pos.shape),
            task_embedding=list(b.task.shape),
            chunk=list(b.chunk.shape),
            future_color_0=list(b.future_colors[0].shape),
        )
        return out


def seed_ranges(seeds: Sequence[int]) -> list[list[int]]:
    """Seeds as sorted half-open [lo, hi) ranges of consecutive values."""
    out: list[list[int]] = []
    for s in sorted(set(seeds)):
        if out and out[-1][1] == s:
            out[-1][1] = s + 1
        else:
            out.append([s, s + 1])
    return out


def _shrink_all(fn: object, frames: np.ndarray, block: int = 256) -> Tensor:
    """Apply a stem's shrink to [T, ...] frames in blocks (bounded memory for large camera frames)."""
    assert callable(fn)
    parts = [fn(torch.from_numpy(np.ascontiguousarray(frames[i : i + block]))) for i in range(0, len(frames), block)]
    return torch.cat(parts)


def steps_per_epoch(ts: TrainingSet, batch_size: int) -> int:
    return max(1, math.ceil(len(ts.train_index) / batch_size))

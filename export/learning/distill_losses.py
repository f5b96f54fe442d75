"""What the student learns from the teacher, one loss per network (docs/training.md, "Distillation").

- world model: the student's current and predicted latents, through a learned projection where the widths or
  token counts differ, regress the teacher's; plus the student's own latent-prediction loss and variance hinge
  (the trainer's, against an EMA copy of the student);
- reactive expert: L1 to the teacher's reactive chunk (normalised units, shared by both: same statistics);
- predictive expert, K flow steps where the teacher runs N (direct distillation of the teacher's ODE map plus a
  reflow velocity term): from the same noise z the teacher integrates its flow with its N Euler steps to x1; the
  student's K-step Euler output from z regresses x1 (the endpoint term: exactly what the runtime runs), and its
  velocity at a random t on the straight path (1 - t) z + t x1 regresses x1 - z (the reflow term: a straight
  flow, so every step count near K lands on x1);
- gate: the binary KL divergence from the teacher's gate weights (zero when they agree).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from export.config import Architecture
from export.learning.losses import VARIANCE_TARGET, PolicyModel
from export.learning.sampler import Batch
from export.networks import PredictiveExpert


@dataclass(frozen=True)
class DistillWeights:
    latent: float = 1.0  # student latents -> teacher latents (projected)
    world_model: float = 1.0  # the student's own latent prediction (EMA target)
    variance: float = 1.0
    reactive: float = 1.0
    flow_endpoint: float = 1.0  # K-step output vs the teacher's N-step output from the same noise
    flow_velocity: float = 1.0  # reflow: velocity on the straight path noise -> teacher's action
    gate: float = 1.0


@dataclass
class TeacherLabels:
    """The teacher's outputs on one batch (no gradient). Action tensors are in normalised units."""

    latents: Tensor  # [B, Mt, Dt]
    future: Tensor  # [B, Ht, Mt, Dt]
    context: Tensor  # [B, Dt]
    reactive: Tensor  # [B, K, A]
    noise: Tensor  # [B, K, A] the flow's starting point
    flow: Tensor  # [B, K, A] the teacher's N-step Euler integration from `noise`
    gate: Tensor  # [B, K] in [0, 1]


def euler(pe: PredictiveExpert, cond: Tensor, kvs: list[tuple[Tensor, Tensor]], noise: Tensor, steps: int) -> Tensor:
    """The runtime's flow schedule with `steps` steps (t_i = i / steps, dt = 1 / steps), normalised units."""
    x = noise
    for i in range(steps):
        t = torch.full((1,), i / steps, dtype=torch.float32, device=noise.device)
        x = x + (1.0 / steps) * pe.velocity(x, t, cond, kvs)
    return x


@torch.no_grad()
def teacher_labels(teacher: PolicyModel, batch: Batch, noise: Tensor) -> TeacherLabels:
    """Run the teacher (its own N flow steps) on a batch of its own shrunk frames."""
    wm = teacher.world_model
    latents, future, context = wm.forward_shrunk(batch.colors, batch.depths, batch.joint_pos, batch.task)
    reactive = teacher.normalize_actions(teacher.reactive_expert(latents, future, batch.joint_pos), batch.joint_pos)
    pe = teacher.predictive_expert
    cond, kvs = pe.prepare(latents, future, context, batch.joint_pos)
    flow = euler(pe, cond, kvs, noise, pe.arch.flow_steps)
    gate = teacher.gate(context, batch.joint_pos)
    return TeacherLabels(
        latents=latents, future=future, context=context, reactive=reactive, noise=noise, flow=flow, gate=gate
    )


class LatentProjection(nn.Module):
    """Student latent tokens [..., Ms, Ds] -> the teacher's [..., Mt, Dt]: a token mix and a width map, each an
    identity where the two already agree (then the student's latents are compared directly)."""

    def __init__(self, student: Architecture, teacher: Architecture) -> None:
        super().__init__()
        self.tokens = (
            nn.Linear(student.latent_tokens, teacher.latent_tokens)
            if student.latent_tokens != teacher.latent_tokens
            else None
        )
        self.width = nn.Linear(student.dim, teacher.dim) if student.dim != teacher.dim else None

    def forward(self, x: Tensor) -> Tensor:
        if self.tokens is not None:
            x = self.tokens(x.transpose(-1, -2)).transpose(-1, -2)
        if self.width is not None:
            x = self.width(x)
        return x


def binary_kl(p: Tensor, q: Tensor) -> Tensor:
    """Mean KL(q || p) of Bernoulli weights: the teacher's q, the student's p."""
    eps = 1e-6
    p = p.clamp(eps, 1 - eps)
    q = q.clamp(eps, 1 - eps)
    return (q * (q.log() - p.log()) + (1 - q) * ((1 - q).log() - (1 - p).log())).mean()


def distill_losses(
    student: PolicyModel,
    projection: LatentProjection,
    batch: Batch,
    labels: TeacherLabels,
    ema_target: Tensor,
    flow_t: Tensor,
    w: DistillWeights,
) -> dict[str, Tensor]:
    """Losses of one batch. `batch` holds the student's shrunk frames (the same frames the labels came from)."""
    latents, future, context = student.world_model.forward_shrunk(
        batch.colors, batch.depths, batch.joint_pos, batch.task
    )
    losses: dict[str, Tensor] = {}
    losses["world_model"] = F.mse_loss(future, ema_target)
    losses["variance"] = torch.relu(VARIANCE_TARGET - torch.sqrt(latents.var(dim=0) + 1e-4)).mean()
    # Both horizons step by the teacher's horizon_dt_s (the student inherits it): compare the common steps.
    h = min(future.shape[1], labels.future.shape[1])
    losses["latent"] = 0.5 * (
        F.mse_loss(projection(latents), labels.latents) + F.mse_loss(projection(future[:, :h]), labels.future[:, :h])
    )
    reactive = student.normalize_actions(student.reactive_expert(latents, future, batch.joint_pos), batch.joint_pos)
    losses["reactive"] = (reactive - labels.reactive).abs().mean()

    pe = student.predictive_expert
    cond, kvs = pe.prepare(latents, future, context, batch.joint_pos)
    x1 = euler(pe, cond, kvs, labels.noise, pe.arch.flow_steps)
    losses["flow_endpoint"] = F.mse_loss(x1, labels.flow)
    t = flow_t.reshape(-1, 1, 1)
    x_t = (1.0 - t) * labels.noise + t * labels.flow
    losses["flow_velocity"] = F.mse_loss(pe.velocity(x_t, flow_t, cond, kvs), labels.flow - labels.noise)

    gate_w = student.gate(context.detach(), batch.joint_pos)
    losses["gate"] = binary_kl(gate_w, labels.gate)
    losses["total"] = (
        w.latent * losses["latent"]
        + w.world_model * losses["world_model"]
        + w.variance * losses["variance"]
        + w.reactive * losses["reactive"]
        + w.flow_endpoint * losses["flow_endpoint"]
        + w.flow_velocity * losses["flow_velocity"]
        + w.gate * losses["gate"]
    )
    return losses

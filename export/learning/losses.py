"""One loss per network, trained jointly in one backward pass (docs/training.md says why and how).

- world model: its predicted future latents against an EMA copy's latents of the frames (and joint states) at
  the horizon steps, plus a variance hinge on the current latents across the batch (no collapse to a constant);
- predictive expert: flow matching on the normalised chunk, with the runtime's schedule (t = 0 noise, t = 1
  actions, x_t = (1 - t) noise + t actions, velocity target actions - noise, Euler steps x + dt v);
- reactive expert: L1 on the normalised chunk from the world model's *predicted* latents, as it runs on the robot;
- gate: binary cross-entropy on the expert phase labels where the data has them, else on which expert's chunk
  is nearer the target (the predictive one judged by its one-step estimate x_t + (1 - t) v);
- goal (auxiliary, not exported): MSE of the episode's grasp configuration regressed from the current latents.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor, nn

from export.checkpoint import EdgeNetworks
from export.learning.sampler import Batch

VARIANCE_TARGET = 0.5  # hinge on each latent feature's std across the batch (LayerNorm outputs: at most ~1)


@dataclass(frozen=True)
class LossWeights:
    world_model: float = 1.0
    variance: float = 1.0
    reactive: float = 1.0
    predictive: float = 1.0
    gate: float = 0.1
    goal: float = 1.0  # training-only head: the episode's grasp configuration from the current latents


class PolicyModel(nn.Module):
    """The four networks as one module: one optimizer, one DDP wrapper, `forward` returns the losses."""

    def __init__(self, nets: EdgeNetworks, weights: LossWeights | None = None, gate_from_phases: bool = True) -> None:
        """`gate_from_phases`: the gate learns the expert phase labels where the data has them; False: everywhere
        which expert's chunk is nearer the target (for a predictive expert that is not yet the better one)."""
        super().__init__()
        self.gate_from_phases = gate_from_phases
        self.world_model = nets.world_model
        self.gate = nets.gate
        self.reactive_expert = nets.reactive_expert
        self.predictive_expert = nets.predictive_expert
        self.weights = weights or LossWeights()
        # Not one of the exported networks: it exists to make the latents carry where the object is.
        arch = self.world_model.arch
        a = self.reactive_expert.head.out_features
        self.goal_head = nn.Sequential(
            nn.Linear(arch.latent_tokens * arch.dim, 2 * arch.dim), nn.GELU(), nn.Linear(2 * arch.dim, a)
        )

    def normalize_actions(self, a: Tensor, joint_pos: Tensor) -> Tensor:
        """Absolute setpoints [B, K, A] -> the experts' normalised output space (offsets when relative)."""
        if self.reactive_expert.relative:
            a = a - joint_pos.unsqueeze(1)
        return self.reactive_expert.action.normalize(a)

    def forward(self, batch: Batch, target_latents: Tensor, noise: Tensor, flow_t: Tensor) -> dict[str, Tensor]:
        """Losses of one batch. target_latents [B, H, M, D] (EMA, no grad), noise [B, K, A], flow_t [B] in [0, 1]."""
        w = self.weights
        latents, future, context = self.world_model.forward_shrunk(
            batch.colors, batch.depths, batch.joint_pos, batch.task
        )
        losses: dict[str, Tensor] = {}
        losses["world_model"] = F.mse_loss(future, target_latents)
        std = torch.sqrt(latents.var(dim=0, correction=0) + 1e-4)  # defined for a batch of one frame too
        losses["variance"] = torch.relu(VARIANCE_TARGET - std).mean()

        target = self.normalize_actions(batch.chunk, batch.joint_pos)
        mask = batch.weight.reshape(-1, 1, 1)
        denom = mask.sum().clamp(min=1.0) * target.shape[1] * target.shape[2]

        reactive = self.normalize_actions(self.reactive_expert(latents, future, batch.joint_pos), batch.joint_pos)
        r_err = (reactive - target).abs()
        losses["reactive"] = (r_err * mask).sum() / denom

        pe = self.predictive_expert
        t = flow_t.reshape(-1, 1, 1)
        x_t = (1.0 - t) * noise + t * target
        cond, kvs = pe.prepare(latents, future, context, batch.joint_pos)
        v = pe.velocity(x_t, flow_t, cond, kvs)
        losses["predictive"] = (((v - (target - noise)) ** 2) * mask).sum() / denom

        gate_w = self.gate(context.detach(), batch.joint_pos)  # [B, K]
        with torch.no_grad():
            labelled = ((batch.gate >= 0) & self.gate_from_phases).reshape(-1, 1)
            if bool(labelled.all()):
                by_accuracy = torch.zeros_like(gate_w)  # every frame has its phase label: not needed
            else:
                # The chunk the predictive expert would really produce (its N Euler steps from this noise), not
                # the one-step estimate x_t + (1 - t) v: near t = 1 that estimate is close to the target for any
                # expert, and a gate taught by it hands the arm to a flow that samples worse chunks.
                n = pe.arch.flow_steps
                x = noise
                c_d, kv_d = cond.detach(), [(k.detach(), v_.detach()) for k, v_ in kvs]
                for i in range(n):
                    x = x + (1.0 / n) * pe.velocity(x, torch.full((1,), i / n, dtype=x.dtype), c_d, kv_d)
                p_err = (x - target).abs().mean(-1)
                by_accuracy = (p_err < r_err.mean(-1)).to(gate_w.dtype)
            gate_target = torch.where(labelled, batch.gate.reshape(-1, 1).expand_as(gate_w), by_accuracy)
        bce = F.binary_cross_entropy(gate_w.clamp(1e-6, 1 - 1e-6), gate_target, reduction="none")
        losses["gate"] = (bce * batch.weight.reshape(-1, 1)).sum() / (batch.weight.sum().clamp(min=1.0) * bce.shape[1])

        if batch.goal is not None and batch.goal_weight is not None:
            goal = self.goal_head(latents.flatten(1))
            g_err = ((goal - self.world_model.proprio.normalize(batch.goal)) ** 2).mean(-1)
            losses["goal"] = (g_err * batch.goal_weight).sum() / batch.goal_weight.sum().clamp(min=1.0)
        else:
            losses["goal"] = latents.new_zeros(())
        losses["total"] = (
            w.world_model * losses["world_model"]
            + w.variance * losses["variance"]
            + w.reactive * losses["reactive"]
            + w.predictive * losses["predictive"]
            + w.gate * losses["gate"]
            + w.goal * losses["goal"]
        )
        return losses


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    for pt, po in zip(target.parameters(), online.parameters(), strict=True):
        pt.mul_(momentum).add_(po.detach(), alpha=1.0 - momentum)


@torch.no_grad()
def target_latents(ema_world_model: nn.Module, batch: Batch, horizon: int) -> Tensor:
    """The EMA world model's current latents of the frames at the horizon steps: [B, H, M, D]."""
    lat, _, _ = ema_world_model.forward_shrunk(  # type: ignore[operator]
        batch.future_colors, batch.future_depths, batch.future_joint_pos, batch.future_task
    )
    b = lat.shape[0] // horizon
    return lat.reshape(b, horizon, lat.shape[1], lat.shape[2])


@torch.no_grad()
def action_errors(model: PolicyModel, batch: Batch, noise: Tensor) -> dict[str, float]:
    """Mean absolute chunk error in normalised units of each expert, the gate's blend, and holding the pose."""
    wm = model.world_model
    latents, future, context = wm.forward_shrunk(batch.colors, batch.depths, batch.joint_pos, batch.task)
    target = model.normalize_actions(batch.chunk, batch.joint_pos)
    reactive = model.normalize_actions(model.reactive_expert(latents, future, batch.joint_pos), batch.joint_pos)
    pred = model.normalize_actions(
        model.predictive_expert.sample(latents, future, context, batch.joint_pos, noise), batch.joint_pos
    )
    gate_w = model.gate(context, batch.joint_pos).unsqueeze(-1)
    blend = gate_w * pred + (1.0 - gate_w) * reactive
    hold = model.normalize_actions(batch.joint_pos.unsqueeze(1).expand_as(batch.chunk), batch.joint_pos)
    # Keys apart from the loss names: validation reports both in one dict.
    return {
        "error_reactive": float((reactive - target).abs().mean()),
        "error_predictive": float((pred - target).abs().mean()),
        "blend": float((blend - target).abs().mean()),
        "hold": float((hold - target).abs().mean()),
        "gate_mean": float(gate_w.mean()),
    }

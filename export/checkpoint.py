"""Checkpoints: a directory with `config.json` (architecture, action space, normalisation, cameras, tasks) and
`weights.safetensors` (float32 tensors keyed `<network>.<parameter>`). Loading validates everything and names
the offending file, key or shape.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from export.config import (
    DEFAULT_TASKS,
    CheckpointConfig,
    Normalization,
    Task,
    default_camera,
)
from export.config import preset as get_preset
from export.errors import CheckpointError, ConfigError, OutputExistsError
from export.networks import Gate, PredictiveExpert, ReactiveExpert, WorldModel
from harmowam_edge.bundle.schema import (
    GATE,
    PREDICTIVE_EXPERT,
    REACTIVE_EXPERT,
    WORLD_MODEL,
    CameraSpec,
    reference_action_space,
    sha256_file,
)

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.safetensors"


@dataclass
class EdgeNetworks:
    """The four torch networks of one checkpoint, in eval mode."""

    world_model: WorldModel
    gate: Gate
    reactive_expert: ReactiveExpert
    predictive_expert: PredictiveExpert

    def modules(self) -> dict[str, nn.Module]:
        return {
            WORLD_MODEL: self.world_model,
            GATE: self.gate,
            REACTIVE_EXPERT: self.reactive_expert,
            PREDICTIVE_EXPERT: self.predictive_expert,
        }

    def state_dict(self) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        for name, module in self.modules().items():
            for key, value in module.state_dict().items():
                out[f"{name}.{key}"] = value.detach().contiguous()
        return out

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        """The inverse of `state_dict` (strict: every network's keys and shapes)."""
        for name, module in self.modules().items():
            prefix = name + "."
            module.load_state_dict(
                {k[len(prefix) :]: v.to(torch.float32) for k, v in tensors.items() if k.startswith(prefix)}, strict=True
            )


def build_networks(cfg: CheckpointConfig) -> EdgeNetworks:
    """Fresh networks for a config (weights from torch's current RNG state)."""
    a, n = cfg.architecture, cfg.normalization
    nets = EdgeNetworks(
        world_model=WorldModel(a, cfg.cameras, cfg.action_dim, n),
        gate=Gate(a, cfg.action_dim, n),
        reactive_expert=ReactiveExpert(a, cfg.action_dim, n),
        predictive_expert=PredictiveExpert(a, cfg.action_dim, n),
    )
    for m in nets.modules().values():
        m.eval()
        m.requires_grad_(False)
    return nets


@dataclass
class Checkpoint:
    path: Path
    config: CheckpointConfig
    networks: EdgeNetworks
    sha256: str  # over config + weights: any change to either is a different checkpoint

    @property
    def name(self) -> str:
        return self.path.name


def checkpoint_sha256(path: Path) -> str:
    h = hashlib.sha256()
    for f in (CONFIG_FILE, WEIGHTS_FILE):
        h.update(f.encode())
        h.update(sha256_file(path / f).encode())
    return h.hexdigest()


def init_checkpoint(
    out: str | Path,
    preset: str = "nano",
    arms: int = 1,
    seed: int = 0,
    camera: CameraSpec | Sequence[CameraSpec] | None = None,
    tasks: Sequence[str] = DEFAULT_TASKS,
    force: bool = False,
    like: CheckpointConfig | None = None,
    flow_steps: int | None = None,
) -> Path:
    """Write a seeded, untrained checkpoint (for tests and demos): same seed, same weights.

    `like`: take architecture, action space, cameras and task names from this config (a seeded network of a trained
    one's shape, for timing); `flow_steps` overrides the architecture's.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise OutputExistsError(f"{out}: exists and is not empty; pass --force to overwrite")
    if flow_steps is not None and flow_steps < 1:
        raise ConfigError(f"--flow-steps: expected an integer >= 1, got {flow_steps}")
    if like is not None:
        arch = like.architecture
        cfg = dataclasses.replace(
            like,
            normalization=Normalization.from_limits(like.action_space),
            untrained=True,
            seed=seed,
            training=None,
        )
        task_names = [t.name for t in like.tasks]
    else:
        arch = get_preset(preset)
        if arms not in (1, 2):
            raise ConfigError(f"arms: expected 1 or 2, got {arms}")
        if camera is None:
            cameras: tuple[CameraSpec, ...] = (default_camera(),)
        elif isinstance(camera, CameraSpec):
            cameras = (camera,)
        else:
            cameras = tuple(camera)
        if not tasks:
            raise ConfigError("tasks: expected at least one task name")
        space = reference_action_space(arms)
        cfg = CheckpointConfig(
            architecture=arch,
            action_space=space,
            normalization=Normalization.from_limits(space),
            cameras=cameras,
            tasks=(),
            untrained=True,
            seed=seed,
        )
        task_names = list(tasks)
    if flow_steps is not None:
        arch = dataclasses.replace(arch, flow_steps=flow_steps)
    rng = np.random.default_rng(seed)
    task_table = rng.standard_normal((len(task_names), arch.task_dim)).astype(np.float32)
    task_table /= np.linalg.norm(task_table, axis=1, keepdims=True)
    rows = zip(task_names, task_table, strict=True)
    cfg = dataclasses.replace(
        cfg, architecture=arch, tasks=tuple(Task(t, tuple(float(x) for x in row)) for t, row in rows)
    )
    cfg.validate()
    torch.manual_seed(seed)
    nets = build_networks(cfg)
    out.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, cfg, nets)
    return out


def save_checkpoint(out: Path, cfg: CheckpointConfig, nets: EdgeNetworks) -> None:
    from safetensors.torch import save_file

    (out / CONFIG_FILE).write_text(json.dumps(cfg.to_dict(), indent=1) + "\n")
    save_file(nets.state_dict(), str(out / WEIGHTS_FILE), metadata={"format": "harmowam-edge"})


def load_config(path: str | Path) -> CheckpointConfig:
    path = Path(path)
    cfg_path = path / CONFIG_FILE
    if not path.is_dir():
        raise CheckpointError(f"{path}: no checkpoint directory here (expected {CONFIG_FILE} + {WEIGHTS_FILE})")
    if not cfg_path.is_file():
        raise CheckpointError(f"{cfg_path}: missing (a checkpoint holds {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        raw = json.loads(cfg_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointError(f"{cfg_path}: not valid JSON ({e})") from None
    return CheckpointConfig.from_dict(raw, source=str(cfg_path))


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate: config schema, weight keys and shapes against the config, finite values."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    cfg = load_config(path)
    w_path = path / WEIGHTS_FILE
    if not w_path.is_file():
        raise CheckpointError(f"{w_path}: missing (a checkpoint holds {CONFIG_FILE} and {WEIGHTS_FILE})")
    try:
        tensors = load_file(str(w_path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{w_path}: not a readable safetensors file, truncated or corrupt? ({e})") from None
    nets = build_networks(cfg)
    expected = nets.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise CheckpointError(
            f"{w_path}: missing tensor {missing[0]!r}{more}; the weights do not match "
            f"{CONFIG_FILE} (preset {cfg.preset!r}, {cfg.action_dim} action dims, {len(cfg.cameras)} camera(s))"
        )
    if unexpected:
        more = f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else ""
        raise CheckpointError(
            f"{w_path}: unexpected tensor {unexpected[0]!r}{more}; the weights do not match {CONFIG_FILE} "
            f"(preset {cfg.preset!r})"
        )
    for key, ref in expected.items():
        t = tensors[key]
        if tuple(t.shape) != tuple(ref.shape):
            raise CheckpointError(
                f"{w_path}: {key}: expected shape {list(ref.shape)} (from {CONFIG_FILE}), got {list(t.shape)}"
            )
        if not t.is_floating_point():
            raise CheckpointError(f"{w_path}: {key}: expected a floating-point tensor, got {t.dtype}")
        bad = int((~torch.isfinite(t)).sum())
        if bad:
            raise CheckpointError(f"{w_path}: {key}: {bad} non-finite value(s) (NaN/Inf) of {t.numel()}")
    nets.load_state_dict(tensors)
    return Checkpoint(path=path, config=cfg, networks=nets, sha256=checkpoint_sha256(path))


def param_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def describe_checkpoint(ck: Checkpoint) -> str:
    cfg = ck.config
    total = sum(param_count(m) for m in ck.networks.modules().values())
    cams = ", ".join(f"{c.name}: {c.describe()}" for c in cfg.cameras)
    if cfg.untrained:
        state = "UNTRAINED (seeded random weights, for tests and demos)"
    elif cfg.training:
        t = cfg.training
        state = f"trained ({t.get('steps', '?')} steps on {t.get('episodes', '?')} episodes, `training` block)"
    else:
        state = "trained"
    return (
        f"{ck.path}: preset {cfg.preset}, {total / 1e6:.2f} M parameters, "
        f"{len(cfg.action_space.arms)} arm(s), {cfg.action_dim} action dims, cameras [{cams}], "
        f"tasks {[t.name for t in cfg.tasks]}, {state}"
    )


__all__ = [
    "CONFIG_FILE",
    "WEIGHTS_FILE",
    "Checkpoint",
    "EdgeNetworks",
    "build_networks",
    "checkpoint_sha256",
    "describe_checkpoint",
    "init_checkpoint",
    "load_checkpoint",
    "load_config",
    "param_count",
]

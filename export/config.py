"""Checkpoint configuration: architecture presets, normalisation statistics, cameras, tasks, action space.

Pure data with validation that names the offending key (`config.json: architecture.dim: expected ...`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from export.errors import ConfigError
from harmowam_edge.bundle.fields import FieldReader
from harmowam_edge.bundle.schema import ActionSpace, BundleSchemaError, CameraSpec, GateParams

CONFIG_FORMAT = "harmowam-edge-checkpoint"
CONFIG_VERSION = 1
CHUNK_SIZE = 12  # action steps per chunk, as published
ACTION_RATE_HZ = 48.0


MAX_KEYPOINTS = 64


@dataclass(frozen=True)
class Architecture:
    """Sizes of the four networks. Token count from the image stem dominates the world model's cost."""

    preset: str
    image_height: int  # model input after crop/resize
    image_width: int
    patch: int
    dim: int  # world-model width
    depth: int  # encoder blocks
    heads: int
    latent_tokens: int  # M: current latent tokens handed to the experts
    horizon: int  # H: predicted latent steps
    dynamics_depth: int
    expert_dim: int
    expert_heads: int
    predictive_depth: int
    reactive_depth: int
    gate_hidden: int
    flow_steps: int  # N Euler steps of the predictive expert
    task_dim: int  # E
    mlp_ratio: float = 4.0
    max_depth_m: float = 3.0  # depth beyond this saturates
    chunk_size: int = CHUNK_SIZE  # K
    action_rate_hz: float = ACTION_RATE_HZ
    horizon_dt_s: float = 0.1  # time between predicted latent steps (training targets: frames this far apart)
    # The experts predict each setpoint as an offset from the measured joint state (normalised by the offsets'
    # statistics) rather than as an absolute position: holding the pose is the zero output, and the networks
    # spend their precision on the motion. The graphs still output absolute setpoints.
    relative_actions: bool = False
    # Spatial-softmax keypoints per camera (0: none), read from a conv map at half the model's input resolution
    # beside the patch embedding. At 128x96 the target cube lies inside one 16 px patch, and the policies here
    # missed it by a few pixels sideways; a keypoint's expected coordinates are precise to a fraction of a pixel.
    keypoints: int = 0

    def validate(self, where: str = "architecture") -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name == "relative_actions":
                if not isinstance(v, bool):
                    raise ConfigError(f"{where}.relative_actions: expected true or false, got {v!r}")
            elif f.name == "preset":
                if not isinstance(v, str) or not v:
                    raise ConfigError(f"{where}.preset: expected a non-empty string, got {v!r}")
            elif f.name in _FLOAT_FIELDS:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                    raise ConfigError(f"{where}.{f.name}: expected a number > 0, got {v!r}")
            elif f.name == "keypoints":
                if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= MAX_KEYPOINTS:
                    raise ConfigError(f"{where}.keypoints: expected an integer in 0..{MAX_KEYPOINTS}, got {v!r}")
            elif isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"{where}.{f.name}: expected an integer >= 1, got {v!r}")
        if self.image_height % self.patch or self.image_width % self.patch:
            raise ConfigError(
                f"{where}.patch: image {self.image_height}x{self.image_width} is not a multiple of patch {self.patch}"
            )
        if self.dim % self.heads:
            raise ConfigError(f"{where}.heads: dim {self.dim} is not a multiple of heads {self.heads}")
        if self.expert_dim % self.expert_heads:
            raise ConfigError(
                f"{where}.expert_heads: expert_dim {self.expert_dim} is not a multiple of {self.expert_heads}"
            )
        if self.expert_dim % 2:
            raise ConfigError(f"{where}.expert_dim: expected an even width (time embedding), got {self.expert_dim}")

    @property
    def image_tokens(self) -> int:
        return (self.image_height // self.patch) * (self.image_width // self.patch)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Any, where: str = "architecture") -> Architecture:
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: expected an object, got {d!r}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key (known: {', '.join(sorted(known))})")
        required = [f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING]
        for k in required:
            if k not in d:
                raise ConfigError(f"{where}.{k}: missing")
        arch = cls(**dict(d))
        arch.validate(where)
        return arch


_FLOAT_FIELDS = ("mlp_ratio", "max_depth_m", "action_rate_hz", "horizon_dt_s")

# Student sizes for Jetsons of different sizes, and the distillation teacher. `small` is sized so its predictive
# path (world model + gate + every flow step) fits 20.8 ms (48 Hz) in ONNX Runtime FP32 on 2 CPU cores.
PRESETS: dict[str, Architecture] = {
    "nano": Architecture(
        preset="nano",
        image_height=48,
        image_width=64,
        patch=16,
        dim=64,
        depth=2,
        heads=2,
        latent_tokens=4,
        horizon=2,
        dynamics_depth=1,
        expert_dim=64,
        expert_heads=2,
        predictive_depth=2,
        reactive_depth=1,
        gate_hidden=64,
        flow_steps=4,
        task_dim=32,
        mlp_ratio=2.0,
    ),
    "small": Architecture(
        preset="small",
        image_height=96,
        image_width=128,
        patch=16,  # 6 x 8 = 48 image tokens: the world model's cost is set by this count
        dim=256,
        depth=2,
        heads=4,
        latent_tokens=8,
        horizon=4,
        dynamics_depth=2,
        expert_dim=384,
        expert_heads=6,
        predictive_depth=4,
        reactive_depth=1,
        gate_hidden=1024,
        flow_steps=5,
        task_dim=128,
    ),
    "base": Architecture(
        preset="base",
        image_height=144,
        image_width=192,
        patch=16,
        dim=384,
        depth=6,
        heads=6,
        latent_tokens=16,
        horizon=4,
        dynamics_depth=2,
        expert_dim=512,
        expert_heads=8,
        predictive_depth=4,
        reactive_depth=2,
        gate_hidden=512,
        flow_steps=8,
        task_dim=256,
    ),
    "reference": Architecture(
        preset="reference",
        image_height=192,
        image_width=256,
        patch=16,
        dim=512,
        depth=8,
        heads=8,
        latent_tokens=16,
        horizon=8,
        dynamics_depth=4,
        expert_dim=512,
        expert_heads=8,
        predictive_depth=6,
        reactive_depth=3,
        gate_hidden=512,
        flow_steps=10,
        task_dim=256,
    ),
}


def preset(name: str) -> Architecture:
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"preset: expected one of {', '.join(PRESETS)}, got {name!r}") from None


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Normalization:
    """Statistics of the training data, baked into the graphs: proprio and action vectors, per dimension."""

    proprio_mean: tuple[float, ...]
    proprio_std: tuple[float, ...]
    action_mean: tuple[float, ...]
    action_std: tuple[float, ...]
    image_mean: tuple[float, ...] = IMAGENET_MEAN
    image_std: tuple[float, ...] = IMAGENET_STD

    @classmethod
    def from_limits(cls, space: ActionSpace) -> Normalization:
        """Stand-in statistics for an untrained checkpoint: mid-range mean, a quarter of the range as std."""
        mean = tuple((d.lower + d.upper) / 2 for d in space.dims)
        std = tuple(d.range / 4 for d in space.dims)
        return cls(proprio_mean=mean, proprio_std=std, action_mean=mean, action_std=std)

    def validate(self, action_dim: int, where: str = "normalization") -> None:
        for name, n in (
            ("proprio_mean", action_dim),
            ("proprio_std", action_dim),
            ("action_mean", action_dim),
            ("action_std", action_dim),
            ("image_mean", 3),
            ("image_std", 3),
        ):
            v = getattr(self, name)
            if len(v) != n:
                raise ConfigError(f"{where}.{name}: expected {n} values (the action dimension), got {len(v)}")
            if not all(math.isfinite(x) for x in v):
                raise ConfigError(f"{where}.{name}: expected finite numbers, got {list(v)}")
            if name.endswith("std") and not all(x > 0 for x in v):
                raise ConfigError(f"{where}.{name}: expected numbers > 0, got {list(v)}")

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Any, action_dim: int, where: str = "normalization") -> Normalization:
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: expected an object, got {d!r}")
        values: dict[str, tuple[float, ...]] = {}
        for f in fields(cls):
            if f.name not in d:
                if f.name.startswith("image"):
                    continue
                raise ConfigError(f"{where}.{f.name}: missing")
            v = d[f.name]
            if not isinstance(v, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                raise ConfigError(f"{where}.{f.name}: expected a list of numbers, got {v!r}")
            values[f.name] = tuple(float(x) for x in v)
        norm = cls(**values)
        norm.validate(action_dim, where)
        return norm


@dataclass(frozen=True)
class Task:
    name: str
    embedding: tuple[float, ...]


# The simulated rig's task names (harmowam_edge.sim.tasks.TASK_NAMES; a sim test keeps the two equal).
DEFAULT_TASKS = tuple(
    f"{k}_{o}"
    for k in ("pick", "pick_and_place", "reach")
    for o in ("red_cube", "green_cube", "blue_cube", "yellow_cylinder")
)


def default_camera() -> CameraSpec:
    """One RealSense D435 color stream, 640x480 at 30 fps."""
    return CameraSpec(name="cam0", width=640, height=480, fps=30)


@dataclass(frozen=True)
class CheckpointConfig:
    architecture: Architecture
    action_space: ActionSpace
    normalization: Normalization
    cameras: tuple[CameraSpec, ...]
    tasks: tuple[Task, ...]
    gate: GateParams = field(default_factory=GateParams)
    untrained: bool = False
    seed: int | None = None
    # What `harmowam-edge train` did (data digests, steps, seed, losses, wall time, device); None if never trained.
    training: Mapping[str, Any] | None = None

    @property
    def action_dim(self) -> int:
        return self.action_space.size

    @property
    def preset(self) -> str:
        return self.architecture.preset

    def validate(self) -> None:
        self.architecture.validate()
        self.normalization.validate(self.action_dim)
        if not self.cameras:
            raise ConfigError("cameras: expected at least one camera")
        if len({c.name for c in self.cameras}) != len(self.cameras):
            raise ConfigError(f"cameras: expected unique names, got {[c.name for c in self.cameras]}")
        for i, c in enumerate(self.cameras):
            # The crop must cover the model's input without upsampling by more than it must.
            if c.width < 8 or c.height < 8:
                raise ConfigError(f"cameras[{i}]: expected at least 8x8 pixels, got {c.width}x{c.height}")
        if not self.tasks:
            raise ConfigError("tasks: expected at least one task")
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ConfigError(f"tasks: expected unique names, got {names}")
        for i, t in enumerate(self.tasks):
            if len(t.embedding) != self.architecture.task_dim:
                raise ConfigError(
                    f"tasks[{i}].embedding: expected {self.architecture.task_dim} values "
                    f"(architecture.task_dim), got {len(t.embedding)}"
                )
            if not all(math.isfinite(x) for x in t.embedding):
                raise ConfigError(f"tasks[{i}].embedding: expected finite numbers")

    def to_dict(self) -> dict[str, Any]:
        training = {} if self.training is None else {"training": dict(self.training)}
        return {
            "format": CONFIG_FORMAT,
            "version": CONFIG_VERSION,
            "untrained": self.untrained,
            "seed": self.seed,
            "architecture": self.architecture.to_dict(),
            "action_space": self.action_space.to_dict(),
            "normalization": self.normalization.to_dict(),
            "cameras": [c.to_dict() for c in self.cameras],
            "tasks": [{"name": t.name, "embedding": list(t.embedding)} for t in self.tasks],
            "gate": self.gate.to_dict(),
            **training,
        }

    @classmethod
    def from_dict(cls, d: Any, source: str = "config.json") -> CheckpointConfig:
        try:
            return cls._from_dict(d, source)
        except ConfigError as e:
            raise ConfigError(f"{source}: {e}") from None
        except BundleSchemaError as e:
            # The schema's readers already name `source` and the field path.
            raise ConfigError(str(e)) from None

    @classmethod
    def _from_dict(cls, d: Any, source: str) -> CheckpointConfig:
        if not isinstance(d, Mapping):
            raise ConfigError(f"(top level): expected an object, got {type(d).__name__}")
        if d.get("format") != CONFIG_FORMAT:
            raise ConfigError(f"format: expected {CONFIG_FORMAT!r}, got {d.get('format')!r}")
        if d.get("version") != CONFIG_VERSION:
            raise ConfigError(f"version: this export reads version {CONFIG_VERSION}, got {d.get('version')!r}")
        for key in ("architecture", "action_space", "normalization", "cameras", "tasks"):
            if key not in d:
                raise ConfigError(f"{key}: missing")
        arch = Architecture.from_dict(d["architecture"])
        reader = FieldReader(source, BundleSchemaError)
        space = ActionSpace.from_dict(reader, d["action_space"], "action_space")
        norm = Normalization.from_dict(d["normalization"], space.size)
        cams_raw = d["cameras"]
        if not isinstance(cams_raw, list) or not cams_raw:
            raise ConfigError(f"cameras: expected a non-empty list, got {cams_raw!r}")
        cameras = tuple(CameraSpec.from_dict(reader, c, f"cameras[{i}]") for i, c in enumerate(cams_raw))
        tasks_raw = d["tasks"]
        if not isinstance(tasks_raw, list) or not tasks_raw:
            raise ConfigError(f"tasks: expected a non-empty list, got {tasks_raw!r}")
        tasks = []
        for i, t in enumerate(tasks_raw):
            if not isinstance(t, Mapping) or not isinstance(t.get("name"), str) or not t["name"]:
                raise ConfigError(f"tasks[{i}].name: expected a non-empty string")
            emb = t.get("embedding")
            if not isinstance(emb, list) or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) for x in emb
            ):
                raise ConfigError(f"tasks[{i}].embedding: expected a list of numbers")
            tasks.append(Task(t["name"], tuple(float(x) for x in emb)))
        gate = GateParams.from_dict(reader, d["gate"], "gate") if "gate" in d else GateParams()
        untrained = d.get("untrained", False)
        if not isinstance(untrained, bool):
            raise ConfigError(f"untrained: expected true or false, got {untrained!r}")
        seed = d.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"seed: expected an integer or null, got {seed!r}")
        training = d.get("training")
        if training is not None and not isinstance(training, Mapping):
            raise ConfigError(f"training: expected an object, got {training!r}")
        if training is not None and untrained:
            raise ConfigError("training: a trained checkpoint cannot also say untrained: true")
        cfg = cls(
            architecture=arch,
            action_space=space,
            normalization=norm,
            cameras=cameras,
            tasks=tuple(tasks),
            gate=gate,
            untrained=untrained,
            seed=seed,
            training=training,
        )
        cfg.validate()
        return cfg


def parse_camera(text: str, name: str = "cam0", depth: bool = False) -> CameraSpec:
    """`640x480@30` (fps optional, default 30) -> CameraSpec."""
    try:
        size, _, fps = text.partition("@")
        w, h = (int(v) for v in size.lower().split("x"))
        rate = int(fps) if fps else 30
    except ValueError:
        raise ConfigError(f"camera: expected WIDTHxHEIGHT[@FPS] such as 640x480@30, got {text!r}") from None
    if w < 8 or h < 8 or rate < 1:
        raise ConfigError(f"camera: expected at least 8x8 pixels and fps >= 1, got {text!r}")
    return CameraSpec(name=name, width=w, height=h, fps=rate, streams=("color", "depth") if depth else ("color",))

"""Deploy-bundle manifest: the contract between `export` (the writer) and the runtime (the reader).

Pure data and JSON (de)serialisation, no I/O beyond hashing a file. Every parse error names the file and the
field path (``manifest.json: policy.chunk_size: expected an integer >= 1, got -1``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

from harmowam_edge.bundle.fields import FieldReader
from harmowam_edge.bundle.fields import join as _join

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"
ENGINES_DIR = "engines"
ENGINE_SET_NAME = "engines.json"

Precision = Literal["fp32", "fp16", "int8"]
PRECISIONS: tuple[Precision, ...] = ("fp32", "fp16", "int8")
DTYPES = ("float32", "float16", "uint8", "uint16", "int32", "int64", "bool")

# Network names. The predictive expert ships two graphs: the unrolled N-step graph and a one-step graph that the
# runtime loops; `PolicyParams.flow_mode` says which one the policy uses by default.
WORLD_MODEL = "world_model"
GATE = "gate"
REACTIVE_EXPERT = "reactive_expert"
PREDICTIVE_EXPERT = "predictive_expert"
PREDICTIVE_EXPERT_STEP = "predictive_expert_step"
NETWORK_NAMES = (WORLD_MODEL, GATE, REACTIVE_EXPERT, PREDICTIVE_EXPERT, PREDICTIVE_EXPERT_STEP)
REQUIRED_NETWORKS = (WORLD_MODEL, GATE, REACTIVE_EXPERT, PREDICTIVE_EXPERT)

# Tensor names at the network boundaries (raw units: uint8 RGB frames, radians, metres). The runtime wires
# graphs together by these names: every expert input must be an observation input or a world-model output.
IMAGE_INPUT = "image_{index}"  # uint8 [1, H, W, 3], RGB, one per camera in manifest order
DEPTH_INPUT = "depth_{index}"  # uint16 [1, H, W], z16 units (CameraSpec.depth_units_m), aligned to color
JOINT_POS = "joint_pos"  # float32 [1, A]: the action-space vector measured now (radians, gripper in metres)
TASK_EMBEDDING = "task_embedding"  # float32 [1, E]: a row of the bundle's task table
LATENTS = "latents"  # world model out: current latent tokens
FUTURE_LATENTS = "future_latents"  # world model out: predicted latent evolution over `horizon` steps
CONTEXT = "context"  # world model out: pooled context vector
GATE_WEIGHTS = "gate_weights"  # gate out: float32 [1, K] in [0, 1], the predictive expert's share per step
ACTIONS = "actions"  # experts out: float32 [1, K, A] absolute targets in raw units
NOISE = "noise"  # unrolled predictive expert in: float32 [1, K, A] standard normal (seeded by the runtime)
FLOW_STATE = "x_t"  # step graph in: float32 [1, K, A] flow state (normalised space); starts as the noise
FLOW_TIME = "t"  # step graph in: float32 [1]
FLOW_DT = "dt"  # step graph in: float32 [1]
FLOW_NEXT = "x_next"  # step graph out: float32 [1, K, A], the next flow state (ACTIONS is its denormalised copy)


class BundleSchemaError(ValueError):
    """A manifest or engine set that does not follow the schema; the message names the file and field."""


def image_input(index: int) -> str:
    return IMAGE_INPUT.format(index=index)


def depth_input(index: int) -> str:
    return DEPTH_INPUT.format(index=index)


_SHA256 = r"[0-9a-f]{64}"
_REL_PATH = r"[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*"
_NAME = r"[A-Za-z0-9_.\-]+"


# --------------------------------------------------------------------------------------------------------------
# Graph I/O


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output. Shapes are static (batch 1): TensorRT and CUDA graphs want fixed shapes."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    @classmethod
    def from_dict(cls, r: FieldReader, d: Any, path: str) -> TensorSpec:
        d = r.obj(d, path)
        shape = r.list_(d, "shape", path, nonempty=False)
        for i, s in enumerate(shape):
            if isinstance(s, bool) or not isinstance(s, int) or s < 1:
                raise r.fail(_join(_join(path, "shape"), i), "a positive integer dimension", s)
        return cls(name=r.str_(d, "name", path), shape=tuple(shape), dtype=r.choice(d, "dtype", path, DTYPES))


@dataclass(frozen=True)
class GraphSpec:
    """One ONNX file of a network at one precision."""

    file: str
    sha256: str
    precision: Precision
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def input(self, name: str) -> TensorSpec:
        for t in self.inputs:
            if t.name == name:
                return t
        raise KeyError(name)

    def output(self, name: str) -> TensorSpec:
        for t in self.outputs:
            if t.name == name:
                return t
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "precision": self.precision,
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
        }

    @classmethod
    def from_dict(cls, r: FieldReader, d: Any, path: str) -> GraphSpec:
        d = r.obj(d, path)
        inputs = tuple(
            TensorSpec.from_dict(r, t, _join(_join(path, "inputs"), i))
            for i, t in enumerate(r.list_(d, "inputs", path))
        )
        outputs = tuple(
            TensorSpec.from_dict(r, t, _join(_join(path, "outputs"), i))
            for i, t in enumerate(r.list_(d, "outputs", path))
        )
        for kind, tensors in (("inputs", inputs), ("outputs", outputs)):
            names = [t.name for t in tensors]
            if len(set(names)) != len(names):
                raise r.fail(_join(path, kind), "unique tensor names", names)
        return cls(
            file=r.str_(d, "file", path, _REL_PATH),
            sha256=r.str_(d, "sha256", path, _SHA256),
            precision=cast(Precision, r.choice(d, "precision", path, PRECISIONS)),
            inputs=inputs,
            outputs=outputs,
        )


@dataclass(frozen=True)
class NetworkSpec:
    """A network and its graphs, one per precision the bundle ships; `default_precision` is the one to run."""

    name: str
    graphs: dict[str, GraphSpec]
    default_precision: Precision
    params: int
    flops: int

    @property
    def default(self) -> GraphSpec:
        return self.graphs[self.default_precision]

    def to_dict(self) -> dict[str, Any]:
        return {
            "default_precision": self.default_precision,
            "params": self.params,
            "flops": self.flops,
            "graphs": {p: g.to_dict() for p, g in self.graphs.items()},
        }

    @classmethod
    def from_dict(cls, r: FieldReader, name: str, d: Any, path: str) -> NetworkSpec:
        d = r.obj(d, path)
        graphs_raw = r.obj(r.get(d, "graphs", path), _join(path, "graphs"))
        if not graphs_raw:
            raise r.fail(_join(path, "graphs"), "at least one graph", {})
        graphs: dict[str, GraphSpec] = {}
        for precision, g in graphs_raw.items():
            gpath = _join(_join(path, "graphs"), precision)
            if precision not in PRECISIONS:
                raise r.fail(gpath, "a precision key (" + ", ".join(PRECISIONS) + ")", precision)
            spec = GraphSpec.from_dict(r, g, gpath)
            if spec.precision != precision:
                raise r.fail(_join(gpath, "precision"), f"{precision!r} (its key)", spec.precision)
            graphs[precision] = spec
        default = r.choice(d, "default_precision", path, tuple(graphs))
        return cls(
            name=name,
            graphs=graphs,
            default_precision=cast(Precision, default),
            params=r.int_(d, "params", path),
            flops=r.int_(d, "flops", path),
        )


# --------------------------------------------------------------------------------------------------------------
# Policy, action space, cameras, tasks, provenance


@dataclass(frozen=True)
class GateParams:
    """Gate thresholds on the predictive expert's per-step weight w in [0, 1].

    max(w) < low over the whole chunk: only the reactive expert runs. min(w) > high: only the predictive expert
    runs. Otherwise both run and a_k = w_k * predictive_k + (1 - w_k) * reactive_k. `hysteresis` widens the
    thresholds against the previous decision so the choice does not chatter.
    """

    low: float = 0.05
    high: float = 0.95
    hysteresis: float = 0.03

    def __post_init__(self) -> None:
        if not (0.0 <= self.low < self.high <= 1.0):
            raise BundleSchemaError(f"policy.gate: expected 0 <= low < high <= 1, got low={self.low}, high={self.high}")
        if not (0.0 <= self.hysteresis < (self.high - self.low) / 2):
            raise BundleSchemaError(
                f"policy.gate.hysteresis: expected 0 <= hysteresis < (high - low) / 2, got {self.hysteresis}"
            )

    def to_dict(self) -> dict[str, Any]:
        return {"low": self.low, "high": self.high, "hysteresis": self.hysteresis}

    @classmethod
    def from_dict(cls, r: FieldReader, d: Any, path: str) -> GateParams:
        d = r.obj(d, path)
        try:
            return cls(
                low=r.float_(d, "low", path, minimum=0.0),
                high=r.float_(d, "high", path, minimum=0.0),
                hysteresis=r.float_(d, "hysteresis", path, minimum=0.0),
            )
        except BundleSchemaError as e:
            if str(e).startswith(r.source):
                raise
            raise BundleSchemaError(f"{r.source}: {e}") from None


FlowMode = Literal["unrolled", "step"]


@dataclass(frozen=True)
class PolicyParams:
    chunk_size: int  # K action steps per chunk
    action_dim: int  # A
    action_rate_hz: float  # spacing of the K steps
    flow_steps: int  # N Euler steps of the predictive expert
    flow_mode: FlowMode  # which predictive graph the runtime runs by default (the faster, measured at export)
    horizon: int  # H predicted latent steps
    gate: GateParams = field(default_factory=GateParams)

    def to_dict(self) -> dict[str, Any]:
        return {
            "chunk_size": self.chunk_size,
            "action_dim": self.action_dim,
            "action_rate_hz": self.action_rate_hz,
            "flow_steps": self.flow_steps,
            "flow_mode": self.flow_mode,
            "horizon": self.horizon,
            "gate": self.gate.to_dict(),
        }

    @classmethod
    def from_dict(cls, r: FieldReader, d: Any, path: str) -> PolicyParams:
        d = r.obj(d, path)
        return cls(
            chunk_size=r.int_(d, "chunk_size", path, minimum=1),
            action_dim=r.int_(d, "action_dim", path, minimum=1),
            action_rate_hz=r.float_(d, "action_rate_hz", path, positive=True),
            flow_steps=r.int_(d, "flow_steps", path, minimum=1),
            flow_mode=cast(FlowMode, r.choice(d, "flow_mode", path, ("unrolled", "step"))),
            horizon=r.int_(d, "horizon", path, minimum=1),
            gate=GateParams.from_dict(r, r.get(d, "gate", path), _join(path, "gate")),
        )


JointKind = Literal["revolute", "gripper"]


@dataclass(frozen=True)
class JointSpec:
    """One dimension of the action vector. Revolute joints in radians; a gripper is its opening in metres."""

    name: str
    kind: JointKind
    unit: str
    lower: float
    upper: float
    max_velocity: float  # unit/s
    max_acceleration: float  # unit/s^2

    def __post_init__(self) -> None:
        if not self.lower < self.upper:
            raise BundleSchemaError(f"joint {self.name}: expected lower < upper, got {self.lower} >= {self.upper}")

    @property
    def range(self) -> float:
        return self.upper - self.lower

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "unit": self.unit,
            "lower": self.lower,
            "upper": self.upper,
            "max_velocity": self.max_velocity,
            "max_acceleration": self.max_acceleration,
        }

    @classmethod
    def from_dict(cls, r: FieldReader, d: Any, path: str) -> JointSpec:
        d = r.obj(d, path)
        kind = cast(JointKind, r.choice(d, "kind", path, ("revolute", "gripper")))
        unit = r.choice(d, "unit", path, ("rad",) if kind == "revolute" else ("m",))
        lower = r.float_(d, "lower", path)
        upper = r.float_(d, "upper", path)
        if not lower < upper:
            raise r.fail(_join(path, "upper"), f"a number > lower ({lower})", upper)
        return cls(
            name=r.str_(d, "name", path, _NAME),
            kind=kind,
            unit=unit,
            lower=lower,
            upper=upper,
            max_velocity=r.float_(d, "max_velocity", path, positive=True),
            max_acceleration=r.float_(d, "max_acceleration", path, positive=True),
        )


@dataclass(frozen=True)
class ArmSpec:
    """One arm: its revolute joints in firmware order, then an optional gripper."""

    name: str
    joints: tuple[JointSpec, ...]
    gripper: JointSpec | None = None

    @property
    def dims(self) -> tuple[JointSpec, ...]:
        return (*self.joints, self.gripper) if self.gripper is not None else self.joints

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "joints": [j.to_dict() for j in self.joints],
            "gripper": self.gripper.to_dict() if self.gripper is not None else None,
        }

    @classmethod
    def from_dict(cls, r: FieldReader, d: Any, path: str) -> ArmSpec:
        d = r.obj(d, path)
        joints = tuple(
            JointSpec.from_dict(r, j, _join(_join(path, "joints"), i)) for i, j in enumerate(r.list_(d, "joints", path))
        )
        for i, j in enumerate(joints):
            if j.kind != "revolute":
                raise r.fail(_join(_join(_join(path, "joints"), i), "kind"), "'revolute'", j.kind)
        g = r.get(d, "gripper", path)
        gripper = None if g is None else JointSpec.from_dict(r, g, _join(path, "gripper"))
        if gripper is not None and gripper.kind != "gripper":
            raise r.fail(_join(_join(path, "gripper"), "kind"), "'gripper'", gripper.kind)
        return cls(name=r.str_(d, "name", path, _NAME), joints=joints, gripper=gripper)


@dataclass(frozen=True)
class ActionSpace:
    """The action vector is the concatenation over arms of (joints..., gripper)."""

    arms: tuple[ArmSpec, ...]

    @property
    def dims(self) -> tuple[JointSpec, ...]:
        return tuple(d for arm in self.arms for d in arm.dims)

    @property
    def size(self) -> int:
        return len(self.dims)

    def arm_slices(self) -> list[slice]:
        """Slice of the action vector that belongs to each arm, in arm order."""
        out, start = [], 0
        for arm in self.arms:
            n = len(arm.dims)
            out.append(slice(start, start + n))
            start += n
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"arms": [a.to_dict() for a in self.arms]}

    @classmethod
    def from_dict(cls, r: FieldReader, d: Any, path: str) -> ActionSpace:
        d = r.obj(d, path)
        arms = tuple(
            ArmSpec.from_dict(r, a, _join(_join(path, "arms"), i)) for i, a in enumerate(r.list_(d, "arms", path))
        )
        names = [dim.name for arm in arms for dim in arm.dims]
        if len(set(names)) != len(names):
            raise r.fail(_join(path, "arms"), "unique joint names across arms", names)
        return cls(arms=arms)


CameraStream = Literal["color", "depth"]


@dataclass(frozen=True)
class CameraSpec:
    """A camera the model expects: frames arrive at this resolution; depth (if any) is aligned to color."""

    name: str
    width: int
    height: int
    fps: int
    streams: tuple[str, ...] = ("color",)
    color_format: str = "rgb8"
    depth_units_m: float = 0.001  # metres per z16 unit the graph assumes (D4xx default)
    model: str = "D435"

    @property
    def has_depth(self) -> bool:
        return "depth" in self.streams

    def describe(self) -> str:
        return f"{'+'.join(self.streams)} {self.width}x{self.height} @ {self.fps} fps"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "streams": list(self.streams),
            "color_format": self.color_format,
            "depth_units_m": self.depth_units_m,
            "model": self.model,
        }

    @classmethod
    def from_dict(cls, r: FieldReader, d: Any, path: str) -> CameraSpec:
        d = r.obj(d, path)
        streams = r.list_(d, "streams", path)
        if (
            streams[0] != "color"
            or any(s not in ("color", "depth") for s in streams)
            or len(set(streams)) != len(streams)
        ):
            raise r.fail(_join(path, "streams"), '["color"] or ["color", "depth"]', streams)
        return cls(
            name=r.str_(d, "name", path, _NAME),
            width=r.int_(d, "width", path, minimum=1),
            height=r.int_(d, "height", path, minimum=1),
            fps=r.int_(d, "fps", path, minimum=1),
            streams=tuple(streams),
            color_format=r.choice(d, "color_format", path, ("rgb8",)),
            depth_units_m=r.float_(d, "depth_units_m", path, positive=True),
            model=r.str_(d, "model", path),
        )


@dataclass(frozen=True)
class TaskTable:
    """Task name -> row of a float32 [T, E] .npy table shipped in the bundle."""

    file: str
    sha256: str
    names: tuple[str, ...]
    dim: int

    def row(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError:
            raise KeyError(name) from None

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "sha256": self.sha256, "names": list(self.names), "dim": self.dim}

    @classmethod
    def from_dict(cls, r: FieldReader, d: Any, path: str) -> TaskTable:
        d = r.obj(d, path)
        names = r.list_(d, "names", path)
        for i, n in enumerate(names):
            if not isinstance(n, str) or not n:
                raise r.fail(_join(_join(path, "names"), i), "a non-empty task name", n)
        if len(set(names)) != len(names):
            raise r.fail(_join(path, "names"), "unique task names", names)
        return cls(
            file=r.str_(d, "file", path, _REL_PATH),
            sha256=r.str_(d, "sha256", path, _SHA256),
            names=tuple(names),
            dim=r.int_(d, "dim", path, minimum=1),
        )


@dataclass(frozen=True)
class Provenance:
    checkpoint_sha256: str
    checkpoint_name: str
    preset: str
    created_utc: str
    untrained: bool
    tools: dict[str, str] = field(default_factory=dict)  # package -> version (torch, onnx, onnxruntime, ...)
    reports: dict[str, str] = field(default_factory=dict)  # report name -> relative file (parity, quantization)
    # What the checkpoint was trained on, where it says: steps, tasks, and the demonstrations' layout seeds
    # (`seed_ranges`, [[lo, hi), ...]), which `sim eval` refuses so that evaluation never reuses a training layout.
    training: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "checkpoint_sha256": self.checkpoint_sha256,
            "checkpoint_name": self.checkpoint_name,
            "preset": self.preset,
            "created_utc": self.created_utc,
            "untrained": self.untrained,
            "tools": dict(self.tools),
            "reports": dict(self.reports),
        }
        if self.training:
            d["training"] = dict(self.training)
        return d

    @classmethod
    def from_dict(cls, r: FieldReader, d: Any, path: str) -> Provenance:
        d = r.obj(d, path)
        return cls(
            checkpoint_sha256=r.str_(d, "checkpoint_sha256", path, _SHA256),
            checkpoint_name=r.str_(d, "checkpoint_name", path),
            preset=r.str_(d, "preset", path),
            created_utc=r.str_(d, "created_utc", path),
            untrained=r.bool_(d, "untrained", path),
            tools=r.str_map(d, "tools", path),
            reports=r.str_map(d, "reports", path),
            training=_training_summary(r, d, path),
        )


def _training_summary(r: FieldReader, d: Mapping[str, Any], path: str) -> dict[str, Any]:
    if "training" not in d:
        return {}
    t = dict(r.obj(d["training"], f"{path}.training"))
    ranges = t.get("seed_ranges", [])
    if not isinstance(ranges, list) or not all(
        isinstance(x, list)
        and len(x) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in x)
        and x[0] < x[1]
        for x in ranges
    ):
        raise r.fail(f"{path}.training.seed_ranges", "a list of [lo, hi) integer pairs", ranges)
    return t


# --------------------------------------------------------------------------------------------------------------
# The manifest


@dataclass(frozen=True)
class Manifest:
    precision: Precision  # the bundle's precision profile (each network's default graph may differ, e.g. int8
    # bundles keep the gate and predictive expert in fp16)
    networks: dict[str, NetworkSpec]
    policy: PolicyParams
    action_space: ActionSpace
    cameras: tuple[CameraSpec, ...]
    tasks: TaskTable
    provenance: Provenance
    files: dict[str, str]  # every file of the bundle but the manifest (and engines/) -> sha256
    schema_version: int = SCHEMA_VERSION

    def network(self, name: str) -> NetworkSpec:
        try:
            return self.networks[name]
        except KeyError:
            raise BundleSchemaError(
                f"{MANIFEST_NAME}: networks: no network {name!r} (have: {', '.join(self.networks)})"
            ) from None

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "precision": self.precision,
            "policy": self.policy.to_dict(),
            "action_space": self.action_space.to_dict(),
            "cameras": [c.to_dict() for c in self.cameras],
            "tasks": self.tasks.to_dict(),
            "networks": {n: s.to_dict() for n, s in self.networks.items()},
            "provenance": self.provenance.to_dict(),
            "files": dict(sorted(self.files.items())),
        }

    @classmethod
    def from_dict(cls, d: Any, source: str = MANIFEST_NAME) -> Manifest:
        r = FieldReader(source, BundleSchemaError)
        d = r.obj(d, "(top level)")
        version = r.int_(d, "schema_version", "", minimum=1)
        if version != SCHEMA_VERSION:
            raise BundleSchemaError(
                f"{source}: schema_version: this runtime reads schema {SCHEMA_VERSION}, the bundle has {version}; "
                f"re-export the bundle with a matching harmowam-edge"
            )
        nets_raw = r.obj(r.get(d, "networks", ""), "networks")
        networks = {n: NetworkSpec.from_dict(r, n, v, _join("networks", n)) for n, v in nets_raw.items()}
        for n in networks:
            if n not in NETWORK_NAMES:
                raise r.fail(_join("networks", n), "a network name (" + ", ".join(NETWORK_NAMES) + ")", n)
        for n in REQUIRED_NETWORKS:
            if n not in networks:
                raise BundleSchemaError(f"{source}: networks.{n}: missing")
        policy = PolicyParams.from_dict(r, r.get(d, "policy", ""), "policy")
        if policy.flow_mode == "step" and PREDICTIVE_EXPERT_STEP not in networks:
            raise BundleSchemaError(
                f"{source}: policy.flow_mode: 'step' needs networks.{PREDICTIVE_EXPERT_STEP}, which is missing"
            )
        action_space = ActionSpace.from_dict(r, r.get(d, "action_space", ""), "action_space")
        if action_space.size != policy.action_dim:
            raise r.fail("policy.action_dim", f"the action space's size ({action_space.size})", policy.action_dim)
        cameras = tuple(
            CameraSpec.from_dict(r, c, _join("cameras", i)) for i, c in enumerate(r.list_(d, "cameras", ""))
        )
        if len({c.name for c in cameras}) != len(cameras):
            raise r.fail("cameras", "unique camera names", [c.name for c in cameras])
        files = r.str_map(d, "files", "")
        for f, h in files.items():
            if not re.fullmatch(_REL_PATH, f) or ".." in f.split("/"):
                raise r.fail("files", "relative paths inside the bundle", f)
            if not re.fullmatch(_SHA256, h):
                raise r.fail(_join("files", f), "a sha256 hex digest", h)
        return cls(
            schema_version=version,
            precision=cast(Precision, r.choice(d, "precision", "", PRECISIONS)),
            networks=networks,
            policy=policy,
            action_space=action_space,
            cameras=cameras,
            tasks=TaskTable.from_dict(r, r.get(d, "tasks", ""), "tasks"),
            provenance=Provenance.from_dict(r, r.get(d, "provenance", ""), "provenance"),
            files=files,
        )


# --------------------------------------------------------------------------------------------------------------
# TensorRT engine sets: built on the target after export, so they live beside the manifest, not in it.


@dataclass(frozen=True)
class EnginePlan:
    file: str  # relative to the bundle root: engines/<folder>/<network>.plan
    sha256: str
    onnx_file: str  # the graph it was built from
    onnx_sha256: str  # a re-exported graph invalidates the plan
    precision: Precision

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "sha256": self.sha256,
            "onnx_file": self.onnx_file,
            "onnx_sha256": self.onnx_sha256,
            "precision": self.precision,
        }

    @classmethod
    def from_dict(cls, r: FieldReader, d: Any, path: str) -> EnginePlan:
        d = r.obj(d, path)
        return cls(
            file=r.str_(d, "file", path, _REL_PATH),
            sha256=r.str_(d, "sha256", path, _SHA256),
            onnx_file=r.str_(d, "onnx_file", path, _REL_PATH),
            onnx_sha256=r.str_(d, "onnx_sha256", path, _SHA256),
            precision=cast(Precision, r.choice(d, "precision", path, PRECISIONS)),
        )


@dataclass(frozen=True)
class EngineSet:
    """engines/<trt-version>_<device>/engines.json: the plans built for one TensorRT version and one device."""

    trt_version: str
    device: str  # e.g. "Orin" / "NVIDIA H100 80GB HBM3"
    compute_capability: str  # e.g. "8.7"
    built_utc: str
    plans: dict[str, EnginePlan]

    @property
    def folder(self) -> str:
        return engine_folder_name(self.trt_version, self.device)

    def to_dict(self) -> dict[str, Any]:
        return {
            "trt_version": self.trt_version,
            "device": self.device,
            "compute_capability": self.compute_capability,
            "built_utc": self.built_utc,
            "plans": {n: p.to_dict() for n, p in self.plans.items()},
        }

    @classmethod
    def from_dict(cls, d: Any, source: str) -> EngineSet:
        r = FieldReader(source, BundleSchemaError)
        d = r.obj(d, "(top level)")
        plans_raw = r.obj(r.get(d, "plans", ""), "plans")
        return cls(
            trt_version=r.str_(d, "trt_version", ""),
            device=r.str_(d, "device", ""),
            compute_capability=r.str_(d, "compute_capability", ""),
            built_utc=r.str_(d, "built_utc", ""),
            plans={n: EnginePlan.from_dict(r, p, _join("plans", n)) for n, p in plans_raw.items()},
        )


def engine_folder_name(trt_version: str, device: str) -> str:
    """`10.3.0_orin`: TensorRT version and a filesystem-safe device slug."""
    slug = re.sub(r"[^a-z0-9]+", "-", device.lower()).strip("-") or "unknown"
    return f"{trt_version}_{slug}"


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------------------
# The reference arm: the 6-DoF arm with a parallel gripper that `export init` targets by default and that the
# simulated rig builds (its MJCF and firmware limits use these numbers), so a demo bundle fits the demo rig.

REFERENCE_ARM_JOINTS: tuple[tuple[str, float, float], ...] = (
    # name, lower (rad), upper (rad)
    ("joint_1", -2.9, 2.9),  # base yaw
    ("joint_2", -1.8, 1.8),  # shoulder pitch
    ("joint_3", -2.5, 2.5),  # elbow pitch
    ("joint_4", -2.9, 2.9),  # forearm roll
    ("joint_5", -2.0, 2.0),  # wrist pitch
    ("joint_6", -2.9, 2.9),  # wrist roll
)
REFERENCE_JOINT_MAX_VELOCITY = 2.0  # rad/s
REFERENCE_JOINT_MAX_ACCELERATION = 8.0  # rad/s^2
REFERENCE_GRIPPER = (0.0, 0.08, 0.1, 0.5)  # lower (m), upper (m), max velocity (m/s), max acceleration (m/s^2)


def reference_arm(name: str = "arm", prefix: str = "") -> ArmSpec:
    """The reference arm's action space; `prefix` (e.g. "left_") keeps joint names unique on a dual-arm rig."""
    joints = tuple(
        JointSpec(
            name=f"{prefix}{j}",
            kind="revolute",
            unit="rad",
            lower=lo,
            upper=hi,
            max_velocity=REFERENCE_JOINT_MAX_VELOCITY,
            max_acceleration=REFERENCE_JOINT_MAX_ACCELERATION,
        )
        for j, lo, hi in REFERENCE_ARM_JOINTS
    )
    g_lo, g_hi, g_v, g_a = REFERENCE_GRIPPER
    gripper = JointSpec(
        name=f"{prefix}gripper",
        kind="gripper",
        unit="m",
        lower=g_lo,
        upper=g_hi,
        max_velocity=g_v,
        max_acceleration=g_a,
    )
    return ArmSpec(name=name, joints=joints, gripper=gripper)


def reference_action_space(arms: int = 1) -> ActionSpace:
    """One reference arm named "arm", or two named "left" and "right"."""
    if arms == 1:
        return ActionSpace(arms=(reference_arm(),))
    if arms == 2:
        return ActionSpace(arms=(reference_arm("left", "left_"), reference_arm("right", "right_")))
    raise ValueError(f"arms: expected 1 or 2, got {arms}")

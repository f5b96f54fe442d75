"""torch -> ONNX for the five graphs of a bundle, with the contract's tensor names, dtypes and static shapes.

Exporter: torch 2.13's default, the dynamo-based `torch.onnx.export(..., dynamo=True)` (torch.export + onnxscript),
at opset 18. Why, and what was measured against the TorchScript exporter: docs/export.md.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from export.checkpoint import EdgeNetworks
from export.config import CheckpointConfig
from export.errors import OnnxExportError
from export.networks import FlowStep, UnrolledFlow
from harmowam_edge.bundle.schema import (
    ACTIONS,
    CONTEXT,
    FLOW_DT,
    FLOW_NEXT,
    FLOW_STATE,
    FLOW_TIME,
    FUTURE_LATENTS,
    GATE,
    GATE_WEIGHTS,
    JOINT_POS,
    LATENTS,
    NOISE,
    PREDICTIVE_EXPERT,
    PREDICTIVE_EXPERT_STEP,
    REACTIVE_EXPERT,
    TASK_EMBEDDING,
    WORLD_MODEL,
    TensorSpec,
    depth_input,
    image_input,
)

OPSET = 18
GRAPH_ORDER = (WORLD_MODEL, GATE, REACTIVE_EXPERT, PREDICTIVE_EXPERT, PREDICTIVE_EXPERT_STEP)


def observation_specs(cfg: CheckpointConfig) -> list[TensorSpec]:
    """The world model's inputs, in graph order: images, depths, joint_pos, task_embedding."""
    specs = [TensorSpec(image_input(i), (1, c.height, c.width, 3), "uint8") for i, c in enumerate(cfg.cameras)]
    specs += [
        TensorSpec(depth_input(i), (1, c.height, c.width), "uint16") for i, c in enumerate(cfg.cameras) if c.has_depth
    ]
    specs.append(TensorSpec(JOINT_POS, (1, cfg.action_dim), "float32"))
    specs.append(TensorSpec(TASK_EMBEDDING, (1, cfg.architecture.task_dim), "float32"))
    return specs


def graph_io(cfg: CheckpointConfig) -> dict[str, tuple[list[TensorSpec], list[TensorSpec]]]:
    """(inputs, outputs) of every graph, by network name."""
    a = cfg.architecture
    k, n_act = a.chunk_size, cfg.action_dim
    f32 = "float32"
    latents = TensorSpec(LATENTS, (1, a.latent_tokens, a.dim), f32)
    future = TensorSpec(FUTURE_LATENTS, (1, a.horizon, a.latent_tokens, a.dim), f32)
    context = TensorSpec(CONTEXT, (1, a.dim), f32)
    joint = TensorSpec(JOINT_POS, (1, n_act), f32)
    actions = TensorSpec(ACTIONS, (1, k, n_act), f32)
    return {
        WORLD_MODEL: (observation_specs(cfg), [latents, future, context]),
        GATE: ([context, joint], [TensorSpec(GATE_WEIGHTS, (1, k), f32)]),
        REACTIVE_EXPERT: ([latents, future, joint], [actions]),
        PREDICTIVE_EXPERT: ([latents, future, context, joint, TensorSpec(NOISE, (1, k, n_act), f32)], [actions]),
        PREDICTIVE_EXPERT_STEP: (
            [
                latents,
                future,
                context,
                joint,
                TensorSpec(FLOW_STATE, (1, k, n_act), f32),
                TensorSpec(FLOW_TIME, (1,), f32),
                TensorSpec(FLOW_DT, (1,), f32),
            ],
            [TensorSpec(FLOW_NEXT, (1, k, n_act), f32), actions],
        ),
    }


def graph_modules(nets: EdgeNetworks) -> dict[str, nn.Module]:
    return {
        WORLD_MODEL: nets.world_model,
        GATE: nets.gate,
        REACTIVE_EXPERT: nets.reactive_expert,
        PREDICTIVE_EXPERT: UnrolledFlow(nets.predictive_expert).eval(),
        PREDICTIVE_EXPERT_STEP: FlowStep(nets.predictive_expert).eval(),
    }


_NP_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float32": np.float32, "float16": np.float16}


def random_feed(specs: list[TensorSpec], cfg: CheckpointConfig, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Plausible random inputs: full-range frames, depth up to 4 m, joints inside their limits, real task rows."""
    feed: dict[str, np.ndarray] = {}
    lower = np.array([d.lower for d in cfg.action_space.dims], dtype=np.float32)
    upper = np.array([d.upper for d in cfg.action_space.dims], dtype=np.float32)
    for s in specs:
        if s.dtype == "uint8":
            feed[s.name] = rng.integers(0, 256, s.shape, dtype=np.uint8)
        elif s.dtype == "uint16":
            feed[s.name] = rng.integers(0, 4000, s.shape, dtype=np.uint16)
        elif s.name == JOINT_POS:
            feed[s.name] = (lower + (upper - lower) * rng.random(s.shape)).astype(np.float32)
        elif s.name == TASK_EMBEDDING:
            row = cfg.tasks[int(rng.integers(len(cfg.tasks)))].embedding
            feed[s.name] = np.asarray(row, dtype=np.float32).reshape(s.shape)
        elif s.name == FLOW_TIME:
            feed[s.name] = rng.random(s.shape).astype(np.float32)
        elif s.name == FLOW_DT:
            feed[s.name] = np.full(s.shape, 1.0 / cfg.architecture.flow_steps, dtype=np.float32)
        else:
            feed[s.name] = rng.standard_normal(s.shape).astype(np.float32)
    return feed


def to_torch(a: np.ndarray) -> Tensor:
    if a.dtype == np.uint16:
        # torch has no numpy bridge for uint16; int32 holds every value, then cast.
        return torch.from_numpy(a.astype(np.int32)).to(torch.uint16)
    return torch.from_numpy(np.ascontiguousarray(a))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The dynamo exporter prints progress lines and warnings; a CLI with its own progress does not want them."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    try:
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        for lg, lvl in zip(loggers, levels, strict=True):
            lg.setLevel(lvl)


def _export_failure(e: BaseException) -> str:
    """The line of a dynamo export failure that names the cause (e.g. the op without an ONNX translation)."""
    import re

    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()
    lines = text.splitlines()
    if "## Exception summary" in lines:
        for line in lines[lines.index("## Exception summary") + 1 :]:
            if line.strip():
                return re.sub(r"^<class '[^']+'>: ", "", line.strip())
    return lines[0] if lines else type(e).__name__


@dataclass(frozen=True)
class ExportedGraph:
    network: str
    path: Path
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


def export_graph(
    network: str,
    module: nn.Module,
    inputs: list[TensorSpec],
    outputs: list[TensorSpec],
    example: dict[str, np.ndarray],
    path: Path,
    opset: int = OPSET,
) -> ExportedGraph:
    """Export one graph, run onnx.checker on it and check its boundary against the contract."""
    import onnx

    args = tuple(to_torch(example[s.name]) for s in inputs)
    try:
        with _quiet(), torch.no_grad():
            torch.onnx.export(
                module,
                args,
                str(path),
                input_names=[s.name for s in inputs],
                output_names=[s.name for s in outputs],
                opset_version=opset,
                dynamo=True,
                external_data=False,
                optimize=True,
                verbose=False,
            )
    except Exception as e:
        first = _export_failure(e)
        raise OnnxExportError(
            f"{network}: the ONNX exporter (torch {torch.__version__}, dynamo, opset {opset}) could not export "
            f"this network: {first}"
        ) from e
    dedupe_initializers(path)
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except Exception as e:
        raise OnnxExportError(f"{path.name}: onnx.checker rejected the exported graph: {e}") from e
    check_boundary(path, inputs, outputs)
    return ExportedGraph(network, path, tuple(inputs), tuple(outputs))


def dedupe_initializers(path: Path) -> int:
    """Merge byte-identical initializers; returns how many were dropped.

    The exporter folds each Linear's transposed weight at every call site, so the unrolled flow graph carried
    one copy of every expert weight per flow step (N times the file size and memory).
    """
    import hashlib

    import onnx

    model = onnx.load(str(path))
    graph = model.graph
    canonical: dict[tuple[int, tuple[int, ...], str], str] = {}
    rename: dict[str, str] = {}
    keep = []
    for init in graph.initializer:
        data = onnx.numpy_helper.to_array(init).tobytes()
        key = (init.data_type, tuple(init.dims), hashlib.sha256(data).hexdigest())
        if key in canonical:
            rename[init.name] = canonical[key]
        else:
            canonical[key] = init.name
            keep.append(init)
    if not rename:
        return 0
    del graph.initializer[:]
    graph.initializer.extend(keep)
    for node in graph.node:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    onnx.save(model, str(path))
    return len(rename)


_ONNX_DTYPES = {1: "float32", 2: "uint8", 4: "uint16", 6: "int32", 7: "int64", 9: "bool", 10: "float16"}


def graph_boundary(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """(inputs, outputs) as the ONNX file declares them."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)

    def spec(v: onnx.ValueInfoProto) -> TensorSpec:
        tt = v.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim)
        return TensorSpec(v.name, dims, _ONNX_DTYPES.get(tt.elem_type, f"onnx:{tt.elem_type}"))

    init = {i.name for i in m.graph.initializer}
    return [spec(v) for v in m.graph.input if v.name not in init], [spec(v) for v in m.graph.output]


def check_boundary(path: Path, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> None:
    got_in, got_out = graph_boundary(path)
    for kind, want, got in (("inputs", inputs, got_in), ("outputs", outputs, got_out)):
        if [(s.name, s.shape, s.dtype) for s in want] != [(s.name, s.shape, s.dtype) for s in got]:
            shown = ", ".join(f"{s.name} {s.dtype}{list(s.shape)}" for s in got)
            wanted = ", ".join(f"{s.name} {s.dtype}{list(s.shape)}" for s in want)
            raise OnnxExportError(f"{path.name}: {kind} are [{shown}], the bundle contract needs [{wanted}]")


def export_all(
    nets: EdgeNetworks, cfg: CheckpointConfig, out_dir: Path, precision_tag: str = "fp32", seed: int = 0
) -> dict[str, ExportedGraph]:
    """Export every graph as `<network>.<precision_tag>.onnx` under out_dir."""
    io_specs = graph_io(cfg)
    modules = graph_modules(nets)
    rng = np.random.default_rng(seed)
    out: dict[str, ExportedGraph] = {}
    for network in GRAPH_ORDER:
        inputs, outputs = io_specs[network]
        example = random_feed(inputs, cfg, rng)
        out[network] = export_graph(
            network, modules[network], inputs, outputs, example, out_dir / f"{network}.{precision_tag}.onnx"
        )
    return out

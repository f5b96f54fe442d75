"""FP16 and INT8 graphs with accuracy reports against the FP32 graphs on held-out observations.

FP16: float16 weights and math with float32 I/O; the ops that overflow or lose too much precision stay float32
(LayerNorm, softmax, reductions, pooling/resize of raw frames, and the sinusoidal flow-time embedding).
INT8: explicit Q/DQ (onnxruntime.quantization, QDQ format), symmetric signed int8 activations and per-channel
symmetric weights on MatMul/Gemm/Conv with a constant weight; activation x activation MatMuls (attention) stay
float. In an INT8 bundle each network stays FP16 unless its INT8 graph measures safe in the chain (mixed precision).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from export.calibration import Observation
from export.config import CheckpointConfig
from export.errors import CalibrationDataError, ConfigError, ExportError
from export.onnx_export import GRAPH_ORDER, graph_io, random_feed
from export.pipeline import Feed, OrtRunner, PolicyChain, PolicyOutput, gate_decision, step_states
from harmowam_edge.bundle.schema import (
    ACTIONS,
    GATE,
    GATE_WEIGHTS,
    LATENTS,
    NOISE,
    PREDICTIVE_EXPERT,
    PREDICTIVE_EXPERT_STEP,
    REACTIVE_EXPERT,
    WORLD_MODEL,
    Precision,
)

# Ops kept in float32 inside FP16 graphs: overflow (reductions, LayerNorm variance, softmax sums) or precision
# (raw-frame pooling sums up to 255 * k^2; Sin/Cos of angles up to 1000 rad).
FP16_BLOCKED_OPS = [
    "LayerNormalization",
    "Softmax",
    "ReduceMean",
    "ReduceSum",
    "AveragePool",
    "Resize",
    "Sin",
    "Cos",
    "Exp",
    "Pow",
    "Sqrt",
]
INT8_OPS = ["MatMul", "Gemm", "Conv"]
# Every network is an INT8 candidate that must measure safe, tried in this order: the world model first, as it
# is most of a policy step's work; the flow step graph follows the predictive expert's decision.
INT8_CANDIDATES = (WORLD_MODEL, REACTIVE_EXPERT, GATE, PREDICTIVE_EXPERT)
MAX_STEP_CALIB = 64


def check_int8_force(names: Sequence[str]) -> None:
    """`--int8-force` names only INT8 candidates."""
    unknown = sorted(set(names) - set(INT8_CANDIDATES))
    if unknown:
        raise ConfigError(
            f"--int8-force: unknown network {unknown[0]!r}; expected some of {', '.join(INT8_CANDIDATES)}"
        )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.setLevel(level)


def _name_nodes(model: Any) -> None:
    seen: set[str] = set()
    for i, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}"
        seen.add(node.name)


def _time_embedding_nodes(model: Any) -> list[str]:
    """Every node upstream of a Sin/Cos (the flow-time embedding): its argument needs float32 precision."""
    producers = {out: n for n in model.graph.node for out in n.output}
    todo = [n for n in model.graph.node if n.op_type in ("Sin", "Cos")]
    found: dict[str, Any] = {}
    while todo:
        node = todo.pop()
        if node.name in found:
            continue
        found[node.name] = node
        todo.extend(producers[i] for i in node.input if i in producers)
    return sorted(found)


def toposort(model: Any) -> None:
    """Reorder the graph's nodes topologically (the FP16 converter appends the casts it inserts at the end)."""
    graph = model.graph
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(graph.node)
    ordered = []
    while pending:
        rest = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ExportError(f"graph {graph.name!r}: has a cycle or a dangling input ({rest[0].name})")
        pending = rest
    del graph.node[:]
    graph.node.extend(ordered)


def convert_fp16(src: Path, dst: Path) -> None:
    """float16 graph with float32 inputs and outputs; numerically fragile ops stay float32."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = onnx.load(str(src))
    _name_nodes(model)
    try:
        with _quiet():
            m16 = convert_float_to_float16(
                model,
                keep_io_types=True,
                op_block_list=FP16_BLOCKED_OPS,
                node_block_list=_time_embedding_nodes(model),
            )
        toposort(m16)
        # The converter leaves some intermediate value_info with their old float32 type; drop them all and let
        # strict shape inference recompute (and so check) every intermediate type.
        del m16.graph.value_info[:]
        m16 = onnx.shape_inference.infer_shapes(m16, strict_mode=True)
        onnx.checker.check_model(m16)
    except ExportError:
        raise
    except Exception as e:
        raise ExportError(f"{src.name}: FP16 conversion failed: {e}") from e
    onnx.save(m16, str(dst))


class _FeedReader:
    """onnxruntime.quantization.CalibrationDataReader over a list of feeds (only the graph's inputs)."""

    def __init__(self, feeds: Sequence[Mapping[str, np.ndarray]], names: Sequence[str]) -> None:
        self._it = iter([{n: f[n] for n in names} for f in feeds])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)

    def rewind(self) -> None:  # pragma: no cover - part of the reader protocol, unused by MinMax
        pass


def _activation_matmuls(model: Any) -> list[str]:
    """MatMul nodes without a constant operand (attention scores, attention x values): kept float."""
    consts = {i.name for i in model.graph.initializer}
    consts |= {o for n in model.graph.node if n.op_type == "Constant" for o in n.output}
    return [n.name for n in model.graph.node if n.op_type == "MatMul" and not any(i in consts for i in n.input)]


INT8_ACTIVATIONS = ("s8", "u8")


def quantize_int8(
    src: Path,
    dst: Path,
    feeds: Sequence[Mapping[str, np.ndarray]],
    activations: str = "s8",
    calibration_cache: Path | None = None,
) -> None:
    """Static INT8, QDQ format, per-channel symmetric int8 weights (MinMax ranges).

    activations "s8": symmetric signed int8, zero point 0, what TensorRT and ARM CPUs run natively (the default).
    "u8": asymmetric uint8, ONNX Runtime's fast path on x86 (VNNI is u8 x s8); TensorRT refuses such graphs.
    `calibration_cache`: a JSON file of measured ranges, written on the first call and reused after (the same
    ranges serve s8 and u8).
    """
    if activations not in INT8_ACTIVATIONS:
        raise ExportError(f"--int8-activations: expected s8 or u8, got {activations!r}")
    signed = activations == "s8"
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static

    if not feeds:
        raise CalibrationDataError(f"{src.name}: no calibration data")
    model = onnx.load(str(src))
    _name_nodes(model)
    names = [i.name for i in model.graph.input if i.name not in {x.name for x in model.graph.initializer}]
    with tempfile.TemporaryDirectory() as tmp:
        named = Path(tmp) / "named.onnx"
        onnx.save(model, str(named))
        with _quiet():
            quantize_static(
                str(named),
                str(dst),
                _FeedReader(feeds, names),  # type: ignore[arg-type]
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=INT8_OPS,
                per_channel=True,
                reduce_range=False,
                activation_type=QuantType.QInt8 if signed else QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                nodes_to_exclude=_activation_matmuls(model),
                calibrate_method=CalibrationMethod.MinMax,
                extra_options={
                    "ActivationSymmetric": signed,
                    "WeightSymmetric": True,
                    "MatMulConstBOnly": True,
                },
                calibration_cache_path=calibration_cache,
            )
    onnx.checker.check_model(str(dst))


# --------------------------------------------------------------------------------------------------------------
# Accuracy


def _stats(abs_err: np.ndarray, ranges: np.ndarray) -> dict[str, Any]:
    """abs_err [n, K, A] raw units -> p50/p99/max in raw units and in % of each joint's range."""
    pct = abs_err / ranges.reshape(1, 1, -1) * 100.0
    per_joint_p99 = np.percentile(pct.reshape(-1, pct.shape[-1]), 99, axis=0)
    return {
        "abs_p50": float(np.percentile(abs_err, 50)),
        "abs_p99": float(np.percentile(abs_err, 99)),
        "abs_max": float(abs_err.max()),
        "pct_range_p50": float(np.percentile(pct, 50)),
        "pct_range_p99": float(np.percentile(pct, 99)),
        "pct_range_max": float(pct.max()),
        "pct_range_p99_per_joint": [float(v) for v in per_joint_p99],
    }


def _run_chain(chain: PolicyChain, obs: Sequence[Observation], noises: Sequence[np.ndarray]) -> list[PolicyOutput]:
    return [chain.run(o, n) for o, n in zip(obs, noises, strict=True)]


def accuracy(
    cfg: CheckpointConfig,
    reference: list[PolicyOutput],
    candidate: list[PolicyOutput],
) -> dict[str, Any]:
    """End-to-end action error per path and gate agreement of a candidate chain against the FP32 chain."""
    ranges = np.array([d.range for d in cfg.action_space.dims])
    e2e = {}
    paths: dict[str, Callable[[PolicyOutput], np.ndarray]] = {
        "reactive": lambda o: o.reactive,
        "predictive": lambda o: o.predictive,
        "blended": lambda o: o.blended(cfg.gate),
    }
    for path, pick in paths.items():
        ref = np.stack([pick(o)[0] for o in reference])
        cand = np.stack([pick(o)[0] for o in candidate])
        e2e[path] = _stats(np.abs(cand.astype(np.float64) - ref), ranges)
    dec_ref = [gate_decision(o.gate_weights, cfg.gate) for o in reference]
    dec_cand = [gate_decision(o.gate_weights, cfg.gate) for o in candidate]
    w_err = max(float(np.abs(a.gate_weights - b.gate_weights).max()) for a, b in zip(reference, candidate, strict=True))
    agreement = float(np.mean([a == b for a, b in zip(dec_ref, dec_cand, strict=True)]))
    return {
        "end_to_end": e2e,
        "gate": {
            "decision_agreement": agreement,
            "max_weight_error": w_err,
            "decisions_fp32": {d: dec_ref.count(d) for d in sorted(set(dec_ref))},
        },
    }


def _worst_p99(acc: Mapping[str, Any]) -> float:
    """The worst path's p99 action error (% of joint range) in an `accuracy` result."""
    return max(float(v["pct_range_p99"]) for v in acc["end_to_end"].values())


def _network_errors(
    fp32: Mapping[str, OrtRunner],
    cand: Mapping[str, OrtRunner],
    feeds: Mapping[str, Sequence[Feed]],
) -> dict[str, dict[str, Any]]:
    """Each candidate graph vs its FP32 graph on identical FP32-chain inputs: max abs and relative error."""
    main = {
        WORLD_MODEL: LATENTS,
        GATE: GATE_WEIGHTS,
        REACTIVE_EXPERT: ACTIONS,
        PREDICTIVE_EXPERT: ACTIONS,
        PREDICTIVE_EXPERT_STEP: ACTIONS,
    }
    out = {}
    for name, runner in cand.items():
        errs, scale = [], []
        for f in feeds[name]:
            a, b = fp32[name](f), runner(f)
            errs.append(max(float(np.abs(a[k] - b[k]).max()) for k in a))
            scale.append(float(np.abs(a[main[name]]).max()))
        out[name] = {
            "max_abs_error": max(errs),
            "relative_error": max(errs) / max(max(scale), 1e-12),
            "output": main[name],
        }
    return out


@dataclass
class QuantResult:
    files: dict[str, dict[str, Path]]  # network -> precision -> graph file (in the bundle directory)
    defaults: dict[str, Precision]
    report: dict[str, Any]


def quantize_bundle_graphs(
    *,
    cfg: CheckpointConfig,
    fp32: Mapping[str, Path],
    out_dir: Path,
    precision: Precision,
    calib: Sequence[Observation],
    holdout: Sequence[Observation],
    flow_mode: str,
    budget_pct: float,
    min_gate_agreement: float,
    say: Callable[[str], None] = lambda _m: None,
    seed: int = 0,
    int8_activations: str = "s8",
    int8_force: Sequence[str] = (),
) -> QuantResult:
    """Write the FP16 (and INT8) graphs for a bundle and measure them; `report["ok"]` is the budget verdict.

    `int8_force`: networks (of INT8_CANDIDATES) put in INT8 even where they measure unsafe, the user's call.
    """
    if precision not in ("fp16", "int8"):
        raise ExportError(f"quantize: expected fp16 or int8, got {precision!r}")
    check_int8_force(int8_force)
    rng = np.random.default_rng(seed + 7)
    io = graph_io(cfg)
    held_source = "held-out observations"
    if not holdout:
        holdout = [random_feed(io[WORLD_MODEL][0], cfg, rng) for _ in range(8)]
        held_source = "random inputs (no calibration data given)"
    noise_shape = io[PREDICTIVE_EXPERT][0][-1].shape
    noises = [rng.standard_normal(noise_shape).astype(np.float32) for _ in holdout]
    steps = cfg.architecture.flow_steps

    fp32_run = {n: OrtRunner(p) for n, p in fp32.items()}
    fp32_chain = PolicyChain(fp32_run, steps, flow_mode)
    reference = _run_chain(fp32_chain, holdout, noises)

    files: dict[str, dict[str, Path]] = {n: {} for n in GRAPH_ORDER}
    say("converting graphs to FP16")
    for n in GRAPH_ORDER:
        dst = out_dir / f"{n}.fp16.onnx"
        convert_fp16(fp32[n], dst)
        files[n]["fp16"] = dst
    defaults: dict[str, Precision] = dict.fromkeys(GRAPH_ORDER, "fp16")
    decisions: dict[str, str] = {}
    trials: dict[str, dict[str, Any]] = {}  # candidate -> what the chain measured with it INT8
    acc: dict[str, Any] | None = None  # the final chain's accuracy, where already measured

    if precision == "int8":
        if not calib:
            raise CalibrationDataError("INT8 needs calibration observations (none were given)")
        say(f"calibrating INT8 ranges on {len(calib)} observations")
        c_noises = [rng.standard_normal(noise_shape).astype(np.float32) for _ in calib]
        wm_feeds: list[Feed] = [dict(o) for o in calib]
        chain_feeds: list[Feed] = [{**o, **fp32_run[WORLD_MODEL](o)} for o in calib]
        pred_feeds: list[Feed] = [{**f, NOISE: z} for f, z in zip(chain_feeds, c_noises, strict=True)]
        step_feeds: list[Feed] = []
        for f, z in zip(chain_feeds, c_noises, strict=True):
            step_feeds.extend(step_states(fp32_run[PREDICTIVE_EXPERT_STEP], f, z, steps))
        if len(step_feeds) > MAX_STEP_CALIB:
            idx = np.linspace(0, len(step_feeds) - 1, MAX_STEP_CALIB).round().astype(int)
            step_feeds = [step_feeds[i] for i in idx]
        calib_feeds = {
            WORLD_MODEL: wm_feeds,
            GATE: chain_feeds,
            REACTIVE_EXPERT: chain_feeds,
            PREDICTIVE_EXPERT: pred_feeds,
            PREDICTIVE_EXPERT_STEP: step_feeds,
        }
        int8_paths: dict[str, Path] = {}
        for n in GRAPH_ORDER:
            say(f"quantizing {n} to INT8")
            dst = out_dir / f"{n}.int8.onnx"
            quantize_int8(fp32[n], dst, calib_feeds[n], int8_activations)
            int8_paths[n] = dst
        # Greedy, in INT8_CANDIDATES order: each network goes INT8 only if the chain with it (and with the ones
        # already taken) stays within the budget against FP32 and keeps the gate's decisions.
        planned = _runners(fp32, files, defaults)
        planned_acc = accuracy(cfg, reference, _run_chain(PolicyChain(planned, steps, flow_mode), holdout, noises))
        for n in INT8_CANDIDATES:
            group = (PREDICTIVE_EXPERT, PREDICTIVE_EXPERT_STEP) if n == PREDICTIVE_EXPERT else (n,)
            trial = dict(planned)
            for g in group:
                trial[g] = OrtRunner(int8_paths[g])
            trial_acc = accuracy(cfg, reference, _run_chain(PolicyChain(trial, steps, flow_mode), holdout, noises))
            p99 = _worst_p99(trial_acc)
            agreement = trial_acc["gate"]["decision_agreement"]
            was = planned_acc["gate"]["decision_agreement"]
            forced = n in int8_force
            safe = p99 <= budget_pct and agreement >= was and agreement >= min_gate_agreement
            detail = (
                f"with it INT8 the chain's p99 is {p99:.3f} % of joint range (budget {budget_pct:g} %, "
                f"{_worst_p99(planned_acc):.3f} % without), gate decision agreement {100 * agreement:.1f} % "
                f"({100 * was:.1f} % without)"
            )
            take = safe or forced
            trials[n] = {
                "chain_pct_range_p99": p99,
                "gate_agreement": agreement,
                "safe": bool(safe),
                "forced": forced,
                "int8": bool(take),
            }
            reason = "forced by --int8-force; " if forced and not safe else ""
            for g in group:
                decisions[g] = ("int8: " if take else "fp16: ") + reason + detail
                if take:
                    files[g]["int8"] = int8_paths[g]
                    defaults[g] = "int8"
                else:
                    int8_paths[g].unlink()
            if take:
                planned, planned_acc = trial, trial_acc
        acc = planned_acc  # the chain the decisions left, measured on the held-out set
    final = _runners(fp32, files, defaults)
    if acc is None:
        say("measuring accuracy on held-out observations")
        acc = accuracy(cfg, reference, _run_chain(PolicyChain(final, steps, flow_mode), holdout, noises))

    net_feeds: dict[str, list[Feed]] = {}
    h_chain = [{**o, **fp32_run[WORLD_MODEL](o)} for o in holdout]
    net_feeds[WORLD_MODEL] = [dict(o) for o in holdout]
    net_feeds[GATE] = h_chain
    net_feeds[REACTIVE_EXPERT] = h_chain
    net_feeds[PREDICTIVE_EXPERT] = [{**f, NOISE: z} for f, z in zip(h_chain, noises, strict=True)]
    net_feeds[PREDICTIVE_EXPERT_STEP] = [
        s
        for f, z in zip(h_chain[:2], noises[:2], strict=True)
        for s in step_states(fp32_run[PREDICTIVE_EXPERT_STEP], f, z, steps)
    ]
    per_net = _network_errors(fp32_run, {n: final[n] for n in GRAPH_ORDER}, net_feeds)
    for n in GRAPH_ORDER:
        per_net[n]["precision"] = defaults[n]

    worst = _worst_p99(acc)
    agreement = acc["gate"]["decision_agreement"]
    ok = worst <= budget_pct and agreement >= min_gate_agreement
    verdict = (
        f"p99 action error {worst:.3f} % of joint range (budget {budget_pct:g} %), gate decision agreement "
        f"{100 * agreement:.1f} % (minimum {100 * min_gate_agreement:g} %)"
    )
    report = {
        "precision": precision,
        "reference": "the bundle's FP32 graphs in ONNX Runtime (themselves checked against PyTorch)",
        "holdout": len(holdout),
        "holdout_source": held_source,
        "calibration": len(calib) if precision == "int8" else 0,
        "int8_activations": int8_activations if precision == "int8" else None,
        "int8_scheme": (
            None
            if precision != "int8"
            else "QDQ, per-channel symmetric int8 weights, "
            + (
                "symmetric int8 activations (TensorRT, ARM)"
                if int8_activations == "s8"
                else "asymmetric uint8 activations (ONNX Runtime x86; not for TensorRT)"
            )
        ),
        "flow_mode": flow_mode,
        "defaults": dict(defaults),
        "decisions": decisions,
        "int8_trials": trials,
        "int8_order": list(INT8_CANDIDATES) if precision == "int8" else [],
        "networks": per_net,
        **acc,
        "budget": {"pct_range_p99": budget_pct, "min_gate_agreement": min_gate_agreement},
        "ok": bool(ok),
        "verdict": ("within budget: " if ok else "OVER BUDGET: ") + verdict,
    }
    return QuantResult(files=files, defaults=defaults, report=report)


def _runners(
    fp32: Mapping[str, Path], files: Mapping[str, Mapping[str, Path]], defaults: Mapping[str, Precision]
) -> dict[str, OrtRunner]:
    return {n: OrtRunner(files[n][defaults[n]] if defaults[n] != "fp32" else fp32[n]) for n in GRAPH_ORDER}

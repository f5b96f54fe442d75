"""The bundle writer: checkpoint -> verified ONNX graphs (+ FP16/INT8) -> deploy bundle (docs/architecture.md §3.1).

Everything is written into a temporary directory beside the output and renamed into place at the end, so a
failed export leaves no half-written bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, cast

import numpy as np

from export.calibration import Observation, load_calibration, split_holdout
from export.checkpoint import Checkpoint, load_checkpoint
from export.complexity import network_complexity
from export.errors import ConfigError, ExportError, OutputExistsError, ParityError
from export.manifest_io import verify_bundle
from export.onnx_export import GRAPH_ORDER, OPSET, export_all, graph_io, random_feed
from export.parity import DEFAULT_TOLERANCE, check_parity
from export.pipeline import OrtRunner, loop_step
from harmowam_edge.bundle.schema import (
    MANIFEST_NAME,
    NOISE,
    PRECISIONS,
    PREDICTIVE_EXPERT,
    PREDICTIVE_EXPERT_STEP,
    GraphSpec,
    Manifest,
    NetworkSpec,
    PolicyParams,
    Precision,
    Provenance,
    TaskTable,
    sha256_file,
)

Progress = Callable[[str], None]
TASKS_FILE = "tasks.npy"
REPORTS_DIR = "reports"


@dataclass(frozen=True)
class NetworkRow:
    """One line of the final table."""

    network: str
    precision: str  # the default graph's precision
    size_bytes: int  # the default graph's file
    params: int
    flops: int
    parity_error: float | None  # ONNX FP32 vs torch, max abs (per network, on its main output)
    quant_error: float | None  # default graph vs FP32 graph, max abs on its main output (held-out)


@dataclass
class BuildReport:
    bundle: Path
    precision: str
    flow_mode: str
    rows: list[NetworkRow]
    parity: dict[str, Any]
    quantization: dict[str, Any] | None
    flow_timing: dict[str, Any] | None  # measured unrolled vs looped step timings; None when not measured
    manifest: Manifest
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _tool_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for pkg in ("harmowam-edge", "torch", "onnx", "onnxruntime", "onnxscript", "safetensors", "numpy"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    out["exporter"] = f"torch.onnx.export(dynamo=True), opset {OPSET}"
    return out


def _median_ms(fn: Callable[[], object], budget_s: float = 0.4, min_iters: int = 5, max_iters: int = 50) -> float:
    fn()  # warm-up: first runs allocate
    fn()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_iters or (len(times) < max_iters and time.perf_counter() - start < budget_s):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times) * 1e3)


# The flow graph the runtime runs unless asked otherwise: one engine call per chunk (the step graph takes N).
DEFAULT_FLOW_MODE = "unrolled"
FLOW_MODES = ("unrolled", "step", "auto")


def measure_flow_modes(graphs: Mapping[str, Path], feed: Mapping[str, np.ndarray], steps: int) -> dict[str, Any]:
    """ONNX Runtime (2 threads) time of the unrolled graph vs the step graph looped `steps` times."""
    unrolled = OrtRunner(graphs[PREDICTIVE_EXPERT])
    step = OrtRunner(graphs[PREDICTIVE_EXPERT_STEP])
    noise = feed[NOISE]
    t_unrolled = _median_ms(lambda: unrolled(feed))
    t_step = _median_ms(lambda: loop_step(step, feed, noise, steps))
    return {
        "engine": "ONNX Runtime CPU FP32, 2 threads",
        "unrolled_ms_p50": round(t_unrolled, 4),
        "step_looped_ms_p50": round(t_step, 4),
        "flow_steps": steps,
        "faster": "unrolled" if t_unrolled <= t_step else "step",
        "note": "measured on the exporting machine, under whatever load it had",
    }


def choose_flow_mode(flow_mode: str, timing: Mapping[str, Any] | None) -> tuple[str, str]:
    """(policy.flow_mode, why): the requested mode; `auto` takes the faster measured one (needs `timing`)."""
    if flow_mode == "auto":
        if timing is None:
            raise ConfigError("flow_mode 'auto' decides on measured timings: measure them (time_flow)")
        return str(timing["faster"]), "--flow-mode auto: the faster measured here (depends on this machine's load)"
    if flow_mode == DEFAULT_FLOW_MODE:
        return flow_mode, f"the default ({DEFAULT_FLOW_MODE}) or --flow-mode {flow_mode}"
    return flow_mode, f"--flow-mode {flow_mode}"


def _check_precision(precision: str) -> Precision:
    if precision not in PRECISIONS:
        raise ConfigError(f"--precision: expected one of {', '.join(PRECISIONS)}, got {precision!r}")
    return cast(Precision, precision)


def _prepare_output(out: Path, force: bool) -> None:
    if out.exists():
        if not out.is_dir():
            raise OutputExistsError(f"{out}: exists and is not a directory; choose another --out")
        if not force:
            raise OutputExistsError(f"{out}: already exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)


def _move_into_place(tmp: Path, out: Path) -> None:
    """Swap the finished bundle in: an existing bundle is moved aside first and removed only after the rename."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        out.rename(old)
    try:
        tmp.rename(out)
    except BaseException:
        if old is not None:
            old.rename(out)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def build_bundle(
    checkpoint_dir: str | Path,
    out: str | Path,
    precision: str = "fp32",
    calib: str | Path | Iterable[Observation] | None = None,
    force: bool = False,
    budget_pct: float = 1.0,
    min_gate_agreement: float = 0.99,
    parity_tolerance: float = DEFAULT_TOLERANCE,
    flow_mode: str = DEFAULT_FLOW_MODE,
    progress: Progress | None = None,
    seed: int = 0,
    allow_over_budget: bool | None = None,
    int8_activations: str = "s8",
    time_flow: bool = False,
    int8_force: Sequence[str] = (),
) -> BuildReport:
    """Export a checkpoint into a deploy bundle and return the report (also written under reports/).

    `calib`: a directory of .npz observations, an iterable of observation dicts, or "synthetic" (random frames,
    for untrained demo checkpoints only). Needed for INT8; used as recorded inputs for the parity check.
    Raises `QuantizationBudgetError` when a quantized bundle is over budget, `ParityError` when ONNX and PyTorch
    disagree, unless `allow_over_budget` (default: the value of `force`, as on the command line).
    `flow_mode` (default unrolled) is `policy.flow_mode`; `time_flow` times both flow graphs into
    reports/flow_mode.json; only `flow_mode="auto"` (which times them) lets the timings decide. Without either,
    the bundle is a function of its inputs: two builds differ only in `provenance.created_utc`.
    INT8: each network goes INT8 only where it measures within budget in the chain, except those in `int8_force`.
    """
    t_start = time.perf_counter()
    say = progress or (lambda _msg: None)
    prec = _check_precision(precision)
    if flow_mode not in FLOW_MODES:
        raise ConfigError(f"flow_mode: expected unrolled, step or auto, got {flow_mode!r}")
    if int8_activations not in ("s8", "u8"):
        raise ConfigError(
            f"--int8-activations: expected s8 (TensorRT, ARM) or u8 (x86 ONNX Runtime), got {int8_activations!r}"
        )
    if not (budget_pct > 0):
        raise ConfigError(f"--budget: expected a percentage > 0, got {budget_pct}")
    if int8_force:
        from export.quantize import check_int8_force

        if prec != "int8":
            raise ConfigError(f"--int8-force: only for --precision int8 (this bundle is {prec})")
        check_int8_force(int8_force)
    out = Path(out)
    _prepare_output(out, force)

    say(f"loading checkpoint {checkpoint_dir}")
    ck = load_checkpoint(checkpoint_dir)
    cfg = ck.config
    warnings: list[str] = []
    if cfg.untrained:
        warnings.append("the checkpoint is UNTRAINED (seeded random weights): for tests and demos only")

    observations: list[Observation] = []
    if calib is not None:
        say("loading calibration observations")
        observations = load_calibration(calib, cfg, seed=seed)
    elif prec == "int8":
        raise ConfigError(
            "--calib: INT8 needs calibration observations: a directory of .npz observations or a RealSense "
            "recording (or 'synthetic' for an untrained demo checkpoint)"
        )

    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; a bundle is an ordinary directory
    try:
        report = _build_into(
            tmp,
            ck,
            prec,
            observations,
            allow_over_budget=force if allow_over_budget is None else allow_over_budget,
            budget_pct=budget_pct,
            min_gate_agreement=min_gate_agreement,
            parity_tolerance=parity_tolerance,
            flow_mode=flow_mode,
            say=say,
            warnings=warnings,
            seed=seed,
            int8_activations=int8_activations,
            time_flow=time_flow or flow_mode == "auto",
            int8_force=tuple(int8_force),
        )
        say(f"moving the bundle into place: {out}")
        _move_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    report.bundle = out
    report.seconds = time.perf_counter() - t_start
    return report


def _build_into(
    tmp: Path,
    ck: Checkpoint,
    precision: Precision,
    observations: list[Observation],
    *,
    allow_over_budget: bool,
    budget_pct: float,
    min_gate_agreement: float,
    parity_tolerance: float,
    flow_mode: str,
    say: Progress,
    warnings: list[str],
    seed: int,
    int8_activations: str,
    time_flow: bool,
    int8_force: tuple[str, ...],
) -> BuildReport:
    cfg, nets = ck.config, ck.networks
    (tmp / REPORTS_DIR).mkdir()
    say(f"exporting {len(GRAPH_ORDER)} graphs to ONNX (FP32, opset {OPSET})")
    exported = export_all(nets, cfg, tmp, "fp32", seed=seed)
    fp32_paths = {n: g.path for n, g in exported.items()}

    calib_obs, holdout_obs = split_holdout(observations) if observations else ([], [])
    say("checking ONNX Runtime vs PyTorch parity")
    recorded = (holdout_obs or calib_obs)[:3]
    parity = check_parity(nets, cfg, fp32_paths, recorded=recorded, tolerance=parity_tolerance)
    _write_json(tmp / REPORTS_DIR / "parity.json", parity)
    if not parity["ok"]:
        msg = (
            f"ONNX vs PyTorch action error {parity['max_action_error']:.2e} exceeds the tolerance "
            f"{parity_tolerance:.0e} (reports/parity.json: {json.dumps(parity['end_to_end'])})"
        )
        if not allow_over_budget:
            raise ParityError(msg + "; pass --force to write the bundle anyway")
        warnings.append(msg + " (forced)")

    io = graph_io(cfg)
    timing = None
    if time_flow:
        say("timing the unrolled vs the looped step flow graph")
        feed = random_feed(io[PREDICTIVE_EXPERT][0], cfg, np.random.default_rng(seed))
        timing = measure_flow_modes(fp32_paths, feed, cfg.architecture.flow_steps)
    chosen, why = choose_flow_mode(flow_mode, timing)
    _write_json(tmp / REPORTS_DIR / "flow_mode.json", {"policy_flow_mode": chosen, "chosen_by": why, "timing": timing})

    graph_files: dict[str, dict[str, Path]] = {n: {"fp32": p} for n, p in fp32_paths.items()}
    defaults: dict[str, Precision] = dict.fromkeys(GRAPH_ORDER, "fp32")
    quant_report: dict[str, Any] | None = None
    if precision != "fp32":
        from export.quantize import quantize_bundle_graphs

        say(f"quantizing to {precision.upper()}")
        q = quantize_bundle_graphs(
            cfg=cfg,
            fp32=fp32_paths,
            out_dir=tmp,
            precision=precision,
            calib=calib_obs,
            holdout=holdout_obs,
            flow_mode=chosen,
            budget_pct=budget_pct,
            min_gate_agreement=min_gate_agreement,
            say=say,
            seed=seed,
            int8_activations=int8_activations,
            int8_force=int8_force,
        )
        for n, by_precision in q.files.items():
            graph_files[n].update(by_precision)
        defaults.update(q.defaults)
        quant_report = q.report
        _write_json(tmp / REPORTS_DIR / "quantization.json", quant_report)
        if not quant_report["ok"]:
            from export.errors import QuantizationBudgetError

            if not allow_over_budget:
                raise QuantizationBudgetError(
                    f"{precision.upper()} bundle refused: {quant_report['verdict']}; pass --force to write it anyway",
                    quant_report,
                )
            warnings.append(f"{precision.upper()} over budget, written because of --force: {quant_report['verdict']}")
        if precision == "int8" and "int8" not in q.defaults.values():
            tried = ", ".join(f"{n} {t['chain_pct_range_p99']:.2f} %" for n, t in quant_report["int8_trials"].items())
            msg = (
                f"INT8 bundle with no INT8 network: each one measured over the {budget_pct:g} % budget in INT8 "
                f"({tried}), so it would run FP16"
            )
            if not allow_over_budget:
                raise ExportError(f"{msg}; export --precision fp16, raise --budget, or name networks in --int8-force")
            warnings.append(msg + " (written because of --force)")

    say("counting parameters and FLOPs")
    complexity = network_complexity(nets, cfg)

    table = np.asarray([t.embedding for t in cfg.tasks], dtype=np.float32)
    np.save(tmp / TASKS_FILE, table)

    networks: dict[str, NetworkSpec] = {}
    for n in GRAPH_ORDER:
        ins, outs = io[n]
        graphs = {
            p: GraphSpec(
                file=path.name,
                sha256=sha256_file(path),
                precision=cast(Precision, p),
                inputs=tuple(ins),
                outputs=tuple(outs),
            )
            for p, path in graph_files[n].items()
        }
        networks[n] = NetworkSpec(
            name=n,
            graphs=graphs,
            default_precision=defaults[n],
            params=complexity[n].params,
            flops=complexity[n].flops,
        )
    a = cfg.architecture
    policy = PolicyParams(
        chunk_size=a.chunk_size,
        action_dim=cfg.action_dim,
        action_rate_hz=a.action_rate_hz,
        flow_steps=a.flow_steps,
        flow_mode="step" if chosen == "step" else "unrolled",
        horizon=a.horizon,
        gate=cfg.gate,
    )
    reports = {"parity": f"{REPORTS_DIR}/parity.json", "flow_mode": f"{REPORTS_DIR}/flow_mode.json"}
    if quant_report is not None:
        reports["quantization"] = f"{REPORTS_DIR}/quantization.json"
    build_info = {
        "checkpoint": ck.name,  # not its path: the bundle depends on the checkpoint's content, not where it was
        "precision": precision,
        "warnings": warnings,
        "complexity": {n: {"params": c.params, "flops": c.flops} for n, c in complexity.items()},
    }
    _write_json(tmp / REPORTS_DIR / "build.json", build_info)
    reports["build"] = f"{REPORTS_DIR}/build.json"

    files = {
        p.relative_to(tmp).as_posix(): sha256_file(p)
        for p in sorted(tmp.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }
    manifest = Manifest(
        precision=precision,
        networks=networks,
        policy=policy,
        action_space=cfg.action_space,
        cameras=cfg.cameras,
        tasks=TaskTable(
            file=TASKS_FILE, sha256=files[TASKS_FILE], names=tuple(t.name for t in cfg.tasks), dim=a.task_dim
        ),
        provenance=Provenance(
            checkpoint_sha256=ck.sha256,
            checkpoint_name=ck.name,
            preset=cfg.preset,
            created_utc=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            untrained=cfg.untrained,
            tools=_tool_versions(),
            reports=reports,
            training=training_summary(cfg.training),
        ),
        files=files,
    )
    data = manifest.to_dict()
    # The runtime reads the bundle with Manifest.from_dict: never write one it would refuse.
    Manifest.from_dict(json.loads(json.dumps(data)), source=f"{MANIFEST_NAME} (as written)")
    _write_json(tmp / MANIFEST_NAME, data)

    rows = []
    for n in GRAPH_ORDER:
        spec = networks[n]
        path = tmp / spec.default.file
        par = parity["networks"][n]
        rows.append(
            NetworkRow(
                network=n,
                precision=spec.default_precision,
                size_bytes=path.stat().st_size,
                params=spec.params,
                flops=spec.flops,
                parity_error=max(par.values()) if par else None,
                quant_error=(quant_report or {}).get("networks", {}).get(n, {}).get("max_abs_error"),
            )
        )
    return BuildReport(
        bundle=tmp,
        precision=precision,
        flow_mode=policy.flow_mode,
        rows=rows,
        parity=parity,
        quantization=quant_report,
        flow_timing=timing,
        manifest=manifest,
        warnings=warnings,
    )


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=_json_default) + "\n")


def _json_default(o: object) -> Any:
    if isinstance(o, (np.floating, np.integer)):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


__all__ = ["BuildReport", "ExportError", "NetworkRow", "build_bundle", "measure_flow_modes", "verify_bundle"]


# What of a checkpoint's `training` block the bundle carries (the whole block, with its loss history, stays in
# the checkpoint): enough to say what the policy learnt from and to keep evaluation off its layouts.
_TRAINING_SUMMARY_KEYS = ("trainer", "steps", "episodes", "tasks_trained", "seed_ranges", "relative_actions")


def training_summary(training: Mapping[str, Any] | None) -> dict[str, Any]:
    if not training:
        return {}
    return {k: training[k] for k in _TRAINING_SUMMARY_KEYS if k in training}

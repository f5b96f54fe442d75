"""`harmowam-edge export bench`: PyTorch eager vs ONNX Runtime FP32 vs ONNX Runtime INT8, per network and per
policy step (reactive path, predictive path), 2 threads, every preset. Medians and ratios from one run.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from export.calibration import synthetic_observations
from export.checkpoint import init_checkpoint, load_checkpoint, param_count
from export.complexity import network_complexity
from export.config import default_camera
from export.onnx_export import GRAPH_ORDER, export_all, graph_io, random_feed
from export.parity import torch_runners
from export.pipeline import Feed, OrtRunner, PolicyChain, Runner, loop_step, ort_settings, step_states
from export.quantize import accuracy, quantize_int8
from harmowam_edge.bundle.schema import (
    GATE,
    NOISE,
    PREDICTIVE_EXPERT,
    PREDICTIVE_EXPERT_STEP,
    REACTIVE_EXPERT,
    WORLD_MODEL,
)

THREADS = 2
PRESETS = ("nano", "small", "base", "reference")
# (max iterations, time budget in s, warm-up calls) per measurement: fewer for the big presets so the bench
# stays short (at least 3 timed calls each).
ITERS = {"nano": (200, 1.0, 2), "small": (60, 1.5, 2), "base": (20, 1.2, 1), "reference": (6, 1.5, 1)}
# ort_int8: the bundle's INT8 graphs (symmetric s8 activations, for TensorRT/ARM); ort_int8_u8: the same
# quantization with uint8 activations, ONNX Runtime's fast path on x86 (not what a Jetson runs).
ENGINES = ("torch", "ort_fp32", "ort_int8", "ort_int8_u8")
PREDICTIVE_PATH_TARGET_MS = 1000.0 / 48.0  # 20.8 ms: 48 Hz


@dataclass
class Timing:
    p50: float
    p99: float
    n: int


def measure(
    fns: Mapping[str, Callable[[], object]],
    max_iters: int,
    budget_s: float,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, Timing]:
    """Time several functions interleaved, a few calls of each in turn, so that load from other processes on
    this shared machine falls on all of them alike and their ratios stay meaningful."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    chunk = max(1, min(10, max_iters // 5))
    start = time.perf_counter()
    while True:
        for k, fn in fns.items():
            for _ in range(chunk):
                t0 = clock()
                fn()
                times[k].append((clock() - t0) * 1e3)
        n = min(len(v) for v in times.values())
        if n >= max_iters or (n >= 3 and time.perf_counter() - start > budget_s * len(fns)):
            break
    return {k: Timing(float(np.percentile(v, 50)), float(np.percentile(v, 99)), len(v)) for k, v in times.items()}


@dataclass
class PresetResult:
    preset: str
    params: dict[str, int]
    flops: dict[str, int]
    export_s: float
    networks: dict[str, dict[str, Timing]] = field(default_factory=dict)  # network -> engine -> timing
    steps: dict[str, dict[str, Timing]] = field(default_factory=dict)  # reactive/predictive -> engine -> timing
    flow: dict[str, float] = field(default_factory=dict)
    # ONNX Runtime FP32 with 1 thread, CPU time of the calling thread (where a 1-thread session runs): the work
    # of a policy step, which other processes' load barely changes, unlike wall time.
    cpu_1thread: dict[str, Timing] = field(default_factory=dict)
    parity_max_action: float = 0.0
    int8_pct_p99: float = 0.0
    int8_gate_agreement: float = 0.0


def _call(runner: Runner, feed: Feed) -> Callable[[], Feed]:
    return lambda: runner(feed)


def _chain_fn(
    runners: Mapping[str, Runner], obs: Feed, noise: Any, path: str, steps: int, mode: str
) -> Callable[[], Any]:
    def run() -> Any:
        wm = runners[WORLD_MODEL](obs)
        feed = {**obs, **wm}
        runners[GATE](feed)
        if path == "reactive":
            return runners[REACTIVE_EXPERT](feed)
        if mode == "unrolled":
            return runners[PREDICTIVE_EXPERT]({**feed, NOISE: noise})
        return loop_step(runners[PREDICTIVE_EXPERT_STEP], feed, noise, steps)

    return run


CALIB_OBS = 16
HOLDOUT_OBS = 8


@dataclass
class Prepared:
    """What a preparation worker hands back: files on disk and numbers (picklable)."""

    preset: str
    checkpoint: Path
    graphs: dict[str, Path]
    int8: dict[str, dict[str, Path]]  # activations (s8/u8) -> network -> graph
    params: dict[str, int]
    flops: dict[str, int]
    export_s: float


def prepare_preset(preset: str, work: Path) -> Prepared:
    """Checkpoint, FP32 export and INT8 (s8 + u8) graphs for one preset; runs in a worker process."""
    import torch

    torch.set_num_threads(1)  # two workers share the two cores
    ck_dir = init_checkpoint(work / f"{preset}-ckpt", preset=preset, camera=default_camera(), force=True)
    ck = load_checkpoint(ck_dir)
    cfg, nets = ck.config, ck.networks
    t0 = time.perf_counter()
    graph_dir = work / preset
    graph_dir.mkdir()
    graphs = {n: g.path for n, g in export_all(nets, cfg, graph_dir).items()}
    export_s = time.perf_counter() - t0
    cx = network_complexity(nets, cfg)
    params = {n: c.params for n, c in cx.items()}
    params["total"] = sum(param_count(m) for m in nets.modules().values())

    steps = cfg.architecture.flow_steps
    io = graph_io(cfg)
    rng = np.random.default_rng(0)
    calib = synthetic_observations(cfg, count=CALIB_OBS, seed=1)
    fp32 = {n: OrtRunner(p, 1) for n, p in graphs.items()}
    shape = io[PREDICTIVE_EXPERT][0][-1].shape
    chain = [{**o, **fp32[WORLD_MODEL](o)} for o in calib]
    noises = [rng.standard_normal(shape).astype(np.float32) for _ in calib]
    feeds: dict[str, list[Feed]] = {
        WORLD_MODEL: [dict(o) for o in calib],
        GATE: chain,
        REACTIVE_EXPERT: chain,
        PREDICTIVE_EXPERT: [{**f, NOISE: z} for f, z in zip(chain, noises, strict=True)],
        PREDICTIVE_EXPERT_STEP: [
            s
            for f, z in zip(chain[:4], noises[:4], strict=True)
            for s in step_states(fp32[PREDICTIVE_EXPERT_STEP], f, z, steps)
        ],
    }
    int8: dict[str, dict[str, Path]] = {"s8": {}, "u8": {}}
    for n in GRAPH_ORDER:
        for act in ("s8", "u8"):
            dst = graphs[n].with_name(f"{n}.int8-{act}.onnx")
            quantize_int8(graphs[n], dst, feeds[n], act, calibration_cache=graphs[n].with_name(f"{n}.ranges.json"))
            int8[act][n] = dst
    return Prepared(preset, ck_dir, graphs, int8, params, {n: c.flops for n, c in cx.items()}, export_s)


def bench_preset(prep: Prepared, say: Callable[[str], None]) -> PresetResult:
    """Time one prepared preset in this process (nothing else of the bench runs meanwhile)."""
    import torch

    torch.set_num_threads(THREADS)
    preset = prep.preset
    max_iters, budget, warmup = ITERS.get(preset, (20, 1.5, 1))
    ck = load_checkpoint(prep.checkpoint)
    cfg, nets = ck.config, ck.networks
    steps = cfg.architecture.flow_steps
    res = PresetResult(preset=preset, params=prep.params, flops=prep.flops, export_s=prep.export_s)
    io = graph_io(cfg)
    rng = np.random.default_rng(0)
    obs = synthetic_observations(cfg, count=HOLDOUT_OBS, seed=2)  # unseen by the calibration (seed 1)
    shape = io[PREDICTIVE_EXPERT][0][-1].shape
    fp32 = {n: OrtRunner(p, THREADS) for n, p in prep.graphs.items()}
    int8: dict[str, Runner] = {n: OrtRunner(p, THREADS) for n, p in prep.int8["s8"].items()}
    int8_u8: dict[str, Runner] = {n: OrtRunner(p, THREADS) for n, p in prep.int8["u8"].items()}
    eager = torch_runners(nets, cfg)
    engines: dict[str, dict[str, Runner]] = {
        "torch": eager,
        "ort_fp32": dict(fp32),
        "ort_int8": int8,
        "ort_int8_u8": int8_u8,
    }

    say(f"{preset}: timing networks")
    for n in GRAPH_ORDER:
        feed = random_feed(io[n][0], cfg, rng)
        res.networks[n] = measure(
            {e: _call(runners[n], feed) for e, runners in engines.items()}, max_iters, budget, warmup
        )
    say(f"{preset}: timing policy steps")
    o = obs[0]
    z = rng.standard_normal(shape).astype(np.float32)
    flow = measure(
        {m: _chain_fn(engines["ort_fp32"], o, z, "predictive", steps, m) for m in ("unrolled", "step")},
        max_iters,
        budget,
        warmup,
    )
    mode = "unrolled" if flow["unrolled"].p50 <= flow["step"].p50 else "step"
    res.flow = {
        "unrolled_path_p50": flow["unrolled"].p50,
        "step_path_p50": flow["step"].p50,
        "unrolled_is_default": mode == "unrolled",
    }
    for path in ("reactive", "predictive"):
        res.steps[path] = measure(
            {e: _chain_fn(runners, o, z, path, steps, mode) for e, runners in engines.items()},
            max_iters,
            budget,
            warmup,
        )

    one = {n: OrtRunner(p, 1) for n, p in prep.graphs.items()}
    res.cpu_1thread = measure(
        {path: _chain_fn(one, o, z, path, steps, mode) for path in ("reactive", "predictive")},
        max_iters,
        budget,
        warmup,
        clock=time.thread_time,
    )

    t_out = [PolicyChain(eager, steps, mode).run(h, z) for h in obs[:3]]
    f_out = [PolicyChain(engines["ort_fp32"], steps, mode).run(h, z) for h in obs]
    # World model and reactive expert INT8 (s8), the rest FP32 (FP16 graphs are not a speed path on this CPU):
    # the fastest mix an INT8 bundle takes when both measure safe (the exporter measures each bundle's own).
    plan = {**engines["ort_fp32"], WORLD_MODEL: int8[WORLD_MODEL], REACTIVE_EXPERT: int8[REACTIVE_EXPERT]}
    i_out = [PolicyChain(plan, steps, mode).run(h, z) for h in obs]
    res.parity_max_action = max(
        float(max(np.abs(a.reactive - b.reactive).max(), np.abs(a.predictive - b.predictive).max()))
        for a, b in zip(t_out, f_out[:3], strict=True)
    )
    acc = accuracy(cfg, f_out, i_out)
    res.int8_pct_p99 = max(v["pct_range_p99"] for v in acc["end_to_end"].values())
    res.int8_gate_agreement = acc["gate"]["decision_agreement"]
    return res


def _row(metric: str, value: float, unit: str, target: str | None = None, ok: bool | None = None) -> dict[str, Any]:
    return {"metric": metric, "value": float(f"{float(value):.4g}"), "unit": unit, "target": target, "ok": ok}


def rows_for(r: PresetResult) -> list[dict[str, Any]]:
    p = r.preset
    rows = [_row(f"{p} params total", r.params["total"] / 1e6, "M")]
    for n in GRAPH_ORDER:
        rows.append(_row(f"{p} {n} params", r.params[n] / 1e6, "M"))
        rows.append(_row(f"{p} {n} FLOPs", r.flops[n] / 1e9, "GFLOP"))
        t = r.networks[n]
        for e in ENGINES:
            rows.append(_row(f"{p} {n} {e} p50", t[e].p50, "ms"))
            rows.append(_row(f"{p} {n} {e} p99", t[e].p99, "ms"))
        rows.append(_row(f"{p} {n} ort_fp32 speed-up vs torch", t["torch"].p50 / t["ort_fp32"].p50, "x"))
        for e in ("ort_int8", "ort_int8_u8"):
            ratio = t["ort_fp32"].p50 / t[e].p50
            if n == WORLD_MODEL:
                rows.append(_row(f"{p} {n} {e} speed-up vs fp32", ratio, "x", ">= 1.5x", ratio >= 1.5))
            else:
                rows.append(_row(f"{p} {n} {e} speed-up vs fp32", ratio, "x"))
    for path in ("reactive", "predictive"):
        s = r.steps[path]
        for e in ENGINES:
            target, ok = None, None
            if p == "small" and path == "predictive" and e == "ort_fp32":
                target, ok = f"<= {PREDICTIVE_PATH_TARGET_MS:.1f} ms", s[e].p50 <= PREDICTIVE_PATH_TARGET_MS
            rows.append(_row(f"{p} {path} path {e} p50", s[e].p50, "ms", target, ok))
            rows.append(_row(f"{p} {path} path {e} p99", s[e].p99, "ms"))
        speed = s["torch"].p50 / s["ort_fp32"].p50
        rows.append(_row(f"{p} {path} path ort_fp32 speed-up vs torch", speed, "x", ">= 3x", speed >= 3.0))
        for e in ("ort_int8", "ort_int8_u8"):
            rows.append(_row(f"{p} {path} path {e} speed-up vs fp32", s["ort_fp32"].p50 / s[e].p50, "x"))
    for path, cpu in r.cpu_1thread.items():
        rows.append(_row(f"{p} {path} path ort_fp32 1-thread CPU time p50 (load-independent work)", cpu.p50, "ms"))
    ratio = r.steps["reactive"]["ort_fp32"].p50 / r.steps["predictive"]["ort_fp32"].p50
    target = "<= 0.333" if p == "small" else None
    rows.append(
        _row(f"{p} reactive/predictive path ort_fp32", ratio, "ratio", target, ratio <= 1 / 3 if target else None)
    )
    rows.append(_row(f"{p} predictive path unrolled graph p50", r.flow["unrolled_path_p50"], "ms"))
    rows.append(_row(f"{p} predictive path step graph looped p50", r.flow["step_path_p50"], "ms"))
    rows.append(
        _row(f"{p} ONNX vs torch max action error", r.parity_max_action, "rad", "<= 1e-4", r.parity_max_action <= 1e-4)
    )
    rows.append(
        _row(
            f"{p} INT8 s8 wm + reactive expert, action error p99 (untrained, synthetic)",
            r.int8_pct_p99,
            "% range",
            "<= 1 %",
            r.int8_pct_p99 <= 1.0,
        )
    )
    rows.append(
        _row(
            f"{p} INT8 gate decision agreement",
            100 * r.int8_gate_agreement,
            "%",
            ">= 99 %",
            r.int8_gate_agreement >= 0.99,
        )
    )
    rows.append(_row(f"{p} export time (one worker, shared cores)", r.export_s, "s"))
    return rows


@dataclass
class BenchRun:
    """What `run_bench` hands the CLI, which builds the report of docs/architecture.md §5 (this package may not
    import it): rows as dicts, export's own machine facts, notes for people, and every preset's timings for its
    per-preset tables."""

    rows: list[dict[str, Any]]
    machine: dict[str, Any]
    notes: list[str]
    results: list[PresetResult]


def run_bench(
    presets: Sequence[str] = PRESETS, say: Callable[[str], None] = lambda _m: None, workers: int = 2
) -> BenchRun:
    """Prepare every preset (export + INT8) in `workers` processes, then time them one after another here."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    t0 = time.perf_counter()
    load_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory(prefix="harmowam-export-bench-") as tmp:
        say(f"exporting and quantizing {', '.join(presets)} ({workers} worker processes)")
        # Biggest first, so the two workers finish at about the same time.
        order = sorted(presets, key=lambda p: -PRESETS.index(p) if p in PRESETS else 0)
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {p: pool.submit(prepare_preset, p, Path(tmp)) for p in order}
            prepared = {p: f.result() for p, f in futures.items()}
        say(
            f"prepared in {time.perf_counter() - t0:.0f} s; timing one preset at a time "
            f"(load average {os.getloadavg()[0]:.2f}: other processes share these cores)"
        )
        results = []
        for p in presets:
            results.append(bench_preset(prepared[p], say))
    return BenchRun(
        rows=[row for r in results for row in rows_for(r)],
        machine={"threads_used": THREADS, "load_avg_1m_at_start": load_start},
        notes=[
            "shared machine: other processes may run; medians and ratios from one run, engines interleaved",
            f"ONNX Runtime sessions: {ort_settings(THREADS)} (the runtime's `bench` uses the same)",
        ],
        results=results,
    )

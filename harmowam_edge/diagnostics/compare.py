"""`harmowam-edge bench --bundle A --bundle B ...`: policy steps of several bundles timed interleaved, in one run.

A student against its teacher, or a bundle's INT8 graphs against its FP32 ones: the figure that matters is the
ratio, and only bundles timed round by round in the same process see the same machine (a neighbour's load, the
CPU's clock, the allocator's state). Per bundle: the predictive path (world model + gate + every flow step), the
world model alone, and the reactive path; ratios against the first bundle.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from harmowam_edge.bundle.loader import LoadedBundle, load_bundle
from harmowam_edge.bundle.schema import WORLD_MODEL
from harmowam_edge.diagnostics.bench import synthetic_observation
from harmowam_edge.policy.policy import Policy
from harmowam_edge.telemetry.benchreport import BenchReport, load_average_1m

STUDENT_TARGET_MS = 10.0  # distillation issue: the student's predictive path, ONNX Runtime FP32, 2 threads
INT8_WORLD_MODEL_SPEEDUP = 1.5  # an INT8 world model against the FP32 one on the same CPU
PATHS = ("predictive", "world_model", "reactive")


def _precisions(bundle: LoadedBundle) -> str:
    return ", ".join(f"{n} {g.precision}" for n, g in bundle.graphs.items())


def _label(path: Path, bundle: LoadedBundle) -> str:
    m = bundle.manifest
    return (
        f"{path.name} ({m.provenance.preset}, {m.policy.flow_steps} flow steps, {bundle.graphs[WORLD_MODEL].precision})"
    )


def compare_bundles(
    paths: Sequence[Path],
    *,
    iterations: int = 200,
    threads: int | None = 2,
    say: Callable[[str], None] = print,
) -> BenchReport:
    """Time every bundle's paths round-robin (one call of each per round); the first bundle is the reference."""
    if len(paths) < 2:
        raise ValueError("compare_bundles: expected at least two bundles")
    report = BenchReport("runtime-compare", machine_extra={"load_avg_1m_at_start": load_average_1m()})
    bundles: list[LoadedBundle] = []
    try:
        for p in paths:
            say(f"loading {p} ...")
            bundles.append(load_bundle(p, threads=threads))
        _compare(paths, bundles, iterations, report, say)
    finally:
        for b in bundles:
            b.close()
    return report


def _compare(
    paths: Sequence[Path], bundles: list[LoadedBundle], iterations: int, report: BenchReport, say: Callable[[str], None]
) -> None:
    calls: list[dict[str, Callable[[], object]]] = []
    for b in bundles:
        policy = Policy(b, b.manifest.tasks.names[0], seed=0)
        obs = synthetic_observation(b, time.monotonic())
        feeds = policy._feeds(obs)
        wm = b.engines[WORLD_MODEL]
        calls.append(
            {
                "predictive": functools.partial(policy.step, obs, force="predictive"),
                "world_model": functools.partial(wm.run, feeds),
                "reactive": functools.partial(policy.step, obs, force="reactive"),
            }
        )
    say(f"{len(bundles)} bundles x {len(PATHS)} paths, {iterations} rounds, interleaved ...")
    times: list[dict[str, list[float]]] = [{k: [] for k in PATHS} for _ in bundles]
    for _ in range(max(3, iterations // 10)):  # warm-up, not timed
        for c in calls:
            for k in PATHS:
                c[k]()
    for _ in range(iterations):
        for i, c in enumerate(calls):
            for k in PATHS:
                t0 = time.perf_counter()
                c[k]()
                times[i][k].append(time.perf_counter() - t0)
    p50 = [{k: float(np.median(v)) * 1000.0 for k, v in t.items()} for t in times]
    labels = [_label(p, b) for p, b in zip(paths, bundles, strict=True)]
    details = []
    for i, (label, b) in enumerate(zip(labels, bundles, strict=True)):
        ms = {k: np.asarray(v) * 1000.0 for k, v in times[i].items()}
        fp32 = all(g.precision == "fp32" for g in b.graphs.values())
        threads = getattr(next(iter(b.engines.values())), "threads", None)
        target = f"<= {STUDENT_TARGET_MS:g} ms (a student, FP32, 2 threads)" if i == 0 and fp32 and threads == 2 else ""
        report.add(
            f"{label}: predictive path p50",
            p50[i]["predictive"],
            "ms",
            target,
            (p50[i]["predictive"] <= STUDENT_TARGET_MS) if target else None,
        )
        report.add(f"{label}: predictive path p99", float(np.quantile(ms["predictive"], 0.99)), "ms")
        report.add(f"{label}: world model p50", p50[i]["world_model"], "ms")
        report.add(f"{label}: reactive path p50", p50[i]["reactive"], "ms")
        details.append(
            {
                "bundle": str(paths[i]),
                "preset": b.manifest.provenance.preset,
                "flow_steps": b.manifest.policy.flow_steps,
                "flow_mode": b.flow_mode,
                "backend": b.backend,
                "threads": threads,
                "graphs": _precisions(b),
                "ms": {k: {"p50": float(np.median(v)), "p99": float(np.quantile(v, 0.99))} for k, v in ms.items()},
            }
        )
    ref = bundles[0]
    for i in range(1, len(bundles)):
        report.add(
            f"predictive path: {paths[i].name} / {paths[0].name} (p50)",
            p50[i]["predictive"] / p50[0]["predictive"],
            "x",
        )
        a, b_prec = ref.graphs[WORLD_MODEL].precision, bundles[i].graphs[WORLD_MODEL].precision
        speedup = p50[0]["world_model"] / p50[i]["world_model"]
        int8_vs_fp32 = a == "fp32" and b_prec == "int8"
        report.add(
            f"world model speed-up: {paths[i].name} ({b_prec}) vs {paths[0].name} ({a})",
            speedup,
            "x",
            f">= {INT8_WORLD_MODEL_SPEEDUP:g}x (INT8 vs FP32)" if int8_vs_fp32 else "",
            (speedup >= INT8_WORLD_MODEL_SPEEDUP) if int8_vs_fp32 else None,
        )
    report.details["bundles"] = details
    report.details["iterations"] = iterations
    report.notes.append(
        "bundles timed round by round in one process (one call of each path of each bundle per round), so the "
        "machine's load falls on all alike: the ratios are the figures; absolute times move with the neighbours"
    )
    report.notes.append(
        "synthetic frames: a policy step's time does not depend on the pixels or on the weights' values"
    )

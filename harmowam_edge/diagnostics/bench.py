"""`harmowam-edge bench`: the runtime's figures (design §6), as a table and JSON (architecture.md §5).

- policy step p50/p99 per path (predictive only, reactive only, both blended) and the reactive/predictive ratio;
- runtime overhead: a policy step vs the sum of its bare engine calls, measured interleaved in one loop;
- the control loop at 200 Hz while inference runs: period jitter p99, missed ticks, frame → setpoint latency —
  the real `run_policy` on a synthetic RealSense recording played through pyrealsense2 and the firmware
  simulator on a pseudo-terminal;
- start-up to the first setpoint with a warm bundle (files in the page cache): `load_bundle` + `run_policy`.
Medians and ratios from one run; on a shared machine the absolute figures move with the neighbours' load.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from harmowam_edge.bundle.loader import LoadedBundle, load_bundle
from harmowam_edge.bundle.schema import (
    FLOW_DT,
    FLOW_STATE,
    FLOW_TIME,
    GATE,
    NOISE,
    PREDICTIVE_EXPERT,
    PREDICTIVE_EXPERT_STEP,
    REACTIVE_EXPERT,
    WORLD_MODEL,
)
from harmowam_edge.cameras.frames import Frame
from harmowam_edge.policy.policy import Observation, Policy
from harmowam_edge.telemetry.benchreport import BenchReport, load_average_1m

POLICY_TARGET_MS = 20.8  # design §6: small preset, predictive path, ONNX Runtime FP32 on 2 CPU cores
TARGET_PRESET = "small"


def synthetic_observation(bundle: LoadedBundle, t: float) -> Observation:
    frames = []
    for i, cam in enumerate(bundle.manifest.cameras):
        yy, xx = np.mgrid[0 : cam.height, 0 : cam.width]
        rgb = np.stack([(xx * 255 // cam.width), (yy * 255 // cam.height), np.full_like(xx, 90 + i)], -1)
        depth = (800 + yy).astype(np.uint16) if cam.has_depth else None
        frames.append(Frame(cam.name, rgb.astype(np.uint8), t, 1, depth=depth))
    return Observation(frames, np.zeros(bundle.manifest.policy.action_dim))


def bench_policy(bundle: LoadedBundle, iterations: int, report: BenchReport) -> None:
    """Policy step per path, and the overhead over bare engine calls (interleaved, same feeds)."""
    preset = bundle.manifest.provenance.preset
    policy = Policy(bundle, bundle.manifest.tasks.names[0], seed=0)
    obs = synthetic_observation(bundle, time.monotonic())
    per_path: dict[str, list[float]] = {"predictive": [], "reactive": [], "blend": []}
    # Interleaved, one step of each path per round: timed one path after the other, whichever came first took
    # the machine's drift (warm-up, allocator growth, neighbours) and a blended step measured faster than a
    # predictive one.
    for _ in range(max(3, iterations // 10)):
        for mode in per_path:
            policy.step(obs, force=mode)  # type: ignore[arg-type]
    for _ in range(iterations):
        for mode in per_path:
            t0 = time.perf_counter()
            policy.step(obs, force=mode)  # type: ignore[arg-type]
            per_path[mode].append(time.perf_counter() - t0)
    # Bare engine calls with the feeds a step builds, alternating with full policy steps: each engine's own call
    # (ONNX Runtime's InferenceSession.run) on ready-made feeds; the step graph N times in `step` flow mode.
    feeds = policy._feeds(obs)
    e = bundle.engines
    feeds.update(e[WORLD_MODEL].run(feeds))
    noise = np.zeros((1, policy.k, policy.a), np.float32)
    if bundle.flow_mode == "unrolled":
        feeds[NOISE] = noise
        flow = [e[PREDICTIVE_EXPERT]]
    else:
        n = bundle.manifest.policy.flow_steps
        feeds.update({FLOW_STATE: noise, FLOW_TIME: np.zeros(1, np.float32), FLOW_DT: np.full(1, 1 / n, np.float32)})
        flow = [e[PREDICTIVE_EXPERT_STEP]] * n
    engines = [e[WORLD_MODEL], e[GATE], e[REACTIVE_EXPERT], *flow]
    calls = [getattr(eng, "bare", eng.run) for eng in engines]
    bare, full = [], []
    for _ in range(iterations):
        t0 = time.perf_counter()
        for call in calls:
            call(feeds)
        t1 = time.perf_counter()
        policy.step(obs, force="blend")
        t2 = time.perf_counter()
        bare.append(t1 - t0)
        full.append(t2 - t1)
    overhead = float(np.median(full) / np.median(bare) - 1.0)
    ms = {k: np.asarray(v) * 1000.0 for k, v in per_path.items()}
    is_target = preset == TARGET_PRESET
    note = "" if is_target else f" (target for the {TARGET_PRESET} preset; this is {preset})"
    p50 = {k: float(np.median(v)) for k, v in ms.items()}
    report.add(
        "policy step p50, predictive path",
        p50["predictive"],
        "ms",
        f"<= {POLICY_TARGET_MS} ms{note}",
        (p50["predictive"] <= POLICY_TARGET_MS) if is_target else None,
    )
    report.add("policy step p99, predictive path", float(np.quantile(ms["predictive"], 0.99)), "ms")
    report.add("policy step p50, reactive path", p50["reactive"], "ms")
    report.add("policy step p99, reactive path", float(np.quantile(ms["reactive"], 0.99)), "ms")
    report.add("policy step p50, blended (both experts)", p50["blend"], "ms")
    report.add("policy step p99, blended (both experts)", float(np.quantile(ms["blend"], 0.99)), "ms")
    ratio = p50["reactive"] / p50["predictive"]
    report.add("reactive / predictive path (p50)", ratio, "x", "<= 0.333", ratio <= 1 / 3)
    report.add(
        "runtime overhead: policy step vs bare engine calls (p50)", overhead * 100, "%", "<= 5 %", overhead <= 0.05
    )
    eng = next(iter(bundle.engines.values()))
    report.notes.append(
        f"policy steps: {bundle.flow_mode} flow graph ({bundle.manifest.policy.flow_steps} steps), "
        f"sessions: {getattr(eng, 'settings', bundle.backend)}"
    )
    report.details["policy_ms"] = {
        k: {"p50": float(np.median(v)), "p99": float(np.quantile(v, 0.99)), "n": len(v)} for k, v in ms.items()
    }
    report.details["bundle"] = {
        "preset": preset,
        "flow_mode": bundle.flow_mode,
        "flow_steps": bundle.manifest.policy.flow_steps,
        "backend": bundle.backend,
        "threads": getattr(next(iter(bundle.engines.values())), "threads", None),
        "session": getattr(next(iter(bundle.engines.values())), "settings", bundle.backend),
        "cameras": [c.describe() for c in bundle.manifest.cameras],
    }


def _rig_parts(bundle: LoadedBundle, workdir: Path) -> tuple[list[Any], list[Any]]:
    """Firmware simulators (one per arm, with the bundle's limits) and looping synthetic recordings.

    The C firmware built for the host runs in a process of its own, as the real firmware runs on its own MCU;
    without a C compiler the Python simulator stands in (in this process, sharing its GIL: a harsher test)."""
    from firmware_bridge import CFirmwareSimulator, FirmwareSimulator, SimArmConfig
    from firmware_bridge.c_simulator import find_compiler
    from firmware_bridge.errors import CompilerNotFoundError

    try:
        find_compiler()
        use_c = True
    except CompilerNotFoundError:
        use_c = False
    from harmowam_edge.cameras.realsense import RealSenseSource
    from harmowam_edge.cameras.synthetic import write_synthetic_recording

    sims = []
    for arm in bundle.manifest.action_space.arms:
        g = arm.gripper
        kw: dict[str, Any] = {"has_gripper": g is not None}
        if g is not None:
            kw.update(
                gripper_min=g.lower,
                gripper_max=g.upper,
                gripper_max_velocity=g.max_velocity,
                gripper_max_acceleration=g.max_acceleration,
            )
        cfg = SimArmConfig(
            joint_count=len(arm.joints),
            position_min=[j.lower for j in arm.joints],
            position_max=[j.upper for j in arm.joints],
            max_velocity=[j.max_velocity for j in arm.joints],
            max_acceleration=[j.max_acceleration for j in arm.joints],
            **kw,
        )
        sims.append(CFirmwareSimulator(cfg) if use_c else FirmwareSimulator(cfg))
    cams = []
    for cam in bundle.manifest.cameras:
        rec = write_synthetic_recording(
            workdir / f"{cam.name}.db3",
            width=cam.width,
            height=cam.height,
            fps=cam.fps,
            frames=cam.fps,
            depth=cam.has_depth,
        )
        cams.append(RealSenseSource.playback(cam, rec.path, loop=True))
    return sims, cams


def _start(sims: list[Any]) -> list[str]:
    """Start the firmware simulators; a C one (its own process) gets a real-time priority where allowed: it
    stands for the arm's microcontroller, which no inference load on the host can delay."""
    ports = [s.start() for s in sims]
    for s in sims:
        pid = getattr(s, "pid", None)
        if pid and hasattr(os, "sched_setscheduler"):
            with contextlib.suppress(PermissionError, OSError):
                os.sched_setscheduler(pid, os.SCHED_FIFO, os.sched_param(60))
    return ports


def bench_loop(
    bundle_path: Path,
    bundle: LoadedBundle,
    duration_s: float,
    report: BenchReport,
    say: Callable[[str], None],
    threads: int | None = None,
) -> None:
    from harmowam_edge.control.loop import Rig, RunOptions, run_policy
    from harmowam_edge.control.safety import SafetyConfig

    with tempfile.TemporaryDirectory(prefix="harmowam-bench-") as tmp:
        sims, cams = _rig_parts(bundle, Path(tmp))
        ports = _start(sims)
        try:
            say(f"control loop at 200 Hz for {duration_s:g} s while inference runs ...")
            summary = run_policy(
                bundle,
                Rig(ports, cams, name="bench (firmware simulator on a PTY, recording playback)"),
                RunOptions(task=bundle.manifest.tasks.names[0], duration_s=duration_s, safety=SafetyConfig()),
            )
            stats = summary.stats
            loop = stats["loop"]
            report.add(
                "control loop period jitter p99 (200 Hz, inference running)",
                loop["jitter_ms_p99"],
                "ms",
                "<= 1 ms",
                loop["jitter_ms_p99"] <= 1.0,
            )
            report.add(
                f"missed control ticks in {duration_s:g} s",
                loop["missed_ticks"],
                "ticks",
                "0 (in 60 s)",
                loop["missed_ticks"] == 0,
            )
            report.add("control loop rate", loop["rate_hz"], "Hz", "200 Hz")
            f2s = stats["frame_to_setpoint_ms"]
            report.add("frame -> setpoint latency p50", f2s["p50"], "ms")
            report.add("frame -> setpoint latency p99", f2s["p99"], "ms")
            report.add("policy step p50 during the run", stats["inference_ms"]["total"]["p50"], "ms")
            by = stats["missed_ticks_by_inference"]
            report.add("missed control ticks while a policy step ran", by["while_inferring"], "ticks")
            report.add("missed control ticks with inference idle", by["while_idle"], "ticks")
            if by["inference_busy_fraction"] is not None:
                report.add("share of the run a policy step was running", by["inference_busy_fraction"] * 100, "%")
            report.details["loop_run"] = {
                k: stats[k]
                for k in (
                    "reason",
                    "loop",
                    "missed_ticks_by_inference",
                    "chunks",
                    "gate",
                    "startup_s",
                    "control_priority",
                )
            }
            report.details["firmware"] = type(sims[0]).__name__
            report.notes.append(f"control thread: {stats['control_priority']}; firmware: {type(sims[0]).__name__}")
            if not summary.clean:
                report.notes.append(f"the loop run stopped early: {summary.reason.kind}: {summary.reason.message}")
            # Start-up with a warm bundle: load (verify, sessions, warm-up) + open link + camera + enable.
            say("start-up to the first setpoint with a warm bundle ...")
            startups, policy_startups = [], []
            for _ in range(3):
                # A fresh firmware each time, as after a power-up (the loop run may have ended in an e-stop).
                for sim in sims:
                    sim.stop()
                ports = _start(sims)
                t_launch = time.monotonic()
                b2 = load_bundle(bundle_path, threads=threads)
                try:
                    s2 = run_policy(
                        b2,
                        Rig(ports, cams, name="bench"),
                        RunOptions(task=b2.manifest.tasks.names[0], duration_s=1.0, t_launch=t_launch),
                    )
                finally:
                    b2.close()
                st = s2.stats["startup_s"]
                if st["first_setpoint"] is not None:
                    startups.append(st["first_setpoint"])
                if st["first_policy_setpoint"] is not None:
                    policy_startups.append(st["first_policy_setpoint"])
            if startups:
                med = float(np.median(startups))
                report.add("start-up to first setpoint (warm bundle, median of 3)", med, "s", "<= 3 s", med <= 3.0)
            if policy_startups:
                report.add("start-up to first policy setpoint (median of 3)", float(np.median(policy_startups)), "s")
        finally:
            for s in sims:
                s.stop()


def bench_platform_loop(duration_s: float, report: BenchReport | None, priority: int = 50) -> dict[str, Any]:
    """The same 200 Hz sleep-then-spin loop with no work at all, at the control thread's priority: how often this
    machine alone stalls a thread by a period or more, so the loop's missed ticks can be read against it (on a
    VM, vCPU preemption stalls even an empty loop). Added to `report` when given; returns its summary."""
    import threading

    from harmowam_edge.control.timing import RateKeeper
    from harmowam_edge.telemetry.stats import PeriodRecorder

    rate = 200.0
    rec = PeriodRecorder(1.0 / rate)
    prio = ["normal priority"]

    def loop() -> None:
        with contextlib.suppress(AttributeError, PermissionError, OSError):
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
            prio[0] = f"SCHED_FIFO {priority}"
        rk = RateKeeper(rate)
        end = time.monotonic() + duration_s
        while True:
            tick = rk.wait()
            if tick.t_start >= end:
                break
            rec.tick(tick.t_start, tick.t_due, tick.missed)

    t = threading.Thread(target=loop, name="platform-baseline")
    t.start()
    t.join()
    summary: dict[str, Any] = {**rec.summary(), "priority": prio[0]}
    if report is not None:
        _report_platform(report, duration_s, [summary])
    return summary


def _report_platform(report: BenchReport, duration_s: float, parts: list[dict[str, Any]]) -> None:
    missed = sum(p["missed_ticks"] for p in parts)
    how = f"{len(parts)} halves around the loop run, " if len(parts) > 1 else ""
    report.add(
        f"platform baseline: missed ticks in {duration_s:g} s, empty 200 Hz loop ({how}{parts[0]['priority']})",
        missed,
        "ticks",
    )
    report.add("platform baseline: longest period, empty 200 Hz loop", max(p["period_ms_max"] for p in parts), "ms")
    report.details["platform_loop"] = parts


def run_bench(
    bundle_path: Path,
    *,
    duration_s: float = 60.0,
    iterations: int = 200,
    threads: int | None = None,
    say: Callable[[str], None] = print,
) -> BenchReport:
    load_at_start = load_average_1m()
    report = BenchReport("runtime", machine_extra={"load_avg_1m_at_start": load_at_start})
    say(f"loading {bundle_path} ...")
    bundle = load_bundle(bundle_path, threads=threads)
    try:
        say(f"policy step per path ({iterations} steps each, {bundle.backend}) ...")
        bench_policy(bundle, iterations, report)
        # The baseline in two halves, before and after the loop run, so that a change in the neighbours' load
        # during the bench falls on both figures alike.
        say(f"platform baseline: an empty 200 Hz loop for {duration_s / 2:g} s ...")
        before = bench_platform_loop(duration_s / 2, None)
        bench_loop(bundle_path, bundle, duration_s, report, say, threads)
        say(f"platform baseline: an empty 200 Hz loop for another {duration_s / 2:g} s ...")
        after = bench_platform_loop(duration_s / 2, None)
        _report_platform(report, duration_s, [before, after])
    finally:
        bundle.close()
    report.notes.append(
        "one run on a machine shared with other jobs: medians and ratios are meaningful, absolute times move with "
        f"the load (1-minute load average at the start: {load_at_start})"
    )
    if duration_s < 60:
        report.notes.append(f"loop measured for {duration_s:g} s (the target figure is over 60 s)")
    return report

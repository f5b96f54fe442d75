"""`harmowam-edge sim bench`: what the simulated rig costs on this machine (docs/architecture.md §5 format).

Figures are medians measured in one run; the machine may be shared, so they are for comparison, not promises.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from harmowam_edge.bundle.schema import CameraSpec
from harmowam_edge.sim.camera import SceneRenderer, depth_to_z16
from harmowam_edge.sim.world import SimWorld
from harmowam_edge.telemetry.benchreport import BenchReport


def _median_ms(fn: Callable[[], object], repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(samples)


def bench_render(report: BenchReport, width: int, height: int, fps: int = 30, repeats: int = 30) -> None:
    """One RGB-D frame as the camera thread makes it: scene snapshot, render, read back, z16 conversion."""
    spec = CameraSpec("front", width, height, fps, ("color", "depth"))
    world = SimWorld(1, [spec], seed=0)
    renderer = SceneRenderer(world, spec.name, width, height)
    try:

        def frame() -> None:
            renderer.snapshot()
            _, depth = renderer.render()
            depth_to_z16(depth, spec.depth_units_m)

        ms = _median_ms(frame, repeats)
    finally:
        renderer.close()
    budget = 1e3 / fps
    report.add(f"render RGB-D {width}x{height} p50", ms, "ms", f"<= {budget:.1f} ms ({fps} fps)", ms <= budget)


def bench_physics(report: BenchReport, arms: int = 1, seconds: float = 3.0) -> None:
    world = SimWorld(arms, [], seed=0)
    n = 2000
    t0 = time.perf_counter()
    world.step(n)
    per_step = (time.perf_counter() - t0) / n
    dt = float(world.model.opt.timestep)
    report.add(f"physics step ({arms} arm{'s' if arms > 1 else ''}, 4 objects)", per_step * 1e6, "us")
    report.add(f"physics max speed ({arms} arm{'s' if arms > 1 else ''})", dt / per_step, "x real time", ">= 1", None)
    world.reset(0)
    world.start()
    time.sleep(seconds)
    stats = world.stats()
    world.stop()
    rtf = stats.real_time_factor
    report.add(
        f"physics thread real-time factor ({arms} arm{'s' if arms > 1 else ''})",
        rtf,
        "x",
        ">= 0.98",
        rtf >= 0.98 and stats.lag_resets == 0,
    )


def bench_rig(report: BenchReport, seconds: float = 4.0, width: int = 640, height: int = 480) -> None:
    """The rig as the runtime uses it: 200 Hz setpoints over the PTY, a 30 fps RGB-D camera, physics."""
    from firmware_bridge import ArmLink, FirmwareSimulator
    from harmowam_edge.sim.arm import HOME
    from harmowam_edge.sim.rig import open_sim_rig

    spec = CameraSpec("front", width, height, 30, ("color", "depth"))
    t_open = time.perf_counter()
    with open_sim_rig(1, [spec], seed=0) as rig, ArmLink.open(rig.arm_ports[0], arm=rig.arm_addresses[0]) as link:
        opened = time.perf_counter() - t_open
        link.wait_state(1.0)
        link.enable()
        cam, sim, plant = rig.sim_cameras[0], rig.simulators[0], rig.plants[0]
        assert isinstance(sim, FirmwareSimulator)  # opened without a servo bus: the protocol firmware simulator
        home = np.array(HOME)
        tracking, ages, late = [], [], 0
        last_frame = 0
        t0 = time.monotonic()
        k = 0
        frames0 = cam.health().frames
        sim0, wall0 = rig.world.sim_time, time.monotonic()
        while (t := time.monotonic() - t0) < seconds:
            q = home.copy()
            q[0] = 0.8 * math.sin(2 * math.pi * 0.4 * t)
            v = np.zeros(6)
            v[0] = 0.8 * 2 * math.pi * 0.4 * math.cos(2 * math.pi * 0.4 * t)
            link.send_setpoint(q, v, 0.08)
            if k % 10 == 0:
                ref = np.array(sim.status().reference[:6])
                tracking.append(float(np.abs(ref - plant.measure().positions).max()))
            f = cam.latest()
            if f is not None and f.frame_number != last_frame:
                last_frame = f.frame_number
                ages.append(time.monotonic() - f.t_capture)
            k += 1
            delay = t0 + k / 200.0 - time.monotonic()
            if delay < -0.005:
                late += 1
            time.sleep(max(0.0, delay))
        health = cam.health()
        stats = link.stats
        rtf = (rig.world.sim_time - sim0) / (time.monotonic() - wall0)
        link.disable()
    fps = (health.frames - frames0) / seconds
    report.add("rig start-up (physics, firmware PTY, camera)", opened * 1e3, "ms")
    p50, p99 = stats.rtt_p50_s, stats.rtt_p99_s
    if p50 is not None and p99 is not None:
        report.add("rig setpoint->state echo p50 (PTY + MuJoCo plant)", p50 * 1e3, "ms", "<= 2 ms", p50 <= 0.002)
        report.add("rig setpoint->state echo p99 (camera rendering too)", p99 * 1e3, "ms", "<= 2 ms", p99 <= 0.002)
    else:
        report.notes.append("no setpoint->state echo was measured (no state echoed a setpoint)")
    report.add(
        "plant tracking |reference - measured| p50",
        1e3 * statistics.median(tracking),
        "mrad",
        "<= 5 mrad",
        statistics.median(tracking) <= 0.005,
    )
    report.add(f"camera delivered rate ({width}x{height} RGB-D, rig running)", fps, "fps", ">= 29", fps >= 29)
    report.add("camera frame age when read (now - t_capture) p50", 1e3 * statistics.median(ages), "ms")
    report.add("camera dropped frames", float(health.dropped), "frames", "0", health.dropped == 0)
    report.add("physics real-time factor (rig running)", rtf, "x", ">= 0.98", rtf >= 0.98)
    report.add("bench stream 200 Hz ticks > 5 ms late", float(late), "ticks")


def bench_closed_loop(report: BenchReport, bundle_path: Path, seconds: float = 10.0) -> None:
    """`run --sim` as the runtime wires it: the bundle's policy closing the loop on the simulated rig."""
    from harmowam_edge.bundle.loader import load_bundle
    from harmowam_edge.control.loop import Rig, RunOptions, run_policy
    from harmowam_edge.control.safety import SafetyConfig
    from harmowam_edge.sim.rig import open_sim_rig

    bundle = load_bundle(bundle_path)
    try:
        m = bundle.manifest
        with open_sim_rig(len(m.action_space.arms), list(m.cameras), 0, action_space=m.action_space) as rig:
            summary = run_policy(
                bundle,
                Rig(list(rig.arm_ports), list(rig.cameras), name="sim"),
                RunOptions(
                    task=m.tasks.names[0],
                    duration_s=seconds,
                    handle_signals=False,
                    safety=SafetyConfig(state_timeout_s=0.5),
                ),
            )
    finally:
        bundle.close()
    st = summary.stats
    cam = ", ".join(f"{c.name} {c.width}x{c.height}" for c in m.cameras)
    report.notes.append(
        f"closed loop: {bundle_path.name} ({m.provenance.preset}, {'UNTRAINED' if m.provenance.untrained else ''}), "
        f"{cam}, {seconds:.0f} s, stopped: {summary.reason.kind}"
    )
    loop = st.get("loop", {})
    report.add("sim loop: control rate (run --sim, 200 Hz target)", loop.get("rate_hz", 0.0), "Hz", "~200")
    jitter = float(loop.get("jitter_ms_p99", 0.0))
    missed = float(loop.get("missed_ticks", 0))
    report.add("sim loop: period jitter p99", jitter, "ms", "<= 1 ms (runtime target)", jitter <= 1.0)
    report.add("sim loop: missed ticks", missed, "ticks", "0", missed == 0)
    f2s = st.get("frame_to_setpoint_ms", {})
    report.add("sim loop: frame -> setpoint p50", f2s.get("p50") or 0.0, "ms")
    report.add("sim loop: frame -> setpoint p99", f2s.get("p99") or 0.0, "ms")
    total = st.get("inference_ms", {}).get("total", {})
    report.add("sim loop: policy step p50", total.get("p50") or 0.0, "ms")
    chunks = st.get("chunks", {})
    report.add("sim loop: chunks made / adopted", float(chunks.get("made", 0)), f"/ {chunks.get('adopted', 0)}")
    for name, health in st.get("cameras", {}).items():
        report.add(f"sim loop: camera {name} delivered", float(health.get("fps", 0.0)), "fps")


def run_bench(quick: bool = False, rig: bool = True, bundle: Path | None = None) -> BenchReport:
    gl = os.environ.get("MUJOCO_GL", "")
    report = BenchReport("sim", digits=4, machine_extra={"gl": gl})
    report.notes.append("medians of one run; the machine may be shared with other work")
    report.notes.append(f"OpenGL: MUJOCO_GL={gl} (software rendering if no GPU)")
    bench_render(report, 640, 480, repeats=10 if quick else 30)
    bench_render(report, 160, 120, repeats=10 if quick else 30)
    bench_physics(report, 1, seconds=1.0 if quick else 3.0)
    bench_physics(report, 2, seconds=1.0 if quick else 3.0)
    if rig:
        bench_rig(report, seconds=2.0 if quick else 6.0)
    if bundle is not None:
        bench_closed_loop(report, bundle, seconds=3.0 if quick else 10.0)
    return report

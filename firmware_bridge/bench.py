"""The bridge benchmark: codec cost per frame and setpoint → state echo over a PTY at 200 Hz (both simulators).

Figures are medians and percentiles from one run; the simulators run in their own processes, as a real firmware
would (the Python one must not share the client's GIL). `run` returns rows and details only: the CLI turns them
into the report of docs/architecture.md §5 (machine facts, table, JSON), which this package may not import.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from firmware_bridge import protocol as p
from firmware_bridge.c_simulator import CFirmwareSimulator
from firmware_bridge.client import ArmLink
from firmware_bridge.errors import BridgeError
from firmware_bridge.sim_config import SimArmConfig
from firmware_bridge.sim_process import PythonSimulatorProcess, SimulatorProcess

CODEC_TARGET_US = 20.0
ECHO_TARGET_MS = 2.0


@dataclass(frozen=True)
class BenchRow:
    """A row of docs/architecture.md §5 (`harmowam_edge.telemetry.benchreport.rows_from` reads it)."""

    metric: str
    value: float | None
    unit: str
    target: str
    ok: bool | None


@dataclass(frozen=True)
class EchoResult:
    impl: str
    samples_s: np.ndarray  # setpoint sent → first state echoing it, seconds
    missed: int  # setpoints whose echo did not arrive within 50 ms
    sent: int
    period_s: float


def _per_frame_us(fn: Callable[[], object], frames: int = 2000, batches: int = 15) -> float:
    """Median over batches of the mean CPU time per call, µs. CPU time of this thread, not wall time: on a shared
    machine, time spent preempted is not the codec's cost."""
    per = []
    for _ in range(batches):
        t0 = time.thread_time_ns()
        for _ in range(frames):
            fn()
        per.append((time.thread_time_ns() - t0) / frames / 1e3)
    return float(np.median(per))


def codec_cost_us(joints: int = 6) -> dict[str, float]:
    """Encode one frame and push it through the streaming decoder (COBS, CRC, header, message), µs per frame."""
    decoder = p.StreamDecoder()
    rng = np.random.default_rng(0)
    state = p.State(
        firmware_time_us=123_456_789,
        last_command_seq=4242,
        fault_bits=0,
        mode=int(p.ArmMode.ENABLED),
        positions=tuple(rng.uniform(-2, 2, joints).tolist()),
        velocities=tuple(rng.uniform(-1, 1, joints).tolist()),
        gripper=0.04,
    )
    command = p.Command(tuple(rng.uniform(-2, 2, joints).tolist()), None, 0.04, 123_456_789)

    def state_round() -> object:
        return decoder.feed(p.encode(state, seq=7))

    def command_round() -> object:
        return decoder.feed(p.encode(command, seq=7))

    out = {"state": _per_frame_us(state_round), "command": _per_frame_us(command_round)}
    assert decoder.frames.counters.crc_errors == 0
    return out


def echo_round_trip(
    simulator: SimulatorProcess, impl: str, duration_s: float = 10.0, rate_hz: float = 200.0
) -> EchoResult:
    """Stream setpoints at `rate_hz` to an enabled simulated arm; time each until its echo (STATE) arrives."""
    period = 1.0 / rate_hz
    samples: list[float] = []
    missed = 0
    sent = 0
    with simulator, ArmLink.open(simulator.port) as link:
        first = link.wait_state(1.0)
        if first is None:
            raise BridgeError(f"{impl} simulator: no state within 1 s")
        link.enable()
        hold = np.array(first.positions)
        n_ticks = int(duration_s * rate_hz)
        next_tick = time.monotonic()
        for i in range(n_ticks):
            target = hold + 0.05 * np.sin(2 * np.pi * 0.5 * i * period)
            t_send = time.monotonic()
            seq = link.send_setpoint(target)
            sent += 1
            deadline = t_send + 0.05
            echoed = None
            while echoed is None:
                st = link.wait_state(max(deadline - time.monotonic(), 0.0))
                if st is None:
                    break
                if p.seq_delta(st.last_command_seq, seq) >= 0:
                    echoed = st
            if echoed is None:
                missed += 1
            else:
                samples.append(echoed.t_received - t_send)
            next_tick += period
            delay = next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                next_tick = time.monotonic()
        link.disable()
    return EchoResult(impl, np.array(samples), missed, sent, period)


def run(
    *, duration_s: float = 10.0, impls: Sequence[str] = ("python", "c"), joints: int = 6
) -> tuple[list[BenchRow], dict[str, object]]:
    """All bridge figures as rows, plus extra detail (sample counts) for the JSON."""
    rows: list[BenchRow] = []
    detail: dict[str, object] = {"duration_s": duration_s, "joints": joints}
    codec = codec_cost_us(joints)
    for name, us in codec.items():
        rows.append(
            BenchRow(f"codec encode+decode {name.upper()} ({joints} joints, CPU)", round(us, 2), "us",
                     f"<= {CODEC_TARGET_US:g} us", us <= CODEC_TARGET_US)
        )  # fmt: skip
    config = SimArmConfig(joint_count=joints)
    for impl in impls:
        sim: SimulatorProcess
        if impl == "python":
            sim = PythonSimulatorProcess(config)
        elif impl == "c":
            sim = CFirmwareSimulator(config)
        else:
            raise BridgeError(f"bench: unknown simulator {impl!r} (expected python or c)")
        res = echo_round_trip(sim, impl, duration_s)
        ms = res.samples_s * 1e3
        p50 = float(np.percentile(ms, 50)) if len(ms) else None
        p99 = float(np.percentile(ms, 99)) if len(ms) else None
        rows.append(BenchRow(f"setpoint->state echo p50 ({impl} sim, 200 Hz)", _r(p50), "ms", "", None))
        rows.append(
            BenchRow(f"setpoint->state echo p99 ({impl} sim, 200 Hz)", _r(p99), "ms", f"<= {ECHO_TARGET_MS:g} ms",
                     p99 is not None and p99 <= ECHO_TARGET_MS)
        )  # fmt: skip
        rows.append(BenchRow(f"setpoint->state echo missed ({impl} sim)", res.missed, "count", "0", res.missed == 0))
        detail[f"echo_{impl}"] = {
            "sent": res.sent,
            "samples": len(ms),
            "max_ms": _r(float(ms.max())) if len(ms) else None,
        }
    return rows, detail


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 3)

"""Servo-bus figures: one control tick (sync write + sync read) over a PTY against a simulated bus in its own
process, the same tick computed for the wire at 1 Mbps, and the highest control rate per bus for 6 and 14 servos.

The PTY moves bytes at memory speed, so the PTY figure is the host's and the simulator's processing per tick;
the wire figure is what a real bus adds at its baud rate (`timing.tick_budget`, 10 bits a byte).
"""

from __future__ import annotations

import sys
import time

import numpy as np

from firmware_bridge.bench import BenchRow
from firmware_bridge.servo_bus.arm import _PRESENT
from firmware_bridge.servo_bus.bus import ServoBus
from firmware_bridge.servo_bus.control_tables import model as servo_model
from firmware_bridge.servo_bus.simulator import default_servos
from firmware_bridge.servo_bus.timing import tick_budget
from firmware_bridge.sim_process import SimulatorProcess

BAUD = 1_000_000
LATENCY_S = 0.001  # the FTDI latency timer at 1 ms (README); a CDC adapter is faster


class ServoBusProcess(SimulatorProcess):
    def __init__(self, bus: str, servos: int) -> None:
        super().__init__(f"{bus} bus simulator")
        self.bus, self.servos = bus, servos

    def command(self) -> list[str]:
        return [sys.executable, "-m", "firmware_bridge.servo_bus", "--bus", self.bus, "--servos", str(self.servos)]


def pty_tick_ms(bus: str, servos: int = 6, duration_s: float = 3.0, rate_hz: float = 200.0) -> tuple[np.ndarray, int]:
    """Wall time of each tick (sync write of goals + sync read of present values) at `rate_hz`; and ticks where
    a servo's reply was missing."""
    model = servo_model(default_servos(bus)[0].model, bus)
    goal = model.register("goal_position")
    addr, length, *_ = _PRESENT[bus]
    ids = list(range(1, servos + 1))
    out: list[float] = []
    missing = 0
    with ServoBusProcess(bus, servos) as sim:
        b = ServoBus.open(sim.port, bus, BAUD)
        try:
            period = 1.0 / rate_hz
            next_t = time.monotonic()
            for i in range(int(duration_s * rate_hz)):
                ticks = [2048 + int(100 * np.sin(i / 50.0))] * servos
                t0 = time.perf_counter()
                b.sync_write(goal.address, goal.size, {sid: goal.encode(t) for sid, t in zip(ids, ticks, strict=True)})
                got = b.sync_read(ids, addr, length, 0.05)
                out.append((time.perf_counter() - t0) * 1e3)
                missing += len(got) != servos
                next_t += period
                delay = next_t - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                else:
                    next_t = time.monotonic()
        finally:
            b.close()
    return np.array(out), missing


def run(duration_s: float = 3.0) -> tuple[list[BenchRow], dict[str, object]]:
    """Rows (names kept short: the table is printed 80 columns wide) and detail for the JSON."""
    rows: list[BenchRow] = []
    detail: dict[str, object] = {"baudrate": BAUD, "latency_s": LATENCY_S, "servos": 6}
    for bus in ("feetech", "dynamixel"):
        ms, missing = pty_tick_ms(bus, 6, duration_s)
        p50, p99 = float(np.percentile(ms, 50)), float(np.percentile(ms, 99))
        wire = tick_budget(bus, 6, BAUD)
        rows += [
            BenchRow(f"{bus} tick p50 (PTY, 6 servos)", round(p50, 3), "ms", "", None),
            BenchRow(f"{bus} tick p99 (PTY, 6 servos)", round(p99, 3), "ms", "<= 5 ms", p99 <= 5.0),
            BenchRow(f"{bus} ticks missing a reply (PTY)", missing, "count", "0", missing == 0),
            BenchRow(f"{bus} tick on the wire (1 Mbps, 6)", round(wire.wire_s * 1e3, 3), "ms", "", None),
        ]
        for n in (6, 14):
            b = tick_budget(bus, n, BAUD, latency_s=LATENCY_S)
            bare = tick_budget(bus, n, BAUD)
            rows += [
                BenchRow(f"{bus} max rate, {n} servos (+1 ms USB)", round(b.max_rate_hz, 1), "Hz",
                         ">= 200 Hz" if n == 6 else "", b.max_rate_hz >= 200.0 if n == 6 else None),
                BenchRow(f"{bus} max rate, {n} servos (wire)", round(bare.max_rate_hz, 1), "Hz", "", None),
            ]  # fmt: skip
        detail[f"{bus}_pty_ticks"] = len(ms)
        detail[f"{bus}_pty_max_ms"] = round(float(ms.max()), 3)
        detail[f"{bus}_wire_bytes_6"] = wire.wire_bytes
    return rows, detail

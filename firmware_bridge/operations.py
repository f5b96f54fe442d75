"""What the `harmowam-edge bridge` commands do, as plain functions (the CLI module only parses and prints)."""

from __future__ import annotations

import pathlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from firmware_bridge.arm_interface import ArmState, FirmwareInfo, LinkStats
from firmware_bridge.c_simulator import CFirmwareSimulator
from firmware_bridge.client import ArmLink
from firmware_bridge.errors import BridgeError
from firmware_bridge.protocol import ArmMode, FaultBits
from firmware_bridge.sim_config import SimArmConfig
from firmware_bridge.simulator import FirmwareSimulator


@contextmanager
def serve_simulator(
    impl: str, config: SimArmConfig, link_path: pathlib.Path | None = None
) -> Iterator[FirmwareSimulator | CFirmwareSimulator]:
    """Run the Python (in this process) or C (child process) simulator; yields it started."""
    sim: FirmwareSimulator | CFirmwareSimulator
    if impl == "python":
        sim = FirmwareSimulator(config, link_path=link_path)
    elif impl == "c":
        sim = CFirmwareSimulator(config, link_path=link_path)
    else:
        raise BridgeError(f"--impl: expected 'python' or 'c', got {impl!r}")
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def hold_enabled(link: ArmLink, stop: threading.Event, *, duration: float | None = None, period: float = 0.04) -> str:
    """Keep an enabled arm holding position (heartbeats well inside the 100 ms watchdog) until `stop` is set or
    `duration` passes; then disable. Returns why it ended."""
    t_end = None if duration is None else time.monotonic() + duration
    why = "stopped"
    try:
        while not stop.wait(period):
            if t_end is not None and time.monotonic() >= t_end:
                why = "duration elapsed"
                break
            st = link.state()
            if st is not None and st.mode not in (ArmMode.ENABLED, ArmMode.HOLD):
                why = f"the firmware left ENABLED: {st.mode.name} ({describe_faults(st.fault_bits)})"
                break
            link.heartbeat()
    finally:
        if link.connected:
            link.disable()
    return why


def describe_faults(bits: FaultBits | int) -> str:
    names = [b.name for b in FaultBits if b.value and int(bits) & b.value and b.name]
    return ", ".join(n for n in names if n) or "none"


def info_lines(info: FirmwareInfo, port: str) -> list[str]:
    """`bridge ping` output: identity, versions, limits."""
    lines = [
        f"port: {port}",
        f"firmware: {info.firmware_id} {info.version_string} (boot id 0x{info.boot_id:08x})",
        f"protocol: {info.protocol_string} (schema 0x{info.schema_hash:08x})",
        (
            f"arm: {info.arm}, joints: {info.joint_count}, gripper: {'yes' if info.has_gripper else 'no'}, "
            f"effort: {'yes' if info.reports_effort else 'no'}"
        ),
        (
            f"state rate: {info.state_rate_hz:g} Hz, watchdog: hold {info.watchdog_hold_s * 1000:.0f} ms, "
            f"torque off {info.watchdog_off_s * 1000:.0f} ms"
        ),
    ]
    for i in range(info.joint_count):
        lines.append(
            f"  joint {i}: [{info.position_min[i]:+.4f}, {info.position_max[i]:+.4f}] rad, "
            f"{info.max_velocity[i]:.3f} rad/s, {info.max_acceleration[i]:.3f} rad/s²"
        )
    g = info.gripper_limits
    if g is not None:
        lines.append(
            f"  gripper: [{g.min:.4f}, {g.max:.4f}] m, {g.max_velocity:.3f} m/s, {g.max_acceleration:.3f} m/s²"
        )
    return lines


def state_line(st: ArmState) -> str:
    pos = " ".join(f"{x:+.3f}" for x in st.positions)
    grip = f" gripper {st.gripper:.4f} m" if st.gripper is not None else ""
    return f"t={st.firmware_time:9.3f}s {st.mode.name:8s} q=[{pos}]{grip} faults: {describe_faults(st.fault_bits)}"


def stats_line(stats: LinkStats, rate_hz: float | None = None) -> str:
    rtt = f"{stats.rtt_p99_s * 1e3:.2f} ms" if stats.rtt_p99_s is not None else "-"
    rate = f"{rate_hz:.0f} Hz, " if rate_hz is not None else ""
    return (
        f"{rate}states {stats.states_rx}, CRC errors {stats.crc_errors}, resyncs {stats.resyncs}, "
        f"lost {stats.seq_gaps}, out-of-order {stats.seq_out_of_order}, firmware rx errors "
        f"{stats.firmware_rx_errors}, link lost {stats.link_lost}x, reconnects {stats.reconnects}, RTT p99 {rtt}"
    )

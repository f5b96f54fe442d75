"""What the `bridge ... --bus` commands do, as plain functions: scan, calibrate, open an arm by preset."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from firmware_bridge.servo_bus.arm import BusArm
from firmware_bridge.servo_bus.bus import ServoBus, ServoInfo
from firmware_bridge.servo_bus.calibration import MotorCalibration, half_turn_homing, load_calibration, save_calibration
from firmware_bridge.servo_bus.config import BusArmConfig, default_preset, preset
from firmware_bridge.servo_bus.errors import BusConfigError, ServoNotAnsweringError


def parse_ids(spec: str) -> list[int]:
    """'1-6,9' → [1, 2, 3, 4, 5, 6, 9]; names the option on a bad spec."""
    out: list[int] = []
    try:
        for part in spec.split(","):
            part = part.strip()
            if "-" in part:
                a, b = (int(x) for x in part.split("-", 1))
                out.extend(range(a, b + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise BusConfigError(f"--ids: expected IDs like '1-6' or '1,2,5', got {spec!r}") from None
    if not out or any(not 0 <= i <= 252 for i in out):
        raise BusConfigError(f"--ids: expected IDs in 0..252, got {spec!r}")
    return out


def scan(port: str, bus: str, baudrate: int, ids: Iterable[int], timeout: float = 0.02) -> list[ServoInfo]:
    b = ServoBus.open(port, bus, baudrate)
    try:
        return b.scan(ids, timeout)
    finally:
        b.close()


def scan_lines(found: list[ServoInfo], port: str, bus: str) -> list[str]:
    if not found:
        return [f"{port}: no {bus} servo answered"]
    lines = [f"{port}: {len(found)} {bus} servo(s)", f"{'ID':>4}  {'model':<12} {'number':>6}  firmware"]
    for s in found:
        lines.append(f"{s.servo_id:>4}  {s.model or '(unknown)':<12} {s.model_number:>6}  {s.firmware}")
    return lines


def arm_config(bus: str, preset_name: str | None, calibration: Path | None, baudrate: int) -> BusArmConfig:
    """The config for a CLI command: a preset (the bus's default arm) with an optional LeRobot calibration file."""
    name = preset_name or default_preset(bus)
    cal = load_calibration(calibration) if calibration is not None else None
    cfg = preset(name, baudrate=baudrate, calibration=cal, calibration_source=str(calibration or ""))
    if cfg.bus != bus:
        raise BusConfigError(f"--preset: {name} is a {cfg.bus} arm, not {bus}")
    return cfg


def open_bus_arm(port: str, config: BusArmConfig, state_timeout: float | None = None) -> BusArm:
    return BusArm.open(port, config, state_timeout=state_timeout)


def calibrate(
    port: str,
    config: BusArmConfig,
    out: Path,
    *,
    stop: threading.Event,
    duration: float | None = None,
    on_update: Callable[[dict[str, tuple[int, int, int]]], None] | None = None,
    period: float = 0.02,
) -> dict[str, MotorCalibration]:
    """LeRobot's routine: torque off, the pose at start becomes mid-range (half-turn homing), then every joint
    is moved through its range by hand until `stop` is set or `duration` passes; writes the homing offsets and
    the ranges to the servos (position limits) and the calibration JSON to `out`. Returns it."""
    bus = ServoBus.open(port, config.bus, config.baudrate)
    try:
        servos = config.servos
        models = [s.servo_model(config.bus) for s in servos]
        for s in servos:
            if bus.ping(s.servo_id) is None:
                raise ServoNotAnsweringError(f"{port}: calibrate: servo ID {s.servo_id} ({s.name}) does not answer")
        feetech = config.bus == "feetech"
        for s, m in zip(servos, models, strict=True):
            bus.write(s.servo_id, "torque_enable", m.register("torque_enable"), 0)
            if feetech:
                bus.write(s.servo_id, "lock", m.register("lock"), 0)
            bus.write(s.servo_id, "homing_offset", m.register("homing_offset"), 0)
        offsets = {}
        for s, m in zip(servos, models, strict=True):
            raw = bus.read(s.servo_id, "present_position", m.register("present_position"))
            offsets[s.name] = half_turn_homing(config.bus, raw, m.resolution)
            bus.write(s.servo_id, "homing_offset", m.register("homing_offset"), offsets[s.name])
        reg = models[0].register("present_position")
        lo: dict[str, int] = {}
        hi: dict[str, int] = {}
        t_end = None if duration is None else time.monotonic() + duration
        while True:
            got = bus.sync_read([s.servo_id for s in servos], reg.address, reg.size, 0.05)
            now_pos = {}
            for s in servos:
                st = got.get(s.servo_id)
                if st is not None:
                    v = reg.decode(st.params)
                    now_pos[s.name] = v
                    lo[s.name] = min(lo.get(s.name, v), v)
                    hi[s.name] = max(hi.get(s.name, v), v)
            if on_update is not None:
                on_update({n: (lo[n], now_pos.get(n, lo[n]), hi[n]) for n in lo})
            if stop.wait(period) or (t_end is not None and time.monotonic() >= t_end):
                break
        same = [s.name for s in servos if lo.get(s.name) is None or lo[s.name] >= hi[s.name]]
        if same:
            raise BusConfigError(f"calibrate: joint(s) {same} did not move: move every joint through its range")
        cal = {}
        for s, m in zip(servos, models, strict=True):
            bus.write(s.servo_id, "min_position_limit", m.register("min_position_limit"), lo[s.name])
            bus.write(s.servo_id, "max_position_limit", m.register("max_position_limit"), hi[s.name])
            if feetech:
                bus.write(s.servo_id, "lock", m.register("lock"), 1)
            cal[s.name] = MotorCalibration(s.servo_id, 0, offsets[s.name], lo[s.name], hi[s.name])
        save_calibration(out, cal)
        return cal
    finally:
        bus.close()

"""Glue between the action vector and the arms behind `firmware_bridge` clients (pure helpers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from firmware_bridge import ArmClient, ArmState, FirmwareInfo
from harmowam_edge.bundle.schema import ArmSpec
from harmowam_edge.control.rig import ArmConfig, RigConfig
from harmowam_edge.control.safety import JointLimits
from harmowam_edge.errors import ConfigError

if TYPE_CHECKING:
    from firmware_bridge.servo_bus import BusArmConfig


def check_firmware_matches(info: FirmwareInfo, spec: ArmSpec, port: str) -> None:
    """The firmware must drive exactly the bundle arm's joints (and gripper)."""
    if info.joint_count != len(spec.joints):
        raise ConfigError(
            f"{port}: the firmware ({info.firmware_id} {info.version_string}) drives {info.joint_count} joints, "
            f"the bundle's arm {spec.name!r} has {len(spec.joints)} ({', '.join(j.name for j in spec.joints)})"
        )
    if info.has_gripper != (spec.gripper is not None):
        raise ConfigError(
            f"{port}: the firmware {'has' if info.has_gripper else 'has no'} gripper, the bundle's arm "
            f"{spec.name!r} {'has one' if spec.gripper is not None else 'has none'}"
        )


def firmware_limits(info: FirmwareInfo, spec: ArmSpec, port: str) -> JointLimits:
    """The limits the firmware announced in its handshake, as one arm's slice of the action vector."""
    check_firmware_matches(info, spec, port)
    lower = list(np.asarray(info.position_min, dtype=float))
    upper = list(np.asarray(info.position_max, dtype=float))
    vel = list(np.asarray(info.max_velocity, dtype=float))
    acc = list(np.asarray(info.max_acceleration, dtype=float))
    if spec.gripper is not None:
        g = info.gripper_limits
        if g is None:
            raise ConfigError(f"{port}: the firmware reports a gripper but no gripper limits")
        lower.append(g.min)
        upper.append(g.max)
        vel.append(g.max_velocity)
        acc.append(g.max_acceleration)
    return JointLimits(
        names=tuple(d.name for d in spec.dims),
        lower=np.array(lower),
        upper=np.array(upper),
        max_velocity=np.array(vel),
        max_acceleration=np.array(acc),
        source=f"firmware on {port}",
    )


def measured_vector(states: Sequence[ArmState], arms: Sequence[ArmSpec]) -> np.ndarray:
    """The action-space vector measured now: each arm's joint positions, then its gripper opening."""
    parts: list[np.ndarray] = []
    for st, spec in zip(states, arms, strict=True):
        parts.append(np.asarray(st.positions, dtype=np.float64))
        if spec.gripper is not None:
            parts.append(np.array([st.gripper if st.gripper is not None else spec.gripper.lower], dtype=np.float64))
    return np.concatenate(parts)


def split_command(command: np.ndarray, arms: Sequence[ArmSpec]) -> list[tuple[np.ndarray, float | None]]:
    """Per arm: (joint positions, gripper opening or None)."""
    out: list[tuple[np.ndarray, float | None]] = []
    i = 0
    for spec in arms:
        n = len(spec.joints)
        pos = command[i : i + n]
        i += n
        grip: float | None = None
        if spec.gripper is not None:
            grip = float(command[i])
            i += 1
        out.append((pos, grip))
    if i != command.shape[0]:
        raise ValueError(f"command: expected {i} values for {len(arms)} arm(s), got {command.shape[0]}")
    return out


def bus_arm_config(arm: ArmConfig, rig: RigConfig, index: int) -> BusArmConfig:
    """The servo-bus arm a rig entry describes (its last servo is the gripper when its joint is one)."""
    from firmware_bridge.servo_bus import BusArmConfig, ServoJoint, load_calibration

    b = arm.bus
    if b is None:
        raise ConfigError(f"{rig.source}: arms[{index}]: not a servo-bus arm")
    servos = [ServoJoint(s.motor, s.servo_id, s.model) for s in b.servos]
    has_gripper = b.servos[-1].joint.endswith("gripper")
    return BusArmConfig(
        bus=b.kind,
        joints=tuple(servos[:-1] if has_gripper else servos),
        gripper=servos[-1] if has_gripper else None,
        baudrate=arm.baudrate or 1_000_000,
        calibration=load_calibration(b.calibration) if b.calibration else None,
        calibration_source=b.calibration or "",
        gripper_opening_m=b.gripper_opening_m,
        rate_hz=rig.control_rate_hz,
        return_delay_us=b.return_delay_us,
        latency_s=b.latency_ms / 1000.0,
        source=f"{rig.source}: arms[{index}]",
    )


def open_rig_arms(rig: RigConfig, state_timeout_s: float) -> list[str | ArmClient]:
    """What `Rig(arms=...)` takes for a rig file: the port for an arm on our firmware (the loop opens it), an
    open `BusArm` for a servo-bus arm (the loop closes it, torque off, like any link)."""
    from firmware_bridge.servo_bus import BusArm

    out: list[str | ArmClient] = []
    try:
        for i, arm in enumerate(rig.arms):
            if arm.bus is None:
                out.append(arm.port)
            else:
                out.append(BusArm.open(arm.port, bus_arm_config(arm, rig, i), state_timeout=state_timeout_s))
    except BaseException:
        for a in out:
            if not isinstance(a, str):
                a.close()
        raise
    return out

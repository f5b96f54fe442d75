"""What a bus arm is made of: which servo drives which joint, calibration, rates, limits. Validated, pure."""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware_bridge.servo_bus.calibration import MotorCalibration
from firmware_bridge.servo_bus.control_tables import ServoModel
from firmware_bridge.servo_bus.control_tables import model as lookup_model
from firmware_bridge.servo_bus.errors import BusConfigError, CalibrationFileError

BUSES = ("dynamixel", "feetech")


@dataclass(frozen=True)
class ServoJoint:
    name: str  # the joint's name (and its motor name in a LeRobot calibration file)
    servo_id: int
    model: str

    def servo_model(self, bus: str) -> ServoModel:
        return lookup_model(self.model, bus)


@dataclass(frozen=True)
class BusArmConfig:
    """One arm on one servo bus. `joints` in the action vector's order; `gripper` last, if any."""

    bus: str
    joints: tuple[ServoJoint, ...]
    gripper: ServoJoint | None = None
    baudrate: int = 1_000_000
    calibration: dict[str, MotorCalibration] | None = None  # by joint name; None: mid-range 0, full turn
    calibration_source: str = ""
    gripper_opening_m: float = 0.08
    rate_hz: float = 200.0
    max_acceleration: float = 20.0  # rad/s² (gripper: m/s² scaled by the opening)
    velocity_scale: float = 1.0  # of each model's no-load speed
    return_delay_us: float = 0.0
    latency_s: float = 0.001  # host wait per read (USB adapter latency timer)
    watchdog_hold_s: float = 0.1  # host watchdog: no setpoint/heartbeat → hold; then torque off
    watchdog_off_s: float = 1.0
    bus_watchdog_ms: int = 100  # Dynamixel Bus Watchdog while enabled (20 ms units)
    sync_read: bool = True  # False: one READ per servo per tick (servos or adapters without sync read)
    source: str = "bus arm"
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        src = self.source
        if self.bus not in BUSES:
            raise BusConfigError(f"{src}: bus: expected one of {', '.join(BUSES)}, got {self.bus!r}")
        servos = self.servos
        if not self.joints:
            raise BusConfigError(f"{src}: joints: expected at least one servo")
        ids = [s.servo_id for s in servos]
        for s in servos:
            if not 0 <= s.servo_id <= 252:
                raise BusConfigError(f"{src}: {s.name}: servo ID expected in 0..252, got {s.servo_id}")
            try:
                s.servo_model(self.bus)
            except KeyError as e:
                raise BusConfigError(f"{src}: {s.name}.model: {e.args[0]}") from None
        if len(set(ids)) != len(ids):
            raise BusConfigError(f"{src}: servo IDs must be unique on a bus, got {ids}")
        if len({s.name for s in servos}) != len(servos):
            raise BusConfigError(f"{src}: joint names must be unique, got {[s.name for s in servos]}")
        for name, lo, hi, v in (
            ("rate_hz", 1.0, 2000.0, self.rate_hz),
            ("velocity_scale", 1e-6, 1.0, self.velocity_scale),
            ("max_acceleration", 1e-6, 1e6, self.max_acceleration),
            ("gripper_opening_m", 1e-6, 10.0, self.gripper_opening_m),
        ):
            if not lo <= v <= hi:
                raise BusConfigError(f"{src}: {name}: expected a value in [{lo:g}, {hi:g}], got {v}")
        if not 20 <= self.bus_watchdog_ms <= 2540:
            raise BusConfigError(f"{src}: bus_watchdog_ms: expected 20..2540, got {self.bus_watchdog_ms}")
        if self.calibration is not None:
            cal_src = self.calibration_source or src
            for s in servos:
                c = self.calibration.get(s.name)
                if c is None:
                    raise CalibrationFileError(
                        f"{cal_src}: no calibration for motor {s.name!r} (it has {', '.join(self.calibration)})"
                    )
                if c.id != s.servo_id:
                    raise CalibrationFileError(
                        f"{cal_src}: {s.name}.id: the file says servo ID {c.id}, the rig says {s.servo_id}"
                    )

    @property
    def servos(self) -> tuple[ServoJoint, ...]:
        return self.joints + ((self.gripper,) if self.gripper is not None else ())


def _joints(names: tuple[str, ...], models: tuple[str, ...]) -> tuple[ServoJoint, ...]:
    return tuple(ServoJoint(n, i + 1, m) for i, (n, m) in enumerate(zip(names, models, strict=True)))


LEROBOT_NAMES = ("shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll")


def preset(name: str, **overrides: object) -> BusArmConfig:
    """The arms people have, named as LeRobot names their motors (IDs 1-6, gripper 6):
    `so101` / `so100` (6 × STS3215), `koch` (2 × XL430-W250 + 4 × XL330-M288), `xl430` (6 × XL430-W250)."""
    if name in ("so101", "so100"):
        bus, models = "feetech", ("sts3215",) * 6
    elif name == "koch":
        bus, models = "dynamixel", ("xl430-w250", "xl430-w250", "xl330-m288", "xl330-m288", "xl330-m288", "xl330-m288")
    elif name == "xl430":
        bus, models = "dynamixel", ("xl430-w250",) * 6
    else:
        raise BusConfigError(f"preset: expected so101, so100, koch or xl430, got {name!r}")
    joints = _joints((*LEROBOT_NAMES, "gripper"), models)
    return BusArmConfig(bus=bus, joints=joints[:5], gripper=joints[5], source=f"preset {name}", **overrides)  # type: ignore[arg-type]


def default_preset(bus: str) -> str:
    return "so101" if bus == "feetech" else "xl430"

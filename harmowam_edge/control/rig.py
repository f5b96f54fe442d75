"""The rig config file (YAML): which arms on which ports, which cameras, rates, limits, safety settings.

    arms:                         # one per bundle arm, in the bundle's action-space order
      - name: arm                 # the bundle's arm name
        port: /dev/ttyACM0
        baudrate: 1000000         # optional (firmware_bridge default)
        address: 0                # optional: arm address on a shared bus
        velocity_scale: 0.5       # optional: scale every velocity limit (0 < s <= 1)
        acceleration_scale: 1.0   # optional
        limits:                   # optional, per joint: only ever tightens the bundle's and firmware's limits
          joint_1: {lower: -1.5, upper: 1.5, max_velocity: 1.0, max_acceleration: 4.0}
    cameras:                      # one per bundle camera
      - name: cam0                # the bundle's camera name
        serial: "123456789012"    # a live RealSense ...
        # recording: runs/cam0.db3   ... or a recording played back in real time
      - name: arm                 # ... or an arm of serial-bus servos (docs/bridge.md "Servo buses")
        port: /dev/serial/by-id/usb-1a86_USB_Single_Serial_5A46-if00
        bus: feetech              # or dynamixel
        servos:                   # the bundle arm's joints in order, then its gripper
          - {joint: joint_1, id: 1, model: sts3215, motor: shoulder_pan}   # motor: name in the calibration file
        calibration: so101_follower.json   # LeRobot's per-arm calibration JSON (relative to this file)
        gripper_opening_m: 0.08   # optional: the gripper's range maps onto 0..this
        return_delay_us: 0        # optional: the servos' return delay the tick budget allows for
        latency_ms: 1.0           # optional: USB adapter latency per read (FTDI latency timer)
    control_rate_hz: 200
    safety: {ramp_in_s: 1.0, tracking_horizon_s: 0.1, range_tolerance: 0.02, state_timeout_s: 0.15}

Every error names the file and the field (`rig.yaml: arms[0].port: expected a non-empty string, got 3`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from harmowam_edge.bundle.fields import FieldReader, join, parse_yaml
from harmowam_edge.bundle.schema import Manifest
from harmowam_edge.control.safety import JointLimits, SafetyConfig
from harmowam_edge.errors import ConfigError

LIMIT_KEYS = ("lower", "upper", "max_velocity", "max_acceleration")
SAFETY_KEYS = tuple(f.name for f in fields(SafetyConfig) if f.name != "control_period_s")


@dataclass(frozen=True)
class JointOverride:
    lower: float | None = None
    upper: float | None = None
    max_velocity: float | None = None
    max_acceleration: float | None = None


@dataclass(frozen=True)
class BusServo:
    joint: str  # the bundle's joint name, or its gripper's
    servo_id: int
    model: str
    motor: str  # its name in the calibration file


@dataclass(frozen=True)
class BusSpec:
    """An arm of serial-bus servos instead of our firmware (firmware_bridge.servo_bus)."""

    kind: str  # "dynamixel" | "feetech"
    servos: tuple[BusServo, ...]
    calibration: str | None = None
    gripper_opening_m: float = 0.08
    return_delay_us: float = 0.0
    latency_ms: float = 1.0


@dataclass(frozen=True)
class ArmConfig:
    name: str
    port: str
    baudrate: int | None = None
    address: int = 0
    velocity_scale: float = 1.0
    acceleration_scale: float = 1.0
    limits: dict[str, JointOverride] = field(default_factory=dict)
    bus: BusSpec | None = None


@dataclass(frozen=True)
class CameraConfig:
    name: str
    serial: str | None = None
    recording: str | None = None


@dataclass(frozen=True)
class RigConfig:
    arms: tuple[ArmConfig, ...]
    cameras: tuple[CameraConfig, ...]
    control_rate_hz: float = 200.0
    safety: dict[str, float] = field(default_factory=dict)  # SafetyConfig fields given in the file
    source: str = "rig config"

    def safety_config(self) -> SafetyConfig:
        try:
            return SafetyConfig(control_period_s=1.0 / self.control_rate_hz, **self.safety)
        except Exception as e:
            raise ConfigError(f"{self.source}: safety: {e}") from None

    @classmethod
    def load(cls, path: str | Path) -> RigConfig:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{p}: rig config not found")
        data = parse_yaml(p.read_text(), str(p), ConfigError)
        rig = cls.from_dict(data, source=str(p))
        # Relative calibration paths (servo-bus arms) are relative to the rig file, too.
        arms = tuple(
            replace(a, bus=replace(a.bus, calibration=str((p.parent / a.bus.calibration).resolve())))
            if a.bus is not None and a.bus.calibration and not Path(a.bus.calibration).is_absolute()
            else a
            for a in rig.arms
        )
        rig = cls(arms, rig.cameras, rig.control_rate_hz, rig.safety, rig.source)
        # Relative recording paths are relative to the rig file.
        cams = tuple(
            CameraConfig(c.name, c.serial, str((p.parent / c.recording).resolve()) if c.recording else None)
            if c.recording and not Path(c.recording).is_absolute()
            else c
            for c in rig.cameras
        )
        return cls(rig.arms, cams, rig.control_rate_hz, rig.safety, rig.source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "rig config") -> RigConfig:
        r = _Reader(source)
        d = r.obj(data, "(top level)")
        r.only(d, "", ("arms", "cameras", "control_rate_hz", "safety"))
        arms = tuple(_arm(r, a, f"arms[{i}]") for i, a in enumerate(r.list_(d, "arms", "")))
        if len({a.name for a in arms}) != len(arms):
            raise r.fail("arms", "unique arm names", [a.name for a in arms])
        cams_raw = d.get("cameras", [])
        if not isinstance(cams_raw, list):
            raise r.fail("cameras", "a list", cams_raw)
        cameras = tuple(_camera(r, c, f"cameras[{i}]") for i, c in enumerate(cams_raw))
        if len({c.name for c in cameras}) != len(cameras):
            raise r.fail("cameras", "unique camera names", [c.name for c in cameras])
        rate = r.number(d, "control_rate_hz", "", default=200.0, positive=True)
        assert rate is not None
        if not 10.0 <= rate <= 2000.0:
            raise r.fail("control_rate_hz", "a rate between 10 and 2000 Hz", rate)
        safety_raw = d.get("safety", {}) or {}
        s = r.obj(safety_raw, "safety")
        r.only(s, "safety", SAFETY_KEYS)
        safety: dict[str, float] = {}
        for k in s:
            v = r.number(s, k, "safety")
            assert v is not None
            safety[k] = v
        rig = cls(arms=arms, cameras=cameras, control_rate_hz=rate, safety=safety, source=source)
        rig.safety_config()  # validate the values together
        for i, a in enumerate(arms):
            if a.bus is not None:
                _check_bus_rate(r, a, i, rate)
        return rig

    def check_against(self, manifest: Manifest) -> None:
        """The rig must name the bundle's arms (in order), joints and cameras."""
        want_arms = [a.name for a in manifest.action_space.arms]
        have_arms = [a.name for a in self.arms]
        if have_arms != want_arms:
            raise ConfigError(
                f"{self.source}: arms: the bundle's arms are {want_arms} (in this order), the rig has {have_arms}"
            )
        for i, (arm, spec) in enumerate(zip(self.arms, manifest.action_space.arms, strict=True)):
            names = [d.name for d in spec.dims]
            if arm.bus is not None:
                joints = [s.joint for s in arm.bus.servos]
                if joints != names:
                    raise ConfigError(
                        f"{self.source}: arms[{i}].servos: the bundle's arm {arm.name!r} needs one servo per "
                        f"joint and gripper, in this order: {names}; the rig has {joints}"
                    )
            for j in arm.limits:
                if j not in names:
                    raise ConfigError(
                        f"{self.source}: arms[{i}].limits.{j}: no such joint (arm {arm.name!r} has {names})"
                    )
        if self.cameras:
            want = sorted(c.name for c in manifest.cameras)
            have = sorted(c.name for c in self.cameras)
            if have != want:
                raise ConfigError(f"{self.source}: cameras: the bundle expects cameras {want}, the rig has {have}")

    def limits_for(self, arm_index: int, base: JointLimits) -> JointLimits:
        """`base` (one arm's limits) tightened by this arm's overrides and scales; never loosened."""
        arm = self.arms[arm_index]
        lower, upper = base.lower.copy(), base.upper.copy()
        vel, acc = base.max_velocity.copy(), base.max_acceleration.copy()
        for j, o in arm.limits.items():
            if j not in base.names:
                raise ConfigError(f"{self.source}: arms[{arm_index}].limits.{j}: no such joint ({list(base.names)})")
            i = base.names.index(j)
            if o.lower is not None:
                lower[i] = max(lower[i], o.lower)
            if o.upper is not None:
                upper[i] = min(upper[i], o.upper)
            if o.max_velocity is not None:
                vel[i] = min(vel[i], o.max_velocity)
            if o.max_acceleration is not None:
                acc[i] = min(acc[i], o.max_acceleration)
        try:
            return JointLimits(
                base.names,
                lower,
                upper,
                vel * arm.velocity_scale,
                acc * arm.acceleration_scale,
                source=f"{self.source} arms[{arm_index}]",
            )
        except Exception as e:
            raise ConfigError(f"{self.source}: arms[{arm_index}].limits: {e}") from None


# --------------------------------------------------------------------------------------------------------------


class _Reader(FieldReader):
    """The project's field reader, with the rig file's optional strings and numbers."""

    def __init__(self, source: str) -> None:
        super().__init__(source, ConfigError)

    def string(self, d: Mapping[str, Any], key: str, path: str, required: bool = True) -> str | None:
        if key not in d or d[key] is None:
            if required:
                raise self.problem(join(path, key), "missing")
            return None
        v = d[key]
        if isinstance(v, int) and not isinstance(v, bool) and key == "serial":
            v = str(v)  # an unquoted serial number
        if not isinstance(v, str) or not v:
            raise self.fail(join(path, key), "a non-empty string", v)
        return v

    def number(
        self, d: Mapping[str, Any], key: str, path: str, default: float | None = None, positive: bool = False
    ) -> float | None:
        if key not in d:
            return default
        return self.finite(d[key], join(path, key), positive=positive)


def _arm(r: _Reader, data: Any, path: str) -> ArmConfig:
    d = r.obj(data, path)
    r.only(
        d, path, ("name", "port", "baudrate", "address", "velocity_scale", "acceleration_scale", "limits", *BUS_KEYS)
    )
    name = r.string(d, "name", path)
    port = r.string(d, "port", path)
    assert name is not None
    assert port is not None
    baud = d.get("baudrate")
    if baud is not None and (isinstance(baud, bool) or not isinstance(baud, int) or baud <= 0):
        raise r.fail(f"{path}.baudrate", "a positive integer", baud)
    address = d.get("address", 0)
    if isinstance(address, bool) or not isinstance(address, int) or not 0 <= address <= 15:
        raise r.fail(f"{path}.address", "an integer 0..15", address)
    scales = {}
    for k in ("velocity_scale", "acceleration_scale"):
        v = r.number(d, k, path, default=1.0)
        assert v is not None
        if not 0 < v <= 1:
            raise r.fail(f"{path}.{k}", "a number in (0, 1]", v)
        scales[k] = v
    limits: dict[str, JointOverride] = {}
    lim_raw = d.get("limits", {}) or {}
    lim = r.obj(lim_raw, f"{path}.limits")
    for joint, spec in lim.items():
        jpath = f"{path}.limits.{joint}"
        s = r.obj(spec, jpath)
        r.only(s, jpath, LIMIT_KEYS)
        vals = {k: r.number(s, k, jpath, positive=k.startswith("max_")) for k in LIMIT_KEYS}
        if vals["lower"] is not None and vals["upper"] is not None and not vals["lower"] < vals["upper"]:
            raise r.fail(f"{jpath}.upper", f"a number > lower ({vals['lower']})", vals["upper"])
        limits[str(joint)] = JointOverride(**vals)
    return ArmConfig(
        name=name,
        port=port,
        baudrate=baud,
        address=address,
        velocity_scale=scales["velocity_scale"],
        acceleration_scale=scales["acceleration_scale"],
        limits=limits,
        bus=_bus(r, d, path),
    )


BUS_KEYS = ("bus", "servos", "calibration", "gripper_opening_m", "return_delay_us", "latency_ms")
BUS_KINDS = ("dynamixel", "feetech")


def _bus(r: _Reader, d: Mapping[str, Any], path: str) -> BusSpec | None:
    """The servo-bus keys of an arm: all or nothing, `bus` first."""
    if "bus" not in d:
        extra = [k for k in BUS_KEYS if k in d]
        if extra:
            raise r.fail(f"{path}.bus", f"dynamixel or feetech (the arm has {', '.join(extra)})", None)
        return None
    kind = d["bus"]
    if kind not in BUS_KINDS:
        raise r.fail(f"{path}.bus", "dynamixel or feetech", kind)
    raw = d.get("servos")
    if not isinstance(raw, list) or not raw:
        raise r.fail(f"{path}.servos", "a list of {joint, id, model} (one per joint, then the gripper)", raw)
    servos = []
    for k, item in enumerate(raw):
        spath = f"{path}.servos[{k}]"
        s = r.obj(item, spath)
        r.only(s, spath, ("joint", "id", "model", "motor"))
        joint = r.string(s, "joint", spath)
        model = r.string(s, "model", spath)
        assert joint is not None
        assert model is not None
        sid = s.get("id")
        if isinstance(sid, bool) or not isinstance(sid, int) or not 0 <= sid <= 252:
            raise r.fail(f"{spath}.id", "a servo ID 0..252", sid)
        motor = r.string(s, "motor", spath, required=False) or joint
        servos.append(BusServo(joint, sid, model.lower(), motor))
    ids = [s.servo_id for s in servos]
    if len(set(ids)) != len(ids):
        raise r.fail(f"{path}.servos", "unique servo IDs", ids)
    nums: dict[str, float] = {}
    for key, lo, hi in (("gripper_opening_m", 1e-4, 1.0), ("return_delay_us", 0.0, 508.0), ("latency_ms", 0.0, 20.0)):
        v = r.number(d, key, path)
        if v is not None and not lo <= v <= hi:
            raise r.fail(f"{path}.{key}", f"a number in [{lo:g}, {hi:g}]", v)
        if v is not None:
            nums[key] = v
    return BusSpec(kind, tuple(servos), r.string(d, "calibration", path, required=False), **nums)


def _check_bus_rate(r: _Reader, arm: ArmConfig, index: int, rate: float) -> None:
    """Refuse a rig whose bus cannot carry one sync write + one sync read per control tick."""
    from firmware_bridge.servo_bus import check_rate

    assert arm.bus is not None
    b = arm.bus
    try:
        check_rate(
            b.kind,
            len(b.servos),
            arm.baudrate or 1_000_000,
            rate,
            return_delay_us=b.return_delay_us,
            latency_s=b.latency_ms / 1000.0,
        )
    except ValueError as e:
        raise ConfigError(f"{r.source}: control_rate_hz: arms[{index}] ({arm.name}, bus on {arm.port}): {e}") from None


def _camera(r: _Reader, data: Any, path: str) -> CameraConfig:
    d = r.obj(data, path)
    r.only(d, path, ("name", "serial", "recording"))
    name = r.string(d, "name", path)
    assert name is not None
    serial = r.string(d, "serial", path, required=False)
    recording = r.string(d, "recording", path, required=False)
    if serial and recording:
        raise ConfigError(f"{r.source}: {path}: give serial or recording, not both")
    return CameraConfig(name=name, serial=serial, recording=recording)

"""The arm-link messages (PROTOCOL.md §3–§5): header, layouts, encode/decode, the schema text and its hash. Pure.

Each layout is written once, as a table (`LAYOUTS`): the fixed part's struct format is built from the table and
the schema text (whose CRC-32 is the schema hash both languages compare in the handshake) is printed from it, so
editing a layout here changes the hash. The C firmware carries the same text (firmware/hwl_schema.c); a test
compares them.
"""

from __future__ import annotations

import enum
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from firmware_bridge.errors import ProtocolError
from firmware_bridge.framing import FrameDecoder, crc32, encode_frame

PROTOCOL_MAJOR = 1
PROTOCOL_MINOR = 0
MAX_JOINTS = 16
FIRMWARE_ID_SIZE = 16
#: Arm address that every arm on a link accepts (ESTOP only).
BROADCAST_ARM = 0xFF
MAX_ARM = 7
DEFAULT_BAUDRATE = 1_000_000


class MsgType(enum.IntEnum):
    """Message type codes (header byte 1). Host → firmware below 0x80, firmware → host from 0x80."""

    HELLO = 0x01
    COMMAND = 0x02
    HEARTBEAT = 0x03
    ENABLE = 0x04
    DISABLE = 0x05
    ESTOP = 0x06
    RESET_ESTOP = 0x07
    HELLO_ACK = 0x81
    STATE = 0x82
    ACK = 0x83
    NACK = 0x84


class ArmMode(enum.IntEnum):
    """The firmware's mode (STATE byte 16)."""

    DISABLED = 0  # torque off (brakes on where the arm has them)
    ENABLED = 1  # torque on, tracking the limited setpoint stream
    HOLD = 2  # torque on, holding position: the watchdog saw no COMMAND/HEARTBEAT for 100 ms
    ESTOP = 3  # torque off, latched until RESET_ESTOP


class FaultBits(enum.IntFlag):
    """STATE fault bits. Conditions hold now; events happened at least once since the previous STATE."""

    NONE = 0
    WATCHDOG_HOLD = 1 << 0  # condition: holding, no COMMAND/HEARTBEAT for the hold timeout
    WATCHDOG_TORQUE_OFF = 1 << 1  # latched: the watchdog turned torque off; cleared by the next ENABLE
    ESTOP_LATCHED = 1 << 2  # condition: mode is ESTOP
    HARDWARE_ESTOP = 1 << 3  # condition: the hardware e-stop input is active
    DRIVE_FAULT = 1 << 4  # condition: a joint driver reports a fault
    POSITION_CLAMPED = 1 << 5  # event: a target outside the position limits was clamped
    VELOCITY_LIMITED = 1 << 6  # event: the reference was slowed to the velocity limit
    ACCELERATION_LIMITED = 1 << 7  # event: the reference was held to the acceleration limit
    COMMAND_REJECTED = 1 << 8  # event: a COMMAND was dropped (non-finite value, wrong joint count)
    COMMAND_IGNORED = 1 << 9  # event: a COMMAND arrived while not ENABLED/HOLD
    RX_ERROR = 1 << 10  # event: the firmware dropped a bad frame (CRC, COBS, oversize, runt)
    NO_SESSION = 1 << 11  # condition: no accepted HELLO since boot: COMMANDs are ignored


class NackReason(enum.IntEnum):
    """NACK reason codes (NACK byte 1); `detail` is explained per reason in PROTOCOL.md §5."""

    UNKNOWN_TYPE = 1
    BAD_LENGTH = 2
    VERSION_MISMATCH = 3
    NO_SESSION = 4
    WRONG_ARM = 5
    ESTOP_LATCHED = 6
    HARDWARE_ESTOP = 7
    DRIVE_FAULT = 8


class Capability(enum.IntFlag):
    """HELLO_ACK capability bits."""

    NONE = 0
    GRIPPER = 1 << 0
    EFFORT = 1 << 1
    VELOCITY_FEEDFORWARD = 1 << 2
    HARDWARE_ESTOP = 1 << 3


COMMAND_HAS_VELOCITIES = 1 << 0
COMMAND_HAS_GRIPPER = 1 << 1
STATE_HAS_EFFORT = 1 << 0
STATE_HAS_GRIPPER = 1 << 1
STATE_IS_REPLY = 1 << 2

# --------------------------------------------------------------------------------------------------------------
# Layouts: (type, fixed fields, arrays). Arrays are f32[joint_count], in order, each present if its flag is set.

_CODES = {"u8": "B", "u16": "H", "u32": "I", "u64": "Q", "f32": "f", "u8[16]": "16s"}

HEADER_FIELDS: tuple[tuple[str, str], ...] = (
    ("u8", "major"),
    ("u8", "type"),
    ("u8", "arm"),
    ("u8", "flags"),
    ("u32", "seq"),
)


class Layout(NamedTuple):
    type: MsgType
    fixed: tuple[tuple[str, str], ...]
    arrays: tuple[tuple[str, str], ...] = ()  # (name, condition) with condition "" or "flags&N"


LAYOUTS: tuple[Layout, ...] = (
    Layout(MsgType.HELLO, (("u8", "major"), ("u8", "minor"), ("u16", "reserved"), ("u32", "schema_hash"))),
    Layout(
        MsgType.COMMAND,
        (("u64", "host_time_us"), ("u8", "joint_count"), ("u8", "flags"), ("u16", "reserved"), ("f32", "gripper")),
        (("positions", ""), ("velocities", "flags&1")),
    ),
    Layout(MsgType.HEARTBEAT, (("u64", "host_time_us"),)),
    Layout(MsgType.ENABLE, ()),
    Layout(MsgType.DISABLE, ()),
    Layout(MsgType.ESTOP, ()),
    Layout(MsgType.RESET_ESTOP, ()),
    Layout(
        MsgType.HELLO_ACK,
        (
            ("u8", "major"),
            ("u8", "minor"),
            ("u16", "reserved"),
            ("u32", "schema_hash"),
            ("u32", "request_seq"),
            ("u32", "boot_id"),
            ("u8[16]", "firmware_id"),
            ("u8", "fw_major"),
            ("u8", "fw_minor"),
            ("u8", "fw_patch"),
            ("u8", "joint_count"),
            ("u8", "arms_served"),
            ("u8", "capabilities"),
            ("u16", "state_rate_hz"),
            ("u16", "watchdog_hold_ms"),
            ("u16", "watchdog_off_ms"),
            ("u8", "mode"),
            ("u8", "reserved"),
            ("u16", "reserved"),
            ("f32", "gripper_min"),
            ("f32", "gripper_max"),
            ("f32", "gripper_max_velocity"),
            ("f32", "gripper_max_acceleration"),
        ),
        (("position_min", ""), ("position_max", ""), ("max_velocity", ""), ("max_acceleration", "")),
    ),
    Layout(
        MsgType.STATE,
        (
            ("u64", "firmware_time_us"),
            ("u32", "last_command_seq"),
            ("u32", "fault_bits"),
            ("u8", "mode"),
            ("u8", "flags"),
            ("u8", "joint_count"),
            ("u8", "reserved"),
            ("u16", "rx_errors"),
            ("u16", "reserved"),
            ("f32", "gripper"),
        ),
        (("positions", ""), ("velocities", ""), ("effort", "flags&1")),
    ),
    Layout(MsgType.ACK, (("u8", "request_type"), ("u8", "mode"), ("u16", "reserved"), ("u32", "request_seq"))),
    Layout(
        MsgType.NACK,
        (
            ("u8", "request_type"),
            ("u8", "reason"),
            ("u8", "mode"),
            ("u8", "reserved"),
            ("u32", "request_seq"),
            ("u32", "detail"),
        ),
    ),
)
_LAYOUT = {lay.type: lay for lay in LAYOUTS}


def _struct(fields: tuple[tuple[str, str], ...]) -> struct.Struct:
    return struct.Struct("<" + "".join(_CODES[t] for t, _ in fields))


HEADER = _struct(HEADER_FIELDS)
_FIXED = {lay.type: _struct(lay.fixed) for lay in LAYOUTS}
HEADER_SIZE = HEADER.size


def fixed_size(msg_type: MsgType) -> int:
    """Size of a message body's fixed part (before the per-joint arrays)."""
    return _FIXED[msg_type].size


def schema_text() -> str:
    """The canonical layout text of PROTOCOL.md §6; its CRC-32 is the schema hash."""
    lines = ["header " + ", ".join(f"{t} {n}" for t, n in HEADER_FIELDS)]
    for lay in LAYOUTS:
        parts = [f"{t} {n}" for t, n in lay.fixed]
        parts += [f"f32[joint_count] {n}" + (f" if {cond}" if cond else "") for n, cond in lay.arrays]
        lines.append(" ".join([f"0x{int(lay.type):02x}", lay.type.name] + ([", ".join(parts)] if parts else [])))
    lines.append("trailer u32 crc32")
    return "\n".join(lines) + "\n"


SCHEMA_HASH = crc32(schema_text().encode("ascii"))

# --------------------------------------------------------------------------------------------------------------
# Messages: plain slotted dataclasses, treated as values. Not frozen: a frozen dataclass costs ~1 µs more to build,
# which is 5% of the per-frame budget on the 200 Hz hot path.

Floats = tuple[float, ...]


@dataclass(slots=True)
class Header:
    """The 8-byte frame header (§3)."""

    major: int
    type: int
    arm: int
    flags: int
    seq: int


@dataclass(slots=True)
class Hello:
    major: int = PROTOCOL_MAJOR
    minor: int = PROTOCOL_MINOR
    schema_hash: int = SCHEMA_HASH
    TYPE = MsgType.HELLO


@dataclass(slots=True)
class Command:
    positions: Floats
    velocities: Floats | None = None
    gripper: float | None = None
    host_time_us: int = 0
    TYPE = MsgType.COMMAND


@dataclass(slots=True)
class Heartbeat:
    host_time_us: int = 0
    TYPE = MsgType.HEARTBEAT


@dataclass(slots=True)
class Enable:
    TYPE = MsgType.ENABLE


@dataclass(slots=True)
class Disable:
    TYPE = MsgType.DISABLE


@dataclass(slots=True)
class Estop:
    TYPE = MsgType.ESTOP


@dataclass(slots=True)
class ResetEstop:
    TYPE = MsgType.RESET_ESTOP


@dataclass(slots=True)
class HelloAck:
    major: int
    minor: int
    schema_hash: int
    request_seq: int
    boot_id: int
    firmware_id: str
    firmware_version: tuple[int, int, int]
    joint_count: int
    arms_served: int
    capabilities: int
    state_rate_hz: int
    watchdog_hold_ms: int
    watchdog_off_ms: int
    mode: int
    gripper_limits: tuple[float, float, float, float]  # min, max (m), max velocity (m/s), max acceleration (m/s²)
    position_min: Floats
    position_max: Floats
    max_velocity: Floats
    max_acceleration: Floats
    TYPE = MsgType.HELLO_ACK


@dataclass(slots=True)
class ForeignHelloAck:
    """The frozen first 8 bytes of a HELLO_ACK from a firmware of another major version: enough to name it."""

    major: int
    minor: int
    schema_hash: int
    TYPE = MsgType.HELLO_ACK


@dataclass(slots=True)
class State:
    firmware_time_us: int
    last_command_seq: int
    fault_bits: int
    mode: int
    positions: Floats
    velocities: Floats
    effort: Floats | None = None
    gripper: float | None = None
    rx_errors: int = 0
    reply: bool = False  # sent in reply to a COMMAND (not by the rate timer)
    TYPE = MsgType.STATE


@dataclass(slots=True)
class Ack:
    request_type: int
    mode: int
    request_seq: int
    TYPE = MsgType.ACK


@dataclass(slots=True)
class Nack:
    request_type: int
    reason: int
    mode: int
    request_seq: int
    detail: int = 0
    TYPE = MsgType.NACK


Message = (
    Hello
    | Command
    | Heartbeat
    | Enable
    | Disable
    | Estop
    | ResetEstop
    | HelloAck
    | ForeignHelloAck
    | State
    | Ack
    | Nack
)
REQUEST_TYPES = (MsgType.ENABLE, MsgType.DISABLE, MsgType.ESTOP, MsgType.RESET_ESTOP)
_EMPTY: dict[MsgType, Message] = {
    MsgType.ENABLE: Enable(),
    MsgType.DISABLE: Disable(),
    MsgType.ESTOP: Estop(),
    MsgType.RESET_ESTOP: ResetEstop(),
}

# --------------------------------------------------------------------------------------------------------------
# Encoding

_F32 = [struct.Struct(f"<{k}f") for k in range(4 * MAX_JOINTS + 1)]
_S_HELLO = _FIXED[MsgType.HELLO]
_S_COMMAND = _FIXED[MsgType.COMMAND]
_S_HEARTBEAT = _FIXED[MsgType.HEARTBEAT]
_S_HELLO_ACK = _FIXED[MsgType.HELLO_ACK]
_S_STATE = _FIXED[MsgType.STATE]
_S_ACK = _FIXED[MsgType.ACK]
_S_NACK = _FIXED[MsgType.NACK]


def _check_joints(n: int, what: str) -> None:
    if not 1 <= n <= MAX_JOINTS:
        raise ProtocolError(f"{what}: joint count {n} is outside 1..{MAX_JOINTS}")


def _pack_floats(values: Floats, what: str) -> bytes:
    try:
        return _F32[len(values)].pack(*values)
    except (struct.error, OverflowError) as e:
        raise ProtocolError(f"{what}: {e}") from None


def encode_body(msg: Message) -> bytes:
    """A message's body bytes (PROTOCOL.md §5)."""
    t = msg.TYPE
    try:
        if isinstance(msg, Command):
            n = len(msg.positions)
            _check_joints(n, "COMMAND")
            flags = 0
            arrays = _pack_floats(msg.positions, "COMMAND positions")
            if msg.velocities is not None:
                if len(msg.velocities) != n:
                    raise ProtocolError(f"COMMAND: {len(msg.velocities)} velocities for {n} positions")
                flags |= COMMAND_HAS_VELOCITIES
                arrays += _pack_floats(msg.velocities, "COMMAND velocities")
            gripper = 0.0
            if msg.gripper is not None:
                flags |= COMMAND_HAS_GRIPPER
                gripper = msg.gripper
            return _S_COMMAND.pack(msg.host_time_us, n, flags, 0, gripper) + arrays
        if isinstance(msg, State):
            n = len(msg.positions)
            _check_joints(n, "STATE")
            flags = STATE_IS_REPLY if msg.reply else 0
            values = msg.positions + msg.velocities
            if len(msg.velocities) != n:
                raise ProtocolError(f"STATE: {len(msg.velocities)} velocities for {n} positions")
            if msg.effort is not None:
                if len(msg.effort) != n:
                    raise ProtocolError(f"STATE: {len(msg.effort)} efforts for {n} positions")
                flags |= STATE_HAS_EFFORT
                values += msg.effort
            if msg.gripper is not None:
                flags |= STATE_HAS_GRIPPER
            fixed = _S_STATE.pack(
                msg.firmware_time_us,
                msg.last_command_seq,
                msg.fault_bits,
                msg.mode,
                flags,
                n,
                0,
                msg.rx_errors & 0xFFFF,
                0,
                0.0 if msg.gripper is None else msg.gripper,
            )
            return fixed + _pack_floats(values, "STATE")
        if isinstance(msg, Heartbeat):
            return _S_HEARTBEAT.pack(msg.host_time_us)
        if isinstance(msg, Hello):
            return _S_HELLO.pack(msg.major, msg.minor, 0, msg.schema_hash)
        if isinstance(msg, (Enable, Disable, Estop, ResetEstop)):
            return b""
        if isinstance(msg, Ack):
            return _S_ACK.pack(msg.request_type, msg.mode, 0, msg.request_seq)
        if isinstance(msg, Nack):
            return _S_NACK.pack(msg.request_type, msg.reason, msg.mode, 0, msg.request_seq, msg.detail)
        if isinstance(msg, HelloAck):
            n = msg.joint_count
            _check_joints(n, "HELLO_ACK")
            for name in ("position_min", "position_max", "max_velocity", "max_acceleration"):
                if len(getattr(msg, name)) != n:
                    raise ProtocolError(f"HELLO_ACK: {name} has {len(getattr(msg, name))} values for {n} joints")
            fid = msg.firmware_id.encode("ascii", "replace")[:FIRMWARE_ID_SIZE]
            fixed = _S_HELLO_ACK.pack(
                msg.major,
                msg.minor,
                0,
                msg.schema_hash,
                msg.request_seq,
                msg.boot_id,
                fid,
                *msg.firmware_version,
                n,
                msg.arms_served,
                msg.capabilities,
                msg.state_rate_hz,
                msg.watchdog_hold_ms,
                msg.watchdog_off_ms,
                msg.mode,
                0,
                0,
                *msg.gripper_limits,
            )
            limits = msg.position_min + msg.position_max + msg.max_velocity + msg.max_acceleration
            return fixed + _pack_floats(limits, "HELLO_ACK limits")
    except struct.error as e:
        raise ProtocolError(f"{t.name}: {e}") from None
    raise ProtocolError(f"cannot encode {type(msg).__name__}")


def encode(msg: Message, *, seq: int, arm: int = 0, major: int = PROTOCOL_MAJOR) -> bytes:
    """A message → a complete frame on the wire (0x00, COBS of header+body+CRC, 0x00)."""
    return encode_frame(HEADER.pack(major, int(msg.TYPE), arm, 0, seq & 0xFFFFFFFF) + encode_body(msg))


# --------------------------------------------------------------------------------------------------------------
# Decoding


class UnknownTypeError(ProtocolError):
    """A frame with a type code this version does not know (a newer minor may add types)."""


class BadLengthError(ProtocolError):
    """A body shorter than its layout (longer is fine: a newer minor may append fields)."""


class VersionMismatchError(ProtocolError):
    """A frame from another major version that the frozen rules do not let us read."""


def _need(t: MsgType, body: bytes, size: int) -> None:
    if len(body) < size:
        raise BadLengthError(f"{t.name}: body of {len(body)} bytes, expected at least {size}")


def _floats(body: bytes, offset: int, count: int) -> Floats:
    return _F32[count].unpack_from(body, offset)


def _decode_state(body: bytes) -> State:
    if len(body) < 28:
        raise BadLengthError(f"STATE: body of {len(body)} bytes, expected at least 28")
    time_us, last_seq, faults, mode, flags, n, _, rx_err, _, gripper = _S_STATE.unpack_from(body)
    _check_joints(n, "STATE")
    has_effort = flags & STATE_HAS_EFFORT
    count = 3 * n if has_effort else 2 * n
    _need(MsgType.STATE, body, 28 + 4 * count)
    values = _F32[count].unpack_from(body, 28)
    return State(
        time_us,
        last_seq,
        faults,
        mode,
        values[:n],
        values[n : 2 * n],
        values[2 * n :] if has_effort else None,
        gripper if flags & STATE_HAS_GRIPPER else None,
        rx_err,
        bool(flags & STATE_IS_REPLY),
    )


def _decode_command(body: bytes) -> Command:
    if len(body) < 16:
        raise BadLengthError(f"COMMAND: body of {len(body)} bytes, expected at least 16")
    host_us, n, flags, _, gripper = _S_COMMAND.unpack_from(body)
    _check_joints(n, "COMMAND")
    has_vel = flags & COMMAND_HAS_VELOCITIES
    count = 2 * n if has_vel else n
    _need(MsgType.COMMAND, body, 16 + 4 * count)
    values = _F32[count].unpack_from(body, 16)
    return Command(
        values[:n],
        values[n:] if has_vel else None,
        gripper if flags & COMMAND_HAS_GRIPPER else None,
        host_us,
    )


def _decode_heartbeat(body: bytes) -> Heartbeat:
    _need(MsgType.HEARTBEAT, body, 8)
    return Heartbeat(_S_HEARTBEAT.unpack_from(body)[0])


def _decode_hello(body: bytes) -> Hello:
    _need(MsgType.HELLO, body, 8)
    major, minor, _, h = _S_HELLO.unpack_from(body)
    return Hello(major, minor, h)


def _decode_ack(body: bytes) -> Ack:
    _need(MsgType.ACK, body, 8)
    rt, mode, _, rseq = _S_ACK.unpack_from(body)
    return Ack(rt, mode, rseq)


def _decode_nack(body: bytes) -> Nack:
    _need(MsgType.NACK, body, 12)
    rt, reason, mode, _, rseq, detail = _S_NACK.unpack_from(body)
    return Nack(rt, reason, mode, rseq, detail)


def _decode_hello_ack(body: bytes) -> HelloAck:
    size = _S_HELLO_ACK.size
    _need(MsgType.HELLO_ACK, body, size)
    f = _S_HELLO_ACK.unpack_from(body)
    n = f[10]
    _check_joints(n, "HELLO_ACK")
    _need(MsgType.HELLO_ACK, body, size + 16 * n)
    arrays = _floats(body, size, 4 * n)
    return HelloAck(
        major=f[0],
        minor=f[1],
        schema_hash=f[3],
        request_seq=f[4],
        boot_id=f[5],
        firmware_id=f[6].rstrip(b"\x00").decode("ascii", "replace"),
        firmware_version=(f[7], f[8], f[9]),
        joint_count=n,
        arms_served=f[11],
        capabilities=f[12],
        state_rate_hz=f[13],
        watchdog_hold_ms=f[14],
        watchdog_off_ms=f[15],
        mode=f[16],
        gripper_limits=(f[19], f[20], f[21], f[22]),
        position_min=arrays[:n],
        position_max=arrays[n : 2 * n],
        max_velocity=arrays[2 * n : 3 * n],
        max_acceleration=arrays[3 * n :],
    )


def _constant(msg: Message) -> Callable[[bytes], Message]:
    return lambda body: msg


# int-keyed: an enum lookup per frame costs more than the whole header parse
_DECODERS: dict[int, Callable[[bytes], Message]] = {
    MsgType.STATE: _decode_state,
    MsgType.COMMAND: _decode_command,
    MsgType.HEARTBEAT: _decode_heartbeat,
    MsgType.HELLO: _decode_hello,
    MsgType.ACK: _decode_ack,
    MsgType.NACK: _decode_nack,
    MsgType.HELLO_ACK: _decode_hello_ack,
    **{int(t): _constant(m) for t, m in _EMPTY.items()},
}


def decode_body(msg_type: int, body: bytes) -> Message:
    """A body of a known type → its message; raises UnknownTypeError / BadLengthError / ProtocolError."""
    fn = _DECODERS.get(msg_type)
    if fn is None:
        raise UnknownTypeError(f"unknown message type 0x{msg_type:02x}")
    return fn(body)


class Packet(NamedTuple):
    header: Header
    message: Message


def decode(content: bytes, *, major: int = PROTOCOL_MAJOR) -> Packet:
    """Frame content (header+body, CRC already checked) → header and message.

    A frame of another major version is read only where PROTOCOL.md §7 freezes the layout: HELLO, the first 8
    bytes of HELLO_ACK, and ESTOP (which every firmware must honour).
    """
    if len(content) < HEADER_SIZE:
        raise BadLengthError(f"frame of {len(content)} bytes has no complete header")
    hdr = Header(*HEADER.unpack_from(content))
    body = content[HEADER_SIZE:]
    if hdr.major == major:
        fn = _DECODERS.get(hdr.type)
        if fn is None:
            raise UnknownTypeError(f"unknown message type 0x{hdr.type:02x}")
        return Packet(hdr, fn(body))
    if hdr.type == MsgType.HELLO_ACK and len(body) >= 8:
        ver_major, ver_minor, _, h = _S_HELLO.unpack_from(body)
        return Packet(hdr, ForeignHelloAck(ver_major, ver_minor, h))
    if hdr.type in (MsgType.HELLO, MsgType.ESTOP):
        return Packet(hdr, decode_body(hdr.type, body))
    raise VersionMismatchError(f"frame of protocol major {hdr.major} (type 0x{hdr.type:02x}); we speak {major}")


@dataclass
class DecodeCounters:
    """Message-level rejects on top of the framing counters."""

    unknown_type: int = 0
    bad_length: int = 0
    version_mismatch: int = 0
    invalid: int = 0


@dataclass
class StreamDecoder:
    """Bytes → packets: framing (COBS, CRC, resync) then header and message, counting every reject."""

    major: int = PROTOCOL_MAJOR
    frames: FrameDecoder = field(default_factory=FrameDecoder)
    counters: DecodeCounters = field(default_factory=DecodeCounters)

    def feed(self, data: bytes | bytearray) -> list[Packet]:
        out: list[Packet] = []
        for content in self.frames.feed(data):
            try:
                out.append(decode(content, major=self.major))
            except UnknownTypeError:
                self.counters.unknown_type += 1
            except BadLengthError:
                self.counters.bad_length += 1
            except VersionMismatchError:
                self.counters.version_mismatch += 1
            except ProtocolError:
                self.counters.invalid += 1
        return out

    def reset(self) -> None:
        self.frames.reset()


def all_finite(values: Floats) -> bool:
    """True if no NaN/inf (checked by the firmware before it accepts a COMMAND)."""
    return all(math.isfinite(v) for v in values)


def seq_delta(newer: int, older: int) -> int:
    """Signed distance between two u32 sequence numbers (wrap-around aware)."""
    d = (newer - older) & 0xFFFFFFFF
    return d - 0x1_0000_0000 if d >= 0x8000_0000 else d

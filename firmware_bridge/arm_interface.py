"""The backend-neutral client interface: what the runtime codes against, whatever sits on the wire.

`ArmLink` (our own firmware protocol) implements `ArmClient`; an off-the-shelf servo bus (Dynamixel Protocol 2.0,
Feetech STS) can implement it too, translating its registers into `ArmState` and its limits into `FirmwareInfo`.
"""

from __future__ import annotations

import enum
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from firmware_bridge.protocol import ArmMode, FaultBits

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class GripperLimits:
    """Gripper opening limits: metres, m/s, m/s²."""

    min: float
    max: float
    max_velocity: float
    max_acceleration: float


@dataclass(frozen=True)
class FirmwareInfo:
    """What the firmware said about itself in the handshake."""

    firmware_id: str
    firmware_version: tuple[int, int, int]
    protocol: tuple[int, int]  # (major, minor)
    schema_hash: int
    joint_count: int
    has_gripper: bool
    position_min: FloatArray  # rad, per joint
    position_max: FloatArray
    max_velocity: FloatArray  # rad/s
    max_acceleration: FloatArray  # rad/s²
    gripper_limits: GripperLimits | None
    state_rate_hz: float
    arm: int  # the address this link talks to
    boot_id: int
    watchdog_hold_s: float
    watchdog_off_s: float
    reports_effort: bool
    backend: str = "harmowam"

    @property
    def version_string(self) -> str:
        return ".".join(str(v) for v in self.firmware_version)

    @property
    def protocol_string(self) -> str:
        return f"{self.protocol[0]}.{self.protocol[1]}"


@dataclass(frozen=True)
class ArmState:
    """One state report. Arrays are read-only float64; times are seconds."""

    positions: FloatArray  # rad
    velocities: FloatArray  # rad/s
    effort: FloatArray | None  # N·m where the firmware reports it
    gripper: float | None  # opening in m; None without a gripper
    fault_bits: FaultBits
    mode: ArmMode
    firmware_time: float  # seconds since the firmware booted
    last_command_seq: int  # the newest COMMAND seq the firmware had received
    t_received: float  # host time.monotonic() when the frame was decoded
    seq: int = 0  # the frame's sequence number (per firmware boot)
    reply: bool = False  # sent in reply to a COMMAND rather than by the rate timer

    @property
    def enabled(self) -> bool:
        return self.mode in (ArmMode.ENABLED, ArmMode.HOLD)


@dataclass(frozen=True)
class LinkStats:
    """Link health counters since open (all reconnects included). RTT = setpoint sent → state that echoes it."""

    frames_rx: int = 0
    frames_tx: int = 0
    bytes_rx: int = 0
    bytes_tx: int = 0
    states_rx: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    runts: int = 0
    oversize: int = 0
    resyncs: int = 0  # stretches of bytes discarded before the decoder found the next valid frame
    discarded_bytes: int = 0
    unknown_type: int = 0
    bad_length: int = 0
    version_mismatch: int = 0
    wrong_arm: int = 0
    seq_gaps: int = 0  # firmware frames missing from the sequence (lost or corrupted)
    seq_out_of_order: int = 0  # duplicated or older frames (dropped)
    tx_dropped: int = 0  # frames the OS could not take (buffer full)
    requests: int = 0
    request_retries: int = 0
    nacks: int = 0
    link_lost: int = 0  # times the state stream stopped for longer than the timeout
    disconnects: int = 0
    reconnects: int = 0
    reboots: int = 0
    firmware_rx_errors: int = 0  # bad frames the firmware reported receiving (from STATE, u16 wraps)
    rtt_samples: int = 0
    rtt_last_s: float | None = None
    rtt_p50_s: float | None = None
    rtt_p99_s: float | None = None
    rtt_max_s: float | None = None

    @property
    def rx_errors(self) -> int:
        return self.crc_errors + self.cobs_errors + self.runts + self.oversize + self.bad_length


class LinkEventKind(enum.Enum):
    LINK_LOST = "link_lost"  # no state within the timeout (port still open)
    LINK_RESTORED = "link_restored"  # states flow again
    DISCONNECTED = "disconnected"  # the port went away (USB unplug)
    RECONNECTED = "reconnected"  # port reopened and handshake done: the arm is DISABLED, enable() explicitly
    RECONNECT_FAILED = "reconnect_failed"  # a different or incompatible firmware answered: no more retries
    FIRMWARE_REBOOTED = "firmware_rebooted"  # new boot id / firmware time went backwards: the arm is DISABLED
    MODE_CHANGED = "mode_changed"  # e.g. ENABLED → HOLD (watchdog), → ESTOP (hardware button)


@dataclass(frozen=True)
class LinkEvent:
    kind: LinkEventKind
    t: float  # host time.monotonic()
    message: str
    mode: ArmMode | None = None


EventCallback = Callable[[LinkEvent], None]


@runtime_checkable
class ArmClient(Protocol):
    """One arm behind some link. Every method may raise `firmware_bridge.errors.BridgeError`."""

    @property
    def info(self) -> FirmwareInfo: ...

    @property
    def port(self) -> str: ...

    @property
    def link_lost(self) -> threading.Event: ...

    @property
    def stats(self) -> LinkStats: ...

    def state(self) -> ArmState | None: ...

    def wait_state(self, timeout: float) -> ArmState | None: ...

    def send_setpoint(
        self, positions: npt.ArrayLike, velocities: npt.ArrayLike | None = None, gripper: float | None = None
    ) -> int: ...

    def heartbeat(self) -> None: ...

    def enable(self) -> ArmMode: ...

    def disable(self) -> ArmMode: ...

    def estop(self) -> ArmMode: ...

    def reset_estop(self) -> ArmMode: ...

    def poll_events(self) -> list[LinkEvent]: ...

    def subscribe(self, callback: EventCallback) -> Callable[[], None]: ...

    def close(self) -> None: ...

    def __enter__(self) -> ArmClient: ...

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

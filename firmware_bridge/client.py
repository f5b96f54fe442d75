"""`ArmLink`: the host side of the arm protocol (PROTOCOL.md) — handshake, state stream, setpoints, requests.

Threads: the caller's (a 200 Hz control loop calls `send_setpoint`, `state`, `wait_state`) and one background
reader that decodes frames, keeps the newest state, resolves acknowledged requests, watches the stream for
silence and firmware reboots, and reconnects when the port disappears and comes back.
`send_setpoint` never waits for the firmware: it encodes, writes without blocking and returns the sequence number.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType

import numpy as np
import numpy.typing as npt

from firmware_bridge import protocol as p
from firmware_bridge.arm_interface import (
    ArmState,
    EventCallback,
    FirmwareInfo,
    GripperLimits,
    LinkEvent,
    LinkEventKind,
    LinkStats,
)
from firmware_bridge.errors import (
    BridgeError,
    FirmwareMismatchError,
    FirmwareNotAnsweringError,
    LinkDownError,
    PortError,
    ProtocolVersionError,
    RequestRejectedError,
    RequestTimeoutError,
    SchemaMismatchError,
    SetpointError,
    WrongProtocolError,
)
from firmware_bridge.framing import FrameDecoder
from firmware_bridge.protocol import ArmMode, FaultBits, NackReason
from firmware_bridge.transport import SerialTransport, Transport, TransportClosedError

log = logging.getLogger(__name__)

TransportFactory = Callable[[str, int], Transport]
_RTT_WINDOW = 1024
_SENT_RING = 256
_REBOOT_TOLERANCE_US = 1000
_COUNTERS = (
    "frames_rx",
    "frames_tx",
    "bytes_rx",
    "bytes_tx",
    "states_rx",
    "wrong_arm",
    "seq_gaps",
    "seq_out_of_order",
    "tx_dropped",
    "requests",
    "request_retries",
    "nacks",
    "link_lost",
    "disconnects",
    "reconnects",
    "reboots",
    "firmware_rx_errors",
)


def _version(major: int, minor: int) -> str:
    return f"{major}.{minor}"


def _open_serial(port: str, baudrate: int) -> Transport:
    return SerialTransport.open(port, baudrate)


def _readonly(values: tuple[float, ...]) -> npt.NDArray[np.float64]:
    a = np.array(values, dtype=np.float64)
    a.flags.writeable = False
    return a


def info_from_hello_ack(ack: p.HelloAck, arm: int) -> FirmwareInfo:
    caps = p.Capability(ack.capabilities)
    has_gripper = bool(caps & p.Capability.GRIPPER)
    return FirmwareInfo(
        firmware_id=ack.firmware_id,
        firmware_version=ack.firmware_version,
        protocol=(ack.major, ack.minor),
        schema_hash=ack.schema_hash,
        joint_count=ack.joint_count,
        has_gripper=has_gripper,
        position_min=_readonly(ack.position_min),
        position_max=_readonly(ack.position_max),
        max_velocity=_readonly(ack.max_velocity),
        max_acceleration=_readonly(ack.max_acceleration),
        gripper_limits=GripperLimits(*ack.gripper_limits) if has_gripper else None,
        state_rate_hz=float(ack.state_rate_hz),
        arm=arm,
        boot_id=ack.boot_id,
        watchdog_hold_s=ack.watchdog_hold_ms / 1000.0,
        watchdog_off_s=ack.watchdog_off_ms / 1000.0,
        reports_effort=bool(caps & p.Capability.EFFORT),
    )


def check_versions(port: str, major: int, minor: int, schema_hash: int) -> None:
    """Refuse a firmware this host cannot talk to; the message names both versions."""
    ours = _version(p.PROTOCOL_MAJOR, p.PROTOCOL_MINOR)
    theirs = _version(major, minor)
    if major != p.PROTOCOL_MAJOR:
        newer = "firmware" if major > p.PROTOCOL_MAJOR else "host software"
        raise ProtocolVersionError(
            f"{port}: firmware speaks arm protocol {theirs}, this host speaks {ours}: major versions differ, "
            f"refusing to run (update the {'host software' if newer == 'firmware' else 'firmware'})"
        )
    if minor == p.PROTOCOL_MINOR and schema_hash != p.SCHEMA_HASH:
        raise SchemaMismatchError(
            f"{port}: firmware and host both claim arm protocol {ours} but their message layouts differ "
            f"(schema hash firmware 0x{schema_hash:08x}, host 0x{p.SCHEMA_HASH:08x}): one side was built from "
            f"edited layouts without a version bump; rebuild both from the same release"
        )


@dataclass
class _Pending:
    event: threading.Event = field(default_factory=threading.Event)
    reply: p.Ack | p.Nack | None = None


class ArmLink:
    """One arm over one serial link. Open with `ArmLink.open(port, ...)`; close with `close()` or `with`."""

    def __init__(
        self,
        port: str,
        *,
        baudrate: int,
        arm: int,
        transport_factory: TransportFactory,
        handshake_timeout: float,
        handshake_attempts: int,
        state_timeout: float | None,
        request_timeout: float,
        request_retries: int,
        reconnect: bool,
        reconnect_interval: float,
        expect_joints: int | None,
    ) -> None:
        if not (0 <= arm <= p.MAX_ARM):
            raise BridgeError(f"arm: expected an address in 0..{p.MAX_ARM}, got {arm}")
        self._port = port
        self.baudrate = baudrate
        self.arm = arm
        self._factory = transport_factory
        self._handshake_timeout = handshake_timeout
        self._handshake_attempts = max(1, handshake_attempts)
        self._state_timeout_arg = state_timeout
        self.request_timeout = request_timeout
        self.request_retries = max(1, request_retries)
        self.reconnect = reconnect
        self.reconnect_interval = reconnect_interval
        self.expect_joints = expect_joints

        self._transport: Transport | None = None
        self._tx_lock = threading.Lock()
        self._seq = 0
        self._sent_seq = [0] * _SENT_RING
        self._sent_t = [0.0] * _SENT_RING
        self._needs_delimiter = False

        self._state_cv = threading.Condition()
        self._latest: ArmState | None = None
        self._latest_n = 0
        self._returned_n = 0
        self.link_lost = threading.Event()

        self._pending: dict[int, _Pending] = {}
        self._pending_lock = threading.Lock()
        self._events: deque[LinkEvent] = deque(maxlen=256)
        self._subscribers: list[EventCallback] = []
        self._events_lock = threading.Lock()

        self._decoder = p.StreamDecoder()
        self._closing = threading.Event()
        self._reader: threading.Thread | None = None
        self._fatal: BridgeError | None = None
        self._info: FirmwareInfo | None = None

        # reader-thread bookkeeping
        self._last_rx_seq: int | None = None
        self._last_fw_time_us: int | None = None
        self._last_mode: ArmMode | None = None
        self._last_cmd_seen = 0
        self._last_state_t = 0.0
        self._rehello_seq: int | None = None
        self._rehello_t = 0.0
        self._rtts: deque[float] = deque(maxlen=_RTT_WINDOW)
        self._n: dict[str, int] = dict.fromkeys(_COUNTERS, 0)
        # framing/decoding counters of decoders retired by reconnects
        self._retired: dict[str, int] = {}

    # ------------------------------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        port: str,
        *,
        baudrate: int = p.DEFAULT_BAUDRATE,
        arm: int = 0,
        handshake_timeout: float = 0.3,
        handshake_attempts: int = 3,
        state_timeout: float | None = None,
        request_timeout: float = 0.15,
        request_retries: int = 3,
        reconnect: bool = True,
        reconnect_interval: float = 0.2,
        expect_joints: int | None = None,
        transport_factory: TransportFactory | None = None,
    ) -> ArmLink:
        """Open `port`, handshake, start the reader. Raises a typed `BridgeError` on every failure.

        state_timeout: silence after which `link_lost` is set (default: 5 state periods, at least 0.1 s).
        reconnect: when the port disappears (USB unplug), keep reopening it and handshake again; the arm then
        comes back DISABLED and needs an explicit `enable()`.
        """
        link = cls(
            port,
            baudrate=baudrate,
            arm=arm,
            transport_factory=transport_factory or _open_serial,
            handshake_timeout=handshake_timeout,
            handshake_attempts=handshake_attempts,
            state_timeout=state_timeout,
            request_timeout=request_timeout,
            request_retries=request_retries,
            reconnect=reconnect,
            reconnect_interval=reconnect_interval,
            expect_joints=expect_joints,
        )
        transport = link._factory(port, baudrate)
        try:
            ack = link._handshake(transport)
            link._accept(ack, first=True)
        except BaseException:
            transport.close()
            raise
        link._transport = transport
        link._last_state_t = time.monotonic()
        link._reader = threading.Thread(target=link._read_loop, name=f"armlink-{port}", daemon=True)
        link._reader.start()
        # the firmware streams STATE from boot: once open() returns, state() is not None
        wait = max(handshake_timeout, 4.0 / max(link.info.state_rate_hz, 1.0))
        if link.wait_state(wait) is None:
            link.close(disable=False)
            raise WrongProtocolError(
                f"{port}: the firmware answered the handshake but sent no STATE within {wait:.2f} s: "
                f"its state stream is not running"
            )
        return link

    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        if self._seq == 0:
            self._seq = 1
        return self._seq

    def _handshake(self, transport: Transport) -> p.HelloAck:
        """HELLO → HELLO_ACK on a freshly opened transport, with retries and a diagnosis when nothing works."""
        transport.flush_input()
        frames = FrameDecoder()
        received = 0
        valid = 0
        foreign_major: int | None = None
        port = self._port
        for _ in range(self._handshake_attempts):
            with self._tx_lock:
                seq = self._next_seq()
                self._write(transport, p.encode(p.Hello(), seq=seq, arm=self.arm))
            deadline = time.monotonic() + self._handshake_timeout
            while (left := deadline - time.monotonic()) > 0:
                try:
                    data = transport.read(min(left, 0.05))
                except TransportClosedError as e:
                    raise LinkDownError(f"{port}: the port closed during the handshake ({e})") from None
                received += len(data)
                for content in frames.feed(data):
                    valid += 1
                    try:
                        _hdr, msg = p.decode(content)
                    except p.VersionMismatchError:
                        foreign_major = content[0]
                        continue
                    except p.ProtocolError:
                        continue
                    if isinstance(msg, p.ForeignHelloAck):
                        check_versions(port, msg.major, msg.minor, msg.schema_hash)
                    if isinstance(msg, p.HelloAck) and msg.request_seq == seq:
                        return msg
                    if isinstance(msg, p.Nack) and msg.request_seq == seq and msg.reason == NackReason.WRONG_ARM:
                        served = [i for i in range(8) if msg.detail & (1 << i)]
                        raise FirmwareMismatchError(
                            f"{port}: the firmware there does not serve arm {self.arm} (it serves arm(s) "
                            f"{', '.join(map(str, served)) or 'none'}): check which cable goes to which arm"
                        )
        timeout = self._handshake_attempts * self._handshake_timeout
        if foreign_major is not None:
            raise ProtocolVersionError(
                f"{port}: firmware sends arm protocol {foreign_major}.x frames and did not answer HELLO; this host "
                f"speaks {_version(p.PROTOCOL_MAJOR, p.PROTOCOL_MINOR)}: refusing to run"
            )
        if received == 0:
            raise FirmwareNotAnsweringError(
                f"{port}: no answer from the arm firmware in {timeout:.1f} s (no bytes at all): is the controller "
                f"powered, running, and is this its port?"
            )
        if valid == 0:
            raise WrongProtocolError(
                f"{port}: received {received} bytes in {timeout:.1f} s but no valid frame: wrong baud rate "
                f"(this host opened it at {self.baudrate}) or not a harmowam arm firmware"
            )
        raise WrongProtocolError(
            f"{port}: the firmware streams valid frames but sent no HELLO_ACK in {timeout:.1f} s: it does not "
            f"accept this host's handshake"
        )

    def _accept(self, ack: p.HelloAck, *, first: bool) -> FirmwareInfo:
        """Check a HELLO_ACK and adopt it as the link's info. Returns the previous info (or the new one)."""
        port = self._port
        check_versions(port, ack.major, ack.minor, ack.schema_hash)
        info = info_from_hello_ack(ack, self.arm)
        if not ack.arms_served & (1 << self.arm):
            raise FirmwareMismatchError(f"{port}: the firmware does not serve arm {self.arm}")
        if self.expect_joints is not None and info.joint_count != self.expect_joints:
            raise FirmwareMismatchError(
                f"{port}: the firmware drives {info.joint_count} joints, expected {self.expect_joints}"
            )
        old = self._info
        if not first and old is not None:
            same = (
                old.firmware_id == info.firmware_id
                and old.joint_count == info.joint_count
                and old.has_gripper == info.has_gripper
                and np.array_equal(old.position_min, info.position_min)
                and np.array_equal(old.position_max, info.position_max)
            )
            if not same:
                raise FirmwareMismatchError(
                    f"{port}: a different firmware answered after reconnecting ({info.firmware_id} "
                    f"{info.version_string}, {info.joint_count} joints; was {old.firmware_id} "
                    f"{old.version_string}, {old.joint_count} joints): refusing to drive it"
                )
        self._info = info
        self._last_rx_seq = None
        self._last_fw_time_us = None
        if self._state_timeout_arg is None:
            self.state_timeout = max(0.1, 5.0 / max(info.state_rate_hz, 1.0))
        else:
            self.state_timeout = self._state_timeout_arg
        return old or info

    # ------------------------------------------------------------------------------------------ public API

    @property
    def info(self) -> FirmwareInfo:
        """The firmware's identity and limits from the latest handshake."""
        assert self._info is not None
        return self._info

    @property
    def port(self) -> str:
        return self._port

    @property
    def connected(self) -> bool:
        """False while the port is gone (between an unplug and a successful reconnect) or after close."""
        return self._transport is not None and not self._closing.is_set()

    def state(self) -> ArmState | None:
        """The newest state (None before the first); never blocks."""
        with self._state_cv:
            self._returned_n = self._latest_n
            return self._latest

    def wait_state(self, timeout: float) -> ArmState | None:
        """The next state newer than the last one returned (by `state` or `wait_state`), or None on timeout or once
        the link is closed. It may have arrived before the call: it is the oldest state the caller has not seen."""
        deadline = time.monotonic() + timeout
        with self._state_cv:
            if self._closing.is_set():
                return None
            while self._latest_n <= self._returned_n:
                left = deadline - time.monotonic()
                if left <= 0 or self._closing.is_set():
                    return None
                self._state_cv.wait(left)
            self._returned_n = self._latest_n
            return self._latest

    def _check_usable(self) -> Transport:
        if self._closing.is_set():
            raise LinkDownError(f"{self._port}: the link is closed")
        if self._fatal is not None:
            raise self._fatal
        t = self._transport
        if t is None:
            raise LinkDownError(
                f"{self._port}: the port is gone (unplugged?)"
                + ("; reconnecting" if self.reconnect else "; reconnect is off")
            )
        return t

    def _write(self, transport: Transport, frame: bytes) -> None:
        """Write one frame; callers hold _tx_lock. A failed write is counted; the next frame resyncs."""
        try:
            ok = transport.write(frame)
        except TransportClosedError:
            ok = False  # the reader notices the disconnect and reports it
        if ok:
            self._n["frames_tx"] += 1
            self._n["bytes_tx"] += len(frame)
        else:
            self._n["tx_dropped"] += 1

    def send_setpoint(
        self,
        positions: npt.ArrayLike,
        velocities: npt.ArrayLike | None = None,
        gripper: float | None = None,
    ) -> int:
        """Stream absolute joint targets (rad; velocity feed-forward rad/s; gripper m). No ack; returns the seq.

        Cheap and non-blocking: validation, encoding and one non-blocking write.
        """
        transport = self._check_usable()
        info = self.info
        n = info.joint_count
        pos = np.asarray(positions, dtype=np.float64)
        if pos.shape != (n,):
            raise SetpointError(f"setpoint: expected {n} joint positions, got shape {pos.shape}")
        if not np.isfinite(pos).all():
            raise SetpointError(f"setpoint: non-finite joint position in {pos.tolist()}; nothing sent")
        vel: tuple[float, ...] | None = None
        if velocities is not None:
            v = np.asarray(velocities, dtype=np.float64)
            if v.shape != (n,) or not np.isfinite(v).all():
                raise SetpointError(f"setpoint: expected {n} finite velocities, got {v.tolist()}")
            vel = tuple(v.tolist())
        if gripper is not None:
            if not info.has_gripper:
                raise SetpointError(f"setpoint: {self._port} has no gripper, but a gripper target was given")
            gripper = float(gripper)
            if not np.isfinite(gripper):
                raise SetpointError(f"setpoint: non-finite gripper target {gripper}")
        cmd = p.Command(tuple(pos.tolist()), vel, gripper, int(time.monotonic() * 1e6))
        with self._tx_lock:
            seq = self._next_seq()
            frame = p.encode(cmd, seq=seq, arm=self.arm)
            slot = seq % _SENT_RING
            self._sent_seq[slot] = seq
            self._sent_t[slot] = time.monotonic()
            self._write(transport, frame)
        return seq

    def heartbeat(self) -> None:
        """Feed the firmware's watchdog without moving (when no setpoint is due)."""
        transport = self._check_usable()
        with self._tx_lock:
            seq = self._next_seq()
            self._write(transport, p.encode(p.Heartbeat(int(time.monotonic() * 1e6)), seq=seq, arm=self.arm))

    def _request(self, msg: p.Message, *, arm: int | None = None) -> ArmMode:
        name = msg.TYPE.name
        last_nack: p.Nack | None = None
        for attempt in range(self.request_retries):
            transport = self._check_usable()
            pending = _Pending()
            with self._tx_lock:
                seq = self._next_seq()
                with self._pending_lock:
                    self._pending[seq] = pending
                self._write(transport, p.encode(msg, seq=seq, arm=self.arm if arm is None else arm))
            self._n["requests"] += 1
            if attempt:
                self._n["request_retries"] += 1
            got = pending.event.wait(self.request_timeout)
            with self._pending_lock:
                self._pending.pop(seq, None)
            reply = pending.reply
            if got and isinstance(reply, p.Ack):
                return ArmMode(reply.mode)
            if got and isinstance(reply, p.Nack):
                last_nack = reply
                break
        if last_nack is not None:
            self._n["nacks"] += 1
            reason = NackReason(last_nack.reason) if last_nack.reason in NackReason._value2member_map_ else None
            why = {
                NackReason.ESTOP_LATCHED: "the e-stop is latched: reset it first (reset_estop / `bridge reset`)",
                NackReason.HARDWARE_ESTOP: "the hardware e-stop button is pressed: release it first",
                NackReason.DRIVE_FAULT: "a joint driver reports a fault",
                NackReason.NO_SESSION: "no session: the firmware has not accepted this host's HELLO",
                NackReason.WRONG_ARM: "the firmware does not serve this arm address",
            }.get(reason, reason.name if reason is not None else f"reason {last_nack.reason}")  # type: ignore[arg-type]
            raise RequestRejectedError(
                f"{self._port}: firmware refused {name}: {why}", last_nack.reason, last_nack.detail
            )
        raise RequestTimeoutError(
            f"{self._port}: no ACK for {name} after {self.request_retries} tries "
            f"({self.request_timeout * 1000:.0f} ms each): is the firmware still answering?"
        )

    def enable(self) -> ArmMode:
        """Torque on; the arm holds where it is until setpoints arrive. Acknowledged (timeout + retries)."""
        return self._request(p.Enable())

    def disable(self) -> ArmMode:
        """Torque off. Acknowledged."""
        return self._request(p.Disable())

    def estop(self) -> ArmMode:
        """Emergency stop: torque off at once, latched until `reset_estop()`. Acknowledged."""
        return self._request(p.Estop())

    def reset_estop(self) -> ArmMode:
        """Clear a latched e-stop; the arm is then DISABLED. Refused while the hardware button is pressed."""
        return self._request(p.ResetEstop())

    @property
    def stats(self) -> LinkStats:
        """A snapshot of the link counters and the setpoint→state round-trip times (last 1024)."""
        fc = self._decoder.frames.counters
        dc = self._decoder.counters
        r = self._retired
        rtts = np.array(self._rtts, dtype=np.float64)
        return LinkStats(
            **self._n,
            crc_errors=fc.crc_errors + r.get("crc_errors", 0),
            cobs_errors=fc.cobs_errors + r.get("cobs_errors", 0),
            runts=fc.runts + r.get("runts", 0),
            oversize=fc.oversize + r.get("oversize", 0),
            resyncs=fc.resyncs + r.get("resyncs", 0),
            discarded_bytes=fc.discarded_bytes + r.get("discarded_bytes", 0),
            unknown_type=dc.unknown_type + r.get("unknown_type", 0),
            bad_length=dc.bad_length + r.get("bad_length", 0),
            version_mismatch=dc.version_mismatch + r.get("version_mismatch", 0),
            rtt_samples=len(rtts),
            rtt_last_s=float(rtts[-1]) if len(rtts) else None,
            rtt_p50_s=float(np.percentile(rtts, 50)) if len(rtts) else None,
            rtt_p99_s=float(np.percentile(rtts, 99)) if len(rtts) else None,
            rtt_max_s=float(rtts.max()) if len(rtts) else None,
        )

    def poll_events(self) -> list[LinkEvent]:
        """Events since the last poll (oldest first; at most the newest 256 are kept)."""
        with self._events_lock:
            out = list(self._events)
            self._events.clear()
        return out

    def subscribe(self, callback: EventCallback) -> Callable[[], None]:
        """Call `callback(event)` from the reader thread for every event (keep it quick); returns an unsubscribe."""
        with self._events_lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._events_lock, contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def close(self, *, disable: bool = True) -> None:
        """Stop the reader and close the port. With `disable` (default), an enabled arm is disabled first."""
        if self._closing.is_set():
            return
        if disable and self._transport is not None and self._fatal is None:
            latest = self._latest
            if latest is not None and latest.mode in (ArmMode.ENABLED, ArmMode.HOLD):
                with contextlib.suppress(BridgeError):
                    self.disable()
        self._closing.set()
        t = self._transport
        if t is not None:
            t.interrupt()
        if self._reader is not None and self._reader is not threading.current_thread():
            self._reader.join(timeout=2.0)
        if t is not None:
            t.close()
        self._transport = None
        with self._state_cv:
            self._state_cv.notify_all()

    def __enter__(self) -> ArmLink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ArmLink({self._port!r}, arm={self.arm}, connected={self.connected})"

    # ------------------------------------------------------------------------------------------ events

    def _emit(self, kind: LinkEventKind, message: str, mode: ArmMode | None = None) -> None:
        ev = LinkEvent(kind, time.monotonic(), message, mode)
        log.info("%s: %s: %s", self._port, kind.value, message)
        with self._events_lock:
            self._events.append(ev)
            subscribers = list(self._subscribers)
        for cb in subscribers:
            try:
                cb(ev)
            except Exception:
                log.exception("link event subscriber failed")

    # ------------------------------------------------------------------------------------------ reader thread

    def _read_loop(self) -> None:
        while not self._closing.is_set():
            transport = self._transport
            if transport is None:
                self._reconnect_step()
                continue
            try:
                data = transport.read(min(0.02, self.state_timeout / 4))
            except TransportClosedError as e:
                if self._closing.is_set():
                    break
                self._on_disconnect(transport, str(e))
                continue
            now = time.monotonic()
            if data:
                self._n["bytes_rx"] += len(data)
                for hdr, msg in self._decoder.feed(data):
                    self._n["frames_rx"] += 1
                    self._handle(hdr, msg, now)
            self._watch(now)

    def _watch(self, now: float) -> None:
        if not self.link_lost.is_set() and now - self._last_state_t > self.state_timeout:
            self.link_lost.set()
            self._n["link_lost"] += 1
            self._emit(
                LinkEventKind.LINK_LOST,
                f"no state for {now - self._last_state_t:.3f} s (timeout {self.state_timeout:.3f} s)",
            )
        if self._rehello_seq is not None and now - self._rehello_t > self._handshake_timeout:
            self._send_rehello()

    def _send_rehello(self) -> None:
        transport = self._transport
        if transport is None:
            return
        with self._tx_lock:
            seq = self._next_seq()
            self._rehello_seq = seq
            self._rehello_t = time.monotonic()
            self._write(transport, p.encode(p.Hello(), seq=seq, arm=self.arm))

    def _on_disconnect(self, transport: Transport, why: str) -> None:
        self.link_lost.set()  # before `connected` turns False: a caller seeing it down also sees the link lost
        self._transport = None
        transport.close()
        self._n["disconnects"] += 1
        self._emit(LinkEventKind.DISCONNECTED, f"the port went away ({why})")
        self._fail_pending()
        if not self.reconnect:
            self._fatal = LinkDownError(f"{self._port}: the port went away ({why}) and reconnect is off")

    def _fail_pending(self) -> None:
        with self._pending_lock:
            for pending in self._pending.values():
                pending.event.set()

    def _retire_decoder(self) -> None:
        fc, dc = self._decoder.frames.counters, self._decoder.counters
        for k, v in (*vars(fc).items(), *vars(dc).items()):
            if k != "frames":
                self._retired[k] = self._retired.get(k, 0) + v
        self._decoder = p.StreamDecoder()

    def _reconnect_step(self) -> None:
        if not self.reconnect or self._fatal is not None:
            self._closing.wait(0.1)
            return
        if self._closing.wait(self.reconnect_interval):
            return
        try:
            transport = self._factory(self._port, self.baudrate)
        except PortError:
            return  # not back yet
        try:
            ack = self._handshake(transport)
            old = self._accept(ack, first=False)
        except (FirmwareMismatchError, ProtocolVersionError) as e:
            transport.close()
            self._fatal = e
            self._emit(LinkEventKind.RECONNECT_FAILED, str(e))
            return
        except BridgeError:
            transport.close()
            return  # the firmware may still be booting: try again
        if self._closing.is_set():
            transport.close()
            return
        self._retire_decoder()
        self._rehello_seq = None
        self._last_state_t = time.monotonic()
        self._transport = transport
        self._n["reconnects"] += 1
        self._emit(
            LinkEventKind.RECONNECTED,
            f"port reopened, handshake done; the arm is {ArmMode(ack.mode).name}: enable() to move again",
            ArmMode(ack.mode),
        )
        if old.boot_id != ack.boot_id:
            self._n["reboots"] += 1
            self._emit(
                LinkEventKind.FIRMWARE_REBOOTED,
                f"the firmware rebooted while the port was away (boot id 0x{old.boot_id:08x} → 0x{ack.boot_id:08x})",
                ArmMode(ack.mode),
            )

    def _handle(self, hdr: p.Header, msg: p.Message, now: float) -> None:
        if hdr.arm != self.arm:
            self._n["wrong_arm"] += 1
            return
        if isinstance(msg, p.State):
            self._on_state(hdr, msg, now)
            return
        if isinstance(msg, (p.HelloAck, p.ForeignHelloAck)):
            self._last_rx_seq = hdr.seq  # a handshake restarts the sequence check (the firmware may have rebooted)
        elif not self._track_seq(hdr.seq):
            return
        if isinstance(msg, (p.Ack, p.Nack)):
            with self._pending_lock:
                pending = self._pending.get(msg.request_seq)
            if pending is not None and msg.request_type in p.REQUEST_TYPES:
                pending.reply = msg
                pending.event.set()
        elif isinstance(msg, p.HelloAck):
            if self._rehello_seq is not None and msg.request_seq == self._rehello_seq:
                self._rehello_seq = None
                try:
                    self._accept(msg, first=False)
                except BridgeError as e:
                    self._fatal = e
                    self._emit(LinkEventKind.RECONNECT_FAILED, str(e))
                self._last_rx_seq = hdr.seq
        elif isinstance(msg, p.ForeignHelloAck):
            try:
                check_versions(self._port, msg.major, msg.minor, msg.schema_hash)
            except BridgeError as e:
                self._fatal = e
                self._emit(LinkEventKind.RECONNECT_FAILED, str(e))

    def _track_seq(self, seq: int) -> bool:
        """Count lost and out-of-order firmware frames (one sequence over all its frames); False: drop this one."""
        last = self._last_rx_seq
        if last is not None:
            d = p.seq_delta(seq, last)
            if d <= 0:
                self._n["seq_out_of_order"] += 1
                return False
            if d > 1:
                self._n["seq_gaps"] += d - 1
        self._last_rx_seq = seq
        return True

    def _reboot_reason(self, hdr: p.Header, st: p.State) -> str | None:
        """Why this STATE shows that the firmware rebooted, or None. Within one boot, firmware time and sequence
        numbers both only grow, and the session we opened persists."""
        last_time, last_seq = self._last_fw_time_us, self._last_rx_seq
        if last_time is not None and st.firmware_time_us + _REBOOT_TOLERANCE_US < last_time:
            return f"firmware time went from {last_time / 1e6:.3f} s back to {st.firmware_time_us / 1e6:.3f} s"
        if (
            last_time is not None
            and last_seq is not None
            and p.seq_delta(hdr.seq, last_seq) <= 0
            and st.firmware_time_us > last_time
        ):
            return f"its sequence numbers restarted (frame {hdr.seq} after {last_seq}) while its time went on"
        if self._rehello_seq is None and st.fault_bits & FaultBits.NO_SESSION:
            return "it reports no session although this host opened one"
        return None

    def _on_state(self, hdr: p.Header, st: p.State, now: float) -> None:
        n = self._n
        why = self._reboot_reason(hdr, st)
        if why is not None:
            # It is DISABLED, without a session: handshake again (the HELLO_ACK brings the new boot id).
            n["reboots"] += 1
            self._emit(
                LinkEventKind.FIRMWARE_REBOOTED,
                f"the firmware rebooted: {why}; the arm is {ArmMode(st.mode).name}: enable() to move again",
                ArmMode(st.mode),
            )
            self._last_rx_seq = None
            self._last_cmd_seen = 0
            self._send_rehello()
        if not self._track_seq(hdr.seq):
            return
        self._last_fw_time_us = st.firmware_time_us
        n["states_rx"] += 1
        n["firmware_rx_errors"] = st.rx_errors
        lcs = st.last_command_seq
        if lcs != self._last_cmd_seen:
            self._last_cmd_seen = lcs
            slot = lcs % _SENT_RING
            if self._sent_seq[slot] == lcs:
                self._rtts.append(now - self._sent_t[slot])
        mode = ArmMode(st.mode) if st.mode in ArmMode._value2member_map_ else ArmMode.DISABLED
        state = ArmState(
            positions=_readonly(st.positions),
            velocities=_readonly(st.velocities),
            effort=None if st.effort is None else _readonly(st.effort),
            gripper=st.gripper,
            fault_bits=FaultBits(st.fault_bits),
            mode=mode,
            firmware_time=st.firmware_time_us / 1e6,
            last_command_seq=lcs,
            t_received=now,
            seq=hdr.seq,
            reply=st.reply,
        )
        with self._state_cv:
            self._latest = state
            self._latest_n += 1
            self._state_cv.notify_all()
        self._last_state_t = now
        if self.link_lost.is_set() and self._transport is not None:
            self.link_lost.clear()
            self._emit(LinkEventKind.LINK_RESTORED, "states flow again", mode)
        if mode != self._last_mode:
            if self._last_mode is not None:
                self._emit(LinkEventKind.MODE_CHANGED, f"{self._last_mode.name} → {mode.name}", mode)
            self._last_mode = mode


def open_arm(port: str, *, backend: str = "harmowam", **kwargs: object) -> ArmLink:
    """Open an arm by backend name. Only "harmowam" (our firmware protocol) exists today; servo-bus backends
    (Dynamixel Protocol 2.0, Feetech STS) will register here behind the same `ArmClient` interface."""
    if backend != "harmowam":
        raise BridgeError(f"backend: unknown arm backend {backend!r}; available: 'harmowam'")
    return ArmLink.open(port, **kwargs)  # type: ignore[arg-type]

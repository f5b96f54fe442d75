"""`ServoBus`: one half-duplex servo bus over a byte transport, for either vendor's codec.

Transactions are strictly one at a time (the caller serialises them): write the instruction, then collect the
status packets of the servos expected to answer until all are in or the deadline passes. A missing servo is not
an exception here (the arm client decides what silence means); a refused instruction is.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from firmware_bridge.servo_bus.control_tables import Register, model_by_number
from firmware_bridge.servo_bus.errors import ServoBusError, ServoNotAnsweringError
from firmware_bridge.servo_bus.packets import Packet, PacketCodec, PacketParser
from firmware_bridge.servo_bus.timing import codec_for
from firmware_bridge.transport import SerialTransport, Transport

TransportFactory = Callable[[str, int], Transport]


@dataclass(frozen=True)
class ServoInfo:
    servo_id: int
    model_number: int
    model: str  # "" when this package has no table for it
    firmware: str


@dataclass
class BusCounters:
    transactions: int = 0
    timeouts: int = 0  # servos that did not answer in time
    bytes_tx: int = 0
    bytes_rx: int = 0
    writes_dropped: int = 0


@dataclass
class ServoBus:
    transport: Transport
    codec: PacketCodec
    port: str
    baudrate: int
    timeout_s: float = 0.05  # a real servo answers in ~1 ms plus the adapter's latency; this only bounds silence
    attempts: int = 3  # acknowledged reads and writes
    counters: BusCounters = field(default_factory=BusCounters)

    def __post_init__(self) -> None:
        self.parser = PacketParser(self.codec, status=True)

    @classmethod
    def open(
        cls, port: str, bus: str, baudrate: int = 1_000_000, *, transport_factory: TransportFactory | None = None
    ) -> ServoBus:
        """Open `port` exclusively for a `bus` ("dynamixel" | "feetech"); typed PortError on failure."""
        try:
            codec = codec_for(bus)
        except ValueError as e:
            raise ServoBusError(f"--bus: {e}") from None
        factory = transport_factory or (lambda p, b: SerialTransport.open(p, b))
        return cls(factory(port, baudrate), codec, port, baudrate)

    def close(self) -> None:
        self.transport.close()

    # ------------------------------------------------------------------------------------------ transactions

    def send(self, packet: bytes) -> None:
        """An instruction without replies (sync write, broadcast write)."""
        self._drain_stale()
        if self.transport.write(packet):
            self.counters.bytes_tx += len(packet)
        else:
            self.counters.writes_dropped += 1

    def transact(self, packet: bytes, expect: Sequence[int], timeout: float | None = None) -> dict[int, Packet]:
        """Send `packet`; return the status packets of the servos in `expect` that answered before the deadline."""
        self.counters.transactions += 1
        self.send(packet)
        want = set(expect)
        got: dict[int, Packet] = {}
        deadline = time.monotonic() + (self.timeout_s if timeout is None else timeout)
        while want - got.keys():
            left = deadline - time.monotonic()
            if left <= 0:
                for p in self.parser.drain():
                    if p.servo_id in want:
                        got.setdefault(p.servo_id, p)
                break
            data = self.transport.read(min(left, 0.01))
            if data:
                self.counters.bytes_rx += len(data)
                for p in self.parser.feed(data):
                    if p.servo_id in want:
                        got.setdefault(p.servo_id, p)
        self.counters.timeouts += len(want - got.keys())
        return got

    def _drain_stale(self) -> None:
        """Late replies of an earlier transaction must not answer this one."""
        self.parser.clear()
        while True:
            data = self.transport.read(0)
            if not data:
                return
            self.counters.bytes_rx += len(data)

    # ------------------------------------------------------------------------------------------ instructions

    def ping(self, servo_id: int, timeout: float | None = None) -> ServoInfo | None:
        """The servo's model number and firmware version, or None if it does not answer."""
        c = self.codec
        got = self.transact(c.instruction(servo_id, c.inst_ping, b""), [servo_id], timeout)
        st = got.get(servo_id)
        if st is None:
            return None
        if c.name == "dynamixel":
            number = int.from_bytes(st.params[:2], "little") if len(st.params) >= 2 else 0
            fw = str(st.params[2]) if len(st.params) >= 3 else "?"
        else:
            raw = self.read_raw(servo_id, 0, 5, timeout)  # firmware major, minor, (2), model number
            if raw is None:
                return None
            number = int.from_bytes(raw[3:5], "little")
            fw = f"{raw[0]}.{raw[1]}"
        m = model_by_number(c.name, number)
        return ServoInfo(servo_id, number, m.name if m else "", fw)

    def scan(self, ids: Iterable[int], timeout: float | None = None) -> list[ServoInfo]:
        """Ping each ID in turn; the ones that answer."""
        out = []
        for sid in ids:
            info = self.ping(sid, timeout)
            if info is not None:
                out.append(info)
        return out

    def read_raw(self, servo_id: int, address: int, length: int, timeout: float | None = None) -> bytes | None:
        c = self.codec
        pkt = c.instruction(servo_id, c.inst_read, c.read_params(address, length))
        for _ in range(self.attempts):
            st = self.transact(pkt, [servo_id], timeout).get(servo_id)
            if st is not None and len(st.params) == length:
                self._check_status(st, f"read of {length} byte(s) at {address}")
                return st.params
        return None

    def read(self, servo_id: int, name: str, reg: Register, timeout: float | None = None) -> int:
        raw = self.read_raw(servo_id, reg.address, reg.size, timeout)
        if raw is None:
            raise ServoNotAnsweringError(f"{self.port}: servo {servo_id} did not answer a read of {name}")
        return reg.decode(raw)

    def write(self, servo_id: int, name: str, reg: Register, value: int, timeout: float | None = None) -> None:
        """An acknowledged write; raises if the servo is silent or refuses it."""
        c = self.codec
        pkt = c.instruction(servo_id, c.inst_write, c.write_params(reg.address, reg.encode(value)))
        st = None
        for _ in range(self.attempts):  # writing the same value again is harmless
            st = self.transact(pkt, [servo_id], timeout).get(servo_id)
            if st is not None:
                break
        if st is None:
            raise ServoNotAnsweringError(f"{self.port}: servo {servo_id} did not acknowledge writing {name}={value}")
        self._check_status(st, f"write {name}={value}")

    def sync_read(
        self, ids: Sequence[int], address: int, length: int, timeout: float | None = None
    ) -> dict[int, Packet]:
        c = self.codec
        got = self.transact(
            c.instruction(c.broadcast_id, c.inst_sync_read, c.sync_read_params(address, length, ids)), ids, timeout
        )
        return {k: v for k, v in got.items() if len(v.params) == length}

    def batched_read(
        self, ids: Sequence[int], address: int, length: int, timeout: float | None = None
    ) -> dict[int, Packet]:
        """A READ per servo, one after the other (for servos without sync read); the ones that answered."""
        c = self.codec
        out: dict[int, Packet] = {}
        for sid in ids:
            st = self.transact(c.instruction(sid, c.inst_read, c.read_params(address, length)), [sid], timeout).get(sid)
            if st is not None and len(st.params) == length:
                out[sid] = st
        return out

    def sync_write(self, address: int, length: int, data: Mapping[int, bytes]) -> None:
        c = self.codec
        self.send(c.instruction(c.broadcast_id, c.inst_sync_write, c.sync_write_params(address, length, data)))

    def reboot(self, servo_id: int, timeout: float | None = None) -> bool:
        c = self.codec
        if c.inst_reboot is None:
            raise ServoBusError(f"{self.port}: {c.name} servos have no reboot instruction: power-cycle them")
        return servo_id in self.transact(c.instruction(servo_id, c.inst_reboot, b""), [servo_id], timeout)

    def _check_status(self, st: Packet, what: str) -> None:
        err = self.codec.command_error(st.code)
        if err:
            names = {1: "result fail", 2: "instruction error", 3: "CRC error", 4: "data range error",
                     5: "data length error", 6: "data limit error", 7: "access error"}  # fmt: skip
            raise ServoBusError(f"{self.port}: servo {st.servo_id} refused {what}: {names.get(err, f'error {err}')}")

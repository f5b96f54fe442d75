"""What both servo-bus protocols share: packets as values, the codec interface, parser counters. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Packet:
    """One decoded packet. For an instruction `code` is the instruction; for a status it is the error byte."""

    servo_id: int
    code: int
    params: bytes


@dataclass
class ParserCounters:
    packets: int = 0
    checksum_errors: int = 0  # CRC-16 (Dynamixel) or checksum (Feetech) mismatch
    discarded_bytes: int = 0  # bytes dropped while hunting for the next header


@dataclass
class PacketParser:
    """A resynchronising stream parser: feed bytes, get whole packets; damaged stretches are dropped and counted."""

    codec: PacketCodec
    status: bool  # parse status packets (host side) or instruction packets (servo side)
    counters: ParserCounters = field(default_factory=ParserCounters)
    _buf: bytearray = field(default_factory=bytearray)

    def feed(self, data: bytes) -> list[Packet]:
        self._buf += data
        out: list[Packet] = []
        while True:
            result = self.codec.extract(self._buf, status=self.status)
            if result is None:
                return out
            consumed, packet = result
            if packet is None:
                if consumed > 1:
                    self.counters.checksum_errors += 1
                    consumed = 1  # resync one byte after the bad header: the next packet may start inside it
                self.counters.discarded_bytes += consumed
            else:
                self.counters.packets += 1
                out.append(packet)
            del self._buf[:consumed]

    def drain(self) -> list[Packet]:
        """At a deadline: what waits for more bytes is a false header, not a packet in flight. Drop bytes one at a
        time and return every whole packet still in the buffer (Feetech has no stuffing, so data can look like
        a header with a long length)."""
        out = self.feed(b"")
        while self._buf:
            del self._buf[:1]
            self.counters.discarded_bytes += 1
            out += self.feed(b"")
        return out

    def clear(self) -> None:
        self._buf.clear()


class PacketCodec(Protocol):
    """One vendor's wire format. Addresses and lengths are control-table units; values are little-endian."""

    name: str
    broadcast_id: int
    max_id: int
    inst_ping: int
    inst_read: int
    inst_write: int
    inst_sync_read: int
    inst_sync_write: int
    inst_reboot: int | None

    def instruction(self, servo_id: int, instruction: int, params: bytes) -> bytes: ...

    def status(self, servo_id: int, error: int, params: bytes) -> bytes: ...

    def extract(self, buf: bytearray, *, status: bool) -> tuple[int, Packet | None] | None:
        """From the start of `buf`: None (need more bytes), (n, packet) or (n, None) to drop n bytes."""
        ...

    def read_params(self, address: int, length: int) -> bytes: ...

    def write_params(self, address: int, data: bytes) -> bytes: ...

    def sync_read_params(self, address: int, length: int, ids: Sequence[int]) -> bytes: ...

    def sync_write_params(self, address: int, length: int, data: Mapping[int, bytes]) -> bytes: ...

    def parse_read(self, params: bytes) -> tuple[int, int]:
        """(address, length) of a READ or SYNC_READ instruction's parameters."""
        ...

    def parse_sync_read(self, params: bytes) -> tuple[int, int, list[int]]: ...

    def parse_sync_write(self, params: bytes) -> tuple[int, int, dict[int, bytes]]: ...

    def parse_write(self, params: bytes) -> tuple[int, bytes]: ...

    def instruction_size(self, n_params: int) -> int:
        """Bytes on the wire for an instruction with n parameter bytes (before any stuffing)."""
        ...

    def status_size(self, n_params: int) -> int: ...

    def hardware_alert(self, error: int) -> bool:
        """Whether a status error byte says the servo has a hardware error."""
        ...

    def command_error(self, error: int) -> int:
        """The instruction-level error in a status byte (0: none)."""
        ...


def le(value: int, size: int) -> bytes:
    """`value` as `size` little-endian bytes (two's complement for negatives)."""
    return (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")

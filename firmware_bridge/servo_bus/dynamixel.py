"""Dynamixel Protocol 2.0 packets: `FF FF FD 00 | ID | LEN_L LEN_H | INST | PARAMS | CRC_L CRC_H`. Pure.

LEN counts INST + PARAMS + CRC after byte stuffing. Stuffing: wherever `FF FF FD` occurs from the instruction
byte on, an extra `FD` follows, so the header pattern never appears inside a packet. CRC-16 is polynomial 0x8005,
initial value 0, not reflected, over every byte before it (header included, after stuffing). A status packet's
instruction is 0x55, followed by the error byte: bit 7 "alert" (the servo has a hardware error, see its Hardware
Error Status register), bits 0..6 the instruction's error number.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from firmware_bridge.servo_bus.packets import Packet, le

HEADER = b"\xff\xff\xfd\x00"
BROADCAST_ID = 0xFE
MAX_ID = 0xFC
MAX_LENGTH = 1024

INST_PING = 0x01
INST_READ = 0x02
INST_WRITE = 0x03
INST_REG_WRITE = 0x04
INST_ACTION = 0x05
INST_FACTORY_RESET = 0x06
INST_REBOOT = 0x08
INST_STATUS = 0x55
INST_SYNC_READ = 0x82
INST_SYNC_WRITE = 0x83

ERROR_ALERT = 0x80
ERRNUM_RESULT_FAIL = 1
ERRNUM_INSTRUCTION = 2
ERRNUM_CRC = 3
ERRNUM_DATA_RANGE = 4
ERRNUM_DATA_LENGTH = 5
ERRNUM_DATA_LIMIT = 6
ERRNUM_ACCESS = 7


def _crc_table() -> list[int]:
    table = []
    for i in range(256):
        c = i << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x8005) if c & 0x8000 else (c << 1)
        table.append(c & 0xFFFF)
    return table


_TABLE = _crc_table()


def crc16(data: bytes | bytearray, crc: int = 0) -> int:
    """The Protocol 2.0 CRC-16 (poly 0x8005, init 0, MSB first)."""
    for b in data:
        crc = ((crc << 8) ^ _TABLE[((crc >> 8) ^ b) & 0xFF]) & 0xFFFF
    return crc


def stuff(body: bytes, prefix: bytes = b"") -> bytes:
    """Insert an FD after each `FF FF FD` in `body` (instruction + params); `prefix` is what precedes it on the
    wire (the ID and length bytes), so a pattern starting there counts too, as the vendor SDK counts it."""
    out = bytearray()
    seq = bytearray(prefix[-2:])
    for b in body:
        out.append(b)
        seq.append(b)
        if len(seq) >= 3 and seq[-3] == 0xFF and seq[-2] == 0xFF and seq[-1] == 0xFD:
            out.append(0xFD)
    return bytes(out)


def unstuff(body: bytes) -> bytes:
    out = bytearray()
    i = 0
    n = len(body)
    while i < n:
        b = body[i]
        if b == 0xFD and len(out) >= 3 and out[-3] == 0xFF and out[-2] == 0xFF and out[-1] == 0xFD:
            i += 1  # the stuffed copy
            continue
        out.append(b)
        i += 1
    return bytes(out)


def _packet(servo_id: int, body: bytes) -> bytes:
    # the stuffed length decides the length bytes, which take part in the stuffing check only through the SDK's
    # look-back over them; compute with the unstuffed length first, as the SDK does, then fix the length field
    pre_len = le(len(body) + 2, 2)
    stuffed = stuff(body, bytes([servo_id]) + pre_len)
    head = HEADER + bytes([servo_id]) + le(len(stuffed) + 2, 2)
    frame = head + stuffed
    return frame + le(crc16(frame), 2)


class DynamixelCodec:
    """Dynamixel Protocol 2.0 (X series: XL330, XL430, XM430, ...)."""

    name = "dynamixel"
    broadcast_id = BROADCAST_ID
    max_id = MAX_ID
    inst_ping = INST_PING
    inst_read = INST_READ
    inst_write = INST_WRITE
    inst_sync_read = INST_SYNC_READ
    inst_sync_write = INST_SYNC_WRITE
    inst_reboot: int | None = INST_REBOOT

    def instruction(self, servo_id: int, instruction: int, params: bytes) -> bytes:
        return _packet(servo_id, bytes([instruction]) + params)

    def status(self, servo_id: int, error: int, params: bytes) -> bytes:
        return _packet(servo_id, bytes([INST_STATUS, error]) + params)

    def extract(self, buf: bytearray, *, status: bool) -> tuple[int, Packet | None] | None:
        i = buf.find(HEADER[:3])
        if i < 0:
            keep = 2 if buf.endswith(b"\xff\xff") else 1 if buf.endswith(b"\xff") else 0
            return None if len(buf) == keep else (len(buf) - keep, None)
        if i > 0:
            return i, None
        if len(buf) < 7:
            return None
        length = buf[5] | (buf[6] << 8)
        min_len = 4 if status else 3
        if buf[3] != 0x00 or buf[4] > BROADCAST_ID or not min_len <= length <= MAX_LENGTH:
            return 1, None
        total = 7 + length
        if len(buf) < total:
            return None
        frame = bytes(buf[:total])
        if crc16(frame[:-2]) != (frame[-2] | (frame[-1] << 8)):
            return total, None
        body = unstuff(frame[7:-2])
        inst = body[0]
        if status:
            if inst != INST_STATUS or len(body) < 2:
                return total, None  # an instruction echoed on the half-duplex line, or another host's
            return total, Packet(frame[4], body[1], body[2:])
        if inst == INST_STATUS:
            return total, None
        return total, Packet(frame[4], inst, body[1:])

    # --- parameters ---------------------------------------------------------------------------------------

    def read_params(self, address: int, length: int) -> bytes:
        return le(address, 2) + le(length, 2)

    def write_params(self, address: int, data: bytes) -> bytes:
        return le(address, 2) + data

    def sync_read_params(self, address: int, length: int, ids: Sequence[int]) -> bytes:
        return le(address, 2) + le(length, 2) + bytes(ids)

    def sync_write_params(self, address: int, length: int, data: Mapping[int, bytes]) -> bytes:
        out = bytearray(le(address, 2) + le(length, 2))
        for sid, d in data.items():
            if len(d) != length:
                raise ValueError(f"sync write: servo {sid}: expected {length} bytes, got {len(d)}")
            out.append(sid)
            out += d
        return bytes(out)

    def parse_read(self, params: bytes) -> tuple[int, int]:
        if len(params) < 4:
            raise ValueError("read: short parameters")
        return params[0] | (params[1] << 8), params[2] | (params[3] << 8)

    def parse_write(self, params: bytes) -> tuple[int, bytes]:
        if len(params) < 3:
            raise ValueError("write: short parameters")
        return params[0] | (params[1] << 8), params[2:]

    def parse_sync_read(self, params: bytes) -> tuple[int, int, list[int]]:
        address, length = self.parse_read(params)
        return address, length, list(params[4:])

    def parse_sync_write(self, params: bytes) -> tuple[int, int, dict[int, bytes]]:
        address, length = self.parse_read(params)
        rest = params[4:]
        if length <= 0 or len(rest) % (length + 1):
            raise ValueError("sync write: parameters are not whole (ID, data) records")
        return address, length, {rest[k]: rest[k + 1 : k + 1 + length] for k in range(0, len(rest), length + 1)}

    # --- sizes and error bits -----------------------------------------------------------------------------

    def instruction_size(self, n_params: int) -> int:
        return 10 + n_params  # header 4, ID, LEN 2, INST, CRC 2

    def status_size(self, n_params: int) -> int:
        return 11 + n_params  # ... INST 0x55, ERROR

    def hardware_alert(self, error: int) -> bool:
        return bool(error & ERROR_ALERT)

    def command_error(self, error: int) -> int:
        return error & 0x7F

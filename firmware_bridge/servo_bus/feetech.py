"""Feetech SCS/STS packets (STS3215 and kin): `FF FF | ID | LEN | INST or ERROR | PARAMS | CHECKSUM`. Pure.

LEN counts INST/ERROR + PARAMS + CHECKSUM; CHECKSUM = ~(ID + LEN + INST + PARAMS) & 0xFF. No byte stuffing: the
header can occur inside data, so the parser resynchronises on checksum failures. Addresses and lengths are one
byte. STS registers are little-endian (the SDK's `protocol_end` 0); SCS servos are big-endian (not supported here).
Status error byte: bit 0 input voltage, 1 angle sensor, 2 overheat, 3 overcurrent, 5 overload. Sync read
(0x82) is answered by each listed servo with its own status packet, in the listed order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from firmware_bridge.servo_bus.packets import Packet

HEADER = b"\xff\xff"
BROADCAST_ID = 0xFE
MAX_ID = 0xFC

INST_PING = 0x01
INST_READ = 0x02
INST_WRITE = 0x03
INST_REG_WRITE = 0x04
INST_ACTION = 0x05
INST_SYNC_READ = 0x82
INST_SYNC_WRITE = 0x83

ERR_VOLTAGE = 1 << 0
ERR_ANGLE = 1 << 1
ERR_OVERHEAT = 1 << 2
ERR_OVERCURRENT = 1 << 3
ERR_OVERLOAD = 1 << 5
HARDWARE_BITS = ERR_VOLTAGE | ERR_ANGLE | ERR_OVERHEAT | ERR_OVERCURRENT | ERR_OVERLOAD


def checksum(data: bytes | bytearray) -> int:
    """~(sum of ID, LEN, INST/ERROR and params) & 0xFF."""
    return ~sum(data) & 0xFF


def _packet(servo_id: int, code: int, params: bytes) -> bytes:
    if len(params) > 250:
        raise ValueError(f"feetech packet: {len(params)} parameter bytes, at most 250 fit")
    body = bytes([servo_id, len(params) + 2, code]) + params
    return HEADER + body + bytes([checksum(body)])


class FeetechCodec:
    """Feetech STS/SMS protocol (little-endian registers)."""

    name = "feetech"
    broadcast_id = BROADCAST_ID
    max_id = MAX_ID
    inst_ping = INST_PING
    inst_read = INST_READ
    inst_write = INST_WRITE
    inst_sync_read = INST_SYNC_READ
    inst_sync_write = INST_SYNC_WRITE
    inst_reboot: int | None = None  # STS servos have no reboot instruction (power-cycle them)

    def instruction(self, servo_id: int, instruction: int, params: bytes) -> bytes:
        return _packet(servo_id, instruction, params)

    def status(self, servo_id: int, error: int, params: bytes) -> bytes:
        return _packet(servo_id, error, params)

    def extract(self, buf: bytearray, *, status: bool) -> tuple[int, Packet | None] | None:
        i = buf.find(HEADER)
        if i < 0:
            keep = 1 if buf.endswith(b"\xff") else 0
            return None if len(buf) == keep else (len(buf) - keep, None)
        if i > 0:
            return i, None
        if len(buf) < 4:
            return None
        sid, length = buf[2], buf[3]
        # an ID of 0xFF is a third header byte (some hosts send FF FF FF ...): skip one
        if sid == 0xFF or sid > BROADCAST_ID or not 2 <= length <= 250:
            return 1, None
        total = 4 + length
        if len(buf) < total:
            return None
        frame = bytes(buf[:total])
        if checksum(frame[2:-1]) != frame[-1]:
            return total, None
        code = frame[4]
        if status and code > 0x7F:
            return total, None  # not a status: an echoed sync instruction
        return total, Packet(sid, code, frame[5:-1])

    # --- parameters ---------------------------------------------------------------------------------------

    def read_params(self, address: int, length: int) -> bytes:
        return bytes([address, length])

    def write_params(self, address: int, data: bytes) -> bytes:
        return bytes([address]) + data

    def sync_read_params(self, address: int, length: int, ids: Sequence[int]) -> bytes:
        return bytes([address, length, *ids])

    def sync_write_params(self, address: int, length: int, data: Mapping[int, bytes]) -> bytes:
        out = bytearray([address, length])
        for sid, d in data.items():
            if len(d) != length:
                raise ValueError(f"sync write: servo {sid}: expected {length} bytes, got {len(d)}")
            out.append(sid)
            out += d
        return bytes(out)

    def parse_read(self, params: bytes) -> tuple[int, int]:
        if len(params) < 2:
            raise ValueError("read: short parameters")
        return params[0], params[1]

    def parse_write(self, params: bytes) -> tuple[int, bytes]:
        if len(params) < 2:
            raise ValueError("write: short parameters")
        return params[0], params[1:]

    def parse_sync_read(self, params: bytes) -> tuple[int, int, list[int]]:
        address, length = self.parse_read(params)
        return address, length, list(params[2:])

    def parse_sync_write(self, params: bytes) -> tuple[int, int, dict[int, bytes]]:
        address, length = self.parse_read(params)
        rest = params[2:]
        if length <= 0 or len(rest) % (length + 1):
            raise ValueError("sync write: parameters are not whole (ID, data) records")
        return address, length, {rest[k]: rest[k + 1 : k + 1 + length] for k in range(0, len(rest), length + 1)}

    # --- sizes and error bits -----------------------------------------------------------------------------

    def instruction_size(self, n_params: int) -> int:
        return 6 + n_params  # header 2, ID, LEN, INST, CHECKSUM

    def status_size(self, n_params: int) -> int:
        return 6 + n_params

    def hardware_alert(self, error: int) -> bool:
        return bool(error & HARDWARE_BITS)

    def command_error(self, error: int) -> int:
        return 0  # STS status packets carry only condition bits

"""Both servo-bus codecs byte for byte against the vendors' own SDKs (dynamixel-sdk, feetech-servo-sdk) and the
packet examples of the vendors' protocol documents."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge.servo_bus.control_tables import DYNAMIXEL_X, STS
from firmware_bridge.servo_bus.dynamixel import DynamixelCodec, crc16, stuff, unstuff
from firmware_bridge.servo_bus.feetech import FeetechCodec
from firmware_bridge.servo_bus.packets import PacketParser

dxl_sdk = pytest.importorskip("dynamixel_sdk", reason="dev extra: dynamixel-sdk is the Dynamixel byte oracle")
scs_sdk = pytest.importorskip("scservo_sdk", reason="dev extra: feetech-servo-sdk is the Feetech byte oracle")


class BytePort:
    """The SDKs' PortHandler, in memory: what the SDK writes is captured, what it reads comes from `rx`. Not a
    mock of the bus: it only moves bytes, so that the SDK's own encoder and decoder run on exact byte strings."""

    def __init__(self, rx: bytes = b"") -> None:
        self.rx = bytearray(rx)
        self.tx = bytearray()
        self.is_using = False
        self.baudrate = 1_000_000
        self._deadline_checks = 0

    def clearPort(self) -> None:
        pass

    def writePort(self, packet: list[int]) -> int:
        self.tx += bytes(packet)
        return len(packet)

    def readPort(self, length: int) -> list[int] | bytes:
        out = bytes(self.rx[:length])
        del self.rx[:length]
        return out

    def setPacketTimeout(self, packet_length: int) -> None:
        self._deadline_checks = 0

    def setPacketTimeoutMillis(self, msec: float) -> None:
        self._deadline_checks = 0

    def isPacketTimeout(self) -> bool:
        self._deadline_checks += 1
        return self._deadline_checks > 3 and not self.rx

    def getBaudRate(self) -> int:
        return self.baudrate


def h(s: str) -> bytes:
    return bytes.fromhex(s)


DXL = DynamixelCodec()
FT = FeetechCodec()
dxl_ph = dxl_sdk.PacketHandler(2.0)
scs_ph = scs_sdk.PacketHandler(0)


# --- the vendors' documented examples -------------------------------------------------------------------------

# ROBOTIS e-manual, Protocol 2.0: instruction and status examples for ID 1 (and ID 2).
DXL_VECTORS = [
    ("ping ID 1", DXL.instruction(1, 0x01, b""), "FF FF FD 00 01 03 00 01 19 4E"),
    (
        "read present position",
        DXL.instruction(1, 0x02, DXL.read_params(132, 4)),
        "FF FF FD 00 01 07 00 02 84 00 04 00 1D 15",
    ),
    (
        "write goal position 512",
        DXL.instruction(1, 0x03, DXL.write_params(116, (512).to_bytes(4, "little"))),
        "FF FF FD 00 01 09 00 03 74 00 00 02 00 00 CA 89",
    ),
    ("status: no error", DXL.status(1, 0, b""), "FF FF FD 00 01 04 00 55 00 A1 0C"),
    (
        "status: position 166",
        DXL.status(1, 0, (166).to_bytes(4, "little")),
        "FF FF FD 00 01 08 00 55 00 A6 00 00 00 8C C0",
    ),
    (
        "sync read present position IDs 1, 2",
        DXL.instruction(0xFE, 0x82, DXL.sync_read_params(132, 4, [1, 2])),
        "FF FF FD 00 FE 09 00 82 84 00 04 00 01 02 CE FA",
    ),
    (
        "sync write goal position 150 / 170",
        DXL.instruction(
            0xFE, 0x83, DXL.sync_write_params(116, 4, {1: (150).to_bytes(4, "little"), 2: (170).to_bytes(4, "little")})
        ),
        "FF FF FD 00 FE 11 00 83 74 00 04 00 01 96 00 00 00 02 AA 00 00 00 82 87",
    ),
    ("reboot ID 1", DXL.instruction(1, 0x08, b""), "FF FF FD 00 01 03 00 08 2F 4E"),
]

# Feetech FT-SCS protocol manual examples (ID 1): ping, read 2 bytes at 0x38, their replies.
FT_VECTORS = [
    ("ping ID 1", FT.instruction(1, 0x01, b""), "FF FF 01 02 01 FB"),
    ("ping reply", FT.status(1, 0, b""), "FF FF 01 02 00 FC"),
    ("read present position", FT.instruction(1, 0x02, FT.read_params(0x38, 2)), "FF FF 01 04 02 38 02 BE"),
    ("read reply 0x0518", FT.status(1, 0, h("18 05")), "FF FF 01 04 00 18 05 DD"),
]


@pytest.mark.parametrize(
    ("what", "ours", "doc"), DXL_VECTORS + FT_VECTORS, ids=lambda v: v if isinstance(v, str) else ""
)
def test_documented_packets(what: str, ours: bytes, doc: str) -> None:
    assert ours == h(doc), what


def test_crc16_check_value() -> None:
    # CRC-16/UMTS (poly 0x8005, init 0, not reflected): the catalogue's check value for "123456789"
    assert crc16(b"123456789") == 0xFEE8


# --- encode with ours, decode with theirs ----------------------------------------------------------------------

ids = st.integers(0, 252)
addr = st.integers(0, 300)
payload = st.binary(min_size=1, max_size=40)


def sdk_stuffed(tx: list[int]) -> bytes:
    """The SDK's own stuffing and CRC for a packet. Its txPacket drops the stuffed copy (dynamixel-sdk 4.1.0
    calls addStuffing and ignores the new list it returns when a pattern was stuffed), so it sends such packets
    unstuffed; the protocol says stuff them, so the oracle is addStuffing's result with the SDK's CRC."""
    out = dxl_ph.addStuffing(list(tx))
    total = (out[5] | (out[6] << 8)) + 7
    out = list(out[:total])
    out[0:4] = [0xFF, 0xFF, 0xFD, 0x00]
    crc = dxl_ph.updateCRC(0, out, total - 2)
    out[total - 2], out[total - 1] = crc & 0xFF, crc >> 8
    return bytes(out)


@settings(max_examples=60, deadline=None)
@given(ids, addr, payload)
def test_dynamixel_write_matches_sdk(sid: int, address: int, data: bytes) -> None:
    port = BytePort()
    dxl_ph.writeTxOnly(port, sid, address, len(data), list(data))
    ours = DXL.instruction(sid, 0x03, DXL.write_params(address, data))
    if len(ours) == len(port.tx):
        assert ours == bytes(port.tx)
    assert ours == sdk_stuffed(list(port.tx))


def test_dynamixel_sdk_stuffing_defect_is_what_the_oracle_works_around() -> None:
    """dynamixel-sdk 4.1.0 sends a packet whose data holds FF FF FD unstuffed (see sdk_stuffed); a release that
    fixes it must send exactly our packet."""
    port = BytePort()
    dxl_ph.writeTxOnly(port, 1, 116, 4, [0xFF, 0xFF, 0xFD, 0x00])
    ours = DXL.instruction(1, 0x03, DXL.write_params(116, h("FF FF FD 00")))
    assert ours.count(b"\xff\xff\xfd\xfd") == 1
    if len(port.tx) == len(ours):
        assert bytes(port.tx) == ours
    else:
        assert len(port.tx) == len(ours) - 1
        assert ours == sdk_stuffed(list(port.tx))


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(ids, st.binary(min_size=4, max_size=4), min_size=1, max_size=14), addr)
def test_dynamixel_sync_write_matches_sdk(records: dict[int, bytes], address: int) -> None:
    port = BytePort()
    gsw = dxl_sdk.GroupSyncWrite(port, dxl_ph, address, 4)
    for sid, d in records.items():
        gsw.addParam(sid, list(d))
    gsw.txPacket()
    assert DXL.instruction(0xFE, 0x83, DXL.sync_write_params(address, 4, records)) == sdk_stuffed(list(port.tx))


@settings(max_examples=50, deadline=None)
@given(st.lists(ids, min_size=1, max_size=14, unique=True), addr, st.integers(1, 20))
def test_dynamixel_sync_read_instruction_matches_sdk(servo_ids: list[int], address: int, length: int) -> None:
    port = BytePort()
    dxl_ph.syncReadTx(port, address, length, servo_ids, len(servo_ids), False)
    assert DXL.instruction(0xFE, 0x82, DXL.sync_read_params(address, length, servo_ids)) == sdk_stuffed(list(port.tx))


@settings(max_examples=60, deadline=None)
@given(ids, st.binary(min_size=0, max_size=40), st.integers(0, 255))
def test_dynamixel_status_ours_decoded_by_sdk(sid: int, data: bytes, error: int) -> None:
    """A status we encode (stuffed where needed) is read back by the SDK's rxPacket with the same content."""
    port = BytePort(DXL.status(sid, error, data))
    rx, result = dxl_ph.rxPacket(port, False)
    assert result == dxl_sdk.COMM_SUCCESS
    assert rx[4] == sid
    assert rx[8] == error
    assert bytes(rx[9 : 9 + len(data)]) == data


@settings(max_examples=60, deadline=None)
@given(ids, st.integers(0, 0x7F), st.binary(min_size=0, max_size=40))
def test_dynamixel_sdk_packets_decoded_by_ours(sid: int, inst: int, data: bytes) -> None:
    """Instruction packets the SDK builds (its own stuffing + CRC) parse back with ours."""
    port = BytePort()
    tx = [0] * (len(data) + 10)
    tx[4] = sid
    tx[5], tx[6] = (len(data) + 3) & 0xFF, (len(data) + 3) >> 8
    tx[7] = inst
    tx[8 : 8 + len(data)] = list(data)
    dxl_ph.txPacket(port, tx)
    if inst == 0x55:
        return
    (pkt,) = PacketParser(DXL, status=False).feed(sdk_stuffed(list(port.tx)))
    assert (pkt.servo_id, pkt.code, pkt.params) == (sid, inst, data)


def test_dynamixel_stuffing_is_applied_and_removed() -> None:
    body = bytes([0x03, 0x74, 0x00, 0xFF, 0xFF, 0xFD, 0x01])
    stuffed = stuff(body, b"\x01\x0a\x00")
    assert stuffed == bytes([0x03, 0x74, 0x00, 0xFF, 0xFF, 0xFD, 0xFD, 0x01])
    assert unstuff(stuffed) == body
    (pkt,) = PacketParser(DXL, status=False).feed(DXL.instruction(1, 0x03, body[1:]))
    assert pkt.params == body[1:]


@settings(max_examples=60, deadline=None)
@given(ids, st.integers(0, 255), payload)
def test_feetech_write_matches_sdk(sid: int, address: int, data: bytes) -> None:
    port = BytePort()
    scs_ph.writeTxOnly(port, sid, address, len(data), list(data))
    assert FT.instruction(sid, 0x03, FT.write_params(address, data)) == bytes(port.tx)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(ids, st.binary(min_size=2, max_size=2), min_size=1, max_size=14), st.integers(0, 255))
def test_feetech_sync_write_matches_sdk(records: dict[int, bytes], address: int) -> None:
    port = BytePort()
    gsw = scs_sdk.GroupSyncWrite(port, scs_ph, address, 2)
    for sid, d in records.items():
        gsw.addParam(sid, list(d))
    gsw.txPacket()
    assert FT.instruction(0xFE, 0x83, FT.sync_write_params(address, 2, records)) == bytes(port.tx)


@settings(max_examples=50, deadline=None)
@given(st.lists(ids, min_size=1, max_size=14, unique=True), st.integers(0, 255), st.integers(1, 20))
def test_feetech_sync_read_matches_sdk(servo_ids: list[int], address: int, length: int) -> None:
    replies = b"".join(FT.status(sid, 0, bytes((sid + k) & 0xFF for k in range(length))) for sid in servo_ids)
    port = BytePort(replies)
    gsr = scs_sdk.GroupSyncRead(port, scs_ph, address, length)
    for sid in servo_ids:
        gsr.addParam(sid)
    assert gsr.txRxPacket() == scs_sdk.COMM_SUCCESS
    assert FT.instruction(0xFE, 0x82, FT.sync_read_params(address, length, servo_ids)) == bytes(port.tx)
    for sid in servo_ids:
        assert gsr.data_dict[sid] == [(sid + k) & 0xFF for k in range(length)]


@settings(max_examples=60, deadline=None)
@given(ids, st.integers(0, 0x7F), st.binary(min_size=0, max_size=40))
def test_feetech_sdk_status_decoded_by_ours(sid: int, error: int, data: bytes) -> None:
    """A status packet is the SDK's txPacket layout with the error byte in the instruction slot."""
    port = BytePort()
    tx = [0] * (len(data) + 6)
    tx[2], tx[3], tx[4] = sid, len(data) + 2, error
    tx[5 : 5 + len(data)] = list(data)
    scs_ph.txPacket(port, tx)
    assert FT.status(sid, error, data) == bytes(port.tx)
    (pkt,) = PacketParser(FT, status=True).feed(bytes(port.tx))
    assert (pkt.servo_id, pkt.code, pkt.params) == (sid, error, data)


# --- parsers resynchronise on damage ----------------------------------------------------------------------------


@pytest.mark.parametrize("codec", [DXL, FT], ids=lambda c: c.name)
def test_parser_recovers_every_packet_around_garbage(codec: DynamixelCodec | FeetechCodec) -> None:
    good = [codec.status(i, 0, bytes([i, 0xFF, 0xFF, 0xFD, i])) for i in range(1, 7)]
    bad = bytearray(good[2])
    bad[-2] ^= 0x40  # checksum now wrong
    stream = b"\x00\x13\xff" + good[0] + good[1] + bytes(bad) + b"\xff\xff\x07" + good[3] + good[4] + good[5]
    parser = PacketParser(codec, status=True)
    got = []
    for k in range(0, len(stream), 5):  # in dribs, as a UART delivers
        got += parser.feed(stream[k : k + 5])
    got += parser.drain()  # the host's transaction deadline
    assert [p.servo_id for p in got] == [1, 2, 4, 5, 6]
    assert parser.counters.checksum_errors >= 1


# --- registers --------------------------------------------------------------------------------------------------


@given(st.integers(-2047, 2047))
def test_feetech_homing_offset_sign_magnitude(v: int) -> None:
    reg = STS["homing_offset"]
    raw = reg.encode(v)
    assert reg.decode(raw) == v
    if v < 0:
        assert int.from_bytes(raw, "little") == (-v) | (1 << 11)


@given(st.integers(-(2**31), 2**31 - 1))
def test_dynamixel_registers_twos_complement(v: int) -> None:
    reg = DYNAMIXEL_X["homing_offset"]
    assert reg.decode(reg.encode(v)) == v
    assert reg.encode(v) == (v & 0xFFFFFFFF).to_bytes(4, "little")

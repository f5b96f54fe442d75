"""Framing: COBS, CRC-32, the worked example of PROTOCOL.md §2.4, and the stream decoder's resynchronisation."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import framing as f
from firmware_bridge import protocol as p

HEARTBEAT_WIRE = bytes.fromhex("00 03 01 03 01 02 01 01 01 04 40 e2 01 01 01 01 01 05 a4 5a f5 be 00")
ENABLE_WIRE = bytes.fromhex("00 03 01 04 01 02 02 01 01 05 6f 33 ce f7 00")


def test_crc_is_crc32_iso_hdlc() -> None:
    assert f.crc32(b"123456789") == 0xCBF43926
    assert f.crc32(b"harmowam") == zlib.crc32(b"harmowam")


def test_worked_examples_of_protocol_md() -> None:
    assert p.encode(p.Heartbeat(123456), seq=1, arm=0) == HEARTBEAT_WIRE
    assert p.encode(p.Enable(), seq=2, arm=0) == ENABLE_WIRE
    packets = p.StreamDecoder().feed(HEARTBEAT_WIRE + ENABLE_WIRE)
    assert [type(m) for _, m in packets] == [p.Heartbeat, p.Enable]
    assert packets[0].header == p.Header(1, 0x03, 0, 0, 1)
    assert packets[0].message == p.Heartbeat(123456)


def test_cobs_known_vectors() -> None:
    assert f.cobs_encode(b"\x00") == b"\x01\x01"
    assert f.cobs_encode(bytes.fromhex("11220033")) == bytes.fromhex("0311220233")
    run = bytes(range(1, 255))  # 254 non-zero bytes: one 0xFF block, no trailing code byte
    assert f.cobs_encode(run) == b"\xff" + run
    assert f.cobs_decode(b"\xff" + run + b"\x01") == run  # the other encoders' trailing 0x01 is accepted too


@given(st.binary(max_size=800))
def test_cobs_round_trip(data: bytes) -> None:
    enc = f.cobs_encode(data)
    assert 0 not in enc
    assert len(enc) <= len(data) + max(1, (len(data) + 253) // 254)
    assert f.cobs_decode(enc) == data


@given(st.binary(max_size=600).filter(lambda b: b.count(0) < 3))
def test_cobs_fast_and_reference_encoders_agree(data: bytes) -> None:
    # long zero-free runs take the byte-wise path; both must emit the reference encoding
    assert f.cobs_encode(data) == f._cobs_encode_slow(data)


def test_cobs_decode_rejects_malformed() -> None:
    for bad in (b"", b"\x05\x00\x01", b"\x09\x01"):
        with pytest.raises(p.ProtocolError):
            f.cobs_decode(bad)


def _frames(seqs: list[int]) -> list[bytes]:
    return [p.encode(p.Heartbeat(1000 + s), seq=s) for s in seqs]


garbage = st.binary(min_size=1, max_size=700)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(garbage, st.booleans()), min_size=1, max_size=12), st.data())
def test_decoder_recovers_every_valid_frame_between_garbage(
    chunks: list[tuple[bytes, bool]], data: st.DataObject
) -> None:
    """Random garbage (with or without delimiters, of any length) between valid frames, fed in random pieces:
    every valid frame comes out, in order, and the garbage is counted, never mistaken for a frame."""
    frames = _frames(list(range(1, len(chunks) + 1)))
    stream = b"".join(
        g + (b"\x00" if terminate else b"") + fr for (g, terminate), fr in zip(chunks, frames, strict=True)
    )
    dec = p.StreamDecoder()
    out: list[p.Packet] = []
    i = 0
    while i < len(stream):
        step = data.draw(st.integers(1, 64))
        out += dec.feed(stream[i : i + step])
        i += step
    # (random garbage holds a frame with a valid CRC-32 with probability ~2^-32: not worth excluding)
    assert [(pkt.header.seq, pkt.message) for pkt in out] == [
        (s, p.Heartbeat(1000 + s)) for s in range(1, len(frames) + 1)
    ]
    c = dec.frames.counters
    rejected = c.crc_errors + c.cobs_errors + c.runts + c.oversize + dec.counters.bad_length
    rejected += dec.counters.unknown_type + dec.counters.version_mismatch + dec.counters.invalid
    if any(b != 0 for g, _ in chunks for b in g):
        assert rejected >= 1


def test_decoder_counts_each_kind_of_reject() -> None:
    good = p.encode(p.Heartbeat(7), seq=1)
    corrupt = bytearray(good)
    corrupt[10] ^= 0x40  # a content byte (host_time_us), not a COBS code byte: the CRC fails
    runt = b"\x00" + f.cobs_encode(b"\x01\x02\x03") + b"\x00"
    oversize = b"\x00" + b"\x11" * (f.MAX_ENCODED + 10) + b"\x00"
    unknown = f.encode_frame(p.HEADER.pack(1, 0x5A, 0, 0, 9))
    short = f.encode_frame(p.HEADER.pack(1, int(p.MsgType.HEARTBEAT), 0, 0, 9) + b"\x01\x02")
    foreign = f.encode_frame(p.HEADER.pack(2, int(p.MsgType.STATE), 0, 0, 9) + b"\x00" * 40)
    dec = p.StreamDecoder()
    out = dec.feed(bytes(corrupt) + runt + oversize + unknown + short + foreign + good)
    assert [pkt.message for pkt in out] == [p.Heartbeat(7)]
    c = dec.frames.counters
    assert (c.crc_errors, c.runts, c.oversize) == (1, 1, 1)
    assert (dec.counters.unknown_type, dec.counters.bad_length, dec.counters.version_mismatch) == (1, 1, 1)


def test_decoder_handles_frames_split_at_every_byte() -> None:
    wire = b"".join(_frames([1, 2, 3]))
    dec = p.StreamDecoder()
    out = [pkt for i in range(len(wire)) for pkt in dec.feed(wire[i : i + 1])]
    assert [pkt.header.seq for pkt in out] == [1, 2, 3]


def test_frame_size_limits() -> None:
    assert f.MAX_ENCODED == 386
    biggest = p.HelloAck(
        1, 0, 0, 1, 2, "x" * 16, (1, 2, 3), 16, 1, 0, 200, 100, 1000, 0, (0, 0.08, 0.1, 0.5),
        (-1.0,) * 16, (1.0,) * 16, (2.0,) * 16, (8.0,) * 16,
    )  # fmt: skip
    wire = p.encode(biggest, seq=1)
    assert len(f.cobs_decode(wire[1:-1])) == 332 <= f.MAX_FRAME
    with pytest.raises(p.ProtocolError, match="exceeds"):
        f.encode_frame(b"\x01" * f.MAX_FRAME)

"""Messages: property-based round trips of every message type, schema text and hash, versioning rules."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge import protocol as p

f32 = st.floats(width=32, allow_nan=False, allow_infinity=False)
u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
joints = st.integers(1, p.MAX_JOINTS)


def _arr(n: int) -> st.SearchStrategy[tuple[float, ...]]:
    return st.lists(f32, min_size=n, max_size=n).map(tuple)


@st.composite
def commands(draw: st.DrawFn) -> p.Command:
    n = draw(joints)
    return p.Command(
        positions=draw(_arr(n)),
        velocities=draw(st.none() | _arr(n)),
        gripper=draw(st.none() | f32),
        host_time_us=draw(u64),
    )


@st.composite
def states(draw: st.DrawFn) -> p.State:
    n = draw(joints)
    return p.State(
        firmware_time_us=draw(u64),
        last_command_seq=draw(u32),
        fault_bits=draw(u32),
        mode=draw(u8),
        positions=draw(_arr(n)),
        velocities=draw(_arr(n)),
        effort=draw(st.none() | _arr(n)),
        gripper=draw(st.none() | f32),
        rx_errors=draw(u16),
        reply=draw(st.booleans()),
    )


@st.composite
def hello_acks(draw: st.DrawFn) -> p.HelloAck:
    n = draw(joints)
    return p.HelloAck(
        major=p.PROTOCOL_MAJOR,
        minor=draw(u8),
        schema_hash=draw(u32),
        request_seq=draw(u32),
        boot_id=draw(u32),
        firmware_id=draw(st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=16)),
        firmware_version=(draw(u8), draw(u8), draw(u8)),
        joint_count=n,
        arms_served=draw(u8),
        capabilities=draw(u8),
        state_rate_hz=draw(u16),
        watchdog_hold_ms=draw(u16),
        watchdog_off_ms=draw(u16),
        mode=draw(u8),
        gripper_limits=(draw(f32), draw(f32), draw(f32), draw(f32)),
        position_min=draw(_arr(n)),
        position_max=draw(_arr(n)),
        max_velocity=draw(_arr(n)),
        max_acceleration=draw(_arr(n)),
    )


messages = st.one_of(
    st.builds(p.Hello, major=st.just(p.PROTOCOL_MAJOR), minor=u8, schema_hash=u32),
    commands(),
    st.builds(p.Heartbeat, host_time_us=u64),
    st.sampled_from([p.Enable(), p.Disable(), p.Estop(), p.ResetEstop()]),
    hello_acks(),
    states(),
    st.builds(p.Ack, request_type=u8, mode=u8, request_seq=u32),
    st.builds(p.Nack, request_type=u8, reason=u8, mode=u8, request_seq=u32, detail=u32),
)


@given(messages, u32, st.integers(0, 7))
def test_every_message_round_trips(msg: p.Message, seq: int, arm: int) -> None:
    wire = p.encode(msg, seq=seq, arm=arm)
    assert wire[0] == 0
    assert wire[-1] == 0
    assert 0 not in wire[1:-1]
    packets = p.StreamDecoder().feed(wire)
    assert len(packets) == 1
    hdr, out = packets[0]
    assert hdr == p.Header(p.PROTOCOL_MAJOR, int(msg.TYPE), arm, 0, seq)
    assert type(out) is type(msg)
    assert out == msg


@given(messages)
def test_bodies_may_grow_in_a_minor_version(msg: p.Message) -> None:
    """Receivers ignore bytes appended after the layout they know (PROTOCOL.md §7)."""
    body = p.encode_body(msg) + b"\x5a" * 7
    assert p.decode_body(int(msg.TYPE), body) == msg


@given(states())
def test_a_truncated_body_is_bad_length(msg: p.State) -> None:
    body = p.encode_body(msg)
    with pytest.raises(p.BadLengthError):
        p.decode_body(int(p.MsgType.STATE), body[:-1])


def test_layout_sizes_match_the_tables_of_protocol_md() -> None:
    assert p.HEADER_SIZE == 8
    sizes = {t: p.fixed_size(t) for t in p.MsgType}
    assert sizes[p.MsgType.HELLO] == 8
    assert sizes[p.MsgType.COMMAND] == 16
    assert sizes[p.MsgType.HELLO_ACK] == 64
    assert sizes[p.MsgType.STATE] == 28
    assert sizes[p.MsgType.ACK] == 8
    assert sizes[p.MsgType.NACK] == 12
    six = p.State(0, 0, 0, 0, (0.0,) * 6, (0.0,) * 6, None, 0.0)
    assert len(p.encode_body(six)) == 28 + 8 * 6


def test_schema_text_is_the_one_in_protocol_md() -> None:
    doc = (Path(p.__file__).parent / "PROTOCOL.md").read_text()
    text = p.schema_text()
    assert text in doc.replace("```\n", "")
    assert f"0x{p.SCHEMA_HASH:08x}" in doc
    assert p.SCHEMA_HASH == 0x73573F94


def test_schema_hash_changes_with_any_layout_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    base = p.crc32(p.schema_text().encode())
    edited = list(p.LAYOUTS)
    lay = edited[-1]
    edited[-1] = p.Layout(lay.type, (*lay.fixed[:-1], ("u16", "detail")), lay.arrays)
    monkeypatch.setattr(p, "LAYOUTS", tuple(edited))
    assert p.crc32(p.schema_text().encode()) != base


def test_c_firmware_carries_the_same_schema_text(c_binary: Path) -> None:
    out = subprocess.run([str(c_binary), "--print-schema"], capture_output=True, text=True, check=True)
    assert out.stdout == p.schema_text()


def test_struct_formats_follow_the_layout_table() -> None:
    # the fixed part of every message is packed from its table: field count and size agree
    for lay in p.LAYOUTS:
        s = p._FIXED[lay.type]
        assert len(s.unpack(bytes(s.size))) == len(lay.fixed)
        assert s.size == sum(struct.calcsize("<" + p._CODES[t]) for t, _ in lay.fixed)


def test_frames_of_another_major_are_read_only_where_frozen() -> None:
    ack = p.encode(_ack(major=2, minor=3), seq=5, major=2)
    ((_, msg),) = p.StreamDecoder().feed(ack)
    assert isinstance(msg, p.ForeignHelloAck)
    assert (msg.major, msg.minor) == (2, 3)
    # ESTOP and HELLO from any major are understood (a firmware must honour a foreign e-stop)
    ((_, estop),) = p.StreamDecoder().feed(p.encode(p.Estop(), seq=1, major=9))
    assert isinstance(estop, p.Estop)
    dec = p.StreamDecoder()
    assert dec.feed(p.encode(p.Heartbeat(1), seq=1, major=2)) == []
    assert dec.counters.version_mismatch == 1


def test_encoder_rejects_what_the_wire_cannot_carry() -> None:
    with pytest.raises(p.ProtocolError):
        p.encode(p.Command(()), seq=1)
    with pytest.raises(p.ProtocolError):
        p.encode(p.Command((0.0,) * 17), seq=1)
    with pytest.raises(p.ProtocolError):
        p.encode(p.Command((1e39,)), seq=1)
    with pytest.raises(p.ProtocolError):
        p.encode(p.Command((0.0, 0.0), velocities=(0.0,)), seq=1)


def test_seq_delta_wraps() -> None:
    assert p.seq_delta(5, 3) == 2
    assert p.seq_delta(1, 0xFFFFFFFF) == 2
    assert p.seq_delta(0xFFFFFFFF, 1) == -2


def _ack(major: int = p.PROTOCOL_MAJOR, minor: int = p.PROTOCOL_MINOR) -> p.HelloAck:
    return p.HelloAck(
        major, minor, p.SCHEMA_HASH, 1, 2, "fw", (1, 0, 0), 2, 1, 1, 200, 100, 1000, 0,
        (0.0, 0.08, 0.1, 0.5), (-1.0, -1.0), (1.0, 1.0), (2.0, 2.0), (8.0, 8.0),
    )  # fmt: skip

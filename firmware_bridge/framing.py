"""Framing: COBS byte stuffing, 0x00 delimiters and a CRC-32 trailer (PROTOCOL.md §2). Pure, no I/O.

The hot paths avoid per-byte Python loops: encoding walks the zero bytes with `bytes.find`, decoding walks the
COBS code chain (one step per block, not per byte) and rewrites the code bytes in place.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from firmware_bridge.errors import ProtocolError

#: Largest decoded frame (header + body + CRC) a receiver must accept; larger ones are dropped as oversize.
MAX_FRAME = 384
#: Largest COBS-encoded frame (without its 0x00 delimiter): COBS adds at most one byte per 254 and one in front.
MAX_ENCODED = MAX_FRAME + (MAX_FRAME + 253) // 254
#: Smallest decoded frame: the 8-byte header and the 4-byte CRC.
MIN_FRAME = 12
CRC_SIZE = 4
DELIMITER = b"\x00"


class CrcError(ProtocolError):
    """A frame whose CRC does not match its content."""


class RuntError(ProtocolError):
    """A frame shorter than header + CRC."""


def crc32(data: bytes | bytearray | memoryview) -> int:
    """CRC-32/ISO-HDLC (the zlib/Ethernet CRC): poly 0x04C11DB7 reflected, init and xorout 0xFFFFFFFF."""
    return zlib.crc32(data) & 0xFFFFFFFF


def _cobs_encode_slow(data: bytes) -> bytes:
    """Byte-by-byte COBS, used when a run of 254+ non-zero bytes needs 0xFF blocks. Like the reference encoder
    (and hwl_cobs_encode), a full block at the very end gets no trailing code byte."""
    out = bytearray()
    block = bytearray()
    last_full = False
    for b in data:
        if b == 0:
            out.append(len(block) + 1)
            out += block
            block.clear()
            last_full = False
        else:
            block.append(b)
            last_full = False
            if len(block) == 254:
                out.append(0xFF)
                out += block
                block.clear()
                last_full = True
    if block or not last_full:
        out.append(len(block) + 1)
        out += block
    return bytes(out)


_CODE = [bytes((i + 1,)) for i in range(254)]


def cobs_encode(data: bytes) -> bytes:
    """COBS-encode `data` (the result contains no 0x00). A 254-byte run ends its block with code 0xFF."""
    # split/map/join keep every per-block step in C: a STATE frame has dozens of zero bytes (0.0 floats, small ints)
    pieces = data.split(b"\x00")
    lengths = list(map(len, pieces))
    if max(lengths) >= 254:
        return _cobs_encode_slow(data)
    parts: list[bytes] = [b""] * (2 * len(pieces))
    parts[0::2] = map(_CODE.__getitem__, lengths)
    parts[1::2] = pieces
    return b"".join(parts)


def cobs_decode(data: bytes | bytearray) -> bytes:
    """Undo `cobs_encode`; raises ProtocolError on a 0x00 inside the data or a block running past the end."""
    n = len(data)
    if n == 0:
        raise ProtocolError("COBS: empty frame")
    out = bytearray(data)
    i = 0
    drop: list[int] | None = None
    while i < n:
        code = out[i]
        if code == 0:
            raise ProtocolError(f"COBS: zero byte at offset {i}")
        out[i] = 0
        nxt = i + code
        if code == 0xFF and nxt < n:
            # after a full 254-byte block the next code byte does not stand for a zero
            if drop is None:
                drop = []
            drop.append(nxt)
        i = nxt
    if i != n:
        raise ProtocolError(f"COBS: block runs {i - n} byte(s) past the end of the frame")
    if drop:
        for pos in reversed(drop):
            del out[pos]
    del out[0]
    return bytes(out)


def encode_frame(content: bytes) -> bytes:
    """header+body → 0x00 COBS(header+body+CRC32 LE) 0x00, ready to write.

    The leading 0x00 ends whatever garbage the receiver saw before (line noise, half a frame from before a reset),
    so that garbage cannot swallow this frame; back-to-back frames therefore have two delimiters between them
    (an empty frame, which receivers ignore).
    """
    raw = content + crc32(content).to_bytes(4, "little")
    if len(raw) > MAX_FRAME:
        raise ProtocolError(f"frame of {len(raw)} bytes exceeds the maximum of {MAX_FRAME}")
    return b"".join((DELIMITER, cobs_encode(raw), DELIMITER))


def decode_frame(encoded: bytes | bytearray) -> bytes:
    """One frame between delimiters (without the 0x00) → header+body, CRC checked and stripped."""
    raw = cobs_decode(encoded)
    if len(raw) < MIN_FRAME:
        raise RuntError(f"runt frame: {len(raw)} bytes, the minimum is {MIN_FRAME}")
    content = raw[:-CRC_SIZE]
    if crc32(content) != int.from_bytes(raw[-CRC_SIZE:], "little"):
        raise CrcError("CRC mismatch")
    return content


@dataclass
class FramingCounters:
    """What an incremental decoder has seen; every discarded stretch of bytes is counted once as a resync."""

    frames: int = 0
    crc_errors: int = 0
    cobs_errors: int = 0
    runts: int = 0
    oversize: int = 0
    resyncs: int = 0
    discarded_bytes: int = 0


class FrameDecoder:
    """Incremental decoder: bytes in any chunking → valid frame contents (header+body), garbage skipped.

    It resynchronises at the next 0x00: a corrupt, truncated or oversize frame costs only itself, and every valid
    frame after garbage is recovered (garbage cannot contain a 0x00 that swallows a valid frame: a delimiter always
    ends whatever came before it).
    """

    __slots__ = ("_buf", "_skipping", "counters")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._skipping = False
        self.counters = FramingCounters()

    def reset(self) -> None:
        """Forget a partial frame (after reopening a port)."""
        self._buf.clear()
        self._skipping = False

    def _discard(self, nbytes: int) -> None:
        self.counters.resyncs += 1
        self.counters.discarded_bytes += nbytes

    def feed(self, data: bytes | bytearray) -> list[bytes]:
        """Add received bytes; return the contents of every complete valid frame, in order."""
        out: list[bytes] = []
        if not data:
            return out
        find = data.find
        start = 0
        c = self.counters
        while True:
            z = find(0, start)
            if z < 0:
                rest = len(data) - start
                if self._skipping:
                    c.discarded_bytes += rest
                elif rest:
                    self._buf += data[start:]
                    if len(self._buf) > MAX_ENCODED:
                        c.oversize += 1
                        self._discard(len(self._buf))
                        self._buf.clear()
                        self._skipping = True
                return out
            piece = data[start:z]
            start = z + 1
            if self._skipping:
                self._skipping = False
                c.discarded_bytes += len(piece)
                continue
            if self._buf:
                self._buf += piece
                enc: bytes | bytearray = bytes(self._buf)
                self._buf.clear()
            else:
                enc = piece
            if not enc:
                continue  # a run of delimiters: senders may pad with 0x00 to flush a receiver
            if len(enc) > MAX_ENCODED:
                c.oversize += 1
                self._discard(len(enc))
                continue
            try:
                out.append(decode_frame(enc))
            except CrcError:
                c.crc_errors += 1
                self._discard(len(enc))
                continue
            except RuntError:
                c.runts += 1
                self._discard(len(enc))
                continue
            except ProtocolError:
                c.cobs_errors += 1
                self._discard(len(enc))
                continue
            c.frames += 1

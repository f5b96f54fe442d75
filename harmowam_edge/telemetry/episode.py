"""Episode recording to MCAP (opens in Foxglove Studio, `mcap` CLI, `mcap` Python readers).

Topics (log times are wall-clock nanoseconds so viewers show dates; every JSON payload also carries `t`, the
host monotonic time the loop used):
- `/camera/<name>/color`, `/camera/<name>/depth`: `sensor_msgs/Image` (ros1msg; rgb8 / 16UC1) — the frames each
  policy step ran on (not every camera frame: the episode shows what the policy saw);
- `/policy/chunk` (JSON): actions [K][A], gate weights, blend weights, mode, experts, per-stage timings, t_obs;
- `/control/tick` (JSON): status, chunk id, target (before safety), command (after), measured, sent;
- `/events` (JSON): rejected chunks, stops, torque off, ...
Metadata records: `run` (bundle, task, rig, ports, firmware, limits, rates) at the start, `summary` (stop reason
and the run's statistics) at the end.

The loop threads only enqueue; a writer thread serialises and writes (LZ4 chunks of 256 KiB, flushed as they
fill, so a crash loses little). `on_end` drains the queue and finishes the file with its index.
"""

from __future__ import annotations

import json
import logging
import queue
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from harmowam_edge.cameras.frames import Frame
from harmowam_edge.control.loop import RunEvent, RunInfo, RunObserver, RunSummary, TickRecord
from harmowam_edge.policy.policy import ActionChunk
from harmowam_edge.telemetry.stats import json_default

log = logging.getLogger("harmowam_edge.telemetry")

IMAGE_SCHEMA = """std_msgs/Header header
uint32 height
uint32 width
string encoding
uint8 is_bigendian
uint32 step
uint8[] data
================================================================================
MSG: std_msgs/Header
uint32 seq
time stamp
string frame_id
"""


def _json_schema(title: str, props: dict[str, str]) -> bytes:
    types = {"number": {"type": "number"}, "integer": {"type": "integer"}, "string": {"type": "string"}}
    types["array"] = {"type": "array"}
    types["object"] = {"type": "object"}
    types["boolean"] = {"type": "boolean"}
    schema = {"title": title, "type": "object", "properties": {k: types[v] for k, v in props.items()}}
    return json.dumps(schema).encode()


def encode_image(frame_id: str, seq: int, t_wall: float, img: np.ndarray, encoding: str) -> bytes:
    """A ROS1 `sensor_msgs/Image`, serialised (little-endian, as ROS1 does)."""
    img = np.ascontiguousarray(img)
    h, w = img.shape[:2]
    step = img.strides[0]
    secs = int(t_wall)
    nsecs = int((t_wall - secs) * 1e9)
    fid = frame_id.encode()
    enc = encoding.encode()
    data = img.tobytes()
    return b"".join(
        (
            struct.pack("<III", seq & 0xFFFFFFFF, secs, nsecs),
            struct.pack("<I", len(fid)),
            fid,
            struct.pack("<II", h, w),
            struct.pack("<I", len(enc)),
            enc,
            struct.pack("<BI", 0, step),
            struct.pack("<I", len(data)),
            data,
        )
    )


def decode_image(data: bytes) -> tuple[str, np.ndarray]:
    """(encoding, array) from `encode_image`'s bytes (for tests and tools)."""
    off = 12
    (n,) = struct.unpack_from("<I", data, off)
    off += 4 + n
    h, w = struct.unpack_from("<II", data, off)
    off += 8
    (n,) = struct.unpack_from("<I", data, off)
    enc = data[off + 4 : off + 4 + n].decode()
    off += 4 + n
    off += 5  # is_bigendian, step
    (n,) = struct.unpack_from("<I", data, off)
    raw = data[off + 4 : off + 4 + n]
    if enc == "rgb8":
        return enc, np.frombuffer(raw, np.uint8).reshape(h, w, 3)
    if enc == "16UC1":
        return enc, np.frombuffer(raw, np.uint16).reshape(h, w)
    return enc, np.frombuffer(raw, np.uint8)


class EpisodeRecorder(RunObserver):
    """A `RunObserver` writing the run to an MCAP file (see the module docstring)."""

    def __init__(self, path: str | Path, *, record_frames: bool = True, record_ticks: bool = True) -> None:
        from mcap.writer import CompressionType, Writer

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.record_frames = record_frames
        self.record_ticks = record_ticks
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in on_end / close
        self._writer = Writer(self._file, chunk_size=256 * 1024, compression=CompressionType.LZ4)
        self._writer.start(profile="", library="harmowam-edge")
        self._wall_offset = time.time() - time.monotonic()
        self._channels: dict[str, int] = {}
        self._seq: dict[str, int] = {}
        self._image_schema = self._writer.register_schema("sensor_msgs/Image", "ros1msg", IMAGE_SCHEMA.encode())
        self._json_schemas = {
            "/policy/chunk": self._writer.register_schema(
                "harmowam_edge.Chunk",
                "jsonschema",
                _json_schema(
                    "Chunk",
                    {
                        "t": "number",
                        "index": "integer",
                        "t_obs": "number",
                        "t_ready": "number",
                        "mode": "string",
                        "actions": "array",
                        "gate_weights": "array",
                        "blend_weights": "array",
                        "experts": "array",
                        "timings_ms": "object",
                        "frame_numbers": "array",
                    },
                ),
            ),
            "/control/tick": self._writer.register_schema(
                "harmowam_edge.Tick",
                "jsonschema",
                _json_schema(
                    "Tick",
                    {
                        "t": "number",
                        "index": "integer",
                        "status": "string",
                        "chunk_id": "integer",
                        "chunk_index": "integer",
                        "target": "array",
                        "command": "array",
                        "measured": "array",
                        "sent": "boolean",
                        "missed": "integer",
                        "velocity": "array",
                        "safety_flags": "array",
                    },
                ),
            ),
            "/events": self._writer.register_schema(
                "harmowam_edge.Event",
                "jsonschema",
                _json_schema("Event", {"t": "number", "kind": "string", "message": "string"}),
            ),
        }
        self._queue: queue.Queue[tuple[str, Any] | None] = queue.Queue(maxsize=20_000)
        self._dropped = 0
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._write_loop, name="episode-writer", daemon=True)
        self._thread.start()
        self.finished = False

    # -- observer hooks (loop threads): enqueue only

    def _put(self, item: tuple[str, Any]) -> None:
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            self._dropped += 1  # the disk cannot keep up: drop rather than stall the loop

    def on_start(self, info: RunInfo) -> None:
        self._put(("meta", ("run", _run_metadata(info))))

    def on_chunk(self, chunk: ActionChunk, frames: Sequence[Frame]) -> None:
        self._put(("chunk", (chunk, frames if self.record_frames else ())))

    def on_tick(self, tick: TickRecord) -> None:
        if self.record_ticks:
            self._put(("tick", tick))

    def on_event(self, event: RunEvent) -> None:
        self._put(("event", event))

    def on_end(self, summary: RunSummary) -> None:
        stats = json.dumps({**summary.stats, "duration_s": summary.duration_s}, default=json_default)
        self._put(
            ("meta", ("summary", {"reason": summary.reason.kind, "message": summary.reason.message, "stats": stats}))
        )
        self.close()

    def close(self) -> None:
        """Drain the queue and finish the file (idempotent)."""
        if self.finished:
            return
        self._queue.put(None)
        self._thread.join(timeout=30.0)
        try:
            self._writer.add_metadata("recorder", {"dropped_messages": str(self._dropped)})
            self._writer.finish()
        finally:
            self._file.close()
            self.finished = True
        if self._error is not None:
            log.error("episode recorder: %s", self._error)

    # -- writer thread

    def _channel(self, topic: str, encoding: str, schema_id: int) -> int:
        ch = self._channels.get(topic)
        if ch is None:
            ch = self._channels[topic] = self._writer.register_channel(topic, encoding, schema_id)
        return ch

    def _json(self, topic: str, t: float, payload: dict[str, Any]) -> None:
        ch = self._channel(topic, "json", self._json_schemas[topic])
        ns = int((t + self._wall_offset) * 1e9)
        seq = self._seq[topic] = self._seq.get(topic, 0) + 1
        data = json.dumps(payload, default=json_default, allow_nan=True).encode()
        self._writer.add_message(ch, log_time=ns, data=data, publish_time=ns, sequence=seq)

    def _image(self, topic: str, frame_id: str, t: float, img: np.ndarray, encoding: str) -> None:
        ch = self._channel(topic, "ros1msg", self._image_schema)
        seq = self._seq[topic] = self._seq.get(topic, 0) + 1
        wall = t + self._wall_offset
        ns = int(wall * 1e9)
        self._writer.add_message(
            ch, log_time=ns, data=encode_image(frame_id, seq, wall, img, encoding), publish_time=ns, sequence=seq
        )

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            try:
                self._write(item)
            except Exception as e:  # keep draining: a bad message must not block the loop's queue
                if self._error is None:
                    self._error = e
                    log.exception("episode recorder: writing %s failed", item[0])

    def _write(self, item: tuple[str, Any]) -> None:
        kind, payload = item
        if kind == "tick":
            t: TickRecord = payload
            self._json(
                "/control/tick",
                t.t,
                {
                    "t": t.t,
                    "index": t.index,
                    "status": t.status,
                    "chunk_id": t.chunk_id,
                    "chunk_index": t.chunk_index,
                    "target": None if t.target is None else t.target.tolist(),
                    "command": t.command.tolist(),
                    "measured": t.measured.tolist(),
                    "sent": t.sent,
                    "missed": t.missed,
                    "velocity": None if t.velocity is None else t.velocity.tolist(),
                    "safety_flags": list(t.safety_flags),
                },
            )
        elif kind == "chunk":
            c, frames = payload
            for f in frames:
                self._image(f"/camera/{f.camera}/color", f.camera, f.t_capture, f.color, "rgb8")
                if f.depth is not None:
                    self._image(f"/camera/{f.camera}/depth", f.camera, f.t_capture, f.depth, "16UC1")
            self._json(
                "/policy/chunk",
                c.t_ready,
                {
                    "t": c.t_ready,
                    "index": c.index,
                    "t_obs": c.t_obs,
                    "t_ready": c.t_ready,
                    "mode": c.mode,
                    "task": c.task,
                    "actions": c.actions.tolist(),
                    "gate_weights": c.gate_weights.tolist(),
                    "blend_weights": c.blend_weights.tolist(),
                    "experts": list(c.experts),
                    "timings_ms": {k: v * 1000 for k, v in c.timings.items()},
                    "frame_numbers": list(c.frame_numbers),
                },
            )
        elif kind == "event":
            e: RunEvent = payload
            self._json("/events", e.t, {"t": e.t, "kind": e.kind, "message": e.message})
        elif kind == "meta":
            name, data = payload
            self._writer.add_metadata(name, {k: str(v) for k, v in data.items()})


def _run_metadata(info: RunInfo) -> dict[str, str]:
    return {
        "bundle": str(info.bundle),
        "task": info.task,
        "rig": info.rig,
        "ports": json.dumps(list(info.ports)),
        "firmware": json.dumps([{**asdict(f)} for f in info.firmware], default=json_default),
        "joint_names": json.dumps(list(info.joint_names)),
        "limits": json.dumps(info.limits.to_dict()),
        "control_rate_hz": str(info.control_rate_hz),
        "action_rate_hz": str(info.action_rate_hz),
        "chunk_size": str(info.chunk_size),
        "cameras": json.dumps(list(info.cameras)),
        "dry_run": str(info.dry_run),
        "backend": info.backend,
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }

"""`run --sim --video FILE`: a run observer that films the simulated camera with the policy's state drawn over it.

The control loop's hooks must not block, so the observer only stores the newest chunk's gate weights and experts
(`on_chunk`) and the newest tick status (`on_tick`); a thread of its own samples the camera at the video rate,
draws the overlay and feeds the encoder, and `on_end` finishes the file after the arm is safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from harmowam_edge.cameras.frames import CameraSource, Frame
from harmowam_edge.control.loop import RunInfo, RunObserver, RunSummary, TickRecord
from harmowam_edge.policy.policy import ActionChunk
from harmowam_edge.sim.video import Overlay, VideoRecorder

log = logging.getLogger(__name__)

VIDEO_FPS = 10.0


class SimVideoObserver(RunObserver):
    """Writes what `camera` saw during the run, with gate weights, experts and status drawn over it."""

    def __init__(
        self,
        path: Path,
        camera: CameraSource,
        *,
        fps: float = VIDEO_FPS,
        untrained: bool = False,
        expected_duration_s: float | None = None,
    ) -> None:
        expected = int(expected_duration_s * fps) if expected_duration_s else None
        self.recorder = VideoRecorder(path, fps, expected_frames=expected)
        self.camera = camera
        self.fps = fps
        self.untrained = untrained
        self._lock = threading.Lock()
        self._gate: np.ndarray | None = None
        self._experts: tuple[str, ...] = ()
        self._chunk_line = "waiting for the first chunk"
        self._status = "starting"
        self._task = ""
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.written: Path | None = None
        self.error: BaseException | None = None

    # ------------------------------------------------------------------------------------------ run hooks

    def on_start(self, info: RunInfo) -> None:
        self._task = info.task
        self._t0 = time.monotonic()
        self._thread = threading.Thread(target=self._run, name="sim-video", daemon=True)
        self._thread.start()

    def on_chunk(self, chunk: ActionChunk, frames: Sequence[Frame]) -> None:
        with self._lock:
            self._gate = np.asarray(chunk.gate_weights, dtype=float).copy()
            self._experts = tuple(chunk.experts)
            self._chunk_line = f"chunk {chunk.index}: {chunk.mode}, {1e3 * chunk.latency:.0f} ms obs->chunk"

    def on_tick(self, tick: TickRecord) -> None:
        self._status = tick.status  # one attribute store: the control thread must not wait

    def on_end(self, summary: RunSummary) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10.0)
        try:
            self.written = self.recorder.close()
        except Exception as e:  # a failed encoder must not hide the run's own summary
            self.error = e
            log.exception("could not finish the video %s", self.recorder.path)

    # ------------------------------------------------------------------------------------------ the writer

    def _overlay(self, t: float) -> Overlay:
        with self._lock:
            gate, experts, chunk_line = self._gate, self._experts, self._chunk_line
        lines = [f"task: {self._task}   status: {self._status}", chunk_line]
        if self.untrained:
            lines.append("UNTRAINED policy (seeded demo bundle)")
        return Overlay(t=t, gate_weights=gate, experts=experts, lines=tuple(lines))

    def _run(self) -> None:
        period = 1.0 / self.fps
        k = 0
        last = -1
        try:
            while not self._stop.is_set():
                frame = self.camera.latest()
                if frame is not None and frame.frame_number != last:
                    last = frame.frame_number
                    self.recorder.add(frame.color, self._overlay(time.monotonic() - self._t0))
                k += 1
                self._stop.wait(max(0.0, self._t0 + k * period - time.monotonic()))
        except Exception as e:  # keep the run going: the video is for people, the arm is not at stake
            self.error = e
            log.exception("video writer stopped")

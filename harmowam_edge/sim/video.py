"""What the camera saw, with the gate's weights and the experts that ran drawn over it, for a person to look at.

MP4 through imageio-ffmpeg when an encoder is available (and the file name ends in .mp4), otherwise a PNG
contact sheet of evenly spaced frames. Frames stream to the encoder as they come, so a long run costs no memory.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from harmowam_edge.errors import ConfigError

log = logging.getLogger(__name__)

PREDICTIVE_RGB = (245, 140, 40)  # orange: the predictive (flow) expert
REACTIVE_RGB = (60, 140, 240)  # blue: the reactive (inverse dynamics) expert
SHEET_FRAMES = 16  # thumbnails on a contact sheet


@dataclass(frozen=True)
class Overlay:
    """What to draw over one frame."""

    t: float  # seconds since the run started
    gate_weights: Sequence[float] | np.ndarray | None = None  # the predictive expert's share per step, in [0, 1]
    experts: Sequence[str] = ()  # the experts that ran for the current chunk ("predictive", "reactive")
    lines: Sequence[str] = field(default_factory=tuple)  # free text (task, status), top left


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1: a scalable font
    except TypeError:  # pragma: no cover - older Pillow
        return ImageFont.load_default()


def draw_overlay(rgb: np.ndarray, overlay: Overlay) -> np.ndarray:
    """A copy of `rgb` (uint8 [H, W, 3]) with the time, text, expert chips and gate-weight bars drawn on it."""
    img = Image.fromarray(np.ascontiguousarray(rgb))
    h, w = rgb.shape[:2]
    scale = max(1.0, h / 240.0)
    font = _font(int(10 * scale))
    draw = ImageDraw.Draw(img, "RGBA")
    # Text block, top left.
    lines = [f"t = {overlay.t:6.2f} s", *overlay.lines]
    line_h = int(11 * scale)
    draw.rectangle((0, 0, int(w * 0.62), 4 + line_h * len(lines)), fill=(0, 0, 0, 140))
    for i, line in enumerate(lines):
        draw.text((4, 2 + i * line_h), line, fill=(255, 255, 255, 255), font=font)
    # Expert chips, top right: lit when that expert ran for the chunk being executed.
    chip_w, chip_h = int(62 * scale), int(12 * scale)
    for i, (name, colour) in enumerate((("predictive", PREDICTIVE_RGB), ("reactive", REACTIVE_RGB))):
        x0 = w - (i + 1) * (chip_w + 4)
        on = any(name in e for e in overlay.experts)  # "predictive" or the network name "predictive_expert"
        draw.rectangle((x0, 3, x0 + chip_w, 3 + chip_h), fill=(*colour, 230) if on else (40, 40, 40, 160))
        draw.text((x0 + 3, 4), name, fill=(255, 255, 255, 255) if on else (150, 150, 150, 255), font=font)
    # Gate weights, bottom: one bar per chunk step, its height the predictive share.
    weights = np.asarray(overlay.gate_weights if overlay.gate_weights is not None else [], dtype=float).ravel()
    if weights.size:
        strip_h = int(34 * scale)
        y1 = h - 3
        y0 = y1 - strip_h
        draw.rectangle((0, y0 - line_h - 2, w, h), fill=(0, 0, 0, 130))
        draw.text(
            (4, y0 - line_h), f"gate: predictive share per step (mean {weights.mean():.2f})", fill="white", font=font
        )
        bar_w = max(2, (w - 8) // weights.size)
        for k, wk in enumerate(np.clip(np.nan_to_num(weights), 0.0, 1.0)):
            mix = [int(p * wk + r * (1 - wk)) for p, r in zip(PREDICTIVE_RGB, REACTIVE_RGB, strict=True)]
            x0 = 4 + k * bar_w
            top = y1 - int(wk * strip_h)
            draw.rectangle((x0, y0, x0 + bar_w - 2, y1), outline=(90, 90, 90, 255))
            draw.rectangle((x0, top, x0 + bar_w - 2, y1), fill=(mix[0], mix[1], mix[2], 255))
    return np.asarray(img)


def contact_sheet(frames: Sequence[np.ndarray], columns: int = 4) -> np.ndarray:
    """Frames tiled in a grid (row-major, in time order)."""
    if not frames:
        raise ValueError("contact sheet: no frames")
    h, w = frames[0].shape[:2]
    rows = (len(frames) + columns - 1) // columns
    sheet = np.zeros((rows * h, min(columns, len(frames)) * w, 3), np.uint8)
    for i, f in enumerate(frames):
        r, c = divmod(i, columns)
        sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = f[:, :, :3]
    return sheet


def _mp4_writer(path: Path, fps: float) -> Any | None:
    """An imageio ffmpeg writer, or None where no encoder is available."""
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg

        imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as e:  # no imageio-ffmpeg or no ffmpeg binary: fall back to a contact sheet
        log.info("no MP4 encoder (%s); writing a PNG contact sheet instead", e)
        return None
    return imageio.get_writer(
        str(path), fps=fps, codec="libx264", quality=7, macro_block_size=8, ffmpeg_log_level="error"
    )


class VideoRecorder:
    """Collects overlaid frames and writes an MP4 (or a PNG contact sheet). Call `close()` to finish the file."""

    def __init__(self, path: Path, fps: float = 10.0, *, expected_frames: int | None = None) -> None:
        path = Path(path)
        suffix = path.suffix.lower()
        if suffix not in (".mp4", ".png"):
            raise ConfigError(f"--video {path}: expected a .mp4 or .png file name")
        if not path.parent.exists():
            raise ConfigError(f"--video {path}: the folder {path.parent} does not exist")
        self.requested = path
        self.fps = fps
        self.frames = 0
        self._writer = _mp4_writer(path, fps) if suffix == ".mp4" else None
        self.path = path if self._writer is not None else path.with_suffix(".png")
        self._keep_every = max(1, (expected_frames or SHEET_FRAMES) // SHEET_FRAMES)
        self._kept: list[np.ndarray] = []
        self._closed = False

    @property
    def is_mp4(self) -> bool:
        return self._writer is not None

    def add(self, rgb: np.ndarray, overlay: Overlay) -> None:
        if self._closed:
            return
        frame = draw_overlay(rgb, overlay)
        if self._writer is not None:
            self._writer.append_data(frame)
        elif self.frames % self._keep_every == 0:
            self._kept.append(frame)
            if len(self._kept) > 2 * SHEET_FRAMES:  # longer than expected: keep every other one
                self._kept = self._kept[::2]
                self._keep_every *= 2
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file; returns its path, or None when no frame was added."""
        if self._closed:
            return self.path if self.frames else None
        self._closed = True
        if self._writer is not None:
            self._writer.close()
            if self.frames == 0:
                self.path.unlink(missing_ok=True)
                return None
            return self.path
        if not self._kept:
            return None
        step = max(1, len(self._kept) // SHEET_FRAMES)
        Image.fromarray(contact_sheet(self._kept[::step][:SHEET_FRAMES])).save(self.path)
        return self.path

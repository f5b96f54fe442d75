"""--video: frames with the gate weights and experts drawn on them, as MP4 or a PNG contact sheet."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("PIL", reason="the sim extra (Pillow) is not installed")

from harmowam_edge.errors import ConfigError
from harmowam_edge.sim import video

H, W = 120, 160


def _frame(value: int = 128) -> np.ndarray:
    return np.full((H, W, 3), value, np.uint8)


def test_overlay_draws_gate_bars_whose_height_follows_the_weights():
    low = video.draw_overlay(_frame(), video.Overlay(1.0, gate_weights=[0.0] * 8))
    high = video.draw_overlay(_frame(), video.Overlay(1.0, gate_weights=[1.0] * 8))
    bars = slice(H - 30, H - 4)
    orange = np.array(video.PREDICTIVE_RGB)
    near_orange = lambda img: (np.abs(img[bars, :].astype(int) - orange).sum(axis=-1) < 30).mean()  # noqa: E731
    assert near_orange(high) > 0.3
    assert near_orange(low) < 0.05
    assert low.shape == (H, W, 3)
    assert low.dtype == np.uint8


def test_overlay_lights_the_chip_of_the_expert_that_ran():
    pred = video.draw_overlay(_frame(0), video.Overlay(0.0, experts=("predictive",)))
    none = video.draw_overlay(_frame(0), video.Overlay(0.0, experts=()))
    top_right = (slice(4, 12), slice(W - 60, W - 5))
    assert pred[top_right].mean() > none[top_right].mean() + 20


def test_mp4_has_every_frame(tmp_path):
    pytest.importorskip("imageio_ffmpeg", reason="imageio-ffmpeg is not installed")
    import imageio.v2 as imageio

    rec = video.VideoRecorder(tmp_path / "run.mp4", fps=10)
    for i in range(12):
        rec.add(_frame(i * 10), video.Overlay(i / 10, gate_weights=np.linspace(0, 1, 6)))
    path = rec.close()
    assert path == tmp_path / "run.mp4"
    assert imageio.get_reader(str(path)).count_frames() == 12


def test_png_contact_sheet_holds_evenly_spaced_frames(tmp_path):
    from PIL import Image

    rec = video.VideoRecorder(tmp_path / "run.png", fps=10, expected_frames=64)
    assert not rec.is_mp4
    for i in range(64):
        rec.add(_frame(i * 4), video.Overlay(i / 10))
    path = rec.close()
    sheet = np.asarray(Image.open(path))
    assert sheet.shape == (4 * H, 4 * W, 3)
    # Tiles in time order: later tiles are brighter (the frames were).
    means = [sheet[r * H + 40 : r * H + 80, c * W + 20 : c * W + 140].mean() for r in range(4) for c in range(4)]
    assert means == sorted(means)


def test_bad_video_path_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match=r"\.mp4 or \.png"):
        video.VideoRecorder(tmp_path / "run.avi")
    with pytest.raises(ConfigError, match="does not exist"):
        video.VideoRecorder(tmp_path / "missing" / "run.mp4")

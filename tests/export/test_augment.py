"""Training augmentation (`export.learning.augment`): whole-pixel shifts (edges filled, one offset per sample shared
with its horizon frames) and camera dropout (one view blanked, the targets whole)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from export.errors import ConfigError
from export.learning.augment import blank_images, drop_cameras, random_shifts, shift_batch, shift_images
from export.learning.sampler import Batch
from export.learning.trainer import TrainOptions, load_training_set
from tests.export.training_data import write_demos


def _dot(h: int, w: int, y: int, x: int) -> torch.Tensor:
    img = torch.zeros(1, 3, h, w)
    img[0, :, y, x] = 255.0
    return img


def _where(img: torch.Tensor) -> tuple[int, int]:
    y, x = divmod(int(img[0].argmax()), img.shape[-1])
    return y, x


def test_a_shift_moves_the_content_by_whole_pixels_and_fills_from_the_edge() -> None:
    img = _dot(12, 16, 5, 7)
    out = shift_images(img, torch.tensor([[2, -3]]))
    assert _where(out) == (7, 4)
    assert float(out.sum()) == float(img.sum())  # nothing lost, nothing doubled (the dot is off the edge)
    ramp = torch.arange(16.0).expand(1, 3, 12, 16).clone()
    right = shift_images(ramp, torch.tensor([[0, 3]]))
    assert torch.all(right[..., :4] == 0.0)  # the left edge column repeated into the gap
    assert torch.equal(right[..., 3:], ramp[..., :13])
    assert torch.equal(shift_images(ramp, torch.zeros(1, 2, dtype=torch.long)), ramp)


def test_random_shifts_cover_the_range_and_nothing_beyond() -> None:
    s = random_shifts(4000, 3, torch.Generator().manual_seed(0))
    assert int(s.min()) == -3
    assert int(s.max()) == 3
    assert len(torch.unique(s[:, 0])) == 7


def test_a_sample_s_horizon_frames_move_with_its_frame() -> None:
    n, horizon = 3, 2
    frames = [_dot(12, 16, 6, 8) for _ in range(n)]
    futures = [_dot(12, 16, 6, 8 + k) for _ in range(n) for k in range(horizon)]
    b = Batch(
        colors=[torch.cat(frames)],
        depths=[None],
        joint_pos=torch.zeros(n, 7),
        task=torch.zeros(n, 4),
        chunk=torch.zeros(n, 4, 7),
        gate=torch.zeros(n),
        weight=torch.ones(n),
        future_colors=[torch.cat(futures)],
        future_depths=[None],
        future_joint_pos=torch.zeros(n * horizon, 7),
        future_task=torch.zeros(n * horizon, 4),
    )
    out = shift_batch(b, 3, torch.Generator().manual_seed(1))
    moves = []
    for i in range(n):
        y, x = _where(out.colors[0][i : i + 1])
        dy, dx = y - 6, x - 8
        moves.append((dy, dx))
        for k in range(horizon):
            assert _where(out.future_colors[0][i * horizon + k : i * horizon + k + 1]) == (6 + dy, 8 + k + dx)
    assert len(set(moves)) > 1  # each sample its own offset
    assert shift_batch(b, 0, torch.Generator()) is b


def test_image_shift_out_of_range_names_the_option() -> None:
    with pytest.raises(ConfigError, match="--image-shift"):
        TrainOptions(image_shift=17).validate()


def _two_camera_batch(n: int, horizon: int) -> Batch:
    gen = torch.Generator().manual_seed(2)
    return Batch(
        colors=[torch.rand(n, 3, 6, 8, generator=gen) * 255 for _ in range(2)],
        depths=[torch.rand(n, 1, 6, 8, generator=gen), None],
        joint_pos=torch.zeros(n, 7),
        task=torch.zeros(n, 4),
        chunk=torch.zeros(n, 4, 7),
        gate=torch.zeros(n),
        weight=torch.ones(n),
        future_colors=[torch.rand(n * horizon, 3, 6, 8, generator=gen) for _ in range(2)],
        future_depths=[None, None],
        future_joint_pos=torch.zeros(n * horizon, 7),
        future_task=torch.zeros(n * horizon, 4),
    )


def test_a_blanked_frame_keeps_its_mean_colour_and_loses_its_layout() -> None:
    img = torch.rand(2, 3, 6, 8, generator=torch.Generator().manual_seed(0)) * 255
    out = blank_images(img, torch.tensor([True, False]))
    assert torch.equal(out[1], img[1])
    assert torch.allclose(out[0].mean(dim=(-2, -1)), img[0].mean(dim=(-2, -1)))
    assert float(out[0].std(dim=(-2, -1)).max()) < 1e-4


def test_camera_dropout_blanks_at_most_one_camera_of_a_sample_and_never_the_targets() -> None:
    n, horizon, p = 2000, 2, 0.4
    b = _two_camera_batch(n, horizon)
    out = drop_cameras(b, p, torch.Generator().manual_seed(5))
    flat = [o.std(dim=(-2, -1)).amax(dim=-1) < 1e-3 for o in out.colors]  # one colour per channel
    assert not bool((flat[0] & flat[1]).any())  # a sample never loses both views
    share = float((flat[0] | flat[1]).float().mean())
    assert abs(share - p) < 0.04
    assert abs(float(flat[0].float().mean()) - p / 2) < 0.04  # either camera, about equally
    unchanged = [torch.equal(o[~f], c[~f]) for o, c, f in zip(out.colors, b.colors, flat, strict=True)]
    assert all(unchanged)
    depth = out.depths[0]
    assert depth is not None
    assert bool((depth[flat[0]].std(dim=(-2, -1)) < 1e-4).all())  # the depth of a dropped camera goes too
    assert all(f is c for f, c in zip(out.future_colors, b.future_colors, strict=True))
    assert drop_cameras(b, 0.0, torch.Generator()) is b
    one = replace(b, colors=b.colors[:1], depths=b.depths[:1])
    assert drop_cameras(one, 0.5, torch.Generator()) is one


def test_camera_dropout_out_of_range_names_the_option() -> None:
    with pytest.raises(ConfigError, match="--camera-dropout"):
        TrainOptions(camera_dropout=1.0).validate()


def test_camera_dropout_on_one_camera_data_says_so(tmp_path: Path) -> None:
    demos = write_demos(tmp_path / "demos", episodes=2, seed=3)
    opts = TrainOptions(preset="nano", camera_dropout=0.3, val_fraction=0.0)
    with pytest.raises(ConfigError, match=r"--camera-dropout: needs two or more cameras, the data has 1"):
        load_training_set([demos], opts)

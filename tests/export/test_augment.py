"""Random-shift augmentation (`export.learning.augment`): whole-pixel moves, edges filled, one offset per sample
shared with its horizon frames."""

from __future__ import annotations

import pytest
import torch

from export.errors import ConfigError
from export.learning.augment import random_shifts, shift_batch, shift_images
from export.learning.sampler import Batch
from export.learning.trainer import TrainOptions


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

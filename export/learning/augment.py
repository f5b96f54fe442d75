"""Image augmentation for training: random shifts of the cached (cropped, shrunk) frames.

Why: a few hundred demonstrations of one fixed camera let a small encoder memorise where things sit in the
training frames; a random shift of a few pixels (replicate-padded, as DrQ and Diffusion Policy's random crop)
keeps the arm and the object in the same relation while moving both, so the policy has to read where the object
is relative to the gripper. The exported graphs never see it: it runs on the training batch only.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F  # noqa: N812
from torch import Tensor

from export.learning.sampler import Batch


def random_shifts(n: int, max_px: int, gen: torch.Generator) -> Tensor:
    """[n, 2] integer (dy, dx) offsets, each uniform in -max_px..max_px."""
    return torch.randint(-max_px, max_px + 1, (n, 2), generator=gen)


def shift_images(images: Tensor, shifts: Tensor) -> Tensor:
    """Each image [N, C, h, w] moved by its (dy, dx) in whole pixels; the edge pixels fill what comes in."""
    if images.shape[0] != shifts.shape[0]:
        raise ValueError(f"shifts: expected {images.shape[0]} rows, got {shifts.shape[0]}")
    p = int(shifts.abs().max()) if shifts.numel() else 0
    if p == 0:
        return images
    h, w = images.shape[-2:]
    padded = F.pad(images, (p, p, p, p), mode="replicate")
    out = torch.empty_like(images)
    for i, (dy, dx) in enumerate(shifts.tolist()):
        out[i] = padded[i, :, p - dy : p - dy + h, p - dx : p - dx + w]
    return out


def shift_batch(b: Batch, max_px: int, gen: torch.Generator) -> Batch:
    """The batch with every camera's frames shifted, one offset per sample and camera, shared by the sample's
    current frame and its horizon frames (the world model predicts the future of the same view)."""
    if max_px <= 0:
        return b
    n = b.joint_pos.shape[0]
    horizon = b.future_joint_pos.shape[0] // n

    def move(t: Tensor | None, s: Tensor) -> Tensor | None:
        return None if t is None else shift_images(t, s)

    colors, depths, future_colors, future_depths = [], [], [], []
    for c, d, fc, fd in zip(b.colors, b.depths, b.future_colors, b.future_depths, strict=True):
        s = random_shifts(n, max_px, gen)
        fs = s.repeat_interleave(horizon, dim=0)
        colors.append(shift_images(c, s))
        depths.append(move(d, s))
        future_colors.append(shift_images(fc, fs))
        future_depths.append(move(fd, fs))
    return replace(b, colors=colors, depths=depths, future_colors=future_colors, future_depths=future_depths)

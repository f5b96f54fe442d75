"""Image augmentation for training: random shifts of the cached (cropped, shrunk) frames, and camera dropout.

Why: a few hundred demonstrations of one fixed camera let a small encoder memorise where things sit in the
training frames; a random shift of a few pixels (replicate-padded, as DrQ and Diffusion Policy's random crop)
keeps the arm and the object in the same relation while moving both, so the policy has to read where the object
is relative to the gripper. Camera dropout blanks one camera of a sample so that no view can carry the policy
alone (grown onto a front-camera student, a wrist camera stayed the junior view). Measured, it did not shift that
reliance and did not change the closed-loop rate (docs/training.md, the camera-dropout stop); it stays an option,
off by default. The exported graphs never see either: they run on the training batch only.
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


def blank_images(images: Tensor, drop: Tensor) -> Tensor:
    """The images [N, C, h, w] where `drop` [N] is true replaced by their own mean colour: no layout left, same
    brightness (a black frame would also teach what an unplugged camera looks like, which the rig never sends)."""
    if not bool(drop.any()):
        return images
    flat = images.mean(dim=(-2, -1), keepdim=True).expand_as(images)
    return torch.where(drop.view(-1, 1, 1, 1), flat, images)


def drop_cameras(b: Batch, p: float, gen: torch.Generator) -> Batch:
    """The batch with, in each sample drawn with probability `p`, one of its cameras (uniformly chosen) blanked.

    Only the current frames: the world model's targets (the horizon frames) stay whole, so it still learns what
    every camera will see next. One camera at most per sample, so a sample never loses its whole view."""
    cams = len(b.colors)
    if p <= 0 or cams < 2:
        return b
    n = b.joint_pos.shape[0]
    hit = torch.rand(n, generator=gen) < p
    which = torch.randint(0, cams, (n,), generator=gen)
    colors, depths = [], []
    for i, (c, d) in enumerate(zip(b.colors, b.depths, strict=True)):
        drop = (hit & (which == i)).to(c.device)
        colors.append(blank_images(c, drop))
        depths.append(None if d is None else blank_images(d, drop))
    return replace(b, colors=colors, depths=depths)

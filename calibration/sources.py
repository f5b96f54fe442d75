"""Where calibration views come from: an image directory, a RealSense recording, or a live RealSense.

RealSense recordings and devices are read through the runtime's own camera sources
(`harmowam_edge.cameras.realsense`), so calibration sees exactly the frames, and the factory intrinsics, that the
robot's run sees.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np

from calibration.errors import ImageReadError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp")


def image_files(directory: str | Path) -> list[Path]:
    """The images in a directory, sorted by name; a clear error when there are none."""
    d = Path(directory)
    if not d.exists():
        raise ImageReadError(f"{d}: no such image directory")
    if not d.is_dir():
        raise ImageReadError(f"{d}: not a directory (give the folder that holds the calibration images)")
    files = sorted(p for p in d.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ImageReadError(f"{d}: no images ({', '.join(IMAGE_SUFFIXES)}) in this directory")
    return files


def read_image(path: Path) -> np.ndarray:
    """A grey uint8 image; an ImageReadError names a file that is not a readable image."""
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as e:
        raise ImageReadError(f"{path}: cannot read the file ({e.strerror})") from None
    img = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
    if img is None:
        raise ImageReadError(
            f"{path}: not a readable image (corrupt, empty, or not an image format OpenCV reads); "
            "remove it from the directory or replace it"
        )
    if img.dtype != np.uint8:
        img = (img.astype(np.float64) * (255.0 / max(float(img.max()), 1.0))).astype(np.uint8)
    return img


def iter_image_dir(directory: str | Path) -> Iterator[tuple[str, np.ndarray]]:
    for path in image_files(directory):
        yield path.name, read_image(path)

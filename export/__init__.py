"""Torch side: edge networks, checkpoints, ONNX export with parity checks, quantization, TensorRT, bundle writer.

May import `harmowam_edge.bundle.schema` and nothing else of the runtime (design §2). The public API:

    init_checkpoint(out, preset="nano", arms=1, seed=0, camera=CameraSpec(...), tasks=(...))
    build_bundle(checkpoint_dir, out, precision="fp32", calib=None, force=False, ...) -> BuildReport
    build_demo_bundle(out, preset="nano", arms=1, seed=0, camera=None, precision="fp32", depth=False)
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from export.errors import (
    CalibrationDataError,
    CheckpointError,
    ConfigError,
    ExportError,
    OnnxExportError,
    OutputExistsError,
    ParityError,
    QuantizationBudgetError,
    TensorRTError,
)

if TYPE_CHECKING:
    from export.bundle import BuildReport
    from harmowam_edge.bundle.schema import CameraSpec

PRESET_NAMES = ("nano", "small", "base", "reference")


def init_checkpoint(
    out: str | Path,
    preset: str = "nano",
    arms: int = 1,
    seed: int = 0,
    camera: CameraSpec | Sequence[CameraSpec] | None = None,
    tasks: Sequence[str] | None = None,
    force: bool = False,
) -> Path:
    """Write a seeded, UNTRAINED checkpoint (safetensors + config.json) for tests and demos."""
    from export.checkpoint import init_checkpoint as _init
    from export.config import DEFAULT_TASKS

    return _init(out, preset=preset, arms=arms, seed=seed, camera=camera, tasks=tasks or DEFAULT_TASKS, force=force)


def build_bundle(checkpoint_dir: str | Path, out: str | Path, precision: str = "fp32", **kwargs: Any) -> BuildReport:
    """Checkpoint -> verified ONNX (+ FP16/INT8) -> deploy bundle. See `export.bundle.build_bundle`."""
    from export.bundle import build_bundle as _build

    return _build(checkpoint_dir, out, precision=precision, **kwargs)


def build_demo_bundle(
    out: str | Path,
    preset: str = "nano",
    arms: int = 1,
    seed: int = 0,
    camera: CameraSpec | Sequence[CameraSpec] | None = None,
    precision: str = "fp32",
    depth: bool = False,
    force: bool = False,
    tasks: Sequence[str] | None = None,
) -> BuildReport:
    """An untrained, seeded checkpoint straight into a bundle (quantized ones calibrate on synthetic frames).

    `depth=True` adds an aligned depth stream to every camera. Default camera: D435 color 640x480 @ 30 fps.
    """
    from export.config import default_camera

    if camera is None:
        cams: tuple[CameraSpec, ...] = (default_camera(),)
    elif isinstance(camera, Sequence):
        cams = tuple(camera)
    else:
        cams = (camera,)
    if depth:
        cams = tuple(replace(c, streams=("color", "depth")) for c in cams)
    out = Path(out)
    work = Path(tempfile.mkdtemp(prefix="harmowam-ckpt-"))
    try:
        ckpt = init_checkpoint(work / f"{preset}-{arms}arm-seed{seed}", preset, arms, seed, cams, tasks)
        # An untrained network's quantization error means nothing: write it, the report says how far off it is.
        return build_bundle(
            ckpt,
            out,
            precision=precision,
            calib="synthetic" if precision != "fp32" else None,
            force=force,
            allow_over_budget=True,
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


__all__ = [
    "PRESET_NAMES",
    "CalibrationDataError",
    "CheckpointError",
    "ConfigError",
    "ExportError",
    "OnnxExportError",
    "OutputExistsError",
    "ParityError",
    "QuantizationBudgetError",
    "TensorRTError",
    "build_bundle",
    "build_demo_bundle",
    "init_checkpoint",
]

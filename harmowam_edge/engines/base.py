"""The one small interface every inference backend implements (ONNX Runtime, TensorRT)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import numpy as np

from harmowam_edge.bundle.schema import TensorSpec


@runtime_checkable
class Engine(Protocol):
    """One network graph, static shapes, batch 1. `run` reads its inputs by name from `feeds` (extra keys are
    ignored, so one feed dict can flow through the whole policy) and returns every output by name."""

    name: str  # network name (world_model, gate, ...)
    backend: str  # e.g. "onnxruntime/CPUExecutionProvider", "tensorrt 10.3.0/Orin"
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def close(self) -> None: ...


def zero_feeds(inputs: tuple[TensorSpec, ...]) -> dict[str, np.ndarray]:
    """Zeros of the right shape and dtype for every input (warm-up, benchmarks)."""
    return {t.name: np.zeros(t.shape, dtype=np.dtype(t.dtype)) for t in inputs}

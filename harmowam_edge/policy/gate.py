"""The gate decision with hysteresis (pure): which experts run for a chunk, and the per-step blend weights.

`GateParams` (bundle schema): with the predictive expert's per-step weight w in [0, 1], max(w) < low → only the
reactive expert runs; min(w) > high → only the predictive expert runs; otherwise both run and are blended per
step. Against the previous decision the thresholds widen by `hysteresis`, so weights hovering around a threshold
do not flip the choice (and the cost of a policy step) chunk after chunk.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from harmowam_edge.bundle.schema import GateParams

GateMode = Literal["reactive", "predictive", "blend"]
GATE_MODES: tuple[GateMode, ...] = ("reactive", "predictive", "blend")


def decide(weights: np.ndarray, params: GateParams, previous: GateMode | None) -> GateMode:
    """The decision for one chunk's weights [K], given the previous chunk's decision (None at the start)."""
    w_max = float(np.max(weights))
    w_min = float(np.min(weights))
    h = params.hysteresis
    if previous is None:
        h = 0.0
    # Staying in a single-expert mode is easier than entering it.
    low = params.low + h if previous == "reactive" else params.low - h
    high = params.high - h if previous == "predictive" else params.high + h
    if w_max < low:
        return "reactive"
    if w_min > high:
        return "predictive"
    return "blend"


def blend_weights(weights: np.ndarray, mode: GateMode) -> np.ndarray:
    """The weights actually applied per step: 0 (reactive only), 1 (predictive only) or the gate's own."""
    if mode == "reactive":
        return np.zeros_like(weights)
    if mode == "predictive":
        return np.ones_like(weights)
    return np.clip(weights, 0.0, 1.0)


class GateHysteresis:
    """Keeps the previous decision; `decide(weights)` returns this chunk's mode."""

    def __init__(self, params: GateParams) -> None:
        self.params = params
        self.previous: GateMode | None = None
        self.switches = 0
        self.counts: dict[str, int] = dict.fromkeys(GATE_MODES, 0)

    def decide(self, weights: np.ndarray) -> GateMode:
        mode = decide(weights, self.params, self.previous)
        if self.previous is not None and mode != self.previous:
            self.switches += 1
        self.previous = mode
        self.counts[mode] += 1
        return mode

    def reset(self) -> None:
        self.previous = None

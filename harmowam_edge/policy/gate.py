"""The gate decision with hysteresis, kept across chunks. The rules themselves are the bundle's
(`harmowam_edge.bundle.composition`), shared with export's accuracy checks."""

from __future__ import annotations

import numpy as np

from harmowam_edge.bundle.composition import GATE_MODES, GateMode, blend_weights, decide
from harmowam_edge.bundle.schema import GateParams

__all__ = ["GATE_MODES", "GateHysteresis", "GateMode", "blend_weights", "decide"]


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

"""How a bundle's graphs compose into one policy step: the gate decision, the per-step blend, the flow schedule.

Pure, and shared by the runtime's policy and by export's parity and accuracy checks, so that an INT8 accuracy
report measures the blend the robot will run. `GateParams` (schema) holds the numbers; this module the rules.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from harmowam_edge.bundle.schema import GateParams

GateMode = Literal["reactive", "predictive", "blend"]
GATE_MODES: tuple[GateMode, ...] = ("reactive", "predictive", "blend")


def decide(weights: np.ndarray, params: GateParams, previous: GateMode | None = None) -> GateMode:
    """The decision for one chunk's predictive weights w (any shape), given the previous chunk's (None: none).

    max(w) < low → only the reactive expert runs; min(w) > high → only the predictive expert; otherwise both,
    blended per step. Against the previous decision the thresholds widen by `hysteresis`: staying in a
    single-expert mode is easier than entering it, so weights hovering at a threshold do not flip the choice.
    """
    w_max = float(np.max(weights))
    w_min = float(np.min(weights))
    h = 0.0 if previous is None else params.hysteresis
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


def blend(predictive: np.ndarray | None, reactive: np.ndarray | None, applied: np.ndarray) -> np.ndarray:
    """a_k = w_k · predictive_k + (1 − w_k) · reactive_k over [..., K, A]; an expert that did not run is None."""
    if reactive is None:
        if predictive is None:
            raise ValueError("blend: neither expert ran")
        return predictive
    if predictive is None:
        return reactive
    w = applied[..., None]
    return w * predictive + (1.0 - w) * reactive


def flow_schedule(steps: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Inputs of the looped one-step flow graph: t_i = i / N for i < N (flow time runs noise → actions), dt = 1 / N.

    The state starts as the noise: x_0 = noise, x_{i+1} = x_next(x_i, t_i, dt).
    """
    if steps < 1:
        raise ValueError(f"flow steps: expected >= 1, got {steps}")
    times = [np.full((1,), i / steps, dtype=np.float32) for i in range(steps)]
    return times, np.full((1,), 1.0 / steps, dtype=np.float32)

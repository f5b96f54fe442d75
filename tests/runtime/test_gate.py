"""Gate decision with hysteresis (pure)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmowam_edge.bundle.schema import GateParams
from harmowam_edge.policy.gate import GateHysteresis, blend_weights, decide

P = GateParams(low=0.05, high=0.95, hysteresis=0.03)
weights = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=16).map(lambda w: np.array(w, dtype=np.float32))


@given(w=weights)
def test_first_decision_follows_the_plain_thresholds(w) -> None:
    mode = decide(w, P, None)
    w = w.astype(np.float64)
    if w.max() < P.low:
        assert mode == "reactive"
    elif w.min() > P.high:
        assert mode == "predictive"
    else:
        assert mode == "blend"


@given(w=weights, previous=st.sampled_from(["reactive", "predictive", "blend"]))
def test_decisions_stay_inside_the_widened_band(w, previous) -> None:
    mode = decide(w, P, previous)
    w = w.astype(np.float64)  # compare as the decision does (float32 0.08 and Python 0.08 differ)
    # Only the reactive expert runs only if every weight is small; only the predictive one if every weight is large.
    if mode == "reactive":
        assert w.max() < P.low + P.hysteresis
    if mode == "predictive":
        assert w.min() > P.high - P.hysteresis
    # Entering a single-expert mode needs the threshold passed by the hysteresis margin.
    if mode == "reactive" and previous != "reactive":
        assert w.max() < P.low - P.hysteresis
    if mode == "predictive" and previous != "predictive":
        assert w.min() > P.high + P.hysteresis


@settings(max_examples=50)
@given(center=st.sampled_from([P.low, P.high]), seed=st.integers(0, 2**31 - 1))
def test_weights_hovering_at_a_threshold_do_not_chatter(center, seed) -> None:
    rng = np.random.default_rng(seed)
    gate = GateHysteresis(P)
    # Start clearly on one side, then hover within ±hysteresis/2 around the threshold.
    start = 0.0 if center == P.low else 1.0
    gate.decide(np.full(12, start))
    for _ in range(200):
        level = center + rng.uniform(-P.hysteresis / 2, P.hysteresis / 2)
        gate.decide(np.full(12, level))
    assert gate.switches <= 1


def test_without_hysteresis_the_same_weights_would_chatter() -> None:
    # The control experiment for the test above: plain thresholds flip on every crossing.
    levels = [P.low - 0.01, P.low + 0.01] * 10
    plain = [decide(np.full(12, x), P, None) for x in levels]
    assert len({*plain}) == 2
    gate = GateHysteresis(P)
    modes = [gate.decide(np.full(12, x)) for x in levels]
    assert gate.switches <= 1, modes


def test_blend_weights() -> None:
    w = np.array([0.02, 0.5, 0.97], dtype=np.float32)
    assert blend_weights(w, "reactive").tolist() == [0, 0, 0]
    assert blend_weights(w, "predictive").tolist() == [1, 1, 1]
    assert blend_weights(w, "blend") == pytest.approx(w)

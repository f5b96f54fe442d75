"""The rules that compose a bundle's graphs into a policy step, shared by the runtime and export's checks."""

from __future__ import annotations

import numpy as np
import pytest

from harmowam_edge.bundle.composition import blend, blend_weights, decide, flow_schedule
from harmowam_edge.bundle.schema import GateParams

GATE = GateParams(low=0.05, high=0.95, hysteresis=0.03)


def test_blend_follows_the_gate_decision_not_the_raw_weights() -> None:
    rng = np.random.default_rng(0)
    pred, react = rng.normal(size=(12, 7)), rng.normal(size=(12, 7))
    low = np.full(12, 0.02)  # below `low` everywhere: the predictive expert is not run at all
    assert decide(low, GATE) == "reactive"
    np.testing.assert_array_equal(blend(pred, react, blend_weights(low, "reactive")), react)
    high = np.full(12, 0.97)
    assert decide(high, GATE) == "predictive"
    np.testing.assert_array_equal(blend(pred, react, blend_weights(high, "predictive")), pred)
    mid = np.linspace(0.2, 0.8, 12)
    out = blend(pred, react, blend_weights(mid, decide(mid, GATE)))
    np.testing.assert_allclose(out, mid[:, None] * pred + (1 - mid[:, None]) * react)
    assert blend(None, react, mid) is react
    assert blend(pred, None, mid) is pred
    with pytest.raises(ValueError, match="neither expert ran"):
        blend(None, None, mid)


def test_hysteresis_keeps_a_mode_near_its_threshold() -> None:
    w = np.full(12, 0.06)  # just above low: enters "blend" from scratch, stays "reactive" once there
    assert decide(w, GATE) == "blend"
    assert decide(w, GATE, previous="reactive") == "reactive"
    assert decide(np.full(12, 0.07), GATE, previous="blend") == "blend"


def test_export_measures_the_blend_the_runtime_sends() -> None:
    pytest.importorskip("torch", reason="export's pipeline needs the export extra")
    from export.pipeline import PolicyOutput

    rng = np.random.default_rng(1)
    pred, react = rng.normal(size=(1, 12, 7)), rng.normal(size=(1, 12, 7))
    out = PolicyOutput(np.zeros(1), np.zeros(1), np.zeros(1), np.full((1, 12), 0.03), react, pred)
    np.testing.assert_array_equal(out.blended(GATE), react)


def test_flow_schedule_covers_unit_time() -> None:
    times, dt = flow_schedule(5)
    assert [float(t[0]) for t in times] == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8])
    assert float(dt[0]) * len(times) == pytest.approx(1.0)
    assert all(t.dtype == np.float32 and t.shape == (1,) for t in times)
    with pytest.raises(ValueError, match="flow steps"):
        flow_schedule(0)

"""Telemetry statistics and the rate keeper."""

from __future__ import annotations

import time

import pytest

from harmowam_edge.control.timing import RateKeeper
from harmowam_edge.telemetry.stats import LatencyWindow, PeriodRecorder, summarize


def test_latency_window_quantiles_forget_old_samples() -> None:
    w = LatencyWindow(size=10)
    for _ in range(10):
        w.add(1.0)
    assert w.p95 == 1.0
    for _ in range(10):
        w.add(0.01)
    assert w.p95 == pytest.approx(0.01)  # the window moved on
    assert w.count == 20
    assert w.max == 1.0
    assert LatencyWindow().quantile(0.95, default=-1.0) == -1.0


def test_summarize_and_period_recorder() -> None:
    assert summarize([]) == {"n": 0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    s = summarize([0.001, 0.002, 0.003])
    assert s["p50"] == pytest.approx(2.0)
    assert s["max"] == pytest.approx(3.0)
    r = PeriodRecorder(period_s=0.005)
    for i, t in enumerate([0.0, 0.005, 0.0105, 0.015, 0.030]):
        r.tick(t, i * 0.005, missed=2 if t == 0.030 else 0)
    out = r.summary()
    assert out["ticks"] == 5
    assert out["missed_ticks"] == 2
    assert out["jitter_ms_max"] == pytest.approx(10.0)  # the 15 ms period


def test_rate_keeper_skips_ahead_when_late() -> None:
    start = time.monotonic() - 0.301
    rk = RateKeeper(10.0, start=start)  # 3 ticks overdue
    first = rk.wait()
    assert first.missed >= 3  # the missed ticks are counted, not burst through
    assert first.t_due <= first.t_start < first.t_due + rk.period
    second = rk.wait()  # due about 0.1 s later: the keeper sleeps until then
    assert second.index == first.index + first.missed + 1
    assert second.t_due == pytest.approx(first.t_due + rk.period)
    assert second.t_start >= second.t_due

"""Chunk scheduler and trajectory interpolation (pure, property-based where it fits)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmowam_edge.control.scheduler import ChunkScheduler, SchedulerConfig, Trajectory, smoothstep

RATE, K, A = 48.0, 12, 3
DT = 1.0 / RATE
chunks = st.integers(0, 2**31 - 1).map(lambda s: np.random.default_rng(s).uniform(-1.0, 1.0, (K, A)))


def test_trajectory_hits_its_waypoints_and_interpolates_linearly() -> None:
    a = np.arange(K * A, dtype=float).reshape(K, A)
    tr = Trajectory(a, t0=10.0, dt=DT)
    for k in range(K):
        assert tr.sample(10.0 + k * DT) == pytest.approx(a[k])
    assert tr.sample(10.0 + 2.5 * DT) == pytest.approx((a[2] + a[3]) / 2)
    assert tr.sample(9.0) == pytest.approx(a[0])  # before the first action: the first action
    assert tr.sample(100.0) == pytest.approx(a[-1])  # after the last: hold it


@settings(max_examples=40, deadline=None)
@given(old=chunks, new=chunks, arrival=st.floats(0.0, (K - 1) * DT), crossfade=st.floats(0.01, 0.2))
def test_crossfade_is_continuous_bounded_and_ends_on_the_new_chunk(old, new, arrival, crossfade) -> None:
    cfg = SchedulerConfig(RATE, K, crossfade_s=crossfade)
    s = ChunkScheduler(cfg)
    assert s.add_chunk(old, t_obs=0.0, now=0.0).accepted
    before = s.sample(arrival).target
    assert s.add_chunk(new, t_obs=arrival * 0.5, now=arrival).accepted
    after = s.sample(arrival).target
    assert after == pytest.approx(before, abs=1e-9)  # no jump when the new chunk lands
    lo = np.minimum(old.min(0), new.min(0)) - 1e-9
    hi = np.maximum(old.max(0), new.max(0)) + 1e-9
    control_dt = 0.005
    # Slopes: a chunk moves at most max|Δa|/DT per second; the fade adds at most 1.5·max|old-new|/crossfade.
    slope = max(np.abs(np.diff(old, axis=0)).max(), np.abs(np.diff(new, axis=0)).max()) / DT
    fade = 1.5 * np.abs(old.max() - new.min()) + 1.5 * np.abs(new.max() - old.min())
    bound = slope * control_dt + (fade * control_dt / crossfade if crossfade > 0 else 0) + 1e-9
    prev = after
    t = arrival
    while t < arrival + crossfade + 2 * DT:
        t += control_dt
        x = s.sample(t).target
        assert x is not None
        assert (x >= lo).all()
        assert (x <= hi).all()
        if crossfade > 0:
            assert np.abs(x - prev).max() <= bound
        prev = x
    ref = Trajectory(new, arrival * 0.5, DT)
    assert s.sample(arrival + crossfade + 1e-6).target == pytest.approx(ref.sample(arrival + crossfade + 1e-6))


def test_stale_actions_are_skipped_and_a_fully_stale_chunk_is_dropped() -> None:
    s = ChunkScheduler(SchedulerConfig(RATE, K, crossfade_s=0.0))
    a = np.arange(K, dtype=float)[:, None] * np.ones((1, A))
    # Observation 3.5 actions ago: actions 0..3 are in the past.
    acc = s.add_chunk(a, t_obs=0.0, now=3.5 * DT)
    assert acc.accepted
    assert acc.stale_steps == 4
    assert s.sample(3.5 * DT).target == pytest.approx(np.full(A, 3.5))
    late = s.add_chunk(a, t_obs=1.0, now=1.0 + K * DT)
    assert not late.accepted
    assert "in the past" in late.reason
    assert s.dropped_stale == 1
    older = s.add_chunk(a, t_obs=-1.0, now=3.6 * DT)
    assert not older.accepted  # older than the active chunk


def test_no_fresh_chunk_within_the_horizon_holds_the_last_action() -> None:
    s = ChunkScheduler(SchedulerConfig(RATE, K))
    assert s.sample(0.0).status == "idle"
    assert s.sample(0.0).target is None
    a = np.linspace(0, 1, K)[:, None] * np.ones((1, A))
    s.add_chunk(a, t_obs=0.0, now=0.0)
    assert s.sample(0.5 * DT).status == "tracking"
    for t in (K * DT, 1.0, 10.0):
        smp = s.sample(t)
        assert smp.status == "holding"
        assert smp.target == pytest.approx(a[-1])
    assert s.holding_since == pytest.approx(K * DT)


def test_chunk_due_uses_the_windowed_p95_latency() -> None:
    cfg = SchedulerConfig(RATE, K, replan_every_steps=100, margin_steps=2)  # replanning by age disabled
    s = ChunkScheduler(cfg)
    assert s.chunk_due(0.0)  # nothing yet
    s.add_chunk(np.zeros((K, A)), t_obs=0.0, now=0.0)
    end = (K - 1) * DT
    assert not s.chunk_due(end - 2 * DT - 0.001)
    assert s.chunk_due(end - 2 * DT + 0.001)  # zero latency so far: due with 2 actions left
    for _ in range(19):
        s.record_latency(0.010)
    s.record_latency(0.100)  # one outlier in 20: the p95 moves only part of the way
    p95 = s.latency_estimate
    assert 0.010 < p95 < 0.100
    assert s.chunk_due(end - 2 * DT - p95 + 0.001)
    assert not s.chunk_due(end - 2 * DT - p95 - 0.001)
    assert s.expected_stale_steps() == int(np.ceil(p95 * RATE))


def test_replan_every_steps() -> None:
    s = ChunkScheduler(SchedulerConfig(RATE, K, replan_every_steps=3))
    s.add_chunk(np.zeros((K, A)), t_obs=1.0, now=1.0)
    assert not s.chunk_due(1.0 + 2.9 * DT)
    assert s.chunk_due(1.0 + 3.0 * DT)


def test_smoothstep() -> None:
    assert smoothstep(-1) == 0.0
    assert smoothstep(0.5) == 0.5
    assert smoothstep(2) == 1.0

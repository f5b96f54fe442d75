"""Host safety filter (pure, property-based)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmowam_edge.bundle.schema import reference_action_space
from harmowam_edge.control.safety import JointLimits, SafetyConfig, SafetyFilter
from harmowam_edge.errors import SafetyError

DT = 0.005
LIM = JointLimits.from_action_space(reference_action_space())  # 6 joints + gripper
CFG = SafetyConfig(control_period_s=DT, ramp_in_s=0.5)
EPS = 1e-9


def _check_tick(cmd, prev, v_prev, now, f: SafetyFilter) -> tuple[np.ndarray, np.ndarray]:
    assert np.isfinite(cmd).all()
    assert (cmd >= LIM.lower - EPS).all()
    assert (cmd <= LIM.upper + EPS).all()
    v = (cmd - prev) / DT
    assert (np.abs(v) <= LIM.max_velocity * f.ramp_scale(now) + 1e-6).all()
    over = np.abs(v - v_prev) > LIM.max_acceleration * DT + 1e-6
    # Only a position limit may cut a joint's speed harder than its acceleration limit (a target at the limit
    # approached too fast for the remaining distance): the position limit is the hard one.
    at_limit = (np.abs(cmd - LIM.lower) < 1e-12) | (np.abs(cmd - LIM.upper) < 1e-12)
    assert not (over & ~at_limit).any()
    return cmd, v


targets = st.lists(
    st.one_of(
        st.lists(st.floats(-4.0, 4.0), min_size=7, max_size=7),  # often out of range: rejected or clamped
        st.lists(st.sampled_from([np.nan, np.inf, 0.3]), min_size=7, max_size=7),  # non-finite
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(targets=targets, hold_each=st.integers(1, 20), seed=st.integers(0, 1000))
def test_commands_respect_every_limit_whatever_the_targets(targets, hold_each, seed) -> None:
    rng = np.random.default_rng(seed)
    start = rng.uniform(LIM.lower, LIM.upper)
    f = SafetyFilter(LIM, CFG)
    cmd = f.start(start, now=0.0)
    assert cmd == pytest.approx(start)  # the first command is the measured position
    v = np.zeros(LIM.size)
    now = 0.0
    nonfinite = out_of_range = 0
    for t in targets:
        t = np.array(t)
        why = f.check_target(t)
        if why and why.startswith("non-finite"):
            nonfinite += 1
        elif why:
            out_of_range += 1
        for k in range(hold_each):
            now += DT
            new = f.step(t if k == 0 else None, measured=cmd, now=now)
            cmd, v = _check_tick(new, cmd, v, now, f)
    assert f.counters.rejected_nonfinite == nonfinite
    assert f.counters.rejected_out_of_range == out_of_range


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_reaches_a_static_target_without_overshoot(seed) -> None:
    rng = np.random.default_rng(seed)
    a, b = rng.uniform(LIM.lower, LIM.upper), rng.uniform(LIM.lower, LIM.upper)
    f = SafetyFilter(LIM, SafetyConfig(control_period_s=DT, ramp_in_s=0.0))
    cmd = f.start(a, 0.0)
    direction = np.sign(b - a)
    now, v = 0.0, np.zeros(LIM.size)
    for _ in range(int(4.0 / DT)):
        now += DT
        new = f.step(b, measured=cmd, now=now)
        cmd, v = _check_tick(new, cmd, v, now, f)
        # Never past the target (beyond a discretisation sliver).
        assert ((cmd - b) * direction <= LIM.max_acceleration * DT * DT + 1e-9).all()
    assert cmd == pytest.approx(b, abs=1e-4)


def test_ramp_in_starts_slow() -> None:
    f = SafetyFilter(LIM, SafetyConfig(control_period_s=DT, ramp_in_s=1.0, ramp_in_floor=0.1))
    cmd = f.start(np.zeros(7) + 0.01, 0.0)
    far = LIM.upper * 0.9
    speeds = []
    for i in range(1, 400):
        prev = cmd
        cmd = f.step(far, measured=cmd, now=i * DT)
        speeds.append(np.abs((cmd - prev) / DT)[0])
    # At 8 rad/s² joint_1 could reach its 2 rad/s limit in 0.25 s; the ramp holds it to 0.1 + 0.9 * 0.25 of that.
    assert speeds[49] <= (0.1 + 0.9 * 0.25) * LIM.max_velocity[0] + 1e-9
    assert max(speeds) > 0.5 * LIM.max_velocity[0]  # full speed later


def test_command_stays_near_the_measured_position() -> None:
    f = SafetyFilter(LIM, CFG)
    cmd = f.start(np.zeros(7) + 0.01, 0.0)
    stuck = cmd.copy()  # the arm does not move (blocked, or the firmware is holding)
    for i in range(1, 600):
        cmd = f.step(LIM.upper * 0.9, measured=stuck, now=i * DT)
        assert (np.abs(cmd - stuck) <= f.max_step + 1e-12).all()
    assert f.counters.clamped_tracking > 0


def test_start_outside_the_limits_is_refused_naming_the_joint() -> None:
    f = SafetyFilter(LIM, CFG)
    bad = np.zeros(7)
    bad[2] = 3.0  # joint_3 limit is 2.5
    with pytest.raises(SafetyError, match=r"joint_3 at 3\.0000"):
        f.start(bad, 0.0)
    with pytest.raises(SafetyError, match="before start"):
        SafetyFilter(LIM, CFG).step(np.zeros(7), np.zeros(7), 0.0)


def test_hold_stops_within_the_acceleration_limit() -> None:
    f = SafetyFilter(LIM, SafetyConfig(control_period_s=DT, ramp_in_s=0.0))
    cmd = f.start(np.zeros(7), 0.0)
    now = 0.0
    for _ in range(200):  # get moving
        now += DT
        cmd = f.step(LIM.upper * 0.9, cmd, now)
    assert np.abs(f.velocity).max() > 0.5
    v = f.velocity
    for _ in range(200):
        now += DT
        prev = cmd
        cmd = f.hold(cmd, now)
        nv = (cmd - prev) / DT
        assert (np.abs(nv - v) <= LIM.max_acceleration * DT + 1e-6).all()
        v = nv
    assert np.abs(f.velocity).max() < 1e-6  # stopped
    assert f.hold(cmd, now + DT) == pytest.approx(cmd)  # and stays


def test_tightest_limits_and_contradictions() -> None:
    fw = JointLimits(
        LIM.names, LIM.lower * 0.5, LIM.upper * 0.9, LIM.max_velocity * 2, LIM.max_acceleration * 0.5, "firmware"
    )
    t = JointLimits.tightest(LIM, fw)
    assert t.lower == pytest.approx(np.maximum(LIM.lower, fw.lower))
    assert t.upper == pytest.approx(LIM.upper * 0.9)
    assert t.max_velocity == pytest.approx(LIM.max_velocity)
    assert t.max_acceleration == pytest.approx(LIM.max_acceleration * 0.5)
    disjoint = JointLimits(LIM.names, LIM.upper + 1, LIM.upper + 2, LIM.max_velocity, LIM.max_acceleration, "rig")
    with pytest.raises(SafetyError, match="leave no room for joint_1"):
        JointLimits.tightest(LIM, disjoint)


def test_stale_state() -> None:
    f = SafetyFilter(LIM, SafetyConfig(state_timeout_s=0.1))
    assert f.state_is_stale(None, 5.0)
    assert not f.state_is_stale(4.95, 5.0)
    assert f.state_is_stale(4.85, 5.0)


def test_targets_valid_for_the_bundle_but_beyond_a_tighter_rig_are_clamped_not_rejected() -> None:
    rig = JointLimits(LIM.names, LIM.lower * 0.5, LIM.upper * 0.5, LIM.max_velocity, LIM.max_acceleration, "rig")
    f = SafetyFilter(JointLimits.tightest(LIM, rig), SafetyConfig(control_period_s=DT, ramp_in_s=0.0), valid=LIM)
    cmd = f.start(np.zeros(7) + 0.001, 0.0)
    target = LIM.upper * 0.9  # fine for the policy's action space, outside the rig's box
    assert f.check_target(target) is None
    for i in range(1, 1000):
        cmd = f.step(target, cmd, i * DT)
    assert cmd == pytest.approx(np.minimum(target, LIM.upper * 0.5))
    assert f.counters.clamped_position > 0
    assert f.counters.rejected_out_of_range == 0
    assert f.check_target(LIM.upper * 1.5) is not None  # beyond what the policy may output at all: rejected


# Measurements the filter may be handed: anything, including far outside every limit (an encoder offset).
measurements = st.lists(st.floats(-50.0, 50.0), min_size=7, max_size=7)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 1000),
    measured=st.lists(measurements, min_size=1, max_size=40),
    holding=st.booleans(),
)
def test_no_measurement_moves_a_setpoint_faster_than_the_velocity_limit(seed, measured, holding) -> None:
    rng = np.random.default_rng(seed)
    f = SafetyFilter(LIM, CFG)
    cmd = f.start(rng.uniform(LIM.lower, LIM.upper), 0.0)
    target = rng.uniform(LIM.lower, LIM.upper)
    now = 0.0
    for m in measured:
        now += DT
        prev = cmd
        cmd = f.hold(np.array(m), now) if holding else f.step(target, np.array(m), now)
        assert (np.abs(cmd - prev) <= LIM.max_velocity * DT + 1e-9).all()
        assert (cmd >= LIM.lower - EPS).all()
        assert (cmd <= LIM.upper + EPS).all()


def test_an_encoder_offset_does_not_yank_the_setpoint() -> None:
    # The case: joint_2 at rest, its encoder suddenly reads 1.5 rad more (4.4 rad, beyond ±2.9). The
    # tracking pull used to move the command 1.26 rad in one tick, to the limit.
    lim = JointLimits(("j",), np.array([-2.9]), np.array([2.9]), np.array([2.0]), np.array([8.0]))
    f = SafetyFilter(lim, SafetyConfig(control_period_s=DT, ramp_in_s=0.0))
    cmd = f.start(np.array([2.9 - 1.5 + 0.0]), 0.0)
    for i in range(1, 50):
        prev = cmd
        cmd = f.step(None, np.array([4.4]), i * DT)
        assert abs(cmd[0] - prev[0]) <= 2.0 * DT + 1e-12
    prev = cmd
    cmd = f.hold(np.array([4.4]), 50 * DT)
    assert abs(cmd[0] - prev[0]) <= 2.0 * DT + 1e-12
    # Without a measurement the hold brakes on the commands alone.
    assert f.hold(None, 51 * DT)[0] == pytest.approx(cmd[0], abs=2.0 * DT)


def test_a_gripper_target_a_few_mm_past_closed_is_clamped_not_rejected() -> None:
    """A policy that learnt "closed" = 0 mm overshoots it (-2.3 mm): that target means "close". Rejected, it
    froze the arm where the fingers first closed (every later chunk carried it); a joint keeps its 2 %."""
    grippers = [False] * 6 + [True]
    f = SafetyFilter(LIM, SafetyConfig(control_period_s=DT, ramp_in_s=0.0), grippers=grippers)
    cmd = f.start(np.append(np.zeros(6), 0.04), 0.0)
    target = np.append(np.full(6, 0.1), -0.0023)
    assert f.check_target(target) is None
    for i in range(1, 400):
        cmd = f.step(target, cmd, i * DT)
    assert cmd[6] == pytest.approx(0.0)  # clamped to the stop
    assert cmd[:6] == pytest.approx(np.full(6, 0.1))
    assert f.counters.rejected_out_of_range == 0
    assert f.check_target(np.append(np.zeros(6), -0.03)) is not None  # 30 mm past closed: nonsense, rejected
    joint_past = np.append(np.full(6, 0.0), 0.04)
    joint_past[1] = LIM.lower[1] - 0.03 * (LIM.upper[1] - LIM.lower[1])
    assert "joint_2" in (f.check_target(joint_past) or "")  # the joints keep their 2 %
    plain = SafetyFilter(LIM, SafetyConfig(control_period_s=DT, ramp_in_s=0.0))
    assert plain.check_target(target) is not None  # without the flags every dimension has the joints' 2 %
    with pytest.raises(SafetyError, match="grippers"):
        SafetyFilter(LIM, grippers=[True])

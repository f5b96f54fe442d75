"""The measured-state guard (pure, property-based): non-finite, out-of-range and impossible jumps are faults
naming the arm, the joint and the value; motion within the limits never is."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harmowam_edge.bundle.schema import reference_action_space
from harmowam_edge.control.measurement import MeasurementGuard, arm_labels
from harmowam_edge.control.safety import JointLimits, SafetyConfig
from harmowam_edge.errors import SafetyError

DT = 0.005
SPACE = reference_action_space()
LIM = JointLimits.from_action_space(SPACE)  # 6 joints + gripper
CFG = SafetyConfig(control_period_s=DT)


def _guard(start: np.ndarray, t0: float = 0.0) -> MeasurementGuard:
    where, units, jump_checked = arm_labels(SPACE.arms, ["/dev/ttyACM0"])
    g = MeasurementGuard(LIM, CFG, where, units, jump_checked)
    g.start(start, t0)
    return g


def test_labels_name_the_arm_its_port_and_units() -> None:
    where, units, jump_checked = arm_labels(SPACE.arms, ["/dev/ttyACM0"])
    assert where[0] == f"arm {SPACE.arms[0].name!r} on /dev/ttyACM0"
    assert units == ["rad"] * 6 + ["m"]
    assert jump_checked == [True] * 6 + [False]


def test_a_gripper_closing_faster_than_its_rate_limit_is_not_a_fault() -> None:
    # Fingers closing on an object: 2.5 mm in 0 ms between two states (seen on the simulated rig).
    g = _guard(np.array([0.0] * 6 + [0.0544]))
    assert g.check(np.array([0.0] * 6 + [0.0519]), 0.0) is None
    # Fingers against their stops read a few mm past them (84 mm on the 80 mm gripper, seen in sim eval) ...
    assert g.check(np.array([0.0] * 6 + [0.0840]), 0.0) is None
    # ... but a joint as far past its range (5 %) is a fault, and a gripper reading far outside its range still is.
    past = np.zeros(7)
    past[1] = LIM.upper[1] + 0.051 * LIM.range[1]
    assert g.check(past, 1.0) is not None
    why = g.check(np.array([0.0] * 6 + [0.5]), 0.005)
    assert why is not None
    assert "gripper = 0.5000 m" in why


def test_a_non_finite_reading_names_the_arm_and_joint() -> None:
    g = _guard(np.zeros(7))
    m = np.zeros(7)
    m[2] = np.nan
    why = g.check(m, DT)
    assert why is not None
    assert why.startswith("non-finite measured position")
    assert f"arm {SPACE.arms[0].name!r} on /dev/ttyACM0: joint_3 = nan" in why


def test_a_reading_outside_the_limits_names_the_value() -> None:
    g = _guard(np.zeros(7))
    m = np.zeros(7)
    m[1] = 4.4  # the encoder offset: 4.4 rad on a ±1.8 rad joint
    why = g.check(m, 1.0)  # long enough that it could be a real move: the range check alone catches it
    assert why is not None
    assert "outside the limits" in why
    assert "joint_2 = 4.4000 rad" in why


def test_a_jump_no_motion_within_the_limits_could_make_is_a_fault() -> None:
    g = _guard(np.zeros(7))
    m = np.zeros(7)
    m[1] = 1.5  # inside the limits, but 1.5 rad in 5 ms
    why = g.check(m, DT)
    assert why is not None
    assert "jumped" in why
    assert "joint_2 from 0.0000 rad to 1.5000 rad in 5.0 ms" in why
    # A faulty reading does not become the reference: the next clean one is compared with the last clean one.
    assert g.check(np.zeros(7), 2 * DT) is None


def test_a_clock_that_went_back_skips_only_the_jump_check() -> None:
    g = _guard(np.zeros(7), t0=100.0)
    m = np.zeros(7)
    m[0] = 1.0
    assert g.check(m, 0.01) is None  # firmware rebooted: nothing to compare against
    m[0] = 5.0
    assert g.check(m, 0.02) is not None  # the range check still applies


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 80), gap=st.floats(0.0, 0.05))
def test_motion_within_the_velocity_limit_is_never_a_fault(seed, n, gap) -> None:
    rng = np.random.default_rng(seed)
    pos = rng.uniform(LIM.lower, LIM.upper)
    t = 0.0
    g = _guard(pos, t)
    for _ in range(n):
        dt = gap + rng.uniform(0.0, DT)  # irregular state times, repeated states (dt 0) too
        step = rng.uniform(-1.0, 1.0, LIM.size) * LIM.max_velocity * dt
        pos = np.clip(pos + step, LIM.lower, LIM.upper)
        t += dt
        assert g.check(pos, t) is None


def test_measurement_settings_are_validated_by_name() -> None:
    with pytest.raises(SafetyError, match="jump_speed_factor"):
        SafetyConfig(jump_speed_factor=0.5)
    with pytest.raises(SafetyError, match="measured_range_tolerance"):
        SafetyConfig(measured_range_tolerance=float("nan"))
    with pytest.raises(SafetyError, match="measured_range_tolerance"):
        SafetyConfig(measured_range_tolerance=0.001, start_tolerance=0.01)

"""Grasp attempts: the closings `sim eval` reports, from a scripted sequence of openings (pure, no MuJoCo)."""

from __future__ import annotations

import numpy as np
import pytest

from harmowam_edge.sim.grasps import GraspTracker, attempt_summary

OBJECTS = {"red_cube": np.array([0.40, 0.00, 0.02]), "green_cube": np.array([0.40, 0.10, 0.02])}


def _feed(tracker: GraspTracker, samples: list[tuple[float, float, tuple[float, float, float]]]) -> None:
    for t, opening, tcp in samples:
        tracker.update(t, opening, np.array(tcp), OBJECTS)


def test_a_miss_beside_the_cube_then_a_reopening_and_a_grasp_on_it_are_two_attempts() -> None:
    tr = GraspTracker("red_cube")
    _feed(tr, [
        (0.0, 0.080, (0.30, 0.00, 0.30)),   # open, high above
        (3.0, 0.060, (0.40, 0.07, 0.035)),  # closing, 7 cm to the side: not yet below CLOSING
        (3.2, 0.010, (0.40, 0.07, 0.035)),  # shut beside the cube, nearer the green one
        (5.0, 0.030, (0.40, 0.05, 0.10)),   # opening again, not yet open
        (5.5, 0.079, (0.40, 0.01, 0.10)),   # open: the miss was reopened
        (7.0, 0.038, (0.40, 0.004, 0.035)),  # shut on the red cube
    ])  # fmt: skip
    first, second = tr.attempts
    assert (first.t_s, first.nearest, first.reopened) == (3.2, "green_cube", True)
    assert first.offset_m == pytest.approx((0.0, 0.07, 0.015))
    assert first.miss_xy_m == pytest.approx(0.07)
    assert (second.t_s, second.nearest, second.reopened) == (7.0, "red_cube", False)
    assert second.miss_xy_m == pytest.approx(0.004)
    assert second.to_dict()["offset_m"] == [0.0, 0.004, 0.015]


def test_fingers_that_never_opened_make_no_attempt_and_chatter_near_a_threshold_makes_one() -> None:
    tr = GraspTracker("red_cube")
    _feed(tr, [(0.0, 0.0, (0.4, 0.0, 0.1)), (1.0, 0.02, (0.4, 0.0, 0.1))])  # started shut: nothing to count
    assert tr.attempts == []
    _feed(tr, [(2.0, 0.08, (0.4, 0.0, 0.1)), (3.0, 0.049, (0.4, 0.0, 0.04)), (3.1, 0.051, (0.4, 0.0, 0.04)),
               (3.2, 0.048, (0.4, 0.0, 0.04))])  # fmt: skip
    assert len(tr.attempts) == 1
    assert not tr.attempts[0].reopened


def test_the_summary_counts_how_the_failures_missed() -> None:
    miss = GraspTracker("red_cube")
    _feed(miss, [(0.0, 0.08, (0.4, 0.0, 0.3)), (3.0, 0.0, (0.42, 0.09, 0.04))])  # nearest the green cube
    side = GraspTracker("red_cube")
    _feed(side, [(0.0, 0.08, (0.4, 0.0, 0.3)), (3.0, 0.0, (0.40, -0.03, 0.04)), (4.0, 0.08, (0.4, 0.0, 0.1))])
    hit = GraspTracker("red_cube")
    _feed(hit, [(0.0, 0.08, (0.4, 0.0, 0.3)), (3.0, 0.038, (0.40, 0.0, 0.04))])
    s = attempt_summary([(False, miss.attempts), (False, side.attempts), (True, hit.attempts), (False, [])])
    assert s["attempts_per_episode"] == 0.75
    assert (s["failures"], s["failures_that_closed"], s["failures_that_reopened"]) == (3, 2, 1)
    assert s["failures_closed_nearest_another_object"] == 1
    assert s["first_miss_xy_m_p50"] == pytest.approx((np.hypot(0.02, 0.09) + 0.03) / 2, abs=1e-4)
    assert s["first_miss_abs_m_p50"] == pytest.approx([0.01, 0.06], abs=1e-4)
    assert attempt_summary([])["first_miss_xy_m_p50"] is None


def test_the_thresholds_must_leave_a_band_between_closed_and_open() -> None:
    with pytest.raises(ValueError, match="closing < open"):
        GraspTracker("red_cube", closing=0.07, open_=0.05)


def test_lift_by_offset_credits_only_the_closing_that_lifted() -> None:
    """A success's last closing lifted; its earlier miss, a reopened closing and every closing of a failure did
    not. Offsets bin horizontally (z ignored), the last bin open-ended."""
    from harmowam_edge.sim.grasps import GraspAttempt, lift_by_offset

    def at(dx: float, dy: float, reopened: bool = False) -> GraspAttempt:
        return GraspAttempt(1.0, "red_cube", (dx, dy, 0.03), "red_cube", reopened)

    episodes = [
        (True, [at(0.025, 0.0, reopened=True), at(0.003, 0.004)]),  # missed at 25 mm, lifted at 5 mm
        (True, [at(0.0, 0.011)]),  # lifted at 11 mm
        (False, [at(0.0, 0.006)]),  # closed at 6 mm and never lifted
        (True, [at(0.1, 0.0, reopened=True)]),  # a success whose only closing reopened: not the lift
    ]
    rows = lift_by_offset(episodes, edges_m=(0.0, 0.01, 0.02))
    assert [(r["attempts"], r["lifted"]) for r in rows] == [(2, 1), (1, 1), (2, 0)]
    assert rows[0]["lifted_rate"] == 0.5
    assert rows[-1]["to_m"] == float("inf")
    assert lift_by_offset([], edges_m=(0.0, 0.01))[0]["lifted_rate"] is None
    with pytest.raises(ValueError, match="increasing from 0"):
        lift_by_offset([], edges_m=(0.0, 0.02, 0.01))

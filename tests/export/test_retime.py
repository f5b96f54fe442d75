"""Cruising demonstration targets (`export.learning.retime`): a chunk that depends on where the arm is on the
demonstrated path, not on how long the move has been going."""

from __future__ import annotations

import numpy as np
import pytest

from export.learning.data import IGNORED_PHASES, SETPOINT_PHASE, frame_targets
from export.learning.episodes import EpisodeData
from export.learning.retime import CRUISE, cruise, cruising_chunks, demo_moves

NAMES = ("approach", "settle", "descend", "grasp", "lift", "hold", "perturb")
RATE, K = 48.0, 12
OFFSETS = np.arange(K) / RATE
SP_HZ, CAM_HZ = 200.0, 30.0
CONTACT = 0.04  # m: the fingers stop on the cube here


def _min_jerk(s: np.ndarray) -> np.ndarray:
    s = np.clip(s, 0.0, 1.0)
    return 10 * s**3 - 15 * s**4 + 6 * s**5


def _demo(push: tuple[float, float] | None = None) -> EpisodeData:
    """A pick as the expert plans it: one joint and the gripper [q, g]; min-jerk moves from rest, a settle pause,
    the grasp closing to 0 (the measured fingers stop at the cube), the lift, a hold. Measured = commanded 30 ms
    late, the fingers never below the cube."""
    plan = [  # phase, q0, q1, g0, g1, seconds
        ("approach", 0.0, 1.0, 0.08, 0.08, 2.0),
        ("settle", 1.0, 1.0, 0.08, 0.08, 0.2),
        ("descend", 1.0, 1.2, 0.08, 0.08, 1.0),
        ("grasp", 1.2, 1.2, 0.08, 0.0, 0.6),
        ("lift", 1.2, 0.9, 0.0, 0.0, 1.5),
        ("hold", 0.9, 0.9, 0.0, 0.0, 0.4),
    ]
    t_sp, sp, ph = [], [], []
    t0 = 0.0
    for name, q0, q1, g0, g1, dur in plan:
        t = np.arange(0.0, dur, 1.0 / SP_HZ)
        b = _min_jerk(t / dur)
        t_sp.append(t0 + t)
        sp.append(np.stack([q0 + (q1 - q0) * b, g0 + (g1 - g0) * b], axis=-1))
        ph.append(np.full(len(t), NAMES.index(name), np.int16))
        t0 += dur
    t_setpoint, setpoints, phase = np.concatenate(t_sp), np.concatenate(sp), np.concatenate(ph)
    if push is not None:
        phase[(t_setpoint >= push[0]) & (t_setpoint < push[1])] = NAMES.index("perturb")
    t_frame = np.arange(0.0, t0, 1.0 / CAM_HZ)
    measured = np.stack([np.interp(t_frame - 0.03, t_setpoint, setpoints[:, i]) for i in range(2)], axis=-1)
    measured[:, 1] = np.maximum(measured[:, 1], CONTACT)
    frame_phase = phase[np.clip(np.searchsorted(t_setpoint, t_frame, side="right") - 1, 0, len(phase) - 1)]
    return EpisodeData(
        source="mem",
        task="pick_red_cube",
        action_names=("j", "gripper"),
        camera_names=("c",),
        t_frame=t_frame,
        images=(np.zeros((len(t_frame), 4, 4, 3), np.uint8),),
        joint_pos=measured.astype(np.float32),
        t_setpoint=t_setpoint,
        setpoints=setpoints.astype(np.float32),
        phase=frame_phase.astype(np.int16),
        phase_names=NAMES,
        meta={SETPOINT_PHASE: phase},
    )


def _chunks(ep: EpisodeData) -> np.ndarray:
    out = cruising_chunks(
        ep.t_frame, ep.joint_pos, ep.t_setpoint, ep.setpoints, ep.meta[SETPOINT_PHASE], OFFSETS, NAMES, IGNORED_PHASES
    )
    assert out is not None
    return out[0]


def _frames_in(ep: EpisodeData, name: str) -> np.ndarray:
    assert ep.phase is not None
    return np.flatnonzero(ep.phase == NAMES.index(name))


def test_the_cruise_profile_starts_at_peak_speed_and_ends_at_rest_on_the_goal() -> None:
    s = np.linspace(0.0, 1.0, 1001)
    p = cruise(s)
    assert p[0] == 0.0
    assert p[-1] == pytest.approx(1.0)
    v = np.diff(p) / np.diff(s)
    assert v[0] == pytest.approx(CRUISE, rel=1e-3)
    assert v[-1] == pytest.approx(0.0, abs=1e-3)
    assert np.all(np.diff(v) <= 1e-9)  # only ever slows


def test_moves_are_the_runs_of_one_phase() -> None:
    ep = _demo()
    moves = demo_moves(ep.t_setpoint, ep.setpoints, ep.meta[SETPOINT_PHASE])
    assert [NAMES[m.phase] for m in moves] == ["approach", "settle", "descend", "grasp", "lift", "hold"]
    assert [m.moving for m in moves] == [True, False, True, True, True, False]
    assert moves[0].duration == pytest.approx(2.0, abs=0.01)


def test_every_approach_frame_is_told_to_go_at_the_moves_peak_speed() -> None:
    """At rest at the start, the recorded chunk barely moves; the cruising one moves at the demonstrated peak speed,
    wherever the arm is along the move (until it nears the end), and never past the move's end."""
    ep = _demo()
    cruising = _chunks(ep)
    recorded = frame_targets(ep, K, RATE, 1, 0.1, demo_timing="recorded").chunks
    first = _frames_in(ep, "approach")[0]
    assert recorded[first, -1, 0] - recorded[first, 0, 0] < 0.02
    assert cruising[first, -1, 0] - cruising[first, 0, 0] > 0.15
    peak = CRUISE * 1.0 / 2.0  # rad/s: the approach's length over its duration, times 1.875
    early = [f for f in _frames_in(ep, "approach") if ep.t_frame[f] < 1.6]
    speeds = (cruising[early, 1, 0] - cruising[early, 0, 0]) * RATE
    np.testing.assert_allclose(speeds, peak, rtol=0.05)
    assert np.all(cruising[:, :, 0] <= 1.2 + 1e-6)  # never beyond the furthest the plan goes


def test_a_settle_pause_is_skipped_and_a_finished_move_hands_over_to_the_next() -> None:
    ep = _demo()
    chunks = _chunks(ep)
    for f in _frames_in(ep, "settle"):
        assert chunks[f, -1, 0] > chunks[f, 0, 0] + 0.02  # already descending towards 1.2


def test_the_grasp_lifts_once_the_fingers_rest_on_the_object() -> None:
    ep = _demo()
    chunks = _chunks(ep)
    grasp = _frames_in(ep, "grasp")
    resting = [f for f in grasp if ep.joint_pos[f, 1] <= CONTACT + 1e-6 and ep.joint_pos[grasp[-1], 1] <= CONTACT]
    closing = [f for f in grasp if ep.joint_pos[f, 1] > CONTACT + 0.01]
    assert resting
    assert closing
    for f in resting:
        np.testing.assert_allclose(chunks[f, :, 1], 0.0, atol=1e-5)  # squeezing
        assert chunks[f, -1, 0] < 1.2 - 0.01  # and lifting (towards 0.9) within the chunk
    f = closing[0]  # just started closing: the fingers close, the arm stays down for now
    assert chunks[f, -1, 1] < chunks[f, 0, 1] - 0.01
    np.testing.assert_allclose(chunks[f, : K // 2, 0], 1.2, atol=1e-6)


def test_the_hold_at_the_end_holds() -> None:
    ep = _demo()
    chunks = _chunks(ep)
    for f in _frames_in(ep, "hold"):
        np.testing.assert_allclose(chunks[f], np.repeat(chunks[f, :1], K, axis=0), atol=1e-6)


def test_a_push_is_never_part_of_a_retimed_chunk() -> None:
    """The move a push cuts short has no known end: its frames are no target; the re-planned move after it is."""
    ep = _demo(push=(1.0, 1.3))
    chunks = _chunks(ep)
    before = [f for f in _frames_in(ep, "approach") if ep.t_frame[f] < 1.0]
    for f in before:  # the chunk never follows the pushed setpoints
        assert np.all(np.diff(chunks[f, :, 0]) >= -1e-9)
    tg = frame_targets(ep, K, RATE, 1, 0.1, demo_timing="cruising")
    assert np.all(tg.weight[before] == 0)
    after = [f for f in _frames_in(ep, "approach") if ep.t_frame[f] > 1.3 + K / RATE]
    assert after
    assert np.all(tg.weight[after] == 1)
    unphased = EpisodeData(**{**ep.__dict__, "phase": None})  # setpoint phases only: the same frames masked
    assert np.all(frame_targets(unphased, K, RATE, 1, 0.1, demo_timing="cruising").weight[before] == 0)
    recorded = frame_targets(ep, K, RATE, 1, 0.1, demo_timing="recorded")
    assert recorded.weight[before[0]] == 1  # as recorded, the start of that move was a target


def test_frame_targets_takes_the_timing_and_keeps_unphased_episodes_as_recorded() -> None:
    ep = _demo()
    cruising = frame_targets(ep, K, RATE, 1, 0.1, demo_timing="cruising").chunks
    np.testing.assert_allclose(cruising, _chunks(ep))
    bare = EpisodeData(**{**ep.__dict__, "meta": {}, "phase": None, "phase_names": ()})
    np.testing.assert_allclose(
        frame_targets(bare, K, RATE, 1, 0.1, demo_timing="cruising").chunks,
        frame_targets(bare, K, RATE, 1, 0.1, demo_timing="recorded").chunks,
    )
    with pytest.raises(ValueError, match="demo_timing"):
        frame_targets(ep, K, RATE, 1, 0.1, demo_timing="fast")

"""The sim-to-host time mapping is a function of sim time (issue 11, item 10: the camera test that failed under load).

A starved physics thread drops its debt by moving the origin of `host_time`; before the fix that rewrote the
mapping of every earlier sim time too, so a frame stamped before the drop no longer matched `host_time` of its
own device timestamp. The starvation here is real and load-independent: the test holds the world lock (which the
physics thread needs for every step) for longer than MAX_LAG_S; a slower machine only starves it more.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("mujoco", reason="the sim extra (MuJoCo) is not installed")

from harmowam_edge.sim.world import MAX_LAG_S, SimWorld

pytestmark = pytest.mark.sim


def poll(predicate, timeout: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return bool(predicate())


def test_dropping_physics_debt_keeps_the_mapping_of_earlier_sim_times() -> None:
    world = SimWorld(1, [], seed=0)
    world.start()
    try:
        assert poll(lambda: world.sim_time > 0.02)
        with world.lock:
            t_before = world.sim_time
            h_before = world.host_time(t_before)
            resets = world.stats().lag_resets
            time.sleep(3 * MAX_LAG_S)  # the physics thread waits for the lock: at least 0.3 s behind
        assert poll(lambda: world.stats().lag_resets > resets and world.sim_time > t_before)
        assert world.host_time(t_before) == h_before  # the past keeps its mapping
        # The new mapping starts just after the sim time of the drop (a frame snapshotted at that very time keeps
        # its stamp): let physics step once more before reading "the present".
        t_drop = world.sim_time
        assert poll(lambda: world.sim_time > t_drop)
        with world.lock:
            t_now = world.sim_time
            h_now = world.host_time(t_now)
        assert h_now <= time.monotonic()  # the present maps to the present, not to before the starvation
        assert h_now - h_before > t_now - t_before + MAX_LAG_S  # the dropped debt is in the new origin
    finally:
        world.stop()


def test_a_frame_snapshotted_at_the_instant_of_a_drop_keeps_its_stamp() -> None:
    """The camera's failure under load: a snapshot at sim time T, then a drop at the same T (no step between)."""
    import mujoco

    world = SimWorld(1, [], seed=0)
    with world.lock:
        for _ in range(5):  # mid-run, not at the reset's sim time 0
            mujoco.mj_step(world.model, world.data)
        t_snap = world.sim_time
        stamp = world.host_time(t_snap)
        world._move_origin(stamp - t_snap + 0.25)  # what the physics thread does when it drops 0.25 s of debt
    assert world.host_time(t_snap) == stamp
    step = float(world.model.opt.timestep)
    assert world.host_time(t_snap + step) == pytest.approx(stamp + step + 0.25)

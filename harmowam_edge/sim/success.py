"""One success predicate per task, on ground truth: the scripted expert's judge and `sim eval` both call these.

Pure functions of a `WorldFacts` snapshot (object, tool centre point, goal pad), so they are tested directly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmowam_edge.sim import scene

REACH_TOLERANCE = 0.01  # m: the TCP "reached" the point above the object within this
APPROACH_HEIGHT = 0.12  # m: reach stops this far above the grasp point (the expert's approach pose)
LIFT_SUCCESS = 0.05  # m: a picked object is at least this far above where it lay
HELD_DISTANCE = 0.03  # m: object centre within this of the TCP = between the fingers
PLACE_TOLERANCE = 0.03  # m: a placed object's centre within this of the goal pad's centre
RESTING_HEIGHT = 0.01  # m: a placed object's centre within this of its height when it lay on the table
GRASP_MIN_Z = scene.TABLE_TOP_Z + 0.022  # the TCP stays this high at a grasp (fingertips clear of the table)


@dataclass(frozen=True)
class WorldFacts:
    """Ground truth at one moment. Positions are world xyz (m)."""

    object_start: np.ndarray  # where the target object lay at the start of the episode
    object_now: np.ndarray
    tcp: np.ndarray  # tool centre point of the arm that acts
    goal: np.ndarray  # centre of the goal pad


@dataclass(frozen=True)
class Verdict:
    success: bool
    measure: float  # the predicate's figure: reach/place error (m) or lift (m)
    why: str  # one line for a report: what held or what was missing


def grasp_point(object_pos: np.ndarray) -> np.ndarray:
    """Where the TCP goes for a top-down grasp of an object whose centre is `object_pos`."""
    p = np.asarray(object_pos, float).copy()
    p[2] = max(p[2], GRASP_MIN_Z)
    return p


def reach_point(object_pos: np.ndarray) -> np.ndarray:
    """The point `reach` must bring the TCP to: `APPROACH_HEIGHT` above the grasp point."""
    return grasp_point(object_pos) + np.array([0.0, 0.0, APPROACH_HEIGHT])


def reach_success(f: WorldFacts) -> Verdict:
    err = float(np.linalg.norm(f.tcp - reach_point(f.object_start)))
    ok = err <= REACH_TOLERANCE
    return Verdict(ok, err, f"TCP {err * 1e3:.1f} mm from the point above the object (<= {REACH_TOLERANCE * 1e3:g})")


def pick_success(f: WorldFacts) -> Verdict:
    lift = float(f.object_now[2] - f.object_start[2])
    held = float(np.linalg.norm(f.object_now - f.tcp)) < HELD_DISTANCE
    ok = lift >= LIFT_SUCCESS and held
    why = f"lifted {lift * 1e3:.0f} mm (>= {LIFT_SUCCESS * 1e3:g})" + ("" if held else ", not between the fingers")
    return Verdict(ok, lift, why)


def place_success(f: WorldFacts) -> Verdict:
    err = float(np.linalg.norm(f.object_now[:2] - f.goal[:2]))
    resting = abs(float(f.object_now[2] - f.object_start[2])) < RESTING_HEIGHT
    released = float(np.linalg.norm(f.object_now - f.tcp)) >= HELD_DISTANCE
    ok = err <= PLACE_TOLERANCE and resting and released
    why = f"{err * 1e3:.0f} mm from the pad's centre (<= {PLACE_TOLERANCE * 1e3:g})"
    if not resting:
        why += ", not resting on the table"
    if not released:
        why += ", still between the fingers"
    return Verdict(ok, err, why)


PREDICATES = {"reach": reach_success, "pick": pick_success, "pick_and_place": place_success}


def judge_task(kind: str, facts: WorldFacts) -> Verdict:
    """The predicate of a task kind (reach, pick, pick_and_place) on ground truth."""
    try:
        predicate = PREDICATES[kind]
    except KeyError:
        raise ValueError(f"task kind: expected one of {', '.join(PREDICATES)}, got {kind!r}") from None
    return predicate(facts)


# Where in the task an episode is, from ground truth alone (for placing the gate's switches in the task).
STAGES = ("approach", "grasp", "carry", "place", "done")
NEAR_XY = 0.03  # m: TCP this close to the object horizontally, and ...
NEAR_Z = 0.06  # m: ... this close above its grasp point: the grasp has begun
LIFTED = 0.01  # m above where it lay: the object is carried


def task_stage(kind: str, f: WorldFacts) -> str:
    """approach (tool going to the object), grasp (at it, object still down), carry (object lifted), place
    (pick_and_place: object over the pad, or resting on it), done (the task's predicate holds)."""
    if judge_task(kind, f).success:
        return "done"
    lift = float(f.object_now[2] - f.object_start[2])
    if kind == "pick_and_place":
        over_pad = float(np.linalg.norm(f.object_now[:2] - f.goal[:2])) <= PLACE_TOLERANCE * 2
        if over_pad and float(np.linalg.norm(f.object_now[:2] - f.object_start[:2])) > PLACE_TOLERANCE:
            return "place"
    if kind != "reach" and lift >= LIFTED:
        return "carry"
    g = grasp_point(f.object_now)
    near = float(np.linalg.norm(f.tcp[:2] - g[:2])) <= NEAR_XY and 0.0 <= f.tcp[2] - g[2] + 0.005 <= NEAR_Z
    return "grasp" if near and kind != "reach" else "approach"

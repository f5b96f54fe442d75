"""Grasp attempts in a sim episode: where the fingers closed, against the target and the other objects (pure).

Why: a failed pick's final stage says only that it never lifted. Whether the policy closed beside the target, on
another object, or closed and never reopened tells a perception error from a labelling one (teacher r7: 24 of
27 failed rollouts shut their fingers 2-16 cm from the cube, mostly off to the side, and never opened them
again). `sim eval`'s judge feeds a `GraspTracker` from ground truth; `attempt_summary` condenses a bundle's.
"""

from __future__ import annotations

import bisect
import itertools
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

# Openings (m) for a gripper of 80 mm travel: falling below CLOSING after being above OPEN is one attempt (a
# 40 mm cube stops the fingers at ~38 mm, so a grasp on it counts too); rising above OPEN again is a reopening.
CLOSING = 0.05
OPEN = 0.07


@dataclass(frozen=True)
class GraspAttempt:
    t_s: float  # since the episode began
    target: str
    offset_m: tuple[float, float, float]  # TCP minus the target's centre (world x, y, z)
    nearest: str  # the object nearest the TCP in the table plane
    reopened: bool = False

    @property
    def miss_xy_m(self) -> float:
        return float(np.hypot(self.offset_m[0], self.offset_m[1]))

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["t_s"] = round(self.t_s, 3)
        d["offset_m"] = [round(v, 4) for v in self.offset_m]
        return d


class GraspTracker:
    """Feed `update` with each sample of the episode; `attempts` holds the closings seen so far."""

    def __init__(self, target: str, closing: float = CLOSING, open_: float = OPEN) -> None:
        if not 0.0 < closing < open_:
            raise ValueError(f"grasp thresholds: expected 0 < closing < open, got {closing}, {open_}")
        self.target = target
        self.closing = closing
        self.open = open_
        self.attempts: list[GraspAttempt] = []
        self._armed = False  # the fingers have been open since the last attempt

    def update(self, t_s: float, opening: float, tcp: np.ndarray, objects: Mapping[str, np.ndarray]) -> None:
        """`objects`: every object's centre, the target's included."""
        if opening >= self.open:
            if not self._armed and self.attempts:
                self.attempts[-1] = replace(self.attempts[-1], reopened=True)
            self._armed = True
        elif opening < self.closing and self._armed:
            self._armed = False
            tcp = np.asarray(tcp, dtype=float)
            off = tcp - np.asarray(objects[self.target], dtype=float)
            nearest = min(objects, key=lambda n: float(np.hypot(*(tcp[:2] - np.asarray(objects[n], float)[:2]))))
            self.attempts.append(GraspAttempt(t_s, self.target, (float(off[0]), float(off[1]), float(off[2])), nearest))


def attempt_summary(episodes: Sequence[tuple[bool, Sequence[GraspAttempt]]]) -> dict[str, Any]:
    """Per bundle, from (success, attempts) per episode: how often it closed, and how its failures missed."""
    failed = [a for ok, a in episodes if not ok]
    firsts = [a[0] for a in failed if a]
    n = len(episodes)
    return {
        "attempts_per_episode": round(sum(len(a) for _, a in episodes) / n, 3) if n else None,
        "failures": len(failed),
        "failures_that_closed": len(firsts),
        "failures_closed_nearest_another_object": sum(a.nearest != a.target for a in firsts),
        "failures_that_reopened": sum(any(x.reopened for x in a) for a in failed),
        "first_miss_xy_m_p50": round(statistics.median(a.miss_xy_m for a in firsts), 4) if firsts else None,
        "first_miss_abs_m_p50": [
            round(statistics.median(abs(a.offset_m[k]) for a in firsts), 4) if firsts else None for k in (0, 1)
        ],
    }


# Horizontal TCP-to-centre offsets (m) that `lift_by_offset` bins closings by; the last bin is open-ended.
OFFSET_EDGES_M = (0.0, 0.004, 0.008, 0.012, 0.016, 0.02, 0.03, 0.06)


def lift_by_offset(
    episodes: Sequence[tuple[bool, Sequence[GraspAttempt]]], edges_m: Sequence[float] = OFFSET_EDGES_M
) -> list[dict[str, Any]]:
    """How often a closing lifted the object, by how far off its centre the fingers closed (horizontally).

    The lifting closing of an episode is its last one when the episode succeeded and it was not reopened; every
    other closing failed. Why: it measures the capture region a grasp label may close in (`relabel.CAPTURE_XY`)
    on what the policies actually did, not on the gripper's geometry.
    """
    if len(edges_m) < 1 or any(b <= a for a, b in itertools.pairwise(edges_m)) or edges_m[0] != 0.0:
        raise ValueError(f"offset edges: expected increasing from 0, got {list(edges_m)}")
    bounds = [*edges_m, float("inf")]
    rows: list[dict[str, Any]] = [
        {"from_m": lo, "to_m": hi, "attempts": 0, "lifted": 0} for lo, hi in itertools.pairwise(bounds)
    ]
    for ok, attempts in episodes:
        for i, a in enumerate(attempts):
            row = rows[max(0, bisect.bisect_right(edges_m, a.miss_xy_m) - 1)]
            row["attempts"] += 1
            row["lifted"] += int(ok and i == len(attempts) - 1 and not a.reopened)
    for row in rows:
        row["lifted_rate"] = row["lifted"] / row["attempts"] if row["attempts"] else None
    return rows

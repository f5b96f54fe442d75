"""Demonstration targets that are a function of the state: the rest of each demonstrated move at cruising speed.

Why: the networks see the joint state, not its velocity or how long a move has been going. The scripted
expert's moves are minimum-jerk from rest, so the recorded chunk at the start of a move barely moves (~1 % of
the way in a 0.25 s chunk) while the same still state later in that move is labelled "go". A policy trained on
that creeps and stalls where it stands (teacher r3: 22 of its 23 failures in 30 episodes ended in `approach`).
Re-timed, a frame's chunk continues the demonstrated path from the setpoint being commanded at the move's own
peak speed and slows to rest at the move's end (the quintic of `sim.relabel.cruising`), then goes on with the
next moves the same way. The path (straight in joint space, as the expert plans it) is unchanged.

Two rules keep the targets free of waits the policy cannot see: a pause with nothing commanded to move
(`settle`) is skipped, and a grasp ends as soon as the measured fingers have come to rest squeezing something, so
the lift starts then instead of after a fixed closing time.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np

CRUISE = 1.875  # peak speed of a minimum-jerk move, in units of its length / duration
MOVING = 1e-5  # a move commands some entry to change by more than this (rad or m)
DONE = 0.02  # a move this close to its end (share of its length) is over: the chunk starts with the next
# Measured entries within this of where they came to rest (rad or m) have stopped. Tight, because squeezing shows
# as the last millimetre or two of closing (the red cube: touched at 39.4 mm, at rest squeezed at 38.0 mm).
SETTLED = 0.0005
BLOCKED = 0.002  # a measured end this far short of the commanded end: something (the object) stopped it
GRASP_PHASES = ("grasp",)  # moves that end when the fingers stop, not when their time is up


@dataclass(frozen=True)
class Move:
    """One phase of a demonstration: the commanded setpoints from index `i0` to `i1` (inclusive)."""

    start: np.ndarray  # float64 [A] commanded at its first setpoint
    end: np.ndarray  # float64 [A] commanded at its last
    duration: float  # s
    phase: int  # index into the episode's phase names
    i0: int
    i1: int

    @property
    def moving(self) -> bool:
        return bool(np.max(np.abs(self.end - self.start)) > MOVING)


def demo_moves(t_setpoint: np.ndarray, setpoints: np.ndarray, phase: np.ndarray) -> list[Move]:
    """The maximal runs of one phase in the setpoint stream (the expert plans one straight move per phase)."""
    cuts = np.flatnonzero(np.diff(phase.astype(np.int64)) != 0) + 1
    bounds = [0, *cuts.tolist(), len(phase)]
    moves = []
    for lo, hi in itertools.pairwise(bounds):
        i1 = hi - 1
        moves.append(
            Move(
                start=setpoints[lo].astype(np.float64),
                end=setpoints[i1].astype(np.float64),
                duration=float(t_setpoint[i1] - t_setpoint[lo]),
                phase=int(phase[lo]),
                i0=lo,
                i1=i1,
            )
        )
    return moves


def cruise(s: np.ndarray) -> np.ndarray:
    """Share of the way covered at time share `s` of a move started at peak speed: 1.875 (1 - s^2)^2 integrated."""
    s = np.clip(s, 0.0, 1.0)
    return CRUISE * s - 1.25 * s**3 + 0.375 * s**5


@dataclass(frozen=True)
class _Piece:
    start: np.ndarray
    end: np.ndarray
    duration: float


def _sample(pieces: list[_Piece], hold: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    out = np.repeat(hold[None, :], len(offsets), axis=0)
    t0 = 0.0
    for p in pieces:
        inside = (offsets >= t0) & (offsets < t0 + p.duration)
        if inside.any():
            s = (offsets[inside] - t0) / p.duration
            out[inside] = p.start + (p.end - p.start) * cruise(s)[:, None]
        out[offsets >= t0 + p.duration] = p.end
        t0 += p.duration
    return out


def cruising_chunks(
    t_frame: np.ndarray,
    joint_pos: np.ndarray,
    t_setpoint: np.ndarray,
    setpoints: np.ndarray,
    setpoint_phase: np.ndarray,
    offsets: np.ndarray,
    phase_names: tuple[str, ...],
    ignored: Collection[str],
) -> tuple[np.ndarray, np.ndarray] | None:
    """Each frame's chunk at `offsets` (s after the frame) on the re-timed demonstration, float32 [T, K, A], and
    whether it is a target, bool [T]; None where the stream has no usable phases. A move cut short by an ignored
    phase (a commanded push) has no known end, so its frames are no target; frames inside an ignored phase keep
    their recorded chunk (the caller masks them)."""
    if len(t_setpoint) < 2 or setpoint_phase.shape != t_setpoint.shape:
        return None
    names = [phase_names[p] if 0 <= p < len(phase_names) else "" for p in setpoint_phase]
    moves = demo_moves(t_setpoint, setpoints, setpoint_phase)
    move_of = np.repeat(np.arange(len(moves)), [m.i1 - m.i0 + 1 for m in moves])
    horizon = float(offsets[-1])
    chunks = np.empty((len(t_frame), len(offsets), setpoints.shape[1]), np.float32)
    valid = np.ones(len(t_frame), bool)
    cut = [i + 1 < len(moves) and names[moves[i + 1].i0] in ignored for i in range(len(moves))]
    for f, t in enumerate(t_frame):
        j = int(np.clip(np.searchsorted(t_setpoint, t, side="right") - 1, 0, len(t_setpoint) - 1))
        cmd = np.array([np.interp(t, t_setpoint, setpoints[:, a]) for a in range(setpoints.shape[1])])
        m = moves[move_of[j]]
        if names[m.i0] in ignored or names[m.i0] == "":
            recorded = [np.interp(t + offsets, t_setpoint, setpoints[:, a]) for a in range(setpoints.shape[1])]
            chunks[f] = np.stack(recorded, axis=-1)
            continue
        valid[f] = not cut[move_of[j]]
        pieces: list[_Piece] = []
        here = cmd
        if m.moving:
            d = m.end - m.start
            share = float(np.clip(np.dot(cmd - m.start, d) / np.dot(d, d), 0.0, 1.0))
            if names[m.i0] in GRASP_PHASES and _fingers_stopped(t_frame, joint_pos, f, m, t_setpoint):
                here = m.end  # the grasp is over: closed command, and the next move starts now
            elif 1.0 - share > DONE:
                pieces.append(_Piece(cmd, m.end, m.duration * (1.0 - share)))
                here = m.end
        total = sum(p.duration for p in pieces)
        for n in moves[move_of[j] + 1 :]:
            if total >= horizon or names[n.i0] in ignored or names[n.i0] == "":
                break
            if n.moving:
                pieces.append(_Piece(here, n.end, n.duration))
                here, total = n.end, total + n.duration
        chunks[f] = _sample(pieces, here, offsets)
    return chunks, valid


def _fingers_stopped(t_frame: np.ndarray, joint_pos: np.ndarray, f: int, m: Move, t_setpoint: np.ndarray) -> bool:
    """The entries this move drives have come to rest, short of where they were commanded (on the object)."""
    dims = np.flatnonzero(np.abs(m.end - m.start) > MOVING)
    last = int(np.clip(np.searchsorted(t_frame, t_setpoint[m.i1], side="right") - 1, 0, len(t_frame) - 1))
    if last < f:
        return False
    rest = joint_pos[last, dims].astype(np.float64)
    settled = bool(np.all(np.abs(joint_pos[f, dims] - rest) <= SETTLED))
    blocked = bool(np.any(np.abs(rest - m.end[dims]) > BLOCKED))
    return settled and blocked

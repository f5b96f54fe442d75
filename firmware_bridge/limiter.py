"""The firmware's reference limiter (PROTOCOL.md §8), vectorised over joints (+ gripper). Pure.

The C firmware runs the same rule per joint in hwl_firmware.c; both simulators therefore move the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_EPS = 1e-9


class LimitEvents(NamedTuple):
    velocity_limited: bool
    acceleration_limited: bool


def step_reference(
    p: np.ndarray,
    v: np.ndarray,
    target: np.ndarray,
    vmax: np.ndarray,
    amax: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    dt: float,
) -> LimitEvents:
    """Move the reference (p, v) one step of `dt` toward `target`, in place, within the limits.

    The speed toward the target is the smallest of the velocity limit, the speed from which the joint can still
    stop at the target (sqrt(2·a·|e|)) and the speed that lands on it this step (|e|/dt); the velocity change per
    step is at most a·dt. Positions never leave [lo, hi].
    """
    e = target - p
    ae = np.abs(e)
    v_stop = np.sqrt(2.0 * amax * ae)
    v_land = ae / dt
    speed = np.minimum(np.minimum(vmax, v_stop), v_land)
    vel_limited = bool(np.any(vmax < np.minimum(v_stop, v_land) - _EPS))
    v_des = np.copysign(speed, e)
    dv_max = amax * dt
    dv = v_des - v
    acc_limited = bool(np.any(np.abs(dv) > dv_max + _EPS))
    np.clip(dv, -dv_max, dv_max, out=dv)
    v += dv
    p += v * dt
    out = (p < lo) | (p > hi)
    if out.any():
        np.clip(p, lo, hi, out=p)
        v[out] = 0.0
    return LimitEvents(vel_limited, acc_limited)


def stopping_point(p: np.ndarray, v: np.ndarray, amax: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Where each joint comes to rest braking at its acceleration limit (the watchdog's hold target)."""
    return np.clip(p + v * np.abs(v) / (2.0 * amax), lo, hi)

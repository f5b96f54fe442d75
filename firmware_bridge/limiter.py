"""The firmware's reference limiter (PROTOCOL.md §8), vectorised over joints (+ gripper). Pure.

The C firmware runs the same rule per joint in hwl_firmware.c; both simulators therefore move the same way.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

_EPS = 1e-9
_LIMIT_SLACK = 1e-6  # rad (or m); the same in hwl_firmware.c


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
    stop exactly at the target braking at a·dt per step, and the speed that lands on it this step (|e|/dt); the
    velocity change per step is at most a·dt. Positions never leave [lo, hi].

    The stopping speed is the discrete-time one, a·dt·(sqrt(1/4 + 2|e|/(a·dt²)) − 1/2): braking a, 2a, 3a, ... ·dt
    covers exactly that distance, so the joint arrives without the ~v·dt/2 overshoot of the continuous sqrt(2a|e|).
    """
    e = target - p
    ae = np.abs(e)
    adt = amax * dt
    v_stop = adt * (np.sqrt(0.25 + 2.0 * ae / (adt * dt)) - 0.5)
    v_land = ae / dt
    speed = np.minimum(np.minimum(vmax, v_stop), v_land)
    vel_limited = bool(np.any(vmax < np.minimum(v_stop, v_land) - _EPS))
    v_des = np.copysign(speed, e)
    dv_max = adt
    dv = v_des - v
    acc_limited = bool(np.any(np.abs(dv) > dv_max + _EPS))
    np.clip(dv, -dv_max, dv_max, out=dv)
    v += dv
    p += v * dt
    # rounding may land a hair past a limit that is also the target: clip it, but stop the joint only on a real
    # overrun (which the limiter itself never produces; a stalled long step might)
    out = (p < lo - _LIMIT_SLACK) | (p > hi + _LIMIT_SLACK)
    np.clip(p, lo, hi, out=p)
    if out.any():
        v[out] = 0.0
    return LimitEvents(vel_limited, acc_limited)


def stopping_point(
    p: np.ndarray, v: np.ndarray, amax: np.ndarray, lo: np.ndarray, hi: np.ndarray, dt: float
) -> np.ndarray:
    """Where each joint comes to rest braking at its acceleration limit, in steps of `dt` (the watchdog's hold
    target): v·|v|/(2a) + v·dt/2 ahead, the distance for which the limiter's stopping speed is exactly |v|."""
    return np.clip(p + v * np.abs(v) / (2.0 * amax) + v * (dt / 2.0), lo, hi)

"""The host-side safety filter (pure: every call takes the measurement and `now`).

Between the scheduler's target and the wire, per action dimension (joints in rad, gripper in m):
1. reject a non-finite target, or one outside the valid range (the bundle's action space: what the policy may
   output) by more than `range_tolerance` of the joint's range, a gripper's by more than
   `gripper_range_tolerance` (counted; the previous accepted target stays in force); clamp the rest into the
   enforced limits (a rig or firmware may be tighter than the action space);
2. limit velocity and acceleration, braking-aware (the command never runs past a target it cannot stop at);
   during the ramp-in after `start` the velocity limit grows from `ramp_in_floor` to 1× over `ramp_in_s`;
3. keep the command within `max_step` of the measured position (the arm is not dragged), moving it at most the
   velocity limit's step from the previous command whatever the measurement says;
4. clamp into the position limits.
The measurement itself is checked before it gets here (`control.measurement.MeasurementGuard`).
The first command equals the measured position. Limits are the tightest of the firmware handshake, the bundle's
action space and the rig config (`JointLimits.tightest`). A stale arm state means e-stop (`state_is_stale`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harmowam_edge.bundle.schema import ActionSpace
from harmowam_edge.errors import SafetyError


@dataclass(frozen=True)
class JointLimits:
    """Per-dimension limits of an action vector (or one arm's slice of it)."""

    names: tuple[str, ...]
    lower: np.ndarray
    upper: np.ndarray
    max_velocity: np.ndarray
    max_acceleration: np.ndarray
    source: str = ""  # where these came from, for messages

    def __post_init__(self) -> None:
        n = len(self.names)
        for f in ("lower", "upper", "max_velocity", "max_acceleration"):
            a = np.asarray(getattr(self, f), dtype=np.float64)
            if a.shape != (n,) or not np.isfinite(a).all():
                raise SafetyError(f"{self.source or 'limits'}: {f}: expected {n} finite values, got {a.tolist()}")
            object.__setattr__(self, f, a)
        bad = [self.names[i] for i in range(n) if not self.lower[i] < self.upper[i]]
        if bad:
            raise SafetyError(f"{self.source or 'limits'}: lower >= upper for {', '.join(bad)}")
        if (self.max_velocity <= 0).any() or (self.max_acceleration <= 0).any():
            raise SafetyError(f"{self.source or 'limits'}: velocity and acceleration limits must be > 0")

    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def range(self) -> np.ndarray:
        return self.upper - self.lower

    @classmethod
    def from_action_space(cls, space: ActionSpace) -> JointLimits:
        dims = space.dims
        return cls(
            names=tuple(d.name for d in dims),
            lower=np.array([d.lower for d in dims]),
            upper=np.array([d.upper for d in dims]),
            max_velocity=np.array([d.max_velocity for d in dims]),
            max_acceleration=np.array([d.max_acceleration for d in dims]),
            source="bundle action space",
        )

    @classmethod
    def concat(cls, parts: Sequence[JointLimits], source: str = "") -> JointLimits:
        return cls(
            names=tuple(n for p in parts for n in p.names),
            lower=np.concatenate([p.lower for p in parts]),
            upper=np.concatenate([p.upper for p in parts]),
            max_velocity=np.concatenate([p.max_velocity for p in parts]),
            max_acceleration=np.concatenate([p.max_acceleration for p in parts]),
            source=source or " + ".join(p.source for p in parts),
        )

    @classmethod
    def tightest(cls, first: JointLimits, *others: JointLimits) -> JointLimits:
        """Per dimension: the highest lower bound, the lowest upper bound and the lowest velocity/acceleration."""
        out = first
        for o in others:
            if o.names != out.names:
                raise SafetyError(f"limits from {o.source} are for {o.names}, expected {out.names}")
            lower = np.maximum(out.lower, o.lower)
            upper = np.minimum(out.upper, o.upper)
            empty = [out.names[i] for i in range(out.size) if not lower[i] < upper[i]]
            if empty:
                raise SafetyError(
                    f"the position limits of {out.source} and {o.source} leave no room for {', '.join(empty)}"
                )
            out = cls(
                names=out.names,
                lower=lower,
                upper=upper,
                max_velocity=np.minimum(out.max_velocity, o.max_velocity),
                max_acceleration=np.minimum(out.max_acceleration, o.max_acceleration),
                source=f"{out.source} ∩ {o.source}",
            )
        return out

    def scaled(self, velocity: float = 1.0, acceleration: float = 1.0) -> JointLimits:
        return JointLimits(
            self.names,
            self.lower,
            self.upper,
            self.max_velocity * velocity,
            self.max_acceleration * acceleration,
            self.source,
        )

    def to_dict(self) -> dict[str, dict[str, float]]:
        return {
            n: {
                "lower": float(self.lower[i]),
                "upper": float(self.upper[i]),
                "max_velocity": float(self.max_velocity[i]),
                "max_acceleration": float(self.max_acceleration[i]),
            }
            for i, n in enumerate(self.names)
        }


@dataclass(frozen=True)
class SafetyConfig:
    control_period_s: float = 0.005
    ramp_in_s: float = 1.0  # velocity limit ramps from ramp_in_floor to 1x over this long after start
    ramp_in_floor: float = 0.1
    tracking_horizon_s: float = 0.2  # max step from the measured position = max_velocity * this (per dimension)
    range_tolerance: float = 0.02  # targets beyond the limits by more than this fraction of the range: rejected
    start_tolerance: float = 0.01  # the arm may start this far (fraction of range) outside its limits
    state_timeout_s: float = 0.15  # an arm state older than this at a control tick → e-stop
    # The measured state (control.measurement): beyond the limits by more than this fraction of the range is a
    # fault; so is a move faster than jump_speed_factor x the velocity limit, plus jump_tolerance of the range.
    measured_range_tolerance: float = 0.05
    # A gripper's opening past its range by this share is a fault, and a gripper target past it is rejected.
    # Wider than the joints': fingers pushed against their stops read a few mm past them (seen on the simulated
    # rig: 84.0 mm on an 80 mm gripper, which stopped a sound run), and a policy that learnt "closed" = 0 mm
    # overshoots it by a few mm (-2.3 mm, teacher r6); such a target means "close", is clamped to the stop, and
    # the fingers' force limit governs the squeeze. Rejecting it froze the arm where it first closed (issue 12).
    gripper_range_tolerance: float = 0.25
    jump_speed_factor: float = 2.0
    jump_tolerance: float = 0.02

    def __post_init__(self) -> None:
        for f in ("control_period_s", "tracking_horizon_s", "state_timeout_s"):
            if not getattr(self, f) > 0:
                raise SafetyError(f"safety.{f}: expected > 0, got {getattr(self, f)}")
        if self.ramp_in_s < 0 or not 0 < self.ramp_in_floor <= 1:
            raise SafetyError(f"safety.ramp_in: expected ramp_in_s >= 0 and 0 < floor <= 1, got {self}")
        if self.range_tolerance < 0 or self.start_tolerance < 0:
            raise SafetyError("safety: tolerances must be >= 0")
        for f in ("measured_range_tolerance", "gripper_range_tolerance", "jump_speed_factor", "jump_tolerance"):
            v = getattr(self, f)
            if not (math.isfinite(v) and v >= 0):
                raise SafetyError(f"safety.{f}: expected a finite value >= 0, got {v}")
        if self.measured_range_tolerance < self.start_tolerance:
            raise SafetyError(
                f"safety.measured_range_tolerance: expected >= start_tolerance ({self.start_tolerance}), "
                f"got {self.measured_range_tolerance}"
            )
        if self.jump_speed_factor < 1:
            raise SafetyError(f"safety.jump_speed_factor: expected >= 1, got {self.jump_speed_factor}")


@dataclass
class SafetyCounters:
    rejected_nonfinite: int = 0
    rejected_out_of_range: int = 0
    clamped_position: int = 0  # targets slightly outside the limits, clamped
    limited_velocity: int = 0  # ticks where the velocity limit shaped the command
    limited_acceleration: int = 0
    clamped_tracking: int = 0  # ticks where the command was pulled back towards the measured position
    extra: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, int]:
        d = {k: v for k, v in self.__dict__.items() if k != "extra"}
        d.update(self.extra)
        return d


class SafetyFilter:
    """Per-tick filter. `start()` once with the measured pose, then `step()` every control period."""

    def __init__(
        self,
        limits: JointLimits,
        config: SafetyConfig | None = None,
        valid: JointLimits | None = None,
        grippers: Sequence[bool] | None = None,
    ) -> None:
        """`limits`: enforced on every command. `valid`: the range a target may have at all (default: `limits`).
        `grippers`: per dimension, whether it is a gripper's opening (its targets get `gripper_range_tolerance`)."""
        self.limits = limits
        self.valid = valid or limits
        if self.valid.names != limits.names:
            raise SafetyError(f"valid range is for {self.valid.names}, the limits for {limits.names}")
        self.config = config or SafetyConfig()
        g = tuple(grippers) if grippers is not None else (False,) * limits.size
        if len(g) != limits.size:
            raise SafetyError(f"grippers: expected {limits.size} flags, got {len(g)}")
        share = np.where(g, self.config.gripper_range_tolerance, self.config.range_tolerance)
        self._target_tol = share * self.valid.range
        self.counters = SafetyCounters()
        self.max_step = limits.max_velocity * self.config.tracking_horizon_s
        self._cmd: np.ndarray | None = None
        self._vel = np.zeros(limits.size)
        self._target: np.ndarray | None = None
        self._t_start = 0.0
        self.flags: tuple[str, ...] = ()  # what shaped the last command: rejected, position, velocity, ...

    @property
    def command(self) -> np.ndarray | None:
        """The last command (None before `start`)."""
        return None if self._cmd is None else self._cmd.copy()

    @property
    def velocity(self) -> np.ndarray:
        return self._vel.copy()

    def start(self, measured: np.ndarray, now: float) -> np.ndarray:
        """The first command: the measured position itself. Refuses an arm that is outside its limits."""
        m = np.asarray(measured, dtype=np.float64)
        lim = self.limits
        if m.shape != (lim.size,) or not np.isfinite(m).all():
            raise SafetyError(f"measured position: expected {lim.size} finite values, got {m.tolist()}")
        tol = self.config.start_tolerance * lim.range
        outside = [
            f"{lim.names[i]} at {m[i]:.4f} (limits [{lim.lower[i]:.4f}, {lim.upper[i]:.4f}])"
            for i in range(lim.size)
            if m[i] < lim.lower[i] - tol[i] or m[i] > lim.upper[i] + tol[i]
        ]
        if outside:
            raise SafetyError(
                "the arm is outside its position limits (" + "; ".join(outside) + "): move it inside by hand, "
                "or check the joint offsets and the limits in the rig config"
            )
        self._cmd = np.clip(m, lim.lower, lim.upper)
        self._vel = np.zeros(lim.size)
        self._target = self._cmd.copy()
        self._t_start = now
        return self._cmd.copy()

    def check_target(self, target: np.ndarray) -> str | None:
        """Why `target` must be rejected, or None. Counts nothing."""
        t = np.asarray(target, dtype=np.float64)
        lim = self.valid
        if t.shape != (lim.size,):
            return f"expected {lim.size} values, got shape {t.shape}"
        if not np.isfinite(t).all():
            bad = [lim.names[i] for i in range(lim.size) if not math.isfinite(t[i])]
            return f"non-finite target for {', '.join(bad)}"
        tol = self._target_tol
        out = [
            f"{lim.names[i]}={t[i]:.4f} outside [{lim.lower[i]:.4f}, {lim.upper[i]:.4f}]"
            for i in range(lim.size)
            if t[i] < lim.lower[i] - tol[i] or t[i] > lim.upper[i] + tol[i]
        ]
        return "out of range: " + "; ".join(out) if out else None

    def ramp_scale(self, now: float) -> float:
        c = self.config
        if c.ramp_in_s <= 0:
            return 1.0
        x = min(max((now - self._t_start) / c.ramp_in_s, 0.0), 1.0)
        return c.ramp_in_floor + (1.0 - c.ramp_in_floor) * x

    def step(self, target: np.ndarray | None, measured: np.ndarray, now: float) -> np.ndarray:
        """The command for this tick. `target` None (idle, or hold) keeps the last accepted target."""
        if self._cmd is None:
            raise SafetyError("safety filter: step() before start()")
        lim, c = self.limits, self.config
        flags: list[str] = []
        if target is not None:
            t = np.asarray(target, dtype=np.float64)
            why = self.check_target(t)
            if why is None:
                clamped = np.clip(t, lim.lower, lim.upper)
                if not np.array_equal(clamped, t):
                    self.counters.clamped_position += 1
                    flags.append("position")
                self._target = clamped
            elif why.startswith(("non-finite", "expected")):
                self.counters.rejected_nonfinite += 1
                flags.append("rejected")
            else:
                self.counters.rejected_out_of_range += 1
                flags.append("rejected")
        goal = self._target if self._target is not None else self._cmd
        dt = c.control_period_s
        prev, v_prev = self._cmd, self._vel
        vmax = lim.max_velocity * self.ramp_scale(now)
        amax = lim.max_acceleration
        err = goal - prev
        # Fastest speed from which the discrete loop can still stop within |err| braking at amax.
        a_dt = amax * dt
        v_stop = -a_dt / 2.0 + np.sqrt((a_dt / 2.0) ** 2 + 2.0 * amax * np.abs(err))
        v_cap = np.minimum(vmax, v_stop)
        v_des = np.clip(err / dt, -v_cap, v_cap)
        if (np.abs(err / dt) > vmax + 1e-12).any():
            self.counters.limited_velocity += 1
            flags.append("velocity")
        v = np.clip(v_des, v_prev - a_dt, v_prev + a_dt)
        if not np.allclose(v, v_des, rtol=0, atol=1e-12):
            self.counters.limited_acceleration += 1
            flags.append("acceleration")
        v = np.clip(v, -vmax, vmax)
        cmd = prev + v * dt
        pulled = self._pull_towards(cmd, prev, measured)
        if pulled is not None:
            self.counters.clamped_tracking += 1
            flags.append("tracking")
            cmd = pulled
        cmd = np.clip(cmd, lim.lower, lim.upper)
        self._vel = (cmd - prev) / dt
        self._cmd = cmd
        self.flags = tuple(flags)
        return cmd.copy()

    def _pull_towards(self, cmd: np.ndarray, prev: np.ndarray, measured: np.ndarray | None) -> np.ndarray | None:
        """`cmd` kept within `max_step` of the measured position, or None if it already is (or there is no usable
        measurement). However far away the measurement says the arm is, the pulled command moves at most the
        velocity limit's step from the previous command: a wrong measurement cannot yank the setpoint."""
        if measured is None:
            return None
        m = np.asarray(measured, dtype=np.float64)
        if m.shape != cmd.shape or not np.isfinite(m).all():
            return None
        pulled = np.clip(cmd, m - self.max_step, m + self.max_step)
        if np.array_equal(pulled, cmd):
            return None
        reach = self.limits.max_velocity * self.config.control_period_s
        return np.clip(pulled, prev - reach, prev + reach)

    def hold(self, measured: np.ndarray | None, now: float) -> np.ndarray:
        """Brake at the acceleration limit until stopped, then stay: the controlled stop of every exit path.
        `measured` None: brake on the commands alone (after a measurement fault)."""
        if self._cmd is None:
            raise SafetyError("safety filter: hold() before start()")
        dt = self.config.control_period_s
        prev, v = self._cmd, self._vel
        v_new = np.sign(v) * np.maximum(np.abs(v) - self.limits.max_acceleration * dt, 0.0)
        cmd = prev + v_new * dt
        self.flags = ("hold",)
        pulled = self._pull_towards(cmd, prev, measured)
        if pulled is not None:
            self.flags = ("hold", "tracking")
            cmd = pulled
        cmd = np.clip(cmd, self.limits.lower, self.limits.upper)
        self._vel = (cmd - prev) / dt
        self._cmd = cmd
        self._target = cmd.copy()  # a later step(None, ...) stays here
        return cmd.copy()

    def state_is_stale(self, t_received: float | None, now: float) -> bool:
        return t_received is None or now - t_received > self.config.state_timeout_s

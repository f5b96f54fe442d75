"""Action-chunk scheduling and interpolation (pure: no clocks, no I/O; every call takes `now`).

A chunk's K actions belong to the observation it was computed from: action k is the target for time
`t_obs + k / action_rate`. The control loop samples the active trajectory at its own rate (200 Hz), linearly
interpolated between action steps. When a new chunk arrives at `now`:
- its actions before `now` are stale and never executed (the trajectory is sampled at `now` onwards); a chunk
  whose last action is already in the past is dropped whole;
- it is cross-faded over the old trajectory's unexecuted part, from `now` to `now + crossfade_s`, with a
  smoothstep so that neither position nor velocity jumps;
- after its last action, the trajectory holds that last target: no fresh chunk within the horizon → hold.

Inference latency (observation time → chunk ready) is tracked as a windowed p95. It sets when the next chunk is
due: early enough that, at the p95 latency, the new chunk lands while the old one still has at least
`margin_steps` actions left to cross-fade over, and it tells how many actions of a fresh chunk will be stale on
arrival (`expected_stale_steps`), which a chunk must exceed to be useful.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from harmowam_edge.telemetry.stats import LatencyWindow

SampleStatus = Literal["idle", "tracking", "blending", "holding"]


class Trajectory:
    """Piecewise-linear through K waypoints at `t0 + k * dt`; clamped to the first/last waypoint outside."""

    def __init__(self, actions: np.ndarray, t0: float, dt: float, chunk_id: int = 0) -> None:
        a = np.asarray(actions, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] < 1:
            raise ValueError(f"actions: expected [K, A] with K >= 1, got shape {a.shape}")
        if dt <= 0:
            raise ValueError(f"dt: expected > 0, got {dt}")
        self.actions = a
        self.t0 = float(t0)
        self.dt = float(dt)
        self.chunk_id = chunk_id

    @property
    def end(self) -> float:
        return self.t0 + (self.actions.shape[0] - 1) * self.dt

    def index_at(self, t: float) -> float:
        """Fractional action index at time t (clamped to [0, K-1])."""
        k = self.actions.shape[0] - 1
        return min(max((t - self.t0) / self.dt, 0.0), float(k))

    def sample(self, t: float) -> np.ndarray:
        x = self.index_at(t)
        i = min(math.floor(x), self.actions.shape[0] - 1)
        frac = x - i
        if frac <= 0.0 or i + 1 >= self.actions.shape[0]:
            return self.actions[i].copy()
        return (1.0 - frac) * self.actions[i] + frac * self.actions[i + 1]


def smoothstep(x: float) -> float:
    x = min(max(x, 0.0), 1.0)
    return x * x * (3.0 - 2.0 * x)


class Blend:
    """`old` cross-faded into `new` over [t_start, t_end]; equals `new` from t_end on."""

    def __init__(self, old: Trajectory | Blend, new: Trajectory, t_start: float, t_end: float) -> None:
        self.old = old
        self.new = new
        self.t_start = t_start
        self.t_end = max(t_end, t_start)

    @property
    def end(self) -> float:
        return self.new.end

    @property
    def chunk_id(self) -> int:
        return self.new.chunk_id

    def sample(self, t: float) -> np.ndarray:
        if t >= self.t_end:
            return self.new.sample(t)
        a = smoothstep((t - self.t_start) / (self.t_end - self.t_start)) if self.t_end > self.t_start else 1.0
        return (1.0 - a) * self.old.sample(t) + a * self.new.sample(t)


@dataclass(frozen=True)
class SchedulerConfig:
    action_rate_hz: float  # the bundle's policy.action_rate_hz
    chunk_size: int  # K
    crossfade_s: float = 0.05
    replan_every_steps: int | None = None  # a chunk is due this many actions after the last one (default K // 2)
    margin_steps: int = 2  # actions of the old chunk left to cross-fade over when the new one lands
    latency_window: int = 64
    latency_quantile: float = 0.95

    def __post_init__(self) -> None:
        if self.action_rate_hz <= 0:
            raise ValueError(f"action_rate_hz: expected > 0, got {self.action_rate_hz}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size: expected >= 1, got {self.chunk_size}")
        if self.crossfade_s < 0:
            raise ValueError(f"crossfade_s: expected >= 0, got {self.crossfade_s}")
        if self.replan_every_steps is not None and self.replan_every_steps < 1:
            raise ValueError(f"replan_every_steps: expected >= 1, got {self.replan_every_steps}")

    @property
    def action_dt(self) -> float:
        return 1.0 / self.action_rate_hz

    @property
    def replan_steps(self) -> int:
        return self.replan_every_steps or max(1, self.chunk_size // 2)


@dataclass(frozen=True)
class Sample:
    target: np.ndarray | None  # None while idle (no chunk yet): the caller holds the measured pose
    status: SampleStatus
    chunk_id: int  # -1 while idle
    index: float  # fractional action index in the active chunk


@dataclass(frozen=True)
class Accepted:
    accepted: bool
    reason: str  # "" or why not
    stale_steps: int  # actions already in the past when the chunk arrived
    chunk_id: int = -1  # the id `sample()` reports for this chunk (accepted chunks only)


class ChunkScheduler:
    """Turns timestamped chunks into a control-rate target stream. Not thread-safe: one owner (control thread)."""

    def __init__(self, config: SchedulerConfig) -> None:
        self.config = config
        self.latency = LatencyWindow(config.latency_window)
        self._active: Trajectory | Blend | None = None
        self._last_t_obs: float | None = None
        self._next_id = 0
        self.accepted = 0
        self.dropped_stale = 0
        self.stale_steps = 0  # actions skipped because they were in the past on arrival
        self.holding_since: float | None = None

    # -- inference side

    def record_latency(self, seconds: float) -> None:
        """Observation time → chunk ready, for the windowed quantile."""
        self.latency.add(seconds)

    @property
    def latency_estimate(self) -> float:
        return self.latency.quantile(self.config.latency_quantile, default=0.0)

    def expected_stale_steps(self) -> int:
        """Actions of a chunk that will be in the past when it lands, at the windowed p95 latency."""
        return math.ceil(self.latency_estimate * self.config.action_rate_hz)

    def due_time(self) -> float:
        """The earliest time a new chunk is due (-inf before the first chunk)."""
        if self._active is None or self._last_t_obs is None:
            return -math.inf
        c = self.config
        by_age = self._last_t_obs + c.replan_steps * c.action_dt
        # Land, at the p95 latency, with `margin_steps` of the old chunk still ahead to cross-fade over.
        by_end = self._active.end - self.latency_estimate - c.margin_steps * c.action_dt
        return min(by_age, by_end)

    def chunk_due(self, now: float) -> bool:
        """Should inference start a new chunk from the next frame?"""
        return now >= self.due_time()

    # -- control side

    def add_chunk(self, actions: np.ndarray, t_obs: float, now: float) -> Accepted:
        c = self.config
        traj = Trajectory(actions, t_obs, c.action_dt, self._next_id)
        if traj.actions.shape[0] != c.chunk_size:
            raise ValueError(f"chunk: expected {c.chunk_size} actions, got {traj.actions.shape[0]}")
        if self._last_t_obs is not None and t_obs < self._last_t_obs:
            self.dropped_stale += 1
            return Accepted(False, "older than the active chunk", 0)
        if traj.end < now:
            self.dropped_stale += 1
            return Accepted(False, f"every action is in the past ({(now - traj.end) * 1000:.0f} ms)", c.chunk_size)
        chunk_id = self._next_id
        self._next_id += 1
        stale = math.ceil(max(0.0, now - t_obs) * c.action_rate_hz - 1e-9)
        self.stale_steps += stale
        if self._active is None or c.crossfade_s == 0:
            self._active = traj
        else:
            old = self._active
            # Collapse finished blends so the chain stays short.
            if isinstance(old, Blend) and now >= old.t_end:
                old = old.new
            self._active = Blend(old, traj, now, now + c.crossfade_s)
        self._last_t_obs = t_obs
        self.accepted += 1
        self.holding_since = None
        return Accepted(True, "", stale, chunk_id)

    def sample(self, now: float) -> Sample:
        active = self._active
        if active is None:
            return Sample(None, "idle", -1, 0.0)
        if isinstance(active, Blend) and now >= active.t_end:
            active = self._active = active.new
        target = active.sample(now)
        traj = active.new if isinstance(active, Blend) else active
        index = traj.index_at(now)
        if now > active.end:
            if self.holding_since is None:
                self.holding_since = now
            return Sample(target, "holding", active.chunk_id, index)
        return Sample(target, "blending" if isinstance(active, Blend) else "tracking", active.chunk_id, index)

    @property
    def active_end(self) -> float | None:
        return None if self._active is None else self._active.end

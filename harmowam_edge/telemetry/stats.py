"""Windowed latency statistics and loop-period bookkeeping (pure)."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np


def json_default(o: object) -> Any:
    """`json.dumps(default=...)` for numpy values and non-finite floats (written as null)."""
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (np.floating, np.integer, np.bool_)):
        v = o.item()
        return None if isinstance(v, float) and not math.isfinite(v) else v
    if isinstance(o, float) and not math.isfinite(o):
        return None
    return str(o)


class LatencyWindow:
    """The last `size` samples (seconds); quantiles over the window, counts over the whole run."""

    def __init__(self, size: int = 64) -> None:
        if size < 1:
            raise ValueError(f"size: expected >= 1, got {size}")
        self._buf: deque[float] = deque(maxlen=size)
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def add(self, seconds: float) -> None:
        self._buf.append(seconds)
        self.count += 1
        self.total += seconds
        self.max = max(self.max, seconds)

    def __len__(self) -> int:
        return len(self._buf)

    def quantile(self, q: float, default: float = 0.0) -> float:
        if not self._buf:
            return default
        return float(np.quantile(np.fromiter(self._buf, float, len(self._buf)), q))

    @property
    def p50(self) -> float:
        return self.quantile(0.5)

    @property
    def p95(self) -> float:
        return self.quantile(0.95)

    @property
    def p99(self) -> float:
        return self.quantile(0.99)

    def values(self) -> list[float]:
        return list(self._buf)


def summarize(samples: list[float] | np.ndarray, scale: float = 1000.0) -> dict[str, float]:
    """p50/p90/p99/max/mean of `samples` times `scale` (default: seconds → ms); empty → zeros with n=0."""
    a = np.asarray(samples, dtype=float)
    if a.size == 0:
        return {"n": 0, "p50": 0.0, "p90": 0.0, "p99": 0.0, "max": 0.0, "mean": 0.0}
    a = a * scale
    return {
        "n": int(a.size),
        "p50": float(np.quantile(a, 0.5)),
        "p90": float(np.quantile(a, 0.9)),
        "p99": float(np.quantile(a, 0.99)),
        "max": float(a.max()),
        "mean": float(a.mean()),
    }


@dataclass
class PeriodRecorder:
    """Tick start times of a fixed-rate loop → period jitter and missed ticks.

    Jitter is |actual period − nominal period|. A tick is missed when the loop woke up more than one full period
    after it was due (the rate keeper then skips ahead instead of bursting).
    """

    period_s: float
    keep: int = 200_000  # about 16 minutes at 200 Hz; older periods drop out of the quantiles

    def __post_init__(self) -> None:
        self._last: float | None = None
        self.periods: deque[float] = deque(maxlen=self.keep)
        self.lateness: deque[float] = deque(maxlen=self.keep)
        self.ticks = 0
        self.missed = 0

    def tick(self, t_start: float, t_due: float, missed: int = 0) -> None:
        if self._last is not None:
            self.periods.append(t_start - self._last)
        self._last = t_start
        self.lateness.append(t_start - t_due)
        self.ticks += 1
        self.missed += missed

    def jitter(self) -> np.ndarray:
        return np.abs(np.fromiter(self.periods, float, len(self.periods)) - self.period_s)

    def summary(self) -> dict[str, float]:
        j = summarize(self.jitter())
        p = summarize(list(self.periods))
        late = summarize(list(self.lateness))
        return {
            "ticks": self.ticks,
            "missed_ticks": self.missed,
            "rate_hz": (1.0 / (p["mean"] / 1000.0)) if p["mean"] > 0 else 0.0,
            "period_ms_p50": p["p50"],
            "period_ms_max": p["max"],
            "jitter_ms_p50": j["p50"],
            "jitter_ms_p99": j["p99"],
            "jitter_ms_max": j["max"],
            "late_ms_p99": late["p99"],
        }

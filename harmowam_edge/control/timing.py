"""Precise fixed-rate timing: sleep until about 1 ms before the deadline, then spin (design §4)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Tick:
    index: int
    t_due: float  # when this tick was scheduled (monotonic seconds)
    t_start: float  # when it actually started
    missed: int  # ticks skipped before this one (the loop woke up more than a period late)


class RateKeeper:
    """`wait()` returns at the next tick. Late by more than a period: skip ahead, count the missed ticks."""

    def __init__(self, rate_hz: float, spin_s: float = 0.001, start: float | None = None) -> None:
        if rate_hz <= 0:
            raise ValueError(f"rate_hz: expected > 0, got {rate_hz}")
        self.period = 1.0 / rate_hz
        self.spin_s = spin_s
        self._next = time.monotonic() if start is None else start
        self._index = 0

    def wait(self) -> Tick:
        due = self._next
        now = time.monotonic()
        if due - now > self.spin_s:
            time.sleep(due - now - self.spin_s)
        while True:
            now = time.monotonic()
            if now >= due:
                break
        missed = 0
        late = now - due
        if late >= self.period:
            missed = math.floor(late / self.period)
            due += missed * self.period
        tick = Tick(self._index, due, now, missed)
        self._index += 1 + missed
        self._next = due + self.period
        return tick

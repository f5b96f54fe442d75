"""The arithmetic of `sim eval`: Wilson intervals, time-to-success summaries, gate usage, the seed schedule.

Pure functions on plain values (no MuJoCo, no runtime), tested directly; `evaluation.py` feeds them.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


def wilson_interval(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion (0..1); (0, 1) for no trials."""
    if trials < 0 or not 0 <= successes <= max(trials, 0):
        raise ValueError(f"wilson_interval: expected 0 <= successes <= trials, got {successes}/{trials}")
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    return max(0.0, centre - half), min(1.0, centre + half)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100) of a non-empty sequence."""
    if not values:
        raise ValueError("percentile: no values")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def time_summary(times: Sequence[float]) -> dict[str, float | int | None]:
    """Median, p90, mean and count of the successful episodes' times (None where there are none)."""
    if not times:
        return {"n": 0, "median_s": None, "p90_s": None, "mean_s": None}
    return {
        "n": len(times),
        "median_s": round(percentile(times, 50), 3),
        "p90_s": round(percentile(times, 90), 3),
        "mean_s": round(sum(times) / len(times), 3),
    }


def mode_shares(ticks_per_mode: Mapping[str, int]) -> dict[str, float]:
    """Share of control ticks driven by each gate mode (the chunk in force at the tick)."""
    total = sum(ticks_per_mode.values())
    return {m: round(n / total, 4) for m, n in sorted(ticks_per_mode.items())} if total else {}


def mode_switches(modes: Sequence[tuple[float, str]]) -> list[tuple[float, str, str]]:
    """(t, from, to) at every change of mode between consecutive chunks, given (t, mode) in chunk order."""
    out = []
    for (_, a), (t, b) in itertools.pairwise(modes):
        if a != b:
            out.append((t, a, b))
    return out


def merge_counts(parts: Iterable[Mapping[str, int]]) -> dict[str, int]:
    total: Counter[str] = Counter()
    for p in parts:
        total.update(p)
    return dict(sorted(total.items()))


def interleaved(seeds: Sequence[int], bundles: int) -> list[tuple[int, int]]:
    """(seed, bundle index) in run order: every bundle on a seed before the next seed, so drift hits all alike.
    The first bundle of each seed rotates, so no bundle always runs first on a freshly reset machine."""
    order = []
    for i, seed in enumerate(seeds):
        for j in range(bundles):
            order.append((seed, (i + j) % bundles))
    return order


def paired_outcomes(reference: Mapping[int, bool], other: Mapping[int, bool]) -> dict[str, int]:
    """Two bundles' successes on the seeds both ran: both, only the reference, only the other, neither."""
    seeds = sorted(set(reference) & set(other))
    both = sum(1 for s in seeds if reference[s] and other[s])
    only_ref = sum(1 for s in seeds if reference[s] and not other[s])
    only_other = sum(1 for s in seeds if other[s] and not reference[s])
    return {
        "seeds": len(seeds),
        "both": both,
        "only_reference": only_ref,
        "only_other": only_other,
        "neither": len(seeds) - both - only_ref - only_other,
    }


def sign_test_p(a: int, b: int) -> float:
    """Two-sided exact sign test (binomial, p = 1/2) on the discordant pairs a vs b; 1.0 when there are none."""
    if a < 0 or b < 0:
        raise ValueError(f"sign_test_p: expected counts >= 0, got {a}, {b}")
    n = a + b
    if n == 0:
        return 1.0
    k = min(a, b)
    tail = sum(math.comb(n, i) for i in range(k + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)

"""Checks of numeric command-line options, run before a command opens, loads or moves anything.

Each raises `ConfigError` naming the option, what was expected and what was given; `cli.main` prints it as one
line and exits 2. Pure functions (no I/O), tested directly and through the CLI.
"""

from __future__ import annotations

import math

from harmowam_edge.errors import ConfigError

# The control rate the rig config accepts (control/rig.py): the same bounds for --rate.
MIN_RATE_HZ = 10.0
MAX_RATE_HZ = 2000.0


def positive(option: str, value: float | None, unit: str = "seconds") -> None:
    """None (not given) or a finite number > 0: durations, intervals, rates, pixel limits."""
    if value is None:
        return
    if not (math.isfinite(value) and value > 0):
        raise ConfigError(f"{option}: expected a finite number of {unit} > 0, got {value:g}")


def rate_hz(option: str, value: float | None, lo: float = MIN_RATE_HZ, hi: float = MAX_RATE_HZ) -> None:
    """None or a finite rate in [lo, hi] Hz."""
    if value is None:
        return
    if not (math.isfinite(value) and lo <= value <= hi):
        raise ConfigError(f"{option}: expected a rate between {lo:g} and {hi:g} Hz, got {value:g}")


def fraction(option: str, value: float) -> None:
    """A finite number in [0, 1]."""
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConfigError(f"{option}: expected a number between 0 and 1, got {value:g}")


def int_range(option: str, value: int | None, lo: int, hi: int | None = None) -> None:
    """None or an integer >= lo (and <= hi where given)."""
    if value is None:
        return
    if value < lo or (hi is not None and value > hi):
        expected = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise ConfigError(f"{option}: expected an integer {expected}, got {value}")


def seed(option: str, value: int) -> None:
    """A seed numpy's generators accept: >= 0."""
    int_range(option, value, 0)

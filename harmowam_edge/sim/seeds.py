"""Training and evaluation seeds never overlap: two reserved ranges, checked where seeds come in.

A seed decides an episode's layout (object placement, goal pad, perturbations), so an evaluation on a training
seed would measure memory, not generalisation. `sim demos` takes seeds in `TRAINING` only, `sim eval` in
`EVALUATION` only, and `sim eval` also refuses a seed a bundle's training data (recorded in its checkpoint's
`training` block, when it names the demo folders' seed ranges) used.
"""

from __future__ import annotations

from collections.abc import Iterable

from harmowam_edge.errors import ConfigError

TRAINING = range(100_000)  # `sim demos` (and `run --sim` by default)
EVALUATION = range(100_000, 1_000_000)  # `sim eval`


def _check(seed: int, count: int, allowed: range, what: str, option: str) -> None:
    if count < 1:
        raise ConfigError(f"--episodes: expected at least 1, got {count}")
    last = seed + count - 1
    if seed < allowed.start or last >= allowed.stop:
        raise ConfigError(
            f"{option} {seed} with {count} episode(s) uses seeds {seed}..{last}: {what} seeds are "
            f"{allowed.start}..{allowed.stop - 1} (training {TRAINING.start}..{TRAINING.stop - 1} and evaluation "
            f"{EVALUATION.start}..{EVALUATION.stop - 1} never overlap)"
        )


def check_training_seeds(seed: int, count: int) -> None:
    """Demonstrations use seeds seed..seed+count-1: all inside `TRAINING`."""
    _check(seed, count, TRAINING, "training", "--seed")


def check_evaluation_seeds(seed: int, count: int, used: Iterable[tuple[int, int]] = ()) -> None:
    """Evaluation seeds inside `EVALUATION`, and none of the half-open ranges in `used` (a bundle's training data)."""
    _check(seed, count, EVALUATION, "evaluation", "--seed")
    for lo, hi in used:
        if seed < hi and lo < seed + count:
            raise ConfigError(
                f"--seed {seed} with {count} episode(s) overlaps seeds {lo}..{hi - 1} the bundle was trained on"
            )

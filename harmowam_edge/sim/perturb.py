"""Perturbed demonstrations (`sim demos --perturb start,push`): pure, seeded draws, no MuJoCo.

A policy trained only on the expert's nominal path has never seen a state off it, so its first error compounds.
`start` begins an episode from a random arm pose near home; `push` moves the tool away mid-episode (a commanded
disturbance, phase `perturb`), after which the expert re-plans from the measured state, so the data holds the
recovery. Every draw is a function of the episode seed alone (numpy streams keyed `[seed, tag]`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmowam_edge.errors import ConfigError
from harmowam_edge.sim import arm as arm_desc

KINDS = ("start", "push")
_START_TAG, _PUSH_TAG = 71, 72
START_MIN_TCP_Z = 0.15  # m above the table: a perturbed start never begins in (or just above) the objects
PUSH_WINDOW = (0.15, 0.9)  # a push falls in this fraction of the plan's time up to the grasp


@dataclass(frozen=True)
class PerturbConfig:
    start: bool = False
    push: bool = False
    start_rad: float = 0.3  # max offset of each joint from home at a perturbed start
    push_m: float = 0.06  # max horizontal displacement of the tool by a push (up: 2 .. 6 cm)

    def __post_init__(self) -> None:
        if not 0 < self.start_rad <= 1.0:
            raise ConfigError(f"perturb start_rad: expected 0 < rad <= 1, got {self.start_rad}")
        if not 0 < self.push_m <= 0.15:
            raise ConfigError(f"perturb push_m: expected 0 < m <= 0.15, got {self.push_m}")

    @property
    def any(self) -> bool:
        return self.start or self.push

    def describe(self) -> str:
        return ",".join(k for k, on in (("start", self.start), ("push", self.push)) if on) or "none"

    def to_dict(self) -> dict[str, object]:
        return {"start": self.start, "push": self.push, "start_rad": self.start_rad, "push_m": self.push_m}


def parse_perturb(text: str | None) -> PerturbConfig:
    """`none`, `start`, `push` or `start,push` (the `--perturb` option)."""
    if text is None or text.strip() in ("", "none"):
        return PerturbConfig()
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad:
        raise ConfigError(f"--perturb {text!r}: expected none or a comma list of {', '.join(KINDS)}; got {bad[0]!r}")
    return PerturbConfig(start="start" in kinds, push="push" in kinds)


def start_pose(seed: int, arm_index: int, cfg: PerturbConfig) -> tuple[np.ndarray, float]:
    """A random start near home for one arm (joints within limits, tool high above the table), and its opening."""
    rng = np.random.default_rng([seed, _START_TAG, arm_index])
    home = np.asarray(arm_desc.HOME, float)
    links = {link.joint: link for link in arm_desc.ARM_LINKS if link.joint in arm_desc.JOINT_NAMES}
    lower = np.array([links[j].lower for j in arm_desc.JOINT_NAMES]) + 0.05
    upper = np.array([links[j].upper for j in arm_desc.JOINT_NAMES]) - 0.05
    for _ in range(200):
        q = np.clip(home + rng.uniform(-cfg.start_rad, cfg.start_rad, home.shape), lower, upper)
        tcp = arm_desc.forward_kinematics(q)["tcp"][:3, 3]
        if tcp[2] >= START_MIN_TCP_Z and tcp[0] > 0.1:  # above the table, in front of the base
            return q, float(rng.uniform(0.3, 1.0) * arm_desc.GRIPPER_MAX)
    return home, float(arm_desc.HOME_GRIPPER)  # pragma: no cover - home itself satisfies both


@dataclass(frozen=True)
class Push:
    fraction: float  # when: this fraction of the plan's time up to the grasp
    offset: np.ndarray  # world xyz displacement of the tool (m)


def push_for(seed: int, cfg: PerturbConfig) -> Push:
    """The episode's push: when, and which way (always partly upward, so it never drives the tool into the table)."""
    rng = np.random.default_rng([seed, _PUSH_TAG])
    fraction = float(rng.uniform(*PUSH_WINDOW))
    xy = rng.uniform(-cfg.push_m, cfg.push_m, 2)
    z = rng.uniform(0.02, 0.06)
    return Push(fraction, np.array([xy[0], xy[1], z]))

"""The sim's tasks and the scripted expert's phases, as names: pure data, no MuJoCo.

A task names its target (`pick_red_cube`, `pick_and_place_blue_cube`, `reach_yellow_cylinder`): every object is on
the table in every episode, so a policy told only "pick" could not know what to act on. `TASK_NAMES` is the full
list; export's default checkpoints use the same names, so `run --sim --task` and `sim eval --task` take them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from harmowam_edge.errors import ConfigError
from harmowam_edge.sim import scene

TASK_KINDS = ("reach", "pick", "pick_and_place")
# The order of export's DEFAULT_TASKS (a test keeps the two equal): the headline task first.
TASK_NAMES: tuple[str, ...] = tuple(
    f"{kind}_{obj}" for kind in ("pick", "pick_and_place", "reach") for obj in scene.OBJECT_NAMES
)

# The scripted expert's phases, stored per step and per setpoint as an index into this tuple (int16). `perturb`
# marks commanded disturbances (`sim demos --perturb push`): no expert behaviour, not a training target.
PHASE_NAMES: tuple[str, ...] = (
    "approach",
    "settle",
    "descend",
    "grasp",
    "lift",
    "hold",
    "move",
    "place",
    "release",
    "retreat",
    "perturb",
    "idle",
)
PERTURB_PHASE = PHASE_NAMES.index("perturb")
IDLE_PHASE = PHASE_NAMES.index("idle")


def phase_index(name: str) -> int:
    """The int16 code of a phase name (a plan segment's label)."""
    try:
        return PHASE_NAMES.index(name)
    except ValueError:
        raise ValueError(f"phase: expected one of {', '.join(PHASE_NAMES)}, got {name!r}") from None


@dataclass(frozen=True)
class Task:
    """`kind` is what to do (reach, pick, pick_and_place); `object` the scene object it is about."""

    kind: str
    object: str

    @property
    def name(self) -> str:
        """The full task name, as stored per step and in a bundle's task table: `pick_red_cube`."""
        return f"{self.kind}_{self.object}"

    def describe(self) -> str:
        return f"{self.kind} {self.object}"


def parse_task(name: str, object_name: str | None = None, seed: int = 0) -> Task:
    """`pick_red_cube`, `pick_and_place` with `object_name`, or a kind alone (the object then comes from the seed)."""
    kinds = sorted(TASK_KINDS, key=len, reverse=True)  # pick_and_place before pick
    for kind in kinds:
        if name == kind or name.startswith(kind + "_"):
            rest = name[len(kind) + 1 :]
            if rest and rest in scene.OBJECT_NAMES:
                if object_name is not None and object_name != rest:
                    raise ConfigError(f"--task {name} names {rest!r} but --object is {object_name!r}")
                return Task(kind, rest)
            if rest:
                continue  # e.g. "pick_and_place" read as pick + "and_place": try the next kind
            if object_name is None:
                object_name = object_for_seed(seed)
            scene.object_by_name(object_name)
            return Task(kind, object_name)
    examples = ", ".join([*TASK_KINDS, f"pick_{scene.OBJECT_NAMES[0]}"])
    raise ConfigError(
        f"--task {name!r}: the scripted expert knows {', '.join(TASK_KINDS)} (optionally followed by "
        f"_<object>, objects: {', '.join(scene.OBJECT_NAMES)}); e.g. {examples}"
    )


def object_for_seed(seed: int) -> str:
    """The target drawn for a seed when a task names only its kind (`--task pick`)."""
    return scene.OBJECT_NAMES[int(np.random.default_rng(seed).integers(len(scene.OBJECT_NAMES)))]


def names_object(name: str) -> bool:
    """Whether a task name already names its target (`pick_red_cube`), as opposed to a kind alone (`pick`)."""
    return name not in TASK_KINDS

"""`harmowam-edge sim table`: `sim eval` reports merged into one table (task x scene x bundle) with Wilson
intervals and, per scene, each bundle paired seed by seed against the first one (a sign test on the seeds only
one of the two solved). Reports of one evaluation split over processes (seed ranges) merge by bundle label.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harmowam_edge.errors import ConfigError
from harmowam_edge.sim.eval_stats import paired_outcomes, sign_test_p, wilson_interval
from harmowam_edge.sim.grasps import GraspAttempt


@dataclass
class Cell:
    """One bundle in one (task, scene): its outcome per seed, from every report that ran it."""

    task: str
    scene: str
    bundle: str
    outcomes: dict[int, bool] = field(default_factory=dict)
    reports: list[str] = field(default_factory=list)

    @property
    def successes(self) -> int:
        return sum(self.outcomes.values())

    @property
    def episodes(self) -> int:
        return len(self.outcomes)

    def summary(self) -> dict[str, Any]:
        lo, hi = wilson_interval(self.successes, self.episodes)
        seeds = sorted(self.outcomes)
        return {
            "task": self.task,
            "scene": self.scene,
            "bundle": self.bundle,
            "successes": self.successes,
            "episodes": self.episodes,
            "success_rate": self.successes / self.episodes,
            "wilson95": [lo, hi],
            "seeds": [seeds[0], seeds[-1]],
            "reports": self.reports,
        }


def _field(doc: Any, key: str, kind: type, where: str) -> Any:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ConfigError(f"{where}: {key}: expected a {kind.__name__} (is this a `sim eval` report.json?)")
    return value


def _read_report(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the report ({e.strerror or e})") from None
    except ValueError as e:
        raise ConfigError(f"{path}: not JSON ({e})") from None


def load_cells(paths: Sequence[Path]) -> list[Cell]:
    """Cells in first-seen order; a seed that two reports both ran for the same bundle is refused."""
    cells: dict[tuple[str, str, str], Cell] = {}
    for path in paths:
        doc = _read_report(path)
        task = _field(doc, "task", str, str(path))
        scene = _field(doc, "scene", str, str(path))
        episodes = _field(doc, "episodes", list, str(path))
        for i, ep in enumerate(episodes):
            where = f"{path}: episodes[{i}]"
            label = _field(ep, "bundle", str, where)
            seed = _field(ep, "seed", int, where)
            success = ep.get("success") if isinstance(ep, dict) else None
            if not isinstance(success, bool):
                raise ConfigError(f"{where}: success: expected true or false")
            cell = cells.setdefault((task, scene, label), Cell(task, scene, label))
            if seed in cell.outcomes and str(path) not in cell.reports:
                raise ConfigError(f"{where}: seed {seed} of {label!r} ({task}, {scene}) is in {cell.reports[0]} too")
            cell.outcomes[seed] = success
            if str(path) not in cell.reports:
                cell.reports.append(str(path))
    if not cells:
        raise ConfigError(f"{', '.join(map(str, paths))}: no episodes")
    return list(cells.values())


def paired_against_first(cells: Sequence[Cell]) -> list[dict[str, Any]]:
    """Per (task, scene): every other bundle against the first bundle there, on their common seeds."""
    out = []
    groups: dict[tuple[str, str], list[Cell]] = {}
    for c in cells:
        groups.setdefault((c.task, c.scene), []).append(c)
    for (task, scene), group in groups.items():
        ref = group[0]
        for other in group[1:]:
            counts = paired_outcomes(ref.outcomes, other.outcomes)
            if not counts["seeds"]:
                continue
            diff = (counts["only_other"] - counts["only_reference"]) / counts["seeds"]
            out.append(
                {
                    "task": task,
                    "scene": scene,
                    "reference": ref.bundle,
                    "bundle": other.bundle,
                    **counts,
                    "difference_points": 100.0 * diff,
                    "sign_test_p": sign_test_p(counts["only_reference"], counts["only_other"]),
                }
            )
    return out


def _attempt(a: Any) -> GraspAttempt:
    x, y, z = (float(v) for v in a["offset_m"])
    return GraspAttempt(float(a["t_s"]), str(a["target"]), (x, y, z), str(a["nearest"]), bool(a.get("reopened")))


def load_grasp_attempts(paths: Sequence[Path]) -> list[tuple[bool, list[GraspAttempt]]]:
    """(success, grasp attempts) of every episode of every report (`sim eval` records them per episode)."""
    out: list[tuple[bool, list[GraspAttempt]]] = []
    for path in paths:
        doc = _read_report(path)
        for i, ep in enumerate(_field(doc, "episodes", list, str(path))):
            where = f"{path}: episodes[{i}]"
            raw = _field(ep, "grasp_attempts", list, where)
            try:
                attempts = [_attempt(a) for a in raw]
            except (KeyError, TypeError, ValueError) as e:
                raise ConfigError(f"{where}: grasp_attempts: expected t_s, target, offset_m, nearest ({e})") from None
            out.append((bool(ep.get("success")), attempts))
    return out

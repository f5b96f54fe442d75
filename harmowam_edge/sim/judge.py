"""A run observer that judges the task from the simulated world's ground truth while the policy runs.

`sim eval` ends its episodes on the first success (`EvalObserver` builds on this); `run --sim` only reports
it: the demo's summary then says whether the arm did its task and when.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable
from typing import Any

from harmowam_edge.control.loop import RunInfo, RunObserver
from harmowam_edge.sim import success
from harmowam_edge.sim.rig import SimRig
from harmowam_edge.sim.tasks import Task

JUDGE_HZ = 20.0


class TaskJudge(RunObserver):
    """Judges `task` for arm `acting` on a thread of its own at `JUDGE_HZ` (the loop's hooks must not block);
    `on_success` runs once, on the judge's thread, when the task's success predicate first holds."""

    def __init__(self, rig: SimRig, task: Task, acting: int, on_success: Callable[[], None] | None = None) -> None:
        self.rig = rig
        self.task = task
        self.acting = acting
        self.on_success = on_success
        self.obj_start, _ = rig.world.object_pose(task.object)
        self.t_start: float | None = None
        self.t_success: float | None = None
        self.timeline: list[tuple[float, str]] = []  # (host time, stage)
        self.last: success.Verdict | None = None
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def facts(self) -> success.WorldFacts:
        world = self.rig.world
        obj_now, _ = world.object_pose(self.task.object)
        return success.WorldFacts(self.obj_start, obj_now, world.tcp_position(self.acting), world.goal_position())

    def on_start(self, info: RunInfo) -> None:
        self.t_start = info.t_start
        self._thread = threading.Thread(target=self._run, name="sim-task-judge", daemon=True)
        self._thread.start()

    def on_end(self, summary: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)

    def observe(self, now: float, facts: success.WorldFacts) -> None:
        """One more judgement's facts, for subclasses (grasp attempts); the base class keeps none."""

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                f = self.facts()
                self.last = success.judge_task(self.task.kind, f)
                self.timeline.append((now, success.task_stage(self.task.kind, f)))
                self.observe(now, f)
                if self.last.success and self.t_success is None:
                    self.t_success = now
                    if self.on_success is not None:
                        self.on_success()
                self._stop.wait(1.0 / JUDGE_HZ)
        except Exception as e:  # the run goes on; whoever reads the verdict is told the judge failed
            self.error = e

    def stage_at(self, t: float) -> str:
        i = bisect.bisect_right([x for x, _ in self.timeline], t) - 1
        return self.timeline[max(i, 0)][1] if self.timeline else "approach"

    def describe(self) -> str:
        """One line for a summary: done (and when), or the stage it ended in and what was missing."""
        if self.error is not None:
            return f"task {self.task.name}: not judged (the judge failed: {self.error!r})"
        if self.t_success is not None:
            t0 = self.t_start if self.t_start is not None else self.t_success
            return f"task {self.task.name}: DONE at {self.t_success - t0:.1f} s (its success predicate held)"
        if self.last is not None and self.timeline:  # the last judgement: the rig may be closed by now
            verdict, stage = self.last, self.timeline[-1][1]
        else:
            f = self.facts()
            verdict, stage = success.judge_task(self.task.kind, f), success.task_stage(self.task.kind, f)
        return f"task {self.task.name}: NOT DONE (ended in stage {stage}: {verdict.why})"

"""`harmowam-edge sim eval`: closed-loop success of deploy bundles on the simulated rig (docs/sim.md).

Each bundle's real `Policy` runs through `run_policy` on the simulated rig (firmware simulators behind PTYs,
rendered cameras), exactly as `run --sim`. Per episode the world is reset for the seed; a judge thread applies
the task's success predicate (`success.py`, shared with the scripted expert) to ground truth and ends the
episode on success by ending its camera, as a recording ends (a clean stop: hold, then torque off), or the
time budget ends it. Bundles are interleaved seed by seed. A faulted episode is a failure; evaluation goes on.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import harmowam_edge
from harmowam_edge.bundle.loader import LoadedBundle, load_bundle
from harmowam_edge.bundle.schema import Manifest
from harmowam_edge.cameras.frames import CameraHealth, Frame
from harmowam_edge.control.loop import (
    RECORDING_ENDED,
    Rig,
    RunEvent,
    RunObserver,
    RunOptions,
    TickRecord,
    run_policy,
)
from harmowam_edge.control.safety import SafetyConfig
from harmowam_edge.errors import ConfigError, HarmowamError
from harmowam_edge.policy.gate import GATE_MODES
from harmowam_edge.policy.policy import ActionChunk, Policy
from harmowam_edge.sim import eval_stats, planning, seeds, success
from harmowam_edge.sim.expert import choose_arm
from harmowam_edge.sim.grasps import GraspAttempt, GraspTracker, attempt_summary
from harmowam_edge.sim.judge import TaskJudge
from harmowam_edge.sim.loop_expert import SIM_STATE_TIMEOUT_S, _clear_estops
from harmowam_edge.sim.rig import SimRig, open_sim_rig
from harmowam_edge.sim.scene import check_scene
from harmowam_edge.sim.tasks import Task, parse_task

REPORT_FORMAT = "harmowam-sim-eval"
REPORT_VERSION = 1
DEFAULT_BUDGET_S = 20.0
SUCCESS_MESSAGE = "episode over: the task's success predicate holds"
AUTO_GATE = "auto"


@dataclass(frozen=True)
class EvalConfig:
    bundles: tuple[Path, ...]
    task: str  # a full name (pick_red_cube) or a kind (pick: the object comes from each seed)
    episodes: int
    seed: int
    scene: str = "id"
    time_budget_s: float = DEFAULT_BUDGET_S
    out: Path = Path("eval")
    video: bool = True  # film one failure per bundle
    backend: str = "auto"
    precision: str | None = None
    threads: int | None = None
    expert: bool = False  # also run the scripted expert through the same harness (an upper bound)
    # Who acts: `auto` is the bundle's gate; a forced mode runs the same bundle with one expert (an ablation).
    gate_modes: tuple[str, ...] = (AUTO_GATE,)
    # Actions between chunk requests (the runtime's `replan_every_steps`); None: half a chunk. Several: one
    # variant each, interleaved.
    replan_every: tuple[int | None, ...] = (None,)

    def validate(self) -> None:
        if not self.bundles:
            raise ConfigError("--bundle: give at least one deploy bundle")
        choices = (AUTO_GATE, *GATE_MODES)
        for m in self.gate_modes:
            if m not in choices:
                raise ConfigError(f"--gate: expected one of {', '.join(choices)}, got {m!r}")
        if not self.gate_modes or len(set(self.gate_modes)) != len(self.gate_modes):
            raise ConfigError(f"--gate: expected distinct modes, got {', '.join(self.gate_modes) or 'none'}")
        for r in self.replan_every:
            if r is not None and r < 1:
                raise ConfigError(f"--replan-every: expected an integer >= 1 (actions), got {r}")
        if not self.replan_every or len(set(self.replan_every)) != len(self.replan_every):
            raise ConfigError("--replan-every: expected distinct values")
        if self.episodes < 1:
            raise ConfigError(f"--episodes: expected at least 1, got {self.episodes}")
        if not 1.0 <= self.time_budget_s <= 600.0:
            raise ConfigError(f"--time-budget: expected 1..600 s, got {self.time_budget_s}")
        check_scene(self.scene)
        parse_task(self.task, None, self.seed)


@dataclass
class EpisodeOutcome:
    bundle: str
    seed: int
    task: str
    success: bool
    time_to_success_s: float | None
    duration_s: float
    reason: str  # the run's stop reason kind (recording_ended = ended on success)
    message: str
    faulted: bool
    stage: str  # where the task stood at the end (success.STAGES)
    verdict: str  # the predicate's line at the end
    chunks_made: int = 0
    stale_chunks: int = 0
    # Chunks the safety filter refused (an action out of range, non-finite): the arm holds while they come.
    rejected_chunks: int = 0
    first_rejection: str | None = None
    ticks_per_mode: dict[str, int] = field(default_factory=dict)
    switches: list[dict[str, Any]] = field(default_factory=list)
    video: str | None = None
    grasp_attempts: list[GraspAttempt] = field(default_factory=list)  # where the fingers closed (`grasps`)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["grasp_attempts"] = [a.to_dict() for a in self.grasp_attempts]
        d["duration_s"] = round(self.duration_s, 3)
        if self.time_to_success_s is not None:
            d["time_to_success_s"] = round(self.time_to_success_s, 3)
        return d


class EpisodeCamera:
    """The first camera of an episode, as the loop sees it: the sim camera, until `end()` makes it report
    'ended' the way a finished recording does, which stops the run cleanly (hold, then torque off)."""

    def __init__(self, camera: Any) -> None:
        self._camera = camera
        self._ended: str | None = None

    @property
    def spec(self) -> Any:
        return self._camera.spec

    def start(self) -> None:
        self._camera.start()

    def stop(self) -> None:
        pass  # the rig owns the camera: it runs on for the next episode

    def latest(self) -> Frame | None:
        f: Frame | None = self._camera.latest()
        return f

    def wait_newer(self, after_frame_number: int | None, timeout: float) -> Frame | None:
        f: Frame | None = self._camera.wait_newer(after_frame_number, timeout)
        return f

    def health(self) -> CameraHealth:
        h: CameraHealth = self._camera.health()
        if self._ended is None:
            return h
        return dataclasses.replace(h, failed=True, last_error=self._ended, extra={**h.extra, "ended": 1.0})

    def end(self, message: str) -> None:
        self._ended = message


class EvalObserver(TaskJudge):
    """Judges the episode (`TaskJudge`: it ends on the first success), tracks grasp attempts, and counts ticks
    per chunk and modes."""

    def __init__(self, rig: SimRig, task: Task, acting: int, camera: EpisodeCamera) -> None:
        super().__init__(rig, task, acting, on_success=lambda: camera.end(SUCCESS_MESSAGE))
        self.ticks: dict[int, int] = {}
        self.chunks: list[tuple[int, float, str]] = []  # (index, t_obs, mode)
        self.rejected = 0
        self.first_rejection: str | None = None
        self.grasps = GraspTracker(task.object)

    def on_tick(self, tick: TickRecord) -> None:
        if tick.sent and tick.chunk_index >= 0:
            self.ticks[tick.chunk_index] = self.ticks.get(tick.chunk_index, 0) + 1

    def on_chunk(self, chunk: ActionChunk, frames: Sequence[Frame]) -> None:
        self.chunks.append((chunk.index, chunk.t_obs, str(chunk.mode)))

    def on_event(self, event: RunEvent) -> None:
        if event.kind == "chunk_rejected":
            self.rejected += 1
            if self.first_rejection is None:
                self.first_rejection = event.message

    def observe(self, now: float, facts: success.WorldFacts) -> None:
        world = self.rig.world
        opening = self.rig.plants[self.acting].measure().gripper
        objects = {name: world.object_pose(name)[0] for name in world.objects}
        self.grasps.update(now - (self.t_start if self.t_start is not None else now), opening, facts.tcp, objects)


def run_eval_episode(
    bundle: LoadedBundle,
    label: str,
    rig: SimRig,
    task: Task,
    seed: int,
    budget_s: float,
    video_path: Path | None = None,
    policy_factory: PolicyFactory | None = None,
    observer_factory: ObserverFactory | None = None,
    replan_every_steps: int | None = None,
) -> EpisodeOutcome:
    """One episode of one bundle: reset the world for `seed`, run the policy until success or the budget.
    `policy_factory(rig, task, acting, seed)`: a stand-in for the bundle's `Policy` (the scripted expert, a
    forced gate mode).
    `observer_factory(rig, task, acting)`: more observers of the run, made after the reset (`sim dagger`'s
    recorder)."""
    _clear_estops(rig)
    rig.world.reset(seed)
    time.sleep(0.05)  # the firmware's reference follows the teleported arm while disabled
    for cam in rig.cameras:  # the policy's first frame shows the new episode (a render may straddle the reset)
        cam.start()
        for _ in range(2):
            last = cam.latest()
            cam.wait_newer(None if last is None else last.frame_number, 2.0)
    acting = choose_arm(rig, task.object)
    camera = EpisodeCamera(rig.cameras[0])
    judge = EvalObserver(rig, task, acting, camera)
    observers: list[RunObserver] = [judge]
    if observer_factory is not None:
        observers += observer_factory(rig, task, acting)
    video = None
    if video_path is not None:
        from harmowam_edge.sim.observer import SimVideoObserver

        video = SimVideoObserver(
            video_path,
            rig.cameras[0],
            untrained=bundle.manifest.provenance.untrained,
            expected_duration_s=budget_s,
        )
        observers.append(video)
    options = RunOptions(
        task=task.name,
        duration_s=budget_s,
        seed=seed,
        handle_signals=False,
        safety=SafetyConfig(state_timeout_s=SIM_STATE_TIMEOUT_S),  # as run --sim
        replan_every_steps=replan_every_steps,
    )
    t0 = time.monotonic()
    sim_rig = Rig(list(rig.arm_ports), [camera, *rig.cameras[1:]], name="sim", stop_cameras=False)
    try:
        policy = None if policy_factory is None else policy_factory(rig, task, acting, seed)
        summary = run_policy(bundle, sim_rig, options, observers, policy=policy)
    except (HarmowamError, OSError, planning.IKError) as e:  # could not start (no plan, a firmware fault)
        verdict = judge.last or success.judge_task(task.kind, judge.facts())
        return EpisodeOutcome(
            label, seed, task.name, False, None, time.monotonic() - t0, "start_failed", str(e), True,
            success.task_stage(task.kind, judge.facts()), verdict.why,
        )  # fmt: skip
    ours = summary.reason.kind == RECORDING_ENDED and SUCCESS_MESSAGE in summary.reason.message
    ok = judge.t_success is not None and (summary.clean or ours)
    faulted = not (summary.clean or ours)
    f = judge.facts()
    verdict = success.judge_task(task.kind, f) if judge.last is None else judge.last
    chunks = sorted(judge.chunks)
    mode_of = {i: m for i, _, m in chunks}
    per_mode: dict[str, int] = {}
    for i, n in judge.ticks.items():
        m = mode_of.get(i, "unknown")
        per_mode[m] = per_mode.get(m, 0) + n
    t_base = judge.t_start if judge.t_start is not None else t0
    switches = [
        {"t_s": round(t - t_base, 3), "from": a, "to": b, "stage": judge.stage_at(t)}
        for t, a, b in eval_stats.mode_switches([(t, m) for _, t, m in chunks])
    ]
    stats = summary.stats.get("chunks", {})
    message = summary.reason.message
    if judge.error is not None:
        message += f" (judge: {judge.error!r})"
    written = None
    if video is not None:
        written = video.written
        if ok and written is not None:  # only failures are kept
            with contextlib.suppress(OSError):
                Path(written).unlink()
            written = None
    return EpisodeOutcome(
        bundle=label,
        seed=seed,
        task=task.name,
        success=ok,
        time_to_success_s=None if not ok or judge.t_success is None else judge.t_success - t_base,
        duration_s=time.monotonic() - t0,
        reason=summary.reason.kind,
        message=message,
        faulted=faulted,
        stage="done" if ok else success.task_stage(task.kind, f),
        verdict=verdict.why,
        chunks_made=int(stats.get("made", 0)),
        stale_chunks=int(stats.get("stale", 0)),
        rejected_chunks=judge.rejected,
        first_rejection=judge.first_rejection,
        ticks_per_mode=per_mode,
        switches=switches,
        video=None if written is None else str(written),
        grasp_attempts=list(judge.grasps.attempts),
    )


PolicyFactory = Callable[[SimRig, Task, int, int], Any]
ObserverFactory = Callable[[SimRig, Task, int], Sequence[RunObserver]]
EXPERT_LABEL = "scripted-expert"


def scripted_policy(bundle: LoadedBundle) -> PolicyFactory:
    """The scripted expert in the policy's place (plans from ground truth, chunks at the bundle's rate)."""
    from harmowam_edge.sim.loop_expert import ScriptedPolicy

    def make(rig: SimRig, task: Task, acting: int, seed: int) -> Any:
        plans: list[planning.TaskPlan | None] = [None] * len(rig.plants)
        start = rig.plants[acting].measure()
        plans[acting] = planning.plan_task(rig.world, acting, task.kind, task.object, start.positions, start.gripper)
        return ScriptedPolicy(bundle.manifest, plans, task)

    return make


def forced_policy(bundle: LoadedBundle, mode: str) -> PolicyFactory:
    """The bundle's own `Policy` with the gate's decision overridden (seeded per episode, as `run_policy` does)."""

    def make(rig: SimRig, task: Task, acting: int, seed: int) -> Any:
        return Policy(bundle, task.name, seed=seed, force_mode=mode)  # type: ignore[arg-type]

    return make


@dataclass(frozen=True)
class Variant:
    """One column of an evaluation: a bundle (by index) run with one gate mode and one replanning interval."""

    label: str
    bundle: int
    gate: str
    replan: int | None = None


def eval_variants(
    paths: Sequence[Path], gate_modes: Sequence[str], replan_every: Sequence[int | None] = (None,)
) -> list[Variant]:
    """Every bundle under every gate mode and replanning interval, bundle by bundle. Labels are the bundles'
    names, with `/mode` where other modes than `auto` run and `/replanN` where an interval was given."""
    names = bundle_labels(paths)
    tag_gate = tuple(gate_modes) != (AUTO_GATE,)
    tag_replan = tuple(replan_every) != (None,)
    out: list[Variant] = []
    for i, name in enumerate(names):
        for mode in gate_modes:
            for r in replan_every:
                label = name + (f"/{mode}" if tag_gate else "") + (f"/replan{r}" if tag_replan else "")
                out.append(Variant(label, i, mode, r))
    return out


def _policy_factory(v: Variant, bundle: LoadedBundle) -> PolicyFactory | None:
    """None: `run_policy` makes the bundle's own `Policy`, its gate deciding."""
    if v.label == EXPERT_LABEL:
        return scripted_policy(bundle)
    return None if v.gate == AUTO_GATE else forced_policy(bundle, v.gate)


def bundle_labels(paths: Sequence[Path]) -> list[str]:
    """Short unique names for the report: the folder names, numbered where two are alike."""
    names = [p.resolve().name or str(p) for p in paths]
    return [n if names.count(n) == 1 else f"{n}#{i + 1}" for i, n in enumerate(names)]


def open_rig_for(manifest: Manifest, seed: int, scene: str) -> contextlib.AbstractContextManager[SimRig]:
    """The simulated rig a bundle runs on: its arms and cameras (started per episode), in `scene`."""
    return open_sim_rig(
        len(manifest.action_space.arms),
        list(manifest.cameras),
        seed,
        action_space=manifest.action_space,
        scene=scene,
        start_cameras=False,
    )


def trained_seed_ranges(path: Path) -> list[tuple[int, int]]:
    """Seed ranges a bundle's training data used, where its manifest records them (provenance.training.
    seed_ranges: [[lo, hi), ...]); none recorded: the reserved ranges alone keep evaluation apart."""
    try:
        raw = json.loads((path / "manifest.json").read_text())
        ranges = raw.get("provenance", {}).get("training", {}).get("seed_ranges", [])
        return [(int(lo), int(hi)) for lo, hi in ranges]
    except (OSError, ValueError, TypeError, AttributeError):
        return []


def summarize(outcomes: Sequence[EpisodeOutcome], label: str) -> dict[str, Any]:
    """One bundle's figures over its episodes."""
    mine = [o for o in outcomes if o.bundle == label]
    k, n = sum(o.success for o in mine), len(mine)
    lo, hi = eval_stats.wilson_interval(k, n)
    ticks = eval_stats.merge_counts(o.ticks_per_mode for o in mine)
    switches = [s for o in mine for s in o.switches]
    return {
        "episodes": n,
        "successes": k,
        "success_rate": round(k / n, 4) if n else None,
        "wilson95": [round(lo, 4), round(hi, 4)],
        "time_to_success": eval_stats.time_summary([o.time_to_success_s for o in mine if o.time_to_success_s]),
        "faulted": sum(o.faulted for o in mine),
        "chunks_made": sum(o.chunks_made for o in mine),
        "stale_chunks": sum(o.stale_chunks for o in mine),
        "rejected_chunks": sum(o.rejected_chunks for o in mine),
        "episodes_with_rejections": sum(o.rejected_chunks > 0 for o in mine),
        "gate": {
            "share_of_ticks": eval_stats.mode_shares(ticks),
            "switches": len(switches),
            "switches_per_episode": round(len(switches) / n, 3) if n else None,
            "switches_by_stage": eval_stats.merge_counts([{s["stage"]: 1} for s in switches]),
        },
        "final_stage": eval_stats.merge_counts([{o.stage: 1} for o in mine]),
        "grasps": attempt_summary([(o.success, o.grasp_attempts) for o in mine]),
        "failure_video": next((o.video for o in mine if o.video), None),
    }


def run_evaluation(
    cfg: EvalConfig, on_episode: Callable[[int, int, EpisodeOutcome], None] | None = None
) -> dict[str, Any]:
    """Evaluate every bundle on seeds seed..seed+episodes-1, interleaved; write `cfg.out`/report.json."""
    cfg.validate()
    used = [r for p in cfg.bundles for r in trained_seed_ranges(p)]
    seeds.check_evaluation_seeds(cfg.seed, cfg.episodes, used)
    seed_list = list(range(cfg.seed, cfg.seed + cfg.episodes))
    tasks = {s: parse_task(cfg.task, None, s) for s in seed_list}
    variants = eval_variants(cfg.bundles, cfg.gate_modes, cfg.replan_every)
    if cfg.expert:  # on the first bundle's cameras and action rate
        variants.append(Variant(EXPERT_LABEL, 0, "scripted"))
    labels = [v.label for v in variants]
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    outcomes: list[EpisodeOutcome] = []
    with contextlib.ExitStack() as stack:
        bundles: list[LoadedBundle] = []
        for p in cfg.bundles:
            b = load_bundle(p, backend=cfg.backend, precision=cfg.precision, threads=cfg.threads)  # type: ignore[arg-type]
            stack.callback(b.close)
            for name in sorted({t.name for t in tasks.values()}):
                b.task_embedding(name)  # a clear error now for a task the bundle was not made for
            bundles.append(b)
        loaded = [bundles[v.bundle] for v in variants]
        factories = [_policy_factory(v, b) for v, b in zip(variants, loaded, strict=True)]
        rigs: dict[str, SimRig] = {}
        rig_of: list[str] = []
        for b in loaded:
            m = b.manifest
            key = json.dumps([[c.to_dict() for c in m.cameras], len(m.action_space.arms)])
            if key not in rigs:
                rigs[key] = stack.enter_context(open_rig_for(m, cfg.seed, cfg.scene))
            rig_of.append(key)
        order = eval_stats.interleaved(seed_list, len(loaded))
        filmed: set[str] = set()
        for done, (seed, j) in enumerate(order):
            rig = rigs[rig_of[j]]
            for key, other in rigs.items():  # only the rig in use renders
                for cam in other.sim_cameras:
                    if key == rig_of[j]:
                        cam.start()
                    else:
                        cam.stop()
            video = None
            if cfg.video and labels[j] not in filmed:
                video = out / f"failure_{labels[j].replace('/', '_')}_seed{seed}.mp4"
            outcome = run_eval_episode(
                loaded[j], labels[j], rig, tasks[seed], seed, cfg.time_budget_s, video, factories[j],
                replan_every_steps=variants[j].replan,
            )  # fmt: skip
            if outcome.video is not None:
                filmed.add(labels[j])
            outcomes.append(outcome)
            report = build_report(cfg, variants, outcomes, complete=done + 1 == len(order))
            write_report(out / "report.json", report)
            if on_episode is not None:
                on_episode(done + 1, len(order), outcome)
    return build_report(cfg, variants, outcomes, complete=True)


def build_report(
    cfg: EvalConfig, variants: Sequence[Variant], outcomes: Sequence[EpisodeOutcome], *, complete: bool
) -> dict[str, Any]:
    return {
        "format": REPORT_FORMAT,
        "version": REPORT_VERSION,
        "generator": f"harmowam-edge {harmowam_edge.__version__} sim eval",
        "created_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "complete": complete,
        "task": cfg.task,
        "scene": cfg.scene,
        "seeds": [cfg.seed, cfg.seed + cfg.episodes],
        "time_budget_s": cfg.time_budget_s,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "bundles": [
            {
                "label": v.label,
                "path": "scripted expert" if v.label == EXPERT_LABEL else str(cfg.bundles[v.bundle]),
                "gate_mode": v.gate,
                "replan_every_steps": v.replan,
                **summarize(outcomes, v.label),
            }
            for v in variants
        ],
        "episodes": [o.to_dict() for o in outcomes],
    }


def write_report(path: Path, report: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, default=_jsonable) + "\n")
    tmp.replace(path)


def _jsonable(v: object) -> object:
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON-serialisable: {type(v).__name__}")

"""`harmowam-edge distill`: a trained teacher checkpoint -> a smaller student with K flow steps, same contract.

The student keeps the teacher's action space, cameras, task names (and embeddings), normalisation and gate
thresholds, so it is a drop-in checkpoint for `export bundle`; its `training` block names the teacher's sha256
and every distillation setting. The losses are `distill_losses.py`. Labels come from the teacher on the fly
(fresh noise every step: an unbounded supply of reflow pairs), on the demonstration frames and, with DAgger
rounds, on frames the student itself visits in the simulator (`sim dagger --bundle`: the student's bundle drives
the simulated rig, run as a subprocess: export cannot import the simulator). Output folder: as `train` writes
(config + weights, training_state.pt for `--resume`, the log, the loss curve) plus PROVENANCE.md.
"""

from __future__ import annotations

import copy
import json
import math
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from export.checkpoint import Checkpoint, build_networks, load_checkpoint
from export.config import Architecture, CheckpointConfig
from export.errors import CheckpointError, ConfigError, DatasetError, ExportError
from export.learning.curves import write_loss_curve
from export.learning.data import dataset_digest, iter_episodes
from export.learning.distill_losses import (
    DistillWeights,
    LatentProjection,
    distill_losses,
    euler,
    teacher_labels,
)
from export.learning.episodes import EpisodeData
from export.learning.losses import PolicyModel, ema_update, target_latents
from export.learning.sampler import TrainingSet, seed_ranges
from export.learning.trainer import (
    CURVE_FILE,
    LOG_FILE,
    STATE_FILE,
    Progress,
    TrainOptions,
    lr_factor,
    param_groups,
    prepare_out,
    torch_device,
    write_checkpoint,
)
from harmowam_edge.bundle.composition import blend, blend_weights, decide

Say = Callable[[str], None]
# (student checkpoint dir, output folder, task, episodes, first seed) -> a demo-format folder of the student's own
# rollouts. The default builds the student's bundle and runs `harmowam-edge sim dagger --bundle` in a subprocess.
Rollout = Callable[[Path, Path, str, int, int], None]
OBJECTIVE = (
    "predictive expert: direct regression of the student's K-step Euler output onto the teacher's N-step "
    "integration from the same noise, plus reflow velocity on the straight noise -> teacher-action path"
)
NORMALISATION_SIGMAS = 3.0  # a data mean this many teacher stds away: not the teacher's robot or units


@dataclass(frozen=True)
class DistillOptions:
    """`train`'s options (preset = the student's, steps, batch, lr, seed, device, intervals) and distillation's own."""

    train: TrainOptions = field(default_factory=TrainOptions)
    flow_steps: int = 2  # K: the student's predictive expert's Euler steps
    dagger_rounds: int = 0
    dagger_episodes: int = 10  # rollouts per round
    dagger_task: str | None = None  # None: the data's first task
    dagger_seed: int = 90_000  # first rollout seed (a training seed: `sim demos` takes 0..99999)
    # The student starts from the teacher's weights (its architecture must be the teacher's but for the flow
    # steps): only the K-step flow is left to learn, where a student from scratch needs the teacher's whole run.
    from_teacher: bool = False
    weights: DistillWeights = field(default_factory=DistillWeights)

    def validate(self) -> None:
        self.train.validate()
        for name, low in (("flow_steps", 1), ("dagger_rounds", 0), ("dagger_episodes", 1)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"--{name.replace('_', '-')}: expected an integer >= {low}, got {v!r}")
        if not 0 <= self.dagger_seed < 100_000:
            raise ConfigError(f"--dagger-seed: expected a training seed 0..99999, got {self.dagger_seed}")
        for k, v in asdict(self.weights).items():
            if not (v >= 0 and math.isfinite(v)):
                raise ConfigError(f"weights.{k}: expected a number >= 0, got {v}")


@dataclass
class DistillResult:
    checkpoint: Path
    steps: int
    training: dict[str, Any]


# --------------------------------------------------------------------------------------------------------------
# Setup


def load_teacher(path: str | Path) -> Checkpoint:
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"--teacher {p}: not found (a checkpoint folder written by `harmowam-edge train`)")
    try:
        ck = load_checkpoint(p)
    except ExportError as e:
        raise CheckpointError(f"--teacher: {e}") from None
    if ck.config.untrained:
        raise CheckpointError(
            f"--teacher {p}: is UNTRAINED (seeded random weights); distil a checkpoint from `harmowam-edge train`"
        )
    return ck


def student_architecture(
    opts: DistillOptions, teacher: CheckpointConfig, base: Architecture | None = None
) -> Architecture:
    """The student's preset (or `base`; `--image` applies) with K flow steps, the teacher's chunking and horizon."""
    t = teacher.architecture
    if opts.flow_steps > t.flow_steps:
        raise ConfigError(
            f"--flow-steps {opts.flow_steps}: the teacher runs {t.flow_steps}; the student is meant to run fewer"
        )
    arch = base or opts.train.architecture()  # the preset, with --image if given
    arch = replace(
        arch,
        flow_steps=opts.flow_steps,
        chunk_size=t.chunk_size,
        action_rate_hz=t.action_rate_hz,
        horizon_dt_s=t.horizon_dt_s,
        task_dim=t.task_dim,  # the student keeps the teacher's task embeddings
        relative_actions=t.relative_actions,  # and its normalisation, which says what the outputs are
        keypoints=t.keypoints,  # cheap beside the patch tokens, and what the teacher's aim was learnt with
    )
    arch.validate("student architecture")
    return arch


def _start_from_teacher(student: PolicyModel, teacher: PolicyModel, arch: Architecture, t: Architecture) -> None:
    """`--from-teacher`: the four exported networks take the teacher's weights (flow steps are no weights)."""
    if replace(arch, flow_steps=t.flow_steps) != t:
        raise ConfigError(
            f"--from-teacher: the student ({arch.preset}, {arch.image_width}x{arch.image_height}) must be the "
            f"teacher's architecture ({t.preset}, {t.image_width}x{t.image_height}) but for --flow-steps; "
            "give the teacher's --preset and --image"
        )
    for name in ("world_model", "gate", "reactive_expert", "predictive_expert"):
        getattr(student, name).load_state_dict(getattr(teacher, name).state_dict())


def student_config(arch: Architecture, teacher: CheckpointConfig, seed: int) -> CheckpointConfig:
    cfg = CheckpointConfig(
        architecture=arch,
        action_space=teacher.action_space,
        normalization=teacher.normalization,
        cameras=teacher.cameras,
        tasks=teacher.tasks,
        gate=teacher.gate,
        untrained=False,
        seed=seed,
    )
    cfg.validate()
    return cfg


@dataclass
class Source:
    """Frames to learn from: shrunk for the student and (when the stems differ) for the teacher; `index` is
    the frames sampled, `holdout` the held-out ones (demonstrations only; rollouts are all training frames)."""

    student: TrainingSet
    teacher: TrainingSet
    index: np.ndarray
    holdout: np.ndarray
    paths: list[Path]


def _same_stem(a: Architecture, b: Architecture) -> bool:
    return (a.image_height, a.image_width) == (b.image_height, b.image_width)


def _adopt_teacher_tasks(ts: TrainingSet, teacher: CheckpointConfig) -> None:
    """Batches carry the teacher's own task rows (the data set would compute its own)."""
    names = [t.name for t in teacher.tasks]
    for task in ts.tasks:
        if task not in names:
            src = ts.sources[ts.episode_tasks.index(task)]
            raise DatasetError(
                f"{src}: task {task!r} is not one of the teacher's tasks ({', '.join(names)}); "
                "the student keeps the teacher's task names"
            )
    ts.task_table = np.array([teacher.tasks[names.index(t)].embedding for t in ts.tasks], np.float32)


def _check_against_teacher(ts: TrainingSet, paths: Sequence[Path], teacher: CheckpointConfig) -> None:
    """The data must come from the teacher's rig: cameras, and statistics within a few teacher stds."""
    where = ", ".join(str(p) for p in paths)
    got = [(c.name, c.width, c.height, c.has_depth) for c in ts.cameras]
    want = [(c.name, c.width, c.height, c.has_depth) for c in teacher.cameras]
    if got != want:
        raise DatasetError(
            f"--data {where}: cameras {[c.describe() for c in ts.cameras]} differ from the teacher's "
            f"{[c.describe() for c in teacher.cameras]}"
        )
    tn, dn = teacher.normalization, ts.normalization
    names = [d.name for d in teacher.action_space.dims]
    for label, t_mean, t_std, d_mean in (
        ("joint state", tn.proprio_mean, tn.proprio_std, dn.proprio_mean),
        ("setpoints", tn.action_mean, tn.action_std, dn.action_mean),
    ):
        z = np.abs(np.subtract(d_mean, t_mean)) / np.asarray(t_std)
        j = int(np.argmax(z))
        if z[j] > NORMALISATION_SIGMAS:
            raise DatasetError(
                f"--data {where}: normalisation mismatch: {label} {names[j]} averages {d_mean[j]:.4g}, the "
                f"teacher's statistics say {t_mean[j]:.4g} ± {t_std[j]:.3g} (not the teacher's robot or units?)"
            )


def load_source(
    paths: Sequence[Path],
    arch: Architecture,
    teacher: CheckpointConfig,
    *,
    val_fraction: float,
    seed: int,
    rollouts: bool = False,
) -> Source:
    space = teacher.action_space
    frac = 0.0 if rollouts else val_fraction

    def episodes() -> Iterator[EpisodeData]:
        # The training set skips failed demonstrations; a failed rollout of the student is what DAgger is for.
        for ep in iter_episodes(paths):
            yield replace(ep, success=None) if rollouts else ep

    s = TrainingSet(episodes(), arch, space, tasks=(), val_fraction=frac, seed=seed)
    t = (
        s
        if _same_stem(arch, teacher.architecture)
        else TrainingSet(episodes(), teacher.architecture, space, tasks=(), val_fraction=frac, seed=seed)
    )
    if not rollouts:
        _check_against_teacher(s, paths, teacher)
    for ts in {id(s): s, id(t): t}.values():
        _adopt_teacher_tasks(ts, teacher)
    # Every frame is a target: the teacher labels any state, pushes and idle frames included.
    if rollouts:
        index, holdout = np.arange(s.frames), np.zeros(0, np.int64)
    else:
        held = np.isin(s.episode, s.val_episodes)
        index, holdout = np.flatnonzero(~held), s.validation_index(10**9)
    return Source(student=s, teacher=t, index=index, holdout=holdout, paths=list(paths))


# --------------------------------------------------------------------------------------------------------------
# Held-out fidelity: student vs teacher on the same frames and noise


@torch.no_grad()
def fidelity(
    student: PolicyModel,
    teacher: PolicyModel,
    src: Source,
    index: np.ndarray,
    cfg: CheckpointConfig,
    device: torch.device,
    batch_size: int = 64,
    seed: int = 1234,
) -> dict[str, float]:
    """Mean abs action error (normalised units) of each student path against the teacher's, the teacher's own
    flow cut to K steps (what fewer steps cost without distillation), and the runtime blend's p99 in % of range."""
    if len(index) == 0:
        return {}
    was_training = student.training
    student.eval()
    g = torch.Generator().manual_seed(seed)
    k_steps = student.predictive_expert.arch.flow_steps
    a = cfg.action_dim
    sums: dict[str, float] = {}
    blend_pct: list[np.ndarray] = []
    agree: list[bool] = []
    std = np.asarray(cfg.normalization.action_std)
    ranges = np.array([d.range for d in cfg.action_space.dims])
    for i in range(0, len(index), batch_size):
        part = index[i : i + batch_size]
        bs = src.student.batch(part, device)
        bt = bs if src.teacher is src.student else src.teacher.batch(part, device)
        noise = torch.randn(len(part), cfg.architecture.chunk_size, a, generator=g).to(device)
        lab = teacher_labels(teacher, bt, noise)
        lat, fut, ctx = student.world_model.forward_shrunk(bs.colors, bs.depths, bs.joint_pos, bs.task)
        react = student.normalize_actions(student.reactive_expert(lat, fut, bs.joint_pos), bs.joint_pos)
        cond, kvs = student.predictive_expert.prepare(lat, fut, ctx, bs.joint_pos)
        pred = euler(student.predictive_expert, cond, kvs, noise, k_steps)
        gate = student.gate(ctx, bs.joint_pos)
        tcond, tkvs = teacher.predictive_expert.prepare(lab.latents, lab.future, lab.context, bt.joint_pos)
        cut = euler(teacher.predictive_expert, tcond, tkvs, noise, k_steps)
        n = len(part)
        rows = {
            "reactive": (react - lab.reactive).abs().mean(),
            "predictive": (pred - lab.flow).abs().mean(),
            "teacher_cut_to_k": (cut - lab.flow).abs().mean(),
            "gate": (gate - lab.gate).abs().mean(),
        }
        for key, v in rows.items():
            sums[key] = sums.get(key, 0.0) + float(v) * n
        for j in range(n):
            mine = _runtime_blend(pred[j], react[j], gate[j], cfg)
            theirs = _runtime_blend(lab.flow[j], lab.reactive[j], lab.gate[j], cfg)
            blend_pct.append(np.abs(mine - theirs) * std / ranges * 100.0)
            agree.append(decide(gate[j].cpu().numpy(), cfg.gate) == decide(lab.gate[j].cpu().numpy(), cfg.gate))
            sums["blend"] = sums.get("blend", 0.0) + float(np.abs(mine - theirs).mean())
    student.train(was_training)
    out = {k: v / len(index) for k, v in sums.items()}
    out["blend_pct_range_p99"] = float(np.percentile(np.stack(blend_pct), 99))
    out["gate_decision_agreement"] = float(np.mean(agree))
    return out


def _runtime_blend(pred: torch.Tensor, react: torch.Tensor, gate: torch.Tensor, cfg: CheckpointConfig) -> np.ndarray:
    w = gate.cpu().numpy()
    return blend(pred.cpu().numpy(), react.cpu().numpy(), blend_weights(w, decide(w, cfg.gate)))


# --------------------------------------------------------------------------------------------------------------
# DAgger rollouts


def sim_rollout(checkpoint: Path, out: Path, task: str, episodes: int, seed: int) -> None:
    """The student's own rollouts in the simulator: its FP32 bundle through the real export path, then
    `harmowam-edge sim dagger --bundle` in a subprocess (export may not import the simulator). The student's
    policy drives (not the scripted expert, as `sim demos --bundle` would: those are the expert's states); the
    teacher labels the recorded frames during distillation."""
    import shutil

    from export.bundle import build_bundle

    bundle = out.parent / f"{out.name}-bundle"
    shutil.rmtree(out, ignore_errors=True)  # an interrupted round's partial rollouts
    build_bundle(checkpoint, bundle, precision="fp32", force=True)
    cmd = [
        sys.executable, "-m", "harmowam_edge.cli", "sim", "dagger", "--bundle", str(bundle), "--task", task,
        "--episodes", str(episodes), "--seed", str(seed), "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        raise ExportError(f"DAgger rollout `{' '.join(cmd[2:])}` failed (exit {proc.returncode}): {tail[0]}")


# --------------------------------------------------------------------------------------------------------------
# The run


class _Trainable(nn.Module):
    """What the optimizer steps: the student's four networks and the latent projection."""

    def __init__(self, student: PolicyModel, projection: LatentProjection) -> None:
        super().__init__()
        self.student = student
        self.projection = projection


def distill(
    teacher: str | Path,
    data: Sequence[str | Path],
    out: str | Path,
    opts: DistillOptions,
    *,
    resume: bool = False,
    force: bool = False,
    student_arch: Architecture | None = None,
    rollout: Rollout | None = None,
    command: str | None = None,
    say: Say | None = None,
    progress: bool = True,
) -> DistillResult:
    """Distil `teacher` into a student on `data` (+ DAgger rounds); returns its folder and `training` block.

    `student_arch` overrides the preset's sizes (tests: a student narrower than the teacher); `command` is the
    reproducing command line recorded in PROVENANCE.md.
    """
    opts.validate()
    say = say or print
    to = opts.train
    out = Path(out)
    teacher_ck = load_teacher(teacher)
    tcfg = teacher_ck.config
    arch = student_architecture(opts, tcfg, student_arch)
    cfg = student_config(arch, tcfg, to.seed)
    device = torch_device(to.device)
    if to.threads:
        torch.set_num_threads(to.threads)
    paths = [Path(p) for p in data]
    if not paths:
        raise DatasetError("--data: expected at least one dataset folder")
    prepare_out(out, resume, force)
    state: dict[str, Any] = {}
    if resume:
        state = torch.load(out / STATE_FILE, map_location=device, weights_only=False)
        _check_resume(state, out, teacher_ck, opts, cfg)
    digests = [{"path": str(p), "sha256": dataset_digest(p)} for p in paths]
    if resume and state.get("data") != digests:
        raise ConfigError(f"--resume: the data differs from the run in {out} (dataset digests do not match)")

    t_load = time.perf_counter()
    demos = load_source(paths, arch, tcfg, val_fraction=to.val_fraction, seed=to.seed)
    dagger_dirs = [Path(p) for p in state.get("dagger_dirs", [])]
    sources = [demos] + [
        load_source([d], arch, tcfg, val_fraction=0.0, seed=to.seed, rollouts=True) for d in dagger_dirs
    ]
    say(
        f"distilling {teacher_ck.path} ({tcfg.preset}, {tcfg.architecture.flow_steps} flow steps, sha256 "
        f"{teacher_ck.sha256[:12]}) into {arch.preset} with {arch.flow_steps} flow step(s); data: "
        f"{demos.student.episodes} episodes ({len(demos.student.val_episodes)} held out), {len(demos.index)} "
        f"training frames, loaded in {time.perf_counter() - t_load:.1f} s"
    )

    torch.manual_seed(to.seed)
    student = PolicyModel(build_networks(cfg)).to(device)
    teacher_model = PolicyModel(teacher_ck.networks).to(device).eval()
    if opts.from_teacher:
        _start_from_teacher(student, teacher_model, arch, tcfg.architecture)
    student.requires_grad_(True)
    student.train()
    projection = LatentProjection(arch, tcfg.architecture).to(device)
    trainable = _Trainable(student, projection)
    ema = copy.deepcopy(student.world_model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(param_groups(trainable, to.weight_decay), lr=to.lr, betas=(0.9, 0.95))
    rng = np.random.default_rng(to.seed)
    gen = torch.Generator().manual_seed(to.seed * 1000)
    history: list[dict[str, float]] = []
    val_history: list[tuple[int, dict[str, float]]] = []
    start, wall_before = 0, 0.0
    if resume:
        trainable.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
        history = list(state["history"])
        val_history = [(int(s), dict(v)) for s, v in state["val_history"]]
        wall_before = float(state.get("wall_time_s", 0.0))
        rng.bit_generator.state = state["rng"]["numpy"]
        gen.set_state(state["rng"]["torch"])
        say(f"resuming {out} at step {start}")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, to), last_epoch=start - 1)
    val_index = demos.holdout[:: max(1, len(demos.holdout) // to.val_frames)][: to.val_frames]

    def measure() -> dict[str, float]:
        return fidelity(student, teacher_model, demos, val_index, cfg, device, to.batch_size)

    if not resume:
        val_history.append((0, measure()))
    rounds_at = [to.steps * (r + 1) // (opts.dagger_rounds + 1) for r in range(opts.dagger_rounds)]
    t0 = time.perf_counter()

    def block(step: int) -> dict[str, Any]:
        return _distillation_block(
            opts, arch, teacher_ck, demos, digests, dagger_dirs, sum(len(x.index) for x in sources[1:]), step,
            history, val_history, wall_before + time.perf_counter() - t0, device,
        )  # fmt: skip

    def save(step: int) -> None:
        write_checkpoint(out, replace(cfg, training=block(step)), student)
        tmp = out / (STATE_FILE + ".tmp")
        torch.save(
            {
                "step": step,
                "model": trainable.state_dict(),
                "ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "teacher_sha256": teacher_ck.sha256,
                "preset": arch.preset,
                "flow_steps": arch.flow_steps,
                "normalization": cfg.normalization.to_dict(),
                "tasks": [t.name for t in cfg.tasks],
                "data": digests,
                "dagger_dirs": [str(d) for d in dagger_dirs],
                "history": history,
                "val_history": val_history,
                "rng": {"numpy": rng.bit_generator.state, "torch": gen.get_state()},
                "wall_time_s": wall_before + time.perf_counter() - t0,
            },
            tmp,
        )
        tmp.replace(out / STATE_FILE)
        with (out / LOG_FILE).open("w") as f:
            for i, r in enumerate(history):
                f.write(json.dumps({"step": i + 1, **r}) + "\n")
        write_loss_curve(history, val_history, out / CURVE_FILE)

    bar = Progress(to.steps, start, enabled=progress)

    def dagger_round(done: int) -> None:
        """At a round boundary whose rollouts are not in yet (also when resuming exactly there)."""
        if done not in rounds_at or len(dagger_dirs) >= rounds_at.index(done) + 1:
            return
        r = len(dagger_dirs)
        task = opts.dagger_task or demos.student.episode_tasks[0]
        dest = out / "dagger" / f"round_{r + 1}"
        bar.log(f"DAgger round {r + 1}/{opts.dagger_rounds}: {opts.dagger_episodes} rollouts of {task}", say)
        (rollout or sim_rollout)(out, dest, task, opts.dagger_episodes, opts.dagger_seed + r * opts.dagger_episodes)
        dagger_dirs.append(dest)
        sources.append(load_source([dest], arch, tcfg, val_fraction=0.0, seed=to.seed, rollouts=True))
        save(done)

    k, a = arch.chunk_size, cfg.action_dim
    try:
        dagger_round(start)
        for step in range(start, to.steps):
            src = _pick_source(sources, rng)
            index = rng.choice(src.index, size=to.batch_size, replace=len(src.index) < to.batch_size)
            bs = src.student.batch(index, device)
            bt = bs if src.teacher is src.student else src.teacher.batch(index, device)
            noise = torch.randn(len(index), k, a, generator=gen).to(device)
            flow_t = torch.rand(len(index), generator=gen).to(device)
            labels = teacher_labels(teacher_model, bt, noise)
            losses = distill_losses(
                student, projection, bs, labels, target_latents(ema, bs, arch.horizon), flow_t, opts.weights
            )
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            nn.utils.clip_grad_norm_(trainable.parameters(), to.grad_clip)
            opt.step()
            sched.step()
            ema_update(ema, student.world_model, to.ema_momentum)
            row = {kk: float(v.detach()) for kk, v in losses.items()}
            if not math.isfinite(row["total"]):
                raise DatasetError(f"step {step + 1}: the loss is not finite ({row}); lower --lr or check the data")
            history.append(row)
            done = step + 1
            bar.update(done, row["total"])
            if done % to.eval_interval == 0 or done == to.steps:
                v = measure()
                val_history.append((done, v))
                if v:
                    bar.log(
                        f"step {done}/{to.steps}: loss {np.mean([h['total'] for h in history[-50:]]):.4f}, held-out "
                        f"vs teacher: blend {v['blend']:.4f} (p99 {v['blend_pct_range_p99']:.2f} % of range), "
                        f"{arch.flow_steps}-step flow {v['predictive']:.4f} (teacher cut to {arch.flow_steps}: "
                        f"{v['teacher_cut_to_k']:.4f}), gate agreement {100 * v['gate_decision_agreement']:.0f} %",
                        say,
                    )
            if done % to.checkpoint_interval == 0 or done == to.steps or done in rounds_at:
                save(done)
            dagger_round(done)
    finally:
        bar.close()
    training = block(to.steps)
    write_checkpoint(out, replace(cfg, training=training), student)
    from export.shipped import write_provenance

    write_provenance(out, command or f"harmowam-edge distill --teacher {teacher_ck.path} ...", training)
    return DistillResult(checkpoint=out, steps=to.steps, training=training)


def _pick_source(sources: Sequence[Source], rng: np.random.Generator) -> Source:
    """A whole batch from one source, chosen in proportion to its frame count."""
    if len(sources) == 1:
        return sources[0]
    sizes = np.array([len(s.index) for s in sources], np.float64)
    return sources[int(rng.choice(len(sources), p=sizes / sizes.sum()))]


def _check_resume(
    state: dict[str, Any], out: Path, teacher: Checkpoint, opts: DistillOptions, cfg: CheckpointConfig
) -> None:
    if state.get("teacher_sha256") != teacher.sha256:
        raise ConfigError(
            f"--resume: {out} was distilled from teacher sha256 {str(state.get('teacher_sha256'))[:12]}, "
            f"--teacher {teacher.path} is {teacher.sha256[:12]}"
        )
    if state.get("preset") != cfg.preset or state.get("flow_steps") != opts.flow_steps:
        raise ConfigError(
            f"--resume: {out} is a {state.get('preset')} student with {state.get('flow_steps')} flow step(s), "
            f"not {cfg.preset} with {opts.flow_steps}"
        )
    if state.get("normalization") != cfg.normalization.to_dict():
        raise ConfigError(f"--resume: normalisation mismatch: {out} holds other statistics than the teacher's")
    if state.get("tasks") != [t.name for t in cfg.tasks]:
        raise ConfigError(f"--resume: task mismatch: {out} has tasks {state.get('tasks')}, the teacher others")
    if int(state.get("step", 0)) >= opts.train.steps:
        raise ConfigError(f"--resume: {out} has already run {state.get('step')} steps; ask for more with --steps")


def _distillation_block(
    opts: DistillOptions,
    arch: Architecture,
    teacher: Checkpoint,
    demos: Source,
    digests: list[dict[str, str]],
    dagger_dirs: Sequence[Path],
    dagger_frames: int,
    step: int,
    history: list[dict[str, float]],
    val_history: list[tuple[int, dict[str, float]]],
    wall: float,
    device: torch.device,
) -> dict[str, Any]:
    tail = history[-50:]
    to = opts.train
    t = teacher.config
    return {
        "trainer": "harmowam-edge distill",
        "distillation": {
            "teacher": str(teacher.path),
            "teacher_sha256": teacher.sha256,
            "teacher_preset": t.preset,
            "teacher_flow_steps": t.architecture.flow_steps,
            "teacher_training": {k: t.training.get(k) for k in ("data", "steps", "seed")} if t.training else None,
            "flow_steps": arch.flow_steps,
            "from_teacher": opts.from_teacher,
            "objective": OBJECTIVE,
            "weights": asdict(opts.weights),
            "projection": {
                "tokens": [arch.latent_tokens, t.architecture.latent_tokens],
                "width": [arch.dim, t.architecture.dim],
            },
            "dagger_rounds": opts.dagger_rounds,
            "dagger_episodes": opts.dagger_episodes,
            "dagger_data": [{"path": str(d), "sha256": dataset_digest(d)} for d in dagger_dirs],
            "dagger_frames": dagger_frames,
        },
        "data": digests,
        "episodes": demos.student.episodes,
        "tasks_trained": sorted(set(demos.student.episode_tasks)),
        # The demos' layouts and the teacher's: `sim eval` keeps off both.
        "seed_ranges": seed_ranges(
            [*demos.student.seeds]
            + [s for lo, hi in (t.training or {}).get("seed_ranges", []) for s in range(int(lo), int(hi))]
        ),
        "val_episodes": len(demos.student.val_episodes),
        "train_frames": len(demos.index),
        "steps": step,
        "seed": to.seed,
        "batch_size": to.batch_size,
        "lr": to.lr,
        "horizon_dt_s": arch.horizon_dt_s,
        "final_losses": {k: round(float(np.mean([r[k] for r in tail])), 6) for k in tail[0]} if tail else {},
        "fidelity_initial": {k: round(v, 6) for k, v in val_history[0][1].items()} if val_history else {},
        "fidelity_final": {k: round(v, 6) for k, v in val_history[-1][1].items()} if val_history else {},
        "wall_time_s": round(wall, 1),
        "steps_per_s": round(len(history) / wall, 3) if wall > 0 and history else None,
        "device": str(device),
        "torch": torch.__version__,
    }

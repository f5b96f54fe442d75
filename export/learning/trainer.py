"""`harmowam-edge train`: demonstrations -> a trained checkpoint that `export bundle` takes.

One process, or one per device under `torchrun` (torch DDP: gloo on CPU, NCCL on GPUs; each rank samples its
own batches, gradients are averaged, rank 0 alone writes). The checkpoint directory holds the ordinary
`config.json` + `weights.safetensors` (with a `training` block), plus `training_state.pt` (optimizer, EMA,
random-generator states: what `--resume` needs), `training_log.jsonl` and `loss_curve.png`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from export.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    Checkpoint,
    EdgeNetworks,
    build_networks,
    load_checkpoint,
    save_checkpoint,
)
from export.config import DEFAULT_TASKS, MAX_KEYPOINTS, Architecture, CheckpointConfig, Task
from export.config import preset as get_preset
from export.errors import ConfigError, DatasetError, OutputExistsError
from export.learning.augment import drop_cameras, shift_batch
from export.learning.curves import write_loss_curve
from export.learning.data import DEMO_TIMINGS, dataset_digest, iter_episodes
from export.learning.losses import LossWeights, PolicyModel, action_errors, ema_update, target_latents
from export.learning.sampler import Batch, TrainingSet, seed_ranges
from harmowam_edge.bundle.schema import WORLD_MODEL, ActionSpace, CameraSpec, reference_action_space

STATE_FILE = "training_state.pt"
LOG_FILE = "training_log.jsonl"
CURVE_FILE = "loss_curve.png"
NO_DECAY = ("pos", "camera_emb", "horizon_emb", "queries", "latent_queries")


@dataclass(frozen=True)
class TrainOptions:
    preset: str = "nano"
    steps: int = 1000
    batch_size: int = 32  # per process
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_steps: int = 0  # 0: min(500, steps / 10)
    ema_momentum: float = 0.99
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # torch CPU threads; 0: torch's default (one per core)
    val_fraction: float = 0.1
    val_frames: int = 256
    eval_every: int = 0  # 0: steps / 10
    checkpoint_every: int = 0  # 0: steps / 5
    horizon_dt_s: float | None = None  # None: the preset's
    image: str | None = None  # model input WIDTHxHEIGHT instead of the preset's (more pixels on a small target)
    flow_steps: int | None = None  # None: the preset's, or with `--init` that checkpoint's
    keypoints: int | None = None  # spatial-softmax keypoints per camera; None: the preset's (0) or `--init`'s
    relative_actions: bool = True  # experts predict offsets from the joint state (Architecture.relative_actions)
    # Gaussian noise on the joint state the networks see, as a share of its std; the targets stay the
    # demonstrated setpoints, so the policy learns to steer back to the demonstration (DART-style) instead of
    # copying the state.
    state_noise: float = 0.0
    image_shift: int = 0  # pixels of random shift of the model-size frames (`augment`); 0: none
    camera_dropout: float = 0.0  # share of samples with one of their cameras blanked (`augment`); 0: none
    # cruising: demonstrated moves re-timed to their peak speed, so a chunk depends on the state alone (`retime`)
    demo_timing: str = "cruising"
    gate_labels: str = "phases"  # phases (the expert's phase where known) or accuracy (the nearer expert's chunk)
    reopen_weight: float = 1.0  # frames whose label opens the fingers are drawn this many times as often
    tasks: tuple[str, ...] = DEFAULT_TASKS  # task names the checkpoint knows besides the data's
    losses: LossWeights = field(default_factory=LossWeights)

    def validate(self) -> None:
        get_preset(self.preset)
        for name in ("steps", "batch_size", "val_frames"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ConfigError(f"--{name.replace('_', '-')}: expected an integer >= 1, got {v!r}")
        for name in ("warmup_steps", "eval_every", "checkpoint_every", "threads"):
            if getattr(self, name) < 0:
                raise ConfigError(f"--{name.replace('_', '-')}: expected >= 0, got {getattr(self, name)}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ConfigError(f"--lr: expected a number > 0, got {self.lr}")
        if not (0.0 <= self.ema_momentum < 1.0):
            raise ConfigError(f"ema_momentum: expected 0 <= m < 1, got {self.ema_momentum}")
        if not (0.0 <= self.state_noise <= 1.0):
            raise ConfigError(f"--state-noise: expected a share of the state's std in 0..1, got {self.state_noise}")
        if not (1.0 <= self.reopen_weight <= 100.0):
            raise ConfigError(f"--reopen-weight: expected a factor in 1..100, got {self.reopen_weight}")
        if not isinstance(self.image_shift, int) or not 0 <= self.image_shift <= 16:
            raise ConfigError(f"--image-shift: expected whole pixels in 0..16, got {self.image_shift!r}")
        if not (0.0 <= self.camera_dropout < 1.0):
            raise ConfigError(f"--camera-dropout: expected a share in 0 <= p < 1, got {self.camera_dropout}")
        if self.demo_timing not in DEMO_TIMINGS:
            raise ConfigError(f"--demo-timing: expected {' or '.join(DEMO_TIMINGS)}, got {self.demo_timing!r}")
        if self.gate_labels not in ("phases", "accuracy"):
            raise ConfigError(f"--gate-labels: expected phases or accuracy, got {self.gate_labels!r}")
        if not (0.0 <= self.val_fraction < 1.0):
            raise ConfigError(f"--val-fraction: expected 0 <= f < 1, got {self.val_fraction}")
        if self.device not in ("cpu", "cuda") and not self.device.startswith("cuda:"):
            raise ConfigError(f"--device: expected cpu or cuda, got {self.device!r}")
        if self.flow_steps is not None and (not isinstance(self.flow_steps, int) or self.flow_steps < 1):
            raise ConfigError(f"--flow-steps: expected an integer >= 1, got {self.flow_steps!r}")
        if self.keypoints is not None and (
            isinstance(self.keypoints, bool)
            or not isinstance(self.keypoints, int)
            or not 0 <= self.keypoints <= MAX_KEYPOINTS
        ):
            raise ConfigError(f"--keypoints: expected an integer in 0..{MAX_KEYPOINTS}, got {self.keypoints!r}")
        if self.horizon_dt_s is not None and not self.horizon_dt_s > 0:
            raise ConfigError(f"--horizon-dt: expected seconds > 0, got {self.horizon_dt_s}")
        self.architecture()

    def architecture(self) -> Architecture:
        """The preset, with the overrides asked for (the checkpoint stores the result, not the preset name alone)."""
        arch = replace(get_preset(self.preset), relative_actions=self.relative_actions)
        if self.horizon_dt_s is not None:
            arch = replace(arch, horizon_dt_s=self.horizon_dt_s)
        if self.flow_steps is not None:
            arch = replace(arch, flow_steps=self.flow_steps)
        if self.keypoints is not None:
            arch = replace(arch, keypoints=self.keypoints)
        if self.image is not None:
            try:
                w, h = (int(v) for v in self.image.lower().split("x"))
            except ValueError:
                raise ConfigError(f"--image: expected WIDTHxHEIGHT such as 128x96, got {self.image!r}") from None
            arch = replace(arch, image_width=w, image_height=h, preset=f"{arch.preset}-{w}x{h}")
            try:
                arch.validate()
            except ConfigError as e:
                raise ConfigError(f"--image {self.image}: {e}") from None
        return arch

    @property
    def warmup(self) -> int:
        return self.warmup_steps or min(500, max(1, self.steps // 10))

    @property
    def eval_interval(self) -> int:
        return self.eval_every or max(1, self.steps // 10)

    @property
    def checkpoint_interval(self) -> int:
        return self.checkpoint_every or max(1, self.steps // 5)


@dataclass
class TrainResult:
    checkpoint: Path
    steps: int
    training: dict[str, Any]


Say = Callable[[str], None]


# --------------------------------------------------------------------------------------------------------------
# Setup


def action_space_for(names: tuple[str, ...]) -> ActionSpace:
    """The reference arm's action space (1 or 2 arms) whose dimension names the data uses."""
    for arms in (1, 2):
        space = reference_action_space(arms)
        if tuple(d.name for d in space.dims) == names:
            return space
    raise DatasetError(
        f"action_names: {list(names)} are not the reference action space of 1 or 2 arms "
        f"({[d.name for d in reference_action_space(1).dims]})"
    )


def _first_action_names(paths: Sequence[Path], mapping: str | Path | None) -> tuple[str, ...]:
    for ep in iter_episodes(paths, mapping):
        return ep.action_names
    raise DatasetError("--data: no episodes in the given folders")


def load_training_set(
    paths: Sequence[Path], opts: TrainOptions, mapping: str | Path | None = None
) -> tuple[TrainingSet, CheckpointConfig]:
    """Read the data once, split it, and build the checkpoint config it implies (cameras, tasks, statistics)."""
    arch = opts.architecture()
    space = action_space_for(_first_action_names(paths, mapping))
    ts = TrainingSet(
        iter_episodes(paths, mapping),
        arch,
        space,
        tasks=opts.tasks,
        val_fraction=opts.val_fraction,
        seed=opts.seed,
        demo_timing=opts.demo_timing,
        reopen_weight=opts.reopen_weight,
    )
    if opts.camera_dropout > 0 and len(ts.cameras) < 2:
        names = ", ".join(c.name for c in ts.cameras)
        raise ConfigError(f"--camera-dropout: needs two or more cameras, the data has {len(ts.cameras)} ({names})")
    cfg = CheckpointConfig(
        architecture=arch,
        action_space=space,
        normalization=ts.normalization,
        cameras=ts.cameras,
        tasks=tuple(Task(t, tuple(float(x) for x in row)) for t, row in zip(ts.tasks, ts.task_table, strict=True)),
        untrained=False,
        seed=opts.seed,
    )
    try:
        cfg.validate()
    except ConfigError as e:
        raise DatasetError(f"--data: the data implies a checkpoint that does not validate: {e}") from None
    return ts, cfg


def describe_data(paths: Sequence[str | Path], opts: TrainOptions, mapping: str | Path | None = None) -> list[str]:
    """What `train --check` prints: episodes, frames, cameras, tasks, the first sample's shapes."""
    opts.validate()
    ts, cfg = load_training_set([Path(p) for p in paths], opts, mapping)
    counts: dict[str, int] = {}
    for t in ts.episode_tasks:
        counts[t] = counts.get(t, 0) + 1
    labelled = float(np.mean(ts.gate >= 0))
    return [
        f"episodes: {ts.episodes} ({len(ts.val_episodes)} held out, {len(ts.skipped_failed)} failed ones skipped)",
        (
            f"frames: {ts.frames} ({len(ts.train_index)} training, {len(ts.val_index)} held out, "
            f"{int(np.sum(ts.weight == 0))} no target: a push or idle inside the chunk, "
            f"{int(np.sum(ts.reopening))} opening the fingers)"
        ),
        f"cameras: {', '.join(f'{c.name} {c.describe()}' for c in ts.cameras)}",
        f"tasks: {', '.join(f'{t} x{n}' for t, n in sorted(counts.items()))}",
        f"action space: {', '.join(ts.action_names)}",
        f"gate labels from expert phases: {labelled:.0%} of frames",
        (
            f"model: preset {cfg.preset}, input {cfg.architecture.image_width}x{cfg.architecture.image_height}, "
            f"chunk {cfg.architecture.chunk_size} @ {cfg.architecture.action_rate_hz:g} Hz, "
            f"horizon {cfg.architecture.horizon} x {cfg.architecture.horizon_dt_s:g} s"
        ),
        "first sample: " + ", ".join(f"{k} {v}" for k, v in ts.describe_sample().items()),
    ]


def start_from(
    path: Path, ts: TrainingSet, cfg: CheckpointConfig, flow_steps: int | None = None, keypoints: int | None = None
) -> tuple[Checkpoint, CheckpointConfig]:
    """`--init`: a checkpoint's weights, normalisation (its graphs bake it in) and task table, for data that fits
    its architecture, action space and cameras. The training set's task rows become the checkpoint's.

    The flow step count is not a weight: it stays the checkpoint's unless `flow_steps` asks for another (a
    teacher with more steps grown from a student's weights, say), and then the same weights are rebuilt with it.
    `keypoints` may grow a checkpoint without them: the new branch starts at zero, so the function is unchanged.
    Data with more cameras than the checkpoint (its own first, in order) grows a stem for each added one."""
    ck = load_checkpoint(path)
    ic = ck.config
    steps = ic.architecture.flow_steps if flow_steps is None else flow_steps
    kp = ic.architecture.keypoints if keypoints is None else keypoints
    if kp != ic.architecture.keypoints and ic.architecture.keypoints:
        raise ConfigError(
            f"--init {path}: it has {ic.architecture.keypoints} keypoints (asked {kp}); keypoints can only be added "
            "to a checkpoint without them"
        )
    cfg = replace(cfg, architecture=replace(cfg.architecture, flow_steps=steps, keypoints=kp))
    mine = cfg.architecture.to_dict()
    theirs = {**ic.architecture.to_dict(), "flow_steps": steps, "keypoints": kp}
    if mine != theirs:
        diff = ", ".join(f"{k} {theirs.get(k)!r} (asked {v!r})" for k, v in mine.items() if theirs.get(k) != v)
        raise ConfigError(f"--init {path}: another architecture: {diff}; ask for the same --preset/--image/--actions")
    if ic.action_space.to_dict() != cfg.action_space.to_dict():
        names = [d.name for d in ic.action_space.dims]
        raise ConfigError(f"--init {path}: its action space {names} differs from the data's")
    theirs_cams = [(c.name, c.width, c.height, c.has_depth) for c in ic.cameras]
    mine_cams = [(c.name, c.width, c.height, c.has_depth) for c in cfg.cameras]
    if mine_cams[: len(theirs_cams)] != theirs_cams:
        raise ConfigError(
            f"--init {path}: cameras {[c.describe() for c in ic.cameras]} differ from the data's "
            f"{[c.describe() for c in cfg.cameras]} (cameras can only be added after the checkpoint's own)"
        )
    added_cameras = len(mine_cams) - len(theirs_cams)
    table = {t.name: t.embedding for t in ic.tasks}
    unknown = sorted(set(ts.episode_tasks) - set(table))
    if unknown:
        raise ConfigError(f"--init {path}: task(s) {', '.join(unknown)} of the data are not in its task table")
    for i, name in enumerate(ts.tasks):
        if name in table:
            ts.task_table[i] = np.asarray(table[name], np.float32)
    ts.normalization = ic.normalization  # what the state noise scales by, too
    cfg = replace(cfg, normalization=ic.normalization, tasks=ic.tasks, gate=ic.gate)
    if steps != ic.architecture.flow_steps or kp != ic.architecture.keypoints or added_cameras:
        nets = build_networks(cfg)
        nets.load_state_dict(_grown_state(nets.state_dict(), ck.networks.state_dict(), len(theirs_cams)))
        ck = replace(ck, networks=nets)
    return ck, cfg


def _grown_state(fresh: dict[str, Tensor], old: dict[str, Tensor], old_cameras: int) -> dict[str, Tensor]:
    """The checkpoint's tensors, with what `--init` grew taken fresh: a keypoint branch (its zero-output start),
    the stem of each added camera and that camera's row of the camera embedding (random, as built).

    An added camera's tokens join the encoder's attention, so unlike keypoints the grown network does not compute
    exactly what it did; everything the checkpoint had is still its own, and training starts from there."""
    out = dict(old)
    for key, value in fresh.items():
        if ".keypoints." in key or (key.startswith(f"{WORLD_MODEL}.stems.") and int(key.split(".")[2]) >= old_cameras):
            out[key] = value
        elif key == f"{WORLD_MODEL}.camera_emb" and value.shape != old[key].shape:
            out[key] = torch.cat([old[key], value[old_cameras:]], dim=0)
    return out


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay: list[nn.Parameter] = []
    no_decay: list[nn.Parameter] = []
    for name, p in model.named_parameters():
        leaf = name.rsplit(".", 1)[-1]
        (no_decay if p.ndim < 2 or leaf in NO_DECAY else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def lr_factor(step: int, opts: TrainOptions) -> float:
    """Linear warm-up, then cosine down to 10 % of the peak."""
    if step < opts.warmup:
        return (step + 1) / opts.warmup
    progress = (step - opts.warmup) / max(1, opts.steps - opts.warmup)
    return 0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0


def _init_distributed(device: torch.device) -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return _Dist(rank=dist.get_rank(), world=dist.get_world_size())


def torch_device(name: str) -> torch.device:
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name}: this torch ({torch.__version__}) sees no CUDA GPU")
        if name == "cuda" and "LOCAL_RANK" in os.environ:
            return torch.device(f"cuda:{int(os.environ['LOCAL_RANK'])}")
    return torch.device(name)


# --------------------------------------------------------------------------------------------------------------
# The run


def _to_networks(model: PolicyModel) -> EdgeNetworks:
    return EdgeNetworks(model.world_model, model.gate, model.reactive_expert, model.predictive_expert)


def weights_sha256(model: nn.Module) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _validation(
    model: PolicyModel, ema: nn.Module, ts: TrainingSet, index: np.ndarray, opts: TrainOptions, device: torch.device
) -> dict[str, float]:
    """Losses and action errors on the held-out frames, with fixed noise (comparable between evaluations)."""
    if len(index) == 0:
        return {}
    g = torch.Generator().manual_seed(1234)
    sums: dict[str, float] = {}
    count = 0
    a = ts.arch
    swap_index = swap_partners(ts.episode[index])
    model.eval()
    with torch.no_grad():
        for i in range(0, len(index), opts.batch_size):
            part = index[i : i + opts.batch_size]
            b = ts.batch(part, device)
            n = len(part)
            noise = torch.randn(n, a.chunk_size, len(ts.action_names), generator=g).to(device)
            flow_t = torch.rand(n, generator=g).to(device)
            losses = model(b, target_latents(ema, b, a.horizon), noise, flow_t)
            errs = action_errors(model, b, noise)
            other = index[swap_index[i : i + opts.batch_size]]
            swap = _frame_swap(model, b, ts.batch(other, device), noise, errs["blend"]) if len(swap_index) else {}
            for k, v in [*((k, float(v)) for k, v in losses.items()), *errs.items(), *swap.items()]:
                sums[k] = sums.get(k, 0.0) + v * n
            count += n
    model.train()
    return {k: v / count for k, v in sums.items()}


def swap_partners(episode: np.ndarray) -> np.ndarray:
    """For each frame (episode ids, grouped), a frame of another episode: the one half the set further on.

    Empty when every frame is from one episode (a swap within an episode keeps the scene and says nothing).
    """
    n = len(episode)
    if n < 2 or len(np.unique(episode)) < 2:
        return np.zeros(0, np.int64)
    partner = (np.arange(n) + n // 2) % n
    for i in np.flatnonzero(episode[partner] == episode):
        others = np.flatnonzero(episode != episode[i])
        partner[i] = others[i % len(others)]
    return partner


def _frame_swap(
    model: PolicyModel, b: Batch, other: Batch, noise: torch.Tensor, blend_error: float
) -> dict[str, float]:
    """The blended chunk's error when every frame is another episode's (joint state, task and target kept); with
    several cameras also one camera's frames at a time (`swap_gain_<i>`: how much the networks lean on camera i)."""
    swapped = replace(b, colors=other.colors, depths=other.depths)
    fake = action_errors(model, swapped, noise)
    out = {
        "swap_blend": fake["blend"],
        "swap_error_reactive": fake["error_reactive"],
        "swap_gain": fake["blend"] - blend_error,
    }
    if len(b.colors) > 1:
        for i in range(len(b.colors)):
            colors, depths = list(b.colors), list(b.depths)
            colors[i], depths[i] = other.colors[i], other.depths[i]
            one = action_errors(model, replace(b, colors=colors, depths=depths), noise)
            out[f"swap_gain_{i}"] = one["blend"] - blend_error
    return out


def _per_camera_swap(v: dict[str, float], cameras: Sequence[CameraSpec]) -> str:
    parts = [f"{c.name} +{v[f'swap_gain_{i}']:.4f}" for i, c in enumerate(cameras) if f"swap_gain_{i}" in v]
    return f" ({', '.join(parts)})" if parts else ""


def _save_state(
    out: Path, model: PolicyModel, ema: nn.Module, opt: torch.optim.Optimizer, step: int, extra: dict[str, Any]
) -> None:
    state = {
        "step": step,
        "model": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": opt.state_dict(),
        **extra,
    }
    tmp = out / (STATE_FILE + ".tmp")
    torch.save(state, tmp)
    tmp.replace(out / STATE_FILE)


def write_checkpoint(out: Path, cfg: CheckpointConfig, model: PolicyModel) -> None:
    """config.json + weights.safetensors, each replaced atomically (a reader never sees half a file)."""
    tmp = out / ".writing"
    tmp.mkdir(exist_ok=True)
    nets = _to_networks(model)
    save_checkpoint(tmp, cfg, nets)
    for f in (WEIGHTS_FILE, CONFIG_FILE):
        (tmp / f).replace(out / f)
    tmp.rmdir()


def prepare_out(out: Path, resume: bool, force: bool) -> None:
    if resume:
        if not (out / STATE_FILE).is_file():
            raise ConfigError(f"--resume: {out / STATE_FILE} not found (no run to resume in {out})")
        return
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not force:
        raise OutputExistsError(
            f"{out}: exists and is not empty; pass --resume to continue it or --force to start over"
        )
    out.mkdir(parents=True, exist_ok=True)
    for f in (STATE_FILE, LOG_FILE, CURVE_FILE):
        (out / f).unlink(missing_ok=True)


def train(
    data: Sequence[str | Path],
    out: str | Path,
    opts: TrainOptions,
    *,
    resume: bool = False,
    force: bool = False,
    mapping: str | Path | None = None,
    say: Say | None = None,
    progress: bool = True,
    init: str | Path | None = None,
) -> TrainResult:
    """Train every network of a checkpoint on demonstrations; returns where it is and its `training` block.
    `init`: start from this checkpoint's weights, normalisation and task table (`--init`)."""
    opts.validate()
    say = say or print
    out = Path(out)
    paths = [Path(p) for p in data]
    device = torch_device(opts.device)
    if opts.threads:
        torch.set_num_threads(opts.threads)
    dist_info = _init_distributed(device)
    if dist_info.main:
        prepare_out(out, resume, force)
    t_load = time.perf_counter()
    ts, cfg = load_training_set(paths, opts, mapping)
    digests = [{"path": str(p), "sha256": dataset_digest(p)} for p in paths]
    init_ck = None
    if init is not None:
        init_ck, cfg = start_from(Path(init), ts, cfg, opts.flow_steps, opts.keypoints)
    init_info = None if init_ck is None else {"path": str(init), "sha256": init_ck.sha256}
    if dist_info.main:
        say(
            f"data: {ts.episodes} episodes ({len(ts.val_episodes)} held out), {ts.frames} frames, "
            f"{len(ts.train_index)} training frames, {len(ts.skipped_failed)} failed demos skipped, "
            f"tasks {sorted(set(ts.episode_tasks))}, "
            f"loaded in {time.perf_counter() - t_load:.1f} s"
        )

    torch.manual_seed(opts.seed)
    nets = build_networks(cfg) if init_ck is None else init_ck.networks
    model = PolicyModel(nets, opts.losses, gate_from_phases=opts.gate_labels == "phases").to(device)
    model.requires_grad_(True)
    model.train()
    ema = copy.deepcopy(model.world_model).eval().requires_grad_(False)
    opt = torch.optim.AdamW(param_groups(model, opts.weight_decay), lr=opts.lr, betas=(0.9, 0.95))
    rng = np.random.default_rng([opts.seed, dist_info.rank])
    gen = torch.Generator().manual_seed(opts.seed * 1000 + dist_info.rank)
    history: list[dict[str, float]] = []
    val_history: list[tuple[int, dict[str, float]]] = []
    start = 0
    wall_before = 0.0
    if resume:
        state = torch.load(out / STATE_FILE, map_location=device, weights_only=False)
        if state.get("data") != digests:
            raise ConfigError(f"--resume: the data differs from the run in {out} (dataset digests do not match)")
        if state.get("architecture") != cfg.architecture.to_dict():
            raise ConfigError(
                f"--resume: {out} was trained with another architecture (preset {state.get('preset')!r}, "
                f"--image/--horizon-dt); ask for the same one"
            )
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["optimizer"])
        start = int(state["step"])
        history = list(state["history"])
        val_history = [(int(s), dict(v)) for s, v in state["val_history"]]
        wall_before = float(state.get("wall_time_s", 0.0))
        ranks = state["rng"]
        if len(ranks) != dist_info.world:
            raise ConfigError(
                f"--resume: {out} was trained by {len(ranks)} process(es), this run has {dist_info.world}"
            )
        rng.bit_generator.state = ranks[dist_info.rank]["numpy"]
        gen.set_state(ranks[dist_info.rank]["torch"])
        if start >= opts.steps:
            raise ConfigError(f"--resume: {out} has already run {start} steps; ask for more with --steps")
        if dist_info.main:
            say(f"resuming {out} at step {start}")
    ddp: nn.Module = model
    if dist_info.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, opts), last_epoch=start - 1)
    val_index = ts.validation_index(opts.val_frames, opts.seed)
    if not resume and dist_info.main and len(val_index):
        val_history.append((0, _validation(model, ema, ts, val_index, opts, device)))
    a = ts.arch
    proprio_std = torch.tensor(ts.normalization.proprio_std, dtype=torch.float32, device=device)
    t0 = time.perf_counter()
    bar = Progress(opts.steps, start, enabled=progress and dist_info.main)

    def save(step: int) -> None:
        # Every rank gets here (the generator states are gathered for --resume); rank 0 alone writes.
        rng_states = _gather_rng(rng, gen, dist_info)
        if not dist_info.main:
            return
        training = _training_block(
            opts, ts, digests, step, history, val_history, wall_before + time.perf_counter() - t0, device, dist_info,
            init_info,
        )  # fmt: skip
        write_checkpoint(out, replace(cfg, training=training), model)
        _save_state(
            out,
            model,
            ema,
            opt,
            step,
            {
                "data": digests,
                "preset": opts.preset,
                "architecture": cfg.architecture.to_dict(),
                "history": history,
                "val_history": val_history,
                "rng": rng_states,
                "wall_time_s": wall_before + time.perf_counter() - t0,
            },
        )
        with (out / LOG_FILE).open("w") as f:
            for i, r in enumerate(history):
                f.write(json.dumps({"step": i + 1, **r}) + "\n")
        write_loss_curve(history, val_history, out / CURVE_FILE)

    done = start
    try:
        for step in range(start, opts.steps):
            index = ts.sample(rng, opts.batch_size)
            b = ts.batch(index, device)
            if opts.state_noise > 0:
                jitter = torch.randn(b.joint_pos.shape, generator=gen).to(device) * proprio_std * opts.state_noise
                b = replace(b, joint_pos=b.joint_pos + jitter)
            b = shift_batch(b, opts.image_shift, gen)
            b = drop_cameras(b, opts.camera_dropout, gen)
            noise = torch.randn(len(index), a.chunk_size, len(ts.action_names), generator=gen).to(device)
            flow_t = torch.rand(len(index), generator=gen).to(device)
            losses = ddp(b, target_latents(ema, b, a.horizon), noise, flow_t)
            opt.zero_grad(set_to_none=True)
            losses["total"].backward()
            nn.utils.clip_grad_norm_(model.parameters(), opts.grad_clip)
            opt.step()
            sched.step()
            ema_update(ema, model.world_model, opts.ema_momentum)
            row = {k: float(v.detach()) for k, v in losses.items()}
            if not math.isfinite(row["total"]):
                raise DatasetError(f"step {step + 1}: the loss is not finite ({row}); lower --lr or check the data")
            history.append(row)
            done = step + 1
            bar.update(done, row["total"])
            if dist_info.main and (done % opts.eval_interval == 0 or done == opts.steps) and len(val_index):
                v = _validation(model, ema, ts, val_index, opts, device)
                val_history.append((done, v))
                bar.log(
                    f"step {done}/{opts.steps}: train {np.mean([h['total'] for h in history[-50:]]):.4f}, "
                    f"val {v['total']:.4f}, val action error blend {v['blend']:.4f} (hold {v['hold']:.4f}), "
                    f"frame swap +{v.get('swap_gain', 0.0):.4f}{_per_camera_swap(v, ts.cameras)}",
                    say,
                )
            if done % opts.checkpoint_interval == 0 or done == opts.steps:
                save(done)
    except KeyboardInterrupt:
        # Ctrl-C: keep what was learnt (one process only: ranks of a DDP run stop at different points).
        bar.close()
        if dist_info.world == 1 and done > start:
            save(done)
            say(f"interrupted at step {done}: checkpoint written; `--resume` continues the run")
        raise
    finally:
        bar.close()
    training = _training_block(
        opts, ts, digests, opts.steps, history, val_history, wall_before + time.perf_counter() - t0, device, dist_info,
        init_info,
    )  # fmt: skip
    digest_all = _gather_digests(model, dist_info)
    if dist_info.main:
        training["rank_weight_sha256"] = digest_all
        write_checkpoint(out, replace(cfg, training=training), model)
    if dist_info.world > 1:
        import torch.distributed as dist

        dist.barrier()
        dist.destroy_process_group()
    return TrainResult(checkpoint=out, steps=opts.steps, training=training)


def _gather_rng(rng: np.random.Generator, gen: torch.Generator, d: _Dist) -> list[dict[str, Any]]:
    mine = {"numpy": rng.bit_generator.state, "torch": gen.get_state()}
    if d.world == 1:
        return [mine]
    import torch.distributed as dist

    out: list[Any] = [None] * d.world
    dist.all_gather_object(out, mine)
    return out


def _gather_digests(model: nn.Module, d: _Dist) -> list[str]:
    mine = weights_sha256(model)
    if d.world == 1:
        return [mine]
    import torch.distributed as dist

    out: list[Any] = [None] * d.world
    dist.all_gather_object(out, mine)
    return [str(x) for x in out]


def _training_block(
    opts: TrainOptions,
    ts: TrainingSet,
    digests: list[dict[str, str]],
    step: int,
    history: list[dict[str, float]],
    val_history: list[tuple[int, dict[str, float]]],
    wall: float,
    device: torch.device,
    d: _Dist,
    init: dict[str, str] | None = None,
) -> dict[str, Any]:
    tail = history[-50:]
    final = {k: round(float(np.mean([r[k] for r in tail])), 6) for k in tail[0]} if tail else {}
    return {
        "trainer": "harmowam-edge train",
        "data": digests,
        "episodes": ts.episodes,
        "val_episodes": len(ts.val_episodes),
        "frames": ts.frames,
        "train_frames": len(ts.train_index),
        "tasks_trained": sorted(set(ts.episode_tasks)),
        "seed_ranges": seed_ranges(ts.seeds),  # layout seeds of the demos: `sim eval` refuses these
        "steps": step,
        "seed": opts.seed,
        "batch_size": opts.batch_size,
        "world_size": d.world,
        "lr": opts.lr,
        "horizon_dt_s": ts.arch.horizon_dt_s,
        "relative_actions": ts.arch.relative_actions,
        "state_noise": opts.state_noise,
        "image_shift": opts.image_shift,
        "camera_dropout": opts.camera_dropout,
        "gate_labels": opts.gate_labels,
        "reopen_weight": opts.reopen_weight,
        "reopening_frames": int(np.sum(ts.reopening)),
        "demo_timing": opts.demo_timing,
        "loss_weights": asdict(opts.losses),
        "final_losses": final,
        "val_initial": {k: round(v, 6) for k, v in val_history[0][1].items()} if val_history else {},
        "val_final": {k: round(v, 6) for k, v in val_history[-1][1].items()} if val_history else {},
        "wall_time_s": round(wall, 1),
        "steps_per_s": round(len(history) / wall, 3) if wall > 0 and history else None,
        "device": str(device),
        "torch": torch.__version__,
        **({"init": init} if init is not None else {}),  # `--init`: the checkpoint these weights started from
    }


class Progress:
    """A rich progress bar (loss, steps/s, ETA) on a terminal; plain lines when the output is a log file."""

    def __init__(self, total: int, start: int, enabled: bool) -> None:
        self.enabled = enabled
        self.total = total
        self._t0 = time.perf_counter()
        self._start = start
        self._smooth: float | None = None
        self._bar: Any = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self._plain = not console.is_terminal
        if self._plain:
            return
        self._bar = Progress(
            TextColumn("training"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[rate]} steps/s"),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        )
        self._bar.start()
        self._task = self._bar.add_task("train", total=total, completed=start, loss="-", rate="-")

    def update(self, done: int, loss: float) -> None:
        if not self.enabled:
            return
        self._smooth = loss if self._smooth is None else 0.98 * self._smooth + 0.02 * loss
        rate = (done - self._start) / max(time.perf_counter() - self._t0, 1e-9)
        if self._bar is not None:
            self._bar.update(self._task, completed=done, loss=f"{self._smooth:.4f}", rate=f"{rate:.2f}")
        elif done % max(1, self.total // 100) == 0 or done == self.total:
            eta = (self.total - done) / rate if rate > 0 else float("nan")
            print(
                f"step {done}/{self.total} loss {self._smooth:.4f} {rate:.2f} steps/s ETA {eta / 60:.1f} min",
                flush=True,
            )

    def log(self, message: str, say: Say) -> None:
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            say(message)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()

"""Observations for INT8 calibration, held-out accuracy checks and recorded-input parity.

An observation is a dict keyed by the world model's input names (`image_<i>`, `depth_<i>`, `joint_pos`,
`task_embedding`) holding arrays shaped exactly as the graph inputs ([1, ...]). Sources: a directory of .npz
files (format in docs/export.md), an iterable of dicts (the CLI adapts RealSense recordings into these), or
"synthetic" (random frames, only for untrained demo checkpoints).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from export.config import CheckpointConfig
from export.errors import CalibrationDataError
from harmowam_edge.bundle.schema import JOINT_POS, TASK_EMBEDDING, depth_input, image_input

Observation = dict[str, np.ndarray]

MIN_CALIBRATION = 8  # observations that calibrate the INT8 ranges
MIN_HOLDOUT = 4  # observations held out for the accuracy report
MIN_OBSERVATIONS = MIN_CALIBRATION + MIN_HOLDOUT
SYNTHETIC_COUNT = 48
MAX_OBSERVATIONS = 256  # more adds calibration time, not accuracy


def split_holdout(observations: list[Observation]) -> tuple[list[Observation], list[Observation]]:
    """Every 4th observation is held out (at least MIN_HOLDOUT), so both halves span the whole recording."""
    n = len(observations)
    n_hold = max(MIN_HOLDOUT, n // 4)
    stride = max(1, n // n_hold)
    hold_idx = set(range(stride - 1, n, stride)[:n_hold])
    calib = [o for i, o in enumerate(observations) if i not in hold_idx]
    hold = [o for i, o in enumerate(observations) if i in hold_idx]
    return calib, hold


def frames_only_joint_pos(cfg: CheckpointConfig, rng: np.random.Generator) -> np.ndarray:
    """Joint state for a frame that has none: drawn from the training statistics (proprio mean ± std), clipped
    to the joint limits, so calibration sees the proprio range the network was trained on."""
    n = cfg.normalization
    lower = np.array([d.lower for d in cfg.action_space.dims])
    upper = np.array([d.upper for d in cfg.action_space.dims])
    x = np.asarray(n.proprio_mean) + np.asarray(n.proprio_std) * rng.standard_normal(len(lower))
    return np.clip(x, lower, upper).astype(np.float32).reshape(1, -1)


def _task_row(cfg: CheckpointConfig, index: int) -> np.ndarray:
    return np.asarray(cfg.tasks[index % len(cfg.tasks)].embedding, dtype=np.float32).reshape(1, -1)


def validate_observation(obs: Mapping[str, np.ndarray], cfg: CheckpointConfig, where: str) -> Observation:
    """Check keys, shapes and dtypes against the checkpoint's cameras and action space; add the batch axis."""
    out: Observation = {}
    for i, cam in enumerate(cfg.cameras):
        key = image_input(i)
        if key not in obs:
            raise CalibrationDataError(f"{where}: missing {key!r} (uint8 [{cam.height}, {cam.width}, 3] RGB)")
        raw = np.asarray(obs[key])
        img = raw[None] if raw.ndim == 3 else raw
        if img.shape != (1, cam.height, cam.width, 3) or img.dtype != np.uint8:
            raise CalibrationDataError(
                f"{where}: {key}: expected uint8 [{cam.height}, {cam.width}, 3] (camera {cam.name} "
                f"{cam.describe()}), got {raw.dtype} {list(raw.shape)}"
            )
        out[key] = np.ascontiguousarray(img)
        if cam.has_depth:
            dkey = depth_input(i)
            if dkey not in obs:
                raise CalibrationDataError(f"{where}: missing {dkey!r} (uint16 [{cam.height}, {cam.width}] z16)")
            draw = np.asarray(obs[dkey])
            d = draw[None] if draw.ndim == 2 else draw
            if d.shape != (1, cam.height, cam.width) or d.dtype != np.uint16:
                raise CalibrationDataError(
                    f"{where}: {dkey}: expected uint16 [{cam.height}, {cam.width}] (z16), "
                    f"got {draw.dtype} {list(draw.shape)}"
                )
            out[dkey] = np.ascontiguousarray(d)
    a = cfg.action_dim
    jp = np.asarray(obs[JOINT_POS]) if JOINT_POS in obs else None
    if jp is not None:
        if jp.size != a or not np.issubdtype(jp.dtype, np.floating):
            raise CalibrationDataError(
                f"{where}: {JOINT_POS}: expected {a} floats (the action space: "
                f"{', '.join(d.name for d in cfg.action_space.dims)}), got {jp.dtype} {list(jp.shape)}"
            )
        if not np.all(np.isfinite(jp)):
            raise CalibrationDataError(f"{where}: {JOINT_POS}: non-finite values")
        out[JOINT_POS] = jp.astype(np.float32).reshape(1, a)
    e = cfg.architecture.task_dim
    if TASK_EMBEDDING in obs:
        te = np.asarray(obs[TASK_EMBEDDING])
        if te.size != e or not np.issubdtype(te.dtype, np.floating):
            raise CalibrationDataError(f"{where}: {TASK_EMBEDDING}: expected {e} floats, got {list(te.shape)}")
        out[TASK_EMBEDDING] = te.astype(np.float32).reshape(1, e)
    elif "task" in obs:
        name = str(np.asarray(obs["task"]).reshape(()))
        names = [t.name for t in cfg.tasks]
        if name not in names:
            raise CalibrationDataError(f"{where}: task: {name!r} is not a task of the checkpoint ({', '.join(names)})")
        out[TASK_EMBEDDING] = _task_row(cfg, names.index(name))
    return out


def complete_observations(
    observations: Iterable[Mapping[str, np.ndarray]], cfg: CheckpointConfig, seed: int = 0, source: str = "calib"
) -> list[Observation]:
    """Validate each observation; fill a missing joint_pos (frames-only sources) and task (cycled)."""
    rng = np.random.default_rng(seed)
    out = []
    for i, raw in enumerate(observations):
        if i >= MAX_OBSERVATIONS:
            break
        if not isinstance(raw, Mapping):
            raise CalibrationDataError(f"{source}[{i}]: expected a dict of arrays, got {type(raw).__name__}")
        obs = validate_observation(raw, cfg, f"{source}[{i}]")
        obs.setdefault(JOINT_POS, frames_only_joint_pos(cfg, rng))
        obs.setdefault(TASK_EMBEDDING, _task_row(cfg, i))
        out.append(obs)
    return out


def load_npz_dir(path: Path, cfg: CheckpointConfig, seed: int = 0) -> list[Observation]:
    # A sim demo episode folder is a directory of observations plus its dense `setpoints.npz` (not one).
    files = sorted(f for f in path.glob("*.npz") if f.name != "setpoints.npz")
    if not files:
        raise CalibrationDataError(f"{path}: no .npz observations in this directory")
    rng = np.random.default_rng(seed)
    out = []
    for i, f in enumerate(files[:MAX_OBSERVATIONS]):
        try:
            with np.load(f, allow_pickle=False) as z:
                raw = {k: z[k] for k in z.files}
        except Exception as e:
            raise CalibrationDataError(f"{f}: not a readable .npz file ({e})") from None
        obs = validate_observation(raw, cfg, str(f))
        obs.setdefault(JOINT_POS, frames_only_joint_pos(cfg, rng))
        obs.setdefault(TASK_EMBEDDING, _task_row(cfg, i))
        out.append(obs)
    return out


DEMOS_INDEX = "dataset.json"  # a folder written by `sim demos`: episodes of .npz frames


def load_demo_frames(path: Path, cfg: CheckpointConfig) -> list[Observation]:
    """Frames of a `sim demos` folder, evenly spaced over every episode (at most MAX_OBSERVATIONS in all), each
    with its measured joint state and task: calibration and the accuracy report then see the states and scenes
    the policy meets, not synthetic ones. Pass episodes the network was not trained on (e.g. evaluation seeds)."""
    import json

    try:
        episodes = json.loads((path / DEMOS_INDEX).read_text())["episodes"]
        dirs = [path / str(e["dir"]) for e in episodes]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise CalibrationDataError(f"{path / DEMOS_INDEX}: not a `sim demos` index with episodes[].dir ({e})") from None
    per_episode = max(1, MAX_OBSERVATIONS // max(1, len(dirs)))
    out: list[Observation] = []
    for d in dirs:
        files = sorted(f for f in d.glob("[0-9]*.npz"))
        if not files:
            raise CalibrationDataError(f"{d}: no .npz frames in this episode folder")
        for i in np.unique(np.linspace(0, len(files) - 1, min(per_episode, len(files))).round().astype(int)):
            f = files[i]
            try:
                with np.load(f, allow_pickle=False) as z:
                    raw = {k: z[k] for k in z.files}
            except Exception as e:
                raise CalibrationDataError(f"{f}: not a readable .npz file ({e})") from None
            if JOINT_POS not in raw:
                raise CalibrationDataError(f"{f}: missing {JOINT_POS!r} (a demonstration frame records it)")
            out.append(validate_observation(raw, cfg, str(f)))
            out[-1].setdefault(TASK_EMBEDDING, _task_row(cfg, 0))
    return out[:MAX_OBSERVATIONS]


def synthetic_observations(cfg: CheckpointConfig, count: int = SYNTHETIC_COUNT, seed: int = 0) -> list[Observation]:
    """Smooth random frames (blocky colour fields plus noise), depth ramps, joints from the training statistics.

    Not representative of a real scene: only for untrained demo checkpoints and tests.
    """
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        obs: Observation = {}
        for c_i, cam in enumerate(cfg.cameras):
            coarse = rng.integers(0, 256, (6, 8, 3)).astype(np.float32)
            ys = np.minimum((np.arange(cam.height) * 6) // cam.height, 5)
            xs = np.minimum((np.arange(cam.width) * 8) // cam.width, 7)
            img = coarse[ys][:, xs] + rng.normal(0, 12, (cam.height, cam.width, 3))
            obs[image_input(c_i)] = np.clip(img, 0, 255).astype(np.uint8)[None]
            if cam.has_depth:
                ramp = np.linspace(400, 2500, cam.height)[:, None] + rng.normal(0, 30, (cam.height, cam.width))
                obs[depth_input(c_i)] = np.clip(ramp, 0, 65535).astype(np.uint16)[None]
        obs[JOINT_POS] = frames_only_joint_pos(cfg, rng)
        obs[TASK_EMBEDDING] = _task_row(cfg, i)
        out.append(obs)
    return out


def load_calibration(
    source: str | Path | Iterable[Mapping[str, np.ndarray]], cfg: CheckpointConfig, seed: int = 0
) -> list[Observation]:
    """Observations from a .npz directory, a `sim demos` folder, an iterable of dicts, or "synthetic"; at least
    MIN_OBSERVATIONS."""
    if isinstance(source, str) and source == "synthetic":
        return synthetic_observations(cfg, seed=seed)
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.exists():
            raise CalibrationDataError(f"{path}: calibration data not found (expected a directory of .npz files)")
        if not path.is_dir():
            raise CalibrationDataError(
                f"{path}: expected a directory of .npz observations (RealSense recordings are read by the CLI)"
            )
        obs = load_demo_frames(path, cfg) if (path / DEMOS_INDEX).is_file() else load_npz_dir(path, cfg, seed)
        where = str(path)
    else:
        obs = complete_observations(source, cfg, seed)
        where = "calibration observations"
    if len(obs) < MIN_OBSERVATIONS:
        raise CalibrationDataError(
            f"{where}: {len(obs)} observation(s); need at least {MIN_OBSERVATIONS} "
            f"({MIN_CALIBRATION} to calibrate, {MIN_HOLDOUT} held out for the accuracy report)"
        )
    return obs

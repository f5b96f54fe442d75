"""`harmowam-edge sim relabel SRC --out DST`: label recorded DAgger rollouts again with today's expert rules.

Why: a rollout takes real time (240 of them: ~27 minutes on 2 cores), a label milliseconds. `sim dagger` keeps
what each label was planned from (`dagger.STATE_FIELDS` per frame, the episode's context in episode.json), so
a change to `relabel.py` can be tried on the same learner states without rolling out again. The source stays as
it was: the relabelled copy goes to a new folder (frames rewritten with the new `label_chunk` / `label_phase`,
everything else copied), and its dataset.json says what it was relabelled from.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import harmowam_edge
from harmowam_edge.errors import ConfigError
from harmowam_edge.sim.dagger import DRIVER, STATE_FIELDS
from harmowam_edge.sim.demos import DATASET_FILE, EPISODE_META, check_out_dir, step_files
from harmowam_edge.sim.planning import IKSolver
from harmowam_edge.sim.relabel import EpisodeContext, FrameState, relabel
from harmowam_edge.sim.tasks import parse_task
from harmowam_edge.sim.world import SimWorld


def _dataset(src: Path) -> dict[str, Any]:
    path = src / DATASET_FILE
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (expected a folder written by `sim dagger`)") from None
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not readable JSON ({e})") from None
    if meta.get("driver") != DRIVER or not isinstance(meta.get("label"), dict):
        raise ConfigError(f"{path}: driver: expected {DRIVER!r} rollouts with labels, got {meta.get('driver')!r}")
    missing = [f for f in STATE_FIELDS if f not in meta["label"].get("state_fields", [])]
    if missing:
        raise ConfigError(
            f"{path}: label.state_fields: lacks {', '.join(missing)} (recorded before `sim dagger` kept the "
            "states it labelled); roll these episodes out again"
        )
    return meta


def _context(record: dict[str, Any], where: Path) -> EpisodeContext:
    ctx = record.get("context")
    if not isinstance(ctx, dict):
        raise ConfigError(f"{where}: context: missing (the acting arm, object start and goal the labels need)")
    try:
        return EpisodeContext(
            parse_task(str(record["task"])),
            int(ctx["acting"]),
            np.asarray(ctx["object_start"], float).reshape(3),
            np.asarray(ctx["goal"], float).reshape(3),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{where}: context: expected acting, object_start [3] and goal [3] ({e})") from None


def _frame_state(z: dict[str, np.ndarray], where: Path) -> FrameState:
    for key in ("joint_pos", "joint_vel", "t_capture_0", *STATE_FIELDS):
        if key not in z:
            raise ConfigError(f"{where}: {key}: missing (a frame `sim dagger` labelled keeps it)")
    return FrameState(
        float(z["state_t"]),
        float(z["t_capture_0"]),
        z["joint_pos"],
        z["joint_vel"],
        z["state_object_pos"],
        z["state_object_quat"],
        z["state_tcp"],
        z["state_command"],
    )


def relabel_rollouts(src: Path, out: Path, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Copy the DAgger rollouts in `src` to `out` with every frame labelled again; the new dataset.json."""
    say = progress or (lambda _m: None)
    src, out = Path(src), Path(out)
    meta = _dataset(src)
    check_out_dir(out)
    if out.resolve() == src.resolve():
        raise ConfigError(f"--out {out}: is the source folder; choose a new one")
    k, rate = int(meta["label"]["chunk_size"]), float(meta["label"]["action_rate_hz"])
    worlds: dict[str, tuple[SimWorld, IKSolver]] = {}
    out.mkdir(parents=True, exist_ok=True)
    episodes: list[dict[str, Any]] = []
    t0 = time.monotonic()
    for n, record in enumerate(meta["episodes"]):
        ep_src, ep_out = src / record["dir"], out / record["dir"]
        ctx = _context(record, ep_src / EPISODE_META)
        scene = str(record.get("scene", meta.get("scene", "id")))
        if scene not in worlds:  # the model is only read (object sizes, kinematics); IK has its own MjData
            world = SimWorld(arms=int(meta["arms"]), scene_name=scene)
            worlds[scene] = (world, IKSolver(world))
        world, ik = worlds[scene]
        ep_out.mkdir()
        counts: dict[str, int] = {}
        steps = step_files(ep_src)
        for f in steps:
            with np.load(f, allow_pickle=False) as z:
                arrays = {key: z[key] for key in z.files}
            label = relabel(world, ctx, _frame_state(arrays, f), k, rate, ik)
            counts[label.situation] = counts.get(label.situation, 0) + 1
            arrays["label_chunk"] = label.chunk.astype(np.float32)
            arrays["label_phase"] = np.array(label.phase, np.int16)
            np.savez_compressed(ep_out / f.name, **arrays)  # type: ignore[arg-type]
        for other in sorted(set(ep_src.iterdir()) - set(steps)):  # setpoints.npz and the like, as they were
            if other.name != EPISODE_META and other.is_file():
                shutil.copy2(other, ep_out / other.name)
        new_record = {**record, "labels": counts, "labels_before": record.get("labels", {})}
        (ep_out / EPISODE_META).write_text(json.dumps(new_record, indent=2) + "\n")
        episodes.append(new_record)
        say(
            f"episode {n + 1}/{len(meta['episodes'])} {record['dir']}: "
            + ", ".join(f"{s} {c}" for s, c in sorted(counts.items()))
        )
    new_meta = {
        **meta,
        "episodes": episodes,
        "relabelled": {
            "from": str(src),
            "generator": f"harmowam-edge {harmowam_edge.__version__} sim relabel",
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        },
    }
    (out / DATASET_FILE).write_text(json.dumps(new_meta, indent=2) + "\n")
    frames = sum(sum(e["labels"].values()) for e in episodes)
    say(
        f"sim relabel: {frames} frames of {len(episodes)} episodes labelled again "
        f"in {time.monotonic() - t0:.0f} s; wrote {out}"
    )
    return new_meta

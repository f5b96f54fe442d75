"""Tiny synthetic demonstrations in the `sim demos` format, for trainer tests (MuJoCo would cost ~5 s an episode).

Each episode reaches for a target that only the image shows (a red square whose position sets the first two
joints' goal) from a random start, and the state holds no velocity: a policy that ignores the image cannot
know where to go. Setpoints lead the measured state by 0.1 s, so a chunk is not the current pose held.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from harmowam_edge.bundle.schema import reference_action_space

WIDTH, HEIGHT = 64, 48
FPS = 10.0
DURATION_S = 3.0
REACH_S = 2.0
PHASES = ("approach", "grasp", "perturb")


def _goal(tx: float, ty: float) -> np.ndarray:
    q = np.zeros(7, np.float32)
    q[0], q[1], q[6] = (tx - 0.5) * 2.0, (ty - 0.5) * 2.0, 0.02
    return q


def _pose(start: np.ndarray, goal: np.ndarray, t: np.ndarray) -> np.ndarray:
    s = np.clip(t / REACH_S, 0.0, 1.0)[:, None]
    return (start + (goal - start) * s).astype(np.float32)


def _image(tx: float, ty: float, rng: np.random.Generator) -> np.ndarray:
    img = np.full((HEIGHT, WIDTH, 3), 60, np.uint8)
    img += rng.integers(0, 8, img.shape, dtype=np.uint8)
    x, y = int(tx * (WIDTH - 8)), int(ty * (HEIGHT - 8))
    img[y : y + 8, x : x + 8] = (230, 30, 30)
    return img


def write_demos(out: Path, episodes: int, seed: int = 0, phases: bool = True, cameras: int = 1) -> Path:
    """A `harmowam-sim-demos` v2 folder: frames at 10 Hz, setpoints at 100 Hz, phase labels per frame; cameras
    after the first (`cam1`, ...) see the same target mirrored."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True)
    names = [d.name for d in reference_action_space(1).dims]
    records = []
    for e in range(episodes):
        tx, ty = rng.random(2)
        goal = _goal(float(tx), float(ty))
        start = np.zeros(7, np.float32)
        start[:2] = rng.uniform(-1.0, 1.0, 2)
        start[6] = 0.08
        ep = out / f"episode_{e:06d}"
        ep.mkdir()
        t_frame = 100.0 + np.arange(int(DURATION_S * FPS)) / FPS
        t_sp = 100.0 + np.arange(int(DURATION_S * 100)) / 100.0
        joint = _pose(start, goal, t_frame - 100.0)
        setpoints = _pose(start, goal, t_sp - 100.0 + 0.1)
        for i, t in enumerate(t_frame):
            step = {
                "image_0": _image(float(tx), float(ty), rng),
                "joint_pos": joint[i],
                "task": np.array("reach_red_cube"),
                "t": np.array(t, np.float64),
                "t_capture_0": np.array(t, np.float64),
                "phase": np.array(0 if t - 100.0 < REACH_S else 1, np.int16),
            }
            for c in range(1, cameras):
                step[f"image_{c}"] = np.ascontiguousarray(step["image_0"][:, ::-1])
                step[f"t_capture_{c}"] = np.array(t, np.float64)
            np.savez_compressed(ep / f"{i:06d}.npz", **step)  # type: ignore[arg-type]
        sp_phase = np.where(t_sp - 100.0 < REACH_S, 0, 1).astype(np.int16)  # "grasp" once the target is reached
        np.savez_compressed(ep / "setpoints.npz", t=t_sp, setpoints=setpoints, phase=sp_phase)
        rec = {"dir": ep.name, "task": "reach_red_cube", "seed": seed + e, "success": True}
        (ep / "episode.json").write_text(json.dumps(rec))
        records.append(rec)
    meta = {
        "format": "harmowam-sim-demos",
        "version": 2,
        "action_names": names,
        "cameras": [
            {"name": f"cam{c}", "width": WIDTH, "height": HEIGHT, "fps": int(FPS), "streams": ["color"]}
            for c in range(cameras)
        ],
        "phase_names": list(PHASES) if phases else [],
        "episodes": records,
    }
    (out / "dataset.json").write_text(json.dumps(meta))
    return out

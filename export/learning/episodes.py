"""One demonstration episode in memory, whatever file format it came from (our sim demos, LeRobot v3.0/v2.1).

Every reader (`data.py` for our own format, `lerobot.py` for LeRobot datasets) returns `EpisodeData`; the
training sampler only ever sees this. Times are seconds on one clock per episode (host monotonic for our
demos, the dataset's `timestamp` for LeRobot); only differences matter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

NO_PHASE = -1  # a frame whose expert phase is unknown (LeRobot data, v1 demos)


@dataclass
class EpisodeData:
    """Frames at the camera rate and commanded setpoints at their own (usually denser) rate."""

    source: str  # file or folder this came from: every error about it names this
    task: str  # full task name, e.g. "pick_red_cube" (a bundle task name)
    action_names: tuple[str, ...]  # action-space order: joints in rad, gripper opening in m
    camera_names: tuple[str, ...]  # bundle camera order
    t_frame: np.ndarray  # float64 [T] capture time of each frame (camera 0's; cameras are synchronised)
    images: tuple[np.ndarray, ...]  # per camera uint8 [T, H, W, 3]
    joint_pos: np.ndarray  # float32 [T, A] measured at each frame
    t_setpoint: np.ndarray  # float64 [N] time each setpoint was commanded, increasing
    setpoints: np.ndarray  # float32 [N, A] commanded absolute targets, raw units
    depths: tuple[np.ndarray | None, ...] = ()  # per camera uint16 [T, H, W] z16, or None
    phase: np.ndarray | None = None  # int16 [T] index into `phase_names` per frame, NO_PHASE if unknown
    phase_names: tuple[str, ...] = ()
    success: bool | None = None  # did the demonstration succeed (None: unknown)
    meta: dict[str, object] = field(default_factory=dict)
    # DAgger (`sim dagger`): per frame the scripted expert's chunk from the state the learner was in, float32
    # [T, K, A] absolute setpoints at t_frame + k / label_rate_hz; these replace the setpoints as targets (the
    # setpoints are then the learner's own). `phase` holds the expert's phase of each label.
    label_chunks: np.ndarray | None = None
    label_rate_hz: float | None = None

    @property
    def frames(self) -> int:
        return int(self.t_frame.shape[0])

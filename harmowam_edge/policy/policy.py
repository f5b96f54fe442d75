"""The policy step: observation → world model → gate → the experts the gate needs → per-step blend → chunk.

Network boundaries are raw units (design §3): uint8 frames at camera resolution, joint positions in radians
(gripper in metres) in, absolute joint targets out. The step builds one feed dict, adds each graph's outputs to
it and lets the next graph pick its inputs by name: no preprocessing, no copies on the hot path beyond what the
engines make. Flow noise is drawn from a seeded generator on every step (whether or not the predictive expert
runs), so a run is reproducible and forcing a gate mode does not shift the noise sequence.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from harmowam_edge.bundle.composition import blend, flow_schedule
from harmowam_edge.bundle.loader import LoadedBundle
from harmowam_edge.bundle.schema import (
    ACTIONS,
    FLOW_DT,
    FLOW_NEXT,
    FLOW_STATE,
    FLOW_TIME,
    GATE,
    GATE_WEIGHTS,
    JOINT_POS,
    NOISE,
    PREDICTIVE_EXPERT,
    PREDICTIVE_EXPERT_STEP,
    REACTIVE_EXPERT,
    TASK_EMBEDDING,
    WORLD_MODEL,
    depth_input,
    image_input,
)
from harmowam_edge.cameras.frames import Frame
from harmowam_edge.errors import CameraError, HarmowamError
from harmowam_edge.policy.gate import GateHysteresis, GateMode, blend_weights

STAGES = ("world_model", "gate", "reactive", "predictive", "blend", "total")


@dataclass(frozen=True)
class Observation:
    frames: Sequence[Frame]  # one per bundle camera, in manifest order
    joint_pos: np.ndarray  # [A]: the measured action-space vector (rad; gripper m)
    t_obs: float | None = None  # default: the oldest frame's capture time

    @property
    def time(self) -> float:
        if self.t_obs is not None:
            return self.t_obs
        return min(f.t_capture for f in self.frames)


@dataclass(frozen=True)
class ActionChunk:
    """K × A absolute targets for the K action steps after `t_obs`, and how they were made."""

    index: int  # policy step number
    t_obs: float  # observation time the chunk is anchored to (host monotonic)
    actions: np.ndarray  # float32 [K, A]
    gate_weights: np.ndarray  # float32 [K]: the gate's raw output
    blend_weights: np.ndarray  # float32 [K]: what was applied (0 = reactive, 1 = predictive)
    mode: GateMode
    experts: tuple[str, ...]  # the expert networks that ran
    timings: dict[str, float]  # seconds per stage (STAGES)
    t_ready: float  # host monotonic time the chunk was ready
    task: str
    frame_numbers: tuple[int, ...] = field(default_factory=tuple)

    @property
    def latency(self) -> float:
        """Observation → chunk ready (what the scheduler's p95 tracks)."""
        return self.t_ready - self.t_obs


class PolicyError(HarmowamError):
    """The policy cannot run on this observation (wrong frame size, unknown task)."""


class Policy:
    """One bundle, one task at a time. Not thread-safe: the inference thread owns it."""

    def __init__(
        self,
        bundle: LoadedBundle,
        task: str,
        *,
        seed: int = 0,
        force_mode: GateMode | None = None,
    ) -> None:
        m = bundle.manifest
        self.bundle = bundle
        self.manifest = m
        self.k, self.a = m.policy.chunk_size, m.policy.action_dim
        self.flow_mode = bundle.flow_mode
        self.flow_steps = m.policy.flow_steps
        self.force_mode = force_mode
        self.gate = GateHysteresis(m.policy.gate)
        self._rng = np.random.default_rng(seed)
        self._seed = seed
        self._steps = 0
        self._wm = bundle.engines[WORLD_MODEL]
        self._gate = bundle.engines[GATE]
        self._reactive = bundle.engines[REACTIVE_EXPERT]
        self._predictive = bundle.engines.get(
            PREDICTIVE_EXPERT if self.flow_mode == "unrolled" else PREDICTIVE_EXPERT_STEP
        )
        if self._predictive is None:
            raise PolicyError(f"{bundle.root}: no predictive expert graph loaded for flow mode {self.flow_mode!r}")
        self._images = [image_input(i) for i in range(len(m.cameras))]
        wm_inputs = {t.name for t in self._wm.inputs}
        self._depths = [depth_input(i) if depth_input(i) in wm_inputs else None for i in range(len(m.cameras))]
        self._shapes = [(c.height, c.width, 3) for c in m.cameras]
        self._times, self._dt = flow_schedule(self.flow_steps)
        self.task = ""
        self._task_embedding = np.zeros((1, m.tasks.dim), np.float32)
        self.set_task(task)

    def set_task(self, name: str) -> None:
        self._task_embedding = self.bundle.task_embedding(name)
        self.task = name

    def reset(self, seed: int | None = None) -> None:
        """Start over: new noise sequence, no gate history."""
        self._rng = np.random.default_rng(self._seed if seed is None else seed)
        self.gate.reset()
        self._steps = 0

    def _feeds(self, obs: Observation) -> dict[str, np.ndarray]:
        m = self.manifest
        if len(obs.frames) != len(m.cameras):
            raise PolicyError(f"observation: expected {len(m.cameras)} camera frame(s), got {len(obs.frames)}")
        feeds: dict[str, np.ndarray] = {TASK_EMBEDDING: self._task_embedding}
        for i, f in enumerate(obs.frames):
            if f.color.shape != self._shapes[i] or f.color.dtype != np.uint8:
                raise CameraError(
                    f"camera {m.cameras[i].name!r}: frame is {f.color.dtype} {list(f.color.shape)}, "
                    f"the bundle expects uint8 {list(self._shapes[i])}"
                )
            feeds[self._images[i]] = f.color[None]
            d = self._depths[i]
            if d is not None:
                if f.depth is None:
                    raise CameraError(f"camera {m.cameras[i].name!r}: the bundle needs depth, the frame has none")
                feeds[d] = f.depth[None]
        jp = np.asarray(obs.joint_pos, dtype=np.float32)
        if jp.shape != (self.a,):
            raise PolicyError(f"observation: joint_pos: expected {self.a} values, got shape {jp.shape}")
        feeds[JOINT_POS] = jp[None]
        return feeds

    def _run_predictive(self, feeds: dict[str, np.ndarray], noise: np.ndarray) -> np.ndarray:
        assert self._predictive is not None
        if self.flow_mode == "unrolled":
            feeds[NOISE] = noise
            return self._predictive.run(feeds)[ACTIONS][0]
        # The one-step graph looped over composition.flow_schedule: x_0 = noise, x_{i+1} = x_next(x_i, t_i, dt).
        x = noise
        actions = None
        feeds[FLOW_DT] = self._dt
        for t in self._times:
            feeds[FLOW_STATE] = x
            feeds[FLOW_TIME] = t
            out = self._predictive.run(feeds)
            x, actions = out[FLOW_NEXT], out[ACTIONS]
        assert actions is not None
        return actions[0]

    def step(self, obs: Observation, force: GateMode | None = None) -> ActionChunk:
        """One policy step. `force` (or the policy's `force_mode`) overrides the gate's decision (benchmarks)."""
        clock = time.perf_counter
        t_start = clock()
        feeds = self._feeds(obs)
        noise = self._rng.standard_normal((1, self.k, self.a), dtype=np.float32)
        t0 = clock()
        feeds.update(self._wm.run(feeds))
        t1 = clock()
        weights = self._gate.run(feeds)[GATE_WEIGHTS][0]
        t2 = clock()
        mode = force or self.force_mode or self.gate.decide(weights)
        applied = blend_weights(weights, mode)
        reactive = predictive = None
        experts = []
        if mode != "predictive":
            reactive = self._reactive.run(feeds)[ACTIONS][0]
            experts.append(REACTIVE_EXPERT)
        t3 = clock()
        if mode != "reactive":
            predictive = self._run_predictive(feeds, noise)
            experts.append(self._predictive.name if self._predictive else PREDICTIVE_EXPERT)
        t4 = clock()
        actions = blend(predictive, reactive, applied)
        t5 = clock()
        self._steps += 1
        return ActionChunk(
            index=self._steps - 1,
            t_obs=obs.time,
            actions=np.asarray(actions, dtype=np.float32),
            gate_weights=np.asarray(weights, dtype=np.float32),
            blend_weights=np.asarray(applied, dtype=np.float32),
            mode=mode,
            experts=tuple(experts),
            timings={
                "world_model": t1 - t0,
                "gate": t2 - t1,
                "reactive": t3 - t2,
                "predictive": t4 - t3,
                "blend": t5 - t4,
                "total": t5 - t_start,
            },
            t_ready=time.monotonic(),
            task=self.task,
            frame_numbers=tuple(f.frame_number for f in obs.frames),
        )

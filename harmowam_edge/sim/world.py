"""One shared MuJoCo world: the model, its data, one lock, and (optionally) the thread that steps it in real time.

Everything that touches `data` (plants, cameras, the scripted expert's ground-truth reads) holds `world.lock`.
The physics thread steps in small batches so sim time tracks host monotonic time; `host_time(t_sim)` maps a
sim time to the host clock, as a RealSense maps its device clock, and camera frames are stamped with it.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

import mujoco
import numpy as np

from harmowam_edge.bundle.schema import CameraSpec
from harmowam_edge.errors import ConfigError
from harmowam_edge.sim import arm as arm_desc
from harmowam_edge.sim import scene

log = logging.getLogger(__name__)

# The physics thread steps this often (host time); each batch catches sim time up to the host clock.
PHYSICS_TICK_S = 0.004
# Falling further behind than this (an overloaded machine) drops the debt instead of fast-forwarding.
MAX_LAG_S = 0.1
# host_time keeps this many origins (one per dropped debt), so a frame's sim time maps the same way later.
ORIGIN_HISTORY = 256


@dataclass(frozen=True)
class ArmIndex:
    """Where one arm lives in the MuJoCo arrays."""

    mount: scene.ArmMount
    qpos: np.ndarray  # 6 joint qpos addresses
    dof: np.ndarray  # 6 joint dof addresses
    ctrl: np.ndarray  # 6 joint actuator ids
    finger_qpos: np.ndarray  # 2
    finger_dof: np.ndarray  # 2
    finger_ctrl: np.ndarray  # 2
    tcp_site: int
    lower: np.ndarray
    upper: np.ndarray


@dataclass(frozen=True)
class PhysicsStats:
    sim_time: float
    steps: int
    wall_time: float  # host seconds since the physics thread started
    real_time_factor: float  # sim seconds per host second over the run (1.0 = keeping up)
    lag_resets: int  # times the thread fell more than MAX_LAG_S behind and dropped the debt
    step_time_ms: float  # mean cost of one mj_step


class SimWorld:
    """The scene compiled into MuJoCo, reset for a seed. `start()` runs physics in real time in a thread."""

    def __init__(
        self, arms: int = 1, cameras: Sequence[CameraSpec] = (), seed: int = 0, scene_name: str = "id"
    ) -> None:
        self.arms = arms
        self.scene = scene.check_scene(scene_name)
        self.objects = {o.name: o for o in scene.scene_objects(self.scene)}
        self.mounts = scene.arm_mounts(arms)
        self.camera_specs = tuple(cameras)
        self.xml = scene.scene_xml(arms, self.camera_specs, scene=self.scene)
        try:
            self.model = mujoco.MjModel.from_xml_string(self.xml)
        except ValueError as e:  # a bug in the scene generator, not a user mistake
            raise RuntimeError(f"the generated MJCF does not compile: {e}") from e
        self.data = mujoco.MjData(self.model)
        self.lock = threading.RLock()
        self.arm_index = tuple(self._index(m) for m in self.mounts)
        self.seed = seed
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        # host_time(t_sim) = origin + t_sim, piecewise: the physics thread moves the origin when it drops lag, and
        # `_origins` keeps (from sim time, origin) per piece so the past keeps its mapping (sorted by sim time).
        self._t_origin = time.monotonic()
        self._origins: list[tuple[float, float]] = [(0.0, self._t_origin)]
        self._t_started = 0.0
        self._steps = 0
        self._step_cost = 0.0
        self._lag_resets = 0
        self._error: BaseException | None = None
        self.reset(seed)

    # ----------------------------------------------------------------------------------------------------------
    # Layout

    def _id(self, kind: mujoco.mjtObj, name: str) -> int:
        i = mujoco.mj_name2id(self.model, kind, name)
        if i < 0:
            raise RuntimeError(f"scene has no {kind.name} named {name!r}")
        return int(i)

    def _index(self, mount: scene.ArmMount) -> ArmIndex:
        p = mount.prefix
        joints = [self._id(mujoco.mjtObj.mjOBJ_JOINT, p + j) for j in arm_desc.JOINT_NAMES]
        fingers = [self._id(mujoco.mjtObj.mjOBJ_JOINT, p + j) for j in arm_desc.FINGER_JOINTS]
        return ArmIndex(
            mount=mount,
            qpos=np.array([self.model.jnt_qposadr[j] for j in joints]),
            dof=np.array([self.model.jnt_dofadr[j] for j in joints]),
            ctrl=np.array([self._id(mujoco.mjtObj.mjOBJ_ACTUATOR, p + j) for j in arm_desc.JOINT_NAMES]),
            finger_qpos=np.array([self.model.jnt_qposadr[j] for j in fingers]),
            finger_dof=np.array([self.model.jnt_dofadr[j] for j in fingers]),
            finger_ctrl=np.array([self._id(mujoco.mjtObj.mjOBJ_ACTUATOR, p + j) for j in arm_desc.FINGER_JOINTS]),
            tcp_site=self._id(mujoco.mjtObj.mjOBJ_SITE, p + "tcp"),
            lower=np.array([self.model.jnt_range[j][0] for j in joints]),
            upper=np.array([self.model.jnt_range[j][1] for j in joints]),
        )

    def arm(self, which: int | str) -> ArmIndex:
        """An arm by action-space index or name ("arm", "left", "right")."""
        if isinstance(which, int):
            if not 0 <= which < len(self.arm_index):
                raise ConfigError(f"arm: expected an index in 0..{len(self.arm_index) - 1}, got {which}")
            return self.arm_index[which]
        for a in self.arm_index:
            if a.mount.name == which:
                return a
        raise ConfigError(f"arm: no arm {which!r} (have: {', '.join(a.mount.name for a in self.arm_index)})")

    # ----------------------------------------------------------------------------------------------------------
    # State

    def reset(self, seed: int | None = None, arm_poses: Sequence[tuple[np.ndarray, float]] | None = None) -> None:
        """Arms at home with the gripper open (or at `arm_poses`: joints and opening per arm), objects placed for
        the seed, at rest."""
        if arm_poses is not None and len(arm_poses) != len(self.arm_index):
            raise ConfigError(f"arm_poses: expected one per arm ({len(self.arm_index)}), got {len(arm_poses)}")
        with self.lock:
            if seed is not None:
                self.seed = seed
            mujoco.mj_resetData(self.model, self.data)
            for i, a in enumerate(self.arm_index):
                q, g = (arm_desc.HOME, arm_desc.HOME_GRIPPER) if arm_poses is None else arm_poses[i]
                self.data.qpos[a.qpos] = q
                self.data.ctrl[a.ctrl] = q
                self.data.qpos[a.finger_qpos] = g / 2
                self.data.ctrl[a.finger_ctrl] = g / 2
            objects, goal_pos = scene.place_scene(self.seed, self.arms, self.scene)
            for name, (pos, yaw) in objects.items():
                j = self._id(mujoco.mjtObj.mjOBJ_JOINT, name)
                adr = self.model.jnt_qposadr[j]
                self.data.qpos[adr : adr + 3] = pos
                self.data.qpos[adr + 3 : adr + 7] = [math.cos(yaw / 2), 0.0, 0.0, math.sin(yaw / 2)]
            goal = self.model.body_mocapid[self._id(mujoco.mjtObj.mjOBJ_BODY, "goal")]
            self.data.mocap_pos[goal] = goal_pos
            if self.scene != "id":  # id keeps the compiled colours (bit-identical renders across versions)
                self._apply(scene.appearance(self.seed, self.scene))
            mujoco.mj_forward(self.model, self.data)

    def _apply(self, look: scene.Appearance) -> None:
        """An episode's colours and light, written into the compiled model (renderers read them every frame)."""
        m = self.model
        m.mat_rgba[self._id(mujoco.mjtObj.mjOBJ_MATERIAL, "table")] = look.table_rgba
        m.mat_rgba[self._id(mujoco.mjtObj.mjOBJ_MATERIAL, "floor")] = look.floor_rgba
        wall = mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_GEOM, "wall")
        if wall >= 0:
            m.geom_rgba[wall] = look.wall_rgba
        m.light_diffuse[self._id(mujoco.mjtObj.mjOBJ_LIGHT, "key")] = look.light_diffuse
        m.vis.headlight.ambient[:] = look.ambient
        for name, rgba in look.object_rgba:
            m.geom_rgba[self._id(mujoco.mjtObj.mjOBJ_GEOM, name)] = rgba

    def object_spec(self, name: str) -> scene.SceneObject:
        """The shape of a scene object in this world's scene (shapes differ in `semantics`)."""
        try:
            return self.objects[name]
        except KeyError:
            raise ConfigError(f"object: no object {name!r} in the scene (have: {', '.join(self.objects)})") from None

    def step(self, n: int = 1) -> None:
        """Advance physics by n steps now (for callers that do not run the real-time thread)."""
        with self.lock:
            for _ in range(n):
                mujoco.mj_step(self.model, self.data)
            self._steps += n

    @property
    def sim_time(self) -> float:
        return float(self.data.time)

    def host_time(self, t_sim: float) -> float:
        """The host monotonic time at which the world was (or will be) at sim time `t_sim`.

        A function of `t_sim` alone: dropping physics debt moves the origin for sim times from then on, never
        for earlier ones (a frame stamped before the drop maps the same way after it).
        """
        origins = tuple(self._origins)  # a consistent copy: the physics thread appends under the lock
        for start, origin in reversed(origins):
            if t_sim >= start:
                return origin + t_sim
        return origins[0][1] + t_sim

    def _move_origin(self, origin: float) -> None:
        """Sim times after `data.time` map with `origin` (under the lock). Pieces that start at or after it are
        dropped: sim time went backwards (a reset), their timeline is gone.

        The new piece starts half a physics step *after* the current sim time: a camera may already have taken
        its snapshot at exactly `data.time` (no step ran since) and stamped the frame with the old mapping, which
        must keep holding for it. (Seen under load: a frame's stamp and its mapping 0.22 s apart, one lag reset.)
        """
        now_sim = float(self.data.time)
        while self._origins and self._origins[-1][0] >= now_sim:
            self._origins.pop()
        self._origins.append((now_sim + 0.5 * float(self.model.opt.timestep), origin))
        del self._origins[:-ORIGIN_HISTORY]
        self._t_origin = origin

    def object_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World position and quaternion (w, x, y, z) of a scene object (ground truth, for the expert and tests)."""
        self.object_spec(name)
        body = self._id(mujoco.mjtObj.mjOBJ_BODY, name)
        with self.lock:
            return self.data.xpos[body].copy(), self.data.xquat[body].copy()

    def goal_position(self) -> np.ndarray:
        """Centre of the target pad on the table (pick_and_place puts the object there)."""
        goal = self.model.body_mocapid[self._id(mujoco.mjtObj.mjOBJ_BODY, "goal")]
        with self.lock:
            return self.data.mocap_pos[goal].copy()

    def tcp_position(self, which: int | str = 0) -> np.ndarray:
        a = self.arm(which)
        with self.lock:
            return self.data.site_xpos[a.tcp_site].copy()

    def camera_pose(self, name: str) -> np.ndarray:
        """4x4 pose of a camera's optical frame in the world (x right, y down, z forward, as RealSense/OpenCV)."""
        cam = self._id(mujoco.mjtObj.mjOBJ_CAMERA, name)
        with self.lock:
            pose = np.eye(4)
            # MuJoCo cameras look along -z with y up; the optical frame flips y and z.
            pose[:3, :3] = self.data.cam_xmat[cam].reshape(3, 3) @ np.diag([1.0, -1.0, -1.0])
            pose[:3, 3] = self.data.cam_xpos[cam]
        return pose

    # ----------------------------------------------------------------------------------------------------------
    # The real-time physics thread

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        with self.lock:
            self._move_origin(time.monotonic() - float(self.data.time))
        self._t_started = time.monotonic()
        self._steps_at_start = self._steps
        self._sim_at_start = float(self.data.time)
        self._thread = threading.Thread(target=self._run, name="sim-physics", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def error(self) -> BaseException | None:
        """The exception that stopped the physics thread, if one did (MuJoCo warnings are not errors)."""
        return self._error

    def _run(self) -> None:
        dt = float(self.model.opt.timestep)
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                with self.lock:
                    target = now - self._t_origin
                    if target - self.data.time > MAX_LAG_S:
                        self._move_origin(self._t_origin + target - self.data.time - dt)
                        target = now - self._t_origin
                        self._lag_resets += 1
                    n = int((target - self.data.time) / dt)
                    t0 = time.perf_counter()
                    for _ in range(max(n, 0)):
                        mujoco.mj_step(self.model, self.data)
                    if n > 0:
                        self._step_cost += time.perf_counter() - t0
                        self._steps += n
                    wake = self._t_origin + self.data.time + PHYSICS_TICK_S
                self._stop.wait(max(0.0, wake - time.monotonic()))
        except BaseException as e:  # pragma: no cover - MuJoCo raising mid-run is a bug worth surfacing
            self._error = e
            log.exception("sim physics thread stopped")

    def stats(self) -> PhysicsStats:
        with self.lock:
            sim = float(self.data.time)
            steps = self._steps
        wall = time.monotonic() - self._t_started if self._t_started else 0.0
        run_steps = steps - getattr(self, "_steps_at_start", 0)
        sim_run = sim - getattr(self, "_sim_at_start", 0.0)
        return PhysicsStats(
            sim_time=sim,
            steps=steps,
            wall_time=wall,
            real_time_factor=sim_run / wall if wall > 0 else 0.0,
            lag_resets=self._lag_resets,
            step_time_ms=1e3 * self._step_cost / run_steps if run_steps else 0.0,
        )

    def __enter__(self) -> SimWorld:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

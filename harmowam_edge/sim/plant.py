"""The MuJoCo plant: one arm of the shared world behind a firmware simulator (firmware_bridge's `Plant`).

The firmware computes the limited reference; this plant hands it to the arm's position servos (with a velocity
feed-forward that cancels the servo damping's lag) and measures the joints the physics thread moves. Torque
off engages the brakes: the servos hold where the joints are and later commands are ignored until torque is on.
"""

from __future__ import annotations

import numpy as np

from firmware_bridge import PlantState
from harmowam_edge.sim import arm as arm_desc
from harmowam_edge.sim import scene
from harmowam_edge.sim.world import SimWorld

# A position servo's force is kp (ctrl - q) - kv qdot: at a steady velocity v it lags by kv v / kp. Commanding
# ctrl = q_ref + (kv / kp) v_ref removes that lag, as a drive's velocity feed-forward does.
VELOCITY_FEEDFORWARD = scene.JOINT_KV / scene.JOINT_KP


class MujocoPlant:
    """One arm (by action-space index or name) of a `SimWorld`. Thread-safe through the world's lock."""

    def __init__(self, world: SimWorld, which: int | str = 0) -> None:
        self._world = world
        self._arm = world.arm(which)
        self._torque = False
        self.commands = 0  # references received while torque was on (for tests and stats)

    @property
    def name(self) -> str:
        return self._arm.mount.name

    @property
    def torque_on(self) -> bool:
        return self._torque

    def measure(self) -> PlantState:
        a, d = self._arm, self._world.data
        with self._world.lock:
            q = d.qpos[a.qpos].copy()
            v = d.qvel[a.dof].copy()
            gripper = float(d.qpos[a.finger_qpos].sum())
            effort = d.actuator_force[a.ctrl].copy()
        return PlantState(positions=q, velocities=v, gripper=gripper, effort=effort)

    def command(self, positions: np.ndarray, velocities: np.ndarray, gripper: float) -> None:
        a, d = self._arm, self._world.data
        target = np.asarray(positions, dtype=np.float64) + VELOCITY_FEEDFORWARD * np.asarray(velocities, np.float64)
        finger = min(max(float(gripper) / 2.0, 0.0), arm_desc.FINGER_TRAVEL)
        with self._world.lock:
            if not self._torque:
                return
            d.ctrl[a.ctrl] = np.clip(target, a.lower, a.upper)
            d.ctrl[a.finger_ctrl] = finger
            self.commands += 1

    def set_torque(self, on: bool) -> None:
        a, d = self._arm, self._world.data
        with self._world.lock:
            if not on:
                # Brakes: hold the joints (and fingers) where they are now.
                d.ctrl[a.ctrl] = d.qpos[a.qpos]
                d.ctrl[a.finger_ctrl] = d.qpos[a.finger_qpos]
            self._torque = bool(on)

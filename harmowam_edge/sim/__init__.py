"""The simulated rig: a MuJoCo scene the runtime cannot tell from a real rig except by its name.

The reference arm(s) stand on a table with coloured objects; their joints are driven by the firmware simulator
of `firmware_bridge` over pseudo-terminals (through a MuJoCo plant), and RealSense-like cameras render RGB and
aligned z16 depth headless. Only the CLI imports this package, lazily: MuJoCo is imported at its top.
"""

from __future__ import annotations

import os
import sys

# MuJoCo picks its OpenGL backend when it is first imported: default to headless EGL where there is no display.
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

try:
    import mujoco  # noqa: F401
except ImportError as e:  # pragma: no cover - the sim extra is installed wherever these tests run
    from harmowam_edge.errors import MissingDependencyError

    raise MissingDependencyError("mujoco", "sim", "The simulated rig") from e

from harmowam_edge.sim.arm import HOME, HOME_GRIPPER, JOINT_NAMES, forward_kinematics
from harmowam_edge.sim.camera import RenderError, SceneRenderer, SimCamera, depth_to_z16
from harmowam_edge.sim.scene import (
    OBJECT_NAMES,
    Intrinsics,
    arm_mounts,
    d435_intrinsics,
    place_objects,
    scene_xml,
)
from harmowam_edge.sim.urdf import urdf_xml, write_urdf
from harmowam_edge.sim.world import PhysicsStats, SimWorld

__all__ = [
    "HOME",
    "HOME_GRIPPER",
    "JOINT_NAMES",
    "OBJECT_NAMES",
    "Intrinsics",
    "PhysicsStats",
    "RenderError",
    "SceneRenderer",
    "SimCamera",
    "SimWorld",
    "arm_mounts",
    "d435_intrinsics",
    "depth_to_z16",
    "forward_kinematics",
    "place_objects",
    "scene_xml",
    "urdf_xml",
    "write_urdf",
]

"""The simulated rig: a MuJoCo scene the runtime cannot tell from a real rig except by its name.

The reference arm(s) stand on a table with coloured objects; their joints are driven by the firmware simulator
of `firmware_bridge` over pseudo-terminals (through a MuJoCo plant), and RealSense-like cameras render RGB and
aligned z16 depth headless. Only the CLI imports this package, lazily: MuJoCo is imported at its top.

    with open_sim_rig(arms=1, cameras=[CameraSpec("front", 640, 480, 30, ("color", "depth"))], seed=0) as rig:
        rig.arm_ports   # open each with firmware_bridge.ArmLink.open(port, arm=rig.arm_addresses[i])
        rig.cameras     # CameraSource per spec, already started
"""

from __future__ import annotations

import os
import sys

# MuJoCo picks its OpenGL backend when it is first imported: default to headless EGL where there is no display.
if sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
    os.environ.setdefault("MUJOCO_GL", "egl")
    os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
# Mesa's software rasteriser (llvmpipe, where there is no GPU) would take every core for each frame and starve
# the control loop; one thread renders a 640x480 frame in a few milliseconds.
os.environ.setdefault("LP_NUM_THREADS", "1")

try:
    import mujoco  # noqa: F401
except ImportError as e:  # pragma: no cover - the sim extra is installed wherever these tests run
    from harmowam_edge.errors import MissingDependencyError

    raise MissingDependencyError("mujoco", "sim", "The simulated rig") from e

from harmowam_edge.sim.arm import HOME, HOME_GRIPPER, JOINT_NAMES, forward_kinematics
from harmowam_edge.sim.camera import RenderError, SceneRenderer, SimCamera, depth_to_z16
from harmowam_edge.sim.demos import collect_demos, read_dataset, read_episode, read_setpoints
from harmowam_edge.sim.evaluation import EvalConfig, run_evaluation
from harmowam_edge.sim.expert import EpisodeResult, ScriptedExpert, Task, parse_task
from harmowam_edge.sim.plant import MujocoPlant
from harmowam_edge.sim.rig import DEFAULT_CAMERA, RIG_NAME, SimRig, firmware_config, open_sim_rig
from harmowam_edge.sim.scene import OBJECT_NAMES, SCENES, Intrinsics, d435_intrinsics, place_objects, scene_xml
from harmowam_edge.sim.tasks import PHASE_NAMES, TASK_NAMES
from harmowam_edge.sim.urdf import urdf_xml, write_urdf
from harmowam_edge.sim.video import Overlay, VideoRecorder
from harmowam_edge.sim.world import PhysicsStats, SimWorld

__all__ = [
    "DEFAULT_CAMERA",
    "HOME",
    "HOME_GRIPPER",
    "JOINT_NAMES",
    "OBJECT_NAMES",
    "PHASE_NAMES",
    "RIG_NAME",
    "SCENES",
    "TASK_NAMES",
    "EpisodeResult",
    "EvalConfig",
    "Intrinsics",
    "MujocoPlant",
    "Overlay",
    "PhysicsStats",
    "RenderError",
    "SceneRenderer",
    "ScriptedExpert",
    "SimCamera",
    "SimRig",
    "SimWorld",
    "Task",
    "VideoRecorder",
    "collect_demos",
    "d435_intrinsics",
    "depth_to_z16",
    "firmware_config",
    "forward_kinematics",
    "open_sim_rig",
    "parse_task",
    "place_objects",
    "read_dataset",
    "read_episode",
    "read_setpoints",
    "run_evaluation",
    "scene_xml",
    "urdf_xml",
    "write_urdf",
]

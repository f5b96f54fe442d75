"""The reference arm as data: one description that both the MJCF scene and the URDF are generated from.

Six revolute joints (limits from `schema.REFERENCE_ARM_JOINTS`) and a parallel gripper whose opening is
0..0.08 m (two fingers on slide joints, each 0..0.04 m). Every link frame is a pure translation of its parent's
at the zero pose (the arm stands straight up), so MJCF bodies and URDF joint origins carry no rotation and the
two files cannot disagree about orientation conventions. Pure data and numpy, no MuJoCo.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from harmowam_edge.bundle.schema import REFERENCE_ARM_JOINTS, REFERENCE_GRIPPER, ArmSpec, reference_arm

Vec3 = tuple[float, float, float]

# Colours (RGBA) of the arm's primitives.
LINK_RGBA = (0.78, 0.80, 0.84, 1.0)
JOINT_RGBA = (0.95, 0.55, 0.15, 1.0)
GRIPPER_RGBA = (0.20, 0.22, 0.25, 1.0)


@dataclass(frozen=True)
class Geom:
    """A primitive: capsule/cylinder from `a` to `b` (radius `size[0]`), or a box centred at `a` (half sizes)."""

    kind: str  # "capsule", "cylinder", "box"
    size: tuple[float, ...]
    a: Vec3
    b: Vec3 = (0.0, 0.0, 0.0)
    rgba: tuple[float, float, float, float] = LINK_RGBA
    collide: bool = True
    friction: float = 1.0


@dataclass(frozen=True)
class Link:
    """A body: its frame sits at `offset` in its parent's frame; `joint` moves it about/along `axis`."""

    name: str
    parent: str | None
    offset: Vec3
    joint: str | None = None
    joint_kind: str = "revolute"  # "revolute" or "prismatic"
    axis: Vec3 = (0.0, 0.0, 1.0)
    lower: float = 0.0
    upper: float = 0.0
    mass: float = 0.5
    com: Vec3 = (0.0, 0.0, 0.0)
    inertia: Vec3 = (1e-3, 1e-3, 1e-3)  # principal moments about the COM, along the link axes
    geoms: tuple[Geom, ...] = ()
    armature: float = 0.05
    damping: float = 0.5


def _rod_inertia(mass: float, radius: float, length: float) -> Vec3:
    """A solid cylinder along z: the honest inertia of a capsule-shaped link, good enough for a simulator."""
    ixx = mass * (3 * radius**2 + length**2) / 12.0
    izz = mass * radius**2 / 2.0
    return (ixx, ixx, izz)


def _rod_link(
    name: str, parent: str, offset: Vec3, joint: str, axis: Vec3, length: float, radius: float, mass: float
) -> Link:
    lo, hi = _JOINT_LIMITS[joint]
    return Link(
        name=name,
        parent=parent,
        offset=offset,
        joint=joint,
        axis=axis,
        lower=lo,
        upper=hi,
        mass=mass,
        com=(0.0, 0.0, length / 2),
        inertia=_rod_inertia(mass, radius, length),
        geoms=(
            Geom("capsule", (radius,), (0.0, 0.0, 0.0), (0.0, 0.0, length)),
            Geom("cylinder", (radius * 1.15,), (0.0, -radius * 1.1, 0.0), (0.0, radius * 1.1, 0.0), JOINT_RGBA, False)
            if axis[1]
            else Geom("cylinder", (radius * 1.15,), (0.0, 0.0, -0.01), (0.0, 0.0, 0.01), JOINT_RGBA, False),
        ),
    )


_JOINT_LIMITS = {name: (lo, hi) for name, lo, hi in REFERENCE_ARM_JOINTS}
JOINT_NAMES = tuple(name for name, _, _ in REFERENCE_ARM_JOINTS)
GRIPPER_MIN, GRIPPER_MAX = REFERENCE_GRIPPER[0], REFERENCE_GRIPPER[1]
FINGER_TRAVEL = GRIPPER_MAX / 2  # each finger moves half the opening

# Segment lengths (m). Shoulder height 0.2, upper arm 0.3, forearm 0.25 (roll joint part way), wrist 0.07,
# flange + palm 0.05, fingertips 0.06 further: about 0.7 m of reach from the shoulder.
BASE_HEIGHT = 0.10
SHOULDER_HEIGHT = 0.10
UPPER_ARM = 0.30
FOREARM_1 = 0.12
FOREARM_2 = 0.13
WRIST = 0.07
FLANGE = 0.02
PALM = 0.03
FINGER_LENGTH = 0.05
TCP_OFFSET = PALM + 0.035  # tool centre point: between the finger pads, from the palm frame

# Fingers: pads of 2 x 1.2 x 5 cm; the inner face of each sits at +-opening/2 from the palm's centre plane.
FINGER_HALF = (0.010, 0.006, FINGER_LENGTH / 2)

ARM_LINKS: tuple[Link, ...] = (
    Link(
        name="base",
        parent=None,
        offset=(0.0, 0.0, 0.0),
        mass=4.0,
        com=(0.0, 0.0, BASE_HEIGHT / 2),
        inertia=_rod_inertia(4.0, 0.08, BASE_HEIGHT),
        geoms=(Geom("cylinder", (0.08,), (0.0, 0.0, 0.0), (0.0, 0.0, BASE_HEIGHT), rgba=GRIPPER_RGBA),),
    ),
    Link(
        name="link_1",
        parent="base",
        offset=(0.0, 0.0, BASE_HEIGHT),
        joint="joint_1",
        axis=(0.0, 0.0, 1.0),
        lower=_JOINT_LIMITS["joint_1"][0],
        upper=_JOINT_LIMITS["joint_1"][1],
        mass=2.0,
        com=(0.0, 0.0, SHOULDER_HEIGHT / 2),
        inertia=_rod_inertia(2.0, 0.06, SHOULDER_HEIGHT),
        geoms=(
            Geom("cylinder", (0.06,), (0.0, 0.0, 0.0), (0.0, 0.0, SHOULDER_HEIGHT)),
            Geom("cylinder", (0.065,), (0.0, -0.06, SHOULDER_HEIGHT), (0.0, 0.06, SHOULDER_HEIGHT), JOINT_RGBA, False),
        ),
    ),
    _rod_link("link_2", "link_1", (0.0, 0.0, SHOULDER_HEIGHT), "joint_2", (0.0, 1.0, 0.0), UPPER_ARM, 0.045, 2.0),
    _rod_link("link_3", "link_2", (0.0, 0.0, UPPER_ARM), "joint_3", (0.0, 1.0, 0.0), FOREARM_1, 0.04, 1.0),
    _rod_link("link_4", "link_3", (0.0, 0.0, FOREARM_1), "joint_4", (0.0, 0.0, 1.0), FOREARM_2, 0.035, 0.8),
    _rod_link("link_5", "link_4", (0.0, 0.0, FOREARM_2), "joint_5", (0.0, 1.0, 0.0), WRIST, 0.03, 0.5),
    Link(
        name="link_6",
        parent="link_5",
        offset=(0.0, 0.0, WRIST),
        joint="joint_6",
        axis=(0.0, 0.0, 1.0),
        lower=_JOINT_LIMITS["joint_6"][0],
        upper=_JOINT_LIMITS["joint_6"][1],
        mass=0.2,
        com=(0.0, 0.0, FLANGE / 2),
        inertia=_rod_inertia(0.2, 0.03, FLANGE),
        geoms=(Geom("cylinder", (0.032,), (0.0, 0.0, 0.0), (0.0, 0.0, FLANGE), JOINT_RGBA),),
    ),
    Link(
        name="palm",
        parent="link_6",
        offset=(0.0, 0.0, FLANGE),
        mass=0.3,
        com=(0.0, 0.0, PALM / 2),
        inertia=(4e-4, 1e-4, 4e-4),
        geoms=(Geom("box", (0.022, 0.058, PALM / 2), (0.0, 0.0, PALM / 2), rgba=GRIPPER_RGBA),),
    ),
    # Finger frames sit on the palm's centre plane; their slide coordinate is the inner face's distance from it.
    Link(
        name="finger_left",
        parent="palm",
        offset=(0.0, 0.0, PALM),
        joint="finger_left",
        joint_kind="prismatic",
        axis=(0.0, 1.0, 0.0),
        lower=0.0,
        upper=FINGER_TRAVEL,
        mass=0.05,
        com=(0.0, FINGER_HALF[1], FINGER_HALF[2]),
        inertia=(1.2e-5, 1.2e-5, 2e-6),
        geoms=(Geom("box", FINGER_HALF, (0.0, FINGER_HALF[1], FINGER_HALF[2]), rgba=GRIPPER_RGBA, friction=1.5),),
        armature=0.01,
        damping=2.0,
    ),
    Link(
        name="finger_right",
        parent="palm",
        offset=(0.0, 0.0, PALM),
        joint="finger_right",
        joint_kind="prismatic",
        axis=(0.0, -1.0, 0.0),
        lower=0.0,
        upper=FINGER_TRAVEL,
        mass=0.05,
        com=(0.0, -FINGER_HALF[1], FINGER_HALF[2]),
        inertia=(1.2e-5, 1.2e-5, 2e-6),
        geoms=(Geom("box", FINGER_HALF, (0.0, -FINGER_HALF[1], FINGER_HALF[2]), rgba=GRIPPER_RGBA, friction=1.5),),
        armature=0.01,
        damping=2.0,
    ),
)

TCP_LINK = "palm"
TCP_POS: Vec3 = (0.0, 0.0, TCP_OFFSET)
FINGER_JOINTS = ("finger_left", "finger_right")

# A pose above the table with the gripper pointing down and open: where the rig starts and the expert returns.
# joint_2 + joint_3 + joint_5 = pi points the tool straight down.
HOME: tuple[float, ...] = (0.0, 0.25, 1.65, 0.0, math.pi - 0.25 - 1.65, 0.0)
HOME_GRIPPER = GRIPPER_MAX


def arm_spec(name: str = "arm", prefix: str = "") -> ArmSpec:
    """The action-space description this arm implements (the same object `export init` uses)."""
    return reference_arm(name, prefix)


# --------------------------------------------------------------------------------------------------------------
# Forward kinematics straight from the description (used to check the generated files and by the expert).


def rotation(axis: Vec3, angle: float) -> np.ndarray:
    """Rotation matrix about a unit axis (Rodrigues)."""
    a = np.asarray(axis, dtype=float)
    a = a / np.linalg.norm(a)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + math.sin(angle) * k + (1.0 - math.cos(angle)) * (k @ k)


def forward_kinematics(q: np.ndarray | list[float], opening: float = GRIPPER_MAX) -> dict[str, np.ndarray]:
    """4x4 pose of every link frame (and "tcp") in the arm's base frame, for joints `q` (6) and a gripper opening."""
    q = np.asarray(q, dtype=float)
    if q.shape != (len(JOINT_NAMES),):
        raise ValueError(f"q: expected {len(JOINT_NAMES)} joint positions, got shape {q.shape}")
    values = dict(zip(JOINT_NAMES, q.tolist(), strict=True))
    values.update(dict.fromkeys(FINGER_JOINTS, opening / 2))
    poses: dict[str, np.ndarray] = {}
    for link in ARM_LINKS:
        parent = np.eye(4) if link.parent is None else poses[link.parent]
        local = np.eye(4)
        local[:3, 3] = link.offset
        if link.joint is not None:
            motion = np.eye(4)
            if link.joint_kind == "revolute":
                motion[:3, :3] = rotation(link.axis, values[link.joint])
            else:
                motion[:3, 3] = np.asarray(link.axis) * values[link.joint]
            local = local @ motion
        poses[link.name] = parent @ local
    tcp = np.eye(4)
    tcp[:3, 3] = TCP_POS
    poses["tcp"] = poses[TCP_LINK] @ tcp
    return poses

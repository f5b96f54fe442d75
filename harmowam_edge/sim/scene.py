"""The simulated rig's scene as MJCF: the reference arm(s), a table, coloured objects and RealSense-like cameras.

Generated from `arm.ARM_LINKS` (the same description the URDF comes from). Pure string building, no MuJoCo:
`SimWorld` compiles it. Object placement is not in the XML; it comes from the seed (`place_objects`), so one
scene file serves every episode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from harmowam_edge.bundle.schema import CameraSpec
from harmowam_edge.errors import ConfigError
from harmowam_edge.sim import arm as arm_desc

# --------------------------------------------------------------------------------------------------------------
# Arms


@dataclass(frozen=True)
class ArmMount:
    """Where an arm stands on the table. `prefix` keeps MuJoCo names unique (joint `left_joint_1`)."""

    name: str  # the ArmSpec name: "arm", "left", "right"
    prefix: str  # "" or "left_" / "right_"
    pos: tuple[float, float, float]

    def joint_names(self) -> tuple[str, ...]:
        return tuple(self.prefix + j for j in arm_desc.JOINT_NAMES)


def arm_mounts(arms: int) -> tuple[ArmMount, ...]:
    """One arm at the origin facing +x, or two ("left" at +y, "right" at -y) in action-space order."""
    if arms == 1:
        return (ArmMount("arm", "", (0.0, 0.0, 0.0)),)
    if arms == 2:
        return (ArmMount("left", "left_", (0.0, 0.32, 0.0)), ArmMount("right", "right_", (0.0, -0.32, 0.0)))
    raise ConfigError(f"arms: expected 1 or 2, got {arms}")


# --------------------------------------------------------------------------------------------------------------
# Objects


@dataclass(frozen=True)
class SceneObject:
    name: str
    kind: str  # "box" or "cylinder"
    size: tuple[float, ...]  # MuJoCo half sizes (box: 3; cylinder: radius, half height)
    rgba: tuple[float, float, float, float]
    mass: float = 0.05

    @property
    def half_height(self) -> float:
        return self.size[2] if self.kind == "box" else self.size[1]

    @property
    def footprint(self) -> float:
        """Radius of the circle the object covers on the table (for non-overlapping placement)."""
        return math.hypot(self.size[0], self.size[1]) if self.kind == "box" else self.size[0]


OBJECTS: tuple[SceneObject, ...] = (
    SceneObject("red_cube", "box", (0.02, 0.02, 0.02), (0.85, 0.12, 0.10, 1.0)),
    SceneObject("green_cube", "box", (0.02, 0.02, 0.02), (0.15, 0.70, 0.20, 1.0)),
    SceneObject("blue_cube", "box", (0.02, 0.02, 0.02), (0.12, 0.30, 0.85, 1.0)),
    SceneObject("yellow_cylinder", "cylinder", (0.02, 0.03), (0.95, 0.80, 0.10, 1.0)),
)
OBJECT_NAMES = tuple(o.name for o in OBJECTS)


def object_by_name(name: str, scene: str = "id") -> SceneObject:
    for o in scene_objects(scene):
        if o.name == name:
            return o
    raise ConfigError(f"object: no object {name!r} in the scene (have: {', '.join(OBJECT_NAMES)})")


# --------------------------------------------------------------------------------------------------------------
# Scenes: the training distribution and the paper's three unseen environments.

SCENES = ("id", "background", "position", "semantics")

# `semantics`: the same four targets by name (a bundle's task table knows only these), each in a shape it never
# has in training (cubes become cylinders or a bar, the cylinder a tall box), in a seeded shade never used.
SEMANTIC_OBJECTS: tuple[SceneObject, ...] = (
    SceneObject("red_cube", "cylinder", (0.02, 0.025), OBJECTS[0].rgba),
    SceneObject("green_cube", "box", (0.028, 0.016, 0.02), OBJECTS[1].rgba),
    SceneObject("blue_cube", "cylinder", (0.018, 0.022), OBJECTS[2].rgba),
    SceneObject("yellow_cylinder", "box", (0.019, 0.019, 0.03), OBJECTS[3].rgba),
)


def check_scene(name: str) -> str:
    """A scene name, or a ConfigError naming the choices."""
    if name not in SCENES:
        raise ConfigError(f"--scene {name!r}: expected one of {', '.join(SCENES)}")
    return name


def scene_objects(scene: str = "id") -> tuple[SceneObject, ...]:
    """The objects on the table in a scene (same names in every scene; shapes differ in `semantics`)."""
    return SEMANTIC_OBJECTS if check_scene(scene) == "semantics" else OBJECTS


@dataclass(frozen=True)
class Appearance:
    """Colours and light of one episode (applied to the compiled model at reset; the layout is separate)."""

    table_rgba: tuple[float, float, float, float] = (0.62, 0.50, 0.38, 1.0)
    floor_rgba: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)  # tints the floor's checker texture
    wall_rgba: tuple[float, float, float, float] = (0.80, 0.80, 0.78, 1.0)  # only the background scene has a wall
    light_diffuse: tuple[float, float, float] = (0.6, 0.6, 0.6)
    ambient: tuple[float, float, float] = (0.35, 0.35, 0.35)
    object_rgba: tuple[tuple[str, tuple[float, float, float, float]], ...] = ()  # overrides, by object name


def _hsv_to_rgb(h: float, s: float, v: float) -> tuple[float, float, float]:
    i = int(h * 6.0) % 6
    f = h * 6.0 - int(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    return [(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]


def _rgb_to_hsv(r: float, g: float, b: float) -> tuple[float, float, float]:
    mx, mn = max(r, g, b), min(r, g, b)
    d = mx - mn
    if d == 0:
        h = 0.0
    elif mx == r:
        h = ((g - b) / d) % 6 / 6
    elif mx == g:
        h = ((b - r) / d + 2) / 6
    else:
        h = ((r - g) / d + 4) / 6
    return h, 0.0 if mx == 0 else d / mx, mx


def appearance(seed: int, scene: str = "id") -> Appearance:
    """An episode's colours: fixed in `id` and `position`; seeded table, floor, wall and light in `background`;
    seeded unseen shades of each object's colour in `semantics`."""
    check_scene(scene)
    rng = np.random.default_rng([seed, 91])
    if scene == "background":

        def colour(s_range: tuple[float, float], v_range: tuple[float, float]) -> tuple[float, float, float, float]:
            r, g, b = _hsv_to_rgb(float(rng.uniform()), float(rng.uniform(*s_range)), float(rng.uniform(*v_range)))
            return (r, g, b, 1.0)

        light = float(rng.uniform(0.3, 0.9))
        amb = float(rng.uniform(0.15, 0.5))
        return Appearance(
            table_rgba=colour((0.1, 0.6), (0.3, 0.95)),
            floor_rgba=colour((0.0, 0.7), (0.3, 1.0)),
            wall_rgba=colour((0.0, 0.6), (0.3, 1.0)),
            light_diffuse=(light, light * float(rng.uniform(0.85, 1.0)), light * float(rng.uniform(0.75, 1.0))),
            ambient=(amb, amb, amb),
        )
    if scene == "semantics":
        shades = []
        for obj in SEMANTIC_OBJECTS:
            h, s_, v = _rgb_to_hsv(*obj.rgba[:3])
            # Away from the training shade on hue (but within its colour family), and darker or paler.
            dh = float(rng.choice([-1.0, 1.0]) * rng.uniform(0.025, 0.05))
            r, g, b = _hsv_to_rgb((h + dh) % 1.0, float(np.clip(s_ * rng.uniform(0.55, 0.8), 0, 1)), v * 0.8)
            shades.append((obj.name, (r, g, b, 1.0)))
        return Appearance(object_rgba=tuple(shades))
    return Appearance()


TABLE_TOP_Z = 0.0  # the world origin is on the table top, under the (single) arm's base
TABLE_HALF = (0.6, 0.75, 0.02)
TABLE_CENTER_X = 0.3
TABLE_HEIGHT = 0.75


def workspace(arms: int) -> tuple[tuple[float, float], tuple[float, float]]:
    """The (x range, y range) objects are drawn from; `reachable` then keeps what a top-down grasp can reach."""
    if arms == 1:
        return (0.28, 0.50), (-0.22, 0.22)
    return (0.25, 0.45), (-0.30, 0.30)


# A top-down grasp (and the lift 15 cm above it) reaches this far from an arm's base, with margin before the
# arm is stretched straight (upper arm + forearm 0.55 m, the wrist 0.155 m above the tool centre point).
REACH_MIN, REACH_MAX = 0.26, 0.48


def reachable(xy: np.ndarray, arms: int, every_arm: bool = False) -> bool:
    """Whether the nearest arm (or, with `every_arm`, each arm) can reach a point on the table top-down."""
    d = [float(np.linalg.norm(xy - np.asarray(m.pos[:2]))) for m in arm_mounts(arms)]
    ok = [REACH_MIN <= x <= REACH_MAX for x in d]
    return all(ok) if every_arm else ok[int(np.argmin(d))]


GOAL_RADIUS = 0.04  # the flat target pad for pick_and_place
GOAL_CLEARANCE = 0.04  # m between the pad's rim and any object


def _goal_region(arms: int) -> tuple[tuple[float, float], tuple[float, float]]:
    # Two arms: the pad lies between them, where either arm can set down what it picked.
    return workspace(arms) if arms == 1 else ((0.22, 0.36), (-0.05, 0.05))


# `position`: objects (and, with one arm, the pad) are drawn from this box but outside the training workspace
# (by at least OUTSIDE_MARGIN), still within top-down reach: placements the training data never shows.
POSITION_BOX = ((0.05, 0.62), (-0.5, 0.5))
OUTSIDE_MARGIN = 0.02


def _outside_training(xy: np.ndarray, arms: int) -> bool:
    (x0, x1), (y0, y1) = workspace(arms)
    m = OUTSIDE_MARGIN
    return not (x0 - m <= xy[0] <= x1 + m and y0 - m <= xy[1] <= y1 + m)


def place_scene(seed: int, arms: int = 1, scene: str = "id") -> tuple[dict[str, tuple[np.ndarray, float]], np.ndarray]:
    """Deterministic layout for a seed: objects (name -> (xyz of the centre, yaw)) and the goal pad's centre.

    Every object and the pad are within top-down reach (the pad of every arm); no two objects touch, and none
    lies on the pad. One arm: objects first (the pad from a stream of its own, clear of them); two arms: the pad
    first, in its small shared region, then the objects around it. `position` draws outside the training
    workspace (the two-arm pad stays in its shared region: nowhere else can both arms reach); `background` shares
    `id`'s layouts exactly (a seed's episode differs only in colours and light); `semantics` draws from the same
    stream with its own objects' footprints.
    """
    objects = scene_objects(scene)
    spec = {o.name: o for o in objects}
    outside = scene == "position"
    rng = np.random.default_rng(seed)
    goal_rng = np.random.default_rng([seed, 1])

    def draw_goal(placed: dict[str, tuple[np.ndarray, float]]) -> np.ndarray:
        (x0, x1), (y0, y1) = POSITION_BOX if outside and arms == 1 else _goal_region(arms)
        for _ in range(5000):
            xy = np.array([goal_rng.uniform(x0, x1), goal_rng.uniform(y0, y1)])
            if (
                reachable(xy, arms, every_arm=True)
                and (not outside or arms == 2 or _outside_training(xy, arms))
                and all(
                    np.linalg.norm(xy - p[:2]) > GOAL_RADIUS + spec[n].footprint + GOAL_CLEARANCE
                    for n, (p, _) in placed.items()
                )
            ):
                return np.array([xy[0], xy[1], TABLE_TOP_Z])
        raise RuntimeError(f"could not place the goal for seed {seed}")  # pragma: no cover

    goal = draw_goal({}) if arms == 2 else None
    (x0, x1), (y0, y1) = POSITION_BOX if outside else workspace(arms)
    placed: dict[str, tuple[np.ndarray, float]] = {}
    for obj in objects:
        for _ in range(5000):
            xy = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
            clear = all(
                np.linalg.norm(xy - p[:2]) > obj.footprint + spec[n].footprint + 0.05 for n, (p, _) in placed.items()
            )
            off_pad = goal is None or np.linalg.norm(xy - goal[:2]) > GOAL_RADIUS + obj.footprint + GOAL_CLEARANCE
            if clear and off_pad and reachable(xy, arms) and (not outside or _outside_training(xy, arms)):
                break
        else:  # pragma: no cover - the workspace holds four small objects easily
            raise RuntimeError(f"could not place {obj.name} for seed {seed}")
        yaw = float(rng.uniform(-math.pi / 4, math.pi / 4))
        placed[obj.name] = (np.array([xy[0], xy[1], TABLE_TOP_Z + obj.half_height]), yaw)
    if goal is None:
        goal = draw_goal(placed)
    return placed, goal


def place_objects(seed: int, arms: int = 1, scene: str = "id") -> dict[str, tuple[np.ndarray, float]]:
    """Object placement for a seed: name -> (xyz of the centre, yaw)."""
    return place_scene(seed, arms, scene)[0]


def place_goal(seed: int, arms: int = 1, scene: str = "id") -> np.ndarray:
    """The goal pad's centre on the table for a seed."""
    return place_scene(seed, arms, scene)[1]


# --------------------------------------------------------------------------------------------------------------
# Cameras: placed and shaped like an Intel RealSense D435's colour stream.

D435_FY_AT_480 = 615.0  # colour focal length in pixels at 640x480 (fx ~= fy; principal point ~ the centre)


@dataclass(frozen=True)
class Intrinsics:
    width: int
    height: int
    fx: float
    fy: float
    cx: float
    cy: float

    @property
    def fovy_deg(self) -> float:
        """MuJoCo's vertical field of view for this focal length (MuJoCo cameras have square pixels, fx = fy)."""
        return math.degrees(2.0 * math.atan(self.height / (2.0 * self.fy)))

    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])


def d435_intrinsics(width: int, height: int) -> Intrinsics:
    """D435 colour intrinsics at a resolution: fy scales with the height (615 px at 480 rows), centred."""
    fy = D435_FY_AT_480 * height / 480.0
    # MuJoCo renders with the principal point at the image centre: (W-1)/2 in pixel-centre coordinates.
    return Intrinsics(width, height, fy, fy, (width - 1) / 2.0, (height - 1) / 2.0)


@dataclass(frozen=True)
class CameraMount:
    """A fixed camera looking from `pos` at `lookat`, or (with `body`) one mounted on an arm's palm."""

    name: str
    pos: tuple[float, float, float]
    lookat: tuple[float, float, float] = (0.0, 0.0, 0.0)
    body: str | None = None  # palm body name for a wrist camera
    xyaxes: tuple[float, ...] | None = None


# Fixed mounts in order of preference; a CameraSpec named like one of these gets it, others take them in order.
FIXED_MOUNTS = {
    "front": ((1.25, 0.0, 0.70), (0.30, 0.0, 0.20)),
    "side": ((0.35, -1.05, 0.60), (0.30, 0.0, 0.18)),
    "top": ((0.45, 0.0, 1.25), (0.38, 0.0, 0.0)),
    "left_side": ((0.35, 1.05, 0.60), (0.30, 0.0, 0.18)),
}
# Wrist camera: on the palm, beside the fingers, tilted in towards the tool axis so that the fingertips and
# whatever is between them stay in view down to the grasp (looking straight along the axis, the camera lost the
# object in the last ~10 cm of a descent, where the aim matters most). Its optical axis crosses the tool axis
# WRIST_CAMERA_AIM beyond the palm frame, just past the fingertips.
WRIST_CAMERA_POS = (0.055, 0.0, 0.0)
WRIST_CAMERA_AIM = 0.095
_TILT = math.atan2(WRIST_CAMERA_POS[0], WRIST_CAMERA_AIM)
# Camera x = palm y; camera y (image up) turned from palm x by the tilt, so camera -z (its view) leans to -x.
WRIST_CAMERA_XYAXES = (0.0, 1.0, 0.0, math.cos(_TILT), 0.0, math.sin(_TILT))


def camera_mounts(cameras: Sequence[CameraSpec], arms: int) -> tuple[CameraMount, ...]:
    """A mount for each camera: by name (`front`, `side`, `top`, `wrist`, `<arm>_wrist`), else in order."""
    mounts: list[CameraMount] = []
    free = [n for n in FIXED_MOUNTS if n not in {c.name for c in cameras}]
    arm_prefixes = {m.name: m.prefix for m in arm_mounts(arms)}
    for cam in cameras:
        if cam.name in FIXED_MOUNTS:
            pos, lookat = FIXED_MOUNTS[cam.name]
            mounts.append(CameraMount(cam.name, pos, lookat))
        elif cam.name == "wrist" or cam.name.endswith("_wrist"):
            arm_name = "arm" if cam.name == "wrist" else cam.name[: -len("_wrist")]
            if arm_name not in arm_prefixes:
                raise ConfigError(
                    f"cameras: {cam.name!r}: no arm {arm_name!r} on a {arms}-arm rig "
                    f"(wrist cameras: {', '.join(n + '_wrist' if n != 'arm' else 'wrist' for n in arm_prefixes)})"
                )
            body = arm_prefixes[arm_name] + arm_desc.TCP_LINK
            mounts.append(CameraMount(cam.name, WRIST_CAMERA_POS, body=body, xyaxes=WRIST_CAMERA_XYAXES))
        else:
            if not free:
                raise ConfigError(f"cameras: no mount left for {cam.name!r} (at most {len(FIXED_MOUNTS)} fixed)")
            pos, lookat = FIXED_MOUNTS[free.pop(0)]
            mounts.append(CameraMount(cam.name, pos, lookat))
    return tuple(mounts)


def look_at_xyaxes(pos: Sequence[float], lookat: Sequence[float]) -> tuple[float, ...]:
    """MuJoCo camera axes (x right, y up, looking along -z) for a camera at `pos` aimed at `lookat`."""
    f = np.asarray(lookat, float) - np.asarray(pos, float)
    f /= np.linalg.norm(f)
    x = np.cross(f, [0.0, 0.0, 1.0])
    if np.linalg.norm(x) < 1e-6:  # looking straight down: image x along world -y, up along +x
        x = np.array([0.0, -1.0, 0.0])
    x /= np.linalg.norm(x)
    y = np.cross(x, f)
    return (*x.tolist(), *y.tolist())


# --------------------------------------------------------------------------------------------------------------
# MJCF


def _f(values: Sequence[float]) -> str:
    return " ".join(f"{v:.6g}" for v in values)


def _geom_xml(g: arm_desc.Geom, name: str) -> str:
    # Arm geoms collide with the world and objects (contype 2 vs conaffinity 1) but not with each other.
    contact = 'contype="2" conaffinity="1"' if g.collide else 'contype="0" conaffinity="0"'
    friction = f'friction="{g.friction:g} 0.02 0.001" condim="4"' if g.friction != 1.0 else ""
    if g.kind == "box":
        return (
            f'<geom name="{name}" type="box" size="{_f(g.size)}" pos="{_f(g.a)}" rgba="{_f(g.rgba)}" '
            f'{contact} {friction} group="1"/>'
        )
    return (
        f'<geom name="{name}" type="{g.kind}" size="{_f(g.size)}" fromto="{_f(g.a)} {_f(g.b)}" '
        f'rgba="{_f(g.rgba)}" {contact} {friction} group="1"/>'
    )


def _arm_xml(mount: ArmMount, wrist_cameras: Sequence[CameraMount], indent: str) -> str:
    p = mount.prefix
    children: dict[str | None, list[arm_desc.Link]] = {}
    for link in arm_desc.ARM_LINKS:
        children.setdefault(link.parent, []).append(link)

    def body(link: arm_desc.Link, depth: int) -> list[str]:
        pad = indent + "  " * depth
        pos = tuple(a + b for a, b in zip(link.offset, mount.pos, strict=True)) if link.parent is None else link.offset
        lines = [f'{pad}<body name="{p}{link.name}" pos="{_f(pos)}" gravcomp="1">']
        lines.append(f'{pad}  <inertial pos="{_f(link.com)}" mass="{link.mass:g}" diaginertia="{_f(link.inertia)}"/>')
        if link.joint is not None:
            kind = "hinge" if link.joint_kind == "revolute" else "slide"
            lines.append(
                f'{pad}  <joint name="{p}{link.joint}" type="{kind}" axis="{_f(link.axis)}" '
                f'range="{link.lower:.6g} {link.upper:.6g}" limited="true" armature="{link.armature:g}" '
                f'damping="{link.damping:g}"/>'
            )
        for i, g in enumerate(link.geoms):
            lines.append(pad + "  " + _geom_xml(g, f"{p}{link.name}_geom{i}"))
        if link.name == arm_desc.TCP_LINK:
            lines.append(
                f'{pad}  <site name="{p}tcp" pos="{_f(arm_desc.TCP_POS)}" size="0.006" rgba="1 0 1 0.4" group="4"/>'
            )
            for cam in wrist_cameras:
                lines.append(
                    f'{pad}  <camera name="{cam.name}" pos="{_f(cam.pos)}" xyaxes="{_f(cam.xyaxes or ())}" '
                    f'fovy="__FOVY_{cam.name}__"/>'
                )
        for child in children.get(link.name, []):
            lines.extend(body(child, depth + 1))
        lines.append(f"{pad}</body>")
        return lines

    root = children[None][0]
    return "\n".join(body(root, 0))


def _actuators_xml(mount: ArmMount) -> list[str]:
    p = mount.prefix
    lines = []
    for link in arm_desc.ARM_LINKS:
        if link.joint is None:
            continue
        if link.joint_kind == "revolute":
            # Stiff position servos (the firmware's reference is smooth and limited; the servo follows it).
            lines.append(
                f'<position name="{p}{link.joint}" joint="{p}{link.joint}" kp="{JOINT_KP:g}" kv="{JOINT_KV:g}" '
                f'ctrlrange="{link.lower:.6g} {link.upper:.6g}" forcerange="-{JOINT_FORCE:g} {JOINT_FORCE:g}"/>'
            )
        else:
            # Weak finger servos with a force limit: closing on an object squeezes it instead of crushing through.
            lines.append(
                f'<position name="{p}{link.joint}" joint="{p}{link.joint}" kp="{FINGER_KP:g}" kv="{FINGER_KV:g}" '
                f'ctrlrange="{link.lower:.6g} {link.upper:.6g}" forcerange="-{FINGER_FORCE:g} {FINGER_FORCE:g}"/>'
            )
    return lines


JOINT_KP = 800.0  # N m / rad
JOINT_KV = 40.0  # N m s / rad
JOINT_FORCE = 150.0  # N m
FINGER_KP = 400.0  # N / m
FINGER_KV = 8.0
FINGER_FORCE = 15.0  # N
TIMESTEP = 0.002  # s: physics at 500 Hz


def scene_xml(
    arms: int = 1, cameras: Sequence[CameraSpec] = (), *, offscreen: tuple[int, int] = (640, 480), scene: str = "id"
) -> str:
    """The MJCF of the whole scene. Cameras take their vertical field of view from the D435 focal length.
    `background` adds a wall behind the arm and a texture on the table (their colours are set per episode)."""
    objects = scene_objects(scene)
    background = scene == "background"
    mounts = arm_mounts(arms)
    cams = camera_mounts(cameras, arms)
    specs = {c.name: c for c in cameras}
    width = max([offscreen[0], *(c.width for c in cameras)])
    height = max([offscreen[1], *(c.height for c in cameras)])
    tx, (hx, hy, hz) = TABLE_CENTER_X, TABLE_HALF
    out: list[str] = [
        '<mujoco model="harmowam_sim_rig">',
        '  <compiler angle="radian" autolimits="true"/>',
        f'  <option timestep="{TIMESTEP:g}" integrator="implicitfast" cone="elliptic" impratio="10"/>',
        '  <statistic center="0.3 0 0.2" extent="1.5"/>',
        "  <visual>",
        f'    <global offwidth="{width}" offheight="{height}"/>',
        '    <quality shadowsize="2048" offsamples="0"/>',
        '    <map znear="0.01" zfar="20"/>',
        '    <headlight ambient="0.35 0.35 0.35" diffuse="0.45 0.45 0.45" specular="0.1 0.1 0.1"/>',
        "  </visual>",
        "  <asset>",
        (
            '    <texture name="sky" type="skybox" builtin="gradient" rgb1="0.55 0.65 0.8" rgb2="0.15 0.15 0.2" '
            'width="64" height="64"/>'
        ),
        (
            '    <texture name="floor" type="2d" builtin="checker" rgb1="0.30 0.30 0.32" rgb2="0.36 0.36 0.38" '
            'width="256" height="256"/>'
        ),
        '    <material name="floor" texture="floor" texrepeat="8 8"/>',
        (
            '    <texture name="table" type="2d" builtin="checker" rgb1="1 1 1" rgb2="0.82 0.82 0.82" '
            'width="128" height="128"/>\n    <material name="table" texture="table" texrepeat="6 6" '
            'rgba="0.62 0.50 0.38 1"/>'
            if background
            else '    <material name="table" rgba="0.62 0.50 0.38 1"/>'
        ),
        "  </asset>",
        "  <worldbody>",
        '    <light name="key" pos="0.6 -0.6 2.2" dir="-0.2 0.25 -1" diffuse="0.6 0.6 0.6" castshadow="true"/>',
        (
            f'    <geom name="floor" type="plane" pos="0 0 {-TABLE_HEIGHT:g}" size="3 3 0.1" material="floor" '
            'contype="1" conaffinity="3"/>'
        ),
        (
            f'    <geom name="table" type="box" pos="{tx:g} 0 {TABLE_TOP_Z - hz:g}" size="{hx:g} {hy:g} {hz:g}" '
            'material="table" contype="1" conaffinity="3" friction="0.8 0.02 0.001"/>'
        ),
    ]
    for sx in (-1, 1):
        for sy in (-1, 1):
            lx, ly = tx + sx * (hx - 0.05), sy * (hy - 0.05)
            leg_h = (TABLE_HEIGHT - 2 * hz) / 2
            out.append(
                f'    <geom name="table_leg_{len(out)}" type="box" pos="{lx:g} {ly:g} {-2 * hz - leg_h:g}" '
                f'size="0.03 0.03 {leg_h:g}" material="table" contype="0" conaffinity="0"/>'
            )
    for mount in mounts:
        wrist = [c for c in cams if c.body == mount.prefix + arm_desc.TCP_LINK]
        out.append(_arm_xml(mount, wrist, "    "))
    if background:
        out.append(
            '    <geom name="wall" type="box" pos="-0.5 0 0.2" size="0.02 1.6 1.0" rgba="0.8 0.8 0.78 1" '
            'contype="0" conaffinity="0"/>'
        )
    for obj in objects:
        size = _f(obj.size)
        out.append(
            f'    <body name="{obj.name}" pos="0 0 {obj.half_height + 1.0:g}">'
            f'<freejoint name="{obj.name}"/>'
            f'<geom name="{obj.name}" type="{obj.kind}" size="{size}" rgba="{_f(obj.rgba)}" mass="{obj.mass:g}" '
            'condim="4" friction="1.2 0.02 0.001" contype="1" conaffinity="3"/></body>'
        )
    out.append(
        f'    <body name="goal" mocap="true" pos="0.4 0 {TABLE_TOP_Z:g}"><geom name="goal" type="cylinder" '
        f'size="{GOAL_RADIUS:g} 0.0008" rgba="0.95 0.95 0.92 1" contype="0" conaffinity="0"/></body>'
    )
    for cam in cams:
        if cam.body is not None:
            continue
        out.append(
            f'    <camera name="{cam.name}" pos="{_f(cam.pos)}" xyaxes="{_f(look_at_xyaxes(cam.pos, cam.lookat))}" '
            f'fovy="__FOVY_{cam.name}__"/>'
        )
    out.append("  </worldbody>")
    out.append("  <actuator>")
    for mount in mounts:
        out.extend("    " + line for line in _actuators_xml(mount))
    out.append("  </actuator>")
    out.append("</mujoco>")
    xml = "\n".join(out)
    for cam in cams:
        spec = specs[cam.name]
        xml = xml.replace(f"__FOVY_{cam.name}__", f"{d435_intrinsics(spec.width, spec.height).fovy_deg:.6f}")
    return xml


def describe_scene(arms: int, cameras: Sequence[CameraSpec]) -> str:
    """One line for logs: what the rig holds."""
    names = ", ".join(m.name for m in arm_mounts(arms))
    cams = ", ".join(f"{c.name} ({c.describe()})" for c in cameras) or "no cameras"
    return f"{arms} arm(s) [{names}], objects [{', '.join(OBJECT_NAMES)}], cameras [{cams}]"

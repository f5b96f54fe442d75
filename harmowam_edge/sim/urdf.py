"""URDF of the reference arm, generated from the same description as the MJCF (`arm.ARM_LINKS`).

For tools that want the arm's kinematics without MuJoCo: hand-eye calibration against the simulated rig reads
joint states over the arm link and needs base -> gripper poses. Link frames are those of the MJCF bodies; the
gripper's right finger mimics the left; `tcp` is a fixed frame between the finger pads.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from harmowam_edge.bundle.schema import REFERENCE_GRIPPER, REFERENCE_JOINT_MAX_VELOCITY
from harmowam_edge.sim import arm as arm_desc
from harmowam_edge.sim import scene


def _f(values: tuple[float, ...] | list[float] | np.ndarray) -> str:
    return " ".join(f"{float(v):.9g}" for v in values)


def _rpy_z_to(direction: np.ndarray) -> tuple[float, float, float]:
    """Roll-pitch-yaw (URDF convention, R = Rz(y) Ry(p) Rx(r)) turning +z onto `direction`."""
    d = direction / np.linalg.norm(direction)
    # Rotate about y by pitch to tilt z into the xz-plane, then about z by yaw.
    pitch = math.atan2(math.hypot(d[0], d[1]), d[2])
    yaw = math.atan2(d[1], d[0]) if math.hypot(d[0], d[1]) > 1e-12 else 0.0
    return (0.0, pitch, yaw)


def _geom_elements(g: arm_desc.Geom, tag: str) -> list[str]:
    label = "_".join(f"{v:.2f}" for v in g.rgba)
    colour = f'<material name="rgba_{label}"><color rgba="{_f(g.rgba)}"/></material>'
    material = colour if tag == "visual" else ""
    if g.kind == "box":
        size = tuple(2 * s for s in g.size)
        return [
            (
                f'<{tag}><origin xyz="{_f(g.a)}" rpy="0 0 0"/><geometry><box size="{_f(size)}"/></geometry>'
                f"{material}</{tag}>"
            )
        ]
    a, b = np.asarray(g.a), np.asarray(g.b)
    mid, length = (a + b) / 2, float(np.linalg.norm(b - a))
    out = [
        (
            f'<{tag}><origin xyz="{_f(mid)}" rpy="{_f(_rpy_z_to(b - a))}"/>'
            f'<geometry><cylinder radius="{g.size[0]:.9g}" length="{length:.9g}"/></geometry>{material}</{tag}>'
        )
    ]
    if g.kind == "capsule":  # URDF has no capsule: a cylinder and two end spheres
        for end in (a, b):
            out.append(
                f'<{tag}><origin xyz="{_f(end)}" rpy="0 0 0"/><geometry><sphere radius="{g.size[0]:.9g}"/>'
                f"</geometry>{material}</{tag}>"
            )
    return out


def urdf_xml(prefix: str = "", name: str = "harmowam_reference_arm") -> str:
    """The URDF text; `prefix` ("left_") names links and joints as on a dual-arm rig."""
    lines = ['<?xml version="1.0"?>', f'<robot name="{name}">']
    for link in arm_desc.ARM_LINKS:
        lines.append(f'  <link name="{prefix}{link.name}">')
        ix, iy, iz = link.inertia
        lines.append(
            f'    <inertial><origin xyz="{_f(link.com)}" rpy="0 0 0"/><mass value="{link.mass:.9g}"/>'
            f'<inertia ixx="{ix:.9g}" ixy="0" ixz="0" iyy="{iy:.9g}" iyz="0" izz="{iz:.9g}"/></inertial>'
        )
        for g in link.geoms:
            lines.extend("    " + e for e in _geom_elements(g, "visual"))
            if g.collide:
                lines.extend("    " + e for e in _geom_elements(g, "collision"))
        lines.append("  </link>")
    lines.append(f'  <link name="{prefix}tcp"/>')
    for link in arm_desc.ARM_LINKS:
        if link.parent is None:
            continue
        parent, child = prefix + link.parent, prefix + link.name
        origin = f'<origin xyz="{_f(link.offset)}" rpy="0 0 0"/>'
        if link.joint is None:
            lines.append(
                f'  <joint name="{prefix}{link.parent}_to_{link.name}" type="fixed"><parent link="{parent}"/>'
                f'<child link="{child}"/>{origin}</joint>'
            )
            continue
        if link.joint_kind == "revolute":
            limit = (
                f'<limit lower="{link.lower:.9g}" upper="{link.upper:.9g}" effort="{scene.JOINT_FORCE:.9g}" '
                f'velocity="{REFERENCE_JOINT_MAX_VELOCITY:.9g}"/>'
            )
            mimic = ""
        else:
            limit = (
                f'<limit lower="{link.lower:.9g}" upper="{link.upper:.9g}" effort="{scene.FINGER_FORCE:.9g}" '
                f'velocity="{REFERENCE_GRIPPER[2] / 2:.9g}"/>'
            )
            # One gripper opening drives both fingers: each moves half of it.
            mimic = "" if link.name == "finger_left" else f'<mimic joint="{prefix}finger_left"/>'
        kind = "revolute" if link.joint_kind == "revolute" else "prismatic"
        lines.append(
            f'  <joint name="{prefix}{link.joint}" type="{kind}"><parent link="{parent}"/><child link="{child}"/>'
            f'{origin}<axis xyz="{_f(link.axis)}"/>{limit}{mimic}</joint>'
        )
    lines.append(
        f'  <joint name="{prefix}tcp_joint" type="fixed"><parent link="{prefix}{arm_desc.TCP_LINK}"/>'
        f'<child link="{prefix}tcp"/><origin xyz="{_f(arm_desc.TCP_POS)}" rpy="0 0 0"/></joint>'
    )
    lines.append("</robot>")
    return "\n".join(lines) + "\n"


def write_urdf(path: Path, prefix: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(urdf_xml(prefix))
    return path

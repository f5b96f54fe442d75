"""Forward kinematics from a URDF, through Pinocchio (PyPI `pin`): joint positions -> base-to-tip pose.

Why Pinocchio (see docs/calibration.md): it parses URDF with the ROS reference parser (urdfdom), needs no meshes
for kinematics, handles fixed, continuous, prismatic and mimic joints, is maintained by LAAS-CNRS/Inria with
regular releases and wheels for x86-64 and aarch64 (Jetson), and is the FK used by much of the robotics stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from calibration.errors import KinematicsError


def _import_pinocchio() -> Any:
    try:
        import pinocchio
    except ImportError:
        raise KinematicsError(
            "forward kinematics needs Pinocchio, which is not installed: "
            "pip install 'harmowam-edge[calib]' (PyPI package `pin`)"
        ) from None
    return pinocchio


class UrdfKinematics:
    """FK of one serial chain of a URDF: from the root link to `tip_link`.

    The chain's movable joints, root to tip, take the arm's joint positions in order (the firmware reports joints
    in that order). Joints off the chain (gripper fingers) stay at zero: they do not move the tip.
    """

    def __init__(self, urdf: str | Path, tip_link: str | None = None) -> None:
        pin = _import_pinocchio()
        path = Path(urdf)
        if not path.is_file():
            raise KinematicsError(f"{path}: no such URDF file")
        try:
            self._model = pin.buildModelFromUrdf(str(path))
        except (RuntimeError, ValueError) as e:
            raise KinematicsError(f"{path}: not a URDF Pinocchio can load: {str(e).splitlines()[0]}") from None
        self._pin = pin
        self._data = self._model.createData()
        self.path = path
        m = self._model
        bodies = [f.name for f in m.frames if f.type == pin.FrameType.BODY]
        if tip_link is None:
            # The child link of the last joint of the longest chain of revolute joints: the flange of an arm.
            tip_link = self._default_tip(bodies)
        if not m.existFrame(tip_link) or tip_link not in bodies:
            raise KinematicsError(f"{path}: no link named {tip_link!r}; links: {', '.join(bodies)}")
        self.tip_link = tip_link
        self.root_link = bodies[0] if bodies else "base"
        self._tip = m.getFrameId(tip_link)
        chain: list[int] = []
        j = m.frames[self._tip].parentJoint
        while j > 0:
            chain.append(j)
            j = m.parents[j]
        chain.reverse()
        self._chain = [j for j in chain if m.joints[j].nq > 0]
        self.joint_names = [m.names[j] for j in self._chain]
        if not self.joint_names:
            raise KinematicsError(f"{path}: link {tip_link!r} is not moved by any joint")

    def _default_tip(self, bodies: list[str]) -> str:
        m = self._model
        best, depth_best = None, -1
        for f in m.frames:
            if f.type != self._pin.FrameType.BODY:
                continue
            depth, j = 0, f.parentJoint
            while j > 0:
                if m.joints[j].shortname() in (
                    "JointModelRX",
                    "JointModelRY",
                    "JointModelRZ",
                    "JointModelRevoluteUnaligned",
                    "JointModelRUBX",
                    "JointModelRUBY",
                    "JointModelRUBZ",
                    "JointModelRevoluteUnboundedUnaligned",
                ):
                    depth += 1
                j = m.parents[j]
            # The first body reached at the deepest revolute depth is the flange (later ones hang off it).
            if depth > depth_best:
                best, depth_best = f.name, depth
        if best is None:
            raise KinematicsError(f"{self.path}: no links")
        return str(best)

    def fk(self, positions: Sequence[float] | np.ndarray) -> np.ndarray:
        """T_root_tip (4x4, metres) for the chain's joint positions (radians / metres), root to tip."""
        q_in = np.asarray(positions, dtype=np.float64).ravel()
        if q_in.shape[0] != len(self._chain):
            raise KinematicsError(
                f"{self.path}: the chain {self.root_link} -> {self.tip_link} has "
                f"{len(self._chain)} joints ({', '.join(self.joint_names)}) but "
                f"{q_in.shape[0]} joint positions were given"
            )
        pin, m = self._pin, self._model
        q = pin.neutral(m)
        for value, j in zip(q_in, self._chain, strict=True):
            joint = m.joints[j]
            if joint.nq == 1:
                q[joint.idx_q] = value
            elif joint.nq == 2:  # continuous joint: (cos, sin)
                q[joint.idx_q], q[joint.idx_q + 1] = np.cos(value), np.sin(value)
            else:
                raise KinematicsError(
                    f"{self.path}: joint {m.names[j]} has {joint.nq} coordinates; only 1-DoF "
                    "joints are supported in the chain"
                )
        pin.framesForwardKinematics(m, self._data, q)
        return np.array(self._data.oMf[self._tip].homogeneous, dtype=np.float64)

"""Fixtures of the simulated-rig tests: small cameras (160x120), one rig per test, links opened like the runtime's."""

from __future__ import annotations

import contextlib

import pytest

pytest.importorskip("mujoco", reason="the sim extra (MuJoCo) is not installed")

from harmowam_edge.bundle.schema import CameraSpec

SMALL_CAMERA = CameraSpec("front", 160, 120, 30, ("color", "depth"))


@pytest.fixture
def small_camera() -> CameraSpec:
    return SMALL_CAMERA


@pytest.fixture
def open_rig():
    """open_rig(arms=1, cameras=(), seed=0) -> (rig, [ArmLink, ...]); everything is closed after the test."""
    from firmware_bridge import ArmLink
    from harmowam_edge.sim.rig import open_sim_rig

    stack = contextlib.ExitStack()

    def _open(arms: int = 1, cameras=(), seed: int = 0, **kwargs):
        rig = stack.enter_context(open_sim_rig(arms, list(cameras), seed, **kwargs))
        links = [
            stack.enter_context(ArmLink.open(port, arm=addr))
            for port, addr in zip(rig.arm_ports, rig.arm_addresses, strict=True)
        ]
        return rig, links

    with stack:
        yield _open

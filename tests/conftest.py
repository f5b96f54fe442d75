"""Shared fixtures. Area fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os

import pytest

# MuJoCo renders headless through EGL on machines without a display.
os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


# --------------------------------------------------------------------------------------------------------------
# Deploy bundles built by export (issue 3), shared by every area's tests. Built once per variant per session from
# a seeded, UNTRAINED checkpoint; treat them as read-only (copy with shutil.copytree before corrupting one).


@pytest.fixture(scope="session")
def bundle_factory(tmp_path_factory: pytest.TempPathFactory):
    """bundle_factory(preset="nano", arms=1, width=160, height=120, fps=30, depth=False, cameras=1,
    precision="fp32", seed=0) -> Path of a bundle directory, cached per session by its arguments.

    Cameras are named cam0, cam1, ...; fp16/int8 bundles calibrate on synthetic frames. Needs the export extra
    (torch); tests that use it skip where torch is not installed.
    """
    from pathlib import Path

    cache: dict[tuple[object, ...], Path] = {}

    def make(
        preset: str = "nano",
        arms: int = 1,
        width: int = 160,
        height: int = 120,
        fps: int = 30,
        depth: bool = False,
        cameras: int = 1,
        precision: str = "fp32",
        seed: int = 0,
    ) -> Path:
        key = (preset, arms, width, height, fps, depth, cameras, precision, seed)
        if key not in cache:
            pytest.importorskip("torch", reason="building a bundle needs the export extra (torch)")
            from export import build_demo_bundle
            from harmowam_edge.bundle.schema import CameraSpec

            streams = ("color", "depth") if depth else ("color",)
            specs = [CameraSpec(f"cam{i}", width, height, fps, streams) for i in range(cameras)]
            name = f"{preset}-{arms}arm-{cameras}x{width}x{height}{'-depth' if depth else ''}-{precision}-s{seed}"
            out = tmp_path_factory.mktemp("bundles") / name
            build_demo_bundle(out, preset=preset, arms=arms, seed=seed, camera=specs, precision=precision)
            cache[key] = out
        return cache[key]

    return make


@pytest.fixture(scope="session")
def nano_bundle(bundle_factory):
    """nano preset, 1 arm, one 160x120 color camera @ 30 fps, fp32, seed 0."""
    return bundle_factory()


@pytest.fixture(scope="session")
def nano_bundle_dual_arm(bundle_factory):
    """nano preset, 2 arms (left_*, right_*), one 160x120 color camera @ 30 fps, fp32, seed 0."""
    return bundle_factory(arms=2)

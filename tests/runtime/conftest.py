"""Runtime test fixtures: real RealSense recordings (software device + recorder), shared per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.recordings import Recording, make_recording


@pytest.fixture(scope="session")
def recordings_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("recordings")


@pytest.fixture(scope="session")
def rgbd_recording(recordings_dir: Path) -> Recording:
    """45 frames of 160x120 color + depth at 30 fps, paced like a camera (1.5 s to play)."""
    return make_recording(recordings_dir / "rgbd.db3", width=160, height=120, fps=30, frames=45, depth=True)


@pytest.fixture(scope="session")
def fast_recording(recordings_dir: Path) -> Recording:
    """20 color frames written without pacing: for non-real-time playback."""
    return make_recording(recordings_dir / "fast.db3", frames=20, pace=False, serial="424242")

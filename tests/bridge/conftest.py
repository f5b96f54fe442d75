"""Fixtures: firmware simulators (Python in-process, C host build in a child process) on pseudo-terminals."""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from firmware_bridge import ArmLink, CFirmwareSimulator, FirmwareSimulator, SimArmConfig
from firmware_bridge.c_simulator import build_host_simulator


@pytest.fixture(scope="session")
def c_binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The C host simulator, compiled once per session (into a temp dir, so tests never race a user's build)."""
    if not any(shutil.which(c) for c in ("cc", "gcc", "clang")):
        pytest.skip("no C compiler: the C firmware simulator cannot be built here")
    return build_host_simulator(tmp_path_factory.mktemp("fwbuild"))


@pytest.fixture
def start_sim(request: pytest.FixtureRequest) -> Iterator[Callable[..., FirmwareSimulator | CFirmwareSimulator]]:
    """start_sim(impl, config=None, link_path=None) → a started simulator, stopped at teardown."""
    started: list[FirmwareSimulator | CFirmwareSimulator] = []

    def start(
        impl: str = "python", config: SimArmConfig | None = None, link_path: Path | None = None
    ) -> FirmwareSimulator | CFirmwareSimulator:
        sim: FirmwareSimulator | CFirmwareSimulator
        if impl == "python":
            sim = FirmwareSimulator(config, link_path=link_path, seed=len(started))
        else:
            sim = CFirmwareSimulator(config, link_path=link_path, binary=request.getfixturevalue("c_binary"))
        sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def open_link() -> Iterator[Callable[..., ArmLink]]:
    links: list[ArmLink] = []

    def _open(port: str, **kwargs: object) -> ArmLink:
        link = ArmLink.open(port, **kwargs)  # type: ignore[arg-type]
        links.append(link)
        return link

    yield _open
    for link in links:
        with contextlib.suppress(Exception):
            link.close()


def wait_for(predicate: Callable[[], object], timeout: float = 3.0, interval: float = 0.005) -> bool:
    """Poll until `predicate()` is truthy; generous timeouts, since the machine may be loaded."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())

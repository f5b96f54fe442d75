"""A firmware simulator in a child process: it prints its port on the first line and serves until SIGTERM.

Used for the C host build and for the Python simulator when it must not share the client's interpreter (the
benchmark: a real firmware does not compete with the host for the GIL). The child never outlives its parent, even
one killed with SIGKILL: it is told the parent's pid and exits once that is no longer its parent, and on Linux it
also asks for SIGTERM when the parent thread dies (`lifeline_args`).
"""

from __future__ import annotations

import os
import pathlib
import select
import signal
import subprocess
import sys
import threading
import time
from types import TracebackType

from firmware_bridge.errors import SimulatorError
from firmware_bridge.sim_config import SimArmConfig


class SimulatorProcess:
    """Start `command()`, read the port from its first output line; `stop()` sends SIGTERM."""

    def __init__(self, name: str, *, start_timeout: float = 10.0) -> None:
        self.name = name
        self._start_timeout = start_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._port = ""

    def command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> str:
        argv = [*self.command(), *lifeline_args()]
        try:
            self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as e:
            raise SimulatorError(f"cannot run {self.name} ({argv[0]}): {e.strerror}") from None
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        line = b""
        deadline = time.monotonic() + self._start_timeout
        while not line.endswith(b"\n"):
            ready, _, _ = select.select([fd], [], [], max(deadline - time.monotonic(), 0.0))
            if not ready:
                self.stop()
                raise SimulatorError(f"{self.name} printed no port within {self._start_timeout:.0f} s")
            chunk = os.read(fd, 1)
            if not chunk:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                self.stop()
                raise SimulatorError(f"{self.name} exited at start: {err.strip()}")
            line += chunk
        self._port = line.decode().strip()
        return self._port

    @property
    def port(self) -> str:
        if not self._port:
            raise SimulatorError(f"{self.name} not started: call start() first")
        return self._port

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stop(self) -> None:
        proc = self._proc
        if proc is None:
            return
        self._proc = None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> SimulatorProcess:
        if self._proc is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def lifeline_args() -> list[str]:
    """Arguments that tie a simulator child's life to this process (both simulators accept them).

    `--parent-pid`: the child polls its parent pid and stops once it changes (works whichever thread started it).
    `--deathsig` (Linux PR_SET_PDEATHSIG, immediate) only from the main thread: the kernel signals the child when
    the *thread* that started it ends, so from a worker thread it would kill a child that should live on.
    """
    args = ["--parent-pid", str(os.getpid())]
    if sys.platform.startswith("linux") and threading.current_thread() is threading.main_thread():
        args.append("--deathsig")
    return args


def simulator_args(config: SimArmConfig, link_path: pathlib.Path | None = None) -> list[str]:
    """`python -m firmware_bridge simulate` arguments for `config` (uniform limits only: joint 0's are used)."""
    c = config
    args = [
        "--joints",
        str(c.joint_count),
        "--arm",
        str(c.arm),
        "--state-rate",
        str(c.state_rate_hz),
    ]
    if not c.has_gripper:
        args.append("--no-gripper")
    if link_path is not None:
        args += ["--link", str(link_path)]
    return args


class PythonSimulatorProcess(SimulatorProcess):
    """The Python simulator (`FirmwareSimulator`) in its own interpreter."""

    def __init__(
        self, config: SimArmConfig | None = None, link_path: pathlib.Path | None = None, *, start_timeout: float = 20.0
    ) -> None:
        super().__init__("the Python firmware simulator", start_timeout=start_timeout)
        self.config = config or SimArmConfig()
        self.link_path = link_path

    def command(self) -> list[str]:
        return [sys.executable, "-m", "firmware_bridge", "simulate", *simulator_args(self.config, self.link_path)]

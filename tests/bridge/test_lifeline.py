"""A simulator child never outlives its parent, even one killed with SIGKILL (issue 11, item 3).

Real processes throughout: the parent is a Python interpreter (or the CLI) that starts a simulator child, prints
the child's pid and blocks; the test SIGKILLs the parent and polls, with a generous deadline, until the child has
exited. Both mechanisms are covered: PR_SET_PDEATHSIG (parent started it from its main thread) and the parent-pid
poll alone (started from a worker thread, where the death signal is not requested).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

DEADLINE_S = 30.0  # a loaded CI machine is slow; the child normally exits within a few tens of milliseconds

PARENT = """
import sys, threading
from pathlib import Path
from firmware_bridge import CFirmwareSimulator
from firmware_bridge.sim_process import PythonSimulatorProcess

impl, where, binary = sys.argv[1], sys.argv[2], sys.argv[3]
box = []

def start():
    sim = CFirmwareSimulator(binary=Path(binary)) if impl == "c" else PythonSimulatorProcess()
    sim.start()
    box.append(sim)

if where == "main":
    start()
else:
    t = threading.Thread(target=start)
    t.start()
    t.join()  # the starting thread has ended: a death signal tied to it would already have fired
print(box[0].pid, flush=True)
threading.Event().wait()
"""


def exited(pid: int) -> bool:
    """The process is gone or a zombie (re-parented to an init that may not reap it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def wait_until(predicate, timeout: float = DEADLINE_S) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(p) for p in (task / "children").read_text().split()]
    return out


def kill_and_check(parent: subprocess.Popen[str], child: int) -> None:
    try:
        assert not exited(child), "the simulator child did not start"
        parent.send_signal(signal.SIGKILL)
        parent.wait(timeout=DEADLINE_S)
        assert wait_until(lambda: exited(child)), f"simulator child {child} outlived its SIGKILLed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
        if not exited(child):
            os.kill(child, signal.SIGKILL)
        for stream in (parent.stdout, parent.stderr):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(("impl", "where"), [("c", "main"), ("c", "worker"), ("python", "main"), ("python", "worker")])
def test_a_simulator_child_dies_with_its_sigkilled_parent(impl: str, where: str, c_binary: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, impl, where, str(c_binary)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    line = parent.stdout.readline().strip()
    assert line.isdigit(), parent.stderr.read() if parent.stderr else line
    kill_and_check(parent, int(line))


def test_bridge_simulate_c_child_dies_with_the_sigkilled_cli(c_binary: Path) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-m", "harmowam_edge.cli", "bridge", "simulate", "--impl", "c"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    port = parent.stdout.readline().strip()
    assert port.startswith("/dev/pts/"), parent.stderr.read() if parent.stderr else port
    kids = children(parent.pid)
    assert len(kids) == 1, kids
    assert Path(f"/proc/{kids[0]}/exe").resolve().name == "hwl_host_sim"
    kill_and_check(parent, kids[0])

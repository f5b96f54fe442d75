"""`python -m firmware_bridge simulate ...`: the Python firmware simulator as a process (no harmowam_edge needed).

Prints the port on its first line and serves until SIGINT/SIGTERM, or until its parent dies (`--parent-pid`,
`--deathsig`: see `sim_process.lifeline_args`). `harmowam-edge bridge simulate` is the
user-facing command; this entry point lets firmware_bridge run its simulator in a child process by itself.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import signal
import sys
import threading
from collections.abc import Sequence

from firmware_bridge.errors import BridgeError
from firmware_bridge.sim_config import SimArmConfig
from firmware_bridge.simulator import FirmwareSimulator


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware_bridge")
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="serve a simulated arm firmware on a pseudo-terminal")
    sim.add_argument("--joints", type=int, default=6)
    sim.add_argument("--arm", type=int, default=0)
    sim.add_argument("--state-rate", type=int, default=200)
    sim.add_argument("--no-gripper", action="store_true")
    sim.add_argument("--link", type=pathlib.Path, default=None)
    sim.add_argument("--parent-pid", type=int, default=0, help="stop once this process is no longer the parent")
    sim.add_argument("--deathsig", action="store_true", help="Linux: SIGTERM when the parent thread dies")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.deathsig:
        request_parent_death_signal(signal.SIGTERM)

    def orphaned() -> bool:
        return args.parent_pid > 0 and os.getppid() != args.parent_pid

    try:
        config = SimArmConfig(
            joint_count=args.joints, arm=args.arm, state_rate_hz=args.state_rate, has_gripper=not args.no_gripper
        )
        with FirmwareSimulator(config, link_path=args.link) as simulator:
            print(simulator.port, flush=True)
            while not orphaned() and not stop.wait(0.05):
                pass
    except BridgeError as e:
        print(f"firmware_bridge: error: {e}", file=sys.stderr)
        return 2
    return 0


def request_parent_death_signal(sig: int) -> None:
    """Linux's PR_SET_PDEATHSIG: the kernel sends `sig` when the parent thread dies (elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    pr_set_pdeathsig = 1
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(pr_set_pdeathsig, int(sig), 0, 0, 0)


if __name__ == "__main__":
    sys.exit(main())

"""`python -m firmware_bridge simulate ...`: the Python firmware simulator as a process (no harmowam_edge needed).

Prints the port on its first line and serves until SIGINT/SIGTERM. `harmowam-edge bridge simulate` is the
user-facing command; this entry point lets firmware_bridge run its simulator in a child process by itself.
"""

from __future__ import annotations

import argparse
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
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        config = SimArmConfig(
            joint_count=args.joints, arm=args.arm, state_rate_hz=args.state_rate, has_gripper=not args.no_gripper
        )
        with FirmwareSimulator(config, link_path=args.link) as simulator:
            print(simulator.port, flush=True)
            while not stop.wait(0.5):
                pass
    except BridgeError as e:
        print(f"firmware_bridge: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

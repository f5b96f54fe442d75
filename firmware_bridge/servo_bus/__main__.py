"""`python -m firmware_bridge.servo_bus --bus feetech|dynamixel [--servos N]`: a servo-bus simulator as a process.

Prints the port on its first line and serves until SIGINT/SIGTERM or until its parent dies (`--parent-pid`,
`--deathsig`, as `python -m firmware_bridge simulate`). The bench runs the bus in its own process, as real servos
do not share the host's interpreter.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from collections.abc import Sequence

from firmware_bridge.__main__ import request_parent_death_signal
from firmware_bridge.errors import BridgeError
from firmware_bridge.servo_bus.simulator import ServoBusSimulator, SimServoSpec, default_servos


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware_bridge.servo_bus")
    parser.add_argument("--bus", choices=("dynamixel", "feetech"), required=True)
    parser.add_argument("--servos", type=int, default=6, help="IDs 1..N, the bus's default model")
    parser.add_argument("--parent-pid", type=int, default=0)
    parser.add_argument("--deathsig", action="store_true")
    args = parser.parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    if args.deathsig:
        request_parent_death_signal(signal.SIGTERM)
    model = default_servos(args.bus)[0].model
    try:
        with ServoBusSimulator(args.bus, [SimServoSpec(i, model) for i in range(1, args.servos + 1)]) as sim:
            print(sim.port, flush=True)
            while not (args.parent_pid > 0 and os.getppid() != args.parent_pid) and not stop.wait(0.05):
                pass
    except BridgeError as e:
        print(f"firmware_bridge.servo_bus: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

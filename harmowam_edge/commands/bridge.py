"""`harmowam-edge bridge ...`: commands of firmware_bridge (issue 2). Heavy imports stay inside the command bodies.

Thin: parsing and printing only; what the commands do lives in `firmware_bridge.operations` and
`firmware_bridge.bench`. Every `BridgeError` (port missing, busy, no answer, ...) reaches `cli.main`, which
prints it as one line and exits 2.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from firmware_bridge import ArmLink

app = typer.Typer(no_args_is_help=True)

PortArg = Annotated[str, typer.Argument(help="Serial port: /dev/ttyACM0, /dev/serial/by-id/..., a PTY, or a URL.")]
BaudOpt = Annotated[int, typer.Option("--baud", help="Baud rate (the firmware's default is 1000000).")]
ArmOpt = Annotated[int, typer.Option("--arm", help="Arm address on the link (0-7; dual-arm rigs: left 0, right 1).")]
DEFAULT_BAUD = 1_000_000


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by Ctrl-C or SIGTERM, so the commands end through their clean-up path (disable, close)."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _open(port: str, baud: int, arm: int) -> ArmLink:
    from firmware_bridge import ArmLink

    return ArmLink.open(port, baudrate=baud, arm=arm)


@app.command()
def simulate(
    joints: Annotated[int, typer.Option("--joints", help="Number of joints (1-16).")] = 6,
    impl: Annotated[str, typer.Option("--impl", help="python (the Python twin) or c (the C firmware, host build).")] = (
        "python"
    ),
    arm: ArmOpt = 0,
    link: Annotated[
        Path | None, typer.Option("--link", help="Also serve at this stable symlink (like /dev/serial/by-id/...).")
    ] = None,
    state_rate: Annotated[int, typer.Option("--state-rate", help="Periodic STATE rate, Hz.")] = 200,
    no_gripper: Annotated[bool, typer.Option("--no-gripper", help="An arm without a gripper.")] = False,
) -> None:
    """Serve a simulated arm firmware on a pseudo-terminal: prints the port on the first line, runs until Ctrl-C."""
    from firmware_bridge.operations import serve_simulator
    from firmware_bridge.sim_config import SimArmConfig

    config = SimArmConfig(joint_count=joints, arm=arm, state_rate_hz=state_rate, has_gripper=not no_gripper)
    with _stop_on_signals() as stop, serve_simulator(impl, config, link) as sim:
        typer.echo(sim.port)
        typer.echo(f"simulating a {joints}-joint arm (address {arm}, {impl} firmware); Ctrl-C to stop", err=True)
        while not stop.wait(0.5):
            if impl == "c" and not sim.running():  # type: ignore[union-attr]
                raise typer.Exit(1)


@app.command()
def ping(port: PortArg, baud: BaudOpt = DEFAULT_BAUD, arm: ArmOpt = 0) -> None:
    """Handshake and print the firmware's id, protocol version, joint count and limits."""
    from firmware_bridge.operations import info_lines

    with _open(port, baud, arm) as link:
        for line in info_lines(link.info, port):
            typer.echo(line)
        state = link.wait_state(1.0)
        if state is not None:
            typer.echo(f"mode: {state.mode.name}")


@app.command()
def monitor(
    port: PortArg,
    duration: Annotated[float | None, typer.Option("--duration", help="Seconds to run (default: until Ctrl-C).")] = (
        None
    ),
    baud: BaudOpt = DEFAULT_BAUD,
    arm: ArmOpt = 0,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between lines.")] = 0.5,
) -> None:
    """Show live joint state and link health (rate, CRC errors, lost frames, round-trip time, events)."""
    from firmware_bridge.operations import state_line, stats_line

    t_end = None if duration is None else time.monotonic() + duration
    with _stop_on_signals() as stop, _open(port, baud, arm) as link:
        last_n, last_t = link.stats.states_rx, time.monotonic()
        while not stop.wait(interval):
            for ev in link.poll_events():
                typer.echo(f"event: {ev.kind.value}: {ev.message}")
            now = time.monotonic()
            stats = link.stats
            rate = (stats.states_rx - last_n) / max(now - last_t, 1e-9)
            last_n, last_t = stats.states_rx, now
            st = link.state()
            typer.echo(state_line(st) if st is not None else "no state yet")
            typer.echo("  " + stats_line(stats, rate))
            if t_end is not None and now >= t_end:
                break


@app.command()
def enable(
    port: PortArg,
    duration: Annotated[float | None, typer.Option("--duration", help="Seconds to hold (default: until Ctrl-C).")] = (
        None
    ),
    baud: BaudOpt = DEFAULT_BAUD,
    arm: ArmOpt = 0,
) -> None:
    """Torque on and hold position (heartbeats keep the watchdog fed) until Ctrl-C; then torque off."""
    from firmware_bridge.operations import hold_enabled

    with _stop_on_signals() as stop, _open(port, baud, arm) as link:
        link.enable()
        typer.echo(f"{port}: enabled, holding position; Ctrl-C to disable", err=True)
        why = hold_enabled(link, stop, duration=duration)
        typer.echo(f"{port}: disabled ({why})")


@app.command()
def disable(port: PortArg, baud: BaudOpt = DEFAULT_BAUD, arm: ArmOpt = 0) -> None:
    """Torque off."""
    with _open(port, baud, arm) as link:
        typer.echo(f"{port}: {link.disable().name}")


@app.command()
def estop(port: PortArg, baud: BaudOpt = DEFAULT_BAUD, arm: ArmOpt = 0) -> None:
    """Emergency stop: torque off, latched until `bridge reset`."""
    with _open(port, baud, arm) as link:
        typer.echo(f"{port}: {link.estop().name}")


@app.command()
def reset(port: PortArg, baud: BaudOpt = DEFAULT_BAUD, arm: ArmOpt = 0) -> None:
    """Clear a latched e-stop (the arm is then DISABLED; `bridge enable` to move)."""
    with _open(port, baud, arm) as link:
        typer.echo(f"{port}: {link.reset_estop().name}")


@app.command()
def bench(
    json_out: Annotated[Path, typer.Option("--json", help="Write the figures here (JSON).")] = (
        Path("bench-results/bridge.json")
    ),
    duration: Annotated[float, typer.Option("--duration", help="Seconds of 200 Hz streaming per simulator.")] = 10.0,
    impl: Annotated[list[str] | None, typer.Option("--impl", help="Simulator(s): python, c (default both).")] = None,
) -> None:
    """Setpoint→state echo over a PTY at 200 Hz (Python and C simulators) and codec cost per frame."""
    import sys

    from firmware_bridge import bench as bridge_bench
    from harmowam_edge.telemetry.benchreport import BenchReport, rows_from

    rows, detail = bridge_bench.run(duration_s=duration, impls=impl or ["python", "c"])
    report = BenchReport("bridge", rows_from(rows), extra={"detail": detail, "argv": sys.argv})
    report.print_table("harmowam-edge bridge bench")
    report.write(json_out)
    typer.echo(f"wrote {json_out}")

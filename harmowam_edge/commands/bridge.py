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
    from firmware_bridge import ArmClient, ArmLink

app = typer.Typer(no_args_is_help=True)

PortArg = Annotated[str, typer.Argument(help="Serial port: /dev/ttyACM0, /dev/serial/by-id/..., a PTY, or a URL.")]
BaudOpt = Annotated[int, typer.Option("--baud", help="Baud rate (the firmware's default is 1000000).")]
ArmOpt = Annotated[int, typer.Option("--arm", help="Arm address on the link (0-7; dual-arm rigs: left 0, right 1).")]
DEFAULT_BAUD = 1_000_000
BusOpt = Annotated[
    str | None,
    typer.Option("--bus", help="A servo bus instead of our firmware: dynamixel (Protocol 2.0) or feetech (STS)."),
]
PresetOpt = Annotated[
    str | None, typer.Option("--preset", help="The bus arm: so101, so100, koch, xl430 (default: so101 / xl430).")
]
CalibOpt = Annotated[Path | None, typer.Option("--calibration", help="LeRobot's calibration JSON for this arm.")]


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


def _check_link_options(baud: int, arm: int) -> None:
    from firmware_bridge.protocol import MAX_ARM
    from harmowam_edge.commands import option_checks as checks

    checks.int_range("--baud", baud, 1)
    checks.int_range("--arm", arm, 0, MAX_ARM)


def _open_any(
    port: str, baud: int, arm: int, bus: str | None, preset: str | None, calibration: Path | None
) -> ArmClient:
    """Our firmware (ArmLink), or with `bus` a servo-bus arm behind the same interface."""
    if bus is None:
        return _open(port, baud, arm)
    from firmware_bridge.servo_bus.operations import arm_config, open_bus_arm

    return open_bus_arm(port, arm_config(bus, preset, calibration, baud))


def _open(port: str, baud: int, arm: int) -> ArmLink:
    from firmware_bridge import ArmLink

    _check_link_options(baud, arm)
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
    bus: Annotated[
        str | None,
        typer.Option("--bus", help="Simulate a servo bus: feetech (SO-101, 6 x STS3215) or dynamixel (6 x XL430)."),
    ] = None,
) -> None:
    """Serve a simulated arm firmware on a pseudo-terminal: prints the port on the first line, runs until Ctrl-C."""
    if bus is not None:
        _simulate_bus(bus, link)
        return
    from firmware_bridge.operations import serve_simulator
    from firmware_bridge.sim_config import MAX_JOINTS, SimArmConfig
    from harmowam_edge.commands import option_checks as checks

    checks.int_range("--joints", joints, 1, MAX_JOINTS)
    _check_link_options(DEFAULT_BAUD, arm)
    checks.int_range("--state-rate", state_rate, 1, 2000)
    config = SimArmConfig(joint_count=joints, arm=arm, state_rate_hz=state_rate, has_gripper=not no_gripper)
    with _stop_on_signals() as stop, serve_simulator(impl, config, link) as sim:
        typer.echo(sim.port)
        typer.echo(f"simulating a {joints}-joint arm (address {arm}, {impl} firmware); Ctrl-C to stop", err=True)
        while not stop.wait(0.5):
            if impl == "c" and not sim.running():  # type: ignore[union-attr]
                raise typer.Exit(1)


def _simulate_bus(bus: str, link: Path | None) -> None:
    from firmware_bridge.servo_bus import BUSES, ServoBusSimulator
    from firmware_bridge.servo_bus.errors import BusConfigError

    if bus not in BUSES:
        raise BusConfigError(f"--bus: expected one of {', '.join(BUSES)}, got {bus!r}")
    with _stop_on_signals() as stop, ServoBusSimulator(bus, link_path=link) as sim:
        typer.echo(sim.port)
        what = "an SO-101 follower (6 x STS3215" if bus == "feetech" else "six XL430-W250 (Dynamixel 2.0"
        typer.echo(f"simulating {what}, IDs 1-6, 1 Mbps); Ctrl-C to stop", err=True)
        while not stop.wait(0.5):
            if not sim.running():
                raise typer.Exit(1)


@app.command()
def ping(
    port: PortArg,
    baud: BaudOpt = DEFAULT_BAUD,
    arm: ArmOpt = 0,
    bus: BusOpt = None,
    ids: Annotated[str, typer.Option("--ids", help="With --bus: the IDs to scan, e.g. 1-20 or 1,2,7.")] = "0-252",
) -> None:
    """Handshake and print the firmware's id, protocol version, joint count and limits. With --bus: scan the
    servo bus and list each servo (ID, model, firmware)."""
    from firmware_bridge.operations import info_lines

    if bus is not None:
        from firmware_bridge.servo_bus.operations import parse_ids, scan, scan_lines

        for line in scan_lines(scan(port, bus, baud, parse_ids(ids)), port, bus):
            typer.echo(line)
        return
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
    bus: BusOpt = None,
    preset: PresetOpt = None,
    calibration: CalibOpt = None,
) -> None:
    """Show live joint state and link health (rate, CRC errors, lost frames, round-trip time, events)."""
    from firmware_bridge.operations import state_line, stats_line
    from harmowam_edge.commands import option_checks as checks

    checks.positive("--duration", duration)
    checks.positive("--interval", interval)
    t_end = None if duration is None else time.monotonic() + duration
    with _stop_on_signals() as stop, _open_any(port, baud, arm, bus, preset, calibration) as link:
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
    from harmowam_edge.commands import option_checks as checks

    checks.positive("--duration", duration)
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
    bus_duration: Annotated[
        float | None,
        typer.Option(
            "--bus-duration", help="Seconds of 200 Hz ticks per servo bus (default: --duration, 3 s at most; 0 skips)."
        ),
    ] = None,
) -> None:
    """Setpoint→state echo over a PTY at 200 Hz (Python and C simulators), codec cost per frame, and the servo
    buses' tick (PTY and wire at 1 Mbps) and highest control rates."""
    import sys

    from firmware_bridge import bench as bridge_bench
    from harmowam_edge.commands import option_checks as checks
    from harmowam_edge.telemetry.benchreport import BenchReport, rows_from

    checks.positive("--duration", duration)
    rows, detail = bridge_bench.run(duration_s=duration, impls=impl or ["python", "c"])
    if bus_duration is None:
        bus_duration = min(duration, 3.0)
    if bus_duration > 0:
        from firmware_bridge.servo_bus import bench as bus_bench

        bus_rows, bus_detail = bus_bench.run(duration_s=bus_duration)
        rows += bus_rows
        detail["servo_bus"] = bus_detail
    report = BenchReport("bridge", rows_from(rows), extra={"detail": detail, "argv": sys.argv})
    report.print_table("harmowam-edge bridge bench")
    report.write(json_out)
    typer.echo(f"wrote {json_out}")


@app.command()
def calibrate(
    port: PortArg,
    bus: Annotated[str, typer.Option("--bus", help="dynamixel or feetech.")],
    out: Annotated[Path, typer.Option("--out", help="Write LeRobot's calibration JSON here.")],
    preset: PresetOpt = None,
    baud: BaudOpt = DEFAULT_BAUD,
    duration: Annotated[
        float | None, typer.Option("--duration", help="Seconds to record the ranges (default: until Enter).")
    ] = None,
) -> None:
    """Calibrate a servo-bus arm as LeRobot does: torque off, the pose at start becomes mid-range, then move each
    joint through its whole range; writes the homing offsets and limits to the servos and the JSON to --out."""
    import sys

    from firmware_bridge.servo_bus.operations import arm_config
    from firmware_bridge.servo_bus.operations import calibrate as run_calibration
    from harmowam_edge.commands import option_checks as checks

    checks.positive("--duration", duration)
    config = arm_config(bus, preset, None, baud)
    typer.echo(f"{port}: torque off; the pose now is taken as the middle of every joint's range", err=True)
    typer.echo(
        "move each joint through its whole range, then press Enter"
        if duration is None
        else f"move each joint through its whole range ({duration:g} s)",
        err=True,
    )
    with _stop_on_signals() as stop:
        if duration is None:

            def wait_for_enter() -> None:
                sys.stdin.readline()
                stop.set()

            threading.Thread(target=wait_for_enter, daemon=True).start()
        cal = run_calibration(port, config, out, stop=stop, duration=duration)
    for name, c in cal.items():
        typer.echo(f"{name:>14}: id {c.id}, homing_offset {c.homing_offset:+d}, range {c.range_min}..{c.range_max}")
    typer.echo(f"wrote {out}")

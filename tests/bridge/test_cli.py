"""`harmowam-edge bridge ...` end to end: simulate (as a process), ping, monitor, enable/disable/estop/reset, bench."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest

from firmware_bridge import ArmLink, ArmMode
from harmowam_edge import cli


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run in-process; a success exits 0 (typer), an error raises SystemExit(2) to the caller."""
    try:
        cli.main(["bridge", *args])
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    return capsys.readouterr().out


@pytest.mark.parametrize("impl", ["python", "c"])
def test_simulate_prints_the_port_first_and_serves_until_interrupted(impl, c_binary) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harmowam_edge.cli", "bridge", "simulate", "--joints", "4", "--impl", impl],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/pts/")
        with ArmLink.open(port) as link:
            assert link.info.joint_count == 4
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()


def test_ping_prints_identity_and_limits(start_sim, capsys) -> None:
    sim = start_sim()
    out = run_cli(capsys, "ping", sim.port)
    assert "firmware: harmowam-sim-py 0.1.0" in out
    assert "protocol: 1.0 (schema 0x73573f94)" in out
    assert "joints: 6" in out
    assert "joint 5: [-2.9000, +2.9000] rad, 2.000 rad/s" in out
    assert "gripper: [0.0000, 0.0800] m" in out


def test_state_changing_commands(start_sim, capsys) -> None:
    sim = start_sim()
    assert run_cli(capsys, "estop", sim.port).strip().endswith("ESTOP")
    assert sim.status().mode is ArmMode.ESTOP
    with pytest.raises(SystemExit) as e:
        run_cli(capsys, "enable", sim.port, "--duration", "0.2")
    assert e.value.code == 2
    assert "e-stop is latched" in capsys.readouterr().err
    assert run_cli(capsys, "reset", sim.port).strip().endswith("DISABLED")
    out = run_cli(capsys, "enable", sim.port, "--duration", "0.3")
    assert "disabled (duration elapsed)" in out
    assert sim.status().mode is ArmMode.DISABLED
    assert sim.status().commands_ignored == 0
    assert run_cli(capsys, "disable", sim.port).strip().endswith("DISABLED")


def test_enable_holds_past_the_watchdog(start_sim, capsys) -> None:
    sim = start_sim()
    out = run_cli(capsys, "enable", sim.port, "--duration", "0.5")
    # 0.5 s > the 100 ms hold timeout: heartbeats kept it ENABLED until the end
    assert "duration elapsed" in out


def test_monitor_shows_state_and_link_health(start_sim, capsys) -> None:
    sim = start_sim()
    sim.inject(b"\x13\x37" * 50 + b"\x00")
    out = run_cli(capsys, "monitor", sim.port, "--duration", "0.3", "--interval", "0.1")
    assert "DISABLED q=[+0.000 +0.000 +0.000 +0.000 +0.000 +0.000]" in out
    assert "states " in out
    assert "CRC errors" in out


def test_bench_writes_the_architecture_json(capsys, tmp_path, c_binary) -> None:
    out_file = tmp_path / "bridge.json"
    out = run_cli(capsys, "bench", "--json", str(out_file), "--duration", "0.3", "--impl", "c")
    assert "setpoint->state echo p99 (c sim, 200 Hz)" in out
    report = json.loads(out_file.read_text())
    assert report["area"] == "bridge"
    assert {"cpu", "cores", "python"} <= set(report["machine"])
    metrics = {r["metric"]: r for r in report["rows"]}
    assert set(metrics["codec encode+decode STATE (6 joints, CPU)"]) == {"metric", "value", "unit", "target", "ok"}
    echo = metrics["setpoint->state echo p99 (c sim, 200 Hz)"]
    assert echo["unit"] == "ms"
    assert echo["value"] > 0
    assert metrics["setpoint->state echo missed (c sim)"]["unit"] == "count"  # a figure, not asserted (load)

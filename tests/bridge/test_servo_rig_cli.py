"""Servo-bus arms from rig.yaml, the `bridge --bus` commands, LeRobot-style calibration, and the run loop closed
over the Feetech protocol (the loop unchanged: a `BusArm` is just another `ArmClient`)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from firmware_bridge.servo_bus import BusArm, ServoBusSimulator, SimServoSpec, load_calibration, preset
from firmware_bridge.servo_bus.operations import calibrate
from harmowam_edge import cli
from harmowam_edge.control.arms import open_rig_arms
from harmowam_edge.control.rig import RigConfig
from harmowam_edge.errors import ConfigError

REFERENCE = [f"joint_{i}" for i in range(1, 7)] + ["gripper"]


def bus_rig(port: str, rate: float = 200.0, servos: int = 7, **arm: object) -> dict[str, object]:
    return {
        "arms": [
            {
                "name": "arm",
                "port": port,
                "bus": "feetech",
                "servos": [{"joint": REFERENCE[i], "id": i + 1, "model": "sts3215"} for i in range(servos)],
                **arm,
            }
        ],
        "control_rate_hz": rate,
    }


def test_rig_names_the_bus_and_refuses_a_tick_that_cannot_fit(tmp_path: Path) -> None:
    rig = RigConfig.from_dict(bus_rig("/dev/ttyUSB0"), source="rig.yaml")
    b = rig.arms[0].bus
    assert b is not None
    assert b.kind == "feetech"
    assert [s.servo_id for s in b.servos] == list(range(1, 8))
    with pytest.raises(ConfigError, match=r"rig\.yaml: control_rate_hz: arms\[0\].*lower the rate"):
        RigConfig.from_dict(bus_rig("/dev/ttyUSB0", rate=1000.0), source="rig.yaml")
    with pytest.raises(ConfigError, match=r"rig\.yaml: arms\[0\]\.bus"):
        RigConfig.from_dict({"arms": [{"name": "arm", "port": "p", "servos": []}]}, source="rig.yaml")
    bad = bus_rig("/dev/ttyUSB0")
    bad["arms"][0]["servos"][1]["id"] = 300  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"arms\[0\]\.servos\[1\]\.id"):
        RigConfig.from_dict(bad, source="rig.yaml")
    # a relative calibration path is relative to the rig file
    p = tmp_path / "rig.yaml"
    import yaml

    p.write_text(yaml.safe_dump(bus_rig("/dev/ttyUSB0", calibration="cal/follower.json")))
    assert RigConfig.load(p).arms[0].bus.calibration == str(tmp_path / "cal" / "follower.json")  # type: ignore[union-attr]


def test_open_rig_arms_gives_the_loop_an_open_bus_arm() -> None:
    sim = ServoBusSimulator("feetech", [SimServoSpec(i, "sts3215") for i in range(1, 8)])
    with sim:
        rig = RigConfig.from_dict(bus_rig(sim.port), source="rig.yaml")
        (arm,) = open_rig_arms(rig, 0.2)
        assert isinstance(arm, BusArm)
        try:
            assert arm.info.joint_count == 6
            assert arm.info.has_gripper
        finally:
            arm.close()


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    try:
        cli.main(["bridge", *args])
    except SystemExit as e:
        if e.code not in (0, None):
            raise
    return capsys.readouterr().out


@pytest.mark.parametrize("bus", ["feetech", "dynamixel"])
def test_simulate_bus_serves_what_ping_lists(bus: str, capsys: pytest.CaptureFixture[str]) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "harmowam_edge.cli", "bridge", "simulate", "--bus", bus],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        port = proc.stdout.readline().strip()
        assert port.startswith("/dev/pts/")
        out = run_cli(capsys, "ping", port, "--bus", bus, "--ids", "0-8")
        model = "sts3215" if bus == "feetech" else "xl430-w250"
        assert f"6 {bus} servo(s)" in out
        for i in range(1, 7):
            assert f"   {i}  {model}" in out
        out = run_cli(capsys, "monitor", port, "--bus", bus, "--duration", "0.3", "--interval", "0.1")
        assert "DISABLED" in out
        assert "q=[" in out
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()


def test_ping_of_a_missing_bus_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        cli.main(["bridge", "ping", "/dev/does-not-exist", "--bus", "feetech"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("harmowam-edge: error: ")
    assert "/dev/does-not-exist" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("bus", ["feetech", "dynamixel"])
def test_calibrate_writes_lerobot_json_that_the_arm_then_accepts(bus: str, tmp_path: Path) -> None:
    """The routine: the pose at start is mid-range; every joint is moved through its range by hand."""
    out = tmp_path / "follower.json"
    name = "so101" if bus == "feetech" else "xl430"
    with ServoBusSimulator(bus) as sim:
        starts = {sid: s.actual for sid, s in sim.servos.items()}
        stop = threading.Event()
        moved = threading.Event()
        seen: list[dict[str, tuple[int, int, int]]] = [{}]
        updated = threading.Event()
        names = list(preset(name).servos)

        def on_update(ranges: dict[str, tuple[int, int, int]]) -> None:
            seen[0] = ranges
            updated.set()

        def hand() -> None:  # the user's hand, a joint at a time: down 600 ticks, up 700
            updated.wait(10.0)  # the routine has taken the start pose as mid-range
            for joint, sid in zip(names, sim.servos, strict=True):
                for delta in (-600, 700):
                    sim.move_by_hand(sid, starts[sid] + delta)
                    deadline = time.monotonic() + 10.0
                    while seen[0].get(joint.name, (0, 0, 0))[1] != 2047 + delta and time.monotonic() < deadline:
                        updated.wait(0.05)
                        updated.clear()
            moved.set()
            stop.set()

        t = threading.Thread(target=hand)
        t.start()
        cal = calibrate(sim.port, preset(name), out, stop=stop, duration=60.0, on_update=on_update)
        t.join()
        assert moved.is_set()
        saved = json.loads(out.read_text())
        assert list(saved) == ["shoulder_pan", "shoulder_lift", "elbow_flex", "wrist_flex", "wrist_roll", "gripper"]
        for c in cal.values():
            # mid at start (2047 after homing), then -600 / +700 around it
            assert (c.range_min, c.range_max) == (2047 - 600, 2047 + 700)
            assert set(saved["gripper"]) == {"id", "drive_mode", "homing_offset", "range_min", "range_max"}
        for s in sim.servos.values():
            assert s.get("min_position_limit") == 2047 - 600  # limits written to the servo
        arm = BusArm.open(sim.port, preset(name, calibration=load_calibration(out), calibration_source=str(out)))
        with arm:
            st = arm.state()
            assert st is not None
            # the hand left each joint at start + 700, i.e. 700 - 50 ticks above the range's middle
            assert np.allclose(st.positions, (700 - 50) * 2 * np.pi / 4095, atol=1e-6)


@pytest.mark.sim
@pytest.mark.parametrize("bus", ["feetech"])
def test_run_loop_closed_over_the_servo_protocol_on_the_mujoco_rig(bus: str, nano_bundle: Path) -> None:
    """`run --sim --bus feetech`: the runtime's loop drives the MuJoCo arm through a simulated servo bus; a
    BusArm is just another ArmClient (the loop is unchanged): enable, ramp in, track, hold, torque off."""
    pytest.importorskip("mujoco", reason="the sim extra (MuJoCo) runs the simulated rig")
    pytest.importorskip("onnxruntime")
    from harmowam_edge.bundle.loader import load_bundle
    from harmowam_edge.control.loop import DURATION, Rig, RunOptions, run_policy
    from harmowam_edge.control.safety import SafetyConfig
    from harmowam_edge.sim.rig import open_sim_rig

    bundle = load_bundle(nano_bundle)
    m = bundle.manifest
    torque_seen: list[bool] = []
    with open_sim_rig(1, list(m.cameras), seed=3, action_space=m.action_space, bus=bus) as rig:
        sim = rig.simulators[0]
        assert isinstance(sim, ServoBusSimulator)
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.02):
                torque_seen.append(all(s.torque_on for s in sim.servos.values()))

        w = threading.Thread(target=watch)
        w.start()
        try:
            summary = run_policy(
                bundle,
                Rig(arms=rig.arm_handles(0.5), cameras=rig.cameras, name="sim"),
                RunOptions(task="reach_red_cube", duration_s=2.0, handle_signals=False,
                           safety=SafetyConfig(state_timeout_s=0.5)),
                observers=[],
            )  # fmt: skip
        finally:
            stop.set()
            w.join()
        plant = rig.plants[0]
        assert plant.commands > 50  # the physics followed the servos' goals
        assert not plant.torque_on
    assert summary.reason.kind == DURATION, summary.reason
    assert any(torque_seen)
    assert not any(s.torque_on for s in sim.servos.values())  # torque off at the end

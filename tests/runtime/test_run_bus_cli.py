"""`harmowam-edge run` on servo-bus arms: a rig file naming a Feetech bus (simulator on a PTY), and `--bus`."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import yaml

from firmware_bridge.servo_bus import ServoBusSimulator, SimServoSpec
from harmowam_edge.cli import main
from tests.recordings import Recording, make_recording

pytest.importorskip("pyrealsense2", reason="the run plays a RealSense recording (pyrealsense2)")
pytest.importorskip("onnxruntime")

JOINTS = [f"joint_{i}" for i in range(1, 7)] + ["gripper"]


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


@pytest.fixture(scope="module")
def cam_recording(recordings_dir: Path) -> Recording:
    return make_recording(recordings_dir / "bus.db3", frames=24, fps=30)


def _rig(path: Path, port: str, recording: Path, bus: str = "feetech") -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "arms": [
                    {
                        "name": "arm",
                        "port": port,
                        "bus": bus,
                        "servos": [{"joint": j, "id": i + 1, "model": "sts3215"} for i, j in enumerate(JOINTS)],
                    }
                ],
                "cameras": [{"name": "cam0", "recording": str(recording)}],
                # a slow tick and a patient state timeout: the run must not depend on the machine's load
                "control_rate_hz": 50,
                "safety": {"state_timeout_s": 0.5},
            }
        )
    )
    return path


def test_run_with_a_rig_file_drives_a_feetech_bus(nano_bundle, cam_recording, tmp_path, capsys) -> None:
    sim = ServoBusSimulator("feetech", [SimServoSpec(i, "sts3215") for i in range(1, 8)])
    torque_seen: list[bool] = []
    with sim:
        rig = _rig(tmp_path / "rig.yaml", sim.port, cam_recording.path)
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(0.02):
                torque_seen.append(all(s.torque_on for s in sim.servos.values()))

        w = threading.Thread(target=watch)
        w.start()
        stats = tmp_path / "stats.json"
        try:
            code, err = _main(
                ["run", "--bundle", str(nano_bundle), "--rig", str(rig), "--loop-recording", "--duration", "1.5",
                 "--stats", str(stats), "--quiet"],
                capsys,
            )  # fmt: skip
        finally:
            stop.set()
            w.join()
        torque_after = [s.torque_on for s in sim.servos.values()]
    assert not any(torque_after)  # torque off at the end, whatever the run's end
    s = json.loads(stats.read_text())
    if code == 1 and s["reason"]["kind"] == "state_stale":  # the bus simulator got no CPU for 0.5 s
        pytest.skip("the run was starved (stale arm state), not judged")
    assert code == 0, err
    assert s["reason"]["kind"] == "duration"
    assert s["setpoints_sent"] > 0
    assert any(torque_seen)  # the run enabled the servos


def test_run_refuses_a_bad_bus_name_in_one_line(nano_bundle, cam_recording, tmp_path, capsys) -> None:
    rig = _rig(tmp_path / "rig.yaml", "/dev/ttyUSB0", cam_recording.path, bus="canbus")
    code, err = _main(["run", "--bundle", str(nano_bundle), "--rig", str(rig), "--quiet"], capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]  # after the bundle's notes
    assert last.startswith("harmowam-edge: error: ")
    assert "rig.yaml: arms[0].bus" in last
    assert "canbus" in last
    assert err.count("harmowam-edge: error:") == 1
    assert "Traceback" not in err
    code, err = _main(["run", "--sim", "--bus", "canbus", "--quiet"], capsys)
    assert code == 2
    assert err.startswith("harmowam-edge: error: --bus: expected one of feetech, dynamixel")
    assert len(err.strip().splitlines()) == 1

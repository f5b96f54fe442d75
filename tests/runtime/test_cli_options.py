"""Numeric options are checked before anything moves (issue 11, item 4): one line, exit 2, the port untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from firmware_bridge import FirmwareSimulator
from harmowam_edge.cli import main
from harmowam_edge.commands import option_checks as checks
from harmowam_edge.errors import ConfigError
from tests.recordings import Recording, make_recording


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("harmowam-edge: error: "), err
    return lines[0]


@pytest.mark.parametrize(("value", "shown"), [(0.0, "0"), (-5.0, "-5"), (float("nan"), "nan"), (float("inf"), "inf")])
def test_positive_refuses_zero_negative_and_non_finite(value: float, shown: str) -> None:
    with pytest.raises(ConfigError, match=f"--duration: expected a finite number of seconds > 0, got {shown}"):
        checks.positive("--duration", value)


def test_the_checks_pass_sound_values_and_absent_options() -> None:
    checks.positive("--duration", 0.01)
    checks.positive("--duration", None)
    checks.rate_hz("--rate", 200.0)
    checks.int_range("--threads", 1, 1)
    checks.int_range("--arm", 7, 0, 7)
    with pytest.raises(ConfigError, match=r"--arm: expected an integer 0\.\.7, got 8"):
        checks.int_range("--arm", 8, 0, 7)
    with pytest.raises(ConfigError, match="--rate: expected a rate between 10 and 2000 Hz, got 0"):
        checks.rate_hz("--rate", 0.0)


@pytest.fixture(scope="module")
def cam_recording(recordings_dir: Path) -> Recording:
    pytest.importorskip("pyrealsense2", reason="run plays a RealSense recording (pyrealsense2)")
    return make_recording(recordings_dir / "options.db3", frames=12, fps=30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "0"], "--duration: expected a finite number of seconds > 0, got 0"),
        (["--duration", "-5"], "--duration: expected a finite number of seconds > 0, got -5"),
        (["--duration", "nan"], "--duration: expected a finite number of seconds > 0, got nan"),
        (["--duration", "1", "--rate", "0"], "--rate: expected a rate between 10 and 2000 Hz, got 0"),
        (["--duration", "1", "--rate", "-200"], "--rate: expected a rate between 10 and 2000 Hz, got -200"),
        (["--duration", "1", "--threads", "0"], "--threads: expected an integer >= 1, got 0"),
        (["--duration", "1", "--seed", "-1"], "--seed: expected an integer >= 0, got -1"),
        (["--duration", "1", "--replan-every", "0"], "--replan-every: expected an integer >= 1, got 0"),
    ],
)
def test_run_refuses_a_bad_number_before_the_arm_hears_anything(
    nano_bundle: Path, cam_recording: Recording, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    with FirmwareSimulator() as sim:
        code, err = _main(
            ["run", "--bundle", str(nano_bundle), "--camera", str(cam_recording.path), "--loop-recording",
             "--port", sim.port, "--quiet", *args],
            capsys,
        )  # fmt: skip
        status = sim.status()
    assert code == 2
    assert message in one_error_line(err)
    assert status.frames_rx == 0  # not even opened: no handshake, no enable, no setpoint
    assert status.commands == 0
    assert not status.torque_on


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bench", "--duration", "0"], "--duration: expected a finite number of seconds > 0, got 0"),
        (["bench", "--threads", "0"], "--threads: expected an integer >= 1, got 0"),
        (["bridge", "monitor", "/dev/null", "--interval", "0"], "--interval: expected a finite number of seconds"),
        (["bridge", "enable", "/dev/null", "--duration", "nan"], "--duration: expected a finite number of seconds"),
        (["bridge", "ping", "/dev/null", "--baud", "0"], "--baud: expected an integer >= 1, got 0"),
        (["bridge", "ping", "/dev/null", "--arm", "9"], "--arm: expected an integer 0..7, got 9"),
        (["bridge", "simulate", "--joints", "0"], "--joints: expected an integer 1..16, got 0"),
        (["bridge", "bench", "--duration", "-1"], "--duration: expected a finite number of seconds > 0, got -1"),
        (["sim", "serve", "--duration", "0"], "--duration: expected a finite number of seconds > 0, got 0"),
        (["sim", "scene", "--out", "x.xml", "--arms", "3"], "--arms: expected an integer 1..2, got 3"),
        (["camera", "record", "--out", "x.db3", "--duration", "1", "--fps", "0"], "--fps: expected an integer >= 1"),
        (["export", "init", "--out", "ck", "--seed", "-3"], "--seed: expected an integer >= 0, got -3"),
        (["export", "bundle", "ck", "--out", "b", "--budget", "inf"], "--budget: expected a finite number of percent"),
        (["export", "bundle", "ck", "--out", "b", "--min-gate-agreement", "1.5"], "--min-gate-agreement: expected a"),
        (["calibrate", "check", "--calib", "c.json", "--frames", "0"], "--frames: expected an integer >= 1, got 0"),
    ],
)
def test_every_command_refuses_bad_numbers_in_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written; if something were, it lands here
    code, err = _main(args, capsys)
    assert code == 2
    assert message in one_error_line(err)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("1,2", ("--joint-pos '1,2': expected 7 comma-separated values (joint_1, joint_2, joint_3, joint_4, "
                 "joint_5, joint_6, gripper), got 2")),
        ("0,0,0,nan,0,0,0", "expected finite numbers"),
    ],
)  # fmt: skip
def test_replay_joint_pos_of_the_wrong_length_is_one_line(
    nano_bundle: Path, cam_recording: Recording, tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str,
    message: str,
) -> None:  # fmt: skip
    out = tmp_path / "replay.npz"
    code, err = _main(
        ["replay", "--bundle", str(nano_bundle), "--recording", str(cam_recording.path), "--out", str(out),
         "--joint-pos", value],
        capsys,
    )  # fmt: skip
    assert code == 2
    assert message in one_error_line(err)
    assert not out.exists()

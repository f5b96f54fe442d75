"""The runtime CLI: run, replay, bench, doctor, camera — in process through `harmowam_edge.cli.main`."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mcap.reader import make_reader

from firmware_bridge import FirmwareSimulator
from harmowam_edge.cli import main
from tests.recordings import Recording, make_recording

pytest.importorskip("pyrealsense2", reason="the CLI tests play RealSense recordings (pyrealsense2)")


def _main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def cam_recording(recordings_dir: Path) -> Recording:
    return make_recording(recordings_dir / "cli.db3", frames=24, fps=30)


def test_run_dry_run_on_a_recording_writes_stats_and_episode(nano_bundle, cam_recording, tmp_path, capsys) -> None:
    stats, episode = tmp_path / "stats.json", tmp_path / "ep.mcap"
    code, _, err = _main(
        ["run", "--bundle", str(nano_bundle), "--camera", str(cam_recording.path), "--dry-run",
         "--task", "pick_red_cube", "--stats", str(stats), "--record", str(episode), "--quiet"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    assert "DRY RUN" in err
    s = json.loads(stats.read_text())
    assert s["reason"]["kind"] == "recording_ended"  # a recording that ends is a normal end
    assert s["dry_run"] is True
    assert s["setpoints_sent"] == 0
    assert s["chunks"]["made"] >= 1
    assert s["task"] == "pick_red_cube"
    with open(episode, "rb") as f:
        reader = make_reader(f)
        topics = {ch.topic for _, ch, _ in reader.iter_messages()}
        meta = {m.name: m.metadata for m in reader.iter_metadata()}
    assert {"/control/tick", "/policy/chunk", "/camera/cam0/color"} <= topics
    assert meta["summary"]["reason"] == "recording_ended"


def test_run_drives_the_firmware_over_its_port(nano_bundle, cam_recording, tmp_path, capsys) -> None:
    with FirmwareSimulator() as sim:
        stats = tmp_path / "stats.json"
        code, _, err = _main(
            ["run", "--bundle", str(nano_bundle), "--camera", str(cam_recording.path), "--loop-recording",
             "--port", sim.port, "--duration", "1.5", "--stats", str(stats), "--quiet"],
            capsys,
        )  # fmt: skip
        status = sim.status()
    assert code == 0, err
    s = json.loads(stats.read_text())
    assert s["reason"]["kind"] == "duration"
    assert s["setpoints_sent"] > 0
    assert status.commands >= s["setpoints_sent"] * 0.9
    assert not status.torque_on
    assert "harmowam-edge run" in err  # the end-of-run summary


def test_run_refuses_an_e_stopped_arm_with_a_clear_error(nano_bundle, cam_recording, capsys) -> None:
    with FirmwareSimulator() as sim:
        sim.press_estop()
        code, _, err = _main(
            ["run", "--bundle", str(nano_bundle), "--camera", str(cam_recording.path), "--port", sim.port, "--quiet"],
            capsys,
        )
        assert sim.status().commands == 0
    assert code == 2
    assert "harmowam-edge: error:" in err
    assert "e-stopped" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--task", "fly", "--dry-run"], "no task 'fly'; the bundle's tasks: pick_red_cube, pick_green_cube"),
        ([], "--port: give the arm's serial port"),
        (["--dry-run", "--video", "v.mp4"], "--video films the simulated camera: it needs --sim"),
        (["--dry-run", "--backend", "cuda"], "--backend: expected one of auto, onnxruntime, tensorrt"),
        (["--dry-run", "--backend", "tensorrt"], "TensorRT requested but not usable here"),
    ],
)
def test_run_user_mistakes_are_one_line_errors(nano_bundle, cam_recording, capsys, args, message) -> None:
    if "tensorrt" in args:
        try:
            import tensorrt  # noqa: F401

            pytest.skip("TensorRT is installed here")
        except ImportError:
            pass
    code, _, err = _main(["run", "--bundle", str(nano_bundle), "--camera", str(cam_recording.path), *args], capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_run_with_a_rig_file(nano_bundle, cam_recording, tmp_path, capsys) -> None:
    with FirmwareSimulator() as sim:
        rig = tmp_path / "rig.yaml"
        rig.write_text(
            f"arms:\n  - name: arm\n    port: {sim.port}\n    velocity_scale: 0.5\n"
            f"cameras:\n  - name: cam0\n    recording: {cam_recording.path}\n"
            "control_rate_hz: 250\nsafety: {state_timeout_s: 0.5}\n"
        )
        stats = tmp_path / "stats.json"
        args = ["run", "--bundle", str(nano_bundle), "--rig", str(rig), "--duration", "1", "--stats", str(stats)]
        code, _, err = _main([*args, "--quiet"], capsys)
    assert code == 0, err
    s = json.loads(stats.read_text())
    assert s["control_rate_hz"] == 250
    bad = tmp_path / "bad.yaml"
    bad.write_text("arms:\n  - name: left\n    port: /dev/null\n")
    code, _, err = _main(["run", "--bundle", str(nano_bundle), "--rig", str(bad), "--dry-run"], capsys)
    assert code == 2
    assert "bad.yaml: arms: the bundle's arms are ['arm'] (in this order), the rig has ['left']" in err


def test_replay_writes_actions_gate_weights_and_timings(nano_bundle, cam_recording, tmp_path, capsys) -> None:
    out = tmp_path / "replay.npz"
    code, stdout, err = _main(
        ["replay", "--bundle", str(nano_bundle), "--recording", str(cam_recording.path), "--out", str(out)], capsys
    )
    assert code == 0, err
    d = np.load(out)
    n = d["actions"].shape[0]
    assert n >= 20  # every frame of the recording (non-real-time playback)
    assert d["actions"].shape == (n, 12, 7)
    assert d["gate_weights"].shape == (n, 12)
    assert d["timings_ms"].shape == (n, 6)
    assert (np.diff(d["frame_number"]) == 1).all()
    assert f"{n} policy steps" in stdout
    out_json = tmp_path / "replay.json"
    code, _, err = _main(
        ["replay", "--bundle", str(nano_bundle), "--recording", str(cam_recording.path), "--out", str(out_json),
         "--flow-mode", "step"],
        capsys,
    )  # fmt: skip
    assert code == 0, err
    doc = json.loads(out_json.read_text())
    assert len(doc["steps"]) == n
    assert doc["steps"][0]["experts"] == ["reactive_expert", "predictive_expert_step"]


def test_doctor_reports_a_corrupt_bundle_with_its_fix(nano_bundle, tmp_path, capsys) -> None:
    code, out, _ = _main(["doctor", "--bundle", str(nano_bundle)], capsys)
    assert code == 0
    assert "every sha256 matches" in out.replace("\n", " ")
    bad = tmp_path / "bad"
    shutil.copytree(nano_bundle, bad)
    (bad / "tasks.npy").write_bytes(b"garbage")
    code, out, err = _main(["doctor", "--bundle", str(bad)], capsys)
    assert code == 1
    assert "sha256 differs" in " ".join(out.split())
    assert "problem(s) to fix" in err


def test_camera_list_without_a_device(capsys) -> None:
    import pyrealsense2 as rs

    if len(rs.context().query_devices()):
        pytest.skip("a RealSense device is connected")
    code, out, _ = _main(["camera", "list"], capsys)
    assert code == 0
    assert "no RealSense device found" in out


def test_camera_record_refuses_a_bag_name(tmp_path, capsys) -> None:
    code, _, err = _main(["camera", "record", "--out", str(tmp_path / "x.bag"), "--duration", "1"], capsys)
    assert code == 2
    assert "records ROS2 .db3 files only" in err


def test_bench_writes_the_table_and_json(nano_bundle, tmp_path, capsys) -> None:
    out = tmp_path / "runtime.json"
    code, stdout, err = _main(
        ["bench", "--bundle", str(nano_bundle), "--json", str(out), "--duration", "1.5", "--iterations", "20"], capsys
    )
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["area"] == "runtime"
    assert {"cpu", "cores", "python"} <= set(doc["machine"])
    metrics = {r["metric"]: r for r in doc["rows"]}
    for m in (
        "policy step p50, predictive path",
        "policy step p50, reactive path",
        "reactive / predictive path (p50)",
        "runtime overhead: policy step vs bare engine calls (p50)",
        "control loop period jitter p99 (200 Hz, inference running)",
        "frame -> setpoint latency p50",
        "start-up to first setpoint (warm bundle, median of 3)",
        "platform baseline: longest period, empty 200 Hz loop",
    ):
        assert m in metrics, m
        assert set(metrics[m]) == {"metric", "value", "unit", "target", "ok"}
    assert metrics["policy step p50, predictive path"]["ok"] is None  # nano, not the small preset
    assert metrics["platform baseline: longest period, empty 200 Hz loop"]["value"] >= 5.0 * 0.999  # a 200 Hz period
    assert "harmowam-edge bench (runtime)" in stdout


def test_bench_of_several_bundles_times_them_interleaved_with_ratios(
    nano_bundle, bundle_factory, tmp_path, capsys
) -> None:
    other = bundle_factory(seed=1, width=128, height=96)
    out = tmp_path / "compare.json"
    args = ["bench", "--bundle", str(nano_bundle), "--bundle", str(other), "--threads", "2", "--iterations", "10"]
    code, stdout, err = _main([*args, "--json", str(out)], capsys)
    assert code == 0, err
    doc = json.loads(out.read_text())
    assert doc["area"] == "runtime-compare"
    details = doc["details"]["bundles"]
    assert [d["bundle"] for d in details] == [str(nano_bundle), str(other)]
    assert all(d["threads"] == 2 and d["graphs"].startswith("world_model fp32") for d in details)
    rows = {r["metric"]: r for r in doc["rows"]}
    first = [m for m in rows if m.startswith(f"{nano_bundle.name} (") and m.endswith("predictive path p50")]
    assert len(first) == 1
    assert rows[first[0]]["target"].startswith("<= 10 ms")
    assert isinstance(rows[first[0]]["ok"], bool)
    ratio = rows[f"predictive path: {other.name} / {nano_bundle.name} (p50)"]["value"]
    p50 = [d["ms"]["predictive"]["p50"] for d in details]
    assert ratio == pytest.approx(p50[1] / p50[0], rel=1e-6)
    speed = rows[f"world model speed-up: {other.name} (fp32) vs {nano_bundle.name} (fp32)"]
    assert speed["target"] == ""
    assert speed["ok"] is None
    assert "bundles interleaved" in stdout
    # the single-bundle bench and its loop are not run
    assert not any(m.startswith("control loop") for m in rows)

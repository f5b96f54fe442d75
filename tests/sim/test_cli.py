"""`harmowam-edge sim ...` commands and the cached demo bundle of `run --sim`."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from harmowam_edge.cli import main

pytestmark = pytest.mark.sim


def _run(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_sim_urdf_and_scene_write_loadable_files(tmp_path, capsys):
    mujoco = pytest.importorskip("mujoco")
    from harmowam_edge.sim.urdf import urdf_xml

    code, _out, _ = _run(capsys, "sim", "urdf", "--out", str(tmp_path / "arm.urdf"), "--prefix", "left_")
    assert code == 0
    assert (tmp_path / "arm.urdf").read_text() == urdf_xml("left_")
    code, _, _ = _run(capsys, "sim", "scene", "--out", str(tmp_path / "scene.xml"), "--arms", "2")
    assert code == 0
    model = mujoco.MjModel.from_xml_path(str(tmp_path / "scene.xml"))
    assert model.nu == 16


def test_sim_demos_rejects_an_unknown_task_in_one_line(tmp_path, capsys):
    code, _, err = _run(capsys, "sim", "demos", "--task", "push", "--episodes", "1", "--out", str(tmp_path / "d"))
    assert code == 2
    assert err.startswith("harmowam-edge: error: --task 'push'")
    assert "Traceback" not in err
    assert not (tmp_path / "d").exists()
    code, _, err = _run(
        capsys, "sim", "demos", "--task", "reach", "--episodes", "1", "--out", str(tmp_path / "e"), "--size", "big"
    )
    assert code == 2
    assert "--size 'big'" in err


def test_sim_demos_refuses_evaluation_seeds_and_unknown_perturbations(tmp_path, capsys):
    base = ["sim", "demos", "--task", "pick", "--out", str(tmp_path / "d")]
    code, _, err = _run(capsys, *base, "--episodes", "2", "--seed", "99999")
    assert code == 2
    assert "uses seeds 99999..100000: training seeds are 0..99999" in err
    code, _, err = _run(capsys, *base, "--episodes", "1", "--perturb", "start,shove")
    assert code == 2
    assert "--perturb 'start,shove'" in err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--episodes", "0", "--episodes: expected an integer >= 1, got 0"),
        ("--fps", "0", "--fps: expected an integer >= 1, got 0"),
        ("--seed", "-1", "--seed: expected an integer >= 0, got -1"),
        ("--record-hz", "inf", "--record-hz: expected a finite number of steps per second > 0, got inf"),
        ("--record-hz", "nan", "--record-hz: expected a finite number of steps per second > 0, got nan"),
        ("--record-hz", "0", "--record-hz: expected a finite number of steps per second > 0, got 0"),
        ("--record-hz", "-5", "--record-hz: expected a finite number of steps per second > 0, got -5"),
    ],
)
def test_sim_demos_checks_its_numbers_before_anything_starts(tmp_path, capsys, option, value, expected):
    args = {"--task": "reach", "--episodes": "1", "--out": str(tmp_path / "d"), option: value}
    code, _, err = _run(capsys, "sim", "demos", *[x for kv in args.items() for x in kv])
    assert code == 2
    assert err == f"harmowam-edge: error: {expected}\n"
    assert not (tmp_path / "d").exists()
    staged = ["--format", "lerobot"]  # the LeRobot staging folder is not made either
    code, _, err = _run(capsys, "sim", "demos", *[x for kv in args.items() for x in kv], *staged)
    assert code == 2
    assert err == f"harmowam-edge: error: {expected}\n"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("--episodes", "0", "--episodes: expected an integer >= 1, got 0"),
        ("--time-budget", "inf", "--time-budget: expected a finite number of seconds > 0, got inf"),
        ("--time-budget", "nan", "--time-budget: expected a finite number of seconds > 0, got nan"),
        ("--time-budget", "0", "--time-budget: expected a finite number of seconds > 0, got 0"),
        ("--threads", "0", "--threads: expected an integer >= 1, got 0"),
        ("--seed", "-1", "--seed: expected an integer >= 0, got -1"),
    ],
)
def test_sim_eval_checks_its_numbers_before_anything_starts(tmp_path, capsys, option, value, expected):
    out = tmp_path / "eval"
    # the bundle does not exist: the numbers are checked before it is even looked at
    args = ["sim", "eval", "--bundle", str(tmp_path / "none"), "--task", "pick", "--out", str(out), option, value]
    code, _, err = _run(capsys, *args)
    assert code == 2
    assert err == f"harmowam-edge: error: {expected}\n"
    assert not out.exists()


def test_run_scene_needs_sim(capsys):
    code, _, err = _run(capsys, "run", "--bundle", "nowhere", "--scene", "background", "--dry-run")
    assert code == 2
    assert "--scene chooses the simulated rig's scene: it needs --sim" in err


def test_sim_demos_records_a_small_colour_only_camera_per_frame(tmp_path, capsys):
    from harmowam_edge.sim.demos import read_dataset

    out = tmp_path / "d"
    code, stdout, err = _run(
        capsys, "sim", "demos", "--task", "reach_green_cube", "--episodes", "1", "--out", str(out),
        "--cameras", "front:64x48", "--no-depth", "--fps", "15",
    )  # fmt: skip
    assert code == 0, err
    assert "reach_green_cube" in stdout
    meta = read_dataset(out)
    assert meta["cameras"][0]["width"] == 64
    assert meta["cameras"][0]["streams"] == ["color"]
    assert meta["record_hz"] is None
    ep = meta["episodes"][0]
    # One step per frame at 15 fps over the episode (generous bounds: a loaded machine drops frames).
    assert 0.4 * 15 * ep["duration_s"] <= ep["steps"] <= 15 * ep["duration_s"] + 2


def test_sim_bench_writes_the_architecture_json_format(tmp_path, capsys):
    path = tmp_path / "sim.json"
    code, out, _ = _run(capsys, "sim", "bench", "--quick", "--no-rig", "--no-loop", "--json", str(path))
    assert code == 0
    assert "render RGB-D 640x480" in out
    data = json.loads(path.read_text())
    assert data["area"] == "sim"
    assert {"cpu", "cores", "python"} <= set(data["machine"])
    metrics = {r["metric"]: r for r in data["rows"]}
    for name in ("render RGB-D 640x480 p50", "render RGB-D 160x120 p50", "physics thread real-time factor (1 arm)"):
        row = metrics[name]
        assert set(row) == {"metric", "value", "unit", "target", "ok"}
        assert row["value"] > 0


def test_sim_serve_runs_the_arm_behind_a_port(capsys):
    code, out, _ = _run(capsys, "sim", "serve", "--duration", "0.5")
    assert code == 0
    assert "arm 'arm': port " in out
    port = out.split("port ", 1)[1].split(" ", 1)[0]
    assert not Path(port).exists()  # closed on exit


def test_demo_bundle_cache_reuses_an_intact_bundle_and_rebuilds_a_damaged_one(nano_bundle, tmp_path, monkeypatch):
    """The cache logic of `run --sim` without --bundle. The build itself is export's (tested there); here a copy
    of the session's nano bundle stands in for the 30 s build, so only the caching is under test."""
    import export
    from harmowam_edge.commands import sim as sim_cmd

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    builds: list[Path] = []

    def fake_build(out, **kwargs):
        builds.append(Path(out))
        shutil.copytree(nano_bundle, out)

    monkeypatch.setattr(export, "build_demo_bundle", fake_build)
    path, built = sim_cmd.ensure_demo_bundle(1, untrained=True)
    assert built
    assert len(builds) == 1
    assert path.parent == tmp_path / "harmowam-edge" / "demo-bundles"
    assert sim_cmd.bundle_is_intact(path)
    again, built = sim_cmd.ensure_demo_bundle(1, untrained=True)
    assert (again, built) == (path, False)
    assert len(builds) == 1
    victim = next(p for p in path.iterdir() if p.suffix == ".onnx")
    victim.write_bytes(victim.read_bytes()[:-10])
    assert not sim_cmd.bundle_is_intact(path)
    rebuilt, built = sim_cmd.ensure_demo_bundle(1, untrained=True)
    assert built
    assert rebuilt == path
    assert sim_cmd.bundle_is_intact(path)
    assert not list((tmp_path / "harmowam-edge" / "demo-bundles").glob(".build-*"))


def test_run_sim_closes_the_loop_and_films_it(nano_bundle, tmp_path, capsys):
    """`harmowam-edge run --sim`: the runtime's own run command on the simulated rig, with --video."""
    video = tmp_path / "run.mp4"
    code, out, err = _run(
        capsys, "run", "--sim", "--bundle", str(nano_bundle), "--duration", "2", "--video", str(video), "--quiet"
    )
    if code == 1 and "state_stale" in err:  # the firmware simulator got no CPU for 0.5 s: an overloaded machine
        pytest.skip("the run was starved (stale arm state), not judged")
    assert code == 0, err
    said = out + err  # progress lines go to stderr, the summary to stdout
    assert "simulated rig (MuJoCo" in said
    assert "duration reached" in said
    # The summary judges the task from the sim's ground truth: an untrained policy does not do it in 2 s.
    assert re.search(r"task \w+: NOT DONE \(ended in stage \w+: ", said), said
    assert f"wrote {video}" in said
    assert video.stat().st_size > 1000


def test_run_sim_bus_closes_the_loop_over_the_servo_protocol(nano_bundle, tmp_path, capsys):
    """`run --sim --bus feetech`: each MuJoCo arm behind a Feetech bus simulator, the run command unchanged."""
    stats = tmp_path / "stats.json"
    code, _, err = _run(
        capsys, "run", "--sim", "--bundle", str(nano_bundle), "--bus", "feetech", "--duration", "1.5",
        "--stats", str(stats), "--quiet",
    )  # fmt: skip
    assert "behind a feetech servo bus each" in err
    if code == 1 and "state_stale" in err:  # the bus simulator got no CPU for 0.5 s: an overloaded machine
        pytest.skip("the run was starved (stale arm state), not judged")
    assert code == 0, err
    s = json.loads(stats.read_text())
    assert s["reason"]["kind"] == "duration"
    assert s["setpoints_sent"] > 0
    code, _, err = _run(capsys, "run", "--bundle", str(nano_bundle), "--bus", "feetech")
    assert code == 2
    assert err.startswith("harmowam-edge: error: --bus: the simulated rig's servo bus needs --sim")
    assert len(err.strip().splitlines()) == 1


def test_run_sim_arm_count_must_match_the_bundle(nano_bundle, tmp_path, capsys):
    code, _, err = _run(capsys, "run", "--sim", "--bundle", str(nano_bundle), "--arms", "2", "--duration", "1")
    assert code == 2
    assert "--arms 2: the bundle" in err
    assert "drives 1 arm(s)" in err
    code, _, err = _run(capsys, "run", "--bundle", str(nano_bundle), "--arms", "2")
    assert code == 2
    assert "needs --sim" in err
    code, _, err = _run(capsys, "run", "--sim", "--bundle", str(nano_bundle), "--video", str(tmp_path / "x.avi"))
    assert code == 2
    assert ".mp4 or .png" in err

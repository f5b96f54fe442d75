"""`harmowam-edge sim ...` commands and the cached demo bundle of `run --sim`."""

from __future__ import annotations

import json
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
    path, built = sim_cmd.ensure_demo_bundle(1)
    assert built
    assert len(builds) == 1
    assert path.parent == tmp_path / "harmowam-edge" / "demo-bundles"
    assert sim_cmd.bundle_is_intact(path)
    again, built = sim_cmd.ensure_demo_bundle(1)
    assert (again, built) == (path, False)
    assert len(builds) == 1
    victim = next(p for p in path.iterdir() if p.suffix == ".onnx")
    victim.write_bytes(victim.read_bytes()[:-10])
    assert not sim_cmd.bundle_is_intact(path)
    rebuilt, built = sim_cmd.ensure_demo_bundle(1)
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
    assert code == 0, err
    said = out + err  # progress lines go to stderr, the summary to stdout
    assert "simulated rig (MuJoCo" in said
    assert "duration reached" in said
    assert f"wrote {video}" in said
    assert video.stat().st_size > 1000


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

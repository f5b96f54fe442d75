"""`harmowam-edge distill`: a tiny trained teacher into a narrower nano student with one flow step, the shipped
checkpoint's provenance check, and the INT8 accuracy report on demonstration frames."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from tests.export.training_data import write_demos

pytest.importorskip("torch", reason="distillation needs the export extra (torch)")

STEPS = 150  # distillation steps
TEACHER_STEPS = 100  # the teacher only has to be a fixed trained function, not a good policy


def _opts(steps: int = STEPS, **kw):
    from export.learning.distill import DistillOptions
    from export.learning.trainer import TrainOptions

    train = TrainOptions(
        preset="nano", steps=steps, batch_size=16, threads=1, eval_every=steps, checkpoint_every=steps, val_frames=64
    )
    return DistillOptions(train=train, **kw)


def _narrow():
    from export.config import preset

    # Narrower than the teacher (64): the latent projection is learned, not an identity.
    return replace(preset("nano"), dim=32, heads=2)


@pytest.fixture(scope="module")
def demos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demos(tmp_path_factory.mktemp("distill") / "demos", episodes=6)


@pytest.fixture(scope="module")
def teacher(demos: Path) -> Path:
    from export.learning.trainer import TrainOptions, train

    out = demos.parent / "teacher"
    n = TEACHER_STEPS
    opts = TrainOptions(
        preset="nano", steps=n, batch_size=16, threads=1, eval_every=n, checkpoint_every=n, val_frames=64
    )
    train([demos], out, opts, progress=False)
    return out


@pytest.fixture(scope="module")
def student(teacher: Path, demos: Path) -> tuple[Path, dict]:
    from export.learning.distill import distill

    out = demos.parent / "student"
    result = distill(teacher, [demos], out, _opts(flow_steps=1), student_arch=_narrow(), progress=False, say=print)
    return out, result.training


def test_distilled_student_acts_closer_to_the_teacher_than_an_undistilled_one(student):
    """Held-out frames, same noise: `fidelity_initial` is the same-seed student before its first step."""
    _, t = student
    before, after = t["fidelity_initial"], t["fidelity_final"]
    for path in ("blend", "reactive", "predictive"):
        assert after[path] < 0.5 * before[path], (path, before[path], after[path])
    assert after["gate"] < 0.75 * before["gate"]


def test_a_student_from_the_teachers_weights_starts_where_the_teacher_is(teacher, demos, tmp_path):
    """--from-teacher: at step 0 the reactive expert and the gate are the teacher's; only the cut flow differs."""
    from export.errors import ConfigError
    from export.learning.distill import distill

    result = distill(
        teacher, [demos], tmp_path / "s", _opts(steps=2, flow_steps=1, from_teacher=True), progress=False,
        say=lambda _m: None,
    )  # fmt: skip
    f0 = result.training["fidelity_initial"]
    assert f0["reactive"] < 1e-5
    assert f0["gate"] < 1e-5
    assert f0["predictive"] == pytest.approx(f0["teacher_cut_to_k"], rel=1e-4)
    assert f0["predictive"] > 1e-3
    assert result.training["distillation"]["from_teacher"] is True
    with pytest.raises(ConfigError, match=r"--from-teacher: the student .* must be the teacher's architecture"):
        distill(
            teacher, [demos], tmp_path / "n", _opts(steps=2, from_teacher=True), student_arch=_narrow(),
            progress=False, say=lambda _m: None,
        )  # fmt: skip


def test_one_step_student_flow_vs_the_teachers_own_steps(student, teacher):
    """K = 1: the student's one Euler step against the teacher's N-step integration from the same noise."""
    from export.checkpoint import load_checkpoint

    path, t = student
    ck = load_checkpoint(path)
    assert ck.config.architecture.flow_steps == 1
    assert load_checkpoint(teacher).config.architecture.flow_steps == 4
    after = t["fidelity_final"]
    assert after["predictive"] < 0.5 * t["fidelity_initial"]["predictive"]
    # Measured and recorded beside it: what cutting the teacher's own flow to K steps costs.
    assert after["teacher_cut_to_k"] >= 0.0


def test_student_keeps_the_teachers_contract_and_names_its_teacher(student, teacher):
    from export.checkpoint import checkpoint_sha256, load_checkpoint

    path, t = student
    s, te = load_checkpoint(path).config, load_checkpoint(teacher).config
    assert [x.name for x in s.tasks] == [x.name for x in te.tasks]
    assert s.tasks == te.tasks
    assert s.normalization == te.normalization
    assert s.gate == te.gate
    assert s.cameras == te.cameras
    assert s.action_space == te.action_space
    assert not s.untrained
    d = t["distillation"]
    assert d["teacher_sha256"] == checkpoint_sha256(teacher)
    assert d["flow_steps"] == 1
    assert d["projection"]["width"] == [32, 64]
    assert json.loads((path / "config.json").read_text())["training"]["trainer"] == "harmowam-edge distill"


def test_resume_continues_and_refuses_another_teacher(student, teacher, demos, tmp_path):
    from export.errors import ConfigError
    from export.learning.distill import distill

    path, _ = student
    work = shutil.copytree(path, tmp_path / "student")
    result = distill(teacher, [demos], work, _opts(STEPS + 10, flow_steps=1), student_arch=_narrow(), resume=True,
                     progress=False, say=lambda _m: None)  # fmt: skip
    assert result.training["steps"] == STEPS + 10
    assert len((work / "training_log.jsonl").read_text().splitlines()) == STEPS + 10
    other = shutil.copytree(teacher, tmp_path / "other-teacher")
    cfg = json.loads((other / "config.json").read_text())
    cfg["seed"] = 12345
    (other / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ConfigError, match="distilled from teacher sha256"):
        distill(other, [demos], work, _opts(STEPS + 20, flow_steps=1), student_arch=_narrow(), resume=True,
                progress=False, say=lambda _m: None)  # fmt: skip


def test_dagger_round_adds_the_students_rollouts_to_the_pool(teacher, demos, tmp_path):
    """The round's bookkeeping: checkpoint, rollouts, pool, record. The rollout itself (`sim dagger --bundle` in a
    subprocess, ~10 s of real-time MuJoCo per episode plus an export) is replaced by tiny episodes written in
    the same format; it is run for real by hand (docs/training.md)."""
    import torch

    from export.checkpoint import load_checkpoint
    from export.learning.distill import distill

    calls: list[tuple[Path, Path, str, int, int]] = []

    def rollout(ckpt: Path, dest: Path, task: str, episodes: int, seed: int) -> None:
        load_checkpoint(ckpt)  # the student as it is at the round: a loadable checkpoint
        calls.append((ckpt, dest, task, episodes, seed))
        write_demos(dest, episodes=episodes, seed=seed)
        meta = json.loads((dest / "dataset.json").read_text())
        for e in meta["episodes"]:
            e["success"] = False  # the student failed: its frames are still labelled (what DAgger is for)
        (dest / "dataset.json").write_text(json.dumps(meta))

    out = tmp_path / "dagger-student"
    result = distill(teacher, [demos], out, _opts(20, flow_steps=1, dagger_rounds=1, dagger_episodes=2),
                     rollout=rollout, progress=False, say=lambda _m: None)  # fmt: skip
    assert calls == [(out, out / "dagger" / "round_1", "reach_red_cube", 2, 90_000)]
    d = result.training["distillation"]
    assert [x["path"] for x in d["dagger_data"]] == [str(out / "dagger" / "round_1")]
    assert d["dagger_frames"] == 2 * 30
    state = torch.load(out / "training_state.pt", weights_only=False)
    assert state["dagger_dirs"] == [str(out / "dagger" / "round_1")]
    assert state["step"] == 20


def test_bad_inputs_are_one_clear_error(teacher, demos, tmp_path):
    from export.errors import CheckpointError, ConfigError, DatasetError
    from export.learning.distill import distill

    def run(t, data=None, **kw):
        distill(t, [data or demos], tmp_path / "out", _opts(**kw), force=True, progress=False, say=lambda _m: None)

    with pytest.raises(CheckpointError, match=r"--teacher .*not found"):
        run(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="--flow-steps: expected an integer >= 1"):
        run(teacher, flow_steps=0)
    with pytest.raises(ConfigError, match="--flow-steps 5: the teacher runs 4"):
        run(teacher, flow_steps=5)
    # A task the teacher never had.
    odd = shutil.copytree(demos, tmp_path / "odd-task")
    meta = json.loads((odd / "dataset.json").read_text())
    for e in meta["episodes"]:
        e["task"] = "wave_flag"
    (odd / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetError, match="task 'wave_flag' is not one of the teacher's tasks"):
        run(teacher, odd)
    # Statistics far from the teacher's: another robot or other units.
    shifted = shutil.copytree(teacher, tmp_path / "shifted-teacher")
    cfg = json.loads((shifted / "config.json").read_text())
    n = cfg["normalization"]
    n["proprio_mean"][0] += 10 * n["proprio_std"][0]
    (shifted / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(DatasetError, match="normalisation mismatch: joint state joint_1"):
        run(shifted)


def test_cli_prints_one_line_for_a_missing_teacher(tmp_path, demos, capsys):
    from harmowam_edge.cli import main

    with pytest.raises(SystemExit) as e:
        main(["distill", "--teacher", str(tmp_path / "none"), "--data", str(demos), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("harmowam-edge: error: --teacher ")


# --------------------------------------------------------------------------------------------------------------
# The shipped checkpoint (`make demo`) and the accuracy report on demonstration frames


def test_shipped_checkpoint_loads_exports_and_is_the_one_its_provenance_names(student, tmp_path, cached_export):
    from export.checkpoint import checkpoint_sha256
    from export.errors import CheckpointError
    from export.shipped import build_shipped_bundle, load_shipped_checkpoint, provenance_digest
    from harmowam_edge.bundle.loader import read_manifest

    path, _ = student
    ship = tmp_path / "demo-student"
    ship.mkdir()
    for f in ("config.json", "weights.safetensors", "PROVENANCE.md"):
        shutil.copy(path / f, ship / f)
    assert provenance_digest(ship) == checkpoint_sha256(ship) == load_shipped_checkpoint(ship).sha256
    bundle = build_shipped_bundle(ship, tmp_path / "bundle")
    m = read_manifest(bundle)
    assert m.provenance.checkpoint_sha256 == provenance_digest(ship)
    assert not m.provenance.untrained
    assert m.policy.flow_steps == 1
    # Other weights under the same provenance: refused, naming both digests.
    cfg = json.loads((ship / "config.json").read_text())
    cfg["gate"]["low"] = cfg["gate"]["low"] / 2
    (ship / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match=r"PROVENANCE\.md: names checkpoint sha256 .* not the files"):
        load_shipped_checkpoint(ship)
    with pytest.raises(CheckpointError):
        build_shipped_bundle(ship, tmp_path / "bundle2")
    assert not (tmp_path / "bundle2").exists()


def test_demo_bundle_comes_from_the_shipped_student_and_untrained_stays_available(
    student, tmp_path, monkeypatch, cached_export
):
    import export
    from harmowam_edge.bundle.loader import read_manifest
    from harmowam_edge.commands import sim as sim_cmd

    path, _ = student
    ship = shutil.copytree(path, tmp_path / "demo-student")
    monkeypatch.setattr(sim_cmd, "DEMO_CHECKPOINT", ship)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    bundle, built = sim_cmd.ensure_demo_bundle(1)
    assert built
    assert not read_manifest(bundle).provenance.untrained
    assert "shipped distilled student" in sim_cmd.describe_demo_bundle(bundle)
    assert sim_cmd.ensure_demo_bundle(1) == (bundle, False)

    # --untrained takes the seeded checkpoint's path; a copy stands in for that (tested) 30 s build.
    builds: list[Path] = []

    def fake_build(out: Path, **kwargs: object) -> None:
        builds.append(Path(out))
        shutil.copytree(bundle, out)

    monkeypatch.setattr(export, "build_demo_bundle", fake_build)
    other, built = sim_cmd.ensure_demo_bundle(1, untrained=True)
    assert built
    assert len(builds) == 1
    assert other.name.startswith("nano-1arm-seed0-")
    assert bundle.is_dir()  # the student's cached bundle is not taken for a stale one


def test_int8_report_runs_on_demonstration_frames_and_still_refuses_over_budget(
    student, demos, tmp_path, cached_export
):
    from export.bundle import build_bundle
    from export.calibration import load_calibration
    from export.checkpoint import load_checkpoint
    from export.errors import QuantizationBudgetError

    path, _ = student
    cfg = load_checkpoint(path).config
    frames = load_calibration(demos, cfg)
    assert len(frames) == 6 * 30  # every frame of the six episodes (under the 256 cap), not synthetic ones
    first = json.loads((demos / "dataset.json").read_text())["episodes"][0]["dir"]
    import numpy as np

    with np.load(demos / first / "000000.npz") as z:
        assert np.array_equal(frames[0]["joint_pos"][0], z["joint_pos"])  # the measured state, not a drawn one
        assert np.array_equal(frames[0]["image_0"][0], z["image_0"])
    with pytest.raises(QuantizationBudgetError) as e:
        build_bundle(path, tmp_path / "int8", precision="int8", calib=demos, budget_pct=1e-6)
    report = e.value.report
    assert report["holdout"] == 45
    assert report["calibration"] == 135
    assert report["holdout_source"] == "held-out observations"
    assert not (tmp_path / "int8").exists()


def test_the_repositorys_shipped_student_is_the_one_its_provenance_names():
    from export.shipped import load_shipped_checkpoint
    from harmowam_edge.commands.sim import DEMO_CHECKPOINT

    if not (DEMO_CHECKPOINT / "config.json").is_file():
        pytest.skip(f"{DEMO_CHECKPOINT} is not shipped in this checkout")
    ck = load_shipped_checkpoint(DEMO_CHECKPOINT)
    assert not ck.config.untrained
    assert ck.config.training is not None
    assert ck.config.training["trainer"] == "harmowam-edge distill"
    assert sum(f.stat().st_size for f in DEMO_CHECKPOINT.iterdir() if f.is_file()) <= 10 * 2**20

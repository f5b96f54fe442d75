"""`harmowam-edge export ...` end to end, in process: progress, the final table, one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from export.manifest_io import verify_bundle
from harmowam_edge.cli import main


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        main(args)
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _npz_dir(path: Path, n: int) -> Path:
    """Two 160x120 cameras with aligned depth, frames only (no joint_pos)."""
    path.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        np.savez(
            path / f"{i:03d}.npz",
            image_0=rng.integers(0, 256, (120, 160, 3), dtype=np.uint8),
            image_1=rng.integers(0, 256, (120, 160, 3), dtype=np.uint8),
            depth_0=rng.integers(300, 3000, (120, 160)).astype(np.uint16),
            depth_1=rng.integers(300, 3000, (120, 160)).astype(np.uint16),
        )
    return path


def test_init_and_int8_bundle_with_two_depth_cameras(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ck, out = tmp_path / "ck", tmp_path / "bundle"
    code, text, _ = run(
        ["export", "init", "--config", "nano", "--out", str(ck), "--camera", "160x120@30", "--cameras", "2", "--depth"],
        capsys,
    )
    assert code == 0
    assert "UNTRAINED" in text
    calib = _npz_dir(tmp_path / "calib", 12)
    code, text, err = run(
        [
            "export",
            "bundle",
            str(ck),
            "--out",
            str(out),
            "--precision",
            "int8",
            "--calib",
            str(calib),
            "--budget",
            "50",
        ],
        capsys,
    )
    assert code == 0, err
    for word in ("exporting 5 graphs", "quantizing", "world_model", "predictive_expert_step", "parity err", "wrote"):
        assert word in text
    m = verify_bundle(out)
    wm = m.network("world_model").default
    assert [t.name for t in wm.inputs] == ["image_0", "image_1", "depth_0", "depth_1", "joint_pos", "task_embedding"]
    assert wm.input("depth_1").dtype == "uint16"
    assert m.network("world_model").default_precision == "int8"
    parity = json.loads((out / m.provenance.reports["parity"]).read_text())
    assert parity["samples"]["recorded"] >= 1  # the calibration frames were used as recorded inputs
    assert parity["ok"]

    code, _, err = run(["export", "bundle", str(ck), "--out", str(out)], capsys)
    assert code == 2
    assert err.strip().count("\n") == 0
    assert "already exists; pass --force" in err


@pytest.mark.usefixtures("cached_export")
def test_budget_refusal_prints_the_report(tmp_path: Path, nano_ckpt: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "b"
    args = ["export", "bundle", str(nano_ckpt), "--out", str(out), "--precision", "int8", "--calib", "synthetic"]
    code, text, err = run([*args, "--budget", "0.000001"], capsys)
    assert code == 2
    assert "accuracy on" in text  # the report table was printed
    assert "gate decision agreement" in text
    assert "OVER BUDGET" in err
    assert "--force" in err
    assert not out.exists()
    code, text, _ = run([*args, "--budget", "0.000001", "--force"], capsys)
    assert code == 0
    assert "over budget, written because of --force" in text


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--precision", "int4"], "--precision: expected one of fp32, fp16, int8"),
        (["--precision", "int8"], "--calib: INT8 needs calibration observations"),
        (["--precision", "int8", "--calib", "{missing}"], "calibration data not found"),
        (["--calib", "{few}"], "need at least 12"),
        (["--flow-mode", "sideways"], "flow_mode: expected unrolled, step or auto"),
        (["--precision", "int8", "--calib", "synthetic", "--int8-activations", "s16"], "--int8-activations"),
    ],
)
def test_bad_options_are_one_line_errors(
    tmp_path: Path, nano_ckpt: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    few = tmp_path / "few"
    few.mkdir()
    for i in range(3):
        np.savez(few / f"{i}.npz", image_0=np.zeros((120, 160, 3), np.uint8))
    args = [a.format(missing=tmp_path / "nothing", few=few) for a in args]
    code, _, err = run(["export", "bundle", str(nano_ckpt), "--out", str(tmp_path / "b"), *args], capsys)
    assert code == 2
    assert err.startswith("harmowam-edge: error: ")
    assert message in err
    assert err.strip().count("\n") == 0
    assert not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["few"]  # nothing half-written


def test_missing_checkpoint_and_bad_init(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["export", "bundle", str(tmp_path / "nope"), "--out", str(tmp_path / "b")], capsys)
    assert code == 2
    assert "no checkpoint directory" in err
    code, _, err = run(["export", "init", "--config", "giant", "--out", str(tmp_path / "c")], capsys)
    assert code == 2
    assert "preset: expected one of nano, small, base, reference" in err
    code, _, err = run(["export", "init", "--out", str(tmp_path / "c"), "--camera", "640*480"], capsys)
    assert code == 2
    assert "WIDTHxHEIGHT" in err


def test_engines_command_without_tensorrt(nano_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("numpy")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("tensorrt imports here: the real build is tested in test_tensorrt.py")
    except ImportError:
        pass
    code, _, err = run(["export", "engines", str(nano_bundle)], capsys)
    assert code == 2
    assert "module 'tensorrt'" in err
    assert not (nano_bundle / "engines").exists()
    code, _, err = run(["export", "engines", str(nano_bundle.parent / "missing")], capsys)
    assert code == 2
    assert "no bundle directory" in err


def test_init_like_a_trained_checkpoint_copies_its_shape_not_its_weights(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from export.checkpoint import load_checkpoint

    shipped = Path(__file__).resolve().parents[2] / "checkpoints" / "demo-student"
    out = tmp_path / "teacher-shape"
    code, stdout, err = run(["export", "init", "--like", str(shipped), "--flow-steps", "4", "--out", str(out)], capsys)
    assert code == 0, err
    assert "UNTRAINED" in stdout
    src, new = load_checkpoint(shipped), load_checkpoint(out)
    assert new.config.untrained
    assert new.config.training is None
    assert new.config.architecture.flow_steps == 4 != src.config.architecture.flow_steps
    assert new.config.architecture.image_width == src.config.architecture.image_width
    assert new.config.cameras == src.config.cameras
    assert [t.name for t in new.config.tasks] == [t.name for t in src.config.tasks]
    a = dict(src.networks.world_model.named_parameters())
    b = dict(new.networks.world_model.named_parameters())
    assert a.keys() == b.keys()
    assert all(a[k].shape == b[k].shape for k in a)
    assert any(not np.allclose(a[k].detach().numpy(), b[k].detach().numpy()) for k in a)
    code, _, err = run(["export", "init", "--out", str(tmp_path / "d"), "--flow-steps", "0"], capsys)
    assert code == 2
    assert "--flow-steps: expected an integer >= 1, got 0" in err
    code, _, err = run(["export", "init", "--out", str(tmp_path / "e"), "--like", str(tmp_path / "nope")], capsys)
    assert code == 2
    assert "nope" in err
    assert "\n" not in err.strip()

"""A bundle whose graphs output NaN is caught (issue 11, item 8): by the loader when the graph is broken on any
input, by `doctor`'s probe step on realistic inputs when only real observations break it.

The broken bundles are real bundles with one real graph edited (onnx helper) and the manifest re-hashed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from harmowam_edge.bundle.loader import load_bundle
from harmowam_edge.bundle.schema import MANIFEST_NAME, sha256_file
from harmowam_edge.cli import main
from harmowam_edge.diagnostics.doctor import check_bundle, probe_observation
from harmowam_edge.errors import BundleError

onnx = pytest.importorskip("onnx", reason="editing a graph needs the export extra (onnx)")
from onnx import TensorProto, helper  # noqa: E402


def poison_reactive_expert(src: Path, dst: Path, *, input_dependent: bool) -> Path:
    """Copy the bundle; its reactive expert's `actions` get NaN added: always, or only where joint_pos != 0
    (sqrt(-q²): 0 for q = 0, NaN otherwise), so zero warm-up inputs still look fine."""
    shutil.copytree(src, dst)
    manifest = json.loads((dst / MANIFEST_NAME).read_text())
    spec = manifest["networks"]["reactive_expert"]["graphs"]["fp32"]
    path = dst / spec["file"]
    model = onnx.load(str(path))
    g = model.graph
    for node in g.node:
        node.output[:] = ["actions_raw" if o == "actions" else o for o in node.output]
    if input_dependent:
        g.node.extend(
            [
                helper.make_node("Mul", ["joint_pos", "joint_pos"], ["q2"]),
                helper.make_node("Neg", ["q2"], ["neg_q2"]),
                helper.make_node("Sqrt", ["neg_q2"], ["poison"]),
            ]
        )
    else:
        g.initializer.append(helper.make_tensor("poison", TensorProto.FLOAT, [], [float("nan")]))
    g.node.append(helper.make_node("Add", ["actions_raw", "poison"], ["actions"]))
    onnx.save(model, str(path))
    digest = sha256_file(path)
    spec["sha256"] = digest
    manifest["files"][spec["file"]] = digest
    (dst / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2))
    return dst


def test_the_loader_refuses_a_graph_that_outputs_nan(nano_bundle: Path, tmp_path: Path) -> None:
    bad = poison_reactive_expert(nano_bundle, tmp_path / "nan", input_dependent=False)
    with pytest.raises(BundleError, match=r"reactive_expert\.fp32\.onnx: outputs non-finite values \(actions\)"):
        load_bundle(bad, backend="onnxruntime")


def test_doctor_probe_fails_a_bundle_that_outputs_nan_on_real_observations(
    nano_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = poison_reactive_expert(nano_bundle, tmp_path / "nan-q", input_dependent=True)
    with load_bundle(bad, backend="onnxruntime") as b:  # zero inputs: the loader cannot see it
        obs = probe_observation(b.manifest)
        assert np.count_nonzero(obs.joint_pos) > 0  # the probe's arm is mid-range, not at zero
    checks = {c.area: c for c in check_bundle(bad)}
    probe = [c for area, c in checks.items() if area.startswith("probe step")]
    assert probe
    assert all(c.status == "fail" for c in probe), probe
    assert "reactive path: non-finite actions (gripper)" in probe[0].detail
    with pytest.raises(SystemExit) as e:
        main(["doctor", "--bundle", str(bad)])
    assert e.value.code == 1
    assert "problem(s) to fix" in capsys.readouterr().err


def test_doctor_probe_passes_the_sound_bundle(nano_bundle: Path) -> None:
    probe = [c for c in check_bundle(nano_bundle) if c.area.startswith("probe step")]
    assert len(probe) == 2  # the unrolled and the looped flow graph
    # Finite everywhere; an UNTRAINED bundle may leave the action space (a warning, not a failure).
    assert all(c.status in ("ok", "warn") for c in probe), probe
    assert all("non-finite" not in c.detail for c in probe)

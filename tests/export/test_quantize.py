"""FP16/INT8 bundles: what the graphs contain, the accuracy report, the error budget and its refusal."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from export import QuantizationBudgetError, build_bundle
from export.errors import ConfigError
from export.manifest_io import verify_bundle
from harmowam_edge.bundle.schema import NETWORK_NAMES
from tests.export.test_calibration import write_npz_dir

pytestmark = pytest.mark.usefixtures("cached_export")


def _types(model: onnx.ModelProto) -> dict[str, int]:
    out = {i.name: i.data_type for i in model.graph.initializer}
    inferred = onnx.shape_inference.infer_shapes(model)
    for v in [*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output]:
        out[v.name] = v.type.tensor_type.elem_type
    return out


def test_fp16_bundle(tmp_path: Path, nano_ckpt: Path) -> None:
    report = build_bundle(nano_ckpt, tmp_path / "b16", precision="fp16")
    m = verify_bundle(tmp_path / "b16")
    assert m.precision == "fp16"
    for n in NETWORK_NAMES:
        assert set(m.networks[n].graphs) == {"fp32", "fp16"}
        assert m.networks[n].default_precision == "fp16"
    q = json.loads((tmp_path / "b16" / m.provenance.reports["quantization"]).read_text())
    assert q == json.loads(json.dumps(report.quantization))
    assert q["holdout_source"].startswith("random inputs")
    assert set(q["end_to_end"]) == {"reactive", "predictive", "blended"}
    assert q["end_to_end"]["predictive"]["pct_range_p99"] < 0.5
    assert q["ok"] is True
    # float16 weights and math, float32 I/O, LayerNorm / softmax / the flow-time embedding kept float32.
    step = onnx.load(str(tmp_path / "b16" / m.networks["predictive_expert_step"].graphs["fp16"].file))
    types = _types(step)
    assert any(i.data_type == onnx.TensorProto.FLOAT16 for i in step.graph.initializer)
    assert all(types[i.name] == onnx.TensorProto.FLOAT for i in step.graph.input)
    for node in step.graph.node:
        if node.op_type in ("LayerNormalization", "Softmax", "Sin", "Cos"):
            assert types[node.input[0]] == onnx.TensorProto.FLOAT, node.name


def test_int8_bundle_with_npz_calibration(tmp_path: Path, nano_ckpt: Path) -> None:
    calib = write_npz_dir(tmp_path / "calib", 16)
    report = build_bundle(nano_ckpt, tmp_path / "b8", precision="int8", calib=calib, budget_pct=5.0)
    m = verify_bundle(tmp_path / "b8")
    q = report.quantization
    assert q is not None
    assert m.networks["world_model"].default_precision == "int8"
    assert m.networks["reactive_expert"].default_precision == "int8"
    for n in ("gate", "predictive_expert", "predictive_expert_step"):
        # Stays FP16 unless measured safe; the decision and its measurement are in the report either way.
        assert m.networks[n].default_precision in ("fp16", "int8")
        assert q["decisions"][n].startswith(m.networks[n].default_precision + ":")
        assert "int8" in m.networks[n].graphs or m.networks[n].default_precision == "fp16"
    assert q["calibration"] + q["holdout"] == 16
    assert q["int8_activations"] == "s8"
    stats = q["end_to_end"]["reactive"]
    assert 0 < stats["abs_p50"] <= stats["abs_p99"] <= stats["abs_max"]
    assert len(stats["pct_range_p99_per_joint"]) == 7
    assert 0.0 <= q["gate"]["decision_agreement"] <= 1.0
    wm = onnx.load(str(tmp_path / "b8" / m.networks["world_model"].graphs["int8"].file))
    inits = {i.name: i for i in wm.graph.initializer}
    q_nodes = [n for n in wm.graph.node if n.op_type == "QuantizeLinear"]
    assert q_nodes
    for node in q_nodes:  # symmetric signed activations: int8 zero points, all zero
        zp = onnx.numpy_helper.to_array(inits[node.input[2]])
        assert zp.dtype == np.int8
        assert not zp.any()
    per_channel = [
        n
        for n in wm.graph.node
        if n.op_type == "DequantizeLinear" and onnx.numpy_helper.to_array(inits[n.input[1]]).size > 1
    ]
    assert per_channel  # per-channel weight scales


def test_over_budget_is_refused_with_the_report_and_leaves_nothing(tmp_path: Path, nano_ckpt: Path) -> None:
    out = tmp_path / "out" / "b8"
    with pytest.raises(QuantizationBudgetError, match="OVER BUDGET") as info:
        build_bundle(nano_ckpt, out, precision="int8", calib="synthetic", budget_pct=1e-6)
    assert info.value.report["ok"] is False
    assert info.value.report["end_to_end"]["reactive"]["pct_range_p99"] > 1e-6
    assert not out.exists()
    assert list((tmp_path / "out").iterdir()) == []  # no half-written bundle, no temp folder
    forced = build_bundle(nano_ckpt, out, precision="int8", calib="synthetic", budget_pct=1e-6, force=True)
    assert any("over budget" in w for w in forced.warnings)
    assert any("INT8 bundle with no INT8 network" in w for w in forced.warnings)  # all refused, and it says so
    assert verify_bundle(out).precision == "int8"


def test_u8_activations_for_x86(tmp_path: Path, nano_ckpt: Path) -> None:
    build_bundle(
        nano_ckpt,
        tmp_path / "u8",
        precision="int8",
        calib="synthetic",
        int8_activations="u8",
        force=True,
        int8_force=["world_model"],
    )
    m = verify_bundle(tmp_path / "u8")
    wm = onnx.load(str(tmp_path / "u8" / m.networks["world_model"].graphs["int8"].file))
    inits = {i.name: i for i in wm.graph.initializer}
    zps = [onnx.numpy_helper.to_array(inits[n.input[2]]) for n in wm.graph.node if n.op_type == "QuantizeLinear"]
    assert zps
    assert all(z.dtype == np.uint8 for z in zps)


def test_int8_is_mixed_precision_each_network_only_where_it_measures_safe(tmp_path: Path, nano_ckpt: Path) -> None:
    # Budget between the candidates' measured errors: some go INT8, some stay FP16, the verdict holds.
    probe = build_bundle(nano_ckpt, tmp_path / "probe", precision="int8", calib="synthetic", budget_pct=100.0)
    assert probe.quantization is not None
    first = probe.quantization["int8_trials"]
    assert all(t["int8"] for t in first.values())  # a budget nothing exceeds takes every network
    errors = sorted(t["chain_pct_range_p99"] for t in first.values())
    assert errors[-1] > errors[0]
    budget = (errors[-1] + errors[0]) / 2
    report = build_bundle(nano_ckpt, tmp_path / "mixed", precision="int8", calib="synthetic", budget_pct=budget)
    q = report.quantization
    assert q is not None
    assert q["ok"] is True
    assert q["int8_order"][0] == "world_model"  # the biggest network gets the budget first
    m = verify_bundle(tmp_path / "mixed")
    taken = {n for n, t in q["int8_trials"].items() if t["int8"]}
    assert taken
    assert taken != set(q["int8_trials"])
    for n, t in q["int8_trials"].items():
        assert t["int8"] == t["safe"] == (t["chain_pct_range_p99"] <= budget)
        prec = m.networks[n].default_precision
        assert prec == ("int8" if t["int8"] else "fp16")
        assert ("int8" in m.networks[n].graphs) == t["int8"]  # a refused INT8 graph is not shipped
        assert q["decisions"][n].startswith(prec + ":")
    worst = max(v["pct_range_p99"] for v in q["end_to_end"].values())
    assert worst <= budget


def test_int8_force_takes_a_network_over_budget_and_says_so(tmp_path: Path, nano_ckpt: Path) -> None:
    report = build_bundle(
        nano_ckpt,
        tmp_path / "forced",
        precision="int8",
        calib="synthetic",
        budget_pct=1e-6,
        force=True,
        int8_force=["world_model"],
    )
    q = report.quantization
    assert q is not None
    m = verify_bundle(tmp_path / "forced")
    assert m.networks["world_model"].default_precision == "int8"
    assert q["decisions"]["world_model"].startswith("int8: forced by --int8-force")
    assert m.networks["reactive_expert"].default_precision == "fp16"  # not forced, over a 1e-6 % budget
    with pytest.raises(ConfigError, match="--int8-force: unknown network 'decoder'"):
        build_bundle(nano_ckpt, tmp_path / "x", precision="int8", calib="synthetic", int8_force=["decoder"])
    with pytest.raises(ConfigError, match="--int8-force: only for --precision int8"):
        build_bundle(nano_ckpt, tmp_path / "y", precision="fp16", int8_force=["gate"])
    assert not (tmp_path / "x").exists()
    assert not (tmp_path / "y").exists()

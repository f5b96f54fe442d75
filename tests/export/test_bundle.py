"""The shared nano bundles: integrity, schema, graph boundaries, parity, and that ONNX Runtime runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from harmowam_edge.bundle.schema import (
    ACTIONS,
    GATE_WEIGHTS,
    MANIFEST_NAME,
    NETWORK_NAMES,
    Manifest,
    sha256_file,
)

pytest.importorskip("torch", reason="export tests need the export extra (torch)")

from export.bundle import DEFAULT_FLOW_MODE, choose_flow_mode, measure_flow_modes
from export.errors import ConfigError


def _manifest(bundle: Path) -> Manifest:
    return Manifest.from_dict(json.loads((bundle / MANIFEST_NAME).read_text()))


def test_manifest_is_accepted_by_the_runtime_schema_and_hashes_match(nano_bundle: Path) -> None:
    m = _manifest(nano_bundle)
    on_disk = {p.relative_to(nano_bundle).as_posix() for p in nano_bundle.rglob("*") if p.is_file()}
    assert on_disk - set(m.files) == {MANIFEST_NAME}
    for rel, digest in m.files.items():
        assert sha256_file(nano_bundle / rel) == digest, rel
    for spec in m.networks.values():
        for g in spec.graphs.values():
            assert m.files[g.file] == g.sha256
    assert set(m.networks) == set(NETWORK_NAMES)
    assert m.precision == "fp32"
    assert m.provenance.untrained
    assert m.tasks.file == "tasks.npy"
    table = np.load(nano_bundle / m.tasks.file)
    assert table.shape == (len(m.tasks.names), m.tasks.dim)
    assert table.dtype == np.float32


def test_contract_shapes_single_and_dual_arm(nano_bundle: Path, nano_bundle_dual_arm: Path) -> None:
    for bundle, arms in ((nano_bundle, 1), (nano_bundle_dual_arm, 2)):
        m = _manifest(bundle)
        a = m.policy.action_dim
        assert a == 7 * arms == m.action_space.size
        assert m.policy.chunk_size == 12
        assert m.policy.action_rate_hz == 48.0
        wm = m.network("world_model").default
        assert wm.input("image_0").shape == (1, 120, 160, 3)
        assert wm.input("image_0").dtype == "uint8"
        assert wm.input("joint_pos").shape == (1, a)
        assert m.network("gate").default.output(GATE_WEIGHTS).shape == (1, 12)
        for n in ("reactive_expert", "predictive_expert"):
            assert m.network(n).default.output(ACTIONS).shape == (1, 12, a)
        # Every expert input is an observation input or a world-model output (the runtime wires by name).
        available = {t.name for t in wm.inputs} | {t.name for t in wm.outputs}
        for n in ("gate", "reactive_expert", "predictive_expert"):
            assert {t.name for t in m.network(n).default.inputs} - {"noise"} <= available
        names = [d.name for d in m.action_space.dims]
        assert (names[0], names[-1]) == (("joint_1", "gripper") if arms == 1 else ("left_joint_1", "right_gripper"))


def test_parity_report_within_tolerance(nano_bundle: Path) -> None:
    m = _manifest(nano_bundle)
    report = json.loads((nano_bundle / m.provenance.reports["parity"]).read_text())
    assert report["ok"] is True
    assert report["max_action_error"] <= 1e-4
    assert set(report["networks"]) == set(NETWORK_NAMES)
    flow = json.loads((nano_bundle / m.provenance.reports["flow_mode"]).read_text())
    # Not measured unless asked: the documented default, whatever the machine's load (issue 11, item 10).
    assert m.policy.flow_mode == flow["policy_flow_mode"] == DEFAULT_FLOW_MODE == "unrolled"
    assert flow["timing"] is None


def test_onnxruntime_runs_the_bundle_from_its_manifest(nano_bundle: Path) -> None:
    """Wire the graphs by tensor name the way the runtime does; actions are finite and input-dependent."""
    import onnxruntime as ort

    m = _manifest(nano_bundle)
    sessions = {n: ort.InferenceSession(str(nano_bundle / s.default.file)) for n, s in m.networks.items()}
    tasks = np.load(nano_bundle / m.tasks.file)
    rng = np.random.default_rng(0)

    def step(image: np.ndarray) -> dict[str, np.ndarray]:
        feed = {
            "image_0": image,
            "joint_pos": np.zeros((1, m.policy.action_dim), np.float32),
            "task_embedding": tasks[:1],
            "noise": rng.standard_normal((1, 12, m.policy.action_dim)).astype(np.float32),
        }
        for n in ("world_model", "gate", "reactive_expert", "predictive_expert"):
            sess = sessions[n]
            outs = sess.run(None, {i.name: feed[i.name] for i in sess.get_inputs()})
            key = {"reactive_expert": "reactive", "predictive_expert": "predictive"}.get(n)
            for o, v in zip(sess.get_outputs(), outs, strict=True):
                feed[f"{key}_{o.name}" if key else o.name] = v
        return feed

    a = step(np.zeros((1, 120, 160, 3), np.uint8))
    b = step(np.full((1, 120, 160, 3), 200, np.uint8))
    for out in (a, b):
        assert np.all(np.isfinite(out["reactive_actions"]))
        assert np.all(np.isfinite(out["predictive_actions"]))
        assert np.all((out[GATE_WEIGHTS] >= 0) & (out[GATE_WEIGHTS] <= 1))
    assert np.abs(a["reactive_actions"] - b["reactive_actions"]).max() > 1e-4  # the image matters


@pytest.mark.timeout(900)  # one more nano export: ~30 s on a quiet 2-core machine, minutes on a loaded one
def test_the_same_inputs_build_the_same_bundle(nano_bundle: Path, tmp_path: Path) -> None:
    """A second build of the nano fixture's inputs, in another folder and at another time (issue 11, item 10)."""
    from export import build_demo_bundle

    first = json.loads((nano_bundle / MANIFEST_NAME).read_text())
    spec = first["cameras"][0]
    from harmowam_edge.bundle.schema import CameraSpec

    camera = CameraSpec(spec["name"], spec["width"], spec["height"], spec["fps"], tuple(spec["streams"]))
    again = tmp_path / "again"
    build_demo_bundle(again, preset="nano", arms=1, seed=0, camera=[camera])
    second = json.loads((again / MANIFEST_NAME).read_text())
    for m in (first, second):
        m["provenance"].pop("created_utc")  # the only field that may differ
    assert second == first  # every file's sha256 included: graphs, tasks, reports


def test_the_flow_mode_is_decided_by_the_flags_never_by_timings_unless_asked() -> None:
    slow_unrolled = {"unrolled_ms_p50": 9.0, "step_looped_ms_p50": 1.0, "faster": "step"}
    assert choose_flow_mode("unrolled", slow_unrolled)[0] == "unrolled"  # measured, reported, not decisive
    assert choose_flow_mode("unrolled", None)[0] == "unrolled"
    assert choose_flow_mode("step", None)[0] == "step"
    mode, why = choose_flow_mode("auto", slow_unrolled)
    assert mode == "step"
    assert "measured" in why
    with pytest.raises(ConfigError, match="flow_mode 'auto' decides on measured timings"):
        choose_flow_mode("auto", None)


def test_measure_flow_modes_times_both_graphs(nano_bundle: Path) -> None:
    rng = np.random.default_rng(0)
    m = _manifest(nano_bundle)
    unrolled = m.networks["predictive_expert"].default
    feed = {t.name: rng.standard_normal(t.shape).astype(np.float32) for t in unrolled.inputs}
    paths = {n: nano_bundle / m.networks[n].default.file for n in ("predictive_expert", "predictive_expert_step")}
    t = measure_flow_modes(paths, feed, m.policy.flow_steps)
    assert t["unrolled_ms_p50"] > 0
    assert t["step_looped_ms_p50"] > 0
    assert t["faster"] in ("unrolled", "step")
    assert t["flow_steps"] == m.policy.flow_steps

"""Bundle loader and policy on a real (seeded, untrained) nano bundle from export, run by ONNX Runtime."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from harmowam_edge.bundle import load_bundle
from harmowam_edge.bundle.loader import check_wiring, read_manifest, select_graphs
from harmowam_edge.bundle.schema import ENGINE_SET_NAME, EnginePlan, EngineSet, sha256_file
from harmowam_edge.cameras import Frame
from harmowam_edge.errors import BundleError, CameraError
from harmowam_edge.policy import Observation, Policy


def _obs(value: int = 0, joints: float = 0.0, t: float | None = None) -> Observation:
    t = time.monotonic() if t is None else t
    frame = Frame("cam0", np.full((120, 160, 3), value, np.uint8), t, 1)
    return Observation([frame], np.full(7, joints))


@pytest.fixture(scope="module")
def bundle(nano_bundle: Path):
    with load_bundle(nano_bundle) as b:
        yield b


def test_loader_verifies_and_opens_onnx_runtime(bundle) -> None:
    assert bundle.choice.kind == "onnxruntime"
    assert bundle.backend.startswith("onnxruntime/")
    assert set(bundle.engines) == {"world_model", "gate", "reactive_expert", "predictive_expert"}
    assert any("UNTRAINED" in w for w in bundle.warnings)
    assert bundle.task_embedding("reach_red_cube").shape == (1, bundle.manifest.tasks.dim)
    with pytest.raises(BundleError, match="no task 'fly'; the bundle's tasks: pick_red_cube, pick_green_cube"):
        bundle.task_embedding("fly")


def test_a_corrupt_or_incomplete_bundle_is_refused(nano_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(nano_bundle, bad)
    graph = bad / "gate.fp32.onnx"
    data = bytearray(graph.read_bytes())
    data[-1] ^= 0xFF
    graph.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"gate\.fp32\.onnx: sha256 differs from manifest\.json"):
        load_bundle(bad)
    graph.unlink()
    with pytest.raises(BundleError, match=r"gate\.fp32\.onnx: missing"):
        load_bundle(bad)
    with pytest.raises(BundleError, match="not a deploy bundle"):
        load_bundle(tmp_path)
    with pytest.raises(BundleError, match="no such bundle directory"):
        load_bundle(tmp_path / "nope")


def test_an_expert_input_nothing_produces_is_refused(nano_bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "miswired"
    shutil.copytree(nano_bundle, bad)
    mpath = bad / "manifest.json"
    m = json.loads(mpath.read_text())
    for t in m["networks"]["reactive_expert"]["graphs"]["fp32"]["inputs"]:
        if t["name"] == "future_latents":
            t["shape"] = [1, 3, 4, 64]  # the world model makes [1, 2, 4, 64]
    m["networks"]["gate"]["graphs"]["fp32"]["inputs"][0]["name"] = "mystery"
    mpath.write_text(json.dumps(m))
    manifest = read_manifest(bad)
    problems = check_wiring(manifest, select_graphs(manifest))
    assert any(
        "gate.fp32.onnx: input 'mystery' is neither an observation input nor a world-model output" in p
        for p in problems
    )
    assert any("reactive_expert.fp32.onnx: input 'future_latents' is float32 [1, 3, 4, 64]" in p for p in problems)
    with pytest.raises(BundleError, match="does not verify"):
        load_bundle(bad)


def test_engine_sets_without_tensorrt_fall_back_and_say_how_to_build(nano_bundle: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    try:
        import tensorrt  # noqa: F401

        pytest.skip("TensorRT is installed here: the fallback path is not reachable")
    except ImportError:
        pass
    b = tmp_path / "with-engines"
    shutil.copytree(nano_bundle, b)
    folder = b / "engines" / "10.3.0_orin"
    folder.mkdir(parents=True)
    (folder / "world_model.plan").write_bytes(b"not a plan")
    g = read_manifest(b).network("world_model").default
    es = EngineSet(
        "10.3.0",
        "Orin",
        "8.7",
        "2026-01-01T00:00:00Z",
        {
            "world_model": EnginePlan(
                "engines/10.3.0_orin/world_model.plan",
                sha256_file(folder / "world_model.plan"),
                g.file,
                g.sha256,
                "fp32",
            )
        },
    )
    (folder / ENGINE_SET_NAME).write_text(json.dumps(es.to_dict()))
    with load_bundle(b) as loaded:
        assert loaded.choice.kind == "onnxruntime"
        assert "TensorRT is not available here" in loaded.choice.note
        assert "plans under" in loaded.choice.note
    with pytest.raises(BundleError, match="TensorRT requested but not usable here"):
        load_bundle(b, backend="tensorrt")


def test_policy_step_runs_only_the_experts_the_gate_needs(bundle) -> None:
    p = Policy(bundle, "reach_red_cube", seed=3)
    obs = _obs(100, 0.1)
    chunk = p.step(obs)
    k, a = bundle.manifest.policy.chunk_size, bundle.manifest.policy.action_dim
    assert chunk.actions.shape == (k, a)
    assert chunk.gate_weights.shape == (k,)
    assert chunk.t_obs == obs.frames[0].t_capture
    assert chunk.t_ready >= chunk.t_obs
    assert set(chunk.timings) == {"world_model", "gate", "reactive", "predictive", "blend", "total"}
    assert chunk.timings["total"] >= chunk.timings["world_model"] + chunk.timings["gate"]
    only_r = p.step(obs, force="reactive")
    assert only_r.experts == ("reactive_expert",)
    assert only_r.timings["predictive"] < only_r.timings["reactive"] + 1e-3
    only_p = p.step(obs, force="predictive")
    assert only_p.experts == ("predictive_expert",)
    assert (only_p.blend_weights == 1).all()


def test_blend_is_per_step_and_reproducible(bundle) -> None:
    obs = _obs(50, -0.2)
    # Three policies with the same seed draw the same noise on their first step.
    blend = Policy(bundle, "pick_red_cube", seed=7).step(obs, force="blend")
    react = Policy(bundle, "pick_red_cube", seed=7).step(obs, force="reactive")
    pred = Policy(bundle, "pick_red_cube", seed=7).step(obs, force="predictive")
    w = blend.gate_weights[:, None]
    assert blend.actions == pytest.approx(w * pred.actions + (1 - w) * react.actions, abs=1e-5)
    again = Policy(bundle, "pick_red_cube", seed=7).step(obs, force="blend")
    assert np.array_equal(again.actions, blend.actions)
    other = Policy(bundle, "pick_red_cube", seed=8).step(obs, force="blend")
    assert not np.array_equal(other.actions, blend.actions)  # the noise matters
    other_task = Policy(bundle, "reach_red_cube", seed=7).step(obs, force="blend")
    assert not np.array_equal(other_task.actions, blend.actions)  # and so does the task


def test_step_graph_looped_matches_the_unrolled_graph(nano_bundle: Path, bundle) -> None:
    obs = _obs(200, 0.3)
    with load_bundle(nano_bundle, flow_mode="step") as stepped:
        assert "predictive_expert_step" in stepped.engines
        looped = Policy(stepped, "reach_red_cube", seed=1).step(obs, force="predictive")
    unrolled = Policy(bundle, "reach_red_cube", seed=1).step(obs, force="predictive")
    assert looped.experts == ("predictive_expert_step",)
    assert np.abs(looped.actions - unrolled.actions).max() < 1e-4


def test_wrong_frames_are_refused(bundle) -> None:
    p = Policy(bundle, "reach_red_cube")
    bad = Observation([Frame("cam0", np.zeros((240, 320, 3), np.uint8), 0.0, 1)], np.zeros(7))
    with pytest.raises(
        CameraError, match=r"camera 'cam0': frame is uint8 \[240, 320, 3\], the bundle expects uint8 \[120, 160, 3\]"
    ):
        p.step(bad)

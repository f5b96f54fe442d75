"""TensorRT engines (TensorRT 10.x API, as on JetPack 6). These run only where `tensorrt` and a CUDA GPU are
available (the Jetson, or a GPU machine with `pip install tensorrt cuda-python`); elsewhere they skip, saying so.

They build real plans with `export engines` (export.tensorrt.build_engines) from the seeded nano bundle and check
the runtime picks them, runs them with and without CUDA graphs, and agrees with ONNX Runtime.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "tensorrt",
    reason="TensorRT is not installed here (it needs an NVIDIA GPU and driver): these tests run on a Jetson or GPU",
)

from harmowam_edge.engines import tensorrt_available

_ok, _why = tensorrt_available()
if not _ok:
    pytest.skip(f"TensorRT imports but is not usable here: {_why}", allow_module_level=True)

from harmowam_edge.bundle import load_bundle  # noqa: E402
from harmowam_edge.bundle.schema import ENGINE_SET_NAME  # noqa: E402
from harmowam_edge.cameras import Frame  # noqa: E402
from harmowam_edge.engines import TensorRTEngine, zero_feeds  # noqa: E402
from harmowam_edge.errors import BundleError  # noqa: E402
from harmowam_edge.policy import Observation, Policy  # noqa: E402


@pytest.fixture(scope="module")
def trt_bundle(nano_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from export.tensorrt import build_engines

    b = tmp_path_factory.mktemp("trt") / "bundle"
    shutil.copytree(nano_bundle, b)
    build_engines(b)
    return b


def _obs() -> Observation:
    rng = np.random.default_rng(0)
    frame = Frame("cam0", rng.integers(0, 255, (120, 160, 3), dtype=np.uint8), 0.0, 1)
    return Observation([frame], rng.uniform(-0.5, 0.5, 7))


def test_runtime_picks_matching_plans_and_agrees_with_onnx_runtime(trt_bundle: Path) -> None:
    with load_bundle(trt_bundle) as auto, load_bundle(trt_bundle, backend="onnxruntime") as ort:
        assert auto.choice.kind == "tensorrt", auto.choice.note
        assert auto.backend.startswith("tensorrt")
        for mode in ("reactive", "predictive", "blend"):
            a = Policy(auto, "reach_red_cube", seed=2).step(_obs(), force=mode)  # type: ignore[arg-type]
            b = Policy(ort, "reach_red_cube", seed=2).step(_obs(), force=mode)  # type: ignore[arg-type]
            # FP32 plans may use TF32 on Ampere and later: agreement to a few milliradians.
            assert np.abs(a.actions - b.actions).max() < 5e-3, mode
            assert np.abs(a.gate_weights - b.gate_weights).max() < 5e-3


def test_cuda_graph_and_plain_execution_agree(trt_bundle: Path) -> None:
    es = json.loads(next((trt_bundle / "engines").glob(f"*/{ENGINE_SET_NAME}")).read_text())
    with load_bundle(trt_bundle, backend="onnxruntime") as ort:
        spec = ort.graphs["world_model"]
    plan = trt_bundle / es["plans"]["world_model"]["file"]
    graphed = TensorRTEngine(plan, spec, "world_model", cuda_graph=True)
    plain = TensorRTEngine(plan, spec, "world_model", cuda_graph=False)
    try:
        feeds = zero_feeds(spec.inputs)
        feeds["image_0"][:] = 77
        for _ in range(3):  # the graph replays the copies in and out every call
            g, p = graphed.run(feeds), plain.run(feeds)
            for name in g:
                np.testing.assert_allclose(g[name], p[name], atol=1e-6)
            feeds["joint_pos"] = feeds["joint_pos"] + 0.1
    finally:
        graphed.close()
        plain.close()


def test_plans_for_another_machine_are_refused_with_the_build_command(trt_bundle: Path, tmp_path: Path) -> None:
    b = tmp_path / "moved"
    shutil.copytree(trt_bundle, b)
    es_file = next((b / "engines").glob(f"*/{ENGINE_SET_NAME}"))
    es = json.loads(es_file.read_text())
    es["plans"]["gate"]["onnx_sha256"] = "0" * 64  # as if built from an older gate graph
    es_file.write_text(json.dumps(es))
    with pytest.raises(BundleError, match="harmowam-edge export engines"):
        load_bundle(b, backend="tensorrt")
    with load_bundle(b) as fallback:
        assert fallback.choice.kind == "onnxruntime"
        assert "export engines" in fallback.choice.note

"""TensorRT engines. The build itself needs `tensorrt` and an NVIDIA GPU (a Jetson): those tests skip elsewhere.
The refusals that protect a Jetson from a wasted build run everywhere.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from export import TensorRTError
from export.manifest_io import verify_bundle
from export.tensorrt import check_tensorrt_compatible
from harmowam_edge.bundle.schema import ENGINE_SET_NAME, EngineSet, TensorSpec, sha256_file


def _have_tensorrt() -> str | None:
    try:
        import tensorrt  # noqa: F401
    except ImportError as e:
        return f"tensorrt does not import here ({e}): TensorRT engines are built and tested on a Jetson/NVIDIA GPU"
    return None


@pytest.mark.tensorrt
def test_build_engines_for_the_nano_bundle(nano_bundle: Path, tmp_path: Path) -> None:
    reason = _have_tensorrt()
    if reason:
        pytest.skip(reason)
    from export.tensorrt import build_engines

    bundle = tmp_path / "bundle"
    shutil.copytree(nano_bundle, bundle)
    report = build_engines(bundle)
    folder = report.folder
    assert folder.parent == bundle / "engines"
    engine_set = EngineSet.from_dict(json.loads((folder / ENGINE_SET_NAME).read_text()), source=ENGINE_SET_NAME)
    m = verify_bundle(bundle)  # the engines do not disturb the bundle's own files
    assert set(engine_set.plans) == set(m.networks)
    for name, plan in engine_set.plans.items():
        assert sha256_file(bundle / plan.file) == plan.sha256
        assert plan.onnx_sha256 == m.networks[name].default.sha256
        assert (folder / f"{name}.layers.json").is_file()
    assert (folder / "timing.cache").stat().st_size > 0
    with pytest.raises(TensorRTError, match="--force"):
        build_engines(bundle)


def test_u8_int8_graphs_are_refused_before_building(nano_bundle: Path, tmp_path: Path) -> None:
    m = verify_bundle(nano_bundle)
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "quantization.json").write_text(json.dumps({"int8_activations": "u8"}))
    prov = dataclasses.replace(
        m.provenance, reports={**m.provenance.reports, "quantization": "reports/quantization.json"}
    )
    with pytest.raises(TensorRTError, match="--int8-activations s8"):
        check_tensorrt_compatible(tmp_path, dataclasses.replace(m, provenance=prov), list(m.networks))


def test_uint16_depth_input_is_refused_before_building(nano_bundle: Path) -> None:
    m = verify_bundle(nano_bundle)
    wm = m.networks["world_model"]
    graph = wm.default
    depth = TensorSpec("depth_0", (1, 120, 160), "uint16")
    graph = dataclasses.replace(graph, inputs=(graph.inputs[0], depth, *graph.inputs[1:]))
    wm = dataclasses.replace(wm, graphs={**wm.graphs, wm.default_precision: graph})
    m = dataclasses.replace(m, networks={**m.networks, "world_model": wm})
    with pytest.raises(TensorRTError, match="depth_0 is uint16"):
        check_tensorrt_compatible(nano_bundle, m, ["world_model"])
    check_tensorrt_compatible(nano_bundle, m, ["gate"])  # the other graphs are fine

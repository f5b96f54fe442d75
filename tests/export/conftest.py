"""Export test fixtures: a session nano checkpoint (160x120) and an export cache for tests about later stages."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="export tests need the export extra (torch)")

from harmowam_edge.bundle.schema import CameraSpec

SMALL_CAM = CameraSpec("cam0", 160, 120, 30)


@pytest.fixture(scope="session")
def nano_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded nano checkpoint, 1 arm, one 160x120 camera. Read-only: copy it before changing it."""
    from export import init_checkpoint

    return init_checkpoint(tmp_path_factory.mktemp("ckpt") / "nano", camera=SMALL_CAM)


@pytest.fixture(scope="session")
def _export_cache() -> dict[tuple[str, str], dict[str, bytes]]:
    return {}


@pytest.fixture
def cached_export(monkeypatch: pytest.MonkeyPatch, _export_cache: dict) -> None:
    """Reuse the ONNX graphs of a checkpoint already exported in this session (same checkpoint hash).

    For tests about what comes after the export (quantization, budgets, atomic writes): the exporter itself
    is covered by the bundle fixtures and test_onnx_export.py. Without it every such test pays ~10 s of
    torch.onnx tracing.
    """
    import export.bundle as bundle_mod
    from export.checkpoint import checkpoint_sha256
    from export.onnx_export import ExportedGraph, graph_io

    real = bundle_mod.export_all
    current: dict[str, Path] = {}
    real_load = bundle_mod.load_checkpoint

    def load(path: str | Path):
        ck = real_load(path)
        current["path"] = Path(path)
        return ck

    def export_all(nets, cfg, out_dir, precision_tag="fp32", seed=0):
        key = (checkpoint_sha256(current["path"]), precision_tag)
        if key not in _export_cache:
            graphs = real(nets, cfg, out_dir, precision_tag, seed)
            _export_cache[key] = {n: g.path.read_bytes() for n, g in graphs.items()}
        io = graph_io(cfg)
        out = {}
        for n, data in _export_cache[key].items():
            p = Path(out_dir) / f"{n}.{precision_tag}.onnx"
            p.write_bytes(data)
            out[n] = ExportedGraph(n, p, tuple(io[n][0]), tuple(io[n][1]))
        return out

    monkeypatch.setattr(bundle_mod, "load_checkpoint", load)
    monkeypatch.setattr(bundle_mod, "export_all", export_all)
    return


def copy_ckpt(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst

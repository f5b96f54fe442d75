"""The exporter: contract boundaries, an op it cannot handle, duplicated weights merged."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from export import OnnxExportError
from export.onnx_export import dedupe_initializers, export_graph
from harmowam_edge.bundle.schema import TensorSpec


@torch.library.custom_op("harmowam_test::mystery", mutates_args=())
def _mystery(x: torch.Tensor) -> torch.Tensor:
    return x * 2


@_mystery.register_fake
def _(x: torch.Tensor) -> torch.Tensor:
    return torch.empty_like(x)


class _Unsupported(torch.nn.Module):
    """A custom op with no ONNX translation: what a checkpoint with an exotic layer would hit."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _mystery(x) + 1


class _Shared(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for _ in range(4):
            x = self.lin(x)
        return x


def test_an_op_the_exporter_cannot_handle_is_a_clear_error(tmp_path: Path) -> None:
    spec = TensorSpec("x", (1, 4), "float32")
    with pytest.raises(OnnxExportError, match=r"net: the ONNX exporter .* could not export this network"):
        export_graph(
            "net",
            _Unsupported(),
            [spec],
            [TensorSpec("y", (1, 2), "float32")],
            {"x": np.ones((1, 4), np.float32)},
            tmp_path / "u.onnx",
        )


def test_boundary_mismatch_is_refused(tmp_path: Path) -> None:
    spec = TensorSpec("x", (1, 8), "float32")
    with pytest.raises(OnnxExportError, match=r"outputs are \[y float32\[1, 8\]\], the bundle contract needs"):
        export_graph(
            "net",
            _Shared(),
            [spec],
            [TensorSpec("y", (1, 9), "float32")],
            {"x": np.ones((1, 8), np.float32)},
            tmp_path / "s.onnx",
        )


def test_duplicated_initializers_are_merged(tmp_path: Path) -> None:
    spec = TensorSpec("x", (1, 8), "float32")
    path = tmp_path / "s.onnx"
    export_graph(
        "net", _Shared(), [spec], [TensorSpec("y", (1, 8), "float32")], {"x": np.ones((1, 8), np.float32)}, path
    )
    model = onnx.load(str(path))
    weights = [i for i in model.graph.initializer if tuple(i.dims) == (8, 8)]
    assert len(weights) == 1  # one copy of the shared weight, not one per call
    assert dedupe_initializers(path) == 0  # idempotent

"""Making the networks batchable for training must leave the exported batch-1 graphs exactly as they were.

`data/batch1_graphs.json` holds digests of the five graphs' nodes and initializers, exported from a seeded nano
checkpoint by the networks as they were before training existed (torch 2.13). Regenerate it only on purpose:
`python tests/export/test_batch1_graphs.py` (and say why in the commit).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import cast

import pytest

pytest.importorskip("torch")

from harmowam_edge.bundle.schema import CameraSpec

REFERENCE = Path(__file__).parent / "data" / "batch1_graphs.json"
CAMERA = CameraSpec("cam0", 160, 120, 30, streams=("color", "depth"))


def graph_digests(path: Path) -> dict[str, str]:
    """sha256 of the node list (op, inputs, outputs, attributes) and of the initializers (name, dims, bytes)."""
    import onnx

    g = onnx.load(str(path)).graph
    nodes = hashlib.sha256()
    for n in g.node:
        attrs = sorted((a.name, a.SerializeToString()) for a in n.attribute)
        nodes.update(repr((n.op_type, n.domain, list(n.input), list(n.output), attrs)).encode())
    inits = hashlib.sha256()
    for i in sorted(g.initializer, key=lambda i: i.name):
        inits.update(repr((i.name, list(i.dims), i.data_type)).encode())
        inits.update(onnx.numpy_helper.to_array(i).tobytes())
    return {"nodes": nodes.hexdigest(), "initializers": inits.hexdigest(), "node_count": str(len(g.node))}


def export_digests(work: Path) -> dict[str, dict[str, str]]:
    from export.checkpoint import init_checkpoint, load_checkpoint
    from export.onnx_export import export_all

    ck = load_checkpoint(init_checkpoint(work / "nano", camera=CAMERA, seed=3))
    graphs = export_all(ck.networks, ck.config, work)
    return {name: graph_digests(g.path) for name, g in sorted(graphs.items())}


def test_batch1_graphs_are_unchanged(tmp_path: Path) -> None:
    import torch

    want = json.loads(REFERENCE.read_text())
    if torch.__version__.split("+")[0] != want["torch"]:
        pytest.skip(f"reference digests are for torch {want['torch']}, this is {torch.__version__}")
    got = export_digests(tmp_path)
    for name, ref in want["graphs"].items():
        assert got[name] == ref, f"{name}: the exported batch-1 graph changed"


if __name__ == "__main__":
    import tempfile

    import torch

    with tempfile.TemporaryDirectory() as d:
        graphs = export_digests(Path(d))
    REFERENCE.parent.mkdir(exist_ok=True)
    REFERENCE.write_text(json.dumps({"torch": torch.__version__.split("+")[0], "graphs": graphs}, indent=1) + "\n")
    print(f"wrote {REFERENCE}", file=sys.stderr)


def test_a_batch_is_the_batch_1_networks_stacked_and_the_cached_path_is_the_graph_path() -> None:
    """What training runs (batches, frames shrunk once) computes what the exported batch-1 graphs compute."""
    import tempfile

    import torch as t

    from export.checkpoint import init_checkpoint, load_checkpoint
    from export.networks import ImageStem

    with tempfile.TemporaryDirectory() as d:
        ck = load_checkpoint(init_checkpoint(Path(d) / "nano", camera=CAMERA, seed=5))
    wm, react = ck.networks.world_model, ck.networks.reactive_expert
    g = t.Generator().manual_seed(0)
    imgs = t.randint(0, 256, (3, CAMERA.height, CAMERA.width, 3), generator=g, dtype=t.uint8)
    depth = t.randint(300, 3000, (3, CAMERA.height, CAMERA.width), generator=g).to(t.uint16)
    jp = t.rand(3, 7, generator=g)
    task = t.tensor(ck.config.tasks[0].embedding).expand(3, -1).contiguous()
    with t.no_grad():
        lat, fut, ctx = wm(imgs, depth, jp, task)
        chunk = react(lat, fut, jp)
        stem = cast(ImageStem, wm.stems[0])
        cached = wm.forward_shrunk([stem.shrink_color(imgs)], [stem.shrink_depth(depth)], jp, task)
        for i in range(3):
            one = wm(imgs[i : i + 1], depth[i : i + 1], jp[i : i + 1], task[i : i + 1])
            t.testing.assert_close(one[0], lat[i : i + 1], atol=1e-5, rtol=1e-5)
            t.testing.assert_close(one[1], fut[i : i + 1], atol=1e-5, rtol=1e-5)
            t.testing.assert_close(react(*one[:2], jp[i : i + 1]), chunk[i : i + 1], atol=1e-5, rtol=1e-5)
    for a, b in zip(cached, (lat, fut, ctx), strict=True):
        t.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # Different frames give different latents: the image reaches them.
    assert float((lat[0] - lat[1]).abs().max()) > 1e-3

"""Growing a checkpoint by `--init`: spatial-softmax keypoints (where they point, the graph) and added cameras."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from export.checkpoint import build_networks, init_checkpoint, load_checkpoint, save_checkpoint
from export.config import PRESETS, CheckpointConfig, Normalization, Task
from export.errors import ConfigError
from export.learning.trainer import TrainOptions, load_training_set, start_from
from export.networks import ImageStem, SpatialKeypoints
from export.onnx_export import WORLD_MODEL, export_graph, graph_io, random_feed
from harmowam_edge.bundle.schema import CameraSpec, reference_action_space
from tests.export.training_data import HEIGHT, WIDTH, write_demos


def _cfg(keypoints: int) -> CheckpointConfig:
    arch = dataclasses.replace(PRESETS["nano"], keypoints=keypoints)
    space = reference_action_space(1)
    return CheckpointConfig(
        architecture=arch,
        action_space=space,
        normalization=Normalization.from_limits(space),
        cameras=(CameraSpec("cam0", 80, 60, 30),),
        tasks=(Task("t", tuple(float(i) / arch.task_dim for i in range(arch.task_dim))),),
    )


def test_each_keypoint_is_the_expected_position_of_its_map() -> None:
    """A map that scores the red channel points at a red spot, in [-1, 1] image coordinates (x right, y down)."""
    arch = dataclasses.replace(PRESETS["nano"], keypoints=2)  # 64x48 input: 32x24 score maps
    kp = SpatialKeypoints(3, arch)
    first, last = kp.maps[0], kp.maps[2]
    assert isinstance(first, torch.nn.Conv2d)
    assert isinstance(last, torch.nn.Conv2d)
    with torch.no_grad():
        for conv in (first, last):
            assert conv.bias is not None
            conv.weight.zero_()
            conv.bias.zero_()
        first.weight[0, 0, 1, 1] = 1.0  # centre tap of the red channel
        last.weight[0, 0, 1, 1] = 40.0  # keypoint 0 scores it; keypoint 1 scores nothing (a flat map)
        x = torch.zeros(2, 3, 48, 64)
        x[0, 0, 10, 50] = 1.0  # map pixel (5, 25)
        x[1, 0, 40, 6] = 1.0  # map pixel (20, 3)
        points = kp.points(x)
    assert points.shape == (2, 2, 2)
    xs, ys = torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 24)
    torch.testing.assert_close(points[0, 0], torch.stack([xs[25], ys[5]]), atol=2e-3, rtol=0)
    torch.testing.assert_close(points[1, 0], torch.stack([xs[3], ys[20]]), atol=2e-3, rtol=0)
    torch.testing.assert_close(points[:, 1], torch.zeros(2, 2), atol=1e-6, rtol=0)  # a flat map: the centre


def test_keypoints_reach_the_latents_through_both_paths_and_the_exported_graph(tmp_path: Path) -> None:
    import onnxruntime as ort

    cfg = _cfg(keypoints=4)
    torch.manual_seed(0)
    nets = build_networks(cfg)
    wm = nets.world_model.eval()
    stem = wm.stems[0]
    assert isinstance(stem, ImageStem)
    assert stem.keypoints is not None
    torch.nn.init.normal_(stem.keypoints.embed.weight, std=0.5)  # as training leaves it, not the zero start
    feed = random_feed(graph_io(cfg)[WORLD_MODEL][0], cfg, np.random.default_rng(1))
    args = [torch.from_numpy(v) for v in feed.values()]
    with torch.no_grad():
        lat = wm(*args)[0]
        cached = wm.forward_shrunk([stem.shrink_color(args[0])], [None], args[1], args[2])[0]
        trained = stem.keypoints.embed.weight.clone()
        stem.keypoints.embed.weight.zero_()
        without = wm(*args)[0]
        stem.keypoints.embed.weight.copy_(trained)
    torch.testing.assert_close(cached, lat, atol=1e-5, rtol=1e-5)  # what training runs is what the graph runs
    assert float((lat - without).abs().max()) > 1e-3  # the keypoints change what the experts see
    inputs, outputs = graph_io(cfg)[WORLD_MODEL]
    path = tmp_path / "wm.onnx"
    export_graph(WORLD_MODEL, wm, inputs, outputs, feed, path)
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    np.testing.assert_allclose(got, lat.numpy(), atol=1e-4)


def test_init_grows_keypoints_without_changing_what_the_network_computes(tmp_path: Path) -> None:
    demos = write_demos(tmp_path / "demos", episodes=2, seed=3)
    cam = CameraSpec("cam0", WIDTH, HEIGHT, 10, ("color",))
    start = init_checkpoint(tmp_path / "start", preset="nano", camera=cam, seed=3)
    raw = json.loads((start / "config.json").read_text())
    raw["architecture"]["relative_actions"] = True
    (start / "config.json").write_text(json.dumps(raw))
    opts = TrainOptions(preset="nano", steps=2, batch_size=4, threads=1, val_fraction=0.0, keypoints=8)
    ts, cfg = load_training_set([demos], opts)
    ck, grown_cfg = start_from(start, ts, cfg, keypoints=8)
    assert grown_cfg.architecture.keypoints == 8
    old = load_checkpoint(start).networks.world_model.eval()
    new = ck.networks.world_model.eval()
    assert isinstance(new.stems[0], ImageStem)
    assert new.stems[0].keypoints is not None
    feed = random_feed(graph_io(grown_cfg)[WORLD_MODEL][0], grown_cfg, np.random.default_rng(2))
    args = [torch.from_numpy(v) for v in feed.values()]
    with torch.no_grad():
        for a, b in zip(old(*args), new(*args), strict=True):
            torch.testing.assert_close(a, b, atol=0, rtol=0)

    # Kept when not asked; never taken away or changed once there.
    grown = tmp_path / "grown"
    grown.mkdir()
    save_checkpoint(grown, grown_cfg, ck.networks)
    _, kept = start_from(grown, ts, cfg, keypoints=None)
    assert kept.architecture.keypoints == 8
    with pytest.raises(ConfigError, match=r"--init .*has 8 keypoints \(asked 0\); keypoints can only be added"):
        start_from(grown, ts, cfg, keypoints=0)


def test_keypoint_counts_out_of_range_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"--keypoints: expected an integer in 0\.\.64, got 65"):
        TrainOptions(keypoints=65).validate()
    with pytest.raises(ConfigError, match=r"architecture\.keypoints: expected an integer in 0\.\.64, got -1"):
        dataclasses.replace(PRESETS["nano"], keypoints=-1).validate()


def test_a_student_keeps_its_teachers_keypoints() -> None:
    from export.learning.distill import DistillOptions, student_architecture

    teacher = _cfg(keypoints=16)
    arch = student_architecture(DistillOptions(flow_steps=1), teacher)
    assert (arch.keypoints, arch.flow_steps) == (16, 1)
    assert student_architecture(DistillOptions(flow_steps=1), _cfg(keypoints=0)).keypoints == 0


def test_init_grows_a_camera_keeping_every_tensor_the_checkpoint_had(tmp_path: Path) -> None:
    """Data with a second camera after the checkpoint's own: a fresh stem for it, everything else carried over;
    the grown network trains and exports; cameras that do not extend the checkpoint's are refused."""
    one = write_demos(tmp_path / "one", episodes=2, seed=3)
    two = write_demos(tmp_path / "two", episodes=2, seed=3, cameras=2)
    opts = TrainOptions(preset="nano", steps=2, batch_size=4, threads=1, val_fraction=0.0)
    ts1, cfg1 = load_training_set([one], opts)
    start = tmp_path / "start"
    start.mkdir()
    torch.manual_seed(5)
    save_checkpoint(start, cfg1, build_networks(cfg1))
    ts2, cfg2 = load_training_set([two], opts)
    ck, grown_cfg = start_from(start, ts2, cfg2)
    assert [c.name for c in grown_cfg.cameras] == ["cam0", "cam1"]
    old = load_checkpoint(start).networks.state_dict()
    new = ck.networks.state_dict()
    assert set(old) < set(new)
    added = sorted(k for k in set(new) - set(old))
    assert added
    assert all(k.startswith("world_model.stems.1.") for k in added)
    for key, value in old.items():
        if key == "world_model.camera_emb":
            torch.testing.assert_close(new[key][:1], value, atol=0, rtol=0)
            assert new[key].shape[0] == 2
        else:
            torch.testing.assert_close(new[key], value, atol=0, rtol=0)
    # The second camera's pixels reach the latents.
    wm = ck.networks.world_model.eval()
    feed = random_feed(graph_io(grown_cfg)[WORLD_MODEL][0], grown_cfg, np.random.default_rng(2))
    args = [torch.from_numpy(v) for v in feed.values()]
    with torch.no_grad():
        lat = wm(*args)[0]
        args[1] = torch.zeros_like(args[1])
        blind = wm(*args)[0]
    assert float((lat - blind).abs().max()) > 1e-3

    # The other way round (two cameras into one) or another order is refused, naming both camera lists.
    two_ck = tmp_path / "two_ck"
    two_ck.mkdir()
    save_checkpoint(two_ck, grown_cfg, ck.networks)
    with pytest.raises(ConfigError, match=r"--init .*cameras .*differ from the data's .*can only be added after"):
        start_from(two_ck, ts1, cfg1)

"""The torch networks: preprocessing and (de)normalisation inside, flow stepping, presets' sizes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from export.checkpoint import build_networks, param_count
from export.config import PRESETS, CheckpointConfig, Normalization, Task, parse_camera
from export.errors import ConfigError
from export.networks import CropResize, FlowStep, UnrolledFlow
from harmowam_edge.bundle.schema import CameraSpec, reference_action_space


def _cfg(preset: str = "nano", camera: CameraSpec | None = None, arms: int = 1) -> CheckpointConfig:
    arch = PRESETS[preset]
    space = reference_action_space(arms)
    return CheckpointConfig(
        architecture=arch,
        action_space=space,
        normalization=Normalization.from_limits(space),
        cameras=(camera or CameraSpec("cam0", 160, 120, 30),),
        tasks=(Task("t", tuple(float(i) / arch.task_dim for i in range(arch.task_dim))),),
    )


def test_crop_box_keeps_the_model_aspect() -> None:
    # 640x480 into 128x96: same aspect, no crop, pool by 5 exactly.
    b = CropResize.for_camera(CameraSpec("c", 640, 480, 30), 96, 128)
    assert (b.top, b.left, b.height, b.width, b.pool_h, b.pool_w) == (0, 0, 480, 640, 5, 5)
    # 1280x720 (16:9) into 4:3: centre crop of the width.
    b = CropResize.for_camera(CameraSpec("c", 1280, 720, 30), 96, 128)
    assert (b.height, b.width) == (720, 960)
    assert b.left == 160
    assert b.top == 0


def test_actions_are_denormalised_inside_the_network() -> None:
    """With a zeroed output head the experts must return exactly the action mean (raw units)."""
    torch.manual_seed(0)
    cfg = _cfg()
    nets = build_networks(cfg)
    for head in (nets.reactive_expert.head, nets.predictive_expert.head):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    img = torch.randint(0, 256, (1, 120, 160, 3), dtype=torch.uint8)
    jp = torch.zeros(1, 7)
    task = torch.zeros(1, cfg.architecture.task_dim)
    with torch.no_grad():
        lat, fut, ctx = nets.world_model(img, jp, task)
        react = nets.reactive_expert(lat, fut, jp)
        pred = UnrolledFlow(nets.predictive_expert)(lat, fut, ctx, jp, torch.zeros(1, 12, 7))
    mean = torch.tensor(cfg.normalization.action_mean)
    torch.testing.assert_close(react[0], mean.expand(12, 7))
    torch.testing.assert_close(pred[0], mean.expand(12, 7))


def test_relative_experts_output_the_joint_state_plus_their_offsets() -> None:
    """Relative actions: a zeroed head means "the mean offset from where the arm is", in absolute setpoints."""
    torch.manual_seed(0)
    cfg = _cfg()
    cfg = dataclasses.replace(cfg, architecture=dataclasses.replace(cfg.architecture, relative_actions=True))
    nets = build_networks(cfg)
    for head in (nets.reactive_expert.head, nets.predictive_expert.head):
        torch.nn.init.zeros_(head.weight)
        torch.nn.init.zeros_(head.bias)
    img = torch.randint(0, 256, (1, 120, 160, 3), dtype=torch.uint8)
    jp = torch.linspace(-0.5, 0.5, 7).reshape(1, 7)
    task = torch.zeros(1, cfg.architecture.task_dim)
    n = cfg.architecture.flow_steps
    with torch.no_grad():
        lat, fut, ctx = nets.world_model(img, jp, task)
        react = nets.reactive_expert(lat, fut, jp)
        pred = UnrolledFlow(nets.predictive_expert)(lat, fut, ctx, jp, torch.zeros(1, 12, 7))
        x = torch.zeros(1, 12, 7)
        for i in range(n):
            x, stepped = FlowStep(nets.predictive_expert)(
                lat, fut, ctx, jp, x, torch.full((1,), i / n), torch.full((1,), 1.0 / n)
            )
    want = (torch.tensor(cfg.normalization.action_mean) + jp[0]).expand(12, 7)
    torch.testing.assert_close(react[0], want)
    torch.testing.assert_close(pred[0], want)
    torch.testing.assert_close(stepped[0], want)
    with pytest.raises(ConfigError, match="relative_actions: expected true or false"):
        dataclasses.replace(cfg.architecture, relative_actions=1).validate()  # type: ignore[arg-type]


def test_step_graph_looped_equals_unrolled_flow() -> None:
    torch.manual_seed(1)
    cfg = _cfg()
    nets = build_networks(cfg)
    lat = torch.randn(1, 4, 64)
    fut = torch.randn(1, 2, 4, 64)
    ctx = torch.randn(1, 64)
    jp = torch.randn(1, 7) * 0.1
    noise = torch.randn(1, 12, 7)
    n = cfg.architecture.flow_steps
    with torch.no_grad():
        ref = UnrolledFlow(nets.predictive_expert)(lat, fut, ctx, jp, noise)
        x, step = noise, FlowStep(nets.predictive_expert)
        for i in range(n):
            x, actions = step(lat, fut, ctx, jp, x, torch.tensor([i / n]), torch.tensor([1.0 / n]))
    torch.testing.assert_close(actions, ref, atol=1e-5, rtol=1e-5)
    assert float((ref - noise).abs().max()) > 1e-3  # the flow moved


def test_gate_weights_in_unit_interval_and_depth_changes_the_latents() -> None:
    torch.manual_seed(2)
    cfg = _cfg(camera=CameraSpec("cam0", 160, 120, 30, streams=("color", "depth")))
    nets = build_networks(cfg)
    img = torch.randint(0, 256, (1, 120, 160, 3), dtype=torch.uint8)
    near = torch.full((1, 120, 160), 500, dtype=torch.int32).to(torch.uint16)
    far = torch.full((1, 120, 160), 2500, dtype=torch.int32).to(torch.uint16)
    jp, task = torch.zeros(1, 7), torch.zeros(1, cfg.architecture.task_dim)
    with torch.no_grad():
        a = nets.world_model(img, near, jp, task)
        b = nets.world_model(img, far, jp, task)
        w = nets.gate(a[2], jp)
    assert float((a[0] - b[0]).abs().max()) > 1e-4
    assert w.shape == (1, 12)
    assert bool(((w >= 0) & (w <= 1)).all())


def test_preset_sizes() -> None:
    sizes = {}
    for name in ("nano", "small", "reference"):
        nets = build_networks(_cfg(name, CameraSpec("cam0", 640, 480, 30)))
        sizes[name] = sum(param_count(m) for m in nets.modules().values())
    assert 18e6 <= sizes["small"] <= 22e6  # "about 20 M parameters in all"
    assert sizes["reference"] >= 3 * sizes["small"]  # the distillation teacher, several times larger
    assert sizes["nano"] < sizes["small"]


def test_architecture_validation_and_camera_parsing() -> None:
    bad = dataclasses.replace(PRESETS["nano"], heads=3)
    with pytest.raises(ConfigError, match="heads"):
        bad.validate()
    assert parse_camera("640x480@15").fps == 15
    assert parse_camera("320x240", depth=True).streams == ("color", "depth")
    with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
        parse_camera("640by480")
    assert np.isclose(Normalization.from_limits(reference_action_space()).action_std[-1], 0.02)

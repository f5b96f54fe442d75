"""Parameters and FLOPs per network (one policy-step call of each graph)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from export.checkpoint import EdgeNetworks, param_count
from export.config import CheckpointConfig
from export.onnx_export import GRAPH_ORDER, graph_io, graph_modules, random_feed, to_torch
from harmowam_edge.bundle.schema import PREDICTIVE_EXPERT, PREDICTIVE_EXPERT_STEP


@dataclass(frozen=True)
class Complexity:
    params: int
    flops: int  # multiply-adds count as 2; matmuls, convolutions and attention (torch's FLOP counter)


def count_flops(module: nn.Module, args: tuple[torch.Tensor, ...]) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args)
    return int(counter.get_total_flops())


def network_complexity(nets: EdgeNetworks, cfg: CheckpointConfig) -> dict[str, Complexity]:
    """Per graph: `predictive_expert` counts every flow step, `predictive_expert_step` one (same weights)."""
    io = graph_io(cfg)
    mods = graph_modules(nets)
    rng = np.random.default_rng(0)
    out: dict[str, Complexity] = {}
    for name in GRAPH_ORDER:
        feed = random_feed(io[name][0], cfg, rng)
        args = tuple(to_torch(feed[s.name]) for s in io[name][0])
        params = param_count(nets.predictive_expert if name == PREDICTIVE_EXPERT_STEP else mods[name])
        out[name] = Complexity(params=params, flops=count_flops(mods[name], args))
    assert out[PREDICTIVE_EXPERT].params == param_count(nets.predictive_expert)
    return out


def total_params(nets: EdgeNetworks) -> int:
    return sum(param_count(m) for m in nets.modules().values())

"""ONNX (ONNX Runtime FP32) vs PyTorch parity, per network and end to end, on random and recorded inputs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from export.checkpoint import EdgeNetworks
from export.config import CheckpointConfig
from export.onnx_export import GRAPH_ORDER, graph_io, graph_modules, random_feed
from export.pipeline import OrtRunner, PolicyChain, Runner, TorchRunner, loop_step
from harmowam_edge.bundle.schema import (
    ACTIONS,
    GATE,
    NOISE,
    PREDICTIVE_EXPERT,
    PREDICTIVE_EXPERT_STEP,
    REACTIVE_EXPERT,
    WORLD_MODEL,
)

DEFAULT_TOLERANCE = 1e-4  # max abs error on actions, raw units (rad; gripper m)


def torch_runners(nets: EdgeNetworks, cfg: CheckpointConfig) -> dict[str, Runner]:
    io = graph_io(cfg)
    mods = graph_modules(nets)
    return {n: TorchRunner(mods[n], [s.name for s in io[n][0]], [s.name for s in io[n][1]]) for n in GRAPH_ORDER}


def _max_err(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> dict[str, float]:
    return {k: float(np.max(np.abs(a[k].astype(np.float64) - b[k].astype(np.float64)))) for k in a}


def check_parity(
    nets: EdgeNetworks,
    cfg: CheckpointConfig,
    graphs: Mapping[str, Path],
    recorded: Sequence[Mapping[str, np.ndarray]] = (),
    n_random: int = 3,
    tolerance: float = DEFAULT_TOLERANCE,
    seed: int = 1234,
) -> dict[str, Any]:
    """Compare every ONNX graph with its torch module; the report's `ok` says whether actions are in tolerance.

    Per network the graph sees the torch world model's outputs (isolated error); end to end, the ONNX graphs
    are chained as the runtime chains them (accumulated error).
    """
    rng = np.random.default_rng(seed)
    io = graph_io(cfg)
    ref = torch_runners(nets, cfg)
    onnx = {n: OrtRunner(graphs[n]) for n in GRAPH_ORDER}
    steps = cfg.architecture.flow_steps
    obs_list: list[tuple[str, Mapping[str, np.ndarray]]] = [
        ("random", random_feed(io[WORLD_MODEL][0], cfg, rng)) for _ in range(n_random)
    ]
    obs_list += [("recorded", o) for o in recorded]
    per_net: dict[str, dict[str, float]] = {n: {} for n in GRAPH_ORDER}
    e2e: dict[str, float] = {"reactive_actions": 0.0, "predictive_actions": 0.0, "predictive_step_actions": 0.0}

    def worst(into: dict[str, float], errs: Mapping[str, float]) -> None:
        for k, v in errs.items():
            into[k] = max(into.get(k, 0.0), v)

    for _, obs in obs_list:
        noise = rng.standard_normal(io[PREDICTIVE_EXPERT][0][-1].shape).astype(np.float32)
        t_wm = ref[WORLD_MODEL](obs)
        worst(per_net[WORLD_MODEL], _max_err(t_wm, onnx[WORLD_MODEL](obs)))
        feed = {**obs, **t_wm}
        for n in (GATE, REACTIVE_EXPERT):
            worst(per_net[n], _max_err(ref[n](feed), onnx[n](feed)))
        pfeed = {**feed, NOISE: noise}
        t_pred = ref[PREDICTIVE_EXPERT](pfeed)
        worst(per_net[PREDICTIVE_EXPERT], _max_err(t_pred, onnx[PREDICTIVE_EXPERT](pfeed)))
        sfeed = random_feed(io[PREDICTIVE_EXPERT_STEP][0], cfg, rng) | feed
        worst(
            per_net[PREDICTIVE_EXPERT_STEP],
            _max_err(ref[PREDICTIVE_EXPERT_STEP](sfeed), onnx[PREDICTIVE_EXPERT_STEP](sfeed)),
        )
        # The runtime's loop over the step graph must land where the unrolled torch flow lands.
        looped = loop_step(onnx[PREDICTIVE_EXPERT_STEP], feed, noise, steps)
        worst(e2e, {"predictive_step_actions": float(np.max(np.abs(looped - t_pred[ACTIONS])))})
        t_out = PolicyChain(ref, steps).run(obs, noise, wm_out=t_wm)
        o_out = PolicyChain(onnx, steps).run(obs, noise)
        worst(
            e2e,
            {
                "reactive_actions": float(np.max(np.abs(o_out.reactive - t_out.reactive))),
                "predictive_actions": float(np.max(np.abs(o_out.predictive - t_out.predictive))),
            },
        )
    max_action = max(e2e.values())
    return {
        "reference": "PyTorch eager (float32)",
        "candidate": "ONNX Runtime CPU, float32 graphs",
        "samples": {"random": n_random, "recorded": len(recorded)},
        "tolerance_actions": tolerance,
        "units": "max abs error; actions in raw units (rad, gripper m)",
        "networks": per_net,
        "end_to_end": e2e,
        "max_action_error": max_action,
        "ok": bool(max_action <= tolerance),
    }

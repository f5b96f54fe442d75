"""Run the four networks as the policy does (world model -> gate -> both experts), on torch or ONNX Runtime.

Used by the parity check, the quantization accuracy report and the bench, so all three compare the same thing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from export.onnx_export import to_torch
from harmowam_edge.bundle.composition import GateMode, blend, blend_weights, decide, flow_schedule
from harmowam_edge.bundle.schema import (
    ACTIONS,
    CONTEXT,
    FLOW_DT,
    FLOW_NEXT,
    FLOW_STATE,
    FLOW_TIME,
    FUTURE_LATENTS,
    GATE,
    GATE_WEIGHTS,
    LATENTS,
    NOISE,
    PREDICTIVE_EXPERT,
    PREDICTIVE_EXPERT_STEP,
    REACTIVE_EXPERT,
    WORLD_MODEL,
    GateParams,
)

Feed = dict[str, np.ndarray]
Runner = Callable[[Mapping[str, np.ndarray]], Feed]


def ort_session(path: Path | str, threads: int = 2) -> object:
    """A CPU ONNX Runtime session with a fixed thread count (the bench and checks compare like with like)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    # A policy step chains several sessions: with spinning on, the previous session's idle workers keep
    # spinning on the same 2 cores and the next one runs 3-4x slower (measured, docs/export.md).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_settings(threads: int = 2) -> str:
    """`ort_session`'s options in words: the same wording and values as the runtime's engines
    (`harmowam_edge.engines.onnxruntime_engine.session_settings`), which a test keeps equal."""
    return f"CPUExecutionProvider, {threads} intra-op thread(s), 1 inter-op, spinning off, ORT_ENABLE_ALL, sequential"


class OrtRunner:
    def __init__(self, path: Path | str, threads: int = 2) -> None:
        self.path = Path(path)
        self.session: object = ort_session(path, threads)
        self.input_names = [i.name for i in self.session.get_inputs()]  # type: ignore[attr-defined]
        self.output_names = [o.name for o in self.session.get_outputs()]  # type: ignore[attr-defined]

    def __call__(self, feed: Mapping[str, np.ndarray]) -> Feed:
        outs = self.session.run(None, {n: feed[n] for n in self.input_names})  # type: ignore[attr-defined]
        return dict(zip(self.output_names, outs, strict=True))


class TorchRunner:
    def __init__(self, module: nn.Module, input_names: list[str], output_names: list[str]) -> None:
        self.module = module
        self.input_names = input_names
        self.output_names = output_names

    def __call__(self, feed: Mapping[str, np.ndarray]) -> Feed:
        with torch.no_grad():
            out = self.module(*(to_torch(feed[n]) for n in self.input_names))
        outs = out if isinstance(out, tuple) else (out,)
        return {n: o.numpy() for n, o in zip(self.output_names, outs, strict=True)}


def gate_decision(weights: np.ndarray, gate: GateParams) -> GateMode:
    """Which experts run for one chunk, by the runtime's rule (a single observation: no hysteresis)."""
    return decide(weights, gate)


@dataclass
class PolicyOutput:
    latents: np.ndarray
    future_latents: np.ndarray
    context: np.ndarray
    gate_weights: np.ndarray  # [1, K]
    reactive: np.ndarray  # [1, K, A]
    predictive: np.ndarray  # [1, K, A]

    def blended(self, gate: GateParams) -> np.ndarray:
        """The actions the runtime would send for this observation: its gate decision, then its blend."""
        applied = blend_weights(self.gate_weights, decide(self.gate_weights, gate))
        return blend(self.predictive, self.reactive, applied)


class PolicyChain:
    """world model -> gate -> reactive + predictive (unrolled graph, or the step graph looped N times)."""

    def __init__(self, runners: Mapping[str, Runner], flow_steps: int, flow_mode: str = "unrolled") -> None:
        self.runners = dict(runners)
        self.flow_steps = flow_steps
        self.flow_mode = flow_mode

    def world_model(self, obs: Mapping[str, np.ndarray]) -> Feed:
        return self.runners[WORLD_MODEL](obs)

    def predictive(self, feed: Mapping[str, np.ndarray], noise: np.ndarray) -> np.ndarray:
        if self.flow_mode == "unrolled":
            return self.runners[PREDICTIVE_EXPERT]({**feed, NOISE: noise})[ACTIONS]
        return loop_step(self.runners[PREDICTIVE_EXPERT_STEP], feed, noise, self.flow_steps)

    def run(self, obs: Mapping[str, np.ndarray], noise: np.ndarray, wm_out: Feed | None = None) -> PolicyOutput:
        wm = wm_out if wm_out is not None else self.world_model(obs)
        feed = {**obs, **wm}
        return PolicyOutput(
            latents=wm[LATENTS],
            future_latents=wm[FUTURE_LATENTS],
            context=wm[CONTEXT],
            gate_weights=self.runners[GATE](feed)[GATE_WEIGHTS],
            reactive=self.runners[REACTIVE_EXPERT](feed)[ACTIONS],
            predictive=self.predictive(feed, noise),
        )


def loop_step(step: Runner, feed: Mapping[str, np.ndarray], noise: np.ndarray, n: int) -> np.ndarray:
    """The runtime's loop over the one-step graph (composition.flow_schedule): x_0 = noise."""
    times, dt = flow_schedule(n)
    x = noise
    actions = None
    for t in times:
        out = step({**feed, FLOW_STATE: x, FLOW_TIME: t, FLOW_DT: dt})
        x, actions = out[FLOW_NEXT], out[ACTIONS]
    assert actions is not None
    return actions


def step_states(step: Runner, feed: Mapping[str, np.ndarray], noise: np.ndarray, n: int) -> list[Feed]:
    """Every input the step graph sees along one flow trajectory (calibration data for the step graph)."""
    times, dt = flow_schedule(n)
    x = noise
    feeds = []
    for t in times:
        f = {**feed, FLOW_STATE: x, FLOW_TIME: t, FLOW_DT: dt}
        feeds.append(f)
        x = step(f)[FLOW_NEXT]
    return feeds


__all__ = [
    "OrtRunner",
    "PolicyChain",
    "PolicyOutput",
    "TorchRunner",
    "gate_decision",
    "loop_step",
    "ort_session",
    "step_states",
]

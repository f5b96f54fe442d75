"""The HarmoWAM policy: world model → gate → the experts the gate needs → per-step blend → action chunk."""

from harmowam_edge.policy.gate import GATE_MODES, GateHysteresis, GateMode, blend_weights, decide
from harmowam_edge.policy.policy import STAGES, ActionChunk, Observation, Policy, PolicyError

__all__ = [
    "GATE_MODES",
    "STAGES",
    "ActionChunk",
    "GateHysteresis",
    "GateMode",
    "Observation",
    "Policy",
    "PolicyError",
    "blend_weights",
    "decide",
]

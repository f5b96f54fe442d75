"""The HarmoWAM policy: world model → gate → the experts the gate needs → per-step blend → action chunk."""

from harmowam_edge.policy.gate import GATE_MODES, GateHysteresis, GateMode, blend_weights, decide

__all__ = ["GATE_MODES", "GateHysteresis", "GateMode", "blend_weights", "decide"]

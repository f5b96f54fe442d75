"""The real-time side: chunk scheduling, the safety filter, precise timing, the rig config and the control loop."""

from harmowam_edge.control.rig import ArmConfig, CameraConfig, JointOverride, RigConfig
from harmowam_edge.control.safety import JointLimits, SafetyConfig, SafetyCounters, SafetyFilter
from harmowam_edge.control.scheduler import Blend, ChunkScheduler, Sample, SchedulerConfig, Trajectory
from harmowam_edge.control.timing import RateKeeper, Tick

__all__ = [
    "ArmConfig",
    "Blend",
    "CameraConfig",
    "ChunkScheduler",
    "JointLimits",
    "JointOverride",
    "RateKeeper",
    "RigConfig",
    "SafetyConfig",
    "SafetyCounters",
    "SafetyFilter",
    "Sample",
    "SchedulerConfig",
    "Tick",
    "Trajectory",
]

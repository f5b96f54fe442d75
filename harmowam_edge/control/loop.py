"""The real-time loop: a loaded bundle, a rig (arm links + camera sources), a task → joint setpoints until stopped.

    summary = run_policy(bundle, Rig(arms=["/dev/ttyACM0"], cameras=[source]), RunOptions(task="reach"),
                         observers=[EpisodeRecorder("episode.mcap")])

Threads (design §4): each camera source runs its own; *inference* runs the policy on a new frame whenever the
scheduler says a chunk is due; *control* (default 200 Hz, sleep then spin the last ~1 ms) adopts new chunks,
samples the trajectory, applies the safety filter, sends setpoints and reads state; the calling thread supervises
(signals, status line, camera health). Whatever ends the run — the duration, Ctrl-C/SIGTERM, an inference
exception, a lost link, a stale state stream, a lost or stalled camera, a firmware e-stop or fault, non-finite
actions, a measured state no arm could produce, a bug — it ends the same way: brake and hold, torque off, close, and the
summary says why.

Observers (`RunObserver`) see the run: `on_start`, `on_chunk` (inference thread), `on_tick` (control thread,
200 Hz: must only enqueue), `on_event`, `on_end`. The MCAP episode recorder is one; the simulated rig's video
overlay is another. An observer that raises stops the run safely.
"""

from __future__ import annotations

from collections.abc import Sequence

from harmowam_edge.bundle.loader import LoadedBundle
from harmowam_edge.control.run_stats import write_stats
from harmowam_edge.control.run_types import (
    CAMERA_LOST,
    CAMERA_STALL,
    CLEAN_REASONS,
    DURATION,
    FIRMWARE_ESTOP,
    FIRMWARE_FAULT,
    INFERENCE_ERROR,
    INTERNAL_ERROR,
    INTERRUPTED,
    LINK_LOST,
    MEASUREMENT_FAULT,
    NONFINITE_ACTION,
    OBSERVER_ERROR,
    RECORDING_ENDED,
    STATE_STALE,
    Rig,
    RunEvent,
    RunInfo,
    RunObserver,
    RunOptions,
    RunSummary,
    StopReason,
    TickRecord,
)
from harmowam_edge.control.session import Session
from harmowam_edge.policy.policy import Policy

# Where the parts live: run_types (these types), session (lifecycle, supervisor), control_tick (the control
# thread), inference_worker, stop_ladder, measurement (the measured-state guard), run_stats, run_context.
__all__ = [
    "CAMERA_LOST",
    "CAMERA_STALL",
    "CLEAN_REASONS",
    "DURATION",
    "FIRMWARE_ESTOP",
    "FIRMWARE_FAULT",
    "INFERENCE_ERROR",
    "INTERNAL_ERROR",
    "INTERRUPTED",
    "LINK_LOST",
    "MEASUREMENT_FAULT",
    "NONFINITE_ACTION",
    "OBSERVER_ERROR",
    "RECORDING_ENDED",
    "STATE_STALE",
    "Rig",
    "RunEvent",
    "RunInfo",
    "RunObserver",
    "RunOptions",
    "RunSummary",
    "StopReason",
    "TickRecord",
    "run_policy",
    "write_stats",
]


def run_policy(
    bundle: LoadedBundle,
    rig: Rig,
    options: RunOptions,
    observers: Sequence[RunObserver] = (),
    *,
    policy: Policy | None = None,
) -> RunSummary:
    """Run `options.task` on `rig` until a stop; see the module docstring. Always returns with the arm safe.

    Raises (after closing what it opened) only when the run could not start: a bad port, a firmware that does
    not match the bundle, an arm outside its limits, a camera that does not match. Everything after the start
    ends in a `RunSummary` whose `reason` says why it stopped. `policy`: a ready `Policy` over `bundle` (default:
    one for `options.task` seeded with `options.seed`).
    """
    return Session(bundle, rig, options, observers, policy).run()

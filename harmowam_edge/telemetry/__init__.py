"""Loop telemetry: windowed latency statistics, status line, run summary and stats file, MCAP episodes."""

from harmowam_edge.telemetry.stats import LatencyWindow, PeriodRecorder, json_default, summarize

# The MCAP episode recorder and the status line are `harmowam_edge.telemetry.episode` / `.status` (they build on
# the control loop's observer interface, which itself uses these statistics).
__all__ = ["LatencyWindow", "PeriodRecorder", "json_default", "summarize"]

"""Loop telemetry: windowed latency statistics, status line, run summary and stats file, MCAP episodes."""

from harmowam_edge.telemetry.stats import LatencyWindow, PeriodRecorder, summarize

__all__ = ["LatencyWindow", "PeriodRecorder", "summarize"]

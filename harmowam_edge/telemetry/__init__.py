"""Loop telemetry: windowed latency statistics, status line, run summary and stats file, MCAP episodes; the bench
report every area's `bench` command prints and writes."""

from harmowam_edge.telemetry.benchreport import BenchReport, BenchRow, machine_info, rows_from
from harmowam_edge.telemetry.stats import LatencyWindow, PeriodRecorder, json_default, summarize

# The MCAP episode recorder and the status line are `harmowam_edge.telemetry.episode` / `.status` (they build on
# the control loop's observer interface, which itself uses these statistics).
__all__ = [
    "BenchReport",
    "BenchRow",
    "LatencyWindow",
    "PeriodRecorder",
    "json_default",
    "machine_info",
    "rows_from",
    "summarize",
]

"""A run's statistics: the counters the loop threads write, the live status line, the stats dict and its file."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware_bridge import ArmClient
from harmowam_edge.control.run_types import RunSummary, StopReason
from harmowam_edge.policy.policy import STAGES
from harmowam_edge.telemetry.stats import LatencyWindow, PeriodRecorder, json_default, summarize

if TYPE_CHECKING:
    from harmowam_edge.control.run_context import RunContext


@dataclass
class RunCounters:
    """Written by one thread each (inference: chunks made, stage times; control: the rest), read by the supervisor."""

    period: PeriodRecorder
    stage_times: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})
    chunk_latency: list[float] = field(default_factory=list)  # observation → chunk ready
    frame_to_setpoint: list[float] = field(default_factory=list)  # frame capture → first setpoint using its chunk
    inference_window: LatencyWindow = field(default_factory=lambda: LatencyWindow(64))
    chunks_made: int = 0
    chunks_adopted: int = 0
    chunks_stale: int = 0
    chunks_nonfinite: int = 0
    chunks_out_of_range: int = 0
    setpoints_sent: int = 0
    ticks: int = 0
    t_first_setpoint: float | None = None
    t_first_chunk_setpoint: float | None = None
    # Where missed ticks fall (control): while a policy step ran, or with inference idle; against the share of
    # the run inference was busy (inference), this tells the loop's own stalls from the platform's.
    missed_while_inferring: int = 0
    missed_while_idle: int = 0
    inference_busy_s: float = 0.0


def status_line(ctx: RunContext, now: float) -> str:
    """One line for the console: loop rate and jitter, inference latency, gate, links, cameras."""
    t = now - (ctx.info.t_start if ctx.info else now)
    per = ctx.counters.period.summary()
    inf = ctx.counters.inference_window
    parts = [
        f"{t:6.1f}s",
        f"loop {per['rate_hz']:.0f}Hz jitter p99 {per['jitter_ms_p99']:.2f}ms missed {per['missed_ticks']}",
        f"infer p50 {inf.p50 * 1000:.1f} p99 {inf.p99 * 1000:.1f}ms",
        f"gate {ctx.last_mode or '-'}",
        f"{ctx.status}",
    ]
    for link in ctx.links:
        st = link.state()
        mode = st.mode.name if st is not None else "?"
        rtt = link.stats.rtt_p50_s
        parts.append(f"{link.port.rsplit('/', 1)[-1]} {mode}" + (f" rtt {rtt * 1000:.1f}ms" if rtt else ""))
    for cam in ctx.cameras:
        h = cam.health()
        parts.append(f"{cam.spec.name} {h.fps:.0f}fps" + (f" ({h.restarts} restarts)" if h.restarts else ""))
    if ctx.opt.dry_run:
        parts.append("DRY RUN")
    return " | ".join(parts)


def run_stats(ctx: RunContext, reason: StopReason) -> dict[str, Any]:
    """The run's statistics (the `--stats` file and the summary table)."""
    c = ctx.counters
    stages = {s: summarize(v) for s, v in c.stage_times.items()}
    gate = ctx.policy.gate if ctx.policy is not None else None
    out: dict[str, Any] = {
        "reason": {"kind": reason.kind, "message": reason.message, "clean": reason.clean},
        "bundle": str(ctx.bundle.root),
        "backend": ctx.bundle.backend,
        "task": ctx.opt.task,
        "rig": ctx.rig.name,
        "dry_run": ctx.opt.dry_run,
        "control_rate_hz": ctx.rate,
        "control_priority": ctx.realtime,
        "loop": c.period.summary(),
        "missed_ticks_by_inference": {
            "while_inferring": c.missed_while_inferring,
            "while_idle": c.missed_while_idle,
            "inference_busy_fraction": c.inference_busy_s / run_s if (run_s := ctx.run_time()) > 0 else None,
        },
        "startup_s": {
            "first_setpoint": None if c.t_first_setpoint is None else c.t_first_setpoint - ctx.t_launch,
            "first_policy_setpoint": None
            if c.t_first_chunk_setpoint is None
            else c.t_first_chunk_setpoint - ctx.t_launch,
        },
        "inference_ms": stages,
        "chunk_latency_ms": summarize(c.chunk_latency),
        "frame_to_setpoint_ms": summarize(c.frame_to_setpoint),
        "chunks": {
            "made": c.chunks_made,
            "adopted": c.chunks_adopted,
            "stale": c.chunks_stale,
            "rejected_nonfinite": c.chunks_nonfinite,
            "rejected_out_of_range": c.chunks_out_of_range,
            "stale_steps_skipped": ctx.scheduler.stale_steps if ctx.scheduler is not None else 0,
        },
        "gate": {"counts": dict(gate.counts), "switches": gate.switches} if gate else {},
        "setpoints_sent": c.setpoints_sent,
        "safety": ctx.safety.counters.to_dict() if ctx.safety is not None else {},
        "links": {link.port: link_stats(link) for link in ctx.links},
        "cameras": {cam.spec.name: asdict(cam.health()) for cam in ctx.cameras},
        "errors": list(ctx.errors),
    }
    if ctx.tracebacks:
        out["tracebacks"] = list(ctx.tracebacks)
    return out


def link_stats(link: ArmClient) -> dict[str, Any]:
    try:
        return {k: v for k, v in asdict(link.stats).items() if v is not None}
    except Exception as e:  # a closed link may not answer
        return {"error": str(e)}


def write_stats(path: Path, summary: RunSummary) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(summary.stats)
    data["duration_s"] = summary.duration_s
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=json_default) + "\n")
    tmp.replace(path)

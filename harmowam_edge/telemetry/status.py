"""The live status line and the end-of-run summary for `harmowam-edge run`."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class StatusLine:
    """On a terminal: one line rewritten in place. Elsewhere (a log file, CI): a plain line every `every_s`."""

    def __init__(self, stream: TextIO | None = None, every_s: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.every_s = every_s
        self._last = 0.0
        self._width = 0

    def __call__(self, line: str) -> None:
        if self.tty:
            pad = max(0, self._width - len(line))
            self.stream.write("\r" + line + " " * pad)
            self._width = len(line)
        else:
            now = time.monotonic()
            if now - self._last < self.every_s:
                return
            self._last = now
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0


def summary_rows(stats: dict[str, Any]) -> list[tuple[str, str]]:
    """(what, value) lines of the end-of-run summary, from a run's stats dict."""
    rows: list[tuple[str, str]] = []
    r = stats["reason"]
    rows.append(("stopped", f"{r['kind']}: {r['message']}" + ("" if r["clean"] else "  (FAULT)")))
    rows.append(("duration", f"{stats.get('duration_s', 0.0):.1f} s" + ("  (dry run)" if stats.get("dry_run") else "")))
    loop = stats["loop"]
    rows.append(
        (
            "control loop",
            (
                f"{loop['rate_hz']:.1f} Hz, period jitter p50 {loop['jitter_ms_p50']:.3f}"
                f" / p99 {loop['jitter_ms_p99']:.3f} / max {loop['jitter_ms_max']:.2f} ms,"
                f" missed ticks {loop['missed_ticks']} of {loop['ticks']}"
            ),
        )
    )
    inf = stats["inference_ms"]
    if inf["total"]["n"]:
        stages = ", ".join(
            f"{s} {inf[s]['p50']:.2f}" for s in ("world_model", "gate", "reactive", "predictive") if inf[s]["n"]
        )
        rows.append(
            (
                "policy step",
                (
                    f"p50 {inf['total']['p50']:.2f} / p99 {inf['total']['p99']:.2f} ms ({stages} ms p50) on "
                    f"{stats.get('backend', '?')}"
                ),
            )
        )
    c = stats["chunks"]
    rows.append(
        (
            "chunks",
            (
                f"{c['made']} made, {c['adopted']} adopted, {c['stale']} stale, {c['rejected_nonfinite']} non-finite, "
                f"{c['rejected_out_of_range']} out of range"
            ),
        )
    )
    g = stats.get("gate") or {}
    if g:
        counts = ", ".join(f"{k} {v}" for k, v in g["counts"].items())
        rows.append(("gate", f"{counts}; {g['switches']} switches"))
    f2s = stats["frame_to_setpoint_ms"]
    if f2s["n"]:
        rows.append(("frame → setpoint", f"p50 {f2s['p50']:.1f} / p99 {f2s['p99']:.1f} ms"))
    st = stats["startup_s"]
    if st.get("first_setpoint") is not None:
        first_policy = st.get("first_policy_setpoint")
        extra = f", first policy setpoint {first_policy:.2f} s" if first_policy is not None else ""
        rows.append(("start-up", f"first setpoint {st['first_setpoint']:.2f} s{extra}"))
    safety = stats.get("safety") or {}
    if safety:
        rows.append(("safety filter", ", ".join(f"{k} {v}" for k, v in safety.items() if v) or "nothing to do"))
    for port, ls in (stats.get("links") or {}).items():
        rtt = ls.get("rtt_p50_s")
        rtt_s = f", rtt p50 {rtt * 1000:.2f} ms" if rtt else ""
        rows.append(
            (
                f"link {port}",
                (
                    f"{ls.get('states_rx', 0)} states, {ls.get('crc_errors', 0)} CRC errors, "
                    f"{ls.get('seq_gaps', 0)} gaps{rtt_s}"
                ),
            )
        )
    for name, h in (stats.get("cameras") or {}).items():
        rows.append(
            (
                f"camera {name}",
                f"{h['frames']} frames, {h['fps']:.1f} fps, {h['dropped']} dropped, {h['timeouts']} timeouts, "
                f"{h['restarts']} restarts" + (f"; {h['last_error']}" if h.get("last_error") else ""),
            )
        )
    for e in stats.get("errors") or []:
        rows.append(("error", e))
    return rows

"""Real-time scheduling for the loop's threads where the OS allows it (SCHED_FIFO), and putting it back."""

from __future__ import annotations

import contextlib
import logging
import os
import threading

log = logging.getLogger("harmowam_edge.run")


def raise_thread_priority(prio: int | None) -> str:
    """SCHED_FIFO for the calling thread (Linux: needs CAP_SYS_NICE or an rtprio limit, e.g. in limits.conf), so
    that other processes cannot delay a tick; without the permission it runs at normal priority. Says which."""
    if prio is None or not hasattr(os, "sched_setscheduler"):
        return "off"
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(prio))  # 0: this thread
        return f"SCHED_FIFO {prio}"
    except (PermissionError, OSError) as e:
        realtime = f"normal priority ({e.strerror or e}; allow rtprio {prio} for a steadier loop)"
        log.info("control thread: %s", realtime)
        return realtime


def boost_link_readers(prio: int | None) -> list[tuple[int, int, int]]:
    """The arm links' reader threads get a SCHED_FIFO priority just below the control thread's for the run:
    starved of CPU by inference, they would deliver states late and the safety filter would e-stop a healthy
    arm (seen with ONNX Runtime on every core of a loaded 2-core machine). Returns what to restore."""
    if prio is None or not hasattr(os, "sched_setscheduler"):
        return []
    changed = []
    for t in threading.enumerate():
        if not t.name.startswith("armlink-") or t.native_id is None:
            continue
        tid = t.native_id
        try:
            old = (os.sched_getscheduler(tid), os.sched_getparam(tid).sched_priority)
            os.sched_setscheduler(tid, os.SCHED_FIFO, os.sched_param(max(1, prio - 1)))
            changed.append((tid, *old))
        except (PermissionError, OSError):
            break
    return changed


def restore_priorities(changed: list[tuple[int, int, int]]) -> None:
    for tid, policy, prio in changed:
        with contextlib.suppress(OSError):
            os.sched_setscheduler(tid, policy, os.sched_param(prio))

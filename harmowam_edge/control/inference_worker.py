"""The inference thread: whenever the scheduler says a chunk is due, run the policy on the next frame and hand the
chunk to the control thread, one chunk in flight at a time."""

from __future__ import annotations

import logging
import time
import traceback

from harmowam_edge.cameras.frames import Frame
from harmowam_edge.control.run_context import RunContext, describe_exception
from harmowam_edge.control.run_types import INFERENCE_ERROR
from harmowam_edge.policy.policy import STAGES, Observation

log = logging.getLogger("harmowam_edge.run")


class InferenceWorker:
    def __init__(self, ctx: RunContext) -> None:
        self.ctx = ctx

    def run(self) -> None:
        ctx = self.ctx
        try:
            self._loop()
        except Exception as e:
            # An engine failing at run time is a fault of the run, not a bug of this program: the console gets
            # the reason (the summary), the stats file the traceback.
            reason = f"inference failed: {describe_exception(e)}"
            ctx.tracebacks.append(traceback.format_exc())
            log.debug("inference failed", exc_info=True)
            ctx.stop.request(INFERENCE_ERROR, reason)

    def _loop(self) -> None:
        ctx = self.ctx
        policy = ctx.policy
        assert policy is not None
        last: list[int | None] = [None] * len(ctx.cameras)
        c = ctx.counters
        while not ctx.stop.is_set():
            if not ctx.mailbox.adopted.is_set():
                ctx.mailbox.adopted.wait(0.05)
                continue
            wait = ctx.due_at - time.monotonic()
            if wait > 0:
                # Sleep until the chunk is due: due_at moves only when the control thread adopts a chunk, which
                # it has done by now. Polling every few ms instead took the GIL hundreds of times a second, and
                # a poll preempted by another process while holding it stalled the control thread (issue 11).
                ctx.stop.event.wait(min(wait, 0.05))
                continue
            # A chunk is due: run on the next frame of the first camera (the freshest observation, since
            # actions are anchored to its capture time), with the newest unused frame of the others.
            frames: list[Frame] = []
            for i, cam in enumerate(ctx.cameras):
                after = last[i]
                if i == 0:
                    newest = cam.latest()
                    after = newest.frame_number if newest is not None else None
                f = cam.wait_newer(after, ctx.opt.frame_timeout_s)
                if f is None:
                    break
                frames.append(f)
            if len(frames) != len(ctx.cameras) or ctx.stop.is_set():
                continue  # no new frame yet: the supervisor watches for stalls
            for i, f in enumerate(frames):
                last[i] = f.frame_number
            # What the control thread measured and checked on its newest tick (at most a control period old):
            # the policy never sees a measurement the guard has not passed.
            joint_pos = ctx.checked_measurement
            if joint_pos is None:
                continue
            t_step = time.monotonic()
            ctx.step_started = t_step
            try:
                chunk = policy.step(Observation(frames, joint_pos.copy()))
            finally:
                t_done = time.monotonic()
                ctx.last_step = (t_step, t_done)
                ctx.step_started = None
                c.inference_busy_s += t_done - t_step
            c.chunks_made += 1
            ctx.last_mode = chunk.mode
            for s in STAGES:
                c.stage_times[s].append(chunk.timings[s])
            c.inference_window.add(chunk.timings["total"])
            ctx.mailbox.put(chunk, frames)
            ctx.notify("on_chunk", chunk, frames)
            # One chunk in flight at a time: wait until the control thread has adopted (or refused) it.
            while not ctx.mailbox.adopted.wait(0.05):
                if ctx.stop.is_set():
                    return

"""Who may run a benchmark and when (one at a time, one per visitor), and Run and Stop as a run starts and ends."""
from __future__ import annotations

import threading
import time

import gradio as gr

from ui.errors import user_errors
from ui.sessions import pending_requests, session_id
from ui.visitor_limits import busy_line

QUEUE_GROUP = "benchmark"  # one measurement at a time: two would slow each other
PER_SESSION = 1  # benchmarks one session may have waiting or running


class Admissions:
    """Sessions whose Run click the page's first step checked and admitted a moment ago (that step disables the Run
    button). The run it starts is let through without a second check: a second check could refuse it (an estimate
    near the limit, made again with a new calibration), and Gradio's page runs nothing after a refused request,
    which would leave the Run button disabled for good."""

    def __init__(self, ttl_s: float = 60.0):
        self.ttl_s = ttl_s  # an admission the page never followed with its run (the tab closed) lapses
        self._when: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, session: str | None) -> None:
        """Admit `session` now, for ttl_s seconds (until take); None, a request without a session, is not kept."""
        if session is not None:
            with self._lock:
                self._when[session] = time.monotonic()

    def take(self, session: str | None) -> bool:
        """Whether `session` was admitted within ttl_s; the admission is used up."""
        with self._lock:
            when = self._when.pop(session, None) if session is not None else None
        return when is not None and time.monotonic() - when <= self.ttl_s


RUN_LABEL, RUNNING_LABEL = "Run benchmark", "Running…"
BUSY_LINE = busy_line(PER_SESSION, "benchmark", "benchmarks")  # the refusal of a second benchmark of one visitor
STARTING_LINE = "Starting…"
WAITING_LINE = "Waiting for its turn: another benchmark is running, and this app runs one at a time."


def benchmarks_in_queue() -> int:
    """How many benchmarks, anyone's, wait in Gradio's queue or run now; 0 outside a request."""
    return pending_requests(None, QUEUE_GROUP)


@user_errors
def admit_run(admissions: Admissions, guard, *inputs) -> tuple[gr.Button, gr.Button, str]:
    """The page's first step of a run: the request checked by `guard` (the run's own validator), refused with the
    guard's sentence, else admitted with Run disabled (one benchmark per page at a time), Stop enabled and the
    progress line STARTING_LINE (WAITING_LINE while another benchmark is queued or running, as this one will wait
    for it), so that the last run's line (done, stopped or failed) never reads as this one's.

    A refusal is an error notice rather than a validator's line under Models: the status updates of the page's other
    events (the Distill tab's timer ticks every two seconds) wipe that line within moments."""
    refusal = next((v["message"] for v in guard(*inputs) if not v["is_valid"] and v["message"]), "")
    if refusal:
        raise ValueError(refusal)
    admissions.add(session_id())
    # the guard refused a second benchmark of this session, so any benchmark in the queue is someone else's
    line = WAITING_LINE if benchmarks_in_queue() else STARTING_LINE
    return gr.Button(RUNNING_LABEL, interactive=False), gr.Button(interactive=True), line


def admitted_or(admissions: Admissions, guard, accepted):
    """The run's validator: a request the page's first step admitted goes through (`accepted(session)` noted);
    any other (gradio_client, raw HTTP) is checked by `guard`."""
    def validator(*inputs):
        session = session_id()
        if admissions.take(session):
            accepted(session)
            return [gr.validate(True, "") for _ in inputs]
        return guard(*inputs)
    return validator


def idle_buttons() -> tuple[gr.Button, gr.Button]:
    """Run enabled, Stop disabled: the benchmark ended, however it ended."""
    return gr.Button(RUN_LABEL, interactive=True), gr.Button(interactive=False)

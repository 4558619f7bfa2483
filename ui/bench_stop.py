"""Stop: each session's stop flag, which ends its own benchmark or cancels one waiting in the queue."""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

from ui.bench_admission import QUEUE_GROUP
from ui.sessions import pending_requests, session_id

CANCELLED_IN_QUEUE = "Cancelled your benchmark while it waited in the queue; nothing was measured."
STOP_WAIT_S = 20.0  # Stop waits this long for the run to end, so its answer is the run's own final line


class StopFlag(threading.Event):
    """A measurement's stop flag, with the final line the measurement ends with once it has ended."""

    def __init__(self):
        super().__init__()
        self.ended = threading.Event()
        self.final_line = ""

    def finish(self, line: str) -> None:
        self.final_line = line
        self.ended.set()


class StopFlags:
    """One stop flag per session (a browser tab, or one gradio_client Client): Stop ends the measurement of the
    session that asks, between two forward passes, and no one else's; a measurement still waiting in the queue is
    cancelled, and ends without measuring when its turn comes."""

    def __init__(self):
        self._flags: dict[str | None, threading.Event] = {}
        self._lock = threading.Lock()
        # when each session's waiting measurement was accepted into the queue, and when its Stop cancelled one: a
        # cancellation counts only for a measurement accepted before it (not for one sent after the Stop)
        self._accepted: dict[str | None, float] = {}
        self._cancelled: dict[str | None, float] = {}
        # sessions whose page shows a benchmark's rows: a later run stopped before its first row leaves them there
        self.showing: set[str | None] = set()
        # each session's last final line, until its next measurement is accepted: a Stop that arrives as the run
        # ends (its flag gone, its event not yet) answers with it rather than cancel a measurement that is not there
        self._final_lines: OrderedDict[str | None, str] = OrderedDict()

    def accept(self, session: str | None) -> None:
        """Note that a measurement of `session` was accepted into the queue now."""
        with self._lock:
            self._accepted[session] = time.monotonic()
            self._final_lines.pop(session, None)

    def start(self, session: str | None) -> StopFlag:
        """A fresh flag for a measurement of `session` that starts now; already raised when Stop cancelled it while
        it waited in the queue."""
        with self._lock:
            flag_ = self._flags[session] = StopFlag()
            self._final_lines.pop(session, None)
            cancelled, accepted = self._cancelled.pop(session, None), self._accepted.pop(session, float("inf"))
            if cancelled is not None and cancelled >= accepted:
                flag_.set()
            return flag_

    def stop(self, session: str | None) -> StopFlag | None:
        """Raise the flag of `session`'s measurement and return it; None when it has none running."""
        with self._lock:
            flag_ = self._flags.get(session)
            if flag_ is None or flag_.is_set():
                return None
            flag_.set()
            return flag_

    def stopping(self, session: str | None) -> StopFlag | None:
        """The flag of `session`'s measurement when Stop has already raised it (it ends after its forward pass)."""
        with self._lock:
            flag_ = self._flags.get(session)
            return flag_ if flag_ is not None and flag_.is_set() else None

    def cancel_waiting(self, session: str | None) -> None:
        """Cancel the measurement `session` has waiting in the queue: it will end without measuring."""
        with self._lock:
            self._cancelled[session] = time.monotonic()

    def end(self, session: str | None, flag_: StopFlag) -> None:
        """Forget the flag of a measurement that ended (unless a newer one of the session replaced it)."""
        with self._lock:
            if self._flags.get(session) is flag_:
                del self._flags[session]
                if flag_.final_line:
                    self._final_lines[session] = flag_.final_line
                    while len(self._final_lines) > 1024:  # sessions that left: forget the oldest
                        self._final_lines.popitem(last=False)

    def final_line(self, session: str | None) -> str:
        """The line `session`'s last measurement ended with, until its next one is accepted; "" when none."""
        with self._lock:
            return self._final_lines.get(session, "")


def stop_benchmark(stops: StopFlags, wait_s: float = STOP_WAIT_S) -> str:
    """Stop the caller's own measurement (the session's) between two forward passes, and answer with the line it
    ended with. Both this answer and the run's last message write the progress line, in either order: so both are
    the same final line, unless the run takes longer than `wait_s` to reach the end of its forward pass. A Stop that
    comes as the run has just ended answers with that run's final line, so it never overwrites it."""
    session = session_id()
    flag_ = stops.stop(session) or stops.stopping(session)  # pressed again: the same answer, never "cancelled"
    if flag_ is None:
        if stops.final_line(session):  # the run has just ended: the line it ended with stays on the page
            return stops.final_line(session)
        if session is not None and pending_requests(session, QUEUE_GROUP):
            stops.cancel_waiting(session)
            return CANCELLED_IN_QUEUE
        return "Nothing of yours is being measured."
    if flag_.ended.wait(wait_s) and flag_.final_line:
        return flag_.final_line
    return "Stopping after this forward pass; the results measured so far stay above and in the downloads."

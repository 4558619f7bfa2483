"""The limits a shared app keeps per visitor: a request refused, in a sentence the page shows, when its session
already has as many requests of its concurrency group waiting or running as the group allows (queue_guard, the
event's validator; VisitorLimit, for a page that asks first) or when the event's own check refuses its inputs."""
from __future__ import annotations

import threading
import time

import gradio as gr

from ui.errors import error_message
from ui.sessions import pending_requests, session_id


def busy_line(limit: int, one: str, many: str) -> str:
    """The sentence refusing a request of a visitor who already has `limit` of them waiting or running."""
    have = f"1 {one}" if limit == 1 else f"{limit} {many}"
    return (f"You already have {have} waiting or running, the most this app takes from one visitor at a time; wait "
            f"for {'it' if limit == 1 else 'one'} to finish.")


def queue_guard(group: str, limit: int, one: str, many: str, check=None, accepted=None, at: int = 0):
    """A Gradio validator (the `validator` of an event), run when a request arrives, before it is queued.

    It refuses the request when its session already has `limit` requests of `group` waiting or running (`one` and
    `many` name such a request, as in "benchmark", "benchmarks"), or when `check(*inputs)` raises ValueError (its
    sentence is the answer); `accepted(session)` is called for a request it lets through. The refusal is one
    gr.validate per input, the sentence on input `at` (default the first): gradio_client raises it as a
    ValidationError, the page shows it under that input, and the event's outputs keep what they showed."""
    def validator(*inputs):
        message = ""
        session = session_id()
        if session is not None and pending_requests(session, group) >= limit:
            message = busy_line(limit, one, many)
        elif check is not None:
            try:
                check(*inputs)
            except ValueError as error:
                message = error_message(error)
        if not message:
            if accepted is not None:
                accepted(session)
            return [gr.validate(True, "") for _ in inputs]
        at_input = at if 0 <= at < len(inputs) else 0
        return [gr.validate(i != at_input, message if i == at_input else "") for i in range(len(inputs))]
    return validator


ADMISSION_TTL_S = 5.0  # an admitted request follows its admission within moments; one the page dropped lapses


class VisitorLimit:
    """A concurrency group's places per visitor, with its refusal told on the page.

    Gradio's page shows a validator's refusal only under a text box among the event's inputs (nothing under a
    dropdown, a number, a radio or a file) and runs none of the event's .failure listeners after it, so a visitor at
    the limit saw a click do nothing. The page therefore asks first, in a step of its own (`admit`), which refuses
    with an error the page shows as a notice and the tab's status line; the event's `validator` lets each request so
    admitted through once, and answers any other (gradio_client, raw HTTP) as queue_guard does. An admission counts
    as a place until its request arrives, so two quick clicks cannot both pass the last place."""

    def __init__(self, group: str, limit: int, one: str, many: str, ttl_s: float = ADMISSION_TTL_S):
        self.group, self.limit, self.one, self.many, self.ttl_s = group, limit, one, many, ttl_s
        self._admitted: dict[str, list[float]] = {}  # session -> when each of its admissions was given
        self._lock = threading.Lock()

    def _current(self, session: str) -> list[float]:
        now = time.monotonic()
        when = [t for t in self._admitted.get(session, []) if now - t <= self.ttl_s]
        if when:
            self._admitted[session] = when
        else:
            self._admitted.pop(session, None)
        return when

    def admit(self, check=None):
        """The page's first step (inputs as the event's, no outputs): ValueError with the busy sentence when the
        session has `limit` requests waiting, running or admitted, or with `check(*inputs)`'s own; else the request
        is admitted."""
        def step(*inputs) -> None:
            if check is not None:
                check(*inputs)
            session = session_id()
            if session is None:
                return
            with self._lock:
                if pending_requests(session, self.group) + len(self._current(session)) >= self.limit:
                    raise ValueError(busy_line(self.limit, self.one, self.many))
                if len(self._admitted) > 1024:  # sessions that left admissions unused (a tab closed at once)
                    for other in list(self._admitted):
                        self._current(other)
                self._admitted.setdefault(session, []).append(time.monotonic())
        return step

    def validator(self, check=None, at: int = 0):
        """The event's validator: a request the page's `admit` let through passes (its admission used up); any
        other is answered by queue_guard(group, limit, one, many, check, at=at)."""
        guard = queue_guard(self.group, self.limit, self.one, self.many, check, at=at)

        def validate(*inputs):
            session = session_id()
            with self._lock:
                admitted = session is not None and bool(self._current(session))
                if admitted:
                    self._admitted[session].pop(0)
            return [gr.validate(True, "") for _ in inputs] if admitted else guard(*inputs)
        return validate

"""How a refusal reaches the person who asked: a ValueError's sentence as a gr.Error the page shows as typed
(user_error, user_errors), the status line that keeps an action's last error in view until the next success
(ErrorLines, failure_line), one notice of a sentence at a time (Notices), and the listener that clears an action's
results when it fails (cleared)."""
from __future__ import annotations

import html
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import gradio as gr

from ui.page_text import markdown_text, page_text
from ui.sessions import session_id


def user_error(message: str) -> gr.Error:
    """The gr.Error for a sentence meant for a person: the page renders a gr.Error's message as HTML, so it is
    escaped (a name such as '<b>x</b>' shows as typed, not bold)."""
    return gr.Error(page_text(message), print_exception=False)


def error_message(error: Exception) -> str:
    """The sentence of a ValueError or gr.Error as written (str() of a gr.Error is its repr, quotes and all)."""
    return html.unescape(error.message) if isinstance(error, gr.Error) else str(error)


def user_errors(fn):
    """Turn a ValueError raised by core code into a gr.Error the page shows as one sentence; a gr.Error (already a
    sentence for the page, and itself a ValueError) keeps its sentence."""
    import functools
    import inspect

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except ValueError as error:  # gr.Error too: its sentence, never its repr
                raise user_error(error_message(error)) from None
        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as error:
            raise user_error(error_message(error)) from None
    return wrapper


def cleared(results: list, boxes: int = 0):
    """A listener for an action's .failure() that puts its `results` components back as the page first showed them
    and hides its `boxes` download boxes (listed after them), so a failed action never leaves the previous input's
    results on the page, or offered for download, as the new input's."""
    def clear():
        updates = tuple(getattr(block, "value", None) for block in results) + tuple(
            gr.File(value=None, visible=False) for _ in range(boxes))
        return updates if len(updates) > 1 else updates[0]
    return clear


@dataclass
class ErrorLines:
    """The last error of each action, keyed by the action and its inputs, so the page can keep it in view.

    A handler that fails raises gr.Error (the toast, and the message API callers receive); the page then asks for
    the message with the same inputs and shows it in a status line until the next success.
    """
    limit: int = 64
    _lines: OrderedDict = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def kept(self, key: tuple) -> Iterator[None]:
        """Run a handler's body; a ValueError or gr.Error is recorded under `key` and raised as gr.Error."""
        try:
            yield
        except ValueError as error:  # gr.Error is a ValueError too
            message = error_message(error)
            with self._lock:
                self._lines[key] = message
                while len(self._lines) > self.limit:
                    self._lines.popitem(last=False)
            raise user_error(message) from None

    def take(self, key: tuple) -> str:
        with self._lock:
            return self._lines.pop(key, "")

    def wrap(self, action: str, fn, inputs: int):
        """fn (a handler bound to its context) with its errors kept under (action, its first `inputs` arguments):
        the event's inputs, without the gr.Progress Gradio passes after them. The signature stays fn's, so the API
        keeps its parameter names."""
        import functools

        @functools.wraps(fn)
        def kept_fn(*args, **kwargs):
            with self.kept(self.key(action, args[:inputs])):
                return fn(*args, **kwargs)
        return kept_fn

    @staticmethod
    def key(action: str, inputs) -> tuple:
        """The key of an action's inputs in the session handled now, as text: a NaN layer or an unhashable value
        still finds its line, and two visitors who fail with the same inputs each find their own."""
        return (session_id(), action, *map(repr, inputs))

    def failure(self, what: str, action: str):
        """The listener for an action's .failure(): given the same inputs, the status line of its error."""
        def line(*inputs) -> str:
            return failure_line(what, self.take(self.key(action, inputs)))
        return line


def failure_line(what: str, message: str) -> str:
    """The visible status line after a failed action: what failed and why (the message shown as written, never as
    HTML or Markdown); empty when there is no message."""
    return f"**{what} failed:** {markdown_text(message)}" if message else ""


NOTICE_S = 10.0  # how long the page shows an error's notice: gr.Error's own duration


@dataclass
class Notices:
    """The refusals each session was shown as a notice, and when. The page lists notices of one kind together, so a
    sentence refused again while its notice still shows (Delete pressed after a download, with no run chosen) read
    "Error (2)" and the same sentence twice: such a repeat is sent without a notice (gr.Error's visible=False). API
    callers still receive it, and the lines under the buttons still say it."""

    limit: int = 256
    _shown: OrderedDict = field(default_factory=OrderedDict)  # (session, sentence) -> time.monotonic() when shown
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def first(self, message: str) -> bool:
        """Whether `message` is to be shown to the session handled now: not when its notice still shows there."""
        session = session_id()
        if session is None:
            return True
        key, now = (session, message), time.monotonic()
        with self._lock:
            shown = self._shown.pop(key, None)
            if shown is not None and now - shown < NOTICE_S:
                self._shown[key] = shown  # the notice on the page is still that one's
                return False
            self._shown[key] = now
            while len(self._shown) > self.limit:
                self._shown.popitem(last=False)
        return True

    def once(self, fn):
        """fn, its refusals (ValueError, gr.Error) raised as gr.Error with a notice only when first (see first). The
        signature stays fn's, so the API keeps its parameter names."""
        import functools

        @functools.wraps(fn)
        def said_once(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except ValueError as error:  # gr.Error too
                message = error_message(error)
                raise gr.Error(page_text(message), visible=self.first(message), print_exception=False) from None
        return said_once

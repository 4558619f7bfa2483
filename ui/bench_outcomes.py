"""A refused or failed benchmark on the page: its sentence kept for the session, the results emptied."""
from __future__ import annotations

import functools
import inspect

import gradio as gr

from ui.bench_admission import BUSY_LINE
from ui.bench_estimate import cannot_run_line
from ui.bench_faults import no_reason
from ui.bench_run import BenchView
from ui.bench_stop import StopFlags
from ui.context import AppContext
from ui.errors import ErrorLines, failure_line
from ui.sessions import session_id


def kept_errors(errors: ErrorLines, fn):
    """The handler `fn` (a streaming one stays streaming) with the sentence it fails with kept under the asking
    session, for failed_view. The signature stays fn's: the API keeps its parameter names."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def streamed(*args, **kwargs):
            with errors.kept(("benchmark", session_id())):
                yield from fn(*args, **kwargs)
        return streamed

    @functools.wraps(fn)
    def kept(*args, **kwargs):
        with errors.kept(("benchmark", session_id())):
            return fn(*args, **kwargs)
    return kept


def failed_view(ctx: AppContext, errors: ErrorLines, stops: StopFlags, estimate: str | None = "") -> tuple:
    """The page's outputs after a refused or failed benchmark: the tables, charts, notes and downloads emptied, as
    they showed another request's results, and why on the progress line (kept until the next run), unless the page's
    estimate line (`estimate`, its Markdown) already says so: the sentence is on the page once, and in the notice.

    A second benchmark refused while the visitor's first runs changes nothing: the page shows that one's progress."""
    session = session_id()
    reason = errors.take(("benchmark", session)) or no_reason(ctx)
    if reason == BUSY_LINE:
        return tuple(gr.skip() for _ in BenchView.FIELDS)
    stops.showing.discard(session)  # a later run stopped before its first row has no earlier rows to point to
    # the page sends the estimate back as Gradio wrote it, cleandoc'd
    said = inspect.cleandoc(estimate or "") == inspect.cleandoc(cannot_run_line(reason))
    return BenchView(progress="" if said else failure_line("Benchmark", reason)).outputs()

"""Start run: the run queued from the form's settings, the notice that announces it, the line under Start, and a
refusal kept for the status line."""
from __future__ import annotations

import inspect
import secrets
from dataclasses import fields, replace
from functools import wraps

import gradio as gr

from core.formatting import format_seconds
from core.runs.store import list_runs, read_status, run_dir_of
from ui.components import given_name
from ui.context import AppContext
from ui.distill_runs import runs_table
from ui.distill_settings import (
    RunSettings,
    check_upload_readable,
    defaults_sentence,
    defaults_taken,
    in_form_words,
    settings_line,
)
from ui.errors import ErrorLines, error_message
from ui.page_text import markdown_text, page_text
from ui.sessions import session_id


def owner_token(owner: str | None) -> str:
    """The browser's id in this app, made on first use and kept in the browser's local storage."""
    return owner or secrets.token_hex(12)


def start_notice(run_id: str, position: int, busy: bool, seconds: float | None, settings: str,
                 defaults: str = "") -> str:
    """What Start run tells its owner: starting now, or its place in line (`position`, 1 for the next to start; 0: not
    waiting) when the runs ahead of it or a run in progress (`busy`: every place to run is taken) hold it back; then
    the time (`seconds`, the run's estimate) counts from its start. `settings`: settings_line of the run; `defaults`:
    defaults_sentence of the boxes left empty."""
    if position and (position > 1 or busy):
        before = "the run queued before it has" if position == 2 else f"the {position - 1} runs queued before it have"
        ahead = "the run in progress finishes" if position == 1 else f"{before} run"
        where = f"Run {run_id} is in line (place {position}): it starts when {ahead}."
        about = f" Once started, it should take about {format_seconds(seconds)}." if seconds else ""
    else:
        where = f"Run {run_id} is starting."
        about = f" It should take about {format_seconds(seconds)}." if seconds else ""
    return f"{where} {settings}.{' ' + defaults if defaults else ''}{about}"


def start_run(ctx: AppContext, owner: str | None, settings: RunSettings):
    """Queue a run; returns the owner id, the run list with the new run chosen, and the runs table."""
    owner_id = owner_token(owner)
    teacher = ctx.check_name(settings.teacher)
    line = ctx.offline_line(teacher)
    if line:
        raise ValueError(line)
    upload = settings.uploaded_corpus()
    try:  # the run's checks name its flags; the page names the form's fields
        cfg = settings.config(teacher)
        if upload:
            check_upload_readable(ctx, upload, teacher)
        ctx.launcher.start()
        run_id = ctx.launcher.submit(cfg, owner=owner_id, public=bool(settings.share), uploaded_corpus=upload,
                                     uploaded_name=given_name(upload) if upload else None, limits=ctx.run_limits(),
                                     session=session_id())
    except ValueError as error:
        raise ValueError(in_form_words(error_message(error))) from None
    runs = list_runs(ctx.launcher.root)
    busy = sum(r["state"] == "running" for r in runs) >= ctx.launcher.max_running
    # cfg as submitted: an upload's given name is in it (corpus_name); the toast shows HTML, a file name as typed
    gr.Info(page_text(start_notice(run_id, ctx.launcher.queue_position(run_id, runs), busy,
                                   read_status(run_dir_of(run_id, ctx.launcher.root)).get("estimated_s"),
                                   settings_line(cfg), defaults_sentence(defaults_taken(settings, cfg)))))
    table, ids = runs_table(ctx, owner_id, runs)  # the runs already read for the notice
    return owner_id, gr.Dropdown(choices=ids, value=run_id), table


def start_run_from_form(ctx: AppContext, owner: str | None = None, **form):
    """/start_run: `owner`, then the form's inputs by keyword (RunSettings' fields)."""
    return start_run(ctx, owner, RunSettings(**form))


# Gradio names /start_run's API parameters, and makes them optional for gradio_client callers, from the handler's
# signature: list RunSettings' fields there, each defaulting to None.
start_run_from_form.__signature__ = inspect.Signature(
    [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD),
     inspect.Parameter("owner", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    + [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None) for f in fields(RunSettings)])


def start_line(ctx: AppContext, run_id: str | None, **form) -> str:
    """The line under Start run once a run has started (the run chosen, `run_id`, and the form's inputs by keyword, as
    they were pressed): its settings and each box left empty with the value it took (defaults_taken), kept until the
    next Start where Start's notice fades in seconds. Empty when the form no longer reads as a run's settings."""
    settings = RunSettings(**form)
    try:
        cfg = settings.config(ctx.check_name(settings.teacher))
        upload = settings.uploaded_corpus()
    except ValueError:
        return ""
    if upload:  # named as the launcher records it (train.launcher.RunLauncher.submit)
        cfg = replace(cfg, corpus_name=given_name(upload))
    return markdown_text(f"Run {run_id}: {settings_line(cfg)}. {defaults_sentence(defaults_taken(settings, cfg))}"
                         .strip())


def keep_refusal(errors: ErrorLines, fn):
    """Start's handler `fn` with the sentence it is refused with kept under the asking session (session_id), for
    take_refusal to put on the status line once the toast has gone. The signature stays fn's: the API keeps its
    parameter names."""
    @wraps(fn)
    def kept(*args, **kwargs):
        with errors.kept(("start", session_id())):
            return fn(*args, **kwargs)
    return kept


def take_refusal(errors: ErrorLines) -> str:
    """The sentence this session's last Start was refused with (keep_refusal); "" when there is none."""
    return errors.take(("start", session_id()))

"""The Distill tab: configure a run, start it as a child process, watch its curves and what the student guesses,
stop and resume it, and download its metrics and student. The layout and its events are here; the handlers are in
the ui.distill_* modules, one job each."""
from __future__ import annotations

import inspect
from functools import partial, wraps

import gradio as gr

from ui.components import CheckedNumber, CheckedSlider
from ui.context import AppContext
from ui.distill_actions import (
    DELETE_HELP,
    ask_to_delete,
    ask_to_delete_unstarted,
    delete_run,
    delete_unstarted,
    keep_run,
    keep_unstarted,
    resume_run,
    share_run,
    stop_run,
)
from ui.distill_downloads import (
    export_controls,
    export_run,
    export_started,
    metrics_csv,
    publish_controls,
    publish_run,
    publish_token,
    refused_file,
    student_zip,
)
from ui.distill_form import (
    corpus_note_line,
    layers_typed,
    refresh_lists,
    settings_form,
    show_corpus_file,
    teacher_changed,
)
from ui.distill_guesses import GUESS_COLUMN_WIDTHS, GUESS_LABEL, GuessView, follow_guesses, guess_table, guesses_at
from ui.distill_plots import eval_figure, loss_figure
from ui.distill_runs import NO_RUN_CHOSEN, RUN_COLUMN_WIDTHS, RUNS_TABLE_PX, runs_table, student_label
from ui.distill_settings import UPLOAD, RunSettings, corpus_file_line, in_form_words
from ui.distill_start import keep_refusal, start_line, start_run_from_form, take_refusal
from ui.distill_status import open_run, show_run, stop_button, watch
from ui.errors import ErrorLines, Notices, user_errors

# the tab, and what its callers name through ui.distill_tab: the handlers the page's events call, the form's settings
# and checks, the runs table's student column and the sentence asking for a run
__all__ = ["NO_RUN_CHOSEN", "UPLOAD", "RunSettings", "build", "checked_owner", "corpus_file_line", "export_run",
           "handler", "in_form_words", "resume_run", "show_run", "student_label", "teacher_changed"]

MAX_OWNER_CHARS = 64  # the ids this app makes are 24 characters (owner_token)


def checked_owner(owner) -> str | None:
    """The browser's id as a handler may use it: None (a browser new to the app) or a short text; ValueError for
    anything else, which would otherwise be written into a run's status (an API caller can send any value)."""
    if owner is None or (isinstance(owner, str) and 0 < len(owner) <= MAX_OWNER_CHARS and owner.isprintable()):
        return owner
    raise ValueError(f"The owner must be the id this app gave your browser: a text of 1 to {MAX_OWNER_CHARS} "
                     "characters, or nothing for a new one.")


def handler(fn, ctx: AppContext):
    """fn with the context bound, its `owner` checked (checked_owner); user mistakes (ValueError) reach the page as
    one sentence."""
    bound = partial(fn, ctx)
    signature = inspect.signature(bound)  # once: the page's timer calls some handlers every second
    if "owner" not in signature.parameters:
        return user_errors(bound)

    @wraps(bound)
    def with_checked_owner(*args, **kwargs):
        given = signature.bind_partial(*args, **kwargs).arguments
        checked_owner(given.get("owner"))
        return bound(*args, **kwargs)

    return user_errors(with_checked_owner)


def build(ctx: AppContext) -> dict:
    """The tab's layout and events; returns its main components, "refresh": (function, outputs) for the app to run
    when the page loads and when the tab is opened, and "load": (function, inputs, outputs) for it to run when the
    page loads."""
    owner = gr.BrowserState(None, storage_key="rudistil-owner", secret=ctx.browser_key)
    gr.Markdown("Distil a smaller student from a teacher, live. The run is the same `python -m train.distill` command "
                "you can type in a terminal; it keeps going if you close the page, and stops cleanly when asked.")
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            corpus_note = gr.Markdown("", visible=False, render=False, label="corpus file check",
                                      show_label=False, elem_id="distill-corpus-note")
            # why the teacher chosen cannot be used, said as it is chosen; Start run's refusal is the one notice
            teacher_check = gr.Markdown("", visible=False, render=False, label="teacher check", show_label=False,
                                        elem_id="distill-teacher-note")
            form = settings_form(ctx, corpus_note, teacher_check)
            start = gr.Button("Start run", variant="primary", elem_id="distill-start")
            # what the last Start asked for, the values of boxes left empty included: its notice fades in seconds
            start_note = gr.Markdown("", label="start message", show_label=False, elem_id="distill-start-note")
        with gr.Column(scale=3, min_width=420):
            table, ids = runs_table(ctx, None)
            runs = gr.Dataframe(table, label="Runs", interactive=False, max_height=RUNS_TABLE_PX, wrap=True,
                                column_widths=RUN_COLUMN_WIDTHS, elem_id="distill-runs")
            # no run chosen until the page opens: which run is the visitor's is known only then (open_run)
            selected = gr.Dropdown(ids, value=None, label="Run shown below", allow_custom_value=True,
                                   elem_id="distill-run-shown",
                                   info="Pick a run to watch. The page opens on your run in training, else your "
                                        "newest; a new run is chosen as it starts.")
            status = gr.Markdown("No run selected.", label="run status", show_label=False, elem_id="run-status")
            with gr.Row():
                stop = gr.Button("Stop", variant="stop", elem_id="distill-stop", interactive=False)
                resume = gr.Button("Resume")
                more_steps = CheckedNumber(0, precision=0, label="Resume up to step", min_width=120,
                                       placeholder="0",
                                       info="0 keeps the run's own number of steps; more lays the learning-rate "
                                            "schedule over the new length (the rate goes back up).")
            share_selected = gr.Checkbox(False, label="Shared", info="Everyone may see this run and use its student.")
            # a row of their own, as wide as their words (the confirmation names the run): the confirmation and Keep
            # it side by side
            with gr.Row():
                delete = gr.Button("Delete", scale=0, elem_id="distill-delete")
                confirm_delete = gr.Button("Delete for good", variant="stop", visible=False, scale=0, min_width=400,
                                           elem_id="distill-delete-confirm")
                keep = gr.Button("Keep it", visible=False, scale=0, elem_id="distill-delete-keep")
            # each Start then Stop leaves a run with no step done: they go in one confirmed press, not one by one
            with gr.Row():
                clear = gr.Button("Delete runs stopped before step 1", scale=0, min_width=320,  # one line of words
                                  elem_id="distill-delete-unstarted")
                confirm_clear = gr.Button("Delete for good", variant="stop", visible=False, scale=0, min_width=400,
                                          elem_id="distill-delete-unstarted-confirm")
                keep_all = gr.Button("Keep them", visible=False, scale=0, elem_id="distill-delete-unstarted-keep")
            unstarted = gr.State(None)  # the runs the confirmation counted
            losses_plot = gr.Plot(loss_figure([], run_chosen=False), label="Losses", elem_id="distill-losses")
            eval_plot = gr.Plot(eval_figure([], run_chosen=False), label="Agreement and accuracy",
                                elem_id="distill-eval")
            with gr.Accordion("What did the student learn? Its guesses on probe sentences", open=True):
                gr.Markdown("The teacher's and the student's three best words for each [MASK], at each evaluation "
                            "(step 0 is the student before training); ✓ before the student's guesses where its first "
                            "is the teacher's.")
                guess_step = CheckedSlider(0, 1, value=0, step=1, interactive=False, label=GUESS_LABEL,
                                       elem_id="distill-guess-step")
                guesses = gr.Dataframe(guess_table([]), interactive=False, wrap=True, max_height=1200,  # all 8 rows
                                       column_widths=GUESS_COLUMN_WIDTHS, label="guesses at the chosen step",
                                       show_label=False, elem_id="distill-guesses")
            guess_view = gr.State(GuessView())
            notice = gr.State("")  # the status line while no run is chosen: what the last Delete did
            with gr.Row():
                get_metrics = gr.Button("Download metrics (CSV)", elem_id="distill-metrics-csv")
                get_student = gr.Button("Download student (zip)", elem_id="distill-student-zip")
            # a download's refusal stays under the buttons pressed; each file has a box of its own, so fetching the
            # student leaves the metrics fetched before it in view
            downloaded = gr.Markdown("", label="download message", show_label=False, elem_id="distill-downloaded")
            with gr.Row():
                metrics_file = gr.File(label="Metrics (CSV)", interactive=False, elem_id="distill-metrics-file")
                student_file = gr.File(label="Student (zip)", interactive=False, elem_id="distill-student-file")
            exporting = export_controls()
            # a shared app's token would publish for every visitor, to any repository it may write to
            publishing = publish_controls() if publish_token() and not ctx.launcher.shared else None
            with gr.Accordion("Console output", open=False):
                console = gr.Code(label="console.log (last lines)", language=None, lines=12)
    timer = gr.Timer(2.0)

    form["corpus_source"].change(show_corpus_file, form["corpus_source"], [form["corpus_file"], corpus_note],
                                 api_visibility="private")
    # a file that is not text is told as it arrives, not only once Start run is pressed
    # the share of unknown tokens depends on the teacher: the line is said again when the teacher changes
    for changed in (form["corpus_file"], form["teacher"]):
        changed.change(partial(corpus_note_line, ctx), [form["corpus_file"], form["teacher"]], corpus_note,
                       api_visibility="private", show_progress="hidden")
    form["teacher"].change(handler(teacher_changed, ctx), form["teacher"], [form["student_layers"], teacher_check],
                           api_visibility="private", show_progress="hidden")
    # outside the queue: the line answers each key at once, never behind a run's start or the timer's redraws
    form["student_layers"].input(handler(layers_typed, ctx), [form["teacher"], form["student_layers"]],
                                 form["student_layers"], api_visibility="private", show_progress="hidden",
                                 queue=False)
    watch_outputs = [runs, selected, status, losses_plot, eval_plot, console, share_selected]
    # A refused Start leaves its sentence first on the status line, which the timer redraws, until Start next
    # succeeds: its toast fades in seconds, and a person who looked away would not know why nothing happened.
    refused = gr.State("")
    start_errors = ErrorLines()
    notices = Notices()  # every action's refusal: one notice of a sentence at a time
    started = start.click(notices.once(keep_refusal(start_errors, handler(start_run_from_form, ctx))), [owner],
                          [owner, selected, runs], inputs_kwargs=form, api_name="start_run", concurrency_limit=1)
    started.success(lambda: "", None, refused, api_visibility="private", queue=False)
    started.failure(partial(take_refusal, start_errors), None, refused, api_visibility="private", queue=False).then(
        handler(watch, ctx), [selected, owner, notice, refused], [*watch_outputs, stop], show_progress="hidden",
        api_visibility="private")
    # the line under Start: the run now chosen, and the form as it was pressed; a refusal is the status line's
    started.success(handler(start_line, ctx), [selected], start_note, inputs_kwargs=form, api_visibility="private",
                    show_progress="hidden")
    started.failure(lambda: "", None, start_note, api_visibility="private", queue=False)
    guess_io = dict(inputs=[selected, owner, guess_step, guess_view], outputs=[guesses, guess_step, guess_view],
                    show_progress="hidden")
    refresh_guesses = dict(fn=handler(follow_guesses, ctx), api_visibility="private", **guess_io)
    timer.tick(handler(watch, ctx), [selected, owner, notice, refused], [*watch_outputs, stop],
               show_progress="hidden", api_visibility="private").then(**refresh_guesses)
    follow_stop = dict(fn=handler(stop_button, ctx), inputs=[selected, owner], outputs=stop, api_visibility="private")
    selected.change(handler(show_run, ctx), [selected, owner, notice, refused], watch_outputs,
                    api_name="run_status").then(**follow_stop).then(**refresh_guesses)
    guess_step.release(notices.once(handler(guesses_at, ctx)), api_name="run_guesses", **guess_io)
    # the progress and a refusal on the line under the buttons, never on the file box, which stays empty and labelled
    fetches = ErrorLines()
    for button, fn, api_name, box in ((get_metrics, metrics_csv, "run_metrics_csv", metrics_file),
                                      (get_student, student_zip, "run_student_zip", student_file)):
        fetched = button.click(notices.once(fetches.wrap(api_name, handler(fn, ctx), 2)), [selected, owner], box,
                               api_name=api_name, show_progress_on=downloaded)
        fetched.success(lambda: "", None, downloaded, api_visibility="private", queue=False)
        fetched.failure(refused_file(fetches, button.value, api_name), [selected, owner], [downloaded, box],
                        api_visibility="private", show_progress="hidden")
    stop.click(notices.once(handler(stop_run, ctx)), [selected, owner], watch_outputs,
               api_name="stop_run").then(**follow_stop)
    resume.click(notices.once(handler(resume_run, ctx)), [selected, owner, more_steps], watch_outputs,
                 api_name="resume_run").then(**follow_stop)
    # Delete asks first; the API's /delete_run is the confirming press, so a client deletes in one call as before
    deleting = [delete, confirm_delete, keep]
    # through the queue: the page shows no error of an event sent outside it, and a run still training is refused
    delete.click(notices.once(handler(ask_to_delete, ctx)), [selected, owner], deleting, api_visibility="private",
                 show_progress="hidden")
    keep.click(keep_run, None, deleting, api_visibility="private", queue=False)
    selected.change(keep_run, None, deleting, api_visibility="private", queue=False)
    deleted = confirm_delete.click(notices.once(handler(delete_run, ctx)), [selected, owner], [*watch_outputs, notice],
                                   api_name="delete_run", api_description=DELETE_HELP)
    deleted.then(**follow_stop)
    for ended in (deleted.then, deleted.failure):  # the page runs .then after a success only
        ended(keep_run, None, deleting, api_visibility="private", queue=False)
    clearing = [clear, confirm_clear, keep_all]
    clear.click(handler(ask_to_delete_unstarted, ctx), [owner], [*clearing, unstarted], api_visibility="private",
                show_progress="hidden")
    keep_all.click(keep_unstarted, None, clearing, api_visibility="private", queue=False)
    emptied = confirm_clear.click(notices.once(handler(delete_unstarted, ctx)), [selected, owner, unstarted],
                                  [*watch_outputs, notice], api_name="delete_unstarted_runs",
                                  api_description="Delete every run of yours stopped before its first step.")
    emptied.then(**follow_stop)
    for ended in (emptied.then, emptied.failure):
        ended(keep_unstarted, None, clearing, api_visibility="private", queue=False)
    share_selected.input(notices.once(handler(share_run, ctx)), [selected, owner, share_selected], status,
                         api_name="share_run")
    # An export takes a while: the line under its button says what is being done and carries the progress, which
    # would otherwise show on the file box above, away from where the person pressed; a failure stays there too.
    errors = ErrorLines()  # the failure stays in view under the button: the work can outlast its toast
    export_inputs = [selected, owner, exporting["format"], exporting["int8"]]
    exported = exporting["button"].click(export_started, export_inputs[:1] + export_inputs[2:], exporting["result"],
                                         api_visibility="private", queue=False, show_progress="hidden").then(
        notices.once(errors.wrap("export", handler(export_run, ctx), len(export_inputs))), export_inputs,
        [exporting["result"], exporting["file"]], api_name="export_run", concurrency_limit=1,
        show_progress_on=exporting["result"])
    exported.failure(refused_file(errors, "Export", "export"), export_inputs,
                     [exporting["result"], exporting["file"]], api_visibility="private", show_progress="hidden")
    if publishing is not None:
        publish_inputs = [selected, owner, publishing["repo_id"], publishing["private"]]
        published = publishing["button"].click(
            notices.once(errors.wrap("publish", handler(publish_run, ctx), len(publish_inputs))), publish_inputs,
            publishing["result"], api_name="publish_run", concurrency_limit=1)
        published.failure(errors.failure("Publishing", "publish"), publish_inputs, publishing["result"],
                          api_visibility="private", show_progress="hidden")
    # what the downloads, the export and the publishing said and made was about the run chosen before: another run
    # chosen takes their lines and files away, the boxes left empty and labelled
    earlier = [downloaded, metrics_file, student_file, exporting["result"], exporting["file"]]
    if publishing is not None:
        earlier.append(publishing["result"])
    emptied_earlier = tuple(None if isinstance(block, gr.File) else "" for block in earlier)
    selected.change(lambda: emptied_earlier, None, earlier, api_visibility="private", queue=False)
    # "load": the page opens on its visitor's run (the browser's id is read from its storage before load events
    # run), which the choice's change event then draws
    return {"start": start, "selected": selected, "status": status, "teacher": form["teacher"],
            "refresh": (handler(refresh_lists, ctx), [form["teacher"]]),
            "load": (handler(open_run, ctx), [owner], [selected, guesses, guess_step, guess_view])}

"""The chosen run as the Distill tab shows it, as a page opens and at each tick of its timer: the runs table, the
run's progress line, curves and console, and whether Stop applies."""
from __future__ import annotations

import gradio as gr

from core.runs.store import ACTIVE_STATES, list_runs, read_console, read_metrics, run_dir_of
from train.launcher import can_see
from ui.context import AppContext
from ui.distill_guesses import follow_guesses
from ui.distill_plots import bar_step, eval_figure, loss_figure, progress_line
from ui.distill_runs import run_to_open, runs_table
from ui.distill_settings import DEFAULTS, in_form_words
from ui.lesson import SETTINGS as LESSON
from ui.page_text import markdown_text

NO_RUNS = "No runs yet: set up a run and press Start run."  # the status line when this owner can see no run
# the held-out figures of the evaluation plot that the untrained student (step 0, "run:<id>@init") sets a start for
START_FIGURES = (("eval_agreement", "agreement"), ("eval_mlm_acc", "accuracy"))


def below_start(records: list[dict]) -> tuple[int, list[tuple[str, float, float]]] | None:
    """The newest evaluation's held-out figures that are below the untrained student's (step 0's metrics row), as
    (its step, [(name, newest share, step-0 share), ...] in START_FIGURES' order, shares in 0..1); None when none is
    below, or the run has no step-0 row or no evaluation after it."""
    evaluated = [r for r in records if "eval_mlm_acc" in r]
    start = next((r for r in evaluated if r["step"] == 0), None)
    newest = max(evaluated, key=lambda r: r["step"], default=None)
    if start is None or newest is None or newest["step"] == 0:
        return None
    below = [(name, newest[key], start[key]) for key, name in START_FIGURES
             if isinstance(newest.get(key), (int, float)) and isinstance(start.get(key), (int, float))
             and newest[key] < start[key]]
    return (newest["step"], below) if below else None


def below_start_line(info: dict, records: list[dict]) -> str:
    """Why a run's newest evaluation is below its untrained student's, and what to do, in one sentence; "" when it is
    not (below_start), and for a student with its own vocabulary, which does not start as a copy of the teacher.
    The remedy is the About tab's lesson's run: the form's default steps with its KL setting, whose held-out
    figures on the bundled pair pass step 0's from its first evaluations on."""
    found = None if info.get("student_vocab_size") else below_start(records)
    if found is None:
        return ""
    step, below = found
    figures = ", ".join(f"{name} {new:.1%} against {old:.1%}" for name, new, old in below) + " at step 0"
    steps = DEFAULTS.max_steps
    masked = ", KL at masked positions only," if LESSON.kl_masked_only else ""
    ends = "" if info.get("state") in ACTIVE_STATES or (info.get("max_steps") or 0) >= steps else \
        f", so **Resume** up to step {steps:,} or more"
    return (f"At step {step:,} the student is below its untrained start ({figures}): a student copied from teacher "
            "layers starts close to the teacher, and the first steps move it away before the losses pull it back; "
            f"the About tab's lesson runs {steps:,} steps{masked} and passes it{ends}.")


def refusal_line(refused: str | None) -> str:
    """The status line's first line while Start's last press was refused: its sentence, shown as written."""
    return f"**Start run refused:** {markdown_text(refused)}  \n" if refused else ""


def show_run(ctx: AppContext, run_id: str | None, owner: str | None, notice: str | None = None,
             refused: str | None = None, choose: bool = False, follow: bool = False):
    """The runs table, the run list, and the chosen run's progress line, curves, console and sharing. No run chosen,
    or one no longer among those this owner can see (deleted): the list's choice is cleared, so that nothing keeps
    asking for it, and the line is `notice` (what the last action did, such as "Deleted run ...") or says so, and
    says there are no runs when this owner can see none. `refused`: the sentence Start was last refused with, put
    first on the line (refusal_line); `choose`: the list is set to `run_id` (a run the handler chose, such as the
    one shown after Delete); `follow`: a chosen run that is gone gives way to the newest run left, chosen in the
    list, as Delete shows it (the timer's redraw, watch)."""
    infos = list_runs(ctx.launcher.root)  # read once: the table, the chosen run and the queue use it
    table, ids = runs_table(ctx, owner, infos)
    if follow and run_id and run_id not in ids and ids:
        run_id, choose = ids[0], True
    if not run_id or run_id not in ids:
        # only a choice that is gone is cleared: a tick begun before Start must not undo the choice of the new run
        dropdown = gr.Dropdown(choices=ids, value=None) if run_id or choose else gr.Dropdown(choices=ids)
        if ids:
            line = notice or "No run selected."
        else:
            line = f"{notice} {NO_RUNS}" if notice else NO_RUNS
        return table, dropdown, refusal_line(refused) + line, loss_figure([], run_chosen=False), \
            eval_figure([], run_chosen=False), "", False
    run_dir = run_dir_of(run_id, ctx.launcher.root)
    info, records = next(i for i in infos if i["id"] == run_id), read_metrics(run_dir)
    if info.get("message"):  # the run's own words name flags; the page names the form's fields
        info = {**info, "message": in_form_words(info["message"])}
    console = read_console(run_dir)
    line = progress_line(info, records, ctx.launcher.queue_position(run_id, infos), console)
    if below := below_start_line(info, records):  # said under the figures that show it, as they are drawn
        line += f"  \n{below}"
    ahead = bar_step(info, console)  # the table says the step the line says, not the status's older one
    if ahead and ahead > (info.get("step") or 0):
        table, _ = runs_table(ctx, owner, [{**i, "step": ahead} if i["id"] == run_id else i for i in infos])
    dropdown = gr.Dropdown(choices=ids, value=run_id) if choose else gr.Dropdown(choices=ids)
    return (table, dropdown, refusal_line(refused) + line, loss_figure(records), eval_figure(records), console,
            info["public"])


def open_run(ctx: AppContext, owner: str | None):
    """The run list as a page opens, on the run that matters to its visitor (run_to_open), and that run's guesses at
    its newest evaluated step (follow_guesses' outputs). Choosing the run fills the progress line, the curves and the
    console, as a person's choice does. The guesses come in the same update as the choice: a refresh of them begun
    later then reads the slider on the run's newest step, never the empty slider of before, which it would take for
    a step the person moved back to."""
    infos = list_runs(ctx.launcher.root)
    _, ids = runs_table(ctx, owner, infos)
    run_id = run_to_open(ctx, owner, infos)
    return gr.Dropdown(choices=ids, value=run_id), *follow_guesses(ctx, run_id, owner)


def stop_button(ctx: AppContext, run_id: str | None, owner: str | None) -> gr.Button:
    """Stop is active only while the chosen run is queued or running."""
    infos = [i for i in list_runs(ctx.launcher.root) if i["id"] == run_id and can_see(i, owner, ctx.launcher.shared)]
    return gr.Button(interactive=bool(infos) and infos[0]["state"] in ACTIVE_STATES)


def watch(ctx: AppContext, run_id: str | None, owner: str | None, notice: str | None = None,
          refused: str | None = None):
    """The timer's refresh: show_run's outputs and the Stop button's state. A chosen run that is gone (deleted here or
    on another page) gives way to the newest run left, chosen in the list, as Delete shows it: a redraw begun before a
    Delete ended would otherwise clear the run Delete chose."""
    return *show_run(ctx, run_id, owner, notice, refused, follow=True), stop_button(ctx, run_id, owner)

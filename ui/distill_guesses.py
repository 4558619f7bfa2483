"""What did the student learn? The probe sentences with the teacher's and the student's top guesses at each
evaluation of the chosen run."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from core.runs.guesses import COLUMNS as GUESS_COLUMNS
from core.runs.guesses import SAME_MARK, read_guesses
from ui.context import AppContext
from ui.distill_runs import visible_run_dir
from ui.input_checks import real_number
from ui.tables import column_widths

GUESS_LABEL = "Student's guesses at"
# the guesses table's headers as shown (core.runs.guesses.COLUMNS, shortened; the mark of a first guess shared with
# the teacher leads the student's guesses) and each column's longest unbreakable word (ui.tables): the probes' longest
# word and expected answer, and a guess with its share ("преподаватель 2%"). Four columns fit a 1024-pixel window.
GUESS_COLUMN_CHARS = {"sentence": 11, "expected": 10, "teacher's top 3": 16, "student's top 3": 16}
GUESS_HEADERS = list(GUESS_COLUMN_CHARS)
GUESS_COLUMN_WIDTHS = column_widths(GUESS_COLUMN_CHARS)


@dataclass
class GuessView:
    """What the guesses table last showed: the run, and the newest evaluated step it offered. A slider left on that
    newest step follows the run to its next evaluation; one moved back stays where it was put."""
    run_id: str | None = None
    newest: int | None = None


def run_guesses(ctx: AppContext, run_id: str | None, owner: str | None, step: float | None = None,
                view: GuessView | None = None, exact: bool = False):
    """The probe sentences with the teacher's and the student's top-3 guesses at the evaluated step nearest at or
    before `step` (None: the newest), a mark where their first guesses agree; the slider over the evaluated steps;
    the new GuessView. An empty table while nothing is evaluated or no run is chosen.

    exact: `step` is what was asked for (the slider released there, an API call); otherwise it is the slider's
    value as the page last drew it, and the newest step is shown when the slider was left on the newest step or
    belonged to another run (GuessView)."""
    empty = guess_table([])
    # the slider's bounds are the run's evaluated steps: any number is answered with the nearest of them
    step = None if step is None else real_number(step, "The step")
    if not run_id:
        return empty, gr.Slider(interactive=False, label=GUESS_LABEL), GuessView()
    history = read_guesses(visible_run_dir(ctx, run_id, owner))
    steps = history.steps
    if not steps:
        return empty, gr.Slider(0, 1, value=0, interactive=False, label=GUESS_LABEL), GuessView(run_id)
    view = view or GuessView()
    follow = step is None or (not exact and (view.run_id != run_id or view.newest is None or step >= view.newest))
    shown = steps[-1] if follow else history.nearest_step(step)
    slider = gr.Slider(steps[0], max(steps[-1], steps[0] + 1), value=shown, step=1, interactive=len(steps) > 1,
                       label=f"{GUESS_LABEL}: step {shown} (evaluated: {', '.join(map(str, steps))})")
    return guess_table(history.rows(shown)), slider, GuessView(run_id, steps[-1])


def guess_table(rows: list[dict]) -> pd.DataFrame:
    """GuessHistory.rows as the page shows them, under GUESS_HEADERS: the student's guesses led by SAME_MARK where
    its first guess is the teacher's."""
    sentence, expected, teacher, student, same = GUESS_COLUMNS
    return pd.DataFrame([[row[sentence], row[expected], row[teacher],
                          f"{SAME_MARK} {row[student]}" if row[same] else row[student]] for row in rows],
                        columns=GUESS_HEADERS)


def guesses_at(ctx: AppContext, run_id: str | None, owner: str | None, step: float | None = None,
               view: GuessView | None = None):
    """/run_guesses: the guesses at the evaluated step nearest at or before `step` (0: the untrained student; None:
    the newest); see run_guesses."""
    return run_guesses(ctx, run_id, owner, step, view, exact=True)


def follow_guesses(ctx: AppContext, run_id: str | None, owner: str | None, step: float | None = None,
                   view: GuessView | None = None):
    """The refresh of the guesses after each tick of the timer and each change of the chosen run: run_guesses, and
    for a run no longer among those this owner can see (deleted a moment ago, say) an empty table, not an error
    every two seconds."""
    try:
        visible_run_dir(ctx, run_id, owner)
    except ValueError:
        run_id = None
    return run_guesses(ctx, run_id, owner, step, view)

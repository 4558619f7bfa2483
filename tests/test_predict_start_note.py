"""The Predictions status line after a probe summary where a run's student scores below its untrained start."""
from __future__ import annotations

import pandas as pd
import pytest

from core.compare import predict

COLUMNS = predict.summary_columns(5)


def summary(*rows: tuple[str, str, str]) -> pd.DataFrame:
    """The summary table as the page sends it: (model, top-1 accuracy, agreement with model 1) a row, as shown."""
    return pd.DataFrame([{"model": model, "top-1 accuracy": accuracy, "hits / scored": "1 / 2",
                          "split (left out)": "0", "top-1 agreement with model 1": agreement,
                          "top-5 overlap": "", "mean KL (nats)": ""} for model, accuracy, agreement in rows],
                        columns=COLUMNS)


def test_a_run_below_its_untrained_start_is_explained():
    from ui.predict_notes import start_note

    note = start_note(summary(("bundled-teacher", "31.6%", ""), ("run:20261203-183146-57b3@init", "21.1%", "45.8%"),
                              ("run:20261203-183146-57b3 (checkpoint step 40)", "15.3%", "36.3%")))
    assert note.startswith("run:20261203-183146-57b3 scores below its untrained start "
                           "run:20261203-183146-57b3@init (accuracy 15.3% against 21.1%, agreement with model 1 "
                           "36.3% against 45.8%): a student copied from teacher layers starts close to the teacher")
    assert "resume this run for more steps in the Distill tab." in note


@pytest.mark.parametrize("rows", [
    # above its start: nothing to explain
    (("bundled-teacher", "31.6%", ""), ("run:a@init", "21.1%", "45.8%"), ("run:a", "25.0%", "60.0%")),
    # the untrained start not in the summary
    (("bundled-teacher", "31.6%", ""), ("bundled-student", "30.0%", "70.0%"), ("run:a", "15.3%", "36.3%")),
    # a run's student as model 1: no agreement figures, its accuracy above its start
    (("run:a", "25.0%", ""), ("run:a@init", "21.1%", "45.8%")),
])
def test_nothing_is_said_unless_a_run_scores_below_its_own_start(rows):
    from ui.predict_notes import start_note

    assert start_note(summary(*rows)) == ""


def test_an_empty_or_missing_table_says_nothing():
    from ui.predict_notes import start_note

    assert start_note(None) == "" and start_note(pd.DataFrame()) == "" and start_note(summary()) == ""


def test_the_status_line_after_a_probe_summary_reads_its_table(tiny_teacher_dir, tiny_student_dir, runs_dir):
    import gradio as gr

    from ui import predict_tab
    from ui.context import AppContext
    from ui.predict_notes import start_note

    with gr.Blocks() as demo:
        parts = predict_tab.build(AppContext(str(tiny_teacher_dir), str(tiny_student_dir)))
    noted = [fn for fn in demo.fns.values() if fn.fn is start_note]
    assert len(noted) == 1
    assert [block._id for block in noted[0].inputs] == [parts["summary"]._id]
    assert [block._id for block in noted[0].outputs] == [parts["status"]._id]

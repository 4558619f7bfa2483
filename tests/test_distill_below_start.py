"""A short run whose newest evaluation is below its untrained student's (step 0, "run:<id>@init") is told why on the
Distill tab's status line, and what the About tab's lesson does instead; a run above its start is told nothing."""
import json
import os

import pytest

from core.runs.store import RunPaths, write_status
from train.config import DistillConfig
from ui import distill_status

LESSON_STEPS = DistillConfig().max_steps  # the lesson keeps the form's defaults
WHY = "a student copied from teacher layers starts close to the teacher"


def evaluated_run(root, figures: dict[int, tuple[float, float]], state="finished", max_steps=60, **config):
    """A run folder whose metrics hold held-out evaluations: step -> (top-1 agreement, student accuracy)."""
    paths = RunPaths(root / "20250101-120000-abcd")
    paths.root.mkdir()
    # a running run's process is alive: this one stands in for it
    write_status(paths.root, state=state, step=max(figures), max_steps=max_steps, pid=os.getpid())
    paths.config.write_text(json.dumps({"teacher": "bundled-teacher", "max_steps": max_steps, **config}))
    rows = [{"step": step, **({"loss": 5.0, "steps_per_s": 1.0, "tokens_per_s": 900.0} if step else {}),
             "eval_agreement": agreement, "eval_mlm_acc": accuracy, "eval_teacher_mlm_acc": 0.37}
            for step, (agreement, accuracy) in figures.items()]
    paths.metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return paths.root.name


def status_line(ctx, run_id) -> str:
    return distill_status.show_run(ctx, run_id, None)[2]


def test_a_finished_run_below_its_start_is_told_why_and_how_many_steps_the_lesson_runs(ctx):
    run_id = evaluated_run(ctx.launcher.root, {0: (0.50, 0.34), 30: (0.52, 0.33), 60: (0.49, 0.35)})
    line = status_line(ctx, run_id)
    assert "At step 60 the student is below its untrained start (agreement 49.0% against 50.0% at step 0):" in line
    assert "accuracy" not in line.split("below its untrained start")[1].split(")")[0]  # 35% is above 34%
    assert WHY in line and "the first steps move it away before the losses pull it back" in line
    assert f"the About tab's lesson runs {LESSON_STEPS:,} steps, KL at masked positions only, and passes it, so " \
           f"**Resume** up to step {LESSON_STEPS:,} or more." in line


def test_both_figures_below_the_start_are_named(ctx):
    run_id = evaluated_run(ctx.launcher.root, {0: (0.50, 0.34), 60: (0.49, 0.33)})
    assert "(agreement 49.0% against 50.0%, accuracy 33.0% against 34.0% at step 0)" in status_line(ctx, run_id)


@pytest.mark.parametrize("state", ["running", "queued"])
def test_a_run_still_training_below_its_start_is_told_why_but_not_to_resume(ctx, state):
    run_id = evaluated_run(ctx.launcher.root, {0: (0.50, 0.34), 20: (0.48, 0.33)}, state=state)
    line = status_line(ctx, run_id)
    assert WHY in line and "Resume" not in line


@pytest.mark.parametrize("figures, config", [
    ({0: (0.50, 0.34), 20: (0.45, 0.30), 60: (0.52, 0.36)}, {}),  # dipped, and has passed its start again
    ({0: (0.50, 0.34)}, {}),  # only the untrained student evaluated
    ({20: (0.45, 0.30), 60: (0.44, 0.29)}, {}),  # no step-0 row to compare with
    ({0: (0.02, 0.01), 60: (0.01, 0.005)}, {"student_vocab_size": 2000}),  # its own vocabulary: no copy of the teacher
])
def test_no_reason_is_given_where_the_student_is_not_below_a_start_copied_from_the_teacher(ctx, figures, config):
    run_id = evaluated_run(ctx.launcher.root, figures, **config)
    assert WHY not in status_line(ctx, run_id)

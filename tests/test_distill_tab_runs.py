"""The Distill tab's run management as a person meets it: Delete shows the newest run left, a run stopped before its
first checkpoint is not told to wait for one, a queued resume shows the steps it was queued with, every student cell
gives a number of layers, the plots' axes have titles with units, and a refused Start stays on the status line."""
import json
import os

import pytest
from transformers import AutoConfig

from core.models import zoo
from core.runs.store import RunPaths, write_status
from tests.test_distill_tab import made_run
from train.config import DistillConfig
from train.launcher import RunLauncher
from ui import distill_tab
from ui.context import AppContext
from ui.distill_plots import eval_figure, loss_figure

pytestmark = pytest.mark.unit




def shared_ctx(runs_dir) -> AppContext:
    return AppContext("bundled-teacher", "bundled-student", on_space=True, launcher=RunLauncher(runs_dir, shared=True))


# -- Delete

def test_delete_shows_the_newest_run_left_that_the_person_can_see(runs_dir):
    older = made_run(runs_dir, "20250101-120000-aaaa", 1.0, "stopped", owner="alice")
    bobs_shared = made_run(runs_dir, "20250101-120001-bbbb", 2.0, "stopped", owner="bob", public=True)
    made_run(runs_dir, "20250101-120002-cccc", 3.0, "stopped", owner="bob")  # newer, but alice cannot see it
    newest = made_run(runs_dir, "20250101-120003-dddd", 4.0, "stopped", owner="alice")
    space = shared_ctx(runs_dir)
    table, dropdown, status, *_, notice = distill_tab.delete_run(space, newest, "alice")
    assert dropdown.value == bobs_shared and table["run"].tolist() == [bobs_shared, older]
    assert status.startswith(f"Deleted run {newest}.  \n**{bobs_shared}** · stopped · step 1 of 10")
    assert notice == f"Deleted run {newest}."
    private = AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(runs_dir))
    assert distill_tab.delete_run(private, bobs_shared, None)[1].value == "20250101-120002-cccc"  # every run seen


def test_deleting_the_last_run_says_there_are_no_runs(ctx):
    run_id = ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=10))
    ctx.launcher.stop(run_id)
    table, dropdown, status, *_, notice = distill_tab.delete_run(ctx, run_id, None)
    assert dropdown.value is None and table.empty and dropdown.choices == []
    assert status == f"Deleted run {run_id}. {distill_tab.NO_RUNS}" and notice == f"Deleted run {run_id}."
    assert distill_tab.watch(ctx, None, None, notice)[2] == status  # the timer keeps the line
    assert distill_tab.show_run(ctx, None, None)[2] == distill_tab.NO_RUNS  # a page opened later


def test_runs_left_but_none_chosen_still_read_no_run_selected(ctx):
    ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=10))
    assert distill_tab.show_run(ctx, None, None)[2] == "No run selected."


@pytest.mark.app
def test_through_the_api_delete_chooses_the_newest_run_left(ctx):
    import gradio as gr
    from gradio_client import Client

    kept = made_run(ctx.launcher.root, "20250101-120000-keep", 1.0, "stopped")
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    demo.queue().launch(prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        owner, dropdown, _ = client.predict(owner=None, teacher="bundled-teacher", steps=10, api_name="/start_run")
        run_id = dropdown["value"]
        client.predict(run_id=run_id, owner=owner, api_name="/stop_run")
        outputs = client.predict(run_id=run_id, owner=owner, api_name="/delete_run")
        assert outputs[1]["value"] == kept and kept in outputs[2] and run_id not in str(outputs[0])
    finally:
        demo.close()


# -- a run stopped before its first checkpoint

def run_without_checkpoint(root, state: str, started: bool = True, run_id: str = "20250101-120000-none") -> str:
    """A run with no final/ and no checkpoint in `state`; `started`: it wrote its config.json (a run taken out of
    the queue never did). A running run's process is this one."""
    paths = RunPaths(root / run_id)
    paths.root.mkdir()
    write_status(paths.root, state=state, step=0, max_steps=10, pid=os.getpid())
    if started:
        paths.config.write_text(json.dumps({"teacher": "bundled-teacher", "max_steps": 10}))
    return run_id


@pytest.mark.parametrize("state, started, said", [
    ("queued", False, "Run '{}' has no saved student yet: wait for its first checkpoint."),
    ("running", True, "Run '{}' has no saved student yet: wait for its first checkpoint."),
    ("stopped", True, "Run '{}' was stopped before saving its first checkpoint, so it has no student; resume it (it "
                      "starts again from step 0) or start a new run."),
    ("failed", True, "Run '{}' failed before saving its first checkpoint, so it has no student; resume it (it starts "
                     "again from step 0) or start a new run."),
    ("stopped", False, "Run '{}' was stopped before it started, so it has no student; start a new run."),
])
def test_the_student_of_a_run_without_a_checkpoint_is_asked_for_by_its_state(ctx, state, started, said):
    run_id = run_without_checkpoint(ctx.launcher.root, state, started)
    with pytest.raises(ValueError) as zipped:  # Download student (zip)
        distill_tab.student_zip(ctx, run_id, None)
    assert str(zipped.value) == said.format(run_id)
    with pytest.raises(ValueError) as loaded:  # the Predictions tab and run:<id> everywhere
        zoo.load(f"run:{run_id}")
    assert str(loaded.value) == said.format(run_id)


@pytest.mark.parametrize("state, said", [
    ("running", "Run '{}' has logged no metrics yet: wait for its first evaluation."),
    ("stopped", "Run '{}' was stopped before its first evaluation, so it has no metrics; resume it or start a new "
                "run."),
    ("failed", "Run '{}' failed before its first evaluation, so it has no metrics; resume it or start a new run."),
])
def test_the_metrics_of_a_run_that_logged_none_are_asked_for_by_its_state(ctx, state, said):
    run_id = run_without_checkpoint(ctx.launcher.root, state)
    with pytest.raises(ValueError) as refused:  # Download metrics (CSV)
        distill_tab.metrics_csv(ctx, run_id, None)
    assert str(refused.value) == said.format(run_id)


def test_publishing_a_run_stopped_before_its_first_checkpoint_says_what_to_do(ctx):
    from train.publish import student_to_publish

    run_id = run_without_checkpoint(ctx.launcher.root, "stopped")
    with pytest.raises(ValueError) as refused:
        student_to_publish(ctx.launcher.root / run_id)
    assert str(refused.value) == (f"Run '{run_id}' was stopped before saving its first checkpoint, so it has no "
                                  "student; resume it (it starts again from step 0) or start a new run.")


def test_a_run_whose_status_is_damaged_names_the_file_instead_of_saying_wait(ctx):
    run_id = run_without_checkpoint(ctx.launcher.root, "stopped")
    RunPaths(ctx.launcher.root / run_id).status.write_text("[1, 2]")
    with pytest.raises(ValueError) as refused:
        zoo.load(f"run:{run_id}")
    assert str(refused.value) == (f"Run '{run_id}' has no saved student: the file {run_id}/status.json is damaged (it "
                                  "holds a list, not a JSON object); delete the run, or repair the file by hand.")


@pytest.mark.parametrize("state, checkpoint, said", [
    ("running", True, "Run {} has not finished: only a finished run's student is exported; wait for it to finish, "
                      "or download its newest checkpoint as a zip."),
    ("stopped", True, "Run {} is stopped, not finished: only a finished run's student is exported; resume it to its "
                      "last step, or download its newest checkpoint as a zip."),
    ("stopped", False, "Run {} is stopped, not finished: only a finished run's student is exported; resume it to "
                       "its last step."),
])
def test_export_of_an_unfinished_run_says_what_to_do_by_its_state(ctx, tiny_student_dir, state, checkpoint, said):
    import torch
    run_id = run_without_checkpoint(ctx.launcher.root, state)
    if checkpoint:  # a readable checkpoint of the tiny student
        from transformers import AutoModelForMaskedLM
        folder = ctx.launcher.root / run_id / "checkpoints"
        folder.mkdir()
        model = AutoModelForMaskedLM.from_pretrained(tiny_student_dir)
        torch.save({"model": model.state_dict(), "step": 4}, folder / "step-000004.pt")
    with pytest.raises(ValueError) as refused:
        distill_tab.export_run(ctx, run_id, None, "onnx")
    assert str(refused.value) == said.format(run_id)


# -- a queued resume

def test_a_queued_resume_shows_the_steps_it_was_queued_with(ctx):
    run_id = run_without_checkpoint(ctx.launcher.root, "stopped")
    paths = RunPaths(ctx.launcher.root / run_id)
    paths.config.write_text(json.dumps(DistillConfig(teacher="bundled-teacher", max_steps=10).to_dict()))
    row = {r: s for r, s in zip(*distill_tab.runs_table(ctx, None)[0][["run", "step"]].values.T)}
    assert row[run_id] == "0/10"
    table, _, line, *_ = distill_tab.resume_run(ctx, run_id, None, 50)
    assert dict(zip(table["run"], table["step"]))[run_id] == "0/50"
    assert line.startswith(f"**{run_id}** · queued · step 0 of 50")
    write_status(paths.root, state="running", message="Starting ...")  # started, its new config.json not yet written
    assert "· running · step 0 of 50" in distill_tab.show_run(ctx, run_id, None)[2]
    write_status(paths.root, state="stopped")  # ended before it wrote it: the run still has its 10 steps
    assert "· stopped · step 0 of 10" in distill_tab.show_run(ctx, run_id, None)[2]


# -- the student column

def test_every_student_cell_gives_a_number_of_layers(ctx):
    teacher_layers = AutoConfig.from_pretrained(zoo.resolve("bundled-teacher")[1]).num_hidden_layers
    half = max(1, teacher_layers // 2)
    ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=10))  # student_layers left unset
    ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=10, student_layers=1))
    table, _ = distill_tab.runs_table(ctx, None)
    assert sorted(table["student"]) == sorted([f"{half} L", "1 L"])
    assert distill_tab.student_label({"student_layers": None, "teacher": "bundled-teacher", "student_vocab_size": 3000,
                                      "align": "reduce"}) == f"{half} L · vocab 3,000 · reduce"
    assert distill_tab.student_label({"student_layers": None, "teacher": "no-such/model-here"}) == "half"


# -- the plots' axes

def test_the_plots_axes_have_titles_with_units():
    records = [{"step": 0, "eval_agreement": 0.1, "eval_mlm_acc": 0.1, "eval_teacher_mlm_acc": 0.3},
               {"step": 10, "loss": 4.0, "loss_kl": 1.0, "loss_mlm": 2.0, "loss_cos": 0.5, "eval_agreement": 0.2,
                "eval_mlm_acc": 0.2, "eval_teacher_mlm_acc": 0.3}]
    losses, evaluated = loss_figure(records).layout, eval_figure(records).layout
    assert (losses.xaxis.title.text, losses.xaxis2.title.text, evaluated.xaxis.title.text) == ("optimizer step",) * 3
    assert losses.yaxis.title.text == "α-weighted sum (nats + unitless)"
    assert losses.yaxis2.title.text == "nats (KL, MLM); unitless (cos, MSE)"
    assert evaluated.yaxis.title.text == "share of masked positions (%)" and evaluated.yaxis.tickformat == ".0%"


# -- a refused Start

def test_a_refused_start_stays_on_the_status_line_until_a_start_succeeds(ctx):
    import gradio as gr
    with gr.Blocks() as demo:
        parts = distill_tab.build(ctx)
    start_id, start = next((i, d) for i, d in demo.fns.items() if d.api_name == "start_run")
    failed_id, failed = next((i, d) for i, d in demo.fns.items()
                             if d.trigger_after == start_id and d.trigger_only_on_failure)
    succeeded = next(d for d in demo.fns.values() if d.trigger_after == start_id and d.trigger_only_on_success)
    redraw = next(d for d in demo.fns.values() if d.trigger_after == failed_id)
    with pytest.raises(gr.Error):
        start.fn(None, teacher="bundled-teacher", batch_size=1e9)
    sentence = failed.fn()
    assert sentence == "Batch size must be a whole number from 1 to 100,000; got 1000000000.0."
    assert failed.fn() == ""  # taken once: a later failure of this session says its own sentence
    assert parts["status"] in redraw.outputs and failed.outputs == [redraw.inputs[3]]
    status = redraw.fn(None, None, "", sentence)[2]  # at once, then at each tick of the timer
    assert status == ("**Start run refused:** Batch size must be a whole number from 1 to 100,000; got "
                      "1000000000.0.  \n" + distill_tab.NO_RUNS)
    owner, dropdown, _ = start.fn(None, teacher="bundled-teacher", steps=10)
    line = distill_tab.watch(ctx, dropdown.value, owner, "", sentence)[2]  # each tick keeps it
    assert line.startswith("**Start run refused:** Batch size") and f"**{dropdown.value}** · queued" in line
    assert succeeded.fn() == "" and succeeded.outputs == failed.outputs  # a start that succeeds clears it

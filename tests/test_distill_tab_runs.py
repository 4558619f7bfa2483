"""The Distill tab's run management as a person meets it: Delete shows the newest run left, a run stopped before its
first checkpoint is not told to wait for one, a queued resume shows the steps it was queued with, every student cell
gives a number of layers, the plots' axes have titles with units, a refused Start stays on the status line, a run
starting says what it does, and the runs stopped before their first step go in one confirmed press."""
import json
import os

import pytest
from transformers import AutoConfig

from core.models import zoo
from core.runs.store import RunPaths, write_status
from tests.support.runs import run_entries
from tests.test_distill_tab import made_run
from train.config import DistillConfig
from train.launcher import STOPPING, RunLauncher
from ui import (
    distill_actions,
    distill_downloads,
    distill_runs,
    distill_settings,
    distill_start,
    distill_status,
    distill_tab,
    errors,
)
from ui.context import AppContext
from ui.distill_plots import eval_figure, loss_figure
from ui.page_text import markdown_text


def shared_ctx(runs_dir) -> AppContext:
    return AppContext("bundled-teacher", "bundled-student", on_space=True, launcher=RunLauncher(runs_dir, shared=True))


# -- Delete

def test_delete_shows_the_newest_run_left_that_the_person_can_see(runs_dir):
    older = made_run(runs_dir, "20250101-120000-aaaa", 1.0, "stopped", owner="alice")
    bobs_shared = made_run(runs_dir, "20250101-120001-bbbb", 2.0, "stopped", owner="bob", public=True)
    made_run(runs_dir, "20250101-120002-cccc", 3.0, "stopped", owner="bob")  # newer, but alice cannot see it
    newest = made_run(runs_dir, "20250101-120003-dddd", 4.0, "stopped", owner="alice")
    space = shared_ctx(runs_dir)
    table, dropdown, status, *_, notice = distill_actions.delete_run(space, newest, "alice")
    assert dropdown.value == bobs_shared and table["run"].tolist() == [bobs_shared, older]
    assert status.startswith(f"Deleted run {newest}.  \n**{bobs_shared}** · stopped · step 1 of 10")
    assert notice == f"Deleted run {newest}."
    private = AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(runs_dir))
    assert distill_actions.delete_run(private, bobs_shared, None)[1].value == "20250101-120002-cccc"  # every run seen


def test_a_redraw_begun_before_a_delete_ended_shows_the_newest_run_left_as_delete_did(ctx):
    """The timer redraws the line every 2 s with the run the page had chosen. One begun while Delete ran arrived
    after it with that deleted run and cleared the choice Delete had made: the list stayed empty."""
    older = made_run(ctx.launcher.root, "20250101-120000-aaaa", 1.0, "stopped")
    newer = made_run(ctx.launcher.root, "20250101-120001-bbbb", 2.0, "stopped")
    chosen_by_delete = distill_actions.delete_run(ctx, newer, None)[1].value
    table, dropdown, status, *_ = distill_status.watch(ctx, newer, None, f"Deleted run {newer}.")
    assert dropdown.value == chosen_by_delete == older and table["run"].tolist() == [older]
    assert status.startswith(f"**{older}** · stopped · step 1 of 10")


def test_deleting_the_last_run_says_there_are_no_runs(ctx):
    run_id = ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=10))
    ctx.launcher.stop(run_id)
    table, dropdown, status, *_, notice = distill_actions.delete_run(ctx, run_id, None)
    assert dropdown.value is None and table.empty and dropdown.choices == []
    assert status == f"Deleted run {run_id}. {distill_status.NO_RUNS}" and notice == f"Deleted run {run_id}."
    assert distill_status.watch(ctx, None, None, notice)[2] == status  # the timer keeps the line
    assert distill_status.show_run(ctx, None, None)[2] == distill_status.NO_RUNS  # a page opened later


def test_runs_left_but_none_chosen_still_read_no_run_selected(ctx):
    ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=10))
    assert distill_status.show_run(ctx, None, None)[2] == "No run selected."


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
        distill_downloads.student_zip(ctx, run_id, None)
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
        distill_downloads.metrics_csv(ctx, run_id, None)
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
        distill_downloads.export_run(ctx, run_id, None, "onnx")
    assert str(refused.value) == said.format(run_id)


# -- a queued resume

def test_a_queued_resume_shows_the_steps_it_was_queued_with(ctx):
    run_id = run_without_checkpoint(ctx.launcher.root, "stopped")
    paths = RunPaths(ctx.launcher.root / run_id)
    paths.config.write_text(json.dumps(DistillConfig(teacher="bundled-teacher", max_steps=10).to_dict()))
    row = {r: s for r, s in zip(*distill_runs.runs_table(ctx, None)[0][["run", "step"]].values.T)}
    assert row[run_id] == "0/10"
    table, _, line, *_ = distill_actions.resume_run(ctx, run_id, None, 50)
    assert dict(zip(table["run"], table["step"]))[run_id] == "0/50"
    assert line.startswith(f"**{run_id}** · queued · step 0 of 50")
    write_status(paths.root, state="running", message="Starting ...")  # started, its new config.json not yet written
    assert "· running · step 0 of 50" in distill_status.show_run(ctx, run_id, None)[2]
    write_status(paths.root, state="stopped")  # ended before it wrote it: the run still has its 10 steps
    assert "· stopped · step 0 of 10" in distill_status.show_run(ctx, run_id, None)[2]


# -- the student column

def test_every_student_cell_gives_a_number_of_layers(ctx):
    teacher_layers = AutoConfig.from_pretrained(zoo.resolve("bundled-teacher")[1]).num_hidden_layers
    half = max(1, teacher_layers // 2)
    ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=10))  # student_layers left unset
    ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=10, student_layers=1))
    table, _ = distill_runs.runs_table(ctx, None)
    assert sorted(table["student"]) == sorted([f"{half} L", "1 L"])
    assert distill_runs.student_label({"student_layers": None, "teacher": "bundled-teacher", "student_vocab_size": 3000,
                                      "align": "reduce"}) == f"{half} L · vocab 3,000 · reduce"
    assert distill_runs.student_label({"student_layers": None, "teacher": "no-such/model-here"}) == "half"


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
    assert sentence == "Batch size must be a whole number from 1 to 100,000; got 1,000,000,000."
    assert failed.fn() == ""  # taken once: a later failure of this session says its own sentence
    assert parts["status"] in redraw.outputs and failed.outputs == [redraw.inputs[3]]
    status = redraw.fn(None, None, "", sentence)[2]  # at once, then at each tick of the timer
    assert status == ("**Start run refused:** Batch size must be a whole number from 1 to 100,000; got "
                      "1,000,000,000.  \n" + distill_status.NO_RUNS)
    owner, dropdown, _ = start.fn(None, teacher="bundled-teacher", steps=10)
    line = distill_status.watch(ctx, dropdown.value, owner, "", sentence)[2]  # each tick keeps it
    assert line.startswith("**Start run refused:** Batch size") and f"**{dropdown.value}** · queued" in line
    assert succeeded.fn() == "" and succeeded.outputs == failed.outputs  # a start that succeeds clears it


# -- a run starting

BAR = "distilling:  {pct}%|█▊        | {step}/40 [01:34<07:02, 12.80s/step]"


def test_a_starting_run_says_what_its_process_is_doing_until_its_steps_show(ctx):
    """Loading the teacher, tokenising the corpus and evaluating step 0 took over a minute under a bare "Starting
    ...": the line names the phase its process writes in its status (once read from its console), then the step its
    progress bar has reached before the status records it. A run whose status has no phase (started by an older
    version) names none, whatever its console holds."""
    run_id = run_without_checkpoint(ctx.launcher.root, "running", started=False)
    paths = RunPaths(ctx.launcher.root / run_id)
    write_status(paths.root, message="Starting ...", max_steps=40, phase="loading")
    command = f"$ python -m train.distill --config runs/{run_id}/request.json --output-dir runs/{run_id}\n"
    paths.console.write_text(command, encoding="utf-8")

    def line() -> str:
        return distill_status.show_run(ctx, run_id, None)[2]

    assert line().startswith(f"**{run_id}** · running · step 0 of 40 · loading the teacher, then reading and "
                             "tokenising the corpus …  \nStarting ...")
    paths.console.write_text(command + "estimated peak memory: 444 MiB\nrun directory: runs/x\n", encoding="utf-8")
    write_status(paths.root, message="Started.", step=0, phase="preparing")
    assert line() == f"**{run_id}** · running · step 0 of 40 · preparing its first step …"
    write_status(paths.root, phase="evaluating")
    assert line() == (f"**{run_id}** · running · step 0 of 40 · evaluating the untrained student on held-out lines "
                      "(step 0) …")  # its "Started." is left out (test_a_page_opened_later_is_not_told_started)
    paths.metrics.write_text(json.dumps({"step": 0, "eval_agreement": 0.1, "eval_mlm_acc": 0.1}) + "\n")
    write_status(paths.root, phase=None)  # its steps begin
    assert line() == f"**{run_id}** · running · step 0 of 40 · agreement 10.0%"
    with open(paths.console, "a", encoding="utf-8") as console:
        console.write("\r".join(BAR.format(pct=p, step=s) for p, s in ((0, 0), (2, 1), (18, 7))) + "\n")
    assert line() == f"**{run_id}** · running · step 7 of 40 · agreement 10.0%"
    table = distill_status.show_run(ctx, run_id, None)[0]  # the runs table said 0/40 beside the line's step 7
    assert table.loc[table["run"] == run_id, "step"].tolist() == ["7/40"]
    write_status(paths.root, message=STOPPING, phase="preparing")  # asked to stop: the line says so, not a phase
    assert "…" not in line()
    with open(paths.console, "a", encoding="utf-8") as console:  # resumed: its new process loads again
        console.write(f"$ python -m train.distill --resume runs/{run_id} --max-steps 40\n")
    write_status(paths.root, message="Starting ...", phase="loading")
    assert "· step 0 of 40 · loading the teacher" in line()  # the earlier process's bar is not this one's
    older = {k: v for k, v in json.loads(paths.status.read_text()).items() if k != "phase"}
    paths.status.write_text(json.dumps(older))  # an older version's run: a console with no bar, and no phase
    assert line() == f"**{run_id}** · running · step 0 of 40 · agreement 10.0%  \nStarting ..."
    paths.console.unlink()  # a run started at a terminal writes no console
    write_status(paths.root, phase="evaluating")
    assert line() == (f"**{run_id}** · running · step 0 of 40 · evaluating the untrained student on held-out lines "
                      "(step 0) … · agreement 10.0%  \nStarting ...")


# -- runs stopped before their first step

def unstarted_run(root, run_id: str, state: str = "stopped", step: int | None = None, owner: str | None = "alice",
                  public: bool = False) -> str:
    """A run folder with its status only, as Start then Stop leaves one (step None: taken out of the queue)."""
    (root / run_id).mkdir()
    write_status(root / run_id, state=state, max_steps=10, owner=owner, public=public, pid=os.getpid(),
                 created=float(run_id[-2:]), **({} if step is None else {"step": step}))
    return run_id


def test_runs_stopped_before_their_first_step_go_in_one_confirmed_press(runs_dir, monkeypatch):
    """Each Start then Stop left a run in the list, deleted one at a time; one press, confirmed once with how many,
    deletes the visitor's runs stopped with no step done, never a queued, running, trained or failed one, nor another
    visitor's, nor one resumed since the confirmation counted it."""
    import gradio as gr
    notices = []
    monkeypatch.setattr(gr, "Info", notices.append)
    root, space = runs_dir, shared_ctx(runs_dir)
    taken_out = unstarted_run(root, "20250101-120000-aa01")
    stopped_loading = unstarted_run(root, "20250101-120000-aa02", step=0)
    resumed_later = unstarted_run(root, "20250101-120000-aa03", step=0)
    kept = [unstarted_run(root, "20250101-120000-aa04", "queued"),
            unstarted_run(root, "20250101-120000-aa05", "running", step=0),
            unstarted_run(root, "20250101-120000-aa06", step=3),
            unstarted_run(root, "20250101-120000-aa07", "failed", step=0),
            unstarted_run(root, "20250101-120000-aa08", owner="bob", public=True),
            unstarted_run(root, "20250101-120000-aa09", owner="bob")]
    hidden, confirm, keep, counted = distill_actions.ask_to_delete_unstarted(space, "alice")
    assert (hidden.visible, confirm.value, confirm.visible, keep.visible) == \
        (False, "Delete 3 runs stopped before their first step for good", True, True)
    assert sorted(counted) == [taken_out, stopped_loading, resumed_later]
    write_status(root / resumed_later, state="queued")  # resumed between the question and the answer
    table, dropdown, status, *_, notice = distill_actions.delete_unstarted(space, taken_out, "alice", counted)
    assert notice == "Deleted 2 runs stopped before their first step." and notices == [notice]
    assert sorted(p.name for p in run_entries(root)) == sorted([resumed_later, *kept])
    newest = "20250101-120000-aa08"  # the chosen run is gone: the newest run left that alice sees, bob's shared one
    assert dropdown.value == newest and status.startswith(f"{notice}  \n**{newest}** · stopped")
    assert resumed_later in table["run"].tolist() and "20250101-120000-aa09" not in table["run"].tolist()
    hidden, confirm, keep, counted = distill_actions.ask_to_delete_unstarted(space, "alice")  # none left: said so
    assert (hidden.visible, confirm.visible, keep.visible, counted) == (True, False, False, None)
    assert notices[-1] == "None of your runs was stopped before its first step: there is nothing to delete."
    with pytest.raises(ValueError, match="None of your runs is stopped before its first step now"):
        distill_actions.delete_unstarted(space, None, "alice")
    assert distill_actions.ask_to_delete_unstarted(space, "bob")[1].value == \
        "Delete 2 runs stopped before their first step for good"


def test_the_api_deletes_the_runs_stopped_before_their_first_step(ctx):
    import gradio as gr
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    confirm = next(d for d in demo.fns.values() if d.api_name == "delete_unstarted_runs")
    first = unstarted_run(ctx.launcher.root, "20250101-120000-bb01", owner=None)
    second = unstarted_run(ctx.launcher.root, "20250101-120000-bb02", step=0, owner=None)
    trained = unstarted_run(ctx.launcher.root, "20250101-120000-bb03", step=4, owner=None)
    newer = unstarted_run(ctx.launcher.root, "20250101-120000-bb04", step=5, owner=None)
    outputs = confirm.fn(trained, None, None)  # a client's call: its session's list is None, so every such run goes
    assert outputs[-1] == "Deleted 2 runs stopped before their first step." and outputs[1].value == trained
    assert sorted(p.name for p in run_entries(ctx.launcher.root)) == [trained, newer]
    assert outputs[0]["run"].tolist() == [newer, trained] and first not in outputs[2] and second not in outputs[2]


# -- boxes left empty

RUN_DEFAULTS = DistillConfig().to_dict()  # the run's own defaults, as its request.json holds them
FILLED = dict(student_layers=1, steps=7, batch_size=3, learning_rate=0.001, temperature=1.5, alpha_kl=4.0,
              alpha_mlm=1.0, alpha_cos=0.5, alpha_att=0.25, max_length=64, save_every=5)  # none a default
# each number box: its field, its label on the page, and its key in the run's request
BOXES = [("steps", "Steps", "max_steps"), ("batch_size", "Batch size", "batch_size"),
         ("learning_rate", "Learning rate", "lr"), ("temperature", "Temperature T", "temperature"),
         ("alpha_kl", "α KL", "alpha_kl"), ("alpha_mlm", "α MLM", "alpha_mlm"), ("alpha_cos", "α cosine", "alpha_cos"),
         ("alpha_att", "α attention", "alpha_att"), ("max_length", "Max length", "max_length"),
         ("save_every", "Checkpoint every", "save_every")]


def written(value) -> str:
    return str(value) if isinstance(value, int) else f"{value:g}"  # as the number box shows it


def teacher_layers() -> int:
    return AutoConfig.from_pretrained(zoo.resolve("bundled-teacher")[1]).num_hidden_layers


def start_note(ctx):
    """The listener that writes the line under Start run after a start, and the one that clears it after a
    refusal, as the built tab wires them."""
    import gradio as gr
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    note = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "distill-start-note")
    start_id = next(i for i, d in demo.fns.items() if d.api_name == "start_run")
    after = [d for d in demo.fns.values() if d.trigger_after == start_id and d.outputs == [note]]
    return (next(d.fn for d in after if d.trigger_only_on_success),
            next(d.fn for d in after if d.trigger_only_on_failure))


def start_with(ctx, monkeypatch, **form) -> tuple[str, str, dict]:
    """Start run pressed with `form`: the notice, the line under Start, and the run's request."""
    import gradio as gr
    notices = []
    monkeypatch.setattr(gr, "Info", notices.append)
    form = dict(teacher="bundled-teacher", **form)
    _, dropdown, _ = distill_start.start_run_from_form(ctx, None, **form)
    written_line, _ = start_note(ctx)
    request = json.loads(RunPaths(ctx.launcher.root / dropdown.value).request.read_text())
    return notices[0], written_line(dropdown.value, **form), request


@pytest.mark.parametrize("empty", [None, "   "])
@pytest.mark.parametrize("name, label, key", BOXES)
def test_each_box_left_empty_is_named_under_start_with_the_value_it_took(ctx, monkeypatch, name, label, key, empty):
    """An emptied Steps box started 300 steps, and an emptied α box its default, unsaid or said only in a notice
    that faded: the line under Start names every box left empty with the value the run took."""
    notice, line, request = start_with(ctx, monkeypatch, **{**FILLED, name: empty})
    taken = f"Boxes left empty took their defaults: {label} {written(RUN_DEFAULTS[key])}."
    assert request[key] == RUN_DEFAULTS[key]  # the run took the default ...
    assert taken in notice and line.startswith("Run 2") and line.endswith(taken)  # ... and the page says which
    assert all(request[k] == FILLED[n] for n, _, k in BOXES if n != name)  # the boxes filled in are not named
    assert line.count("Boxes left empty") == 1 and line.count(":") == 2


def test_every_box_left_out_is_named_in_the_forms_order(ctx, monkeypatch):
    depth = teacher_layers()
    _, line, request = start_with(ctx, monkeypatch)  # an API caller that leaves every setting out
    named = [f"Student layers {max(1, depth // 2)} (half of bundled-teacher's {depth})"] + [
        f"{label} {written(RUN_DEFAULTS[key])}" for _, label, key in BOXES]
    assert line.endswith(f"Boxes left empty took their defaults: {', '.join(named)}.")
    assert request["student_layers"] is None  # the run takes half the teacher's layers as it starts
    _, line, _ = start_with(ctx, monkeypatch, **{**FILLED, "student_layers": None})
    assert line.endswith(f"Boxes left empty took their defaults: {named[0]}.")
    _, line, _ = start_with(ctx, monkeypatch, **FILLED)  # nothing left empty: nothing named
    assert "left empty" not in line and line.endswith("learning rate 0.001, T 1.5.")


def test_the_reduced_students_empty_boxes_are_named_too(ctx, monkeypatch):
    width = AutoConfig.from_pretrained(zoo.resolve("bundled-teacher")[1]).hidden_size
    reduced = dict(FILLED, reduced_vocab=True, align="reduce")
    _, line, request = start_with(ctx, monkeypatch, **reduced, student_vocab_size=None, student_hidden=width)
    assert line.endswith(f"Boxes left empty took their defaults: Student vocabulary size "
                         f"{distill_settings.STUDENT_VOCAB_DEFAULT}.")
    assert request["student_vocab_size"] == distill_settings.STUDENT_VOCAB_DEFAULT
    _, line, request = start_with(ctx, monkeypatch, **reduced, student_vocab_size=3000, student_hidden=" ")
    assert line.endswith("Boxes left empty took their defaults: Student width: the teacher's.")
    assert request["student_hidden"] is None


def test_a_refused_start_takes_the_line_of_the_start_before_it_away(ctx):
    written_line, cleared = start_note(ctx)
    assert cleared() == ""  # the refusal is on the status line (test_a_refused_start_stays_...)
    assert written_line("r", teacher="bundled-teacher", steps="ten") == ""  # a form that no longer reads as a run


# -- no run chosen: each button's refusal

def no_run_presses(ctx, monkeypatch):
    """Each button of the tab as it calls its handler with no run chosen: Stop, Resume, Delete (its first press, and
    the confirming one), Share, the two downloads, Export and Publish."""
    import gradio as gr
    monkeypatch.setenv("HF_TOKEN", "hf_not_a_real_token")  # the Publish controls are shown with a token
    with gr.Blocks() as demo:
        parts = distill_tab.build(ctx)
    by_api = {d.api_name: d.fn for d in demo.fns.values() if d.api_name}
    delete = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "distill-delete")
    ask = next(d.fn for d in demo.fns.values() if (delete._id, "click") in d.targets)
    assert parts["selected"].value is None
    return [("Stop", lambda: by_api["stop_run"](None, None)), ("Resume", lambda: by_api["resume_run"](None, None, 0)),
            ("Delete", lambda: ask(None, None)), ("Delete for good", lambda: by_api["delete_run"](None, None)),
            ("Share", lambda: by_api["share_run"](None, None, True)),
            ("Download metrics", lambda: by_api["run_metrics_csv"](None, None)),
            ("Download student", lambda: by_api["run_student_zip"](None, None)),
            ("Export", lambda: by_api["export_run"](None, None, "onnx", False)),
            ("Publish", lambda: by_api["publish_run"](None, None, "me/student", False))]


def refusal(press) -> tuple[str, bool]:
    """The sentence a press is refused with, and whether the page shows it as a notice."""
    import gradio as gr

    from ui.errors import error_message
    with pytest.raises(gr.Error) as refused:
        press()
    return error_message(refused.value), refused.value.visible


def test_one_refusal_is_one_notice_whichever_buttons_repeat_it(ctx, monkeypatch):
    """A download then Delete with no run chosen read "Error (2)" and the same sentence twice: the page lists the
    notices still showing together. A sentence already in a notice on the page comes without another; another page,
    or the same one once the notice has gone, gets its own."""
    from types import SimpleNamespace

    from gradio.context import LocalContext
    presses = no_run_presses(ctx, monkeypatch)
    clock = [1000.0]
    monkeypatch.setattr(errors.time, "monotonic", lambda: clock[0])
    page = LocalContext.request.set(SimpleNamespace(session_hash="page-1"))
    try:
        said = {name: refusal(press) for name, press in presses}
        assert {sentence for sentence, _ in said.values()} == {distill_runs.NO_RUN_CHOSEN}
        assert [name for name, (_, notice) in said.items() if notice] == ["Stop"]  # the first press only
        LocalContext.request.set(SimpleNamespace(session_hash="page-2"))
        assert refusal(presses[2][1]) == (distill_runs.NO_RUN_CHOSEN, True)
        LocalContext.request.set(SimpleNamespace(session_hash="page-1"))
        clock[0] += errors.NOTICE_S - 1
        assert refusal(presses[2][1])[1] is False  # still in view
        clock[0] += 1
        assert refusal(presses[2][1])[1] is True  # gone: said again
        assert refusal(lambda: distill_tab.handler(distill_actions.share_run, ctx)("x/y", None, True))[1] is True
    finally:
        LocalContext.request.reset(page)
    assert all(refusal(press)[1] for _, press in presses[:3])  # outside a page (a script calling them) every time


# -- the downloads

def test_each_download_has_its_own_box_and_its_refusal_stays_in_a_line(ctx):
    """Both downloads filled one box, the student's zip replacing the CSV; a refusal left that box showing a red
    "Error" without its label, and said why only in a notice that faded."""
    import gradio as gr
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    line = by_id["distill-downloaded"]
    run_id = run_without_checkpoint(ctx.launcher.root, "stopped")
    RunPaths(ctx.launcher.root / run_id).metrics.write_text(json.dumps({"step": 10, "loss": 4.0}) + "\n")
    for api_name, box, label, button in [("run_metrics_csv", "distill-metrics-file", "Metrics (CSV)",
                                          "Download metrics (CSV)"),
                                         ("run_student_zip", "distill-student-file", "Student (zip)",
                                          "Download student (zip)")]:
        box = by_id[box]
        fetch_id, fetch = next((i, d) for i, d in demo.fns.items() if d.api_name == api_name)
        assert fetch.outputs == [box] and box.label == label and list(fetch.show_progress_on) == [line]
        failed = next(d for d in demo.fns.values() if d.trigger_after == fetch_id and d.trigger_only_on_failure)
        succeeded = next(d for d in demo.fns.values() if d.trigger_after == fetch_id and d.trigger_only_on_success)
        assert failed.outputs == [line, box] and succeeded.outputs == [line]
        with pytest.raises(gr.Error):
            fetch.fn(None, None)
        assert failed.fn(None, None) == (f"**{button} failed:** {markdown_text(distill_runs.NO_RUN_CHOSEN)}", None)
        assert succeeded.fn() == ""
    metrics = next(d for d in demo.fns.values() if d.api_name == "run_metrics_csv")
    assert metrics.fn(run_id, None).endswith(f"{run_id}-metrics.csv")
    student = next(d for d in demo.fns.values() if d.api_name == "run_student_zip")
    with pytest.raises(gr.Error, match="was stopped before saving its first checkpoint"):
        student.fn(run_id, None)
    failed = next(d for d in demo.fns.values() if d.trigger_only_on_failure and d.outputs == [line, by_id[
        "distill-student-file"]])
    said, file = failed.fn(run_id, None)  # the metrics' box keeps its file: only the student's is emptied
    assert said.startswith("**Download student (zip) failed:** Run '") and file is None
    chosen = by_id["distill-run-shown"]
    another = [d for d in demo.fns.values() if (chosen._id, "change") in d.targets and line in d.outputs]
    assert [d.fn()[0] for d in another] == [""]  # the line was about the run chosen before


@pytest.mark.parametrize("token", ["", "hf_not_a_real_token"])
def test_choosing_another_run_takes_the_earlier_runs_lines_and_files_away(ctx, monkeypatch, token):
    """An "Export failed: ..." line, a file exported or downloaded, and what Publish said stayed under their buttons
    after another run was chosen, as if they were that run's."""
    import gradio as gr
    monkeypatch.setenv("HF_TOKEN", token)  # the Publish controls are there only with a token
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    earlier = ["distill-downloaded", "distill-metrics-file", "distill-student-file", "distill-exported",
               "distill-export-file"] + (["distill-published"] if token else [])
    chosen = by_id["distill-run-shown"]
    [taken] = [d for d in demo.fns.values() if (chosen._id, "change") in d.targets
               and by_id["distill-exported"] in d.outputs]
    assert taken.outputs == [by_id[name] for name in earlier]
    assert taken.fn() == tuple(None if name.endswith("-file") else "" for name in earlier)  # empty and labelled
    assert all(by_id[name].visible for name in earlier if name.endswith("-file"))


# -- a page opened on a run in training

def test_a_page_opened_later_is_not_told_started(ctx):
    """A page opened on a run another page had started read "Started." under its progress line, as if it had started
    it; the run's own notes after that word stay, and its other messages are the run's own."""
    run_id = run_without_checkpoint(ctx.launcher.root, "running")
    paths = RunPaths(ctx.launcher.root / run_id)
    paths.console.write_text("$ python -m train.distill\nrun directory: runs/x\n" + BAR.format(pct=18, step=7) + "\n",
                             encoding="utf-8")

    def line(message: str) -> str:
        write_status(paths.root, message=message)
        opened = distill_status.open_run(ctx, None)[0].value  # a fresh page opens on the run in training
        return distill_status.show_run(ctx, opened, None)[2]

    assert line("Started.") == f"**{run_id}** · running · step 7 of 10"
    note = "Checkpoint step-000020.pt cannot be read (it is damaged); the run goes on from step 10."
    assert line(f"Started. {note}") == f"**{run_id}** · running · step 7 of 10  \n{note}"
    assert line("Resumed from step 4.").endswith("  \nResumed from step 4.")
    assert line("Started at noon.").endswith("  \nStarted at noon.")  # only the bare word goes

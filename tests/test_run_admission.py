"""What a distillation run must pass before it is queued: its settings against the teacher's config in the run's own
words (through the API too), its estimated memory and time against the free memory and the app's limit, and the
limits one session keeps on a Space (runs in line, disk), with the free disk checked again when the run starts."""
from __future__ import annotations

import json
import math

import pytest

from core.distill.losses import LossWeights
from core.models.zoo import BUNDLED_DIR
from core.runs.store import RunPaths, list_runs, read_status, write_status
from tests.support.runs import run_entries
from train import admission, estimate
from train.admission import RunLimits, run_disk_bytes
from train.config import DistillConfig
from train.launcher import RunLauncher
from train.preflight import check_against_teacher, teacher_config
from ui import distill_tab
from ui.context import AppContext
from ui.distill_tab import RunSettings

# what the child (python -m train.distill) says for each setting, word for word; read from the bundled teacher's
# config: 4 layers (half of them, 2, is the student's depth) and 512 positions
BUNDLED_WIDTH = json.loads((BUNDLED_DIR / "teacher" / "config.json").read_text())["hidden_size"]
BUNDLED_VOCAB = json.loads((BUNDLED_DIR / "teacher" / "config.json").read_text())["vocab_size"]
CHILD_SENTENCES = [
    (dict(init_layers="99,100"), "Initialising layers must be between 0 and 3; got [99, 100]."),
    (dict(init_layers="-1,-2"), "Initialising layers must be between 0 and 3; got [-1, -2]."),
    (dict(init_layers=",".join(["0"] * 500_000)),
     "Give one initialising teacher layer per student layer: 2 needed, 500,000 given."),
    (dict(reduced_vocab=True, student_vocab_size=2000, student_hidden=7),
     "--student-hidden must be at least 8; got 7."),
    (dict(reduced_vocab=True, student_vocab_size=2000, student_hidden=-1),
     "--student-hidden must be at least 8; got -1."),
    (dict(reduced_vocab=True, student_vocab_size=2000, student_hidden=1e9),
     f"The student width (1,000,000,000) cannot exceed the teacher's ({BUNDLED_WIDTH})."),
    (dict(reduced_vocab=True, student_vocab_size=1e9),
     "--student-vocab-size must be between 100 and 1,000,000; got 1,000,000,000."),
    (dict(max_length=4096), "--max-length 4,096 is longer than the teacher's maximum (512)."),
    (dict(teacher="/etc"), None),  # whatever /etc holds on this machine, the sentence zoo.load gives
    (dict(temperature=1e308), "The temperature must be at most 100 (distillation uses 1 to 20); got 1e+308."),
    (dict(alpha_kl=1e308), "The loss weight alpha_kl must be at most 10,000; got 1e+308."),
    (dict(alpha_kl=math.nan), "The loss weight alpha_kl must be a finite number; got nan."),
    (dict(init_layers="0,0"), "Initialising layers name a teacher layer more than once ([0, 0]); give 2 different "
                              "layers between 0 and 3."),
    (dict(init_layers="3,1"), "Initialising layers must go from shallower to deeper teacher layers, as the student's "
                              "layers do: give [1, 3] rather than [3, 1]."),
    (dict(reduced_vocab=True, student_vocab_size=100_000),
     f"The student vocabulary (100,000) must be smaller than the teacher's ({BUNDLED_VOCAB:,})."),
    (dict(reduced_vocab=True, student_vocab_size=BUNDLED_VOCAB),
     f"The student vocabulary ({BUNDLED_VOCAB:,}) must be smaller than the teacher's ({BUNDLED_VOCAB:,})."),
]
CHILD_FLAGS = {"init_layers": "--init-layers", "student_hidden": "--student-hidden", "max_length": "--max-length",
               "student_vocab_size": "--student-vocab-size", "temperature": "--temperature", "alpha_kl": "--alpha-kl",
               "teacher": "--teacher"}


def etc_sentence() -> str:
    from core.models import zoo
    with pytest.raises(ValueError) as refused:
        zoo.load("/etc")
    return str(refused.value)


@pytest.fixture
def ctx(runs_dir):
    """An app context over a private runs folder whose launcher is never started: submitted runs stay queued."""
    return AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(runs_dir))


def submit(ctx, owner="me", **settings):
    settings = RunSettings(**settings)
    return ctx.launcher.submit(settings.config(settings.teacher or "bundled-teacher"), owner=owner,
                               limits=ctx.run_limits())


@pytest.mark.parametrize("settings, sentence", CHILD_SENTENCES, ids=[str(i) for i in range(len(CHILD_SENTENCES))])
def test_settings_the_run_would_refuse_are_refused_before_queueing_in_its_words(ctx, runs_dir, settings, sentence):
    with pytest.raises(ValueError) as refused:
        submit(ctx, **settings)
    assert str(refused.value) == (sentence or etc_sentence())
    assert run_entries(runs_dir) == []


@pytest.mark.cli
@pytest.mark.parametrize("settings, sentence", [CHILD_SENTENCES[0], CHILD_SENTENCES[5], CHILD_SENTENCES[7],
                                                CHILD_SENTENCES[9], CHILD_SENTENCES[11], CHILD_SENTENCES[-2]])
def test_the_run_itself_gives_the_same_sentences(settings, sentence, tmp_path, capsys):
    from train.distill import main
    argv = ["--output-dir", str(tmp_path / "run"), "--max-steps", "1"]
    for name, value in settings.items():
        if name == "reduced_vocab":
            continue
        value = int(value) if isinstance(value, float) and value.is_integer() else value
        argv += [CHILD_FLAGS[name], str(value)]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == f"error: {sentence}"


@pytest.mark.app
def test_through_the_api_each_is_refused_before_a_run_is_queued(ctx, runs_dir):
    import gradio as gr
    from gradio_client import Client
    from gradio_client.exceptions import AppError

    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    demo.queue().launch(prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        for settings, sentence in CHILD_SENTENCES:
            # JSON has no NaN: a caller sends it as text, which the form reads as a number
            sent = {k: "NaN" if isinstance(v, float) and math.isnan(v) else v for k, v in settings.items()}
            with pytest.raises(AppError) as refused:
                client.predict(owner="me", **sent, api_name="/start_run")
            # the page names the form's fields where the run names its flags
            assert str(refused.value) == distill_tab.in_form_words(sentence or etc_sentence()).replace(">", "&gt;")
            assert "--" not in str(refused.value)
        assert run_entries(runs_dir) == []
    finally:
        demo.close()


def test_the_teachers_config_is_read_without_its_weights(tiny_teacher_dir):
    config = teacher_config(str(tiny_teacher_dir))
    assert config.max_position_embeddings == 128
    student = check_against_teacher(DistillConfig(teacher=str(tiny_teacher_dir), student_layers=3), config)
    assert student.num_hidden_layers == 3 and student.hidden_size == config.hidden_size
    with pytest.raises(ValueError, match=r"cannot have more layers \(5\) than the teacher \(4\)"):
        check_against_teacher(DistillConfig(teacher=str(tiny_teacher_dir), student_layers=5), config)


# -- item 2: memory and time, estimated before queueing

def test_a_batch_that_cannot_fit_in_free_memory_is_refused_naming_what_to_lower(ctx, runs_dir, monkeypatch):
    monkeypatch.setattr(estimate, "free_memory", lambda device: 4 * 2**30)  # a machine with 4 GiB free
    with pytest.raises(ValueError) as refused:
        submit(ctx, batch_size=4000, max_length=128)
    assert str(refused.value).startswith("A training step would need about ")
    assert str(refused.value).endswith("GiB free on the CPU: lower the batch size or the max length.")
    assert run_entries(runs_dir) == []
    submit(ctx, batch_size=8, max_length=64)  # a small one fits


@pytest.mark.parametrize("space, limit", [(True, 1800.0), (False, 86400.0)])
def test_the_run_time_limit_is_a_setting_with_a_short_default_on_a_space(monkeypatch, space, limit):
    monkeypatch.delenv("RUDISTIL_MAX_RUN_S", raising=False)
    assert AppContext("bundled-teacher", "bundled-student", on_space=space).max_run_s == limit
    monkeypatch.setenv("RUDISTIL_MAX_RUN_S", "60")
    assert AppContext("bundled-teacher", "bundled-student", on_space=space).max_run_s == 60.0
    monkeypatch.setenv("RUDISTIL_MAX_RUN_S", "soon")
    with pytest.raises(ValueError, match="RUDISTIL_MAX_RUN_S must be a positive number, not 'soon'"):
        AppContext("bundled-teacher", "bundled-student", on_space=space)


def test_a_run_estimated_past_the_limit_is_refused_saying_about_how_long(ctx, runs_dir):
    ctx.max_run_s = 60.0
    with pytest.raises(ValueError) as refused:
        submit(ctx, steps=10_000_000)
    said = str(refused.value)
    assert said.startswith("This run would take about ") and "10,000,000 steps of about" in said
    assert "more than the 60 s one run may take on this app; choose fewer steps" in said
    assert run_entries(runs_dir) == []
    run_id = submit(ctx, steps=2, batch_size=2, max_length=16)
    assert 0 < read_status(runs_dir / run_id)["estimated_s"] < 60


def test_the_estimate_grows_with_steps_and_batch(tiny_teacher_dir):
    teacher = teacher_config("bundled-teacher")
    lines = ["слово " * 30] * 50

    def seconds(**changes) -> float:
        cfg = DistillConfig(teacher="bundled-teacher", **changes)
        return estimate.estimate_run(cfg, teacher, check_against_teacher(cfg, teacher), lines, 6)

    one, more, wider = seconds(max_steps=100), seconds(max_steps=1000), seconds(max_steps=100, batch_size=64)
    assert one.step_s == more.step_s and more.total_s > 5 * one.total_s
    assert wider.step_s > 3 * one.step_s and wider.memory.total > one.memory.total
    assert one.describe().startswith("about ") and ", peak memory about " in one.describe()
    # KL at masked positions only: the decoders run at 15% of the positions, a shorter step and smaller logits
    masked = seconds(max_steps=100, losses=LossWeights(kl_masked_only=True))
    assert masked.step_s < 0.8 * one.step_s and masked.memory.logits < 0.5 * one.memory.logits
    assert masked.memory.activations == one.memory.activations


def test_resume_past_the_time_limit_is_refused_and_its_steps_checked(ctx, runs_dir):
    run_id = submit(ctx, steps=4, batch_size=2, max_length=16)
    paths = RunPaths(runs_dir / run_id)
    paths.config.write_text(paths.request.read_text())  # as the run writes it when it starts
    write_status(paths.root, state="stopped")
    ctx.max_run_s = 60.0
    with pytest.raises(ValueError, match="Resume up to step must be a whole number from 0 to 10,000,000"):
        distill_tab.resume_run(ctx, run_id, "me", 10**12)
    with pytest.raises(ValueError, match="This run would take about .* more than the 60 s"):
        distill_tab.resume_run(ctx, run_id, "me", 5_000_000)
    with pytest.raises(ValueError, match="Resume up to step must be a whole number"):
        distill_tab.resume_run(ctx, run_id, "me", "many")
    assert read_status(paths.root)["state"] == "stopped"


# -- item 4: what one session may hold on a Space

@pytest.mark.parametrize("variable, space, default", [("RUDISTIL_MAX_SESSION_RUNS", True, 2.0),
                                                      ("RUDISTIL_MAX_SESSION_RUNS", False, math.inf),
                                                      ("RUDISTIL_MAX_SESSION_MB", True, 2000.0),
                                                      ("RUDISTIL_MAX_SESSION_MB", False, math.inf)])
def test_session_limits_are_settings_on_a_space(monkeypatch, variable, space, default):
    monkeypatch.delenv(variable, raising=False)
    field = "max_session_runs" if variable.endswith("RUNS") else "max_session_mb"
    assert getattr(AppContext("bundled-teacher", "bundled-student", on_space=space), field) == default
    monkeypatch.setenv(variable, "3")
    assert getattr(AppContext("bundled-teacher", "bundled-student", on_space=space), field) == 3.0


def test_one_session_may_have_so_many_runs_in_line_and_others_are_not_counted(ctx, runs_dir):
    ctx.max_session_runs = 2
    small = dict(steps=2, batch_size=2, max_length=16)
    submit(ctx, **small)
    submit(ctx, **small)
    with pytest.raises(ValueError) as refused:
        submit(ctx, **small)
    assert str(refused.value) == ("You already have 2 runs waiting or running, the most this app takes from one "
                                  "visitor at a time (2); wait for one to finish, or stop one.")
    submit(ctx, owner="someone else", **small)
    ctx.launcher.stop(next(r["id"] for r in list_runs(runs_dir) if r["owner"] == "me"), "me")  # makes room
    submit(ctx, **small)
    assert len(run_entries(runs_dir)) == 4


def test_a_client_that_changes_its_owner_id_is_still_one_session(ctx, runs_dir):
    ctx.max_session_runs = 1
    cfg = RunSettings(steps=2, batch_size=2, max_length=16).config("bundled-teacher")
    ctx.launcher.submit(cfg, owner="first", limits=ctx.run_limits(), session="connection-1")
    with pytest.raises(ValueError, match="You already have 1 run waiting or running"):
        ctx.launcher.submit(cfg, owner="second", limits=ctx.run_limits(), session="connection-1")
    ctx.launcher.submit(cfg, owner="second", limits=ctx.run_limits(), session="connection-2")
    assert sorted(r["session"] for r in list_runs(runs_dir)) == ["connection-1", "connection-2"]


def test_one_sessions_runs_may_take_so_much_disk(ctx, runs_dir):
    ctx.max_session_mb = 1.0
    with pytest.raises(ValueError) as refused:
        submit(ctx, steps=2)
    said = str(refused.value)
    assert said.startswith("Your runs take 0 bytes of this app's disk and this one needs about ")
    assert "past the 1.0 MB one visitor may use; delete a run you no longer need" in said
    ctx.max_session_mb = 10_000.0
    run_id = submit(ctx, steps=2)
    (runs_dir / run_id / "big.bin").write_bytes(b"x" * 2_000_000)
    ctx.max_session_mb = 2.0 + read_status(runs_dir / run_id)["disk_needed"] / 1e6
    with pytest.raises(ValueError, match="Your runs take 2.0 MB"):
        submit(ctx, steps=2)
    submit(ctx, owner="someone else", steps=2)


def test_a_run_is_refused_when_the_disk_lacks_room_for_its_checkpoints(ctx, runs_dir, monkeypatch):
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(admission.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    with pytest.raises(ValueError) as refused:
        submit(ctx, steps=2)
    assert str(refused.value).startswith("This run needs about ")
    assert "the app's disk has 1.0 KB free; delete runs you no longer need" in str(refused.value)
    assert run_entries(runs_dir) == []


def test_the_free_disk_is_checked_again_when_a_queued_run_starts(runs_dir, monkeypatch):
    launcher = RunLauncher(runs_dir)
    run_id = launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=2, batch_size=2, max_length=16))
    from collections import namedtuple
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(admission.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 1000))
    launcher.pump()
    status = read_status(runs_dir / run_id)
    assert status["state"] == "failed" and status["message"].startswith("The run needs about ")
    assert not launcher._children


def test_the_disk_a_run_needs_counts_checkpoints_copies_and_its_corpus():
    assert run_disk_bytes(1_000_000, keep_checkpoints=2, corpus_bytes=5) == 1_000_000 * (12 * 3 + 4 * 3) + 5
    assert RunLimits() == RunLimits(None, math.inf, math.inf)  # no limit but the free memory and disk

"""The Distill tab's handlers without a browser: the runs table, the Stop button, the model lists, the settings."""
import os
import re
from dataclasses import fields

import pytest

from core.runs.store import RunPaths, list_runs, read_metrics, write_status
from train.config import DistillConfig
from train.launcher import RunLauncher, can_control
from ui import (
    distill_actions,
    distill_downloads,
    distill_form,
    distill_guesses,
    distill_runs,
    distill_settings,
    distill_start,
    distill_status,
    distill_tab,
)
from ui.context import AppContext
from ui.distill_runs import runs_table, student_label
from ui.distill_settings import RunSettings
from ui.distill_start import start_run_from_form
from ui.distill_status import stop_button
from ui.page_text import markdown_text


def test_the_student_column_marks_reduced_vocabulary_runs():
    assert student_label({"student_layers": 2}) == "2 L"
    assert student_label({"student_layers": None}) == "half"  # no teacher whose depth could be read
    assert student_label({"student_layers": 2, "student_vocab_size": 3000, "align": "reduce"}) == \
        "2 L · vocab 3,000 · reduce"
    assert student_label({"student_layers": 3, "student_vocab_size": 30000, "student_hidden": 264,
                          "align": "match"}) == "3 L · width 264 · vocab 30,000 · match"


def test_a_new_run_shows_its_teacher_and_layers_at_once(ctx):
    ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", student_layers=1, max_steps=10,
                                      student_vocab_size=3000))
    table, ids = runs_table(ctx, None)
    row = table.iloc[0].to_dict()
    assert (row["state"], row["teacher"], row["student"]) == ("queued", "bundled-teacher", "1 L · vocab 3,000 · reduce")
    assert list(table.columns)[-1] == "shared" and ids == [row["run"]]


def test_stop_is_active_only_while_the_chosen_run_is_queued_or_running(ctx):
    run_id = ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=10))
    assert stop_button(ctx, run_id, None).interactive is True
    ctx.launcher.stop(run_id)  # a queued run leaves the line at once
    assert stop_button(ctx, run_id, None).interactive is False
    assert stop_button(ctx, None, None).interactive is False


def test_model_choices_list_a_run_as_soon_as_it_has_a_student(ctx):
    paths = RunPaths(ctx.launcher.root / "20250101-120000-abcd")
    paths.root.mkdir()
    write_status(paths.root, state="running")
    assert "run:20250101-120000-abcd" not in ctx.model_choices()
    paths.final.mkdir()
    (paths.final / "config.json").write_text("{}")
    write_status(paths.root, state="finished")
    assert "run:20250101-120000-abcd" in ctx.model_choices()  # the same context: nothing kept between calls
    assert "run:20250101-120000-abcd" in distill_form.refresh_lists(ctx).choices[-1]


def test_start_run_parameters_are_the_settings_fields_and_all_optional():
    import inspect
    parameters = inspect.signature(start_run_from_form).parameters
    assert list(parameters)[1:] == ["owner", *[f.name for f in fields(RunSettings)]]
    assert all(p.default is None for name, p in parameters.items() if name != "ctx")


def test_left_out_settings_take_the_config_defaults_and_zero_stays_zero():
    cfg = RunSettings(alpha_att=0, student_layers=None).config("bundled-teacher")
    defaults = DistillConfig()
    assert (cfg.max_steps, cfg.batch_size, cfg.lr, cfg.losses.alpha_kl) == (defaults.max_steps, defaults.batch_size,
                                                                     defaults.lr, defaults.losses.alpha_kl)
    assert cfg.losses.alpha_att == 0 and cfg.student_layers is None
    assert RunSettings(student_vocab_size=3000).config("t").student_vocab_size is None  # the box is not ticked
    with pytest.raises(ValueError, match="Upload a .txt corpus first"):
        RunSettings(corpus_source=distill_settings.UPLOAD).uploaded_corpus()
    assert cfg.losses.kl_masked_only is False


def test_the_kl_term_can_read_masked_positions_only_as_the_bundled_student_did():
    cfg = RunSettings(kl_masked_only=True, temperature=1, alpha_mlm=0.5).config("bundled-teacher")
    assert cfg.losses.kl_masked_only and "KL at masked positions only" in distill_settings.settings_line(cfg)
    assert "masked" not in distill_settings.settings_line(RunSettings().config("bundled-teacher"))
    with pytest.raises(ValueError) as refused:  # the run's own check, in the form's words
        RunSettings(kl_masked_only=True, reduced_vocab=True, align="reduce").config("bundled-teacher")
    said = distill_settings.in_form_words(str(refused.value))
    assert "KL at masked positions only does not apply" in said and "--" not in said


def make_evaluated_run(root, run_id="20250101-120000-abcd", steps=(0,), owner=None, public=False,
                       probes=(("Будешь [MASK] с печеньем?", "чай"),)):
    """A run directory whose metrics and guesses hold evaluations at `steps` (step 0: no loss, as a run writes it),
    the guesses on `probes` ((sentence, expected word) pairs)."""
    import json

    from core.runs.guesses import Guess, append_guesses, guess_row
    paths = RunPaths(root / run_id)
    paths.root.mkdir()
    write_status(paths.root, state="running", step=max(steps), max_steps=100, owner=owner, public=public)
    paths.config.write_text(json.dumps({"teacher": "bundled-teacher", "max_steps": 100}))
    rows = [{"step": s, "eval_agreement": s / 100, "eval_mlm_acc": 0.1, "eval_teacher_mlm_acc": 0.3} if s == 0 else
            {"step": s, "loss": 5.0 - s / 100, "loss_kl": 1.0, "tokens_per_s": 900.0, "steps_per_s": 2.0,
             "eval_agreement": s / 100, "eval_mlm_acc": 0.1, "eval_teacher_mlm_acc": 0.3} for s in steps]
    paths.metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    teacher = [Guess(("чай", "кофе", "суп"), (0.5, 0.2, 0.1))] * len(probes)
    for s in steps:
        student = [Guess(("чай" if s >= 20 else "и", "сок", "в"), (0.3, 0.1, 0.05))] * len(probes)
        append_guesses(paths.root, guess_row(s, student, list(probes) if s == steps[0] else None,
                                             teacher if s == steps[0] else None))
    return paths


def test_a_run_with_only_step_0_evaluated_shows_its_curve_and_no_speed(ctx):
    from ui.distill_plots import eval_figure, loss_figure, progress_line
    paths = make_evaluated_run(ctx.launcher.root)
    records = read_metrics(paths.root)
    empty = loss_figure(records)  # no trained step yet: an empty panel that says so, no error, no fake axes
    assert not empty.data and "No loss logged yet" in empty.layout.annotations[0].text
    assert empty.layout.xaxis.visible is False and empty.layout.yaxis.visible is False
    evaluated = eval_figure(records)
    assert list(evaluated.data[0].x) == [0]
    # whole steps: ticks 0, 1 rather than plotly's -1, -0.5, 0, 0.5, 1 around a single point; the range reaches
    # half a step past it, so its marker is drawn whole and no tick is negative
    assert tuple(evaluated.layout.xaxis.range) == (-0.5, 0.5) and evaluated.layout.xaxis.dtick == 1
    one_step = loss_figure([{"step": 1, "loss": 3.0, "loss_kl": 2.0, "loss_mlm": 1.0}])
    assert [t.mode for t in one_step.data] == ["lines+markers"] * 3  # a single point, drawn as a marker
    line = progress_line({"id": "r", "state": "running", "step": 0, "max_steps": 100}, records)
    assert "tokens/s" not in line and "left" not in line and "agreement 0.0%" in line
    records.append({"step": 10, "loss": 4.0, "tokens_per_s": 800.0, "steps_per_s": 2.0})
    line = progress_line({"id": "r", "state": "running", "step": 10, "max_steps": 100}, records)
    assert "800 tokens/s" in line and "about 45 s left" in line
    assert list(loss_figure(records).data[0].x) == [10]


def test_the_guesses_follow_the_newest_step_unless_moved_back(ctx):
    from core.runs.guesses import SAME_MARK, append_guesses, guess_row
    from core.runs.guesses import Guess as G
    paths = make_evaluated_run(ctx.launcher.root, steps=(0, 20))
    table, slider, view = distill_guesses.run_guesses(ctx, paths.root.name, None)
    assert (slider.value, slider.maximum, view.newest) == (20, 20, 20)
    assert table.iloc[0]["student's top 3"].startswith(f"{SAME_MARK} ") and table.iloc[0]["expected"] == "чай"
    table, slider, view = distill_guesses.run_guesses(ctx, paths.root.name, None, 7, view)  # the person moved it back
    student = table.iloc[0]["student's top 3"]
    assert slider.value == 0 and SAME_MARK not in student and "и\u00a030%" in student
    append_guesses(paths.root, guess_row(40, [G(("чай",), (0.9,))]))
    _, slider, view = distill_guesses.run_guesses(ctx, paths.root.name, None, 0, view)
    assert (slider.value, slider.maximum) == (0, 40)  # stays where it was put
    _, slider, view = distill_guesses.run_guesses(ctx, paths.root.name, None, 40, view)
    append_guesses(paths.root, guess_row(60, [G(("чай",), (0.9,))]))
    _, slider, _ = distill_guesses.run_guesses(ctx, paths.root.name, None, 40, view)
    assert slider.value == 60  # left on the newest: follows the run
    table, slider, view = distill_guesses.run_guesses(ctx, None, None)
    assert table.empty and view.run_id is None


def test_downloads_serve_the_chosen_visible_run_only(runs_dir, tmp_path):
    import tempfile
    shared = AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(runs_dir, shared=True))
    paths = make_evaluated_run(runs_dir, steps=(0, 20), owner="alice")
    path = distill_downloads.metrics_csv(shared, paths.root.name, "alice")
    assert path.startswith(tempfile.gettempdir()) and path.endswith(f"{paths.root.name}-metrics.csv")
    assert open(path, encoding="utf-8").read().splitlines()[0].startswith("step,")
    for handler_fn in (distill_downloads.metrics_csv, distill_downloads.student_zip):
        with pytest.raises(ValueError, match="among the runs you can see") as error:
            handler_fn(shared, paths.root.name, "bob")
        assert str(runs_dir) not in str(error.value)
        with pytest.raises(ValueError, match="Choose a run"):
            handler_fn(shared, None, "alice")
    with pytest.raises(ValueError, match="among the runs you can see"):
        distill_guesses.run_guesses(shared, paths.root.name, "bob")
    with pytest.raises(ValueError, match="was stopped before saving its first checkpoint, so it has no student"):
        distill_downloads.student_zip(shared, paths.root.name, "alice")  # its process is gone: it will save none


def test_the_tab_keeps_its_api_names_and_adds_the_guesses_and_downloads(ctx):
    import gradio as gr
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    names = {d.api_name for d in demo.fns.values() if d.api_name and d.api_visibility == "public"}
    assert {"start_run", "run_status", "stop_run", "resume_run", "delete_run", "share_run", "run_guesses",
            "run_metrics_csv", "run_student_zip"} <= names
    status = next(d for d in demo.fns.values() if d.api_name == "run_status")
    assert len(status.outputs) == 7  # /run_status's outputs unchanged


def test_before_any_run_both_panels_say_no_run_yet_without_axes(ctx):
    from ui.distill_plots import eval_figure, loss_figure
    *_, losses, evaluations, console, shared = distill_status.show_run(ctx, None, None)
    for figure in (losses, evaluations, loss_figure([], run_chosen=False), eval_figure([], run_chosen=False)):
        assert not figure.data
        assert [a.text for a in figure.layout.annotations] == ["No run yet: choose a run or start one."]
        assert figure.layout.xaxis.visible is False and figure.layout.yaxis.visible is False
        assert "xaxis2" not in figure.to_dict()["layout"]  # one panel, not the loss figure's two empty subplots


def make_finished_run(root, student_dir, run_id="20250102-120000-abcd", owner=None):
    """make_evaluated_run's records, finished, with the tiny student as its final model."""
    import shutil
    paths = make_evaluated_run(root, run_id, steps=(0, 20), owner=owner)
    shutil.copytree(student_dir, paths.final)
    write_status(paths.root, state="finished", step=20)
    return paths


@pytest.fixture
def hub_uploads(monkeypatch):
    """HfApi's create_repo and upload_folder stood in for; each upload's file names are recorded."""
    from pathlib import Path

    from huggingface_hub import HfApi
    uploads = []
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **_: f"https://huggingface.co/{repo_id}")
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, *, repo_id, folder_path, **_: uploads.append(
        (repo_id, sorted(p.name for p in Path(folder_path).iterdir()))))
    return uploads


def test_publish_pushes_the_chosen_finished_run_with_the_apps_token(ctx, tiny_student_dir, hub_uploads,
                                                                     monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    paths = make_finished_run(ctx.launcher.root, tiny_student_dir)
    line = distill_downloads.publish_run(ctx, paths.root.name, None, " someone/tiny ", False)
    assert line == markdown_text(f"Published run {paths.root.name} to https://huggingface.co/someone/tiny")
    [(repo_id, files)] = hub_uploads
    assert repo_id == "someone/tiny" and {"README.md", "model.safetensors", "config.json"} <= set(files)


def test_publish_refuses_in_one_sentence_without_server_paths(ctx, tiny_student_dir, hub_uploads, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    root = ctx.launcher.root
    finished = make_finished_run(root, tiny_student_dir)
    stopped = make_evaluated_run(root, "20250103-120000-abcd", steps=(0, 20))
    (stopped.root / "checkpoints").mkdir()
    (stopped.root / "checkpoints" / "step-000020.pt").write_bytes(b"")  # its process gone: stopped, not running
    cases = [((stopped.root.name, None, "someone/tiny"),
              "has no checkpoint that can be read: step-000020.pt is empty (0 bytes). No earlier checkpoint can be "
              "used."),
             ((finished.root.name, None, "tiny"), "is not of the form owner/name"),
             ((None, None, "someone/tiny"), "Choose a run")]
    for inputs, says in cases:
        with pytest.raises(ValueError) as error:
            distill_downloads.publish_run(ctx, *inputs)
        assert says in str(error.value) and str(root) not in str(error.value)
    monkeypatch.delenv("HF_TOKEN")
    with pytest.raises(ValueError, match="set HF_TOKEN"):
        distill_downloads.publish_run(ctx, finished.root.name, None, "someone/tiny")
    assert hub_uploads == []


def test_a_shared_app_neither_shows_nor_runs_publishing(runs_dir, tiny_student_dir, hub_uploads, monkeypatch):
    import gradio as gr
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    shared = AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(runs_dir, shared=True))
    finished = make_finished_run(runs_dir, tiny_student_dir, owner="alice")
    with pytest.raises(ValueError, match="turned off on a shared app"):
        distill_downloads.publish_run(shared, finished.root.name, "alice", "alice/tiny")
    with gr.Blocks() as demo:
        distill_tab.build(shared)
    assert "publish_run" not in {d.api_name for d in demo.fns.values()}
    assert hub_uploads == []


@pytest.mark.parametrize("token", ["", "hf_test"])
def test_the_publish_control_is_there_only_with_a_token(ctx, monkeypatch, token):
    import gradio as gr
    monkeypatch.setenv("HF_TOKEN", token)
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    names = {d.api_name for d in demo.fns.values() if d.api_name and d.api_visibility == "public"}
    assert ("publish_run" in names) == bool(token)


@pytest.mark.parametrize("form, sentence", [
    ({"steps": "ten"}, "Steps must be a whole number from 1 to 10,000,000; got 'ten'."),
    ({"steps": float("inf")}, "Steps must be a whole number from 1 to 10,000,000; got inf."),
    ({"batch_size": 1e9}, "Batch size must be a whole number from 1 to 100,000; got 1,000,000,000."),
    ({"temperature": "x"}, "The temperature must be a finite number; got 'x'."),
    ({"alpha_kl": float("nan")}, "The loss weight alpha_kl must be a finite number; got nan."),  # the run's words
    ({"student_layers": "abc"}, "Student layers must be a whole number from 1 to 4 (bundled-teacher has 4 layers); "
                                "got 'abc'."),
])
def test_run_settings_of_the_wrong_kind_are_refused_with_a_sentence(form, sentence):
    from ui.distill_settings import RunSettings
    with pytest.raises(ValueError) as refused:
        RunSettings(**form).config("bundled-teacher")
    assert str(refused.value) == sentence


def test_run_settings_typed_as_text_are_read_as_numbers():
    from ui.distill_settings import RunSettings
    cfg = RunSettings(steps="20", batch_size=" 8 ", temperature="1.5").config("bundled-teacher")
    assert (cfg.max_steps, cfg.batch_size, cfg.losses.temperature) == (20, 8, 1.5)


def test_the_status_line_says_how_many_metrics_lines_were_skipped(ctx):
    paths = make_evaluated_run(ctx.launcher.root, steps=(0, 10))
    with open(paths.metrics, "a", encoding="utf-8") as metrics:
        metrics.write('5\n[1, 2]\n{"step": 12, "loss": "high"}\n')
    line = distill_status.show_run(ctx, paths.root.name, None)[2]
    assert line.endswith("  \n3 lines of metrics.jsonl are not records (JSON objects with a step) and were skipped.")
    paths.metrics.write_text(paths.metrics.read_text().split("5\n")[0])
    assert "skipped" not in distill_status.show_run(ctx, paths.root.name, None)[2]


@pytest.mark.parametrize("owner", [{"x": 1}, 7, "x" * 100_000, "", "a\nb"])
def test_an_owner_that_is_not_a_short_text_is_refused_by_every_handler(ctx, owner):
    import gradio as gr
    for fn, args in [(distill_actions.stop_run, ("some-run", owner)), (distill_status.show_run, ("some-run", owner)),
                     (start_run_from_form, (owner,))]:
        with pytest.raises(gr.Error) as refused:
            distill_tab.handler(fn, ctx)(*args)
        assert "The owner must be the id this app gave your browser" in str(refused.value)
        assert len(str(refused.value)) < 200  # never the value echoed back
    assert not any(ctx.launcher.root.iterdir())  # nothing was started


def test_the_start_message_says_the_settings_an_empty_box_took(ctx, monkeypatch):
    said = []
    monkeypatch.setattr(distill_start.gr, "Info", said.append)
    start_run_from_form(ctx, None, teacher="bundled-teacher", steps=None, batch_size=8, learning_rate=None)
    assert "300 steps of 8 lines of up to 128 tokens, learning rate 0.0005, T 2." in said[0]
    start_run_from_form(ctx, None, teacher="bundled-teacher", steps=1, batch_size=1, learning_rate=None)
    assert "1 step of 1 line of up to 128 tokens" in said[1]


@pytest.mark.parametrize("value, shown", [(2.5, 2.5), (3.0, 3), ("x", "x"), (None, None)])
def test_a_whole_number_box_passes_a_fraction_on_to_be_refused(value, shown):
    from ui.components import CheckedNumber
    from ui.input_checks import whole_number
    box = CheckedNumber(1, precision=0)
    assert box.preprocess(value) == shown
    if value == 2.5:
        with pytest.raises(ValueError, match="Steps must be a whole number"):
            whole_number(box.preprocess(value), "Steps", 1, 10)


@pytest.mark.parametrize("up_to, step", [("abc", None), (-5, None), (None, "abc")])
def test_resume_and_guesses_answer_text_where_a_step_belongs_in_a_sentence(ctx, up_to, step):
    with pytest.raises(ValueError, match="must be a (whole|finite) number"):
        if up_to is not None:
            distill_actions.resume_run(ctx, "some-run", None, up_to)
        else:
            distill_guesses.run_guesses(ctx, "some-run", None, step)


def test_choices_outside_the_radios_get_the_tabs_own_sentences(ctx):
    with pytest.raises(ValueError) as refused:
        RunSettings(corpus_source="/etc/passwd").uploaded_corpus()
    assert str(refused.value) == "Corpus must be 'bundled corpus' or 'upload a .txt'; got '/etc/passwd'."
    with pytest.raises(ValueError, match="Logit alignment must be one of"):
        distill_start.start_run(ctx, None, RunSettings(teacher="bundled-teacher", align="sideways"))
    ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", student_layers=1, max_steps=10))
    run_id = runs_table(ctx, None)[1][0]
    with pytest.raises(ValueError, match="Choose the format to export to: onnx or openvino, not 'tflite'."):
        distill_downloads.export_run(ctx, run_id, None, "tflite")
    import gradio as gr
    with gr.Blocks():
        form = distill_form.settings_form(ctx)
    for name in ("corpus_source", "align"):
        assert form[name].preprocess("/etc/passwd") == "/etc/passwd"  # reaches the check above, not Gradio's


@pytest.mark.parametrize("position, busy, said", [
    (0, True, "Run r is starting. 300 steps. It should take about 2 min 00 s."),
    (1, False, "Run r is starting. 300 steps. It should take about 2 min 00 s."),
    (1, True, "Run r is in line (place 1): it starts when the run in progress finishes. 300 steps. Once started, it "
              "should take about 2 min 00 s."),
    (2, False, "Run r is in line (place 2): it starts when the run queued before it has run."),
    (4, True, "Run r is in line (place 4): it starts when the 3 runs queued before it have run.")])
def test_a_run_that_waits_is_announced_in_line_not_starting(position, busy, said):
    assert distill_start.start_notice("r", position, busy, 120, "300 steps").startswith(said)


@pytest.mark.parametrize("shared, said", [(True, "Let everyone on this app see it"),
                                          (False, "every page already sees")])
def test_the_share_box_says_what_sharing_does_where_the_app_runs(runs_dir, shared, said):
    import gradio as gr
    with gr.Blocks():
        form = distill_form.settings_form(AppContext("bundled-teacher", "bundled-student",
                                                    launcher=RunLauncher(runs_dir, shared=shared)))
    assert said in form["share"].info


def pdf_named_txt(folder, name="notes.txt"):
    """A PDF document renamed to .txt, as a person might upload it."""
    path = folder / name
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + bytes(range(256)) * 8)
    return path


def test_a_pdf_named_txt_is_refused_under_the_corpus_box_as_it_is_uploaded(ctx, tmp_path):
    """The corpus box tells a file that is not text as it arrives, in the sentence Start run refuses it with."""
    import gradio as gr

    upload = pdf_named_txt(tmp_path)
    with pytest.raises(ValueError) as refused:  # the later check stays
        start_run_from_form(ctx, None, teacher="bundled-teacher", corpus_source=distill_settings.UPLOAD,
                            corpus_file=str(upload))
    assert "'notes.txt' is a PDF document, not plain text" in str(refused.value)
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    box = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "distill-corpus-file")
    note = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "distill-corpus-note")
    uploaded = [d for d in demo.fns.values() if (box._id, "change") in d.targets]
    assert [[o._id for o in d.outputs] for d in uploaded] == [[note._id]]
    assert uploaded[0].fn(str(upload)) == markdown_text(str(refused.value))
    good = tmp_path / "corpus.txt"
    good.write_text("Привет, как дела?\n\nВсё хорошо.\n", encoding="utf-8")
    assert uploaded[0].fn(str(good)) == "'corpus.txt': 2 samples, one a line."
    assert uploaded[0].fn(None) == ""  # the box cleared: nothing is said
    source = [d for d in demo.fns.values() if (form_source_id(demo), "change") in d.targets][0]
    assert [u.visible for u in source.fn(distill_settings.UPLOAD)] == [True, True]
    assert [u.visible for u in source.fn(distill_settings.BUNDLED)] == [False, False]


def form_source_id(demo) -> int:
    return next(b._id for b in demo.blocks.values() if getattr(b, "label", None) == "Corpus")


def test_on_a_private_app_every_run_is_the_persons_own_whatever_page_started_it(runs_dir):
    """A browser's id does not outlive the app that gave it, and the command line gives none: on the person's own
    machine every run is still theirs. On a shared app visitors see their own runs and shared ones only."""
    earlier = make_evaluated_run(runs_dir, "20250101-120000-aaaa", owner="earlier-page").root.name
    command_line = make_evaluated_run(runs_dir, "20250101-120001-bbbb", owner=None).root.name
    mine = make_evaluated_run(runs_dir, "20250101-120002-cccc", owner="this-page").root.name
    shared = make_evaluated_run(runs_dir, "20250101-120003-dddd", owner="someone", public=True).root.name
    private = AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(runs_dir))
    table, ids = runs_table(private, "this-page")
    assert set(ids) == {earlier, command_line, mine, shared}
    assert dict(zip(table["run"], table["owner"])) == dict.fromkeys(ids, "you")
    infos = {info["id"]: info for info in list_runs(runs_dir)}
    assert all(can_control(info, "this-page", private.launcher.shared) for info in infos.values())
    space = AppContext("bundled-teacher", "bundled-student", on_space=True, launcher=RunLauncher(runs_dir, shared=True))
    table, ids = runs_table(space, "this-page")
    assert dict(zip(table["run"], table["owner"])) == {mine: "you", shared: "other"}
    assert [i for i, info in infos.items() if can_control(info, "this-page", space.launcher.shared)] == [mine]
    with pytest.raises(ValueError, match="belongs to another session"):
        space.launcher.delete(shared, "this-page")


def test_delete_names_the_run_it_asks_about_and_needs_a_chosen_run():
    hidden, confirm, keep = distill_actions.ask_delete("20250101-120000-abcd")
    assert (hidden.visible, confirm.value, confirm.visible, keep.visible) == \
        (False, "Delete 20250101-120000-abcd for good", True, True)
    with pytest.raises(ValueError, match=re.escape(distill_runs.NO_RUN_CHOSEN)):
        distill_actions.ask_delete(None)
    assert [b.visible for b in distill_actions.keep_run()] == [True, False, False]


def made_run(root, run_id: str, created: float, state: str, owner: str | None = None, public: bool = False) -> str:
    """A run folder with only its status: enough for list_runs and the runs table. A running run's process is this
    one (a run whose process is gone reads as stopped)."""
    (root / run_id).mkdir()
    write_status(root / run_id, state=state, step=1, max_steps=10, owner=owner, public=public, created=created,
                 pid=os.getpid())
    return run_id


def test_a_page_opens_on_its_visitors_training_run_else_their_newest_never_anothers(runs_dir):
    older_training = made_run(runs_dir, "20250101-120000-aaaa", 1.0, "running", owner="alice")
    newest_of_alice = made_run(runs_dir, "20250101-120001-bbbb", 2.0, "stopped", owner="alice")
    made_run(runs_dir, "20250101-120002-cccc", 3.0, "running", owner="bob", public=True)  # shared, seen by alice
    made_run(runs_dir, "20250101-120003-dddd", 4.0, "running", owner=None)  # the command line's
    space = AppContext("bundled-teacher", "bundled-student", on_space=True, launcher=RunLauncher(runs_dir, shared=True))
    assert distill_runs.run_to_open(space, "alice") == older_training  # training beats newer
    opened, *_ = distill_status.open_run(space, "alice")
    assert opened.value == older_training
    assert {choice[0] for choice in opened.choices} == {older_training, newest_of_alice, "20250101-120002-cccc"}
    write_status(runs_dir / older_training, state="stopped")
    assert distill_runs.run_to_open(space, "alice") == newest_of_alice
    for stranger in ("carol", None):  # bob's shared run is listed for them, but is not theirs to open on
        assert distill_runs.run_to_open(space, stranger) is None
        assert distill_status.open_run(space, stranger)[0].value is None
    assert distill_runs.run_to_open(space, "bob") == "20250101-120002-cccc"
    private = AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(runs_dir))
    assert distill_runs.run_to_open(private, None) == "20250101-120003-dddd"  # every run is the person's own here


def test_the_page_load_chooses_the_run_and_the_choice_draws_it(runs_dir):
    import gradio as gr
    mine = make_evaluated_run(runs_dir, "20250101-120000-abcd", steps=(0, 20), owner="alice").root.name
    write_status(runs_dir / mine, pid=os.getpid())  # still training: its process is this one
    space = AppContext("bundled-teacher", "bundled-student", on_space=True, launcher=RunLauncher(runs_dir, shared=True))
    with gr.Blocks() as demo:
        parts = distill_tab.build(space)
    selected = parts["selected"]
    assert selected.value is None  # nobody's run before the page says whose it is
    load, inputs, outputs = parts["load"]  # what the app runs as the page loads
    assert outputs[0] is selected and len(inputs) == 1
    opened, table, slider, view = load("alice")
    # the guesses at the newest step come with the choice: no refresh can take the empty slider for a step chosen
    assert (opened.value, slider.value, view) == (mine, 20, distill_guesses.GuessView(mine, 20)) and not table.empty
    drawn = [d for d in demo.fns.values() if (selected._id, "change") in d.targets and parts["status"] in d.outputs]
    assert len(drawn) == 1  # a value set by the load is drawn as a person's choice is
    line = drawn[0].fn(mine, "alice", "")[2]
    assert mine in line and "step 20" in line


def test_the_export_shows_its_work_under_its_button_not_on_the_file_box(ctx):
    import gradio as gr
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    by_id = {getattr(b, "elem_id", None): b for b in demo.blocks.values()}
    line, box, button = by_id["distill-exported"], by_id["distill-export-file"], by_id["distill-export"]
    assert box.label == "Exported student (zip)"  # a box of its own: the downloads keep theirs
    export = next(d for d in demo.fns.values() if d.api_name == "export_run")
    assert export.outputs == [line, box] and list(export.show_progress_on) == [line]
    pressed = next(d for d in demo.fns.values() if (button._id, "click") in d.targets)
    assert pressed.outputs == [line]  # the line says what is done at once, then carries the export's progress
    assert pressed.fn("20250101-120000-abcd", "onnx", True) == (
        "Exporting run 20250101-120000-abcd for ONNX Runtime with int8 weights: converting its student, then "
        "measuring its size, speed and agreement …")
    assert pressed.fn(None, "onnx", False) == ""  # no run: the export's own sentence says so
    failed = next(d for d in demo.fns.values() if d.outputs == [line, box] and d is not export)
    with pytest.raises(gr.Error, match="is stopped, not finished"):  # its process is gone
        export.fn(make_evaluated_run(ctx.launcher.root).root.name, None, "onnx", False)
    said, file = failed.fn("20250101-120000-abcd", None, "onnx", False)
    assert said.startswith("**Export failed:** Run 20250101-") and file is None  # no earlier export offered as this


def test_an_alignment_left_in_the_hidden_radio_is_not_sent_with_a_shared_vocabulary():
    """The command line refuses --align for a student sharing the teacher's vocabulary; the form sends the default."""
    assert RunSettings(align="match").config("bundled-teacher").align == DistillConfig().align
    assert RunSettings(align="match", reduced_vocab=True).config("bundled-teacher").align == "match"


# -- the teacher and the student's depth

@pytest.mark.parametrize("teacher, layers", [("bundled-teacher", 4), ("rubert-base-cased-conversational", 12)])
def test_student_layers_out_of_the_teachers_range_are_refused_naming_it(ctx, teacher, layers):
    """A slider moved 0 to 1 and 99 to the first teacher's 4 without a word, while the refusal said 1 to 48; the box
    sends what was typed, and the line under it and Start run name the chosen teacher's range (a DeepPavlov teacher
    not downloaded is read from its architecture)."""
    import gradio as gr
    with gr.Blocks():
        form = distill_form.settings_form(ctx)
    box = form["student_layers"]
    assert box.get_block_name() == "number" and box.value == 2  # half the default teacher's 4
    assert box.info == distill_settings.layers_info("bundled-teacher")
    assert "1 to 4: bundled-teacher has 4 layers" in box.info
    said = f"Student layers must be a whole number from 1 to {layers} ({teacher} has {layers} layers); got {{}}."
    for typed in (0, layers + 1, 99):
        assert box.preprocess(typed) == typed  # what reaches the check, never moved into a range
        with pytest.raises(ValueError) as refused:
            RunSettings(student_layers=typed).config(teacher)
        assert str(refused.value) == said.format(typed)
        assert distill_form.layers_typed(ctx, teacher, typed).info == said.format(typed)
    assert RunSettings(student_layers=layers).config(teacher).student_layers == layers
    chosen, note = distill_form.teacher_changed(ctx, teacher)
    assert chosen.value == layers // 2 and chosen.info.startswith(f"1 to {layers}: {teacher} has {layers} layers.")


def test_a_teacher_that_cannot_be_used_is_told_under_its_box_not_in_a_notice(ctx, monkeypatch):
    """The teacher's change raised (a blank box) or warned (a Hub model out of reach), and Start run refused it
    again: two notices of one refusal. The change now writes the sentence under the teacher box; Start run's refusal
    is the only notice."""
    import gradio as gr
    notices = []
    for kind in ("Info", "Warning"):
        monkeypatch.setattr(gr, kind, lambda message, *a, kind=kind, **k: notices.append((kind, message)))
    monkeypatch.setattr(distill_settings.zoo, "hub_reachable", lambda: False)
    changed = distill_tab.handler(distill_form.teacher_changed, ctx)
    start = distill_tab.handler(distill_start.start_run_from_form, ctx)
    for teacher, sentence in [
            ("", "Choose a model, such as bundled-teacher or bundled-student, or another from the list."),
            ("DeepPavlov/some-model", "'DeepPavlov/some-model' is on the Hugging Face Hub, which this machine cannot "
                                      "reach, and it is not cached: choose bundled-teacher / bundled-student, or a "
                                      "run's student.")]:
        box, note = changed(teacher)  # no notice, no error
        assert note.visible and note.value == markdown_text(sentence) and box.value is None
        with pytest.raises(gr.Error) as started:
            start(None, teacher=teacher)
        assert started.value.message == sentence
    assert notices == []
    box, note = changed("bundled-teacher")
    assert note.visible is False and box.value == 2

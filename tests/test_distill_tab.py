"""The Distill tab's handlers without a browser: the runs table, the Stop button, the model lists, the settings."""
from dataclasses import fields

import pytest

from core.runs.store import RunPaths, write_status
from train.config import DistillConfig
from train.launcher import RunLauncher
from ui import distill_tab
from ui.context import AppContext
from ui.distill_tab import RunSettings, runs_table, start_run_from_form, stop_button, student_label

pytestmark = pytest.mark.unit


@pytest.fixture
def ctx(runs_dir):
    """An app context over a private runs folder whose launcher is never started: submitted runs stay queued."""
    return AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(runs_dir))


def test_the_student_column_marks_reduced_vocabulary_runs():
    assert student_label({"student_layers": 2}) == "2 L"
    assert student_label({"student_layers": None}) == "half"
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
    assert "run:20250101-120000-abcd" in distill_tab.refresh_lists(ctx).choices[-1]


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
        RunSettings(corpus_source=distill_tab.UPLOAD).uploaded_corpus()

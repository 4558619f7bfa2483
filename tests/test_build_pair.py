"""scripts.build_bundled_pair: its recipes are options the two trainers accept, each stage resumes where it stopped,
and the finished pair is installed as the app loads it."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForMaskedLM

from core.paths import ASSETS
from scripts import build_bundled_pair as build
from scripts import export_student
from train import cli, pretrain_teacher


def test_the_recipes_are_what_the_trainers_accept(tmp_path):
    teacher = pretrain_teacher.parse_args(build.teacher_command(tmp_path, None)[3:])
    assert pretrain_teacher.check_args(teacher) is None
    assert (teacher.layers, teacher.hidden, teacher.vocab_size, teacher.init_embeddings, teacher.resume) == \
        (4, 300, 30000, "navec", True)
    assert teacher.contrastive_weight == 1 and str(teacher.output_dir) == str(tmp_path / "teacher")
    cfg, resume = cli.parse_args(build.student_command(tmp_path)[3:])
    assert not resume and cfg.student_layers == 2 and cfg.losses.kl_masked_only and cfg.losses.temperature == 1
    assert cfg.teacher == str(tmp_path / "teacher")
    assert "--tokenizer" in build.teacher_command(tmp_path, ASSETS / "models" / "teacher")


def test_a_started_student_is_resumed_and_a_finished_one_left_alone(tmp_path):
    run = tmp_path / "student"
    (run / "final").mkdir(parents=True)
    (run / "config.json").write_text("{}", encoding="utf-8")
    assert build.student_command(tmp_path)[3:] == ["--resume", str(run)]
    (run / "final" / "config.json").write_text("{}", encoding="utf-8")
    assert build.student_command(tmp_path) is None


@pytest.mark.slow
def test_the_finished_pair_is_installed_as_the_app_loads_it(tmp_path, tiny_teacher_dir, tiny_student_dir):
    work, into = tmp_path / "work", tmp_path / "models"
    shutil.copytree(tiny_teacher_dir, work / "teacher")
    (work / "teacher" / "pretraining.json").write_text(json.dumps({"log": []}), encoding="utf-8")
    shutil.copytree(tiny_student_dir, work / "student" / "final")
    (work / "student" / "config.json").write_text("{}", encoding="utf-8")
    (work / "student" / "metrics.jsonl").write_text("", encoding="utf-8")
    build.install(work, into)
    assert sorted(p.name for p in (into / "teacher").iterdir()) == sorted(build.TEACHER_FILES)
    student = AutoModelForMaskedLM.from_pretrained(into / "student")
    assert student.dtype == torch.float16 and (into / "student" / "distill_config.json").is_file()


def test_the_assets_readme_shows_the_recipes():
    text = " ".join((ASSETS / "README.md").read_text(encoding="utf-8").replace("\\\n", " ").split())
    for recipe in (build.TEACHER_RECIPE, build.STUDENT_RECIPE):
        assert " ".join(recipe) in text


def student_run(tmp_path, student_dir):
    run = tmp_path / "run"
    shutil.copytree(student_dir, run / "final")
    (run / "config.json").write_text("{}", encoding="utf-8")
    (run / "metrics.jsonl").write_text("", encoding="utf-8")
    return run


def test_an_earlier_export_is_replaced_whole(tmp_path, tiny_student_dir):
    run, out = student_run(tmp_path, tiny_student_dir), tmp_path / "out"
    assert export_student.main([str(run), str(out)]) == 0
    (out / "README.md").write_text("an earlier card", encoding="utf-8")
    assert export_student.main([str(run), str(out)]) == 0
    assert not (out / "README.md").exists() and AutoModelForMaskedLM.from_pretrained(out).dtype == torch.float16
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".partial")]


def test_export_student_takes_a_run_id_as_train_publish_does(runs_dir, tmp_path, tiny_student_dir):
    run = student_run(tmp_path, tiny_student_dir)
    shutil.move(run, runs_dir / "20250101-120000-abcd")
    assert export_student.main(["20250101-120000-abcd", str(tmp_path / "out")]) == 0
    assert AutoModelForMaskedLM.from_pretrained(tmp_path / "out").dtype == torch.float16


@pytest.mark.parametrize("case, says", [
    ("no-run", "does not exist; give a run's folder"),
    ("run-is-file", "is a file, not a folder; give a run's folder"),
    ("not-a-run", "is not a distillation run's folder (it has no config.json)"),
    ("unfinished", "has no finished student (final/)"),
    ("out-is-file", "is a file; give a new or empty folder, or an earlier export to replace it."),
    ("out-holds-other-files", "already holds other files and is not an earlier export; give a new or empty folder"),
    ("cannot-make", "cannot be made: the folder '/proc'"),
])
def test_export_student_refuses_in_one_line_and_touches_nothing(case, says, tmp_path, tiny_student_dir, capsys):
    run, out = student_run(tmp_path, tiny_student_dir), tmp_path / "out"
    if case == "no-run":
        run = tmp_path / "nothere"
    elif case == "run-is-file":
        run = tmp_path / "run.txt"
        run.write_text("mine", encoding="utf-8")
    elif case == "not-a-run":
        run = tmp_path / "photos"
        run.mkdir()
        (run / "photo.jpg").write_bytes(b"\xff\xd8")
    elif case == "unfinished":
        shutil.rmtree(run / "final")
    elif case == "out-is-file":
        out.write_text("mine", encoding="utf-8")
    elif case == "out-holds-other-files":
        out.mkdir()
        (out / "notes.txt").write_text("mine", encoding="utf-8")
    elif case == "cannot-make":
        out = Path("/proc/x")
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    assert export_student.main([str(run), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and says in err and err.count("\n") == 1, err
    assert sorted(str(p) for p in tmp_path.rglob("*")) == before

"""Shared fixtures: tiny random BERT/DistilBERT models and a tokenizer, built offline from the bundled corpus."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest

from core.models.student import StudentSpec, make_student
from core.models.tokenizer import train_wordpiece
from tests.support.models import corpus_lines, tiny_bert

KINDS = ("slow", "cli", "app", "browser")  # pyproject.toml says what each holds


@pytest.hookimpl(tryfirst=True)  # before pytest's own hook deselects by -m
def pytest_collection_modifyitems(items):
    """Each test is of one kind, so that `-m unit` and the others split the suite: a test marked with none of KINDS is
    a unit test (in-process, tiny models, a second or less), and one marked with two is refused."""
    for item in items:
        kinds = {mark.name for mark in item.iter_markers() if mark.name in KINDS}
        if len(kinds) > 1:
            raise pytest.UsageError(f"{item.nodeid} is marked {' and '.join(sorted(kinds))}: mark it one kind")
        if not kinds:
            item.add_marker(pytest.mark.unit)

@pytest.fixture(scope="session")
def tiny_tokenizer():
    return train_wordpiece(corpus_lines(), vocab_size=800)


@pytest.fixture(scope="session")
def tiny_teacher_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A 4-layer, 32-wide random BERT masked LM with its tokenizer, saved as a Hugging Face model folder."""
    path = tmp_path_factory.mktemp("tiny-teacher")
    tiny_bert(len(tiny_tokenizer)).save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_student_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A 2-layer DistilBERT student made from the tiny teacher (as DeepPavlov's students are DistilBERT)."""
    path = tmp_path_factory.mktemp("tiny-student")
    student = make_student(tiny_bert(len(tiny_tokenizer)), StudentSpec(num_layers=2, model_type="distilbert"))
    student.save_pretrained(path)
    tiny_tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(corpus_lines(400)) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def runs_dir(tmp_path, monkeypatch) -> Path:
    """A private runs folder for one test (the app and the CLI find runs through RUDISTIL_RUNS_DIR)."""
    path = tmp_path / "runs"
    path.mkdir()
    monkeypatch.setenv("RUDISTIL_RUNS_DIR", str(path))
    return path


@pytest.fixture
def ctx(runs_dir, monkeypatch):
    """An app context over a private runs folder whose launcher never starts a process: runs submitted stay queued.
    (A test module with a context of its own defines its own `ctx`.)"""
    from train.launcher import RunLauncher
    from ui.context import AppContext

    context = AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(runs_dir))
    monkeypatch.setattr(context.launcher, "start", lambda: context.launcher)
    return context


@pytest.fixture(scope="session")
def bundled_teacher():
    """The lab's own tiny Russian BERT teacher (assets/models/teacher), loaded as the app loads it."""
    from core.models import zoo
    return zoo.load("bundled-teacher")

"""Shared fixtures: tiny random BERT/DistilBERT models and a tokenizer, built offline from the bundled corpus."""
from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never touch the network
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path

import pytest
import torch
from transformers import BertConfig, BertForMaskedLM

from core.models.student import StudentSpec, make_student
from core.models.tokenizer import train_wordpiece
from core.paths import ASSETS

REPO = Path(__file__).resolve().parents[1]


def corpus_lines(n: int = 3000) -> list[str]:
    return (ASSETS / "corpus" / "train.txt").read_text(encoding="utf-8").splitlines()[:n]


@pytest.fixture(scope="session")
def tiny_tokenizer():
    return train_wordpiece(corpus_lines(), vocab_size=800)


def tiny_bert(vocab_size: int, layers: int = 4, hidden: int = 32, seed: int = 0) -> BertForMaskedLM:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=4,
                        intermediate_size=hidden * 2, max_position_embeddings=128)
    return BertForMaskedLM(config).eval()


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


@pytest.fixture(scope="session")
def bundled_teacher():
    """The lab's own tiny Russian BERT teacher (assets/models/teacher), loaded as the app loads it."""
    from core.models import zoo
    return zoo.load("bundled-teacher")

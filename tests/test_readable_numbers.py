"""The numbers in the sentences of the command lines and the engine, as a person reads them: thousands separated
(1,000,000,000, not 1000000000 or 1e+09); and a few real command lines that refuse such a number before any model
loads (exit code 2, one line)."""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from core.compare.sentences import MAX_SENTENCES, read_sentence_file
from core.distill.data import read_corpus
from core.distill.losses import LossWeights
from core.models import zoo
from core.models.student import check_init_layers, student_config
from core.runs.checkpoints import disk_full_message
from core.textfiles import decode_utf8
from tests.support.models import REPO
from train.config import DistillConfig
from train.export import agreement_note
from train.preflight import check_against_teacher
from train.setup import check_batches

TEACHER = "rubert-base-cased-conversational"  # an architecture: 12 layers, 768 wide, 512 positions


@pytest.mark.parametrize("changes, sentence", [
    (dict(seed=99_999_999_999), "--seed must be a whole number from 0 to 4,294,967,295; got 99,999,999,999."),
    (dict(max_length=100_000), "--max-length must be between 8 and 4,096 tokens; got 100,000."),
    (dict(eval_every=1500, log_every=1000),
     "--eval-every (1,500) must be a multiple of --log-every (1,000), so evaluations land on logged steps; add "
     "--log-every 500, or use --eval-every 2,000."),
    (dict(eval_every=5, log_every=10),  # a short run's evaluations, the logging left at its default
     "--eval-every (5) must be a multiple of --log-every (10), so evaluations land on logged steps; add --log-every "
     "5, or use --eval-every 10."),
    (dict(num_proc=100_000), "--num-proc must be from 1 to 256; got 100,000."),
    (dict(student_layers=-5000), "--student-layers must be at least 1; got -5,000."),
    (dict(save_every=-1000), "--save-every must be a whole number of at least 1; got -1,000."),
    (dict(student_vocab_size=2000, student_hidden=-1000), "--student-hidden must be at least 8; got -1,000."),
])
def test_a_runs_options_are_refused_with_their_numbers_as_read(changes, sentence):
    with pytest.raises(ValueError) as refused:
        DistillConfig(**changes).check()
    assert str(refused.value) == sentence


@pytest.mark.parametrize("weights, sentence", [
    (dict(alpha_kl=1e9), "The loss weight alpha_kl must be at most 10,000; got 1,000,000,000."),
    (dict(temperature=1000.0), "The temperature must be at most 100 (distillation uses 1 to 20); got 1,000."),
    (dict(temperature=-2000.0), "The temperature must be a finite number above 0; got -2,000."),
])
def test_loss_weights_are_refused_with_their_numbers_as_read(weights, sentence):
    with pytest.raises(ValueError) as refused:
        LossWeights(**weights).check()
    assert str(refused.value) == sentence


@pytest.mark.parametrize("changes, sentence", [
    (dict(student_layers=10_000), "The student cannot have more layers (10,000) than the teacher (12)."),
    (dict(max_length=4000), "--max-length 4,000 is longer than the teacher's maximum (512)."),
])
def test_a_run_is_checked_against_its_teacher_in_numbers_as_read(changes, sentence):
    with pytest.raises(ValueError) as refused:
        check_against_teacher(DistillConfig(**changes), zoo.arch_config(TEACHER))
    assert str(refused.value) == sentence


def test_a_students_shape_is_refused_in_numbers_as_read():
    with pytest.raises(ValueError) as refused:
        student_config(zoo.arch_config(TEACHER), "bert", 2, hidden_size=10**9)
    assert str(refused.value) == "The student width (1,000,000,000) cannot exceed the teacher's (768)."
    with pytest.raises(ValueError) as refused:
        check_init_layers([0] * 5000, 2, 4)
    assert str(refused.value) == "Give one initialising teacher layer per student layer: 2 needed, 5,000 given."


@pytest.mark.parametrize("world, batch", [(1, "100,000"), (2, "100,000 x 2 processes")])
def test_a_corpus_smaller_than_a_batch_is_counted_as_read(world, batch):
    train = SimpleNamespace(sequences=[[1]] * 59_528, truncated=0)
    with pytest.raises(ValueError) as refused:
        check_batches(train, DistillConfig(batch_size=100_000), world, verbose=False)
    assert str(refused.value) == (f"The corpus has 59,528 usable lines, fewer than one batch ({batch}): lower "
                                  "--batch-size or add text.")


def test_a_long_line_deep_in_a_corpus_is_named_by_its_number_as_read(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("слово\n" * 1233 + "х" * 100_001 + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as refused:
        read_corpus(path, "corpus.txt")
    assert str(refused.value) == ("The corpus 'corpus.txt' has a line of 100,001 characters (non-blank line 1,234); "
                                  "put one sample on each line, at most 100,000 characters.")


def test_a_full_disk_names_its_steps_as_read():
    said = disk_full_message(12_000, 1_200_000, 500_000, Path("runs/x/checkpoints/step-010000.pt"))
    assert said == ("The disk is full: the checkpoint of step 12,000 needs about 1.2 MB and 500.0 KB are free, so it "
                    "was not written; the run keeps its checkpoint of step 10,000 (step-010000.pt), so free some "
                    "space and resume from there.")


def test_an_exports_low_agreement_counts_its_positions_as_read():
    assert agreement_note(0.9, 12_345, "onnx", False) == (
        "Low agreement (below 99%): this export predicts a different top word than the PyTorch model at 10.0% of the "
        "12,345 masked positions; for a closer export, use OpenVINO.")


@pytest.mark.parametrize("bad, sentence", [
    ("café".encode("latin-1"), "'notes.txt' is not UTF-8 text (first bad byte on line 12,345); save it as UTF-8 and "
                                "try again."),
    ("Привет, как дела?".encode("cp1251"), "'notes.txt' is not UTF-8 text: it reads as Russian saved as Windows-1251 "
                                           "(first such byte on line 12,345). Save it as UTF-8 (in Excel: Save as, "
                                           "'CSV UTF-8'; in Notepad: Save as, Encoding UTF-8) and try again."),
])
def test_a_bad_byte_deep_in_a_text_file_is_named_by_its_line_as_read(bad, sentence):
    with pytest.raises(ValueError) as refused:
        decode_utf8("строка\n".encode() * 12_344 + bad + b"\n", "notes.txt")
    assert str(refused.value) == sentence


def test_too_many_sentences_for_a_map_are_counted_as_read(tmp_path):
    path = tmp_path / "many.txt"
    path.write_text("".join(f"Предложение {i}.\n" for i in range(MAX_SENTENCES + 1)), encoding="utf-8")
    with pytest.raises(ValueError) as refused:
        read_sentence_file(path)
    assert str(refused.value) == ("There are 5,001 sentences in many.txt, more than the 5,000 a map can take; keep "
                                  "fewer of them.")


def test_a_long_sentence_deep_in_a_file_is_named_by_its_line_as_read(tmp_path):
    path = tmp_path / "long.txt"
    path.write_text("Кошка спит.\n" * 12_344 + "а" * 1234 + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as refused:
        read_sentence_file(path)
    assert str(refused.value) == ("Line 12,345 of long.txt has 1,234 characters; a sentence may have at most 1,000: "
                                  "split it into sentences.")


def test_a_row_with_extra_cells_deep_in_a_table_is_named_by_its_number_as_read(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("sentence,label\n" + "Кошка спит.,животные\n" * 12_343 + "Да, нет,ответ\n", encoding="utf-8")
    with pytest.raises(ValueError) as refused:
        read_sentence_file(path)
    assert str(refused.value).startswith("Row 12,345 of s.csv has 3 cells but its header names 2: ")


def test_a_cell_past_the_csv_limit_is_refused_with_the_limit_as_read(tmp_path):
    path = tmp_path / "huge.csv"
    path.write_text("sentence\n" + "б" * 200_000 + "\n", encoding="utf-8")
    with pytest.raises(ValueError) as refused:
        read_sentence_file(path)
    assert str(refused.value) == ("huge.csv has a cell of more than 131,072 characters; a sentence may have at most "
                                  "1,000: split it into sentences.")


@pytest.mark.parametrize("flags, sentence", [
    (["--steps", "-5000"], "--steps must be 1 or more; got -5,000."),
    (["--hidden", "1000", "--heads", "3"], "--hidden must be a multiple of --heads (each head takes an equal share of "
                                           "the width); got 1,000 and 3."),
    (["--max-length", "1000", "--max-positions", "512"],
     "--max-positions (512) must be at least --max-length (1,000)."),
    (["--dropout", "1000"], "--dropout is a probability, from 0 to below 1; got 1,000."),
])
def test_the_teachers_numbers_are_refused_as_read(flags, sentence):
    from train.cli import pretrain_teacher_parser
    from train.pretrain_teacher import check_numbers

    args: argparse.Namespace = pretrain_teacher_parser().parse_args(["--output-dir", "unused", *flags])
    assert check_numbers(args) == sentence


@pytest.mark.cli
@pytest.mark.parametrize("command, line", [
    (["train.distill", "--seed", "99999999999"],
     "error: --seed must be a whole number from 0 to 4,294,967,295; got 99,999,999,999."),
    (["train.pretrain_teacher", "--steps", "-5000"], "error: --steps must be 1 or more; got -5,000."),
    (["core.bench", "--runs", "-5000"], "error: --runs must be 0 (about 3 s of runs) or 1 to 50; got -5,000."),
])
def test_command_lines_refuse_a_number_in_one_line_as_read(command, line, tmp_path):
    if command[0] == "train.pretrain_teacher":
        command = [*command, "--output-dir", str(tmp_path / "teacher")]
    done = subprocess.run([sys.executable, "-m", *command], cwd=REPO, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert (done.returncode, done.stderr, done.stdout) == (2, line + "\n", "")

"""python -m train.distill on the new corpus sources: exact resume across epochs with gradient accumulation (from the
tokenised cache and from a stream), a .jsonl corpus with --text-column, and one-line refusals."""
import json

import pytest

from core.runs.store import read_metrics
from tests.support.cli import SHORT, assert_resumed_exactly, run_cli, whole_and_resumed
from tests.support.models import corpus_lines
from train.distill import main

pytestmark = pytest.mark.cli


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory):
    """100 lines: with batch 8 and --grad-accum 2 an epoch lasts about 6 steps."""
    folder = tmp_path_factory.mktemp("small")
    (folder / "train.txt").write_text("\n".join(corpus_lines(100)) + "\n", encoding="utf-8")
    (folder / "valid.txt").write_text("\n".join(corpus_lines(140)[100:]) + "\n", encoding="utf-8")
    return folder


@pytest.mark.parametrize("streaming", [False, True])
def test_kill_9_then_resume_matches_across_epochs_with_accumulation(streaming, tmp_path, tiny_teacher_dir,
                                                                    small_corpus):
    common = ["--teacher", tiny_teacher_dir, "--corpus", small_corpus / "train.txt", "--valid-corpus",
              small_corpus / "valid.txt", "--max-steps", 16, "--save-every", 3, "--grad-accum", 2, *SHORT,
              "--log-every", 4, "--eval-every", 8, "--trace", *(["--streaming"] if streaming else [])]
    whole, killed = whole_and_resumed(common, tmp_path)
    assert read_metrics(whole)[-1]["epoch"] >= 2  # the run crossed two epoch boundaries
    assert_resumed_exactly(whole, killed)


def test_a_jsonl_corpus_with_a_text_column_runs(tmp_path, tiny_teacher_dir):
    corpus = tmp_path / "dialogues.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "reply": t}, ensure_ascii=False) + "\n"
                              for i, t in enumerate(corpus_lines(200))), encoding="utf-8")
    out = tmp_path / "run"
    result = run_cli("--teacher", tiny_teacher_dir, "--corpus", corpus, "--text-column", "reply", "--max-steps", 2,
                     "--output-dir", out, *SHORT)
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["text_column"] == "reply" and config["streaming"] is False
    assert (out / "final" / "model.safetensors").is_file()
    for folder in (out / "init", out / "final"):  # readable as the files beside them, not 0600 (safetensors #782)
        assert (folder / "model.safetensors").stat().st_mode & 0o777 == (folder / "config.json").stat().st_mode & 0o777


@pytest.mark.parametrize("case, message", [
    ("column", "has no column 'text' (its columns: id, reply); choose one with --text-column."),
    ("folder", "is a folder; give a text file, one sample a line."),
    ("glob", "matches no file"),
    ("missing", "does not exist."),
    ("empty-jsonl", "has no text: it needs at least one non-blank line."),
    ("hub", "is not a local file or folder, and the Hub cannot be reached to load a dataset of that name"),
    ("num-proc", "--num-proc must be from 1 to 256; got 0."),
])
def test_bad_corpus_sources_give_one_line_exit_2_and_no_run(case, message, tmp_path, tiny_teacher_dir, capsys):
    (tmp_path / "c.jsonl").write_text('{"id": 1, "reply": "привет"}\n', encoding="utf-8")
    (tmp_path / "empty.jsonl").write_text('{"text": " "}\n', encoding="utf-8")
    (tmp_path / "folder").mkdir()
    corpus = {"column": tmp_path / "c.jsonl", "folder": tmp_path / "folder", "glob": tmp_path / "*.parquet",
              "missing": tmp_path / "none.txt", "empty-jsonl": tmp_path / "empty.jsonl",
              "hub": "someone/no-such-corpus"}.get(case, tmp_path / "c.jsonl")
    extra = {"num-proc": ["--num-proc", "0"]}
    out = tmp_path / "run"
    code = main(["--teacher", str(tiny_teacher_dir), "--corpus", str(corpus), "--output-dir", str(out),
                 "--text-column", "reply" if case not in ("column", "empty-jsonl") else "text",
                 *extra.get(case, [])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("case, message", [
    ("missing", "--valid-corpus: The corpus file '{path}' does not exist."),
    ("empty", "--valid-corpus: The corpus '{path}' has no text: it needs at least one non-blank line."),
    ("binary", "--valid-corpus: '{path}' looks like a binary file"),
])
def test_a_bad_held_out_corpus_is_named_by_its_option(case, message, tmp_path, tiny_teacher_dir, small_corpus, capsys):
    valid = tmp_path / f"{case}.txt"
    if case == "empty":
        valid.write_text("\n \n", encoding="utf-8")
    elif case == "binary":
        valid.write_bytes(bytes(range(256)) * 4)
    out = tmp_path / "run"
    code = main(["--teacher", str(tiny_teacher_dir), "--corpus", str(small_corpus / "train.txt"),
                 "--valid-corpus", str(valid), "--output-dir", str(out), "--max-steps", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message.format(path=valid) in err[0], err
    assert not out.exists()

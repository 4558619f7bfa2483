"""A student with its own vocabulary on corpora of any size: the vocabulary learnt from batches read off the corpus,
the student's own tokens made with `datasets.map` and cached, streaming, exact resume, and one-line refusals."""
import json
from itertools import chain

import pytest

from core.distill.data import tokenize_parallel
from core.distill.paired_stream import PairedStream
from core.distill.sources import CorpusSource
from core.distill.training_data import load_training_data, student_training_data, training_texts
from core.distill.vocabulary import corpus_vocabulary, vocabulary_texts
from core.models.tokenizer import train_wordpiece
from core.models.vocab import special_tokens_of, train_student_vocab
from tests.support.cli import SHORT, assert_resumed_exactly, run_cli, whole_and_resumed
from tests.support.models import corpus_lines
from train.distill import main

REDUCED = ["--student-vocab-size", 300, "--student-hidden", 16, "--align", "match"]


def write_jsonl(path, lines):
    path.write_text("".join(json.dumps({"id": i, "reply": t}, ensure_ascii=False) + "\n" for i, t in enumerate(lines)),
                    encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def corpus_3000(tmp_path_factory):
    """3000 lines: a 300-entry vocabulary learnt from them ends on no tie between merges, so every training of it
    gives the same entries (the `tokenizers` trainer breaks ties in hash order, which changes between processes)."""
    path = tmp_path_factory.mktemp("reduced") / "train.txt"
    path.write_text("\n".join(corpus_lines(3000)) + "\n", encoding="utf-8")
    return path


@pytest.mark.slow
def test_vocabulary_from_batches_equals_the_one_from_a_list(corpus_3000, tiny_tokenizer):
    data = load_training_data(CorpusSource(str(corpus_3000)), None, tiny_tokenizer, 32, seed=42)
    texts = training_texts(data)
    assert list(chain.from_iterable(vocabulary_texts(data))) == texts  # the very samples, in the same order
    from_batches = train_student_vocab(vocabulary_texts(data), 300, tiny_tokenizer)
    from_list = train_student_vocab(texts, 300, tiny_tokenizer)
    assert from_batches.get_vocab() == from_list.get_vocab()  # same entries, same ids (numbered in a fixed order)
    trained = train_wordpiece(texts, 300, special_tokens=special_tokens_of(tiny_tokenizer))
    assert set(from_batches.get_vocab()) == set(trained.get_vocab())
    assert [from_batches.convert_ids_to_tokens(i) for i in range(5)] == special_tokens_of(tiny_tokenizer)


@pytest.mark.slow
def test_a_vocabulary_sample_is_capped_and_fixed_by_the_seed(tiny_corpus, corpus_3000, tiny_tokenizer):
    data = load_training_data(CorpusSource(str(tiny_corpus)), None, tiny_tokenizer, 32, seed=42)
    texts = training_texts(data)
    sample = list(chain.from_iterable(vocabulary_texts(data, limit=50)))
    assert len(sample) == 50 and sample == list(chain.from_iterable(vocabulary_texts(data, limit=50)))
    where = [texts.index(t) for t in sample]
    assert where == sorted(where) and where != list(range(50))  # spread over the corpus, in corpus order
    stream = load_training_data(CorpusSource(str(corpus_3000), streaming=True), None, tiny_tokenizer, 32, seed=42)
    first = list(chain.from_iterable(vocabulary_texts(stream, limit=50)))
    streamed = [t for t, _ in stream.train.encoded()]
    assert stream.train.held_out == 500 and first == streamed[500:550]  # the first after the held-out samples


@pytest.mark.slow
@pytest.mark.parametrize("streaming", [False, True])
def test_tokenised_pairs_equal_tokenize_parallel(streaming, corpus_3000, tiny_tokenizer):
    data = load_training_data(CorpusSource(str(corpus_3000), streaming=streaming), None, tiny_tokenizer, 24, seed=7)
    texts = list(chain.from_iterable(vocabulary_texts(data)))
    student_tokenizer = train_student_vocab(texts, 300, tiny_tokenizer)
    teacher_side, student_side = student_training_data(data, tiny_tokenizer, student_tokenizer, 24)
    expected_teacher, expected_student = tokenize_parallel(texts, tiny_tokenizer, student_tokenizer, 24)
    if streaming:
        assert isinstance(teacher_side, PairedStream)
        numbers = [number for number, _ in teacher_side.samples()]
        for number, pair in teacher_side.samples():
            teacher_side.sequences.rows[number] = pair  # as a StreamEpoch holds the samples of its batches
        got_teacher = [teacher_side.sequences[n] for n in numbers]
        got_student = [student_side.sequences[n] for n in numbers]
    else:
        got_teacher = [teacher_side.sequences[i] for i in range(len(teacher_side.sequences))]
        got_student = [student_side.sequences[i] for i in range(len(student_side.sequences))]
        assert teacher_side.lengths.tolist() == expected_teacher.lengths
        assert student_side.lengths.tolist() == expected_student.lengths
        assert (teacher_side.truncated, student_side.truncated) == (expected_teacher.truncated,
                                                                    expected_student.truncated)
    assert got_teacher == expected_teacher.sequences and got_student == expected_student.sequences


def test_a_kept_vocabulary_is_read_back(tiny_corpus, tiny_tokenizer):
    data = load_training_data(CorpusSource(str(tiny_corpus)), None, tiny_tokenizer, 32, seed=11)
    first = corpus_vocabulary(data, 250, tiny_tokenizer)
    again = corpus_vocabulary(data, 250, tiny_tokenizer)
    assert first.get_vocab() == again.get_vocab() and len(first) <= 250


def cache_files(root):
    """{name: modification time} of every tokenised cache file and kept vocabulary under a datasets cache."""
    found = list(root.rglob("cache-*.arrow")) + list(root.rglob("student-vocab-*/tokenizer.json"))
    return {str(path.relative_to(root)): path.stat().st_mtime_ns for path in found}


@pytest.mark.cli
def test_a_reduced_run_on_jsonl_tokenises_once_and_the_next_run_reuses_the_cache(tmp_path, tiny_teacher_dir,
                                                                                 monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    corpus = write_jsonl(tmp_path / "dialogues.jsonl", corpus_lines(200))
    common = ["--teacher", tiny_teacher_dir, "--corpus", corpus, "--text-column", "reply", *REDUCED,
              "--max-steps", 3, *SHORT]
    first = run_cli(*common, "--output-dir", tmp_path / "first")
    assert first.returncode == 0, first.stderr
    written = cache_files(tmp_path / "datasets")
    # the teacher's tokens, the student's tokens and the student's vocabulary
    assert sum("student-vocab-" in name for name in written) == 1 and len(written) == 3, written
    second = run_cli(*common, "--output-dir", tmp_path / "second")
    assert second.returncode == 0, second.stderr
    assert cache_files(tmp_path / "datasets") == written  # nothing tokenised, learnt or written again
    vocabularies = [json.loads((tmp_path / run / "final" / "tokenizer.json").read_text())["model"]["vocab"]
                    for run in ("first", "second")]
    assert vocabularies[0] == vocabularies[1]


@pytest.mark.cli
@pytest.mark.parametrize("streaming", [False, True])
def test_kill_9_then_resume_gives_a_reduced_student_the_same_batches(streaming, tmp_path, tiny_teacher_dir,
                                                                      corpus_3000, monkeypatch):
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    if streaming:  # the vocabulary is learnt from the stream's first samples, the same in both runs
        source = ["--corpus", corpus_3000, "--valid-corpus", corpus_3000, "--streaming"]
    else:  # a .jsonl corpus with its held-out split; the second run reads the vocabulary the first kept
        source = ["--corpus", write_jsonl(tmp_path / "train.jsonl", corpus_lines(120)), "--text-column", "reply"]
    common = ["--teacher", tiny_teacher_dir, *source, *REDUCED, "--max-steps", 12, "--save-every", 3,
              "--grad-accum", 2, *SHORT, "--log-every", 4, "--eval-every", 8, "--trace"]
    assert_resumed_exactly(*whole_and_resumed(common, tmp_path))  # the same batches and masks, step for step


@pytest.mark.cli
@pytest.mark.parametrize("case, message", [
    ("column", "has no column 'text' (its columns: id, reply); choose one with --text-column."),
    ("empty-jsonl", "has no text: it needs at least one non-blank line."),
    ("missing", "does not exist."),
    ("held-out", "has only 1 samples, all held out for evaluation; add text or give --valid-corpus."),
    ("vocab", "The student vocabulary (5,000) must be smaller than the teacher's"),
])
def test_bad_sources_for_a_reduced_student_give_one_line_exit_2_and_no_run(case, message, tmp_path,
                                                                           tiny_teacher_dir, capsys):
    write_jsonl(tmp_path / "c.jsonl", ["привет"])
    write_jsonl(tmp_path / "many.jsonl", corpus_lines(60))
    (tmp_path / "empty.jsonl").write_text('{"text": " "}\n', encoding="utf-8")
    corpus = {"column": "c.jsonl", "empty-jsonl": "empty.jsonl", "missing": "none.jsonl", "held-out": "c.jsonl",
              "vocab": "many.jsonl"}[case]
    size = "5000" if case == "vocab" else "300"
    out = tmp_path / "run"
    code = main(["--teacher", str(tiny_teacher_dir), "--corpus", str(tmp_path / corpus), "--output-dir", str(out),
                 "--text-column", "text" if case in ("column", "empty-jsonl") else "reply",
                 "--student-vocab-size", size, *(["--streaming"] if case == "held-out" else [])])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert not out.exists()

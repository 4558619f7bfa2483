"""Corpora through `datasets`: every source kind, the refusals, NFC, the tokenised cache, the split and the batches."""
import json
import os

import numpy as np
import pytest

from core.distill.batching import EpochBatches
from core.distill.sources import CorpusSource, check_text_file, local_files, open_corpus
from core.distill.stream import StreamCorpus
from core.distill.tokenized import held_out_rows, tokenize_dataset
from core.distill.training_data import load_training_data, training_texts
from tests.support.models import corpus_lines

LINES = corpus_lines(120)


def write_sources(folder):
    """The same 120 samples as .txt, .jsonl, .csv and .parquet files; returns {kind: path}."""
    import pandas as pd
    folder.mkdir(exist_ok=True)
    paths = {kind: folder / f"corpus.{kind}" for kind in ("txt", "jsonl", "csv", "parquet")}
    paths["txt"].write_text("\n".join(LINES) + "\n", encoding="utf-8")
    paths["jsonl"].write_text("".join(json.dumps({"id": i, "body": t}, ensure_ascii=False) + "\n"
                                      for i, t in enumerate(LINES)), encoding="utf-8")
    frame = pd.DataFrame({"id": range(len(LINES)), "body": LINES})
    frame.to_csv(paths["csv"], index=False)
    frame.to_parquet(paths["parquet"])
    return paths


@pytest.mark.parametrize("kind", ["txt", "jsonl", "csv", "parquet"])
def test_every_file_kind_gives_the_same_tokens(kind, tmp_path, tiny_tokenizer):
    paths = write_sources(tmp_path)
    text = load_training_data(CorpusSource(str(paths["txt"])), None, tiny_tokenizer, 32, seed=1)
    other = load_training_data(CorpusSource(str(paths[kind]), text_column="body"), None, tiny_tokenizer, 32, seed=1)
    assert len(other.train.sequences) == len(text.train.sequences) > 100
    assert other.valid_lines == text.valid_lines
    assert [other.train.sequences[i] for i in range(5)] == [text.train.sequences[i] for i in range(5)]


def test_a_folder_and_a_glob_read_all_their_files(tmp_path, tiny_tokenizer):
    folder = tmp_path / "parts"
    folder.mkdir()
    for part in range(3):
        (folder / f"part-{part}.txt").write_text("\n".join(LINES[part * 40:(part + 1) * 40]), encoding="utf-8")
    (folder / "README.md").write_text("# about", encoding="utf-8")
    whole = load_training_data(CorpusSource(str(folder)), None, tiny_tokenizer, 32, seed=1)
    pattern = load_training_data(CorpusSource(str(folder / "part-*.txt")), None, tiny_tokenizer, 32, seed=1)
    assert len(whole.train.sequences) + len(whole.valid_lines) == 120
    assert len(pattern.train.sequences) == len(whole.train.sequences)


@pytest.mark.parametrize("case, message", [
    ("missing", "The corpus file '{p}/nope.txt' does not exist."),
    ("folder-empty", "The corpus '{p}/empty' is a folder; give a text file, one sample a line."),
    ("folder-other", "(it also holds 'notes.docx')"),
    ("glob", "The corpus pattern '{p}/*.parquet' matches no file"),
    ("mixed", "mixes files of kinds csv, json"),
    ("column", "has no column 'text' (its columns: body, id); choose one with --text-column."),
    ("not-text", "The column 'id' of the corpus '{p}/corpus.jsonl' holds int64, not text"),
    ("empty-jsonl", "has no text: it needs at least one non-blank line."),
    ("blank-txt", "has no text"),
    ("cp1251", "bad.txt' is not UTF-8 text: it reads as Russian saved as Windows-1251 (first such byte on line 2). "
               "Save it as UTF-8"),
    ("koi8", "bad.txt' is not UTF-8 text: it reads as Russian saved as KOI8-R (first such byte on line 3)"),
    ("latin-1", "bad.txt' is not UTF-8 text (first bad byte on line 2); save it as UTF-8 and try again."),
    ("utf16", "is saved as UTF-16 text"),
    ("binary", "looks like a binary file"),
    ("docx", "'{p}/other/notes.docx' is a ZIP archive (a Word .docx, a spreadsheet or an e-book are ZIP files "
             "too), not plain text; save or export it as plain text (.txt, UTF-8) and try again."),
    ("rtf", "'{p}/bad.txt' is an RTF document, not plain text"),
    ("long-line", "has a line of 100,001 characters (line 2)"),
    ("broken-json", "could not be read"),
    ("cp1251-jsonl", "cp1251.jsonl' is not UTF-8 text: it reads as Russian saved as Windows-1251 (first such byte on "
                     "line 2)"),
    ("cp1251-csv", "cp1251.csv' is not UTF-8 text: it reads as Russian saved as Windows-1251 (first such byte on "
                   "line 3)"),
    ("empty-csv-column", "holds float64, not text (a column with no text at all reads as numbers)"),
])
def test_bad_sources_are_one_sentence(case, message, tmp_path, tiny_tokenizer):
    paths = write_sources(tmp_path)
    spec, column = {"missing": str(tmp_path / "nope.txt"), "folder-empty": str(tmp_path / "empty"),
                    "folder-other": str(tmp_path / "other"), "glob": str(tmp_path / "*.parquet"),
                    "mixed": str(tmp_path / "mixed"), "column": str(paths["jsonl"]), "not-text": str(paths["jsonl"]),
                    "empty-jsonl": str(tmp_path / "empty.jsonl"), "blank-txt": str(tmp_path / "blank.txt"),
                    "cp1251": str(tmp_path / "bad.txt"), "koi8": str(tmp_path / "bad.txt"),
                    "latin-1": str(tmp_path / "bad.txt"), "utf16": str(tmp_path / "bad.txt"),
                    "binary": str(tmp_path / "bad.txt"), "long-line": str(tmp_path / "bad.txt"),
                    "broken-json": str(tmp_path / "broken.jsonl"), "cp1251-jsonl": str(tmp_path / "cp1251.jsonl"),
                    "cp1251-csv": str(tmp_path / "cp1251.csv"), "docx": str(tmp_path / "other" / "notes.docx"),
                    "rtf": str(tmp_path / "bad.txt"),
                    "empty-csv-column": str(tmp_path / "blank-column.csv")}[case], {"not-text": "id"}.get(case, "text")
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.txt").write_text("привет", encoding="utf-8")
    (tmp_path / "other" / "notes.docx").write_bytes(b"PK\x03\x04" + "привет".encode() * 50)
    (tmp_path / "mixed").mkdir()
    (tmp_path / "mixed" / "a.csv").write_text("text\nпривет\n", encoding="utf-8")
    (tmp_path / "mixed" / "b.jsonl").write_text('{"text": "мир"}\n', encoding="utf-8")
    (tmp_path / "empty.jsonl").write_text('{"text": "  "}\n{"text": ""}\n', encoding="utf-8")
    (tmp_path / "blank.txt").write_text("\n \n", encoding="utf-8")
    (tmp_path / "broken.jsonl").write_text('{"text": "мир"\n', encoding="utf-8")
    (tmp_path / "cp1251.jsonl").write_bytes('{"text": "мир"}\n'.encode() + '{"text": "привет"}\n'.encode("cp1251"))
    (tmp_path / "cp1251.csv").write_bytes("id,text\n1,мир\n".encode() + "2,привет\n".encode("cp1251"))
    (tmp_path / "blank-column.csv").write_text("id,text\n1,\n2,\n", encoding="utf-8")
    if case == "glob":
        paths["parquet"].unlink()
    bad = {"cp1251": "первая\n".encode() + "вторая".encode("cp1251"), "utf16": "Привет\nмир\n".encode("utf-16"),
           "koi8": "первая\nвторая\n".encode() + "Третья строка.".encode("koi8-r"),
           "latin-1": b"Bonjour\n" + "Un café crème, une tarte aux pommes.".encode("latin-1"),
           "binary": bytes(range(256)) * 4,
           "rtf": b"{\\rtf1\\ansi " + "привет".encode() + b"}",
           "long-line": "коротко\n".encode() + b"a" * 100_001 + b"\n"}
    if case in bad:
        (tmp_path / "bad.txt").write_bytes(bad[case])
    with pytest.raises(ValueError) as caught:
        load_training_data(CorpusSource(spec, text_column=column), None, tiny_tokenizer, 32, seed=1)
    text = str(caught.value)
    assert message.format(p=tmp_path) in text and "\n" not in text


def test_a_missing_hub_dataset_offline_is_one_sentence(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert local_files(CorpusSource("someone/no-such-corpus")) is None  # looks like a Hub id, not a path
    with pytest.raises(ValueError) as caught:
        open_corpus(CorpusSource("someone/no-such-corpus", config="ru", split="train"))
    assert str(caught.value).startswith("The corpus 'someone/no-such-corpus' is not a local file or folder, and the "
                                        "Hub cannot be reached to load a dataset of that name")
    assert "None" not in str(caught.value)  # datasets' own sentence said "not cached in None"
    assert "\n" not in str(caught.value)


def test_text_is_nfc_normalised_and_cleaned_before_tokenising(tmp_path, tiny_tokenizer):
    path = tmp_path / "c.txt"
    decomposed = "е\u0308лка и и\u0306од"  # ё and й written as a letter and a combining mark
    path.write_bytes("\ufeff".encode() + f"  {decomposed}  \r\n\r\n".encode() + "ёлка и йод\n".encode() * 3)
    data = load_training_data(CorpusSource(str(path)), None, tiny_tokenizer, 32, seed=1)
    texts = data.valid_lines + training_texts(data)
    assert texts == ["ёлка и йод"] * 4
    assert len({tuple(data.train.sequences[i]) for i in range(3)}) == 1


def test_the_tokenised_cache_is_reused_and_keyed_by_tokenizer_and_max_length(tmp_path, tiny_tokenizer):
    from core.models.tokenizer import train_wordpiece
    paths = write_sources(tmp_path)
    dataset = open_corpus(CorpusSource(str(paths["txt"])))
    first = tokenize_dataset(dataset, tiny_tokenizer, 32, "text")
    files = [f["filename"] for f in first.cache_files]
    stamps = [os.stat(f).st_mtime_ns for f in files]
    again = tokenize_dataset(open_corpus(CorpusSource(str(paths["txt"]))), tiny_tokenizer, 32, "text")
    assert [f["filename"] for f in again.cache_files] == files
    assert [os.stat(f).st_mtime_ns for f in files] == stamps  # read, not written again
    longer = tokenize_dataset(dataset, tiny_tokenizer, 64, "text")
    other_tokenizer = train_wordpiece(LINES, vocab_size=300)
    other = tokenize_dataset(dataset, other_tokenizer, 32, "text")
    assert len({files[0], longer.cache_files[0]["filename"], other.cache_files[0]["filename"]}) == 3
    assert other[0]["input_ids"] != first[0]["input_ids"]


def test_held_out_split_is_reproducible_and_disjoint(tmp_path, tiny_tokenizer):
    assert held_out_rows(200, seed=3).tolist() == held_out_rows(200, seed=3).tolist()
    assert len(held_out_rows(200, seed=3)) == 10 and len(held_out_rows(100_000, seed=3)) == 500
    paths = write_sources(tmp_path)
    a = load_training_data(CorpusSource(str(paths["txt"])), None, tiny_tokenizer, 32, seed=5)
    b = load_training_data(CorpusSource(str(paths["txt"])), None, tiny_tokenizer, 32, seed=5)
    c = load_training_data(CorpusSource(str(paths["txt"])), None, tiny_tokenizer, 32, seed=6)
    assert a.valid_lines == b.valid_lines != c.valid_lines
    assert not set(a.valid_lines) & set(training_texts(a))


def test_epoch_batches_cover_every_row_once_with_little_padding():
    lengths = np.array([(i * 37) % 50 + 3 for i in range(1000)], dtype=np.int32)
    batches = EpochBatches(lengths, 16, seed=1, epoch=0)
    flat = [i for k in range(len(batches)) for i in batches[k]]
    assert sorted(flat) == list(range(1000)) and len(batches) == 63
    again, other = EpochBatches(lengths, 16, seed=1, epoch=0), EpochBatches(lengths, 16, seed=1, epoch=1)
    assert [batches[k] for k in range(63)] == [again[k] for k in range(63)] != [other[k] for k in range(63)]

    def waste(bs):
        return sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b) for b in bs)
    shuffled = np.random.default_rng(0).permutation(1000).tolist()
    assert waste([batches[k] for k in range(63)]) < 0.2 * waste([shuffled[i:i + 16] for i in range(0, 1000, 16)])


def test_a_stream_gives_the_same_batches_when_read_again_from_any_place(tmp_path, tiny_tokenizer):
    paths = write_sources(tmp_path)
    source = CorpusSource(str(paths["txt"]), streaming=True)
    data = load_training_data(source, source, tiny_tokenizer, 32, seed=2, eval_lines=20)
    assert isinstance(data.train, StreamCorpus) and len(data.valid_lines) == 20
    epoch = data.batches_for(0, 2)
    whole = []
    while epoch.holds(len(whole) + 1):
        rows = epoch[len(whole)]
        whole.append((rows, [data.train.sequences[i] for i in rows]))
    assert len(whole) == 60 and sorted(i for rows, _ in whole for i in rows) == list(range(120))
    later = data.batches_for(0, 2)  # a resumed process: asks for batch 55 first (in the second mega-batch)
    assert later.holds(56, keep_from=55)
    assert [(later[k], [data.train.sequences[i] for i in later[k]]) for k in range(55, 60)] == whole[55:]
    assert len(data.train.sequences.rows) <= 100  # the samples of batches behind were let go
    assert data.batches_for(1, 2)[0] != whole[0][0] or data.batches_for(1, 2)[1] != whole[1][0]


def test_check_text_file_reads_in_pieces(tmp_path, monkeypatch):
    import core.distill.sources as sources
    monkeypatch.setattr(sources, "CHUNK_BYTES", 7)  # multi-byte letters split across pieces
    path = tmp_path / "c.txt"
    path.write_text("привет мир\n" * 50, encoding="utf-8")
    check_text_file(path, "c.txt")
    path.write_bytes("привет\n".encode() * 5 + "мир".encode("cp1251"))
    with pytest.raises(ValueError, match="line 6"):
        check_text_file(path, "c.txt")

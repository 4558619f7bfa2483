"""A corpus tokenised once with `datasets.map` into Arrow files on disk and read row by row while training.

The cache's fingerprint is the source's, the tokenizer's and the max length's, so a second run with the same three
reuses the files; memory stays flat in the corpus size (only the length column is read whole: 4 bytes a row).
"""
from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from collections.abc import Sequence

import numpy as np

ENCODING_VERSION = "rudistil-encode-1"  # change when encode_batch changes what it writes
MAX_VALID = 500  # held-out samples taken from a corpus without its own held-out file
AUTO_PROC_ROWS = 100_000  # above this many rows every CPU tokenises unless told otherwise


def clean_text(text: str | None) -> str:
    """A sample as it is tokenised: NFC-normalised (composed ё and й), without a byte-order mark or outer spaces."""
    return unicodedata.normalize("NFC", text or "").replace("\ufeff", "").strip()


def encode_batch(batch: dict, tokenizer, max_length: int, column: str) -> dict:
    """A `datasets.map` batch of samples -> text, input_ids ([CLS] pieces [SEP], cut to max_length), length (tokens)
    and truncated (was cut). Blank samples and samples without a single piece are left out."""
    texts = [t for t in (clean_text(x) for x in batch[column]) if t]
    room = max_length - 2
    # one piece beyond the room tells a cut sample from one that fits exactly, without tokenising a long tail
    pieces = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=room + 1)["input_ids"] \
        if texts else []
    out = {"text": [], "input_ids": [], "length": [], "truncated": []}
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    for text, ids in zip(texts, pieces):
        if ids:
            out["text"].append(text)
            out["input_ids"].append([cls, *ids[:room], sep])
            out["length"].append(min(len(ids), room) + 2)
            out["truncated"].append(len(ids) > room)
    return out


def tokenizer_fingerprint(tokenizer) -> str:
    """A digest of everything in the tokenizer that changes its output: its kind, vocabulary, rules, special ids.

    The truncation and padding a fast tokenizer's backend holds are those of its last call, so they are left out."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    body = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    if backend is not None and (backend.truncation is not None or backend.padding is not None):
        from tokenizers import Tokenizer

        plain = Tokenizer.from_str(body)
        plain.no_truncation()
        plain.no_padding()
        body = plain.to_str()
    text = f"{type(tokenizer).__name__}\n{body}\n{tokenizer.all_special_ids}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def output_features():
    from datasets import Features, Value
    from datasets import Sequence as ListOf
    return Features({"text": Value("string"), "input_ids": ListOf(Value("int32")), "length": Value("int32"),
                     "truncated": Value("bool")})


def tokenize_dataset(dataset, tokenizer, max_length: int, column: str, num_proc: int | None = None,
                     progress: str | None = None):
    """The Arrow dataset tokenised (see encode_batch), cached beside its source and reused by a later call with the
    same source, tokenizer and max_length. num_proc: worker processes (None: every CPU for a dataset of over
    AUTO_PROC_ROWS rows, else this one); progress: the bar's title."""
    from datasets.fingerprint import Hasher

    if max_length < 3:
        raise ValueError("max_length must be at least 3 (room for [CLS], one token and [SEP]).")
    fingerprint = Hasher.hash([dataset._fingerprint, tokenizer_fingerprint(tokenizer), max_length, column,
                               ENCODING_VERSION])
    return dataset.map(encode_batch, batched=True, batch_size=1000, remove_columns=dataset.column_names,
                       fn_kwargs=dict(tokenizer=tokenizer, max_length=max_length, column=column),
                       num_proc=worker_count(num_proc, len(dataset)),
                       features=output_features(), new_fingerprint=fingerprint, desc=progress)


def worker_count(num_proc: int | None, rows: int) -> int | None:
    """Processes for tokenising `rows` rows: None (this process) when one is asked for or the data is small."""
    wanted = num_proc if num_proc is not None else (os.cpu_count() or 1) if rows > AUTO_PROC_ROWS else 1
    wanted = min(wanted, rows // 1000)  # a worker costs a second or two to start
    return wanted if wanted > 1 else None


class RowSequences(Sequence):
    """The token ids of chosen rows of a tokenised dataset, read from disk on each access: sequences[i] is a list of
    ints, row rows[i] of the dataset."""

    def __init__(self, dataset, rows: np.ndarray):
        self.ids = dataset.select_columns(["input_ids"])
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        return self.ids[int(self.rows[index])]["input_ids"]


class ArrowCorpus:
    """The training rows of a tokenised dataset, as TokenizedCorpus offers them (sequences, lengths, truncated,
    tokens) without holding them in memory: lengths is an int32 array (rows,), sequences reads rows on demand."""

    def __init__(self, dataset, rows: np.ndarray | None = None):
        rows = np.arange(len(dataset)) if rows is None else rows
        self.dataset = dataset
        self.sequences = RowSequences(dataset, rows)
        table = dataset.data
        self.lengths = table.column("length").to_numpy()[rows]  # (rows,) int32
        self.truncated = int(table.column("truncated").to_numpy(zero_copy_only=False)[rows].sum())

    @property
    def tokens(self) -> int:
        return int(self.lengths.sum(dtype=np.int64))

    def count_rows(self, limit: int | None = None) -> int:
        """The number of training rows (all of them: `limit` is for streams, which count only that far)."""
        return len(self.sequences)


def held_out_rows(rows: int, seed: int, fraction: float = 0.05, most: int = MAX_VALID) -> np.ndarray:
    """Sorted row numbers of a reproducible held-out split of `rows` rows: fraction of them, at least one when there
    are two or more, at most `most`."""
    if rows < 2:
        return np.zeros(0, dtype=np.int64)
    count = min(most, max(1, int(rows * fraction)))
    return np.sort(np.random.default_rng([seed, 7]).choice(rows, count, replace=False))


def split_tokenized(dataset, seed: int) -> tuple[ArrowCorpus, list[str]]:
    """(training corpus, held-out texts) of one tokenised dataset, the split fixed by the seed."""
    held = held_out_rows(len(dataset), seed)
    keep = np.ones(len(dataset), dtype=bool)
    keep[held] = False
    valid = dataset.select(held.tolist())["text"] if len(held) else []
    return ArrowCorpus(dataset, np.flatnonzero(keep)), list(valid)

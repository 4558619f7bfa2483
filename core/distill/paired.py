"""A tokenised corpus in a student's own tokens as well (a student with its own vocabulary): the student's ids of
every row, made once with `datasets.map` into Arrow files beside the teacher's and read row for row with them.

Row i of the two corpora comes from the same sample; a sample in which the student's tokenizer finds no piece is
left out of both, as core.distill.data.tokenize_parallel does in memory. The cache's fingerprint is the
teacher-tokenised dataset's (its source, the teacher's tokenizer, max_length), both tokenizers' and max_length, so a
second run with the same corpus and vocabularies reuses the files; only the length columns are read whole.
"""
from __future__ import annotations

import numpy as np

from core.distill.tokenized import ArrowCorpus, tokenizer_fingerprint, worker_count

STUDENT_ENCODING_VERSION = "rudistil-student-encode-1"  # change when encode_student_batch changes what it writes


def student_ids(texts: list[str], tokenizer, max_length: int) -> tuple[list[list[int]], list[bool]]:
    """([CLS] pieces [SEP] of each text, cut to max_length, or [] for a text without a piece; whether it was cut).

    The texts are taken as they are (already cleaned, see core.distill.tokenized.clean_text)."""
    room = max_length - 2
    # one piece beyond the room tells a cut sample from one that fits exactly, without tokenising a long tail
    pieces = tokenizer(texts, add_special_tokens=False, truncation=True, max_length=room + 1)["input_ids"] \
        if texts else []
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    return [[cls, *ids[:room], sep] if ids else [] for ids in pieces], [len(ids) > room for ids in pieces]


def encode_student_batch(texts: list[str], tokenizer, max_length: int) -> dict:
    """A `datasets.map` batch of a teacher-tokenised dataset's text column -> input_ids, length (tokens, 0 where
    the student finds no piece) and truncated, one row for each row given."""
    ids, cut = student_ids(texts, tokenizer, max_length)
    return {"input_ids": ids, "length": [len(row) for row in ids], "truncated": cut}


def student_features():
    from datasets import Features, Value
    from datasets import Sequence as ListOf
    return Features({"input_ids": ListOf(Value("int32")), "length": Value("int32"), "truncated": Value("bool")})


def tokenize_student(tokenized, teacher_tokenizer, student_tokenizer, max_length: int, num_proc: int | None = None,
                     progress: str | None = None):
    """The student's tokens of every row of a teacher-tokenised dataset (core.distill.tokenized.tokenize_dataset),
    as a dataset of the same rows (see encode_student_batch), cached beside it. num_proc, progress: as for
    tokenize_dataset."""
    from datasets.fingerprint import Hasher

    if max_length < 3:
        raise ValueError("max_length must be at least 3 (room for [CLS], one token and [SEP]).")
    fingerprint = Hasher.hash([tokenized._fingerprint, tokenizer_fingerprint(teacher_tokenizer),
                               tokenizer_fingerprint(student_tokenizer), max_length, STUDENT_ENCODING_VERSION])
    return tokenized.map(encode_student_batch, batched=True, batch_size=1000, input_columns=["text"],
                         remove_columns=tokenized.column_names,
                         fn_kwargs=dict(tokenizer=student_tokenizer, max_length=max_length),
                         num_proc=worker_count(num_proc, len(tokenized)), features=student_features(),
                         new_fingerprint=fingerprint, desc=progress)


def paired_corpora(train: ArrowCorpus, student_dataset) -> tuple[ArrowCorpus, ArrowCorpus]:
    """(teacher corpus, student corpus): the training rows of `train` in which the student finds a piece, row i of
    both from the same sample. student_dataset: tokenize_student of train.dataset. Raises ValueError when no row is
    left."""
    has_pieces = student_dataset.data.column("length").to_numpy() > 0  # (rows of the dataset,) bool
    rows = train.sequences.rows
    rows = rows[has_pieces[rows]]
    if not len(rows):
        raise ValueError("The tokenizer produced no tokens from this corpus.")
    return ArrowCorpus(train.dataset, np.asarray(rows)), ArrowCorpus(student_dataset, np.asarray(rows))

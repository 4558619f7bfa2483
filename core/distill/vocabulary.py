"""A student's own vocabulary learnt from a run's training corpus, read in batches from disk or the stream (memory
flat in the corpus size), and kept beside an on-disk corpus's tokenised cache for the next run.

The `tokenizers` trainer breaks ties between equally frequent merges in an order that changes from one process to
the next, so two runs learning from the same text may keep a few different entries. A run therefore reuses the
vocabulary kept for its training rows, vocabulary size and teacher, and its student tokenisation (whose cache key
holds the vocabulary's digest) is then reused too. A stream has no cache: each new run learns it again.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

import numpy as np

from core.distill.stream import StreamCorpus
from core.distill.training_data import TrainingData
from core.models.tokenizer import compose_unicode
from core.models.vocab import special_tokens_of, train_student_vocab
from core.saving import save_tokenizer

VOCAB_SAMPLES = 1_000_000  # the most training samples a student's vocabulary is learnt from
TEXT_BATCH = 1000  # samples read together
VOCAB_VERSION = "rudistil-student-vocab-1"  # change when what a kept vocabulary is learnt from changes


def vocabulary_texts(data: TrainingData, limit: int = VOCAB_SAMPLES) -> Iterator[list[str]]:
    """Batches (lists of up to TEXT_BATCH) of training samples' texts, cleaned as for training
    (core.distill.tokenized.clean_text: NFC, stripped), read as they are used.

    A corpus on disk of at most `limit` training samples gives every one, in corpus order; a larger one `limit`
    samples chosen by the run's seed, in corpus order; a stream its first `limit` training samples (after the
    held-out ones)."""
    train = data.train
    if isinstance(train, StreamCorpus):
        texts = (text for text, _ in islice(train.encoded(), train.held_out, train.held_out + limit))
        while batch := list(islice(texts, TEXT_BATCH)):
            yield batch
        return
    rows = vocabulary_rows(data, limit)
    column = train.dataset.select_columns(["text"])
    for start in range(0, len(rows), TEXT_BATCH):
        yield column[rows[start:start + TEXT_BATCH].tolist()]["text"]


def vocabulary_rows(data: TrainingData, limit: int) -> np.ndarray:
    """Row numbers (sorted) of the on-disk training samples a vocabulary is learnt from (see vocabulary_texts)."""
    rows = data.train.sequences.rows
    if len(rows) <= limit:
        return rows
    return rows[np.sort(np.random.default_rng([data.seed, 11]).choice(len(rows), limit, replace=False))]


def corpus_vocabulary(data: TrainingData, vocab_size: int, teacher_tokenizer, limit: int = VOCAB_SAMPLES):
    """The student's WordPiece vocabulary (core.models.vocab.train_student_vocab) learnt from vocabulary_texts(data,
    limit); for a corpus on disk kept in a folder beside its tokenised cache and read back by a later run with the
    same training rows, vocab_size and teacher. Raises ValueError when vocab_size is not below the teacher's."""
    folder = kept_folder(data, vocab_size, teacher_tokenizer, limit)
    if folder is not None and (folder / "tokenizer.json").is_file():
        return load_vocabulary(folder)
    tokenizer = train_student_vocab(vocabulary_texts(data, limit), vocab_size, teacher_tokenizer)
    if folder is None:
        return tokenizer
    keep(tokenizer, folder)
    return load_vocabulary(folder)  # the kept form, so this run and the next tokenise with identical tokenizers


def kept_folder(data: TrainingData, vocab_size: int, teacher_tokenizer, limit: int) -> Path | None:
    """Where the vocabulary of these training rows is kept: student-vocab-<key> beside the tokenised dataset's cache
    files, or None for a stream or a dataset held only in memory."""
    from datasets.fingerprint import Hasher

    if isinstance(data.train, StreamCorpus) or not data.train.dataset.cache_files:
        return None
    rows = vocabulary_rows(data, limit)
    key = Hasher.hash([data.train.dataset._fingerprint, hashlib.sha256(np.ascontiguousarray(rows).tobytes())
                       .hexdigest(), vocab_size, special_tokens_of(teacher_tokenizer), VOCAB_VERSION])
    return Path(data.train.dataset.cache_files[0]["filename"]).parent / f"student-vocab-{key}"


def keep(tokenizer, folder: Path) -> None:
    """Save the tokenizer as `folder`, whole or not at all (written aside, then renamed into place)."""
    aside = folder.with_name(f"{folder.name}.{os.getpid()}.partial")
    save_tokenizer(tokenizer, aside)
    try:
        os.replace(aside, folder)
    except OSError:  # another process kept the same vocabulary first
        shutil.rmtree(aside, ignore_errors=True)


def load_vocabulary(folder: Path):
    """A student vocabulary saved with save_pretrained (kept here, or in a run's student folder), as it was trained:
    a fast BERT tokenizer that composes Unicode first."""
    from transformers import BertTokenizerFast

    return compose_unicode(BertTokenizerFast.from_pretrained(str(folder)))

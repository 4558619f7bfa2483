"""A run's data from its corpus sources: the tokenised training corpus (on disk, or streamed) and held-out texts;
for a student with its own vocabulary (see core.distill.vocabulary), the corpus in the student's tokens too.

    data = load_training_data(CorpusSource("corpus.txt"), None, tokenizer, max_length=128, seed=42)
    batches = data.batches_for(epoch=0, batch_size=16)   # batches[i] -> rows of data.train
    train, student_train = student_training_data(data, tokenizer, student_tokenizer, max_length=128)
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import islice

from core.distill.batching import EpochBatches
from core.distill.paired import paired_corpora, tokenize_student
from core.distill.paired_stream import PairedStream, StudentSide
from core.distill.sources import CorpusSource, open_corpus, text_column
from core.distill.stream import StreamCorpus
from core.distill.tokenized import MAX_VALID, ArrowCorpus, clean_text, split_tokenized, tokenize_dataset


@dataclass
class TrainingData:
    train: ArrowCorpus | StreamCorpus
    valid_lines: list[str]  # held-out samples, NFC-normalised and stripped
    seed: int

    def batches_for(self, epoch: int, batch_size: int):
        """The batches of one epoch (EpochBatches, or StreamEpoch for a stream), fixed by (seed, epoch)."""
        if isinstance(self.train, StreamCorpus):
            return self.train.batches_for(batch_size, self.seed, epoch)
        return EpochBatches(self.train.lengths, batch_size, self.seed, epoch)


UNKNOWN_SAMPLE = 1000  # samples whose tokens check_readable counts: milliseconds, whatever the corpus's size
SAMPLE_CHARS = 2000  # characters of each sample counted: a few hundred tokens, as many as training reads
MAX_UNKNOWN_SHARE = 0.5  # above this share of [UNK] tokens the teacher cannot read the corpus


def unknown_share(texts: Sequence[str], tokenizer) -> float:
    """The share of the tokens of `texts` (no [CLS] or [SEP]; each text's first SAMPLE_CHARS characters) that are the
    tokenizer's unknown token; 0.0 when they have no token, or the tokenizer has no unknown token (a byte-level one
    reads anything)."""
    unknown = tokenizer.unk_token_id
    if unknown is None or not texts:
        return 0.0
    cut = [text[:SAMPLE_CHARS] for text in texts]  # a line may hold 100,000 characters
    pieces = [token for ids in tokenizer(cut, add_special_tokens=False)["input_ids"] for token in ids]
    return sum(token == unknown for token in pieces) / len(pieces) if pieces else 0.0


def spread(items: Sequence, count: int) -> list:
    """At most `count` of `items`, spread evenly from the first to near the last."""
    step = max(1.0, len(items) / count)
    return [items[int(i * step)] for i in range(min(count, len(items)))]


def check_readable(texts: Sequence[str], tokenizer, label: str, total: int | None = None) -> None:
    """Refuse a corpus the teacher's tokenizer cannot read: more than MAX_UNKNOWN_SHARE of its tokens unknown (emoji,
    symbols, an alphabet the vocabulary lacks), which would train without a word and teach nothing.

    texts: the corpus's samples, or a sample of them (`total`: how many the corpus holds, when more); only
    UNKNOWN_SAMPLE of them, spread evenly, are tokenised. label: the corpus's name. Raises ValueError, one sentence
    with the share and what to do."""
    total = max(total or 0, len(texts))
    texts = spread(texts, UNKNOWN_SAMPLE)
    share = unknown_share(texts, tokenizer)
    if share <= MAX_UNKNOWN_SHARE:
        return
    percent = f"{share:.0%}" if round(share * 100) > 50 else "just over 50%"
    where = f" (counted on {len(texts):,} of its {total:,} samples)" if total > len(texts) else ""
    raise ValueError(f"{percent} of the tokens of the corpus '{label}'{where} are unknown to the teacher's tokenizer "
                     f"({tokenizer.unk_token}): it cannot read this text (emoji, symbols or an alphabet it lacks), so "
                     "the student would learn nothing from it. Give text the teacher reads, at least half of its "
                     "tokens known, or another teacher whose vocabulary covers it.")


def corpus_sample(dataset, column: str, streaming: bool) -> tuple[list[str], int | None]:
    """(texts, total): up to UNKNOWN_SAMPLE non-blank samples of an opened corpus, cleaned as for training, spread
    evenly over a corpus on disk, or the first ones of a stream (read again from its start); and how many samples
    the corpus holds when the texts are fewer (None for a stream, which is not counted)."""
    if streaming:
        texts = (clean_text(row.get(column)) for row in dataset if isinstance(row.get(column), str))
        return list(islice((t for t in texts if t), UNKNOWN_SAMPLE)), None
    rows = len(dataset)
    picked = dataset.select_columns([column]).select(spread(range(rows), UNKNOWN_SAMPLE))[column]
    return [t for t in (clean_text(x) for x in picked) if t], rows if rows > UNKNOWN_SAMPLE else None


def no_text(source: CorpusSource) -> ValueError:
    return ValueError(f"The corpus '{source.label}' has no text: it needs at least one non-blank line.")


def first_texts(source: CorpusSource, count: int) -> list[str]:
    """The first `count` non-blank samples of a corpus, cleaned as for training (held-out files).
    Raises ValueError (prefixed with the corpus's option, see CorpusSource.refusal) when it cannot be read or has no
    text."""
    try:
        dataset = open_corpus(source)
        column = text_column(source)
        texts = (clean_text(row[column]) for row in dataset.select_columns([column]))
        found = list(islice((t for t in texts if t), count))
    except ValueError as error:
        raise source.refusal(error) from None
    if not found:
        raise source.refusal(no_text(source))
    return found


def check_stream_column(dataset, source: CorpusSource, column: str) -> None:
    first = next(iter(dataset), None)
    if first is None:
        raise no_text(source)
    if column not in first:
        raise ValueError(f"The corpus '{source.label}' has no column '{column}' (its columns: "
                         f"{', '.join(sorted(first))}); choose one with --text-column.")
    if not isinstance(first[column], str | None):
        raise ValueError(f"The column '{column}' of the corpus '{source.label}' holds "
                         f"{type(first[column]).__name__} values, not text; choose a text column with --text-column.")


def load_training_data(train: CorpusSource, valid: CorpusSource | None, tokenizer, max_length: int, seed: int,
                       eval_lines: int = MAX_VALID, num_proc: int | None = None,
                       progress: str | None = None) -> TrainingData:
    """Open, tokenise (cached, see core.distill.tokenized) and split a run's corpus. Without `valid`, a held-out
    split fixed by `seed` (a stream holds out its first MAX_VALID samples). Raises ValueError (one sentence) for a
    corpus that cannot be read, has no text, or that the tokenizer cannot read (check_readable, on a sample)."""
    dataset, column = open_corpus(train), text_column(train)
    if train.streaming:
        check_stream_column(dataset, train, column)
    sample, total = corpus_sample(dataset, column, train.streaming)
    check_readable(sample, tokenizer, train.label, total)
    if train.streaming:
        corpus = StreamCorpus(lambda: dataset, tokenizer, max_length, column, 0 if valid else MAX_VALID)
        valid_lines = first_texts(valid, eval_lines) if valid else corpus.held_out_texts()[:eval_lines]
        if corpus.count_rows(1) == 0:
            raise no_text(train) if not valid_lines else ValueError(
                f"The corpus '{train.label}' has only {len(valid_lines):,} samples, all held out for evaluation; "
                "add text or give --valid-corpus.")
        return TrainingData(corpus, valid_lines, seed)
    tokenized = tokenize_dataset(dataset, tokenizer, max_length, column, num_proc, progress)
    if len(tokenized) == 0:
        raise no_text(train)
    if valid is not None:
        return TrainingData(ArrowCorpus(tokenized), first_texts(valid, eval_lines), seed)
    corpus, valid_lines = split_tokenized(tokenized, seed)
    return TrainingData(corpus, valid_lines[:eval_lines], seed)


def training_texts(data: TrainingData) -> list[str]:
    """Every training sample's text, in memory (small corpora; core.distill.vocabulary reads any size). Raises
    ValueError for a stream."""
    if isinstance(data.train, StreamCorpus):
        raise ValueError("A streamed corpus is read as training goes and cannot be held in memory; leave out "
                         "--streaming.")
    rows = data.train.sequences.rows
    return data.train.dataset.select_columns(["text"]).select(rows)["text"][:]


def student_training_data(data: TrainingData, teacher_tokenizer, student_tokenizer, max_length: int,
                          num_proc: int | None = None, progress: str | None = None
                          ) -> tuple[ArrowCorpus | PairedStream, ArrowCorpus | StudentSide]:
    """(teacher corpus, student corpus): the training samples in the teacher's tokens and the student's own, row i
    of both from the same sample; samples the student's tokenizer finds no piece in are left out of both. On disk,
    tokenised once and cached (core.distill.paired), or read as training goes for a stream
    (core.distill.paired_stream, whose batches come from the teacher corpus's batches_for). Raises ValueError when
    no sample of a corpus on disk is left."""
    if isinstance(data.train, StreamCorpus):
        paired = PairedStream(data.train, student_tokenizer)
        return paired, paired.student
    student = tokenize_student(data.train.dataset, teacher_tokenizer, student_tokenizer, max_length, num_proc,
                               progress)
    return paired_corpora(data.train, student)

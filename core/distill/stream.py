"""A corpus read as training goes (`datasets` streaming): for corpora larger than the disk cache.

Samples are numbered in stream order (after the held-out ones); each epoch reads the stream from its start and
cuts it into mega-batches of MEGA_BATCHES batches, each sorted by length and shuffled by (seed, epoch, mega-batch),
so a resumed run, which reads the stream again up to its place, sees the very same batches.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

import numpy as np

from core.distill.batching import MEGA_BATCHES
from core.distill.tokenized import encode_batch

TOKENISE_ROWS = 1000  # samples tokenised together


class LiveSequences:
    """The token ids of the samples in the batches in hand: sequences[sample number] -> list of ints."""

    def __init__(self):
        self.rows: dict[int, list[int]] = {}

    def __getitem__(self, sample: int) -> list[int]:
        return self.rows[sample]


class StreamCorpus:
    """Training samples of a stream, tokenised as they are read; offers what ArrowCorpus offers to a recipe
    (sequences, truncated) and the batches of each epoch (batches_for). open_rows() gives a fresh iterator of the
    stream's rows (dicts holding `column`); the first `held_out` usable samples are kept for evaluation."""

    def __init__(self, open_rows: Callable[[], Iterable[dict]], tokenizer, max_length: int, column: str,
                 held_out: int = 0):
        self.open_rows, self.tokenizer, self.max_length, self.column = open_rows, tokenizer, max_length, column
        self.held_out = held_out
        self.sequences = LiveSequences()
        self.truncated = 0  # not known before the stream is read

    def encoded(self) -> Iterator[tuple[str, list[int]]]:
        """(text, token ids) of every usable sample of the stream, the held-out ones included, in order."""
        rows = iter(self.open_rows())
        while True:
            chunk = list(islice(rows, TOKENISE_ROWS))
            if not chunk:
                return
            out = encode_batch({self.column: [r[self.column] for r in chunk]}, self.tokenizer, self.max_length,
                               self.column)
            yield from zip(out["text"], out["input_ids"])

    def samples(self) -> Iterator[tuple[int, list[int]]]:
        """(sample number, token ids) of the training samples, in stream order."""
        training = islice(self.encoded(), self.held_out, None)
        return ((number, ids) for number, (_, ids) in enumerate(training))

    def held_out_texts(self) -> list[str]:
        return [text for text, _ in islice(self.encoded(), self.held_out)]

    def count_rows(self, limit: int) -> int:
        """The number of training samples, counted up to `limit`."""
        return sum(1 for _ in islice(self.samples(), limit))

    def batches_for(self, batch_size: int, seed: int, epoch: int) -> StreamEpoch:
        return StreamEpoch(self, batch_size, seed, epoch)


class StreamEpoch:
    """The batches of one epoch, made a mega-batch at a time as they are asked for: batches[i] -> sample numbers.

    Asked in increasing order by each process; samples of mega-batches behind the last batch asked are dropped."""

    def __init__(self, corpus: StreamCorpus, batch_size: int, seed: int, epoch: int):
        self.corpus, self.batch_size, self.seed, self.epoch = corpus, batch_size, seed, epoch
        self.samples = corpus.samples()
        self.batches: dict[int, list[int]] = {}
        self.megas: list[tuple[int, list[int]]] = []  # (last batch index, sample numbers) of those in hand
        self.made, self.mega_index, self.ended = 0, 0, False

    def holds(self, count: int, keep_from: int = 0) -> bool:
        """Whether the epoch has at least `count` batches; batches before `keep_from` are not kept."""
        while self.made < count and not self.ended:
            self._next_mega(keep=self.made + MEGA_BATCHES > keep_from)
        return self.made >= count

    def __getitem__(self, index: int) -> list[int]:
        if not self.holds(index + 1, keep_from=index):
            raise IndexError(index)
        while self.megas and self.megas[0][0] < index:  # behind this process for good
            last, numbers = self.megas.pop(0)
            for sample in numbers:
                self.corpus.sequences.rows.pop(sample, None)
            for behind in [b for b in self.batches if b <= last]:
                del self.batches[behind]
        return self.batches[index]

    def _next_mega(self, keep: bool) -> None:
        mega = list(islice(self.samples, self.batch_size * MEGA_BATCHES))
        if not mega:
            self.ended = True
            return
        rng = np.random.default_rng([self.seed, self.epoch, self.mega_index])
        self.mega_index += 1
        order = rng.permutation(len(mega))
        lengths = np.array([len(mega[i][1]) for i in order])
        order = order[np.argsort(-lengths, kind="stable")]
        cut = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        numbers = [mega[i][0] for i in range(len(mega))]
        for slot in rng.permutation(len(cut)):
            if keep:
                self.batches[self.made] = [numbers[i] for i in cut[slot]]
            self.made += 1
        if keep:
            self.megas.append((self.made - 1, numbers))
            self.corpus.sequences.rows.update(mega)


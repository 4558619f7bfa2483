"""Length-grouped batches of a corpus of any size, held as two integer arrays instead of lists of lists."""
from __future__ import annotations

import numpy as np

MEGA_BATCHES = 50  # batches sorted together: little padding, batch order still random


class EpochBatches:
    """Every batch of one epoch over `lengths` (tokens per row), in the order fixed by (seed, epoch).

    Rows are shuffled, cut into mega-batches of MEGA_BATCHES batches, each sorted by length (longest first) and
    cut into batches; then the batches are shuffled (Hugging Face's group_by_length). Memory: 8 bytes a row plus
    8 a batch. batches[i] is a list of row numbers; len(batches) the number of batches (the last may be short)."""

    def __init__(self, lengths: np.ndarray, batch_size: int, seed: int, epoch: int):
        rng = np.random.default_rng([seed, epoch])
        rows = len(lengths)
        order = rng.permutation(rows)
        mega = np.arange(rows) // (batch_size * MEGA_BATCHES)
        self.order = order[np.lexsort((-np.asarray(lengths)[order], mega))]  # (rows,) stable sort within each
        self.batch_size = batch_size
        self.batch_order = rng.permutation(-(-rows // batch_size))  # (batches,)

    def __len__(self) -> int:
        return len(self.batch_order)

    def __getitem__(self, index: int) -> list[int]:
        start = int(self.batch_order[index]) * self.batch_size
        return self.order[start:start + self.batch_size].tolist()

    def holds(self, count: int, keep_from: int = 0) -> bool:
        """Whether the epoch has at least `count` batches (keep_from: as StreamEpoch.holds takes it; all are kept)."""
        return len(self) >= count

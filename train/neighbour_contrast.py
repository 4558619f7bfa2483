"""A sentence-level objective for the teacher's pretraining: nearby lines of the corpus are alike.

The corpus is assembled from topic files with their lines in order (scripts/split_corpus.py), so a line's
neighbours within a few lines are, almost always, about the same thing. Each training step pairs every anchor line
with one such neighbour and asks the mean-pooled last hidden states of a pair to be closer (cosine) than those of
the anchor and every other line of the batch: the InfoNCE loss with in-batch negatives of SimCSE (Gao, Yao and Chen,
"SimCSE: Simple Contrastive Learning of Sentence Embeddings", EMNLP 2021) with DeCLUTR's positives drawn from the
same document (Giorgi et al., "DeCLUTR: Deep Contrastive Learning for Unsupervised Textual Representations", ACL
2021). MLM alone leaves a small model's sentence space about as topical as averaged word vectors; this objective is
what gives the probe sentences neighbourhoods of their own topic.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

TEMPERATURE = 0.05  # SimCSE's


def neighbours(anchors: list[int], count: int, window: int, generator: torch.Generator) -> list[int]:
    """For each anchor index, the index of a line 1..window places before or after it, within 0..count-1.

    anchors: indices into the corpus's lines in file order; count: how many lines there are (at least 2);
    window: at least 1. Raises ValueError otherwise. Drawn from `generator`, so a step's pairs follow from its seed.
    """
    if count < 2 or window < 1:
        raise ValueError(f"Pairs of nearby lines need at least 2 lines and a window of 1 or more; got {count:,} lines "
                         f"and a window of {window:,}.")
    offsets = torch.randint(1, window + 1, (len(anchors),), generator=generator).tolist()
    signs = torch.randint(0, 2, (len(anchors),), generator=generator).tolist()
    chosen = []
    for anchor, offset, sign in zip(anchors, offsets, signs):
        near = anchor + offset if sign else anchor - offset
        if not 0 <= near < count:  # at either end of the corpus, look the other way
            near = anchor - offset if sign else anchor + offset
        if not 0 <= near < count:  # a window wider than the corpus: any other line
            near = count - 1 if anchor != count - 1 else 0
        chosen.append(near)
    return chosen


def cut_to(sequence: list[int], length: int) -> list[int]:
    """[CLS] pieces [SEP] shortened to at most `length` tokens (at least 3), keeping its [SEP] last: a neighbour
    cut to its anchors' length adds no padding to the batch."""
    if len(sequence) <= length:
        return sequence
    return sequence[:max(length, 3) - 1] + sequence[-1:]


def info_nce(first: torch.Tensor, second: torch.Tensor, temperature: float = TEMPERATURE) -> torch.Tensor:
    """Symmetric InfoNCE of pairs (first[i], second[i]) against every other row of the batch (SimCSE, eq. 1).

    first, second: (n, hidden) with n >= 2. Returns a scalar in nats, log(n) for vectors that carry nothing."""
    a, b = F.normalize(first.float(), dim=-1), F.normalize(second.float(), dim=-1)
    logits = a @ b.T / temperature  # (n, n), the pairs on the diagonal
    targets = torch.arange(len(a), device=a.device)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2

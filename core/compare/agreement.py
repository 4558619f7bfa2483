"""How close two masked LMs' guesses at one [MASK] are: top-1 agreement, top-k overlap and KL, across vocabularies.

  - Models are compared by the strings of their predicted vocabulary entries, never by ids, so models with different
    vocabularies (the teacher's 119,547 pieces against tiny-v1's 30,522) compare. A continuation piece keeps its
    '##' for matching ("##ка" is not "ка"); `display_word` turns it into "…ка" for people.
  - KL is KL(first model || other model) over the shared-string vocabulary: the entries whose string both
    vocabularies hold, each distribution renormalised on that set. With identical vocabularies the set is the whole
    vocabulary and the figure is the plain KL.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from core.models.masked_lm import MaskPrediction
from core.models.vocab import shared_ids
from core.models.zoo import LoadedModel


@dataclass
class Agreement:
    """How close two models' predictions are at one mask."""
    top1: float  # 1.0 when both best guesses are the same string
    overlap: float  # shared strings among the two top-k lists, divided by k
    kl: float  # KL(reference || other) over the shared-string vocabulary; nan when no string is shared
    shared_vocab: int  # size of the vocabulary the KL was taken over


@dataclass
class PairAgreement:
    """One model against the reference (the first model chosen), per mask or per word."""
    reference: str
    other: str
    other_index: int  # position of `other` among the models compared
    items: list[Agreement]

    def mean(self, name: str) -> float:
        values = [getattr(a, name) for a in self.items if not math.isnan(getattr(a, name))]
        return sum(values) / len(values) if values else float("nan")


@functools.lru_cache(maxsize=16)
def shared_vocabulary(first: PreTrainedTokenizerBase,
                      other: PreTrainedTokenizerBase) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Ids of the strings both vocabularies hold, as (ids in first, ids in other); None when the vocabularies are equal.

    Cached by tokenizer object: building it for two 120K vocabularies takes tens of milliseconds.
    """
    vocab_first, vocab_other = first.get_vocab(), other.get_vocab()
    return None if vocab_first == vocab_other else shared_ids(vocab_first, vocab_other)


def kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor) -> float:
    """KL(p || q) = sum p (log p - log q) for two log-distributions over the same entries; in nats, never below 0.

    Two nearly equal distributions (a student and its ONNX export) can sum to -0.000 in float32 rounding; KL is not
    negative, and a class shown "-0.000" asks why."""
    return max(0.0, float((log_p.exp() * (log_p - log_q)).sum()))


def shared_kl(log_p: torch.Tensor, first: PreTrainedTokenizerBase, log_q: torch.Tensor,
              other: PreTrainedTokenizerBase) -> tuple[float, int]:
    """KL(p || q) over the shared-string vocabulary, both renormalised on it; and the size of that vocabulary.

    Identical vocabularies give the plain KL over the whole distribution.
    """
    index = shared_vocabulary(first, other)
    if index is None and log_p.shape == log_q.shape:
        return kl_divergence(log_p, log_q), log_p.numel()
    if index is None:  # the same tokenizer on models whose output sizes differ: compare the rows both have
        size = min(log_p.numel(), log_q.numel(), len(first))
        index = (torch.arange(size), torch.arange(size))
    ids_first, ids_other = index
    keep = (ids_first < log_p.numel()) & (ids_other < log_q.numel())
    ids_first, ids_other = ids_first[keep], ids_other[keep]
    if ids_first.numel() == 0:
        return float("nan"), 0
    sub_p = log_p[ids_first]
    sub_q = log_q[ids_other]
    return kl_divergence(sub_p - sub_p.logsumexp(0), sub_q - sub_q.logsumexp(0)), int(ids_first.numel())


def agreement(reference: MaskPrediction, other: MaskPrediction, reference_tokenizer: PreTrainedTokenizerBase,
              other_tokenizer: PreTrainedTokenizerBase, top_k: int) -> Agreement:
    """Top-1 agreement and top-k overlap on predicted strings; KL on the shared-string vocabulary."""
    top1 = float(reference.tokens[0] == other.tokens[0])
    overlap = len(set(reference.tokens[:top_k]) & set(other.tokens[:top_k])) / top_k
    if reference.log_probs is None or other.log_probs is None:
        raise ValueError("KL needs the whole distributions; predict with keep_distribution=True.")
    kl, size = shared_kl(reference.log_probs, reference_tokenizer, other.log_probs, other_tokenizer)
    return Agreement(top1, overlap, kl, size)


def pair_agreements(models: Sequence[LoadedModel], per_model: list[list[MaskPrediction]],
                    top_k: int) -> list[PairAgreement]:
    """Every model after the first against the first, item by item."""
    reference = models[0]
    return [PairAgreement(reference.name, other.name, index,
                          [agreement(a, b, reference.tokenizer, other.tokenizer, top_k)
                           for a, b in zip(per_model[0], per_model[index])])
            for index, other in enumerate(models) if index > 0]

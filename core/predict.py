"""Fill-mask predictions of several masked LMs side by side, and the figures that say how close they are.

Rules every function here follows:
  - Each [MASK] is predicted on its own, all of a text's masks in one forward pass, as transformers' fill-mask
    pipeline does: the probabilities at one mask do not depend on what fills another.
  - The MLM head runs only at the masked positions (for BERT and DistilBERT; other masked LMs run whole).
  - Models are compared by the strings of their predicted vocabulary entries, never by ids, so models with different
    vocabularies (the teacher's 119,547 pieces against tiny-v1's 30,522) compare. A continuation piece keeps its
    '##' for matching ("##ка" is not "ка"); `display_word` turns it into "…ка" for people.
  - KL is KL(first model || other model) over the shared-string vocabulary: the entries whose string both
    vocabularies hold, each distribution renormalised on that set. With identical vocabularies the set is the whole
    vocabulary and the figure is the plain KL.
  - A [MASK] is filled with one vocabulary entry. A word that a vocabulary splits into several pieces can only show up
    as its first piece; so a probe whose expected word a model's tokenizer splits (or does not know) is reported as
    "split" for that model and left out of that model's accuracy.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from tokenizers.pre_tokenizers import BertPreTokenizer
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from core.probes import FillMaskProbe, fill_mask_probes
from core.zoo import LoadedModel

MASK = "[MASK]"
MAX_MASKS = 20
MAX_CHARS = 2000
MAX_WORDS = 64  # "mask each word" runs one masked copy of the sentence per word
MAX_TOP_K = 50
BATCH_SIZE = 32


@dataclass
class MaskPrediction:
    """One model's guesses for one [MASK]."""
    tokens: list[str]  # top-k vocabulary strings, best first, '##' kept
    probs: list[float]
    ids: list[int]
    log_probs: torch.Tensor | None = None  # (vocab,) the whole distribution, kept while KL still needs it

    @property
    def words(self) -> list[str]:
        return [display_word(t) for t in self.tokens]


@dataclass
class FillMask:
    """One model's predictions for every [MASK] of one text, in the order they appear."""
    model: str
    text: str
    masks: list[MaskPrediction]


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


@dataclass
class SentenceComparison:
    text: str
    top_k: int
    results: list[FillMask]  # one per model, in the order given
    pairs: list[PairAgreement]  # every model after the first against the first, one Agreement per mask


@dataclass
class WordStrip:
    """ "Mask each word": each word of a sentence masked in turn, every model's guess and the agreement per word."""
    sentence: str
    words: list[str]
    spans: list[tuple[int, int]]  # character span of each word in the sentence
    results: list[list[MaskPrediction]]  # [model][word]
    recovered: list[list[bool | None]]  # [model][word]: best guess is the masked word; None when the word is split
    pairs: list[PairAgreement]  # one Agreement per word


@dataclass
class ModelScore:
    model: str
    hits: int  # probes whose best guess is the expected word
    scored: int  # probes whose expected word is one entry of this model's vocabulary
    split: int  # probes left out: the tokenizer splits the expected word or does not know it

    @property
    def accuracy(self) -> float:
        return self.hits / self.scored if self.scored else float("nan")


@dataclass
class ProbeSummary:
    models: list[str]
    probes: int
    top_k: int
    scores: list[ModelScore]
    pairs: list[PairAgreement]  # one Agreement per probe
    rows: list[dict] = field(default_factory=list)  # per probe: sentence, expected, topic, each model's best guess


def display_word(token: str) -> str:
    """A vocabulary entry as people read it: a continuation piece "##ка" shows as "…ка"."""
    return "…" + token[2:] if token.startswith("##") and len(token) > 2 else token


# ---------------------------------------------------------------------------------------------------------------------
# The masked-LM head at chosen positions only


def apply_mlm_head(model: PreTrainedModel, hidden: torch.Tensor) -> torch.Tensor:
    """The model's MLM head on some hidden states: (n, hidden) -> (n, vocab). BERT and DistilBERT only."""
    model_type = model.config.model_type
    if model_type == "bert":
        return model.cls(hidden)  # transform (dense, activation, LayerNorm) then the decoder tied to the embeddings
    if model_type == "distilbert":
        hidden = model.activation(model.vocab_transform(hidden))
        return model.vocab_projector(model.vocab_layer_norm(hidden))
    raise ValueError(f"The MLM head of a '{model_type}' model is not known here; use a BERT or DistilBERT model.")


@torch.no_grad()
def masked_lm_logits(model: PreTrainedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor | None,
                     select: torch.Tensor) -> torch.Tensor:
    """Logits at the selected positions: (n_selected, vocab), rows in (batch, position) order.

    The encoder sees every token; the head (for the teacher's vocabulary, a 768 x 119,547 projection) runs only
    where `select` (bs, seq_len, bool) is true. Other masked LMs fall back to the whole model.
    """
    if model.config.model_type not in ("bert", "distilbert"):
        return model(input_ids=input_ids, attention_mask=attention_mask).logits[select]  # (n, vocab)
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state  # (bs, seq, dim)
    return apply_mlm_head(model, hidden[select])  # (n, vocab)


# ---------------------------------------------------------------------------------------------------------------------
# Input checks


def check_text(text: str | None, with_masks: bool = True) -> str:
    """The text stripped, or a ValueError with a sentence saying what to change."""
    text = (text or "").strip()
    if not text:
        raise ValueError("The text is empty: type a Russian sentence" + (" with [MASK] for the missing word." if
                                                                           with_masks else "."))
    if len(text) > MAX_CHARS:
        raise ValueError(f"The text is {len(text)} characters long; shorten it to at most {MAX_CHARS}.")
    count = text.count(MASK)
    if with_masks:
        if count == 0:
            hint = " (in capitals)" if "[mask]" in text.lower() else ""
            raise ValueError(f"The text has no {MASK}: write {MASK}{hint} where a word is missing, "
                             "e.g. 'Я люблю пить [MASK] с лимоном.'")
        if count > MAX_MASKS:
            raise ValueError(f"The text has {count} {MASK} marks; use at most {MAX_MASKS}.")
    elif count:
        raise ValueError(f"'Mask each word' takes a sentence without {MASK}; remove the marks or use Predict.")
    return text


def max_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> int:
    limit = model.config.max_position_embeddings
    if 0 < getattr(tokenizer, "model_max_length", 0) < limit:
        limit = tokenizer.model_max_length
    return limit


def encode(loaded: LoadedModel, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    """Tokenised, padded texts; [MASK] becomes the tokenizer's own mask token. Refuses a text the model cannot read."""
    tokenizer = loaded.tokenizer
    if tokenizer.mask_token is None:
        raise ValueError(f"The tokenizer of '{loaded.name}' has no mask token, so it cannot fill in words.")
    texts = [t.replace(MASK, tokenizer.mask_token) for t in texts]
    batch = tokenizer(texts, padding=True, return_attention_mask=True, return_token_type_ids=False,
                      return_tensors="pt", verbose=False)
    lengths = batch["attention_mask"].sum(dim=1)  # (bs,)
    limit = max_tokens(loaded.model, tokenizer)
    if int(lengths.max()) > limit:
        raise ValueError(f"The text is {int(lengths.max())} tokens long for '{loaded.name}'; "
                         f"the model reads at most {limit}.")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


def _check_top_k(top_k: int) -> int:
    top_k = int(top_k)
    if not 1 <= top_k <= MAX_TOP_K:
        raise ValueError(f"Top-k must be between 1 and {MAX_TOP_K}; got {top_k}.")
    return top_k


# ---------------------------------------------------------------------------------------------------------------------
# Fill-mask


@torch.no_grad()
def predict_masks(loaded: LoadedModel, texts: Sequence[str], top_k: int = 5,
                  keep_distribution: bool = True) -> list[FillMask]:
    """Top-k guesses at every [MASK] of each text, one forward pass for the whole batch (texts already checked)."""
    top_k = _check_top_k(top_k)
    batch = encode(loaded, texts)
    model, tokenizer = loaded.model, loaded.tokenizer
    device = next(model.parameters()).device
    input_ids = batch["input_ids"].to(device)  # (bs, seq)
    select = input_ids == tokenizer.mask_token_id  # (bs, seq)
    counts = select.sum(dim=1).tolist()
    for text, count in zip(texts, counts):
        if count != text.count(MASK):
            raise ValueError(f"'{loaded.name}' read {count} masks in a text with {text.count(MASK)} {MASK} marks; "
                             "check the text for a stray mask token.")
    logits = masked_lm_logits(model, input_ids, batch["attention_mask"].to(device), select).float()  # (n, vocab)
    probs = logits.softmax(dim=-1)  # (n, vocab)
    top_probs, top_ids = probs.topk(min(top_k, probs.shape[-1]), dim=-1)  # (n, k)
    log_probs = logits.log_softmax(dim=-1).cpu() if keep_distribution else None  # (n, vocab)
    masks = [MaskPrediction(_token_strings(tokenizer, ids), p, ids,
                            log_probs[row] if log_probs is not None else None)
             for row, (p, ids) in enumerate(zip(top_probs.tolist(), top_ids.tolist()))]
    results, start = [], 0
    for text, count in zip(texts, counts):
        results.append(FillMask(loaded.name, text, masks[start:start + count]))
        start += count
    return results


def fill_mask(loaded: LoadedModel, text: str, top_k: int = 5) -> FillMask:
    """One model's top-k guesses at each [MASK] of a text."""
    return predict_masks(loaded, [check_text(text)], top_k)[0]


def _token_strings(tokenizer: PreTrainedTokenizerBase, ids: list[int]) -> list[str]:
    # A model may have more output rows than its tokenizer has entries; such a row has no string of its own.
    return [t if t is not None else f"[id {i}]" for i, t in zip(ids, tokenizer.convert_ids_to_tokens(ids))]


# ---------------------------------------------------------------------------------------------------------------------
# Agreement


@functools.lru_cache(maxsize=16)
def shared_vocabulary(first: PreTrainedTokenizerBase,
                      other: PreTrainedTokenizerBase) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Ids of the strings both vocabularies hold, as (ids in first, ids in other); None when the vocabularies are equal.

    Cached by tokenizer object: building it for two 120K vocabularies takes tens of milliseconds.
    """
    vocab_first, vocab_other = first.get_vocab(), other.get_vocab()
    if vocab_first == vocab_other:
        return None
    pairs = sorted((i, vocab_other[s]) for s, i in vocab_first.items() if s in vocab_other)
    ids_first = torch.tensor([p[0] for p in pairs], dtype=torch.long)
    ids_other = torch.tensor([p[1] for p in pairs], dtype=torch.long)
    return ids_first, ids_other


def kl_divergence(log_p: torch.Tensor, log_q: torch.Tensor) -> float:
    """KL(p || q) = sum p (log p - log q) for two log-distributions over the same entries."""
    return float((log_p.exp() * (log_p - log_q)).sum())


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


def _check_models(models: Sequence[LoadedModel]) -> None:
    if not 2 <= len(models) <= 3:
        raise ValueError(f"Compare two or three models; {len(models)} given.")


def _pairs(models: Sequence[LoadedModel], per_model: list[list[MaskPrediction]], top_k: int) -> list[PairAgreement]:
    """Every model after the first against the first, item by item."""
    reference = models[0]
    return [PairAgreement(reference.name, other.name, index,
                          [agreement(a, b, reference.tokenizer, other.tokenizer, top_k)
                           for a, b in zip(per_model[0], per_model[index])])
            for index, other in enumerate(models) if index > 0]


def compare(models: Sequence[LoadedModel], text: str, top_k: int = 5) -> SentenceComparison:
    """Two or three models' top-k at each [MASK] of a text, and each model's agreement with the first."""
    _check_models(models)
    text, top_k = check_text(text), _check_top_k(top_k)
    results = [predict_masks(m, [text], top_k)[0] for m in models]
    return SentenceComparison(text, top_k, results, _pairs(models, [r.masks for r in results], top_k))


# ---------------------------------------------------------------------------------------------------------------------
# Mask each word


def sentence_words(sentence: str) -> list[tuple[str, tuple[int, int]]]:
    """The words of a sentence as BERT's pre-tokenizer splits it (whitespace and punctuation), punctuation left out.

    Punctuation marks are not masked: guessing a comma says little about what a model kept.
    """
    return [(w, span) for w, span in BertPreTokenizer().pre_tokenize_str(sentence) if any(c.isalnum() for c in w)]


def mask_each_word(models: Sequence[LoadedModel], sentence: str, top_k: int = 5,
                   batch_size: int = BATCH_SIZE) -> WordStrip:
    """Mask each word of a sentence in turn (the whole word, all its pieces, as one [MASK]) and compare the models.

    One masked copy of the sentence per word, batched. A word is "recovered" by a model when its best guess is that
    word; for a word the model's tokenizer splits, recovery is None (one entry cannot be the whole word).
    """
    _check_models(models)
    sentence, top_k = check_text(sentence, with_masks=False), _check_top_k(top_k)
    words = sentence_words(sentence)
    if not words:
        raise ValueError("The sentence has no words to mask; type a sentence with letters or digits.")
    if len(words) > MAX_WORDS:
        raise ValueError(f"The sentence has {len(words)} words; 'Mask each word' takes at most {MAX_WORDS}.")
    variants = [sentence[:start] + MASK + sentence[end:] for _, (start, end) in words]
    results, recovered = [], []
    for loaded in models:
        masks = [r.masks[0] for chunk in _chunks(variants, batch_size) for r in predict_masks(loaded, chunk, top_k)]
        results.append(masks)
        recovered.append([_hit(loaded.tokenizer, word, m.tokens[0]) for (word, _), m in zip(words, masks)])
    pairs = _pairs(models, results, top_k)
    for masks in results:  # the distributions were needed only for KL
        for m in masks:
            m.log_probs = None
    return WordStrip(sentence, [w for w, _ in words], [span for _, span in words], results, recovered, pairs)


def _chunks(items: Sequence, size: int) -> list:
    return [items[i:i + size] for i in range(0, len(items), size)]


def _single_token(tokenizer: PreTrainedTokenizerBase, word: str) -> str | None:
    """The one vocabulary entry that spells `word`, or None when the tokenizer splits it or does not know it."""
    pieces = tokenizer.tokenize(word)
    if len(pieces) != 1 or pieces[0] == tokenizer.unk_token:
        return None
    return pieces[0]


def _hit(tokenizer: PreTrainedTokenizerBase, word: str, best: str) -> bool | None:
    expected = _single_token(tokenizer, word)
    return None if expected is None else best == expected


# ---------------------------------------------------------------------------------------------------------------------
# Probe-set summary


def probe_summary(models: Sequence[LoadedModel], probes: Sequence[FillMaskProbe] | None = None, top_k: int = 5,
                  batch_size: int = BATCH_SIZE) -> ProbeSummary:
    """Top-1 agreement, top-k overlap and mean KL with the first model over all probes; each model's accuracy.

    Accuracy counts a hit when a model's best guess is the expected word. A probe whose expected word the model's
    tokenizer splits into pieces (or maps to [UNK]) is counted as "split" and left out of that model's accuracy,
    because one vocabulary entry cannot be the whole word; agreement still uses every probe.
    """
    _check_models(models)
    top_k = _check_top_k(top_k)
    if probes is None:
        try:
            probes = fill_mask_probes()
        except FileNotFoundError:
            raise ValueError("The probe set assets/probes/fill_mask.tsv is missing; add it to use the probe summary.") \
                from None
    probes = list(probes)
    if not probes:
        raise ValueError("The probe set is empty.")
    for number, probe in enumerate(probes, start=1):
        if probe.sentence.count(MASK) != 1:
            raise ValueError(f"Probe {number} ('{probe.sentence[:60]}') must hold exactly one {MASK}.")
        check_text(probe.sentence)
    # Similar lengths in one batch waste less compute on padding.
    order = sorted(range(len(probes)), key=lambda i: len(probes[i].sentence))
    best: list[list[str]] = [[""] * len(probes) for _ in models]
    agreements: list[list[Agreement | None]] = [[None] * len(probes) for _ in models[1:]]
    for chunk in _chunks(order, batch_size):
        texts = [probes[i].sentence for i in chunk]
        per_model = [[r.masks[0] for r in predict_masks(m, texts, top_k)] for m in models]
        for pair in _pairs(models, per_model, top_k):
            for i, item in zip(chunk, pair.items):
                agreements[pair.other_index - 1][i] = item
        for m, masks in enumerate(per_model):
            for i, mask in zip(chunk, masks):
                best[m][i] = mask.tokens[0]
    scores, rows = [], []
    for m, loaded in enumerate(models):
        hits = [_hit(loaded.tokenizer, p.expected, best[m][i]) for i, p in enumerate(probes)]
        scores.append(ModelScore(loaded.name, sum(h is True for h in hits), sum(h is not None for h in hits),
                                 sum(h is None for h in hits)))
    for i, probe in enumerate(probes):
        row = {"sentence": probe.sentence, "expected": probe.expected, "topic": probe.topic}
        for m, loaded in enumerate(models):
            row[loaded.name if loaded.name not in row else f"{loaded.name} ({m + 1})"] = display_word(best[m][i])
        rows.append(row)
    pairs = [PairAgreement(models[0].name, models[o].name, o, [a for a in agreements[o - 1]])
             for o in range(1, len(models))]
    return ProbeSummary([m.name for m in models], len(probes), top_k, scores, pairs, rows)

"""Fill-mask predictions of several masked LMs side by side, and the figures that say how close they are.

Rules every function here follows:
  - Each [MASK] is predicted on its own, all of a text's masks in one forward pass, as transformers' fill-mask
    pipeline does: the probabilities at one mask do not depend on what fills another.
  - The MLM head runs only at the masked positions (see core.masked_lm).
  - Models are compared by the strings they predict, and KL is taken over the shared-string vocabulary, so models
    with different vocabularies compare (see core.agreement).
  - A [MASK] is filled with one vocabulary entry. A word that a vocabulary splits into several pieces can only show up
    as its first piece; so a probe whose expected word a model's tokenizer splits (or does not know) is reported as
    "split" for that model and left out of that model's accuracy.
"""
from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from tokenizers.pre_tokenizers import BertPreTokenizer
from transformers import PreTrainedTokenizerBase

from core.compare.agreement import Agreement, PairAgreement, pair_agreements
from core.compare.probes import FillMaskProbe, fill_mask_probes
from core.compare.sentences import visible_text
from core.formatting import shown
from core.models.masked_lm import MASK, MaskPrediction, display_word, encode, masked_lm_logits
from core.models.tokenizer import nfc
from core.models.zoo import LoadedModel

MAX_MASKS = 20
MAX_CHARS = 2000
MAX_WORDS = 64  # "mask each word" runs one masked copy of the sentence per word
MAX_TOP_K = 50
SUMMARY_TOP_K = 5  # the probe summary's top-k overlap
BATCH_SIZE = 32


@dataclass
class FillMask:
    """One model's predictions for every [MASK] of one text, in the order they appear."""
    model: str
    text: str
    masks: list[MaskPrediction]


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

    def pair_of(self, index: int) -> PairAgreement | None:
        """The agreement of model `index` with model 0 (None for model 0 itself)."""
        return next((p for p in self.pairs if p.other_index == index), None)


SPLIT_NOTE = ("split (left out): probes whose expected word this model's vocabulary splits into pieces or does not "
              "know; one vocabulary entry cannot be the whole word, so they are left out of its accuracy (agreement "
              "still counts them).")


def summary_columns(top_k: int | str) -> list[str]:
    """The columns of `summary_rows`, in order; `top_k` names the overlap column ("top-5 overlap"), "k" for a
    table not yet filled."""
    return ["model", "top-1 accuracy", "hits / scored", "split (left out)", "top-1 agreement with model 1",
            f"top-{top_k} overlap", "mean KL (nats)"]


def summary_rows(summary: ProbeSummary, name: Callable[[str], str] = str) -> list[dict]:
    """One row per model: accuracy on the probes it can score, and its mean agreement with model 1.

    Fractions in [0, 1] rounded to 3 places, KL in nats; None where a figure does not apply (model 1 against itself)
    or cannot be computed (no probe scored, no shared string). `name` shortens model names for display.
    """
    columns = summary_columns(summary.top_k)
    rows = []
    for m, score in enumerate(summary.scores):
        pair = summary.pair_of(m)
        values = [f"{m + 1}. {name(score.model)}", _round(score.accuracy), f"{score.hits} / {score.scored}",
                  score.split] + ([_round(pair.mean(k)) for k in ("top1", "overlap", "kl")] if pair else [None] * 3)
        rows.append(dict(zip(columns, values)))
    return rows


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


# ---------------------------------------------------------------------------------------------------------------------
# Input checks


EXAMPLE = "e.g. 'Я люблю пить [MASK] с лимоном.'"
# A blank typed another way than [MASK] (the models read it as plain text): a word "mask" (Latin, Cyrillic look-alike
# letters, or Russian "маска") with brackets around or beside it, empty brackets, or underscores.
_BLANK_LIKE = re.compile(r"(?P<open>[\[<({［【〔]?)[ \t]*\b(?P<word>[mм][aа][sсѕ][kк][aа]?)\b[ \t]*"
                         r"(?P<close>[\]>)}］】〕]?)"
                         r"|(?P<empty>\[[ \t]*[._?…*-]*[ \t]*\])|(?P<line>_{2,}|(?<!\w)_(?!\w))", re.IGNORECASE)
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
FULL_WIDTH = "［］【】〔〕"


def mistyped_blanks(text: str) -> list[tuple[str, str]]:
    """Each blank of `text` typed another way than [MASK], in order: (as typed, what is wrong with it), such as
    ("[mask]", "is not in capitals") or ("<mask>", "is RoBERTa's mask, not BERT's").

    Not counted: [MASK] itself, and words that only look alike where text may hold them: "mask" or "маска" in a
    sentence, "(mask)" or "(маска)" in round brackets."""
    found = []
    for match in _BLANK_LIKE.finditer(text):
        typed = match.group(0).strip()
        if match.group("empty") or match.group("line"):
            found.append((typed, "has no word between its brackets" if match.group("empty") else
                          "is an underscore" if typed == "_" else "is a line of underscores"))
            continue
        word, opened, closed = match.group("word"), match.group("open"), match.group("close")
        if typed == MASK:
            continue
        if {opened, closed} & set(FULL_WIDTH):  # a Chinese or Japanese keyboard's brackets
            found.append((typed, "has full-width brackets, not the plain [ and ]"))
            continue
        if _CYRILLIC.search(word):
            if opened == "[":
                found.append((typed, "has Cyrillic letters in it"))
        elif opened == "[" and closed == "]":
            found.append((typed, "has spaces inside its brackets" if typed.upper() != MASK else "is not in capitals"))
        elif opened == "[" or closed == "]":
            found.append((typed, "has no closing bracket" if opened == "[" else "has no opening bracket"))
        elif opened == "<" or closed == ">":
            found.append((typed, "is RoBERTa's mask, not BERT's"))
        elif word != "MASK":  # "(mask)" or "mask" in lower case: a word, as in a gloss
            continue
        elif opened and closed:
            found.append((typed, "is not in square brackets"))
        else:
            found.append((typed, "has no square brackets"))
    return found


def _touching_masks(text: str) -> str:
    """The first stretch of `text` where a [MASK] touches a letter, a digit or another [MASK] ("" when none does):
    filled in with a whole word, it would run into them."""
    for match in re.finditer(re.escape(MASK), text):
        before, after = text[:match.start()], text[match.end():]
        if before.endswith(MASK) or after.startswith(MASK) or (before[-1:].isalnum() or after[:1].isalnum()):
            left, right = before[-24:], after[:24]  # cut at spaces: a word shown whole or not at all
            left = "…" + left.split(" ", 1)[-1] if len(before) > 24 else left
            right = right.rsplit(" ", 1)[0] + "…" if len(after) > 24 else right
            return (left + MASK + right).strip()
    return ""


def check_text(text: str | None, with_masks: bool | None = True) -> str:
    """The text stripped of white space and of characters that draw nothing (see sentences.visible_text) and
    composed (NFC), or a ValueError with a sentence saying what to change.

    with_masks: True, the text must hold a [MASK]; False, it must hold none; None, either (the [MASK]s of a sentence
    whose words are masked in turn are filled in first, see fill_in, so none may touch a letter or another [MASK]).
    Any of them refuses a blank typed another way (see mistyped_blanks), naming it and how to write it, as the models
    would read it as text. Composing here (the tokenizers compose too) keeps words, spans and tables in the
    spelling the model read.
    """
    if text is not None and not isinstance(text, str):
        raise ValueError(f"The sentence must be text, not a {type(text).__name__}.")
    text = nfc(visible_text(text or "").strip())  # a U+202E reordered the titles drawn from it
    if not text:
        raise ValueError("The text is empty: type a Russian sentence" + (" with [MASK] for the missing word." if
                                                                           with_masks else "."))
    if len(text) > MAX_CHARS:
        raise ValueError(f"The text is {shown(len(text))} characters long; shorten it to at most {shown(MAX_CHARS)}.")
    count, typos = text.count(MASK), mistyped_blanks(text)
    typed, wrong = typos[0] if typos else ("", "")
    more = f" (and {shown(len(typos) - 1)} more like it)" if len(typos) > 1 else ""
    if with_masks is False and (count or typos):
        if not count:
            raise ValueError(f"'Mask each word' takes a sentence without a blank; '{typed}'{more} looks like one: take "
                             "it out, or write it as [MASK] and use Predict.")
        raise ValueError(f"'Mask each word' takes a sentence without {MASK}; remove the marks or use Predict.")
    write = f"write {MASK} (in capitals)" if wrong == "is not in capitals" else f"write the blank as {MASK}"
    if typos and not count:
        if with_masks is None:
            raise ValueError(f"'{typed}'{more} {wrong}, so the models would read it as text. Write {MASK} in "
                             "capitals where a word is to be filled in first, or remove the mark.")
        raise ValueError(f"The text has no {MASK}: '{typed}'{more} {wrong}, so the models would read it as text; "
                         f"{write} where a word is missing, {EXAMPLE}")
    if typos:
        raise ValueError(f"Besides its {MASK}, the text has '{typed}'{more}, which {wrong}, so the models would read "
                         f"it as text; write each blank as {MASK}, or take '{typed}' out.")
    if with_masks and count == 0:
        raise ValueError(f"The text has no {MASK}: write {MASK} where a word is missing, {EXAMPLE}")
    if count > MAX_MASKS:
        raise ValueError(f"The text has {shown(count)} {MASK} marks; use at most {shown(MAX_MASKS)}.")
    touching = _touching_masks(text) if with_masks is None else ""
    if touching:
        raise ValueError(f"'Mask each word' fills each {MASK} in with a whole word, but in '{touching}' a {MASK} "
                         "touches a letter or another [MASK], so that word would run into it; put a space on each "
                         f"side of {MASK}.")
    return text


def _check_top_k(top_k: int) -> int:
    """top_k as an int from 1 to MAX_TOP_K (a float with no fraction counts); ValueError for anything else."""
    whole = (isinstance(top_k, (int, float)) and not isinstance(top_k, bool) and math.isfinite(top_k)
             and top_k == int(top_k))
    if not whole or not 1 <= top_k <= MAX_TOP_K:
        got = f"{int(top_k):,}" if whole else repr(top_k)  # 1e9 as a person reads it, not 1000000000.0
        raise ValueError(f"Top-k must be a whole number from 1 to {MAX_TOP_K}; got {got}.")
    return int(top_k)


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
# Comparing two or three models


def _check_models(models: Sequence[LoadedModel]) -> None:
    if not 2 <= len(models) <= 3:
        raise ValueError(f"Compare two or three models; {len(models)} given.")


def compare(models: Sequence[LoadedModel], text: str, top_k: int = 5) -> SentenceComparison:
    """Two or three models' top-k at each [MASK] of a text, and each model's agreement with the first."""
    _check_models(models)
    text, top_k = check_text(text), _check_top_k(top_k)
    results = [predict_masks(m, [text], top_k)[0] for m in models]
    return SentenceComparison(text, top_k, results, pair_agreements(models, [r.masks for r in results], top_k))


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
        raise ValueError(f"The sentence has {shown(len(words))} words; 'Mask each word' takes at most "
                         f"{shown(MAX_WORDS)}.")
    variants = [sentence[:start] + MASK + sentence[end:] for _, (start, end) in words]
    results, recovered = [], []
    for loaded in models:
        masks = [r.masks[0] for chunk in _chunks(variants, batch_size) for r in predict_masks(loaded, chunk, top_k)]
        results.append(masks)
        recovered.append([_hit(loaded.tokenizer, word, m.tokens[0]) for (word, _), m in zip(words, masks)])
    pairs = pair_agreements(models, results, top_k)
    for masks in results:  # the distributions were needed only for KL
        for m in masks:
            m.log_probs = None
    return WordStrip(sentence, [w for w, _ in words], [span for _, span in words], results, recovered, pairs)


@dataclass
class FilledIn:
    """A sentence whose [MASK]s were each filled in with one word, so that its words can be masked in turn."""
    sentence: str  # the text with every [MASK] replaced by its word
    words: list[str]  # the word put in at each [MASK], in order
    spans: list[tuple[int, int]]  # character span of each word put in, in `sentence`
    guessed_by: str | None  # the model whose best guesses went in; None: the probe set's expected word


def fill_in(reference: LoadedModel, text: str, probes: Sequence[FillMaskProbe] | None = None) -> FilledIn:
    """Every [MASK] of a text replaced by one whole word: the expected word when the text is a sentence of the probe
    set (`probes`, by default the bundled one), else the reference model's most probable whole word at each mask
    (each mask predicted on its own, as everywhere here). A text without [MASK] comes back as it is.

    ValueError when no word is left once the masks are taken out, or when the model has no whole word (a
    continuation piece, punctuation or a special token only) among its MAX_TOP_K best guesses at a mask.
    """
    text = check_text(text, with_masks=None)
    if MASK not in text:
        return FilledIn(text, [], [], None)
    if not sentence_words(text.replace(MASK, " ")):
        raise ValueError(f"The sentence has no words besides {MASK}; type a sentence around it, "
                         "e.g. 'Я люблю пить [MASK] с лимоном.'")
    words, guessed_by = _expected_words(text, probes), None
    if words is None:
        guessed_by = reference.name
        words = []
        for number, guess in enumerate(predict_masks(reference, [text], MAX_TOP_K, keep_distribution=False)[0].masks,
                                       start=1):
            word = next((t for t in guess.tokens if t.isalnum()), None)  # not "##ка", not "," and not "[UNK]"
            if word is None:
                raise ValueError(f"'{reference.name}' guesses no whole word among its {MAX_TOP_K} best at {MASK} "
                                 f"number {number}; type the word there yourself.")
            words.append(word)
    pieces = text.split(MASK)
    sentence, spans = pieces[0], []
    for word, rest in zip(words, pieces[1:]):
        spans.append((len(sentence), len(sentence) + len(word)))
        sentence += word + rest
    return FilledIn(sentence, words, spans, guessed_by)


def _expected_words(text: str, probes: Sequence[FillMaskProbe] | None) -> list[str] | None:
    """The expected word of the probe whose sentence is `text`, as a list; None when no probe is."""
    if probes is None:
        try:
            probes = fill_mask_probes()
        except FileNotFoundError:
            probes = ()
    return next(([p.expected] for p in probes if p.sentence == text), None)


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


def probe_summary(models: Sequence[LoadedModel], probes: Sequence[FillMaskProbe] | None = None,
                  top_k: int = SUMMARY_TOP_K,
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
        for pair in pair_agreements(models, per_model, top_k):
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

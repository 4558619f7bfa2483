"""Predictions results as text: the agreement and per-word Markdown, and the probe summary's tables."""
from __future__ import annotations

import math

import pandas as pd

from core.compare import predict
from ui.page_text import markdown_text
from ui.predict_figures import kl_text, label

PROBE_COLUMNS = ["sentence", "expected", "topic"]  # then one column per model, named after it


def _noted(note: str) -> str:
    """The language note as its own paragraph under the sentence line; "" when there is none."""
    return f"*{note}*\n\n" if note else ""


def _cell(text: str) -> str:
    """Text shown as typed inside Markdown (a table cell, the sentence line): never read as HTML or emphasis."""
    return markdown_text(text)


def agreement_markdown(result: predict.SentenceComparison, note: str = "") -> str:
    """The sentence, `note` under it (see language_note), and each model's agreement with model 1 at each mask."""
    lines = [f"| mask | model | top-1 guesses | top-1 agreement | top-{result.top_k} overlap | KL (nats) |",
             "|---|---|---|---|---|---|"]
    reference = result.results[0]
    notes = set()
    for pair in result.pairs:
        other = result.results[pair.other_index]
        for m, item in enumerate(pair.items):
            words = f"{reference.masks[m].words[0]} / {other.masks[m].words[0]}"
            lines.append(f"| {m + 1} | {_cell(label(pair.other))} | {_cell(words)} | {'yes' if item.top1 else 'no'} | "
                         f"{item.overlap:.0%} | {kl_text(item.kl)} |")
            if item.shared_vocab < reference.masks[m].log_probs.numel():
                notes.add(f"KL between {_cell(label(pair.reference))} and {_cell(label(pair.other))} is taken over the "
                          f"{item.shared_vocab:,} vocabulary entries whose string both vocabularies hold.")
    head = (f"**Sentence:** {_cell(result.text)}\n\n" + _noted(note) +
            f"Agreement with model 1 (**{_cell(label(result.results[0].model))}**), KL(model 1 ‖ model).")
    return "\n".join([head, "", *lines, "", *sorted(notes)])


def filled_note(filled: predict.FilledIn) -> str:
    """One sentence saying which word went in at each [MASK] before each word was masked; "" when none did."""
    if not filled.words:
        return ""
    words = ", ".join(f"*{_cell(w)}*" for w in filled.words)
    source = ("the probe set's expected word" if filled.guessed_by is None else
              f"model 1's (**{_cell(label(filled.guessed_by))}**) most probable whole word"
              + ("s" if len(filled.words) > 1 else ""))
    marks, them = ("Each [MASK] was", "those too") if len(filled.words) > 1 else ("The [MASK] was", "that one too")
    return (f"{_cell(marks)} filled in with {source} first: {words}. Each word of the sentence, {them}, is then "
            "masked in turn; the table marks what was filled in.")


def word_strip_markdown(strip: predict.WordStrip, model_names: list[str],
                        filled: predict.FilledIn | None = None, note: str = "") -> str:
    """The sentence, `note` under it (see language_note), and each model's best guess for each masked word."""
    filled_spans = set(filled.spans) if filled else set()
    header = "| word | " + " | ".join(_cell(label(n)) for n in model_names) + " |"
    lines = [header, "|---" * (len(model_names) + 1) + "|"]
    for j, word in enumerate(strip.words):
        cells = []
        for m in range(len(model_names)):
            mark = " = word" if strip.recovered[m][j] else ""
            cells.append(_cell(strip.results[m][j].words[0]) + mark)
        # "(split)" describes the masked word (no single entry of the vocabulary spells it), not a model's guess
        split = [label(n) for m, n in enumerate(model_names) if strip.recovered[m][j] is None]
        shown_word = (_cell(word) + (" *(filled in)*" if strip.spans[j] in filled_spans else "")
                      + (f" (split: {_cell(', '.join(split))})" if split else ""))
        lines.append(f"| {shown_word} | " + " | ".join(cells) + " |")
    head = (f"**Sentence:** {_cell(strip.sentence)}\n\n" + _noted(note)
            + (filled_note(filled) + "\n\n" if filled else "")
            + "Best guess of each model for each masked word. *= word*: the guess is the masked word itself. "
            "*(split: model)* after a masked word: that model's vocabulary cannot spell it as one entry, so no guess "
            "can be it. In the strip above, ✓ and ✗ say something else: whether the model's top-1 guess agrees with "
            "model 1's.")
    return head + "\n\n" + "\n".join(lines)


def summary_table(summary: predict.ProbeSummary | None = None, as_shown: bool = True,
                  used: dict[str, str] | None = None) -> pd.DataFrame:
    """The probe-set summary, one row per model; with no summary, its empty table with the same headers, the
    overlap's "top-k overlap" (Top-k may be any k when the summary runs).

    As shown on the page (`as_shown`), the shares read as percentages like the chart's; the downloads keep the
    fractions as numbers. `used`: model name -> the copy of it loaded (checkpoint_used), said after its name."""
    if summary is None:
        return pd.DataFrame(columns=predict.summary_columns("k"))
    used = used or {}
    columns = predict.summary_columns(summary.top_k)
    table = pd.DataFrame(predict.summary_rows(summary, lambda name: label(name) + (
        f" ({used[name]})" if used.get(name) else "")), columns=columns)
    if as_shown:
        for column in ("top-1 accuracy", "top-1 agreement with model 1", f"top-{summary.top_k} overlap"):
            table[column] = [_percent(v) for v in table[column]]
    return table


def _percent(value) -> str:
    """A share in [0, 1] as "10.1%"; "" where it does not apply."""
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.1%}"


def probe_table(summary: predict.ProbeSummary | None = None) -> pd.DataFrame:
    """Every probe with each model's best guess; with no summary, the empty table with its fixed headers."""
    if summary is None:
        return pd.DataFrame(columns=PROBE_COLUMNS)
    return pd.DataFrame(summary.rows)

"""The Predictions tab: two or three models fill in the same [MASK] side by side, with figures of how close they are.

Pure figure and table builders first, then the handlers (top-level functions of the app context and the inputs), then
build(): layout and wiring only.
"""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.bench.runtimes.exported import exported_folders, load_exported, run_exports
from core.compare import predict, tables
from core.compare.probes import fill_mask_probes
from core.compare.sentences import word_scripts
from core.models import zoo
from core.runs.checkpoints import step_of
from core.runs.store import model_source, run_dir_of, run_info
from ui import lesson
from ui.context import (
    AppContext,
    CheckedNumber,
    ErrorLines,
    VisitorLimit,
    check_two_models,
    cleared,
    failure_line,
    markdown_text,
    model_name,
    page_text,
    text_input,
    whole_number,
)
from ui.downloads import Downloads, file_box, file_boxes, table

DEFAULT_TOP_K = 5
MAX_SHOWN_TOP_K = 20  # the most guesses the page shows (core.compare.predict itself takes up to MAX_TOP_K)
QUEUE_GROUP = "predictions"  # the tab's actions share one concurrency budget
CONCURRENCY = 4  # predictions computed at once, all sessions together
PER_SESSION = 4  # predictions one session may have waiting or running
KEPT_S = 600  # seconds a session keeps what an action showed (the downloads' follow-up reads it at once)
FALLBACK_EXAMPLES = [
    "Я сегодня приготовила овощной [MASK] с фрикадельками.",
    "Давай вечером сходим в [MASK], там новый фильм.",
    "Не забудь взять [MASK], на улице дождь.",
    "Мой [MASK] опять разрядился, дай зарядку.",
]
# D3's grey (#7f7f7f) left out: grey means "only one model guesses it" (UNSHARED), never a shared word
SHARED_PALETTE = [c for c in qualitative.Plotly + qualitative.D3 if c.lower() not in ("#7f7f7f", "#c9ced6")]
UNSHARED = "#c9ced6"
PROBE_COLUMNS = ["sentence", "expected", "topic"]  # then one column per model, named after it
NO_RUSSIAN = "This sentence has no Russian words; the models here know Russian, so their guesses say little."
LITTLE_RUSSIAN = ("Most words of this sentence are not Russian; the models here know Russian, so their guesses say "
                  "little.")

INTRO = f"""Type a Russian sentence with `[MASK]` where a word is missing (up to {predict.MAX_MASKS} masks), or pick one
from the probe set. Each model's top-k guesses stand side by side; a word found in more than one model's list has
the same colour everywhere, words only one model guesses are grey.

- Each `[MASK]` is predicted **on its own**, all of them in one forward pass (as the `transformers` fill-mask pipeline
  does): the guesses at one mask do not know what fills another.
- A `[MASK]` is filled with **one vocabulary entry**; a word the vocabulary splits can show only as its first piece.
  Continuation pieces are drawn as `…ка` (the vocabulary's `##ка`).
- Models are compared by the **strings** they predict, so models with different vocabularies compare.
  KL is KL(model 1 ‖ other) over the entries whose string both vocabularies hold (the plain KL when they are equal).
- **Mask each word** masks every word of the sentence in turn (the whole word as one `[MASK]`). A `[MASK]` already
  in it is filled in first: with the expected word when the sentence is one of the probe set (as the default is),
  else with model 1's most probable whole word; the result names the word put in.
- Write each blank as `[MASK]`, in capitals with its square brackets: the models read nothing else as a blank, so
  `[mask]`, an unclosed `[MASK`, `<mask>` or `___` is refused with a line saying what to write instead.
- **Top-k** takes a whole number from 1 to {MAX_SHOWN_TOP_K}; another is refused, never changed silently. It is
  the number of guesses shown at each mask, and the k of the probe summary's top-k overlap.
- A run's student that has not finished (stopped, failed or still training) loads from its newest checkpoint; the
  results say which step's.
- A sentence with no Russian words, or mostly other ones, is still predicted, with a note under it: the models
  here know Russian, so their guesses at English, emoji or digits say little.
- Text is read with its letters composed (NFC), so й and ё typed as two characters (as macOS often copies them) read
  the same as one.
- **Downloads** appear under each result: its tables as CSV, its figure as an HTML page that opens without a network.
"""


def example_sentences() -> list[str]:
    """The probe sentences, the lesson's example first: the page opens on a sentence the bundled teacher and student
    both get right (the first probe has the small teacher wrong, a poor first screen for a class)."""
    try:
        sentences = [p.sentence for p in fill_mask_probes()] or FALLBACK_EXAMPLES
    except FileNotFoundError:
        return FALLBACK_EXAMPLES
    figures = lesson.read_figures()
    first = figures["lesson_example"]["sentence"] if figures and "lesson_example" in figures else None
    return [first, *(s for s in sentences if s != first)] if first in sentences else sentences


# ---------------------------------------------------------------------------------------------------------------------
# State


@dataclass(frozen=True)
class ModelChoice:
    """The three model dropdowns: model 1 is the reference, model 3 may be empty."""
    model_1: str | None = None
    model_2: str | None = None
    model_3: str | None = None

    def names(self, suggested: Sequence[str] = ()) -> list[str]:
        """The chosen names, stripped, in box order with empty boxes left out (the first is the reference);
        ValueError when one is not a name (not text, too long) or fewer than two are chosen (ui.context
        .check_two_models, which suggests a model of `suggested`, the app's default pair)."""
        given = (self.model_1, self.model_2, self.model_3)
        chosen = [model_name(v, f"Model {i}") for i, v in enumerate(given, start=1)]
        check_two_models(chosen, suggested)
        return [n for n in chosen if n]


ACTIONS = {"fill_mask": "Predict", "mask_each_word": "Mask each word", "probe_summary": "Probe summary",
           "compare_exported": "Compare with PyTorch"}


def status_line(action: str, message: str) -> str:
    """The visible line after a failed action: what failed and why (the message shown as written, never as HTML)."""
    return failure_line(ACTIONS[action], message)


def _models(ctx: AppContext, choice: ModelChoice, progress) -> list:
    return [ctx.load(name, progress=progress) for name in choice.names(ctx.pair)]


def checked_top_k(value) -> int:
    """Top-k as a whole number from 1 to MAX_SHOWN_TOP_K; ValueError otherwise."""
    return whole_number(value, "Top-k", 1, MAX_SHOWN_TOP_K)


def checked_request(model_1, model_2, model_3, top_k, sentence, with_masks: bool | None,
                    suggested: Sequence[str] = ()) -> tuple[ModelChoice, int, str]:
    """Every input of Predict and Mask each word checked before any model loads: (models, top-k, the text);
    with_masks as core.compare.predict.check_text takes it, `suggested` as ModelChoice.names."""
    choice = ModelChoice(model_1, model_2, model_3)
    choice.names(suggested)
    k = checked_top_k(top_k)
    return choice, k, predict.check_text(text_input(sentence, "The sentence"), with_masks=with_masks)


def language_note(text: str) -> str:
    """The note shown with the results of a sentence that is not Russian (it is still predicted); "" for one that
    is. `text` is the sentence as typed, before Mask each word fills its [MASK]s in with a model's words."""
    scripts = word_scripts(text)
    if scripts.russian:
        return ""
    return LITTLE_RUSSIAN if scripts.cyrillic else NO_RUSSIAN


def _noted(note: str) -> str:
    """The language note as its own paragraph under the sentence line; "" when there is none."""
    return f"*{note}*\n\n" if note else ""


def _notices(models: list) -> list[str]:
    """The one-line notices of loading (e.g. a cased vocabulary read cased), once each."""
    return list(dict.fromkeys(m.notice for m in models if getattr(m, "notice", "")))


RUN_STATES = {"stopped": "the run was stopped", "failed": "the run failed", "running": "the run is still training",
              "queued": "the run waits in the queue", "done": "the run finished", "damaged": "the run is damaged"}


def checkpoint_used(ctx: AppContext, name: str) -> str:
    """Which copy of a run's student "run:RUN_ID" loads while the run has no final model: "the checkpoint at step 120
    of 600, the run was stopped" (core.runs.store.model_source's rule, which the model cache follows too); "" for
    any other model, a finished run's student and run:RUN_ID@init included."""
    if not name.startswith("run:"):
        return ""
    try:
        run_id, copy = zoo.run_name_parts(name)
        run_dir = run_dir_of(run_id, ctx.launcher.root)
        source = None if copy else model_source(run_dir)
        info = run_info(run_dir) if source else {}
    except (ValueError, OSError):  # loaded a moment ago: a run deleted since is said by the next request
        return ""
    if source is None or source[0] == "final":
        return ""
    total, state = info.get("max_steps"), RUN_STATES.get(info.get("state"))
    of = f" of {total:,}" if isinstance(total, int) and not isinstance(total, bool) else ""
    return f"the checkpoint at step {step_of(source[1]):,}{of}" + (f", {state}" if state else "")


def model_notes(ctx: AppContext, models: list) -> str:
    """What a result says under it of the models it used, as Markdown paragraphs: the checkpoint each unfinished
    run's student was loaded from (checkpoint_used), then the notices of loading; "" when there is nothing to say."""
    used = [f"{label(m.name)}: {line}." for m in {m.name: m for m in models}.values()
            if (line := checkpoint_used(ctx, m.name))]
    return "".join(f"\n\n*{markdown_text(n)}*" for n in used + _notices(models))


# ---------------------------------------------------------------------------------------------------------------------
# Figures and tables


def label(name: str) -> str:
    """A model name short enough for a plot title: a local folder shows as its last part."""
    return Path(name).name if "/" in name and Path(name).is_absolute() else name


def _cell(text: str) -> str:
    """Text shown as typed inside Markdown (a table cell, the sentence line): never read as HTML or emphasis."""
    return markdown_text(text)


def _shared_colours(token_lists: list[list[str]]) -> dict[str, str]:
    """One colour for each string in the top-k of two or more models."""
    seen: dict[str, int] = {}
    for tokens in token_lists:
        for token in set(tokens):
            seen[token] = seen.get(token, 0) + 1
    order = [t for tokens in token_lists for t in tokens]
    shared = sorted({t for t, n in seen.items() if n > 1}, key=order.index)
    return {t: SHARED_PALETTE[i % len(SHARED_PALETTE)] for i, t in enumerate(shared)}


def sentence_title(text: str, limit: int = 90) -> str:
    """The sentence a figure shows, quoted, shortened at a word to about `limit` characters, escaped: plotly reads
    titles as HTML."""
    if len(text) > limit:
        text = (text[:limit - 1].rsplit(" ", 1)[0] or text[:limit - 1]) + " …"
    return "«" + page_text(text) + "»"


PROBABILITY_AXIS = "probability (%)"
GUESS_AXIS = "guess (best first)"


def prediction_figure(result: predict.SentenceComparison) -> go.Figure:
    """Horizontal bars: one row of subplots per mask, one subplot per model, best guess on top; titled with the
    sentence, so the figure says what it shows, and each axis with what it holds (PROBABILITY_AXIS, GUESS_AXIS)."""
    masks, models = len(result.results[0].masks), len(result.results)
    titles = [page_text(label(r.model)) + (f" · mask {m + 1}" if masks > 1 else "")
              for m in range(masks) for r in result.results]
    row_height = 90 + 24 * result.top_k  # pixels, the probability scale and its title under the bars included
    height = masks * row_height + 70
    fig = make_subplots(rows=masks, cols=models, subplot_titles=titles, horizontal_spacing=0.12,
                        vertical_spacing=85 / height if masks > 1 else 0.0)
    # One probability scale for every subplot: each of its own made a 20% bar as long as another model's 90% one.
    top = max(p for r in result.results for guess in r.masks for p in guess.probs)
    for m in range(masks):
        colours = _shared_colours([r.masks[m].tokens for r in result.results])
        for c, r in enumerate(result.results):
            guess = r.masks[m]
            words = [page_text(w) for w in guess.words]  # plotly reads tick and hover text as HTML
            fig.add_trace(go.Bar(
                x=guess.probs, y=list(range(len(guess.tokens))), orientation="h",
                marker_color=[colours.get(t, UNSHARED) for t in guess.tokens],
                text=[f"{p:.1%}" for p in guess.probs], textposition="auto",
                customdata=words, hovertemplate="%{customdata}: %{x:.2%}<extra></extra>", showlegend=False,
            ), row=m + 1, col=c + 1)
            fig.update_yaxes(tickvals=list(range(len(guess.tokens))), ticktext=words, autorange="reversed",
                             title=dict(text=GUESS_AXIS, standoff=6), row=m + 1, col=c + 1)
            fig.update_xaxes(range=[0, top * 1.05], tickformat=".0%", nticks=5,
                             title=dict(text=PROBABILITY_AXIS, standoff=6), row=m + 1, col=c + 1)
    # The title is placed in pixels from the top: at y=0.99 of a 20-mask figure (3,500 px) it sat 35 px down, on
    # the first row's subplot titles. The top margin leaves it its own band above them.
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=90, b=10), bargap=0.2,
                      title=dict(text=sentence_title(result.text), x=0.5, xanchor="center", y=1.0, yref="container",
                                 yanchor="top", pad=dict(t=12), font=dict(size=14)))
    return fig


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
                         f"{item.overlap:.0%} | {_kl_text(item.kl)} |")
            if item.shared_vocab < reference.masks[m].log_probs.numel():
                notes.add(f"KL between {_cell(label(pair.reference))} and {_cell(label(pair.other))} is taken over the "
                          f"{item.shared_vocab:,} vocabulary entries whose string both vocabularies hold.")
    head = (f"**Sentence:** {_cell(result.text)}\n\n" + _noted(note) +
            f"Agreement with model 1 (**{_cell(label(result.results[0].model))}**), KL(model 1 ‖ model).")
    return "\n".join([head, "", *lines, "", *sorted(notes)])


def _kl_text(kl: float) -> str:
    return "n/a (no shared strings)" if math.isnan(kl) else f"{kl:.3f}"


# The KL scale spans the whole strip (one row alone left it a few pixels long, its ticks on top of each other),
# with a few ticks well apart.
KL_COLORBAR = dict(title=dict(text="KL (nats)", side="top"), len=1.0, lenmode="fraction", y=0.5, yanchor="middle",
                   thickness=14, nticks=5, tickformat=".2g", ypad=0)


def strip_height(pairs: int) -> int:
    """The strip's height in pixels: tall enough that the KL scale has room for its ticks."""
    return max(320, 170 + 120 * pairs)


MASKED_WORD_AXIS = "masked word (in sentence order)"


def word_strip_figure(strip: predict.WordStrip) -> go.Figure:
    """A heat strip: words on x (titled MASKED_WORD_AXIS under the last row); for each model against model 1 a row
    of top-1 agreement and a row of KL, each row named beside it, the KL scale in nats."""
    pairs = strip.pairs
    fig = make_subplots(rows=2 * len(pairs), cols=1, shared_xaxes=True, vertical_spacing=0.08)
    x = list(range(len(strip.words)))
    kl_max = max([a.kl for p in pairs for a in p.items if not math.isnan(a.kl)] + [1e-6])
    for i, pair in enumerate(pairs):
        reference, other = strip.results[0], strip.results[pair.other_index]
        hover = [page_text(f"{w}: {reference[j].words[0]} / {other[j].words[0]}") for j, w in enumerate(strip.words)]
        name = page_text(label(pair.other))
        agree = [a.top1 for a in pair.items]
        fig.add_trace(go.Heatmap(
            z=[agree], x=x, y=[f"top-1 = model 1's? · {name}"], zmin=0, zmax=1,
            colorscale=[[0, "#e4572e"], [1, "#4caf50"]], showscale=False,
            text=[["✓" if v else "✗" for v in agree]], texttemplate="%{text}", customdata=[hover],
            hovertemplate="%{customdata}<extra></extra>", xgap=2), row=2 * i + 1, col=1)
        kl = [a.kl for a in pair.items]
        fig.add_trace(go.Heatmap(
            z=[kl], x=x, y=[f"KL · {name}"], zmin=0, zmax=kl_max, colorscale="Blues",
            text=[[_kl_text(v) for v in kl]], texttemplate="%{text}", customdata=[hover],
            hovertemplate="%{customdata}<br>KL %{z:.3f}<extra></extra>", xgap=2, showscale=i == 0,
            colorbar=KL_COLORBAR),
            row=2 * i + 2, col=1)
    fig.update_xaxes(tickvals=x, ticktext=[page_text(w) for w in strip.words], tickangle=-30)
    fig.update_xaxes(title=dict(text=MASKED_WORD_AXIS, standoff=6), row=2 * len(pairs), col=1)  # under the last row
    fig.update_layout(height=strip_height(len(pairs)), margin=dict(l=10, r=10, t=50, b=10),
                      title=dict(text=sentence_title(strip.sentence), x=0.5, xanchor="center", font=dict(size=14)))
    return fig


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


SUMMARY_AXES = {"share": "share of probes (%)", "measures": "measure and model", "kl": "mean KL (nats)",
                 "models": "model"}


def summary_figure(summary: predict.ProbeSummary) -> go.Figure:
    """Bars of each model's accuracy and agreement with model 1, and of each other model's mean KL from model 1.

    Every bar has its model's number under it ("model 2") and the legend below names each number, so no bar is told
    by its colour alone. The legend keeps to the figure's bottom edge, below the axis labels however many lines
    they take: a legend a fixed distance under the plot covers labels that wrap or turn on a narrow page."""
    fig = make_subplots(rows=1, cols=2, column_widths=[0.7, 0.3], horizontal_spacing=0.1,
                        subplot_titles=["accuracy and agreement with model 1", "mean KL from model 1 (nats)"])
    metrics = ["accuracy", "top-1 agreement", f"top-{summary.top_k} overlap"]
    kl_top = 0.0
    for m, score in enumerate(summary.scores):
        pair = summary.pair_of(m)
        number, colour = f"model {m + 1}", SHARED_PALETTE[m]
        # model 1 against itself has no agreement: its one bar is its accuracy
        values = [score.accuracy] + ([pair.mean("top1"), pair.mean("overlap")] if pair else [])
        shown = metrics[:len(values)]
        fig.add_trace(go.Bar(x=[shown, [number] * len(shown)], y=values, marker_color=colour,
                             name=f"{m + 1}. {page_text(label(score.model))}",
                             text=[_percent_whole(v) for v in values], textposition="outside"), row=1, col=1)
        if pair:
            kl_top = max(kl_top, 0.0 if math.isnan(pair.mean("kl")) else pair.mean("kl"))
            fig.add_trace(go.Bar(x=[number], y=[pair.mean("kl")], marker_color=colour, showlegend=False,
                                 text=[_kl_text(pair.mean("kl"))], textposition="outside"), row=1, col=2)
    # Headroom above the tallest bar, so a label drawn above it stays clear of the subplot title.
    # the ticks stop at 100%: a share cannot pass it, and a tick at 120% said it could
    fig.update_yaxes(range=[0, 1.2], tickformat=".0%", tickvals=[0, 0.25, 0.5, 0.75, 1.0], row=1, col=1,
                     title=dict(text=SUMMARY_AXES["share"], standoff=6))
    fig.update_yaxes(range=[0, max(kl_top, 1e-3) * 1.3], row=1, col=2, title=dict(text=SUMMARY_AXES["kl"], standoff=6))
    fig.update_xaxes(showticklabels=True, automargin=True)
    fig.update_xaxes(title=dict(text=SUMMARY_AXES["measures"], standoff=6), row=1, col=1)
    fig.update_xaxes(title=dict(text=SUMMARY_AXES["models"], standoff=6), row=1, col=2)
    fig.update_traces(cliponaxis=True)
    # each bar has a category of its own (metric, model): "group" would still leave a gap for every other model
    fig.update_layout(barmode="overlay", height=440, margin=dict(l=10, r=10, t=50, b=10),
                      legend=dict(orientation="h", x=0, xanchor="left", y=0, yanchor="bottom", yref="container"))
    return fig


def _percent_whole(value: float) -> str:
    """A share as "32%" above its bar; "" when it cannot be computed."""
    return "" if math.isnan(value) else f"{value:.0%}"


# ---------------------------------------------------------------------------------------------------------------------
# Downloads: what each action showed, as the files it downloads as (in the order of the tab's file boxes)

DOWNLOAD_BOXES = {  # action -> (file name, label of its box, elem_id)
    "fill_mask": [("predictions.csv", "Guesses and agreement (CSV)", "predict-download-csv"),
                  ("predictions.html", "Figure (HTML, opens offline)", "predict-download-html")],
    "mask_each_word": [("mask-each-word.csv", "Per-word table (CSV)", "predict-strip-download-csv"),
                       ("mask-each-word.html", "Figure (HTML, opens offline)", "predict-strip-download-html")],
    "probe_summary": [("probe-summary.csv", "Summary (CSV)", "predict-summary-download-csv"),
                      ("probe-rows.csv", "Every probe (CSV)", "predict-probe-rows-download-csv"),
                      ("probe-summary.html", "Figure (HTML, opens offline)", "predict-summary-download-html")],
}


def _downloads(action: str, *items) -> Downloads:
    return Downloads(dict(zip([name for name, _, _ in DOWNLOAD_BOXES[action]], items, strict=True)))


def prediction_downloads(result: predict.SentenceComparison, figure: go.Figure) -> Downloads:
    """Predict's guesses (one row per mask, model and rank, with the agreement figures) and its bar figure."""
    return _downloads("fill_mask", table(tables.prediction_rows(result, label)), figure)


def word_downloads(strip: predict.WordStrip, model_names: list[str], figure: go.Figure,
                   filled: predict.FilledIn | None = None) -> Downloads:
    """Mask each word's per-word table (the sentence, which words were filled in, each model's guess, agreement and
    KL with model 1) and its strip figure."""
    return _downloads("mask_each_word", table(tables.word_rows(strip, model_names, label, filled)), figure)


def summary_downloads(summary: predict.ProbeSummary, figure: go.Figure, used: dict[str, str] | None = None
                      ) -> Downloads:
    """The probe summary's per-model table (`used` as summary_table takes it), its every-probe table and its
    figure."""
    return _downloads("probe_summary", summary_table(summary, as_shown=False, used=used), probe_table(summary),
                      figure)


def show_downloads(action: str, downloads: Downloads | None):
    """The action's download boxes, each with its file written afresh from what the action showed."""
    return file_boxes(downloads, action.replace("_", "-"), [name for name, _, _ in DOWNLOAD_BOXES[action]])


# ---------------------------------------------------------------------------------------------------------------------
# Handlers: each action once with its downloads (what the page and the API run; the State output is not sent to API
# clients), and once as its documented outputs alone


def fill_mask_kept(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None, top_k=None,
                   sentence=None, progress=gr.Progress()) -> tuple[go.Figure, str, Downloads]:
    """Predict: (bars figure, agreement Markdown, downloads) for a sentence with [MASK]."""
    with errors.kept(errors.key("fill_mask", (model_1, model_2, model_3, top_k, sentence))):
        # before loading anything: a typo should not wait for a model
        choice, k, text = checked_request(model_1, model_2, model_3, top_k, sentence, True, ctx.pair)
        models = _models(ctx, choice, progress)
        result = predict.compare(models, text, k)
        figure = prediction_figure(result)
        markdown = agreement_markdown(result, language_note(text)) + model_notes(ctx, models)
        return figure, markdown, prediction_downloads(result, figure)


def fill_mask(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None, top_k=None,
              sentence=None, progress=gr.Progress()) -> tuple[go.Figure, str]:
    """Predict: (bars figure, agreement Markdown) for a sentence with [MASK]."""
    return fill_mask_kept(ctx, errors, model_1, model_2, model_3, top_k, sentence, progress)[:2]


def mask_each_word_kept(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None, top_k=None,
                        sentence=None, progress=gr.Progress()) -> tuple[go.Figure, str, Downloads]:
    """Mask each word: (heat-strip figure, per-word Markdown table, downloads) for a sentence; its [MASK]s, if
    any, filled in first (predict.fill_in: the probe set's expected word, else model 1's best whole word)."""
    with errors.kept(errors.key("mask_each_word", (model_1, model_2, model_3, top_k, sentence))):
        choice, k, text = checked_request(model_1, model_2, model_3, top_k, sentence, None, ctx.pair)
        models = _models(ctx, choice, progress)
        filled = predict.fill_in(models[0], text)
        result = predict.mask_each_word(models, filled.sentence, k)
        names = [m.name for m in models]
        figure = word_strip_figure(result)
        markdown = word_strip_markdown(result, names, filled, language_note(text)) + model_notes(ctx, models)
        return figure, markdown, word_downloads(result, names, figure, filled)


def mask_each_word(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None, top_k=None,
                   sentence=None, progress=gr.Progress()) -> tuple[go.Figure, str]:
    """Mask each word: (heat-strip figure, per-word Markdown table) for a sentence; its [MASK]s filled in first."""
    return mask_each_word_kept(ctx, errors, model_1, model_2, model_3, top_k, sentence, progress)[:2]


def probe_summary_kept(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None,
                       top_k=DEFAULT_TOP_K, progress=gr.Progress()
                       ) -> tuple[pd.DataFrame, go.Figure, pd.DataFrame, Downloads]:
    """Probe summary: (per-model table, figure, every-probe table, downloads) over the bundled probe set; top_k is
    the k of its top-k overlap, as Top-k is the guesses Predict shows (1 to MAX_SHOWN_TOP_K, else ValueError)."""
    with errors.kept(errors.key("probe_summary", (model_1, model_2, model_3, top_k))):
        choice = ModelChoice(model_1, model_2, model_3)
        choice.names(ctx.pair)  # before loading anything: a typo should not wait for a model
        k = checked_top_k(top_k)
        models = _models(ctx, choice, progress)
        progress(0.5, desc="Predicting the probe set ...")
        result = predict.probe_summary(models, top_k=k)
        used = {m.name: checkpoint_used(ctx, m.name) for m in models}
        figure = summary_figure(result)
        return (summary_table(result, used=used), figure, probe_table(result),
                summary_downloads(result, figure, used))


def probe_summary(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None, top_k=DEFAULT_TOP_K,
                  progress=gr.Progress()) -> tuple[pd.DataFrame, go.Figure, pd.DataFrame]:
    """Probe summary: (per-model table, figure, every-probe table) over the bundled probe set."""
    return probe_summary_kept(ctx, errors, model_1, model_2, model_3, top_k, progress)[:3]


def clear_status() -> str:
    """The status line after an action succeeded: empty."""
    return ""


def failure_status(errors: ErrorLines, action: str, *inputs) -> str:
    """The status line after `action` failed with these inputs."""
    return status_line(action, errors.take(errors.key(action, inputs)))


EXPORTED_HELP = ("A run's student exported in the Distill tab (ONNX Runtime or OpenVINO, int8 or not) fills in the "
                 "sentence above beside the same student in PyTorch: the same words, and how far the two agree.")
NO_EXPORTS = "Export a finished run's student in the Distill tab first; its exports are listed here."


def exported_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """(label, value) of every export of the runs this app offers: value "run:RUN_ID:EXPORT" (EXPORT such as
    "onnx-int8"); read from the runs folder on every call."""
    choices = []
    for name in ctx.model_choices():
        if name.startswith("run:") and "@" not in name:
            for folder in exported_folders(run_dir_of(name.removeprefix("run:"), ctx.launcher.root)):
                choices.append((f"{name} · {folder.name}", f"{name}:{folder.name}"))
    return choices


def exported_list(ctx: AppContext) -> gr.Dropdown:
    """The exports offered now (one made since the page opened is among them)."""
    return gr.Dropdown(choices=exported_choices(ctx))


def compare_exported(ctx: AppContext, exported=None, top_k=None, sentence=None,
                     progress=gr.Progress()) -> tuple[go.Figure, str]:
    """A run's student in PyTorch (model 1) and exported (model 2) fill in the sentence's [MASK]s:
    (bars figure, agreement Markdown). ValueError: an export not offered here, a bad top-k or sentence."""
    offered = [value for _, value in exported_choices(ctx)]
    if not offered:
        raise ValueError(NO_EXPORTS)
    if exported not in offered:
        raise ValueError(f"Choose an exported student from the list; {text_input(exported, 'The export')!r} is not "
                         "one of them.")
    k = checked_top_k(top_k)
    text = predict.check_text(text_input(sentence, "The sentence"), with_masks=True)
    name, export = exported.rsplit(":", 1)
    pytorch = ctx.load(name, progress=progress)
    progress(0.5, desc=f"Loading {name} [{export}] ...")
    folder = run_exports(run_dir_of(name.removeprefix("run:"), ctx.launcher.root)) / export
    result = predict.compare([pytorch, load_exported(folder, name=f"{name} [{export}]")], text, k)
    return prediction_figure(result), agreement_markdown(result, language_note(text)) + model_notes(ctx, [pytorch])


def model_lists(ctx: AppContext) -> tuple[gr.Dropdown, gr.Dropdown, gr.Dropdown]:
    """Fresh choices for the three model dropdowns (a finished run's student appears), values left as they are."""
    return tuple(gr.Dropdown(choices=choices) for choices in ctx.box_choices())


# ---------------------------------------------------------------------------------------------------------------------
# The tab


def build(ctx: AppContext) -> dict:
    """The tab's layout and wiring; returns its main components and "refresh": (function, outputs), which the app
    runs on every page load and whenever the tab is opened, so the model lists include runs finished meanwhile."""
    errors = ErrorLines()
    choices_1, choices_2, choices_3 = ctx.box_choices()
    gr.Markdown(INTRO)
    with gr.Row():
        first = gr.Dropdown(choices_1, value=ctx.default_teacher, label="Model 1 (reference)", allow_custom_value=True,
                            info="Usually the teacher; the others are compared with it.", elem_id="predict-model-1")
        second = gr.Dropdown(choices_2, value=ctx.default_student, label="Model 2", allow_custom_value=True,
                             info="Usually a student, or a run's student.", elem_id="predict-model-2")
        third = gr.Dropdown(choices_3, value="", label="Model 3 (optional)", allow_custom_value=True,
                            info="A second student to compare, or empty.", elem_id="predict-model-3")
        # A number box, not a slider: the page's slider moves a typed 50 to 20 without a word, and the guesses
        # shown would not be the number asked for. Out of range, the check before predicting says so.
        top_k = CheckedNumber(DEFAULT_TOP_K, precision=0, minimum=1, maximum=MAX_SHOWN_TOP_K, step=1, label="Top-k",
                              info=f"Guesses shown per model at each mask, and the k of the probe summary's "
                                   f"top-k overlap; 1 to {MAX_SHOWN_TOP_K}.",
                              elem_id="predict-top-k")
    examples = example_sentences()
    sentence = gr.Textbox(value=examples[0], label="Sentence", lines=2, max_lines=8, elem_id="predict-sentence",
                          placeholder="Я люблю пить [MASK] с лимоном.",
                          info="Write each missing word as [MASK], in capitals with its square brackets; pick a "
                               "probe sentence below to fill the box in. Mask each word fills the [MASK] in first.")
    # Picking an example only fills the textbox: no API endpoint for it.
    gr.Examples([[s] for s in examples], inputs=[sentence], label="Probe sentences", examples_per_page=8,
                api_visibility="private")
    with gr.Row():
        predict_button = gr.Button("Predict", variant="primary", elem_id="predict-run")
        each_button = gr.Button("Mask each word", elem_id="predict-each-word")
        summary_button = gr.Button("Probe summary", elem_id="predict-summary")
    status = gr.Markdown("", elem_id="predict-status")

    gr.Markdown("### Predictions")
    bars = gr.Plot(label="Top-k guesses", elem_id="predict-bars")
    agreement = gr.Markdown(label="agreement", show_label=False, elem_id="predict-agreement")
    files = {}  # action -> its download boxes, hidden until the action has shown something
    with gr.Row():
        files["fill_mask"] = [file_box(text, elem_id) for _, text, elem_id in DOWNLOAD_BOXES["fill_mask"]]
    with gr.Accordion("The exported student beside PyTorch", open=False, elem_id="predict-exported-group"):
        gr.Markdown(EXPORTED_HELP)
        with gr.Row():
            exported = gr.Dropdown(exported_choices(ctx), value=None, label="Exported student", scale=3,
                                   elem_id="predict-exported", info="run · format; uses the sentence and top-k above")
            exported_button = gr.Button("Compare with PyTorch", elem_id="predict-exported-run", scale=1)
        exported_status = gr.Markdown("", elem_id="predict-exported-status")
        exported_bars = gr.Plot(label="PyTorch (model 1) and exported (model 2)", elem_id="predict-exported-bars")
        exported_agreement = gr.Markdown(elem_id="predict-exported-agreement")
    gr.Markdown("### Mask each word")
    strip = gr.Plot(label="Agreement per word", elem_id="predict-strip")
    strip_words = gr.Markdown(label="each word masked", show_label=False, elem_id="predict-strip-words")
    with gr.Row():
        files["mask_each_word"] = [file_box(text, elem_id) for _, text, elem_id in DOWNLOAD_BOXES["mask_each_word"]]
    gr.Markdown("### Probe-set summary")
    # wrapped: a run's student named with its checkpoint would push the figures' columns out of view
    summary = gr.Dataframe(summary_table(), label="Probe-set summary", interactive=False, wrap=True,
                           elem_id="predict-summary-table")
    gr.Markdown(f"*{predict.SPLIT_NOTE}*", elem_id="predict-split-note")
    summary_plot = gr.Plot(label="Probe-set summary", elem_id="predict-summary-plot")
    with gr.Accordion("Every probe", open=False):
        probe_rows = gr.Dataframe(probe_table(), interactive=False, wrap=True, label="probe rows", show_label=False,
                                  elem_id="predict-probe-rows")
    with gr.Row():
        files["probe_summary"] = [file_box(text, elem_id) for _, text, elem_id in DOWNLOAD_BOXES["probe_summary"]]
    # per session: what each action last showed, for the follow-up the page runs right after it to write its files.
    # Kept KEPT_S only: an API caller never runs it, and Gradio frees a session's state only an hour after its page
    # closes, so an API caller's would stay for good
    kept = {action: gr.State(time_to_live=KEPT_S) for action in DOWNLOAD_BOXES}

    inputs = [first, second, third, top_k, sentence]
    wiring = [  # (triggers, action, handler, inputs, outputs); each action's API name is the action
        ([predict_button.click, sentence.submit], "fill_mask", fill_mask_kept, inputs, [bars, agreement]),
        ([each_button.click], "mask_each_word", mask_each_word_kept, inputs, [strip, strip_words]),
        ([summary_button.click], "probe_summary", probe_summary_kept, [first, second, third, top_k],
         [summary, summary_plot, probe_rows]),
    ]
    # One budget for the tab's actions, and a few places in the queue per visitor, refused before queueing: the page
    # asks in a step of its own first, as a validator's refusal would not show (see VisitorLimit).
    limit = VisitorLimit(QUEUE_GROUP, PER_SESSION, "prediction", "predictions")
    budget = dict(concurrency_id=QUEUE_GROUP, concurrency_limit=CONCURRENCY)
    quiet = dict(api_visibility="private", show_progress="hidden")
    for triggers, action, handler, event_inputs, outputs in wiring:
        admitted = gr.on(triggers, errors.wrap(action, limit.admit(), len(event_inputs)), event_inputs, None,
                         concurrency_limit=None, **quiet)
        admitted.failure(functools.partial(failure_status, errors, action), event_inputs, status, **quiet)
        at = event_inputs.index(sentence) if sentence in event_inputs else 0  # a text box shows a refusal
        event = admitted.success(functools.partial(handler, ctx, errors), event_inputs, outputs + [kept[action]],
                                 api_name=action, validator=limit.validator(at=at), **budget)
        event.success(clear_status, None, status, **quiet)
        event.success(functools.partial(show_downloads, action), kept[action], files[action], **quiet)
        event.failure(functools.partial(failure_status, errors, action), event_inputs, status, **quiet)
        results = outputs + [kept[action]]
        event.failure(cleared(results, len(files[action])), None, results + files[action], **quiet)

    exported.focus(functools.partial(exported_list, ctx), None, exported, api_visibility="private",
                   show_progress="hidden")
    exported_inputs = [exported, top_k, sentence]
    admitted = exported_button.click(errors.wrap("compare_exported", limit.admit(), len(exported_inputs)),
                                     exported_inputs, None, concurrency_limit=None, **quiet)
    admitted.failure(functools.partial(failure_status, errors, "compare_exported"), exported_inputs, exported_status,
                     **quiet)
    compared = admitted.success(errors.wrap("compare_exported", functools.partial(compare_exported, ctx),
                                            len(exported_inputs)), exported_inputs,
                                [exported_bars, exported_agreement], api_visibility="private",
                                validator=limit.validator(at=2), **budget)
    compared.success(clear_status, None, exported_status, **quiet)
    compared.failure(functools.partial(failure_status, errors, "compare_exported"), exported_inputs, exported_status,
                     **quiet)
    compared.failure(cleared([exported_bars, exported_agreement]), None, [exported_bars, exported_agreement], **quiet)
    return dict(first=first, second=second, third=third, top_k=top_k, sentence=sentence, bars=bars,
                agreement=agreement, strip=strip, summary=summary, status=status, exported_status=exported_status,
                files=files,
                refresh=(functools.partial(model_lists, ctx), [first, second, third]))

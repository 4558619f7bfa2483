"""Plotly figures of Predictions results: each model's guesses as bars, the per-word strip, the probe summary."""
from __future__ import annotations

import math
from pathlib import Path

import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.compare import predict
from ui.page_text import page_text

# D3's grey (#7f7f7f) left out: grey means "only one model guesses it" (UNSHARED), never a shared word
SHARED_PALETTE = [c for c in qualitative.Plotly + qualitative.D3 if c.lower() not in ("#7f7f7f", "#c9ced6")]
UNSHARED = "#c9ced6"


def label(name: str) -> str:
    """A model name short enough for a plot title: a local folder shows as its last part."""
    return Path(name).name if "/" in name and Path(name).is_absolute() else name


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

# Each guess's word is written above its bar, not as a tick label beside the axis: tick labels as long as the longest
# word (about 90 px) in the gap between two models' charts, a fixed share of the width, ran over the first model's
# bars on a 390-pixel phone. Between the charts now lies only the rotated axis title.
GUESS_PX = 40  # pixels a guess takes: its word, then its bar
BAR_SHARE = 0.5  # of a guess's height, the bar's; the rest is its word's band above it
WORD_FONT = 12  # px
WORD_GAP_PX = 2  # between a word and its bar: nearer its own bar than the one above, so it is read as its bar's
GAP_BETWEEN_MODELS = 0.12  # of the figure's width, between two models' charts: room for the rotated axis title
# The component's label ("Top-k guesses") and Plotly's toolbar lie over the figure's top edge; the title starts
# under them. A 390-pixel phone's figure left the centred title behind both.
TITLE_TOP_PX = 38
TITLE_MARGIN_PX = TITLE_TOP_PX + 62  # the title's line and the subplot titles of the first row under it
SCALE_PX = 90  # under each row of bars, the probability scale and its title; above the next row, its subplot titles


def guess_rows_px(top_k: int) -> int:
    """The height in pixels of one row of charts (one mask) holding `top_k` guesses, scale included."""
    return SCALE_PX + GUESS_PX * top_k


def word_positions(top_k: int) -> list[float]:
    """Where the middle of each guess's word sits on its chart's guess axis (the bars at 0, 1, ...; best first, on
    top): just above its bar, in the band between it and the bar above."""
    above = BAR_SHARE / 2 + (WORD_GAP_PX + WORD_FONT / 2) / GUESS_PX
    return [rank - above for rank in range(top_k)]


def guess_axis_range(top_k: int) -> list[float]:
    """The guess axis's range, reversed (best first, on top), wide enough for the first word above its bar."""
    return [top_k - 1 + BAR_SHARE / 2 + 0.1, -1 + BAR_SHARE / 2]


def prediction_figure(result: predict.SentenceComparison) -> go.Figure:
    """Horizontal bars: one row of subplots per mask, one subplot per model, best guess on top, each guess's word
    above its bar; titled with the sentence, so the figure says what it shows, and each axis with what it holds
    (PROBABILITY_AXIS, GUESS_AXIS)."""
    masks, models, top_k = len(result.results[0].masks), len(result.results), result.top_k
    titles = [page_text(label(r.model)) + (f" · mask {m + 1}" if masks > 1 else "")
              for m in range(masks) for r in result.results]
    height = masks * guess_rows_px(top_k) + TITLE_MARGIN_PX - 20
    fig = make_subplots(rows=masks, cols=models, subplot_titles=titles, horizontal_spacing=GAP_BETWEEN_MODELS,
                        vertical_spacing=85 / height if masks > 1 else 0.0)
    # One probability scale for every subplot: each of its own made a 20% bar as long as another model's 90% one.
    top = max(p for r in result.results for guess in r.masks for p in guess.probs)
    words_at = []  # (row, col, words): drawn after every chart's bars, so figure.data[m * models + c] is a chart's bars
    for m in range(masks):
        colours = _shared_colours([r.masks[m].tokens for r in result.results])
        for c, r in enumerate(result.results):
            guess = r.masks[m]
            words = [page_text(w) for w in guess.words]  # plotly reads text and hover text as HTML
            ranks = list(range(len(guess.tokens)))
            fig.add_trace(go.Bar(
                x=guess.probs, y=ranks, orientation="h",
                marker_color=[colours.get(t, UNSHARED) for t in guess.tokens],
                text=[f"{p:.1%}" for p in guess.probs], textposition="auto",
                customdata=words, hovertemplate="%{customdata}: %{x:.2%}<extra></extra>", showlegend=False,
            ), row=m + 1, col=c + 1)
            words_at.append((m + 1, c + 1, words))
            fig.update_yaxes(tickvals=ranks, showticklabels=False, range=guess_axis_range(top_k),
                             title=dict(text=GUESS_AXIS, standoff=6), row=m + 1, col=c + 1)
            fig.update_xaxes(range=[0, top * 1.05], tickformat=".0%", nticks=5,
                             title=dict(text=PROBABILITY_AXIS, standoff=6), row=m + 1, col=c + 1)
    for row, col, words in words_at:
        fig.add_trace(go.Scatter(x=[0] * len(words), y=word_positions(len(words)), text=words, mode="text",
                                 textposition="middle right", textfont=dict(size=WORD_FONT), hoverinfo="skip",
                                 showlegend=False, cliponaxis=True), row=row, col=col)
    # The title is placed in pixels from the top: at y=0.99 of a 20-mask figure (3,500 px) it sat 35 px down, on
    # the first row's subplot titles. The top margin leaves it its own band above them.
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=TITLE_MARGIN_PX, b=10), bargap=1 - BAR_SHARE,
                      title=dict(text=sentence_title(result.text), x=0.5, xanchor="center", y=1.0, yref="container",
                                 yanchor="top", pad=dict(t=TITLE_TOP_PX), font=dict(size=14)))
    return fig


def kl_text(kl: float) -> str:
    """A KL divergence in nats as the figures and tables write it, three decimals ("0.125"); NaN, the KL of two
    top-k lists with no string in common, as "n/a (no shared strings)"."""
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
            text=[[kl_text(v) for v in kl]], texttemplate="%{text}", customdata=[hover],
            hovertemplate="%{customdata}<br>KL %{z:.3f}<extra></extra>", xgap=2, showscale=i == 0,
            colorbar=KL_COLORBAR),
            row=2 * i + 2, col=1)
    fig.update_xaxes(tickvals=x, ticktext=[page_text(w) for w in strip.words], tickangle=-30)
    fig.update_xaxes(title=dict(text=MASKED_WORD_AXIS, standoff=6), row=2 * len(pairs), col=1)  # under the last row
    fig.update_layout(height=strip_height(len(pairs)), margin=dict(l=10, r=10, t=50, b=10),
                      title=dict(text=sentence_title(strip.sentence), x=0.5, xanchor="center", font=dict(size=14)))
    return fig


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
                                 text=[kl_text(pair.mean("kl"))], textposition="outside"), row=1, col=2)
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

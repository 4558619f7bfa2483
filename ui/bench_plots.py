"""The Benchmark tab's charts: latency and throughput bars per model and mode, beside the model card's."""
from __future__ import annotations

import math
import re
from collections import Counter

import plotly.graph_objects as go

from core import bench

MODE_COLOURS = {"card": "#9aa5b1", "reference": "#3b6fb6", "fast": "#e9a23b", "onnxruntime": "#5a9e6f",
                "onnxruntime-int8": "#9bcf8e", "openvino": "#8e5ea2", "openvino-int8": "#c9a3d8"}
CARD_MACHINE = {"cpu": "card: Xeon E5-2698 v4", "cuda": "card: Tesla P100"}


def short_names(models) -> dict[str, str]:
    """Each model's name for the charts and the measurements table: the shortest of the name without "arch:" and
    "-cased-conversational", the name with "arch:" kept, and the full name, that no other model of the run shares
    (arch:rubert-base-cased-conversational and the Hub's rubert-base-cased-conversational must not share a bar)."""
    models = list(dict.fromkeys(models))
    forms = {m: [m.removeprefix("arch:").replace("-cased-conversational", ""),
                 m.replace("-cased-conversational", ""), m] for m in models}
    level = dict.fromkeys(models, 0)
    while True:
        names = {m: forms[m][level[m]] for m in models}
        taken = Counter(names.values())
        # full names differ, so raising every model of a shared name ends within the three forms
        crowded = [m for m in models if taken[names[m]] > 1 and level[m] < 2]
        if not crowded:
            return names
        for m in crowded:
            level[m] += 1


# kind -> (title, unit line, row field, factor from the field's unit to the chart's: latency in ms, as in the tables)
CHART_KINDS = {
    "latency": ("Latency", "milliseconds, lower is better", "latency_s", 1000.0),
    "throughput": ("Throughput", "samples/s, higher is better", "throughput_samples_s", 1.0),
}
HEADROOM = 1.2  # y axis up to 1.2 x the tallest bar, so its value label above the bar stays inside the plot


def latency_figure(rows: list[dict], device: str, names: dict[str, str] | None = None) -> go.Figure:
    """The latency chart: bar_figure of `rows` (result records, latency_s in seconds) in milliseconds at batch 1,
    or the nearest batch measured; `device` ("cpu" or "cuda") picks the card's figures; `names` as in bar_figure."""
    return bar_figure(rows, device, "latency", names)


def throughput_figure(rows: list[dict], device: str, names: dict[str, str] | None = None) -> go.Figure:
    """The throughput chart: bar_figure of `rows` (result records, throughput_samples_s) in samples per second at
    batch 16, or the nearest batch measured; `device` ("cpu" or "cuda") picks the card's figures; `names` as in
    bar_figure."""
    return bar_figure(rows, device, "throughput", names)


def chart_batch(rows: list[dict], kind: str) -> int:
    """The card's batch for this kind (1 for latency, 16 for throughput) where measured, else the nearest one."""
    wanted = bench.CARD_BATCH[kind]
    batches = sorted({r["batch_size"] for r in rows}) or [wanted]
    return wanted if wanted in batches else min(batches, key=lambda b: abs(b - wanted))


def card_bar_note(rows: list[dict], device: str, kind: str) -> str:
    """Why a chart has no card bars, in a few words that fit under its title; "" when it has them."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    if not any(bench.card_figure(m, device, kind) is not None for m in models):
        return "no card bars: the card has no figures for these models"
    lengths = sorted({r["seq_len"] for r in rows})
    if lengths != [bench.CARD_SEQ_LEN]:
        return f"no card bars: seq_len {', '.join(map(str, lengths))}, the card's is {bench.CARD_SEQ_LEN}"
    wanted = bench.CARD_BATCH[kind]
    if chart_batch(rows, kind) != wanted:
        return f"no card bars: the card's batch {wanted} was not measured"
    return ""


def title_lines(figure: go.Figure) -> list[str]:
    """The title as the lines a reader sees, markup removed."""
    return [re.sub(r"<[^>]+>", "", line) for line in (figure.layout.title.text or "").split("<br>")]


def value_label(value: float) -> str:
    """A bar's value never in exponent form: three significant digits below 100 (0.0630, 78.3), whole numbers from
    100 (3,715; plotly's %{y:.3g} wrote a GPU's 3,715 samples/s as 3.72e+3)."""
    if value == 0 or not math.isfinite(value):
        return f"{value:g}"
    rounded = float(f"{value:.3g}")  # 99.96 -> 100, so its decimals are counted from 100, not from 99.96
    if abs(rounded) >= 100:
        return f"{value:,.0f}"
    return f"{rounded:.{2 - math.floor(math.log10(abs(rounded)))}f}"


def add_bars(figure: go.Figure, name: str, values: dict[str, float | None], names: dict[str, str], **style) -> None:
    """One trace of bars: one for each model with a value, none for a model without (no trace when none has one),
    each model on the axis under its name in `names`.

    A missing value is left out rather than sent as None: plotly hides the label of a blank bar (display none, its
    point lying off the axis) and, when the value arrives in the streamed figure, reuses that hidden label, measures
    it as 0 x 0 and drops it, then caches that size for the label's text: the finished chart would keep that bar
    unlabelled.
    """
    shown = {model: y for model, y in values.items() if y is not None}
    if shown:
        figure.add_bar(name=name, x=[names[m] for m in shown], y=list(shown.values()),
                       text=[value_label(y) for y in shown.values()], **style)


def bar_figure(rows: list[dict], device: str, kind: str, names: dict[str, str] | None = None) -> go.Figure:
    """Card, reference and fast bars per model at the card's batch for this kind where measured, else the nearest;
    the models named as in `names` (short_names of the run's models; by default, of the models in `rows`).

    Each title line stays short (about 40 characters): plotly does not wrap titles, and the chart is half a page wide.
    """
    name, unit, value, scale = CHART_KINDS[kind]
    batch = chart_batch(rows, kind)
    models = list(dict.fromkeys(r["model"] for r in rows))
    names = names or short_names(models)
    note = card_bar_note(rows, device, kind)
    figure = go.Figure()
    # Every bar keeps its value: plotly shrinks an outside label to its bar's width by default (constraintext), which
    # left the narrow grouped bars of a short or small value with a label too small to draw.
    bar_style = dict(texttemplate="%{text}", textposition="outside", cliponaxis=False, constraintext="none",
                     textangle=0, textfont=dict(size=11))
    if not note:
        card = {m: times(bench.card_figure(m, device, kind), scale) for m in models}
        add_bars(figure, CARD_MACHINE[device], card, names, marker_color=MODE_COLOURS["card"], **bar_style)
    for mode in bench.MODES:
        found = {r["model"]: times(r[value], scale) for r in rows if r["mode"] == mode and r["batch_size"] == batch}
        add_bars(figure, f"{mode} (here)", found, names, marker_color=MODE_COLOURS[mode], **bar_style)
    # the models in the order measured, whichever trace names them first
    figure.update_xaxes(categoryorder="array", categoryarray=[names[m] for m in models])
    tallest = max((y for trace in figure.data for y in trace.y), default=0.0)
    title = f"{name} at batch {batch}<br><sup>{unit}</sup>" + (f"<br><sup>{note}</sup>" if note else "")
    # r=50: the last bar's label is centred on it and wider than it; a 10 px margin cut it off at the right edge
    figure.update_layout(title=title, barmode="group", height=380, margin=dict(l=40, r=50, t=90, b=40),
                         legend=dict(orientation="h", y=-0.15), template="plotly_white",
                         uniformtext=dict(minsize=10, mode="show"))  # never hide a label for being small
    if tallest > 0:
        figure.update_yaxes(range=[0, tallest * HEADROOM])
    return figure


def times(value: float | None, scale: float) -> float | None:
    """`value` in another unit (seconds x 1000: milliseconds); None stays None."""
    return None if value is None else value * scale

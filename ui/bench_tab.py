"""The Benchmark tab: measure teacher and students live, beside the model card's speed table."""
from __future__ import annotations

import functools
import inspect
import math
import re
import shutil
import tempfile
import threading
import time
import traceback
from collections import Counter, OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
import torch

from core import bench
from core.bench import machine
from core.bench.plan import MAX_BATCH_SIZE, MAX_RUNS, MAX_SEQ_LEN, check_estimate
from core.bench.runtimes import available_modes
from core.formatting import count, error_sentence, format_seconds, parse_int_list
from ui.context import (
    AppContext,
    CheckedCheckboxGroup,
    CheckedNumber,
    CheckedRadio,
    ErrorLines,
    busy_line,
    error_message,
    failure_line,
    flag,
    markdown_text,
    model_name,
    one_of,
    pending_requests,
    queue_guard,
    session_id,
    shown,
    some_of,
    user_errors,
    whole_number,
)
from ui.downloads import BENCH_PREFIX, remove_old_folders

MODE_COLOURS = {"card": "#9aa5b1", "reference": "#3b6fb6", "fast": "#e9a23b", "onnxruntime": "#5a9e6f",
                "onnxruntime-int8": "#9bcf8e", "openvino": "#8e5ea2", "openvino-int8": "#c9a3d8"}
CARD_MACHINE = {"cpu": "card: Xeon E5-2698 v4", "cuda": "card: Tesla P100"}
# The page's tables fit a 1024-pixel window without sideways scrolling or a word broken. Each table maps its columns
# to the characters each needs (its longest word, of the header and of the values: the tables' font is monospace, and
# a name breaks at a hyphen or a space, else anywhere) and shares its width in those proportions (column_widths).
# So the page shows short headers, explained in a legend under each table, and figures of three significant digits;
# the downloads keep the full field names and figures. The measurements table names models as the charts do
# (short_names) and leaves out gflops (its "of peak" gives it against this machine's limit), runs, params, and what is
# the same at every batch of a model and mode (the size in the card table; setup_s, check and tried in the notes).
ROW_COLUMNS = {"model": 16, "mode": 12, "dtype": 14, "batch": 5, "seq": 4, "ms": 6, "p90 ms": 6, "samples/s": 9,
               "MB": 6, "of peak": 6}
ROW_LEGEND = ("**model**: as in the charts · **batch**: sequences a forward pass · **seq**: tokens a sequence · "
              "**ms**: median milliseconds a batch takes, **p90 ms** its 90th percentile · **samples/s**: sequences a "
              "second · **MB**: the weights plus the most memory the passes add · **of peak**: see the notes below. "
              "The downloads keep full model names and each field under its own name (`batch_size`, `seq_len`, "
              "`latency_s` and `latency_p90_s` in seconds, `throughput_samples_s`, `peak_mem_mb`, `share_of_peak`), "
              "with `gflops`, `runs`, `params`, `size_mb`, `setup_s`, `check` and `tried`.")
# One line per model and source of figures (the card, or a mode measured here): any number of modes fits.
CARD_COLUMNS = {"model": 40, "figures": 24, "MB": 6, "ms": 6, "samples/s": 9}
CARD_LEGEND = ("**MB**: the model's size as the card gives it, or what the mode loads here (`size_mb`) · **ms**: "
               "median milliseconds at batch 1 · **samples/s**: sequences a second at batch 16. The card measured "
               "512-token sequences, so its figures stay empty beside a model measured at another length.")
# "card", "reference (here)" and "fast (here)": one ratio between two models, as the card gave it, then measured
# here in each mode; "between modes (here)": one model in two modes, a ratio the card has no column for
RATIO_COLUMNS = {"speed-up": 60, "card": 8, "reference (here)": 10, "fast (here)": 10, "between modes (here)": 13}
INTRO = """### Speed: the model card's table, measured here
The card's headline compares teacher and students by **latency at batch 1** and **throughput at batch 16**, with
512-token sequences through the encoder. `arch:` models have the exact real architectures with random weights: speed
does not depend on the weights, so nothing is downloaded. **reference** is fp32 with eager attention, as the card
measured; **fast** is the quickest path this hardware offers (bf16 where the CPU multiplies it in hardware, 16-bit
on a GPU, SDPA attention), checked against reference before it is timed. **onnxruntime** (fp32 with its transformer
fusions), **onnxruntime-int8** (dynamic quantisation), **openvino** (bf16 where the CPU has it, else f32) and
**openvino-int8** (NNCF int8 weights) export the encoder to those runtimes, CPU only, with the same check (int8 modes
report how far they agree); `size_mb` is then what the runtime loads from disk, and `setup_s` the export and compile
time, which is never part of the timed runs. Only the modes this machine can run are offered."""


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


QUEUE_GROUP = "benchmark"  # one measurement at a time: two would slow each other
PER_SESSION = 1  # benchmarks one session may have waiting or running


def model_list_input(models) -> list[str]:
    """The Models input as names: a list (one name alone counts), blanks left out; ValueError for anything else."""
    if isinstance(models, str) or models is None:
        models = [models]
    if not isinstance(models, (list, tuple)):
        raise ValueError(f"Models must be a list of model names; got {shown(models)}.")
    return [n for n in (model_name(m) for m in models) if n]


def batch_size_input(batch_sizes) -> list[int]:
    """Batch sizes typed as "1,16" (or sent as a list of whole numbers); ValueError otherwise."""
    if isinstance(batch_sizes, (list, tuple)):
        return [whole_number(b, "Each batch size", 1, MAX_BATCH_SIZE) for b in batch_sizes]
    if not isinstance(batch_sizes, str):
        raise ValueError(f"Batch sizes must be whole numbers separated by commas, such as 1,16; got "
                         f"{shown(batch_sizes)}.")
    return parse_int_list(batch_sizes, "Batch sizes")


def runs_input(runs) -> int | None:
    """Timed runs: None or 0 for the automatic count, else a whole number up to MAX_RUNS."""
    return None if runs is None else whole_number(runs, "Timed runs", 0, MAX_RUNS) or None


def config_from_inputs(models, device, batch_sizes, seq_len, modes, runs, compile_fast) -> bench.BenchConfig:
    """The form's inputs, each checked by type and range, as a BenchConfig; ValueError with a sentence naming the
    input. Runs of 0 (or none) mean the automatic count."""
    return bench.BenchConfig(models=model_list_input(models),
                             device=one_of("cpu" if device is None else device, "Device", bench.DEVICES),
                             batch_sizes=batch_size_input(batch_sizes),
                             seq_len=whole_number(seq_len, "Sequence length", 1, MAX_SEQ_LEN),
                             modes=some_of(modes, "Modes", bench.MODES),
                             runs=runs_input(runs),
                             compile=flag(compile_fast, "torch.compile"))


# kind -> (title, unit line, row field, factor from the field's unit to the chart's: latency in ms, as in the tables)
CHART_KINDS = {
    "latency": ("Latency", "milliseconds, lower is better", "latency_s", 1000.0),
    "throughput": ("Throughput", "samples/s, higher is better", "throughput_samples_s", 1.0),
}
HEADROOM = 1.2  # y axis up to 1.2 x the tallest bar, so its value label above the bar stays inside the plot


def latency_figure(rows: list[dict], device: str, names: dict[str, str] | None = None) -> go.Figure:
    return bar_figure(rows, device, "latency", names)


def throughput_figure(rows: list[dict], device: str, names: dict[str, str] | None = None) -> go.Figure:
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


def figure_cell(value: float | None, scale: float = 1.0) -> int | float | None:
    """A figure as the tables show it, times `scale`: three significant digits below 100, whole from 100 (0.0748,
    74.8, 3715), so it stays one short word in a narrow column; None stays None. A number, so a column still sorts
    by value."""
    value = times(value, scale)
    if value is None or value == 0 or not math.isfinite(value):
        return value
    rounded = float(f"{value:.3g}")
    return round(value) if abs(rounded) >= 100 else rounded


def row_lines(rows: list[dict], names: dict[str, str]) -> list[dict]:
    """The measurements table's lines (ROW_COLUMNS) from the result rows, each model named as in `names`."""
    return [{"model": names[r["model"]], "mode": r["mode"], "dtype": r["dtype"], "batch": r["batch_size"],
             "seq": r["seq_len"], "ms": figure_cell(r["latency_s"], 1000),
             "p90 ms": figure_cell(r["latency_p90_s"], 1000), "samples/s": figure_cell(r["throughput_samples_s"]),
             "MB": figure_cell(r["peak_mem_mb"]), "of peak": figure_cell(r["share_of_peak"])} for r in rows]


def _frame(lines: list[dict], columns) -> pd.DataFrame:
    frame = pd.DataFrame(lines, columns=list(columns))
    return frame.astype(object).where(frame.notna(), "")


def column_widths(columns: dict[str, int]) -> list[str]:
    """Each column's share of the table's width in percent: the characters it needs, plus two for the cell's padding.
    Rounded down, so the shares never add up to more than the table (a pixel more scrolled it sideways)."""
    units = [chars + 2 for chars in columns.values()]
    return [f"{math.floor(10000 * u / sum(units)) / 100}%" for u in units]


def results_table(value: pd.DataFrame, columns: dict[str, int], label: str, elem_id: str) -> gr.Dataframe:
    """A read-only results table whose columns share the page's width (column_widths), long values wrapped."""
    return gr.Dataframe(value, interactive=False, wrap=True, column_widths=column_widths(columns), label=label,
                        elem_id=elem_id)


def card_line(model: str, figures: str, size_mb: float | None, latency_s: float | None,
              throughput: float | None) -> dict:
    """One line of the card table (CARD_COLUMNS): latency shown in milliseconds, every figure as figure_cell."""
    return {"model": model, "figures": figures, "MB": figure_cell(size_mb), "ms": figure_cell(latency_s, 1000),
            "samples/s": figure_cell(throughput)}


def card_rows(card: list[dict], rows: list[dict], device: str) -> list[dict]:
    """bench.card_comparison's lines (one per model) as the card table's: for each model the card's figures (when
    the card has the model; empty figures for a model measured at another length), then each mode measured here,
    with the size_mb that mode loads."""
    lines = []
    for line in card:
        model = line["model"]
        if bench.published(model):
            lines.append(card_line(model, CARD_MACHINE[device], line["card_size_mb"], line["card_latency_s"],
                                   line["card_throughput"]))
        for mode in dict.fromkeys(r["mode"] for r in rows if r["model"] == model):
            size = next(r["size_mb"] for r in rows if r["model"] == model and r["mode"] == mode)
            lines.append(card_line(model, f"{mode} (here)", size, line.get(f"{mode}_latency_s"),
                                   line.get(f"{mode}_throughput")))
    return lines


def check_notes(rows: list[dict]) -> list[str]:
    """One Markdown line per model and mode checked against reference (fast and the runtimes): the check it passed,
    the candidates timed before the fastest was chosen, and the export time (never part of the timed runs)."""
    first = {}  # the first row of each model and mode: the same check at every batch, and the candidates at batch 1
    for r in rows:
        if r.get("check"):
            first.setdefault((r["model"], r["mode"]), r)
    lines = []
    for (model, mode), row in first.items():
        parts = [f"checked against reference: {row['check']}"]
        if row.get("tried"):
            parts.append(f"candidates timed: {row['tried']}")
        if row.get("setup_s") is not None:
            parts.append(f"setup_s (export and compile) {format_seconds(row['setup_s'])}, not part of the timed runs")
        what = f"{model}, {mode}, {row['dtype']}"
        lines.append(f"- {markdown_text(what)}: {markdown_text('; '.join(parts))}")
    return lines


def notes_text(rows: list[dict], peaks: bench.Peaks | None) -> str:
    """The notes under the tables: how each mode was checked, then this machine's arithmetic limits."""
    checks = check_notes(rows)
    parts = ["**How each mode was checked** (every field of every row is in the downloads):", *checks] if checks else []
    if peaks is not None:
        parts.append(("\n" if parts else "") + limits_text(peaks))
    return "\n".join(parts)


def ratio_rows(speedups: list[dict], names: dict[str, str] | None = None) -> list[dict]:
    """The speed-ups as one line per question, with card, reference and fast side by side; models named as in
    `names` (short_names of the run's models; by default, of the models the speed-ups name)."""
    if names is None:
        names = short_names(part for item in speedups
                            for part in ([item["model"]] if "model" in item else item["pair"].split(" / ")))
    lines = []
    for item in speedups:
        if "runtime_speedup" in item:
            lines.append({"speed-up": f"{names[item['model']]}: fast latency / {item['mode']} latency "
                                      f"(batch {item['batch_size']})", "between modes (here)": item["runtime_speedup"]})
            continue
        if "fast_speedup" in item:
            lines.append({"speed-up": f"{names[item['model']]}: reference latency / fast latency "
                                      f"(batch {item['batch_size']})", "between modes (here)": item["fast_speedup"]})
            continue
        teacher, student = (names[part] for part in item["pair"].split(" / "))
        batch = item["batch_size"]
        # at one batch size the two ratios agree; batch 1 reads as latency, larger batches as throughput
        kind = "latency" if batch == bench.CARD_BATCH["latency"] else "throughput"
        how = (f"{teacher} latency / {student} latency" if kind == "latency"
               else f"{student} throughput / {teacher} throughput")
        lines.append({"speed-up": f"{how} (batch {batch})", "card": item[f"card_{kind}_ratio"],
                      "reference (here)": item[f"reference_{kind}_ratio"], "fast (here)": item[f"fast_{kind}_ratio"]})
    return lines


def card_only_rows(models: list[str], device: str) -> list[dict]:
    """The card's figures for the chosen models, shown before any measurement arrives."""
    device = device if device in bench.DEVICES else "cpu"
    return [card_line(m, CARD_MACHINE[device], bench.published(m).get("size_mb"),
                      bench.card_figure(m, device, "latency"), bench.card_figure(m, device, "throughput"))
            for m in models if bench.published(m)]


def write_downloads(folder: Path, result: dict) -> tuple[str, str]:
    csv_path, json_path = folder / "benchmark.csv", folder / "benchmark.json"
    pd.DataFrame(result["rows"]).to_csv(csv_path, index=False)
    bench.write_json(result, json_path)
    return str(csv_path), str(json_path)


def progress_text(fraction: float, message: str, started: float, estimate_s: float, final: bool = False) -> str:
    """The progress line (Markdown): a bar, the share done, the message shown as written (it names the models as
    typed) and the time; a final line (done or stopped) gives the time taken and no time left."""
    elapsed = time.perf_counter() - started
    message = markdown_text(message)
    filled = round(20 * fraction)
    if final:
        return f"`{'█' * filled}{'░' * (20 - filled)}` {fraction:.0%} · {message}"
    left = max(estimate_s - elapsed, 0.0) if fraction < 0.99 else 0.0
    return (f"`{'█' * filled}{'░' * (20 - filled)}` {fraction:.0%} · {message} · elapsed "
            f"{format_seconds(elapsed)}, about {format_seconds(left)} left")


def stopped_fraction(measured: int, planned: int) -> float:
    """The bar of a stopped benchmark: the share of its planned measurements that were made, below 1."""
    return min(measured / max(planned, 1), 0.99)


def stopped_line(measured: int, planned: int, took: str, earlier_shown: bool) -> str:
    """What a Stop leaves: how many of the planned measurements were made, and where they are."""
    if measured:
        return (f"stopped after {measured} of {planned} measurements in {took}; what was measured is above and in "
                "the downloads")
    if earlier_shown:
        return (f"stopped after 0 of {planned} measurements in {took}, before the first one finished; the tables "
                "above still show your previous benchmark")
    return f"stopped after 0 of {planned} measurements in {took}, before the first one finished"


@dataclass
class BenchView:
    """What the run handler shows, in the order of its outputs; kept whole so the last yield (what an API client
    receives) carries everything, while each intermediate yield sends only what changed."""
    progress: str = ""
    results: pd.DataFrame = field(default_factory=lambda: _frame([], ROW_COLUMNS))
    latency: go.Figure | None = None
    throughput: go.Figure | None = None
    card: pd.DataFrame = field(default_factory=lambda: _frame([], CARD_COLUMNS))
    ratios: pd.DataFrame = field(default_factory=lambda: _frame([], RATIO_COLUMNS))
    notes: str = ""
    csv: str | None = None
    json: str | None = None

    FIELDS = ("progress", "results", "latency", "throughput", "card", "ratios", "notes", "csv", "json")

    def outputs(self, *changed: str) -> tuple:
        """Every output (no names given), or only the named ones with gr.skip() in the others' places."""
        return tuple(getattr(self, name) if not changed or name in changed else gr.skip() for name in self.FIELDS)


# ---- handlers: top-level functions of (context, inputs); build() binds the context ------------------------------

def checked_config(ctx: AppContext, models, device, batch_sizes, seq_len, modes, runs,
                   compile_fast) -> bench.BenchConfig:
    """The request as a BenchConfig, refused (ValueError) when a name must not or cannot be loaded here."""
    config = config_from_inputs(models, device, batch_sizes, seq_len, modes, runs, compile_fast)
    for name in config.models:
        ctx.check_name(name)
        line = ctx.offline_line(name, checked=True)
        if line:
            raise ValueError(line)
    return config


def planned(ctx: AppContext, *inputs) -> bench.Plan:
    """The checked request and its estimates; the shared model cache loads what a plan needs (shared with the other
    tabs). Errors are sentences as a Space may show them."""
    try:
        config = checked_config(ctx, *inputs)
        return bench.make_plan(config, ctx.cache.get)
    except ValueError as error:
        raise ValueError(ctx.public_text(error_message(error))) from None


def checked_plan(ctx: AppContext, *inputs) -> bench.Plan:
    """planned(), refused when its estimate is over ctx.max_bench_s."""
    plan = planned(ctx, *inputs)
    check_estimate(plan, ctx.max_bench_s)
    return plan


def over_the_time_limit(ctx: AppContext, *inputs) -> None:
    """The check made when a run arrives, before it is queued: ValueError only for a plan over the time limit (any
    other mistake is answered by the run itself, with the same sentence the estimate shows)."""
    try:
        plan = planned(ctx, *inputs)
    except Exception:  # a model that fails to load too: the run says why, with the whole sentence
        return
    check_estimate(plan, ctx.max_bench_s)


def cannot_run_line(message: str) -> str:
    """The estimate line (Markdown) for settings the benchmark refuses: why, in the sentence a Run would be refused
    with, shown as written (a model named a_b_*c* or <b>x</b> as typed, not as emphasis or HTML)."""
    return f"**Cannot run as set:** {markdown_text(message)}"


def estimate_benchmark(ctx: AppContext, models=None, device=None, batch_sizes=None, seq_len=None, modes=None,
                       runs=None, compile=None) -> str:
    """How long and how much memory the measurement as set will take, or why it cannot run."""
    try:
        plan = checked_plan(ctx, models, device, batch_sizes, seq_len, modes, runs, compile)
    except ValueError as error:
        return cannot_run_line(error_message(error))
    except Exception as error:  # a model that fails to load with a library's error: a sentence, not "Error"
        return cannot_run_line(fault_text(ctx, NOT_PREPARED, error))
    busy = machine.busy_note()
    notes = plan.skip_lines() + ([busy] if busy else [])
    session = session_id()
    if session is not None and pending_requests(session, QUEUE_GROUP):
        # settings changed while a benchmark runs: the line above its progress must not read as its description
        notes.insert(0, "your benchmark below keeps the settings it started with; this estimate is for your next run")
        return f"**Before your next run:** {estimate_text(plan, notes)}"
    return f"**Before you run:** {estimate_text(plan, notes)}"


def estimate_text(plan: bench.Plan, notes: list[str]) -> str:
    """The estimate line after its heading: the plan and each note (Markdown), shown as written."""
    return markdown_text(plan.describe()) + "".join(f"\n\n*Note: {markdown_text(n)}*" for n in notes)


class Admissions:
    """Sessions whose Run click the page's first step checked and admitted a moment ago (that step disables the Run
    button). The run it starts is let through without a second check: a second check could refuse it (an estimate
    near the limit, made again with a new calibration), and Gradio's page runs nothing after a refused request,
    which would leave the Run button disabled for good."""

    def __init__(self, ttl_s: float = 60.0):
        self.ttl_s = ttl_s  # an admission the page never followed with its run (the tab closed) lapses
        self._when: dict[str, float] = {}
        self._lock = threading.Lock()

    def add(self, session: str | None) -> None:
        if session is not None:
            with self._lock:
                self._when[session] = time.monotonic()

    def take(self, session: str | None) -> bool:
        """Whether `session` was admitted within ttl_s; the admission is used up."""
        with self._lock:
            when = self._when.pop(session, None) if session is not None else None
        return when is not None and time.monotonic() - when <= self.ttl_s


RUN_LABEL, RUNNING_LABEL = "Run benchmark", "Running…"
BUSY_LINE = busy_line(PER_SESSION, "benchmark", "benchmarks")  # the refusal of a second benchmark of one visitor
NOT_PREPARED = "The benchmark could not be prepared"  # a fault before measuring: the estimate's words and the run's
STARTING_LINE = "Starting…"
WAITING_LINE = "Waiting for its turn: another benchmark is running, and this app runs one at a time."


def benchmarks_in_queue() -> int:
    """How many benchmarks, anyone's, wait in Gradio's queue or run now; 0 outside a request."""
    return pending_requests(None, QUEUE_GROUP)


@user_errors
def admit_run(admissions: Admissions, guard, *inputs) -> tuple[gr.Button, gr.Button, str]:
    """The page's first step of a run: the request checked by `guard` (the run's own validator), refused with the
    guard's sentence, else admitted with Run disabled (one benchmark per page at a time), Stop enabled and the
    progress line STARTING_LINE (WAITING_LINE while another benchmark is queued or running, as this one will wait
    for it), so that the last run's line (done, stopped or failed) never reads as this one's.

    A refusal is an error notice rather than a validator's line under Models: the status updates of the page's other
    events (the Distill tab's timer ticks every two seconds) wipe that line within moments."""
    refusal = next((v["message"] for v in guard(*inputs) if not v["is_valid"] and v["message"]), "")
    if refusal:
        raise ValueError(refusal)
    admissions.add(session_id())
    # the guard refused a second benchmark of this session, so any benchmark in the queue is someone else's
    line = WAITING_LINE if benchmarks_in_queue() else STARTING_LINE
    return gr.Button(RUNNING_LABEL, interactive=False), gr.Button(interactive=True), line


def admitted_or(admissions: Admissions, guard, accepted):
    """The run's validator: a request the page's first step admitted goes through (`accepted(session)` noted);
    any other (gradio_client, raw HTTP) is checked by `guard`."""
    def validator(*inputs):
        session = session_id()
        if admissions.take(session):
            accepted(session)
            return [gr.validate(True, "") for _ in inputs]
        return guard(*inputs)
    return validator


def kept_errors(errors: ErrorLines, fn):
    """The handler `fn` (a streaming one stays streaming) with the sentence it fails with kept under the asking
    session, for failed_view. The signature stays fn's: the API keeps its parameter names."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def streamed(*args, **kwargs):
            with errors.kept(("benchmark", session_id())):
                yield from fn(*args, **kwargs)
        return streamed

    @functools.wraps(fn)
    def kept(*args, **kwargs):
        with errors.kept(("benchmark", session_id())):
            return fn(*args, **kwargs)
    return kept


def what_next(ctx: AppContext) -> str:
    """What to do after a benchmark failed for no fault of the request, as the end of a sentence: a Space's visitor
    cannot read the app's log, so on a Space it says what to try instead."""
    if ctx.on_space:
        return ("try again with fewer models, smaller batch sizes or a shorter sequence length; if it happens again, "
                "run the lab on your own machine, where the app's log has the details.")
    return "try again with fewer models, batch sizes or modes; if it happens again, the app's log has the details."


def fault_text(ctx: AppContext, what: str, error: Exception) -> str:
    """A fault of PyTorch, a runtime or a model's files (not a mistake in the request) as sentences for the page:
    `what` happened, the error's own sentence, and what to do next; the traceback goes to the app's log. Call it
    while handling `error`."""
    traceback.print_exc()
    then = what_next(ctx)
    return ctx.public_text(f"{what}: {error_sentence(error)} {then[:1].upper()}{then[1:]}")


def no_reason(ctx: AppContext) -> str:
    """The progress line's reason when a benchmark failed and no sentence was kept for it."""
    return f"the benchmark ended without saying why; {what_next(ctx)}"


def failed_view(ctx: AppContext, errors: ErrorLines, stops: StopFlags, estimate: str | None = "") -> tuple:
    """The page's outputs after a refused or failed benchmark: the tables, charts, notes and downloads emptied, as
    they showed another request's results, and why on the progress line (kept until the next run), unless the page's
    estimate line (`estimate`, its Markdown) already says so: the sentence is on the page once, and in the notice.

    A second benchmark refused while the visitor's first runs changes nothing: the page shows that one's progress."""
    session = session_id()
    reason = errors.take(("benchmark", session)) or no_reason(ctx)
    if reason == BUSY_LINE:
        return tuple(gr.skip() for _ in BenchView.FIELDS)
    stops.showing.discard(session)  # a later run stopped before its first row has no earlier rows to point to
    # the page sends the estimate back as Gradio wrote it, cleandoc'd
    said = inspect.cleandoc(estimate or "") == inspect.cleandoc(cannot_run_line(reason))
    return BenchView(progress="" if said else failure_line("Benchmark", reason)).outputs()


def idle_buttons() -> tuple[gr.Button, gr.Button]:
    """Run enabled, Stop disabled: the benchmark ended, however it ended."""
    return gr.Button(RUN_LABEL, interactive=True), gr.Button(interactive=False)


CANCELLED_IN_QUEUE = "Cancelled your benchmark while it waited in the queue; nothing was measured."
STOP_WAIT_S = 20.0  # Stop waits this long for the run to end, so its answer is the run's own final line


class StopFlag(threading.Event):
    """A measurement's stop flag, with the final line the measurement ends with once it has ended."""

    def __init__(self):
        super().__init__()
        self.ended = threading.Event()
        self.final_line = ""

    def finish(self, line: str) -> None:
        self.final_line = line
        self.ended.set()


class StopFlags:
    """One stop flag per session (a browser tab, or one gradio_client Client): Stop ends the measurement of the
    session that asks, between two forward passes, and no one else's; a measurement still waiting in the queue is
    cancelled, and ends without measuring when its turn comes."""

    def __init__(self):
        self._flags: dict[str | None, threading.Event] = {}
        self._lock = threading.Lock()
        # when each session's waiting measurement was accepted into the queue, and when its Stop cancelled one: a
        # cancellation counts only for a measurement accepted before it (not for one sent after the Stop)
        self._accepted: dict[str | None, float] = {}
        self._cancelled: dict[str | None, float] = {}
        # sessions whose page shows a benchmark's rows: a later run stopped before its first row leaves them there
        self.showing: set[str | None] = set()
        # each session's last final line, until its next measurement is accepted: a Stop that arrives as the run
        # ends (its flag gone, its event not yet) answers with it rather than cancel a measurement that is not there
        self._final_lines: OrderedDict[str | None, str] = OrderedDict()

    def accept(self, session: str | None) -> None:
        """Note that a measurement of `session` was accepted into the queue now."""
        with self._lock:
            self._accepted[session] = time.monotonic()
            self._final_lines.pop(session, None)

    def start(self, session: str | None) -> StopFlag:
        """A fresh flag for a measurement of `session` that starts now; already raised when Stop cancelled it while
        it waited in the queue."""
        with self._lock:
            flag_ = self._flags[session] = StopFlag()
            self._final_lines.pop(session, None)
            cancelled, accepted = self._cancelled.pop(session, None), self._accepted.pop(session, float("inf"))
            if cancelled is not None and cancelled >= accepted:
                flag_.set()
            return flag_

    def stop(self, session: str | None) -> StopFlag | None:
        """Raise the flag of `session`'s measurement and return it; None when it has none running."""
        with self._lock:
            flag_ = self._flags.get(session)
            if flag_ is None or flag_.is_set():
                return None
            flag_.set()
            return flag_

    def stopping(self, session: str | None) -> StopFlag | None:
        """The flag of `session`'s measurement when Stop has already raised it (it ends after its forward pass)."""
        with self._lock:
            flag_ = self._flags.get(session)
            return flag_ if flag_ is not None and flag_.is_set() else None

    def cancel_waiting(self, session: str | None) -> None:
        """Cancel the measurement `session` has waiting in the queue: it will end without measuring."""
        with self._lock:
            self._cancelled[session] = time.monotonic()

    def end(self, session: str | None, flag_: StopFlag) -> None:
        """Forget the flag of a measurement that ended (unless a newer one of the session replaced it)."""
        with self._lock:
            if self._flags.get(session) is flag_:
                del self._flags[session]
                if flag_.final_line:
                    self._final_lines[session] = flag_.final_line
                    while len(self._final_lines) > 1024:  # sessions that left: forget the oldest
                        self._final_lines.popitem(last=False)

    def final_line(self, session: str | None) -> str:
        """The line `session`'s last measurement ended with, until its next one is accepted; "" when none."""
        with self._lock:
            return self._final_lines.get(session, "")


@user_errors
def run_benchmark(ctx: AppContext, stops: StopFlags, models=None, device=None, batch_sizes=None, seq_len=None,
                  modes=None, runs=None, compile=None):
    """Stream the benchmark: the progress line on every pass, tables, charts and files on every result. Stop (the
    session's flag in `stops`) ends it between two forward passes with what was measured so far."""
    session, stop, folder, stage = session_id(), None, None, "preparing"
    try:
        # planning loads the models: a model that fails to load is answered like a fault while measuring
        plan = checked_plan(ctx, models, device, batch_sizes, seq_len, modes, runs, compile)
        config, stage = plan.config, "measuring"
        stop = stops.start(session)
        started, rows, peaks = time.perf_counter(), [], None
        earlier_shown = session in stops.showing
        if stop.is_set():  # Stop reached it while it waited in the queue
            stop.finish(CANCELLED_IN_QUEUE)
            view = BenchView(progress=CANCELLED_IN_QUEUE)
            yield view.outputs("progress") if earlier_shown else view.outputs()
            return
        machine_info = machine.machine_dict(config.device)  # before the run, so its load average is other programs'
        view = BenchView(progress=progress_text(0.0, "starting; " + plan.describe(), started, plan.estimate_s),
                         card=_frame(card_only_rows(config.models, config.device), CARD_COLUMNS))
        # a previous benchmark's rows stay on the page until this one's first row replaces them
        yield view.outputs("progress") if earlier_shown else view.outputs()
        for event in bench.iter_benchmark(config, ctx.cache.get, plan, stop):
            if isinstance(event, bench.Progress):
                view.progress = progress_text(event.fraction, event.message, started, plan.estimate_s)
                yield view.outputs("progress")
                continue
            if isinstance(event, bench.Peaks):
                peaks, view.notes = event, notes_text([], event)
                if not earlier_shown:  # the notes of the rows still shown stay with them
                    yield view.outputs("notes")
                continue
            rows.append(event)
            result = bench.result_record(config, rows, plan, time.perf_counter() - started, peaks, machine_info)
            # the names of all the models asked for, so a model's name stays the same as the others' rows arrive
            names = short_names([*config.models, *(r["model"] for r in result["rows"])])
            view.results = _frame(row_lines(result["rows"], names), ROW_COLUMNS)
            view.latency = latency_figure(result["rows"], config.device, names)
            view.throughput = throughput_figure(result["rows"], config.device, names)
            view.card = _frame(card_rows(result["card"], result["rows"], config.device), CARD_COLUMNS)
            view.notes = notes_text(result["rows"], peaks)
            view.ratios = _frame(ratio_rows(result["speedups"], names), RATIO_COLUMNS)
            folder = folder or Path(tempfile.mkdtemp(prefix=BENCH_PREFIX))
            view.csv, view.json = write_downloads(folder, result)  # after every row: a stopped run keeps its results
            stops.showing.add(session)
            yield view.outputs("results", "latency", "throughput", "card", "ratios", "csv", "json", "notes")
        took = format_seconds(time.perf_counter() - started)
        if stop.is_set():
            # the bar shows the share of the measurements made, never full: a stopped run did not do all it planned
            # (the running bar's time share counted the unfinished measurement's warm-up: 73% after 1 of 4)
            measured, planned = len(rows), len(plan.jobs)
            view.progress = progress_text(stopped_fraction(measured, planned),
                                          stopped_line(measured, planned, took, earlier_shown), started,
                                          plan.estimate_s, final=True)
            stop.finish(view.progress)  # Stop's own answer is this line too, whichever reaches the page last
            yield view.outputs("progress") if earlier_shown and not rows else view.outputs()
        else:
            done = f"done: {count(len(rows), 'measurement')} in {took} (estimated {format_seconds(plan.estimate_s)})"
            view.progress = progress_text(1.0, done, started, plan.estimate_s, final=True)
            stop.finish(view.progress)
            yield view.outputs()
    except Exception as error:
        if isinstance(error, ValueError):  # a refused request, or a model that fails to load: as a Space may say it
            message = ctx.public_text(error_message(error))
        else:
            what = NOT_PREPARED if stage == "preparing" else f"The benchmark stopped on an error while {stage}"
            message = fault_text(ctx, what, error)
        if stop is not None:
            stop.finish(failure_line("Benchmark", message))  # Stop's answer too, should Stop come as it failed
        raise ValueError(message) from None
    finally:
        if stop is not None:
            stop.ended.set()  # an error ended it: Stop waits no longer
            stops.end(session, stop)
        if folder is not None:  # Gradio has copied the files it was given into its own cache
            shutil.rmtree(folder, ignore_errors=True)
        remove_old_folders()


def stop_benchmark(stops: StopFlags, wait_s: float = STOP_WAIT_S) -> str:
    """Stop the caller's own measurement (the session's) between two forward passes, and answer with the line it
    ended with. Both this answer and the run's last message write the progress line, in either order: so both are
    the same final line, unless the run takes longer than `wait_s` to reach the end of its forward pass. A Stop that
    comes as the run has just ended answers with that run's final line, so it never overwrites it."""
    session = session_id()
    flag_ = stops.stop(session) or stops.stopping(session)  # pressed again: the same answer, never "cancelled"
    if flag_ is None:
        if stops.final_line(session):  # the run has just ended: the line it ended with stays on the page
            return stops.final_line(session)
        if session is not None and pending_requests(session, QUEUE_GROUP):
            stops.cancel_waiting(session)
            return CANCELLED_IN_QUEUE
        return "Nothing of yours is being measured."
    if flag_.ended.wait(wait_s) and flag_.final_line:
        return flag_.final_line
    return "Stopping after this forward pass; the results measured so far stay above and in the downloads."


def model_list(ctx: AppContext) -> gr.Dropdown:
    """The models that can be measured now (a run that finished since the page opened is among them)."""
    return gr.Dropdown(choices=ctx.model_choices(include_arch=True))


def build(ctx: AppContext) -> dict:
    """The tab's layout and wiring; returns its main components and "refresh": (function, outputs) for the app to run
    on every page load and whenever the tab is opened."""
    cuda = torch.cuda.is_available()
    gr.Markdown(INTRO)
    with gr.Row():
        models = gr.Dropdown(ctx.model_choices(include_arch=True), value=list(bench.CARD_MODELS), multiselect=True,
                             allow_custom_value=True, label="Models", scale=3, elem_id="bench-models",
                             info="arch:NAME needs no download; a Hub id or a run's student works too")
        device = CheckedRadio(["cpu", "cuda"] if cuda else ["cpu"], value="cpu", label="Device",
                          info=None if cuda else "no GPU on this machine")
    with gr.Row():
        batch_sizes = gr.Textbox("1,16", label="Batch sizes", elem_id="bench-batch-sizes",
                                 info="comma-separated; the card used 1 and 16")
        seq_len = CheckedNumber(bench.CARD_SEQ_LEN, precision=0, label="Sequence length (tokens)",
                                elem_id="bench-seq-len", info="the card used 512")
        modes = CheckedCheckboxGroup(available_modes(bench.MODES), value=["reference", "fast"], label="Modes",
                                     elem_id="bench-modes", info="reference: fp32 eager; fast: 16-bit and SDPA; "
                                     "onnxruntime, openvino: exported (CPU only, adds export time)")
        runs = CheckedNumber(0, precision=0, label="Timed runs", elem_id="bench-runs",
                             info=f"0: automatic (about 3 s of runs, 3 to 10); at most {MAX_RUNS}")
        # min_width: at an 800 px window the row's share left the checkbox's label clipped
        compile_fast = gr.Checkbox(False, label="torch.compile the fast path", info="about 30 s more per input shape",
                                   min_width=220, scale=1)
    inputs = [models, device, batch_sizes, seq_len, modes, runs, compile_fast]
    estimate_md = gr.Markdown(label="estimate", show_label=False, elem_id="bench-estimate")
    with gr.Row():
        run_button = gr.Button(RUN_LABEL, variant="primary", scale=3, elem_id="bench-run")
        stop_button = gr.Button("Stop", variant="stop", scale=1, interactive=False, elem_id="bench-stop")
    progress_md = gr.Markdown("", label="progress", show_label=False, elem_id="bench-progress")
    results = results_table(_frame([], ROW_COLUMNS), ROW_COLUMNS, elem_id="bench-results",
                            label="Measurements (one row as each arrives)")
    gr.Markdown(ROW_LEGEND, elem_id="bench-results-legend")
    with gr.Row():
        latency_plot = gr.Plot(label="Latency", elem_id="bench-latency")
        throughput_plot = gr.Plot(label="Throughput", elem_id="bench-throughput")
    card = results_table(_frame(card_only_rows(list(bench.CARD_MODELS), "cpu"), CARD_COLUMNS), CARD_COLUMNS,
                         elem_id="bench-card", label="Beside the model card")
    gr.Markdown(CARD_LEGEND, elem_id="bench-card-legend")
    ratios = results_table(_frame([], RATIO_COLUMNS), RATIO_COLUMNS, elem_id="bench-ratios",
                           label="Speed-ups, card and here (the card's only beside figures measured at seq_len 512)")
    notes_md = gr.Markdown("", label="notes on the measurements", show_label=False, elem_id="bench-notes")
    with gr.Row():
        csv_file = gr.File(label="Results as CSV", elem_id="bench-csv")
        json_file = gr.File(label="Results as JSON (with the machine record)", elem_id="bench-json")

    # no triggers: on page load and on every change of an input, as one endpoint (a Markdown whose value is a
    # function would add a second, unnamed /estimate event on the same triggers)
    gr.on(None, functools.partial(estimate_benchmark, ctx), inputs=inputs, outputs=estimate_md,
          api_name="estimate_benchmark", show_progress="hidden")
    stops, admissions = StopFlags(), Admissions()
    # One measurement at a time; a run over the time limit, or a second one from the same visitor, is refused before
    # it is queued.
    check = functools.partial(over_the_time_limit, ctx)
    # The page checks the request first, in a step of its own that disables Run while the benchmark runs: a second
    # click would otherwise vanish in the page (Gradio drops a click on an event still running). Only that step may
    # refuse a page's request: a request refused by a validator runs nothing after it, so a button disabled before
    # the refusal would stay disabled.
    page_guard = queue_guard(QUEUE_GROUP, PER_SESSION, "benchmark", "benchmarks", check)
    client_guard = queue_guard(QUEUE_GROUP, PER_SESSION, "benchmark", "benchmarks", check, accepted=stops.accept)
    errors = ErrorLines()  # why this session's last request failed, for the progress line once the notice fades
    # queued, as the page shows a notice only for a queued event's error; beside a running benchmark, not behind it
    admitted = run_button.click(kept_errors(errors, functools.partial(admit_run, admissions, page_guard)),
                                inputs=inputs, outputs=[run_button, stop_button, progress_md], concurrency_limit=None,
                                show_progress="hidden", api_visibility="private")
    outputs = [progress_md, results, latency_plot, throughput_plot, card, ratios, notes_md, csv_file, json_file]
    measured = admitted.success(kept_errors(errors, functools.partial(run_benchmark, ctx, stops)), inputs=inputs,
                                api_name="run_benchmark", show_progress="minimal", concurrency_limit=1,
                                concurrency_id=QUEUE_GROUP,
                                validator=admitted_or(admissions, client_guard, stops.accept), outputs=outputs)
    # Gradio 6's page runs .then only after a success, so .failure as well: the button must never stay disabled
    for ended in (measured.then, measured.failure):
        ended(idle_buttons, None, [run_button, stop_button], queue=False, api_visibility="private")
    # A refused or failed request takes the results of the one before it off the page and says why on the progress
    # line, unless the estimate line says it already; writing every output also removes the "Error" mark the failed
    # event leaves on each.
    for failed in (admitted.failure, measured.failure):
        failed(functools.partial(failed_view, ctx, errors, stops), estimate_md, outputs, queue=False,
               show_progress="hidden", api_visibility="private")
    # No cancels=[run_event]: cancelling dropped the run's last message, so the page never heard that it stopped.
    # The Stop flag ends the run between two forward passes, and the run itself sends the final line and rows.
    stop_button.click(functools.partial(stop_benchmark, stops), outputs=progress_md, api_name="stop_benchmark",
                      show_progress="hidden")
    return dict(models=models, device=device, batch_sizes=batch_sizes, seq_len=seq_len, modes=modes, runs=runs,
                compile=compile_fast, estimate=estimate_md, run=run_button, stop=stop_button, progress=progress_md,
                results=results, latency_plot=latency_plot, throughput_plot=throughput_plot, card=card,
                ratios=ratios, files=(csv_file, json_file), refresh=(functools.partial(model_list, ctx), [models]))


def limits_text(peaks: bench.Peaks) -> str:
    lines = ["**This machine's arithmetic limits**, measured when the run started:"]
    for dtype, peak in peaks.as_dict().items():
        lines.append(f"- {dtype}: measured matrix product {peak['measured_gflops']:,.0f} GFLOP/s; "
                     f"theoretical {peak['theoretical_basis']}")
    lines.append("\n*of peak* (`share_of_peak` in the downloads) is a row's `gflops` divided by the measured matrix "
                 "product of its dtype (one 2048 x 2048 product on CPU, timed for about a second), so 1.00 means as "
                 "fast as that product. It is a reference, not a ceiling: a row can pass 1.00 when the CPU clock was "
                 "higher during its runs (turbo, fewer programs sharing the machine) or its smaller matrices sit "
                 "better in the caches. The theoretical figure is the ceiling. The *Before you run* estimate uses a "
                 "different, quicker product (1024 x 1024, a quarter of a second), so its GFLOP/s differ from these.")
    return "\n".join(lines)

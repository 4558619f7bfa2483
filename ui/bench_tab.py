"""The Benchmark tab: measure teacher and students live, beside the model card's speed table."""
from __future__ import annotations

import functools
import math
import re
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
import torch

from core import bench
from core.bench import machine
from core.bench.plan import MAX_BATCH_SIZE, MAX_RUNS, MAX_SEQ_LEN, check_estimate
from core.bench.runtimes import RUNTIME_MODES, available_modes
from core.formatting import count, format_seconds, parse_int_list
from ui.context import (
    AppContext,
    CheckedCheckboxGroup,
    CheckedNumber,
    CheckedRadio,
    error_message,
    flag,
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
ROW_COLUMNS = ["model", "mode", "dtype", "batch_size", "seq_len", "latency_s", "latency_p90_s", "throughput_samples_s",
               "peak_mem_mb", "gflops", "share_of_peak", "params", "size_mb", "runs", "setup_s", "check", "tried"]
CARD_COLUMNS = ["model", "size_mb", "card_size_mb", "card_latency_s", "reference_latency_s", "fast_latency_s",
                "card_throughput", "reference_throughput", "fast_throughput"]
# "card", "reference (here)" and "fast (here)": one ratio between two models, as the card gave it, then measured
# here in each mode; "between modes (here)": one model in two modes, a ratio the card has no column for
RATIO_COLUMNS = ["speed-up", "card", "reference (here)", "fast (here)", "between modes (here)"]
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


def short_name(model: str) -> str:
    return model.removeprefix("arch:").replace("-cased-conversational", "")


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


CHART_KINDS = {  # kind -> (title, unit line, row field)
    "latency": ("Latency", "seconds, lower is better", "latency_s"),
    "throughput": ("Throughput", "samples/s, higher is better", "throughput_samples_s"),
}
HEADROOM = 1.2  # y axis up to 1.2 x the tallest bar, so its value label above the bar stays inside the plot


def latency_figure(rows: list[dict], device: str) -> go.Figure:
    return bar_figure(rows, device, "latency")


def throughput_figure(rows: list[dict], device: str) -> go.Figure:
    return bar_figure(rows, device, "throughput")


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


def add_bars(figure: go.Figure, name: str, values: dict[str, float | None], **style) -> None:
    """One trace of bars: one for each model with a value, none for a model without (no trace when none has one).

    A missing value is left out rather than sent as None: plotly hides the label of a blank bar (display none, its
    point lying off the axis) and, when the value arrives in the streamed figure, reuses that hidden label, measures
    it as 0 x 0 and drops it, then caches that size for the label's text: the finished chart would keep that bar
    unlabelled.
    """
    shown = {model: y for model, y in values.items() if y is not None}
    if shown:
        figure.add_bar(name=name, x=[short_name(m) for m in shown], y=list(shown.values()),
                       text=[value_label(y) for y in shown.values()], **style)


def bar_figure(rows: list[dict], device: str, kind: str) -> go.Figure:
    """Card, reference and fast bars per model at the card's batch for this kind where measured, else the nearest.

    Each title line stays short (about 40 characters): plotly does not wrap titles, and the chart is half a page wide.
    """
    name, unit, value = CHART_KINDS[kind]
    batch = chart_batch(rows, kind)
    models = list(dict.fromkeys(r["model"] for r in rows))
    note = card_bar_note(rows, device, kind)
    figure = go.Figure()
    # Every bar keeps its value: plotly shrinks an outside label to its bar's width by default (constraintext), which
    # left the narrow grouped bars of a short or small value with a label too small to draw.
    bar_style = dict(texttemplate="%{text}", textposition="outside", cliponaxis=False, constraintext="none",
                     textangle=0, textfont=dict(size=11))
    if not note:
        add_bars(figure, CARD_MACHINE[device], {m: bench.card_figure(m, device, kind) for m in models},
                 marker_color=MODE_COLOURS["card"], **bar_style)
    for mode in bench.MODES:
        found = {r["model"]: r[value] for r in rows if r["mode"] == mode and r["batch_size"] == batch}
        add_bars(figure, f"{mode} (here)", found, marker_color=MODE_COLOURS[mode], **bar_style)
    # the models in the order measured, whichever trace names them first
    figure.update_xaxes(categoryorder="array", categoryarray=[short_name(m) for m in models])
    tallest = max((y for trace in figure.data for y in trace.y), default=0.0)
    title = f"{name} at batch {batch}<br><sup>{unit}</sup>" + (f"<br><sup>{note}</sup>" if note else "")
    # r=50: the last bar's label is centred on it and wider than it; a 10 px margin cut it off at the right edge
    figure.update_layout(title=title, barmode="group", height=380, margin=dict(l=40, r=50, t=90, b=40),
                         legend=dict(orientation="h", y=-0.15), template="plotly_white",
                         uniformtext=dict(minsize=10, mode="show"))  # never hide a label for being small
    if tallest > 0:
        figure.update_yaxes(range=[0, tallest * HEADROOM])
    return figure


def _frame(lines: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(lines, columns=columns)
    return frame.astype(object).where(frame.notna(), "")


def card_columns(modes: list[str]) -> list[str]:
    """The card table's columns: CARD_COLUMNS, then the latency of each runtime mode measured."""
    return CARD_COLUMNS + [f"{m}_latency_s" for m in RUNTIME_MODES if m in modes]


def ratio_rows(speedups: list[dict]) -> list[dict]:
    """The speed-ups as one line per question, with card, reference and fast side by side."""
    lines = []
    for item in speedups:
        if "runtime_speedup" in item:
            lines.append({"speed-up": f"{short_name(item['model'])}: fast latency / {item['mode']} latency "
                                      f"(batch {item['batch_size']})", "between modes (here)": item["runtime_speedup"]})
            continue
        if "fast_speedup" in item:
            lines.append({"speed-up": f"{short_name(item['model'])}: reference latency / fast latency "
                                      f"(batch {item['batch_size']})", "between modes (here)": item["fast_speedup"]})
            continue
        teacher, student = (short_name(part) for part in item["pair"].split(" / "))
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
    return [{"model": m, "card_size_mb": bench.published(m).get("size_mb"),
             "card_latency_s": bench.card_figure(m, device, "latency"),
             "card_throughput": bench.card_figure(m, device, "throughput")} for m in models if bench.published(m)]


def write_downloads(folder: Path, result: dict) -> tuple[str, str]:
    csv_path, json_path = folder / "benchmark.csv", folder / "benchmark.json"
    pd.DataFrame(result["rows"]).to_csv(csv_path, index=False)
    bench.write_json(result, json_path)
    return str(csv_path), str(json_path)


def progress_text(fraction: float, message: str, started: float, estimate_s: float, final: bool = False) -> str:
    """The progress line: a bar, the share done, the message and the time; a final line (done or stopped) gives
    the time taken and no time left."""
    elapsed = time.perf_counter() - started
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
    limits: str = ""
    csv: str | None = None
    json: str | None = None

    FIELDS = ("progress", "results", "latency", "throughput", "card", "ratios", "limits", "csv", "json")

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
    except ValueError:
        return
    check_estimate(plan, ctx.max_bench_s)


def estimate_benchmark(ctx: AppContext, models=None, device=None, batch_sizes=None, seq_len=None, modes=None,
                       runs=None, compile=None) -> str:
    """How long and how much memory the measurement as set will take, or why it cannot run."""
    try:
        plan = checked_plan(ctx, models, device, batch_sizes, seq_len, modes, runs, compile)
    except ValueError as error:
        return f"**Cannot run as set:** {error_message(error)}"
    busy = machine.busy_note()
    notes = plan.skip_lines() + ([busy] if busy else [])
    session = session_id()
    if session is not None and pending_requests(session, QUEUE_GROUP):
        # settings changed while a benchmark runs: the line above its progress must not read as its description
        notes.insert(0, "your benchmark below keeps the settings it started with; this estimate is for your next run")
        return f"**Before your next run:** {plan.describe()}" + "".join(f"\n\n*Note: {n}*" for n in notes)
    return f"**Before you run:** {plan.describe()}" + "".join(f"\n\n*Note: {n}*" for n in notes)


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


@user_errors
def admit_run(admissions: Admissions, guard, *inputs) -> tuple[gr.Button, gr.Button]:
    """The page's first step of a run: the request checked by `guard` (the run's own validator), refused with the
    guard's sentence, else admitted with Run disabled (one benchmark per page at a time) and Stop enabled.

    A refusal is an error notice rather than a validator's line under Models: the status updates of the page's other
    events (the Distill tab's timer ticks every two seconds) wipe that line within moments."""
    refusal = next((v["message"] for v in guard(*inputs) if not v["is_valid"] and v["message"]), "")
    if refusal:
        raise ValueError(refusal)
    admissions.add(session_id())
    return gr.Button(RUNNING_LABEL, interactive=False), gr.Button(interactive=True)


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

    def accept(self, session: str | None) -> None:
        """Note that a measurement of `session` was accepted into the queue now."""
        with self._lock:
            self._accepted[session] = time.monotonic()

    def start(self, session: str | None) -> StopFlag:
        """A fresh flag for a measurement of `session` that starts now; already raised when Stop cancelled it while
        it waited in the queue."""
        with self._lock:
            flag_ = self._flags[session] = StopFlag()
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

    def cancel_waiting(self, session: str | None) -> None:
        """Cancel the measurement `session` has waiting in the queue: it will end without measuring."""
        with self._lock:
            self._cancelled[session] = time.monotonic()

    def end(self, session: str | None, flag_: StopFlag) -> None:
        """Forget the flag of a measurement that ended (unless a newer one of the session replaced it)."""
        with self._lock:
            if self._flags.get(session) is flag_:
                del self._flags[session]


@user_errors
def run_benchmark(ctx: AppContext, stops: StopFlags, models=None, device=None, batch_sizes=None, seq_len=None,
                  modes=None, runs=None, compile=None):
    """Stream the benchmark: the progress line on every pass, tables, charts and files on every result. Stop (the
    session's flag in `stops`) ends it between two forward passes with what was measured so far."""
    plan = checked_plan(ctx, models, device, batch_sizes, seq_len, modes, runs, compile)
    config, session = plan.config, session_id()
    stop = stops.start(session)
    folder = None
    started, rows, peaks = time.perf_counter(), [], None
    earlier_shown = session in stops.showing
    if stop.is_set():  # Stop reached it while it waited in the queue
        stops.end(session, stop)
        view = BenchView(progress=CANCELLED_IN_QUEUE)
        yield view.outputs("progress") if earlier_shown else view.outputs()
        return
    try:
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
                peaks, view.limits = event, limits_text(event)
                yield view.outputs("limits")
                continue
            rows.append(event)
            result = bench.result_record(config, rows, plan, time.perf_counter() - started, peaks, machine_info)
            view.results = _frame(result["rows"], ROW_COLUMNS)
            view.latency = latency_figure(result["rows"], config.device)
            view.throughput = throughput_figure(result["rows"], config.device)
            view.card = _frame(result["card"], card_columns(config.modes))
            view.ratios = _frame(ratio_rows(result["speedups"]), RATIO_COLUMNS)
            folder = folder or Path(tempfile.mkdtemp(prefix=BENCH_PREFIX))
            view.csv, view.json = write_downloads(folder, result)  # after every row: a stopped run keeps its results
            stops.showing.add(session)
            yield view.outputs("results", "latency", "throughput", "card", "ratios", "csv", "json", "limits")
        took = format_seconds(time.perf_counter() - started)
        if stop.is_set():
            # the bar shows the share of the measurements made, never full: a stopped run did not do all it planned
            # (the running bar's time share counted the unfinished measurement's warm-up: 73% after 1 of 4)
            measured, planned = len(rows), len(plan.jobs)
            view.progress = progress_text(stopped_fraction(measured, planned),
                                          stopped_line(measured, planned, took, earlier_shown), started,
                                          plan.estimate_s, final=True)
            stop.finish(view.progress)  # Stop's own answer is this line too, whichever reaches the page last
            yield view.outputs("progress", "limits") if earlier_shown and not rows else view.outputs()
        else:
            done = f"done: {count(len(rows), 'measurement')} in {took} (estimated {format_seconds(plan.estimate_s)})"
            view.progress = progress_text(1.0, done, started, plan.estimate_s, final=True)
            stop.finish(view.progress)
            yield view.outputs()
    except ValueError as error:  # a model that fails to load while measuring: said as a Space may say it
        raise ValueError(ctx.public_text(error_message(error))) from None
    finally:
        stop.ended.set()  # an error ended it: Stop waits no longer
        stops.end(session, stop)
        if folder is not None:  # Gradio has copied the files it was given into its own cache
            shutil.rmtree(folder, ignore_errors=True)
        remove_old_folders()


def stop_benchmark(stops: StopFlags, wait_s: float = STOP_WAIT_S) -> str:
    """Stop the caller's own measurement (the session's) between two forward passes, and answer with the line it
    ended with. Both this answer and the run's last message write the progress line, in either order: so both are
    the same final line, unless the run takes longer than `wait_s` to reach the end of its forward pass."""
    session = session_id()
    flag_ = stops.stop(session)
    if flag_ is None:
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
    results = gr.Dataframe(_frame([], ROW_COLUMNS), interactive=False, elem_id="bench-results",
                           label="Measurements (one row as each arrives; peak_mem_mb: the weights plus the most memory "
                                 "the passes add, MB)")
    with gr.Row():
        latency_plot = gr.Plot(label="Latency", elem_id="bench-latency")
        throughput_plot = gr.Plot(label="Throughput", elem_id="bench-throughput")
    card = gr.Dataframe(_frame(card_only_rows(list(bench.CARD_MODELS), "cpu"), CARD_COLUMNS), interactive=False,
                        label="Beside the model card (card: seq_len 512; *_latency_s in seconds at batch 1, "
                              "*_throughput in samples/s at batch 16; the card's columns stay empty for a model "
                              "measured at another length)")
    ratios = gr.Dataframe(_frame([], RATIO_COLUMNS), interactive=False,
                          label="Speed-ups, card and here (the card's only beside figures measured at seq_len 512)")
    limits_md = gr.Markdown("", label="notes on the measurements", show_label=False)
    with gr.Row():
        csv_file = gr.File(label="Results as CSV")
        json_file = gr.File(label="Results as JSON (with the machine record)")

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
    # queued, as the page shows a notice only for a queued event's error; beside a running benchmark, not behind it
    admitted = run_button.click(functools.partial(admit_run, admissions, page_guard), inputs=inputs,
                                outputs=[run_button, stop_button], concurrency_limit=None, show_progress="hidden",
                                api_visibility="private")
    measured = admitted.success(functools.partial(run_benchmark, ctx, stops), inputs=inputs,
                                api_name="run_benchmark", show_progress="minimal", concurrency_limit=1,
                                concurrency_id=QUEUE_GROUP,
                                validator=admitted_or(admissions, client_guard, stops.accept),
                                outputs=[progress_md, results, latency_plot, throughput_plot, card, ratios, limits_md,
                                         csv_file, json_file])
    # Gradio 6's page runs .then only after a success, so .failure as well: the button must never stay disabled
    for ended in (measured.then, measured.failure):
        ended(idle_buttons, None, [run_button, stop_button], queue=False, api_visibility="private")
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
    lines.append("\n`share_of_peak` is a row's `gflops` divided by the measured matrix product of its dtype (one "
                 "2048 x 2048 product on CPU, timed for about a second), so 1.00 means as fast as that product. It is "
                 "a reference, not a ceiling: a row can pass 1.00 when the CPU clock was higher during its "
                 "runs (turbo, fewer programs sharing the machine) or its smaller matrices sit better in the caches. "
                 "The theoretical figure is the ceiling. The *Before you run* estimate uses a different, quicker "
                 "product (1024 x 1024, a quarter of a second), so its GFLOP/s differ from these.")
    return "\n".join(lines)

"""The benchmark as it runs: the progress line, then tables, charts, notes and downloads as each row arrives."""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from core import bench
from core.bench import machine
from core.formatting import count, format_seconds
from ui.bench_estimate import checked_plan
from ui.bench_faults import NOT_PREPARED, fault_text
from ui.bench_plots import latency_figure, short_names, throughput_figure
from ui.bench_stop import CANCELLED_IN_QUEUE, StopFlags
from ui.bench_tables import (
    CARD_COLUMNS,
    RATIO_COLUMNS,
    ROW_COLUMNS,
    card_only_rows,
    card_rows,
    frame,
    notes_text,
    ratio_rows,
    row_lines,
)
from ui.context import AppContext
from ui.downloads import BENCH_PREFIX, remove_old_folders
from ui.errors import error_message, failure_line, user_errors
from ui.page_text import markdown_text
from ui.sessions import session_id


def write_downloads(folder: Path, result: dict) -> tuple[str, str]:
    """The result as benchmark.csv (its rows) and benchmark.json (the whole record) in `folder`; their paths."""
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
    results: pd.DataFrame = field(default_factory=lambda: frame([], ROW_COLUMNS))
    latency: go.Figure | None = None
    throughput: go.Figure | None = None
    card: pd.DataFrame = field(default_factory=lambda: frame([], CARD_COLUMNS))
    ratios: pd.DataFrame = field(default_factory=lambda: frame([], RATIO_COLUMNS))
    notes: str = ""
    csv: str | None = None
    json: str | None = None

    FIELDS = ("progress", "results", "latency", "throughput", "card", "ratios", "notes", "csv", "json")

    def outputs(self, *changed: str) -> tuple:
        """Every output (no names given), or only the named ones with gr.skip() in the others' places."""
        return tuple(getattr(self, name) if not changed or name in changed else gr.skip() for name in self.FIELDS)


def show_result(view: BenchView, result: dict) -> None:
    """Fill `view`'s tables, charts and notes from a result record (bench.result_record, or the same read back);
    KeyError or TypeError when the record lacks a field these need."""
    config, rows = result["config"], result["rows"]
    # the names of all the models asked for, so a model's name stays the same as the others' rows arrive
    names = short_names([*config["models"], *(r["model"] for r in rows)])
    view.results = frame(row_lines(rows, names), ROW_COLUMNS)
    view.latency = latency_figure(rows, config["device"], names)
    view.throughput = throughput_figure(rows, config["device"], names)
    view.card = frame(card_rows(result["card"], rows, config["device"]), CARD_COLUMNS)
    view.notes = notes_text(rows, result.get("peak"))
    view.ratios = frame(ratio_rows(result["speedups"], names), RATIO_COLUMNS)


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
                         card=frame(card_only_rows(config.models, config.device), CARD_COLUMNS))
        # a previous benchmark's rows stay on the page until this one's first row replaces them
        yield view.outputs("progress") if earlier_shown else view.outputs()
        for event in bench.iter_benchmark(config, ctx.cache.get, plan, stop):
            if isinstance(event, bench.Progress):
                view.progress = progress_text(event.fraction, event.message, started, plan.estimate_s)
                yield view.outputs("progress")
                continue
            if isinstance(event, bench.Peaks):
                peaks, view.notes = event, notes_text([], event.as_dict())
                if not earlier_shown:  # the notes of the rows still shown stay with them
                    yield view.outputs("notes")
                continue
            rows.append(event)
            result = bench.result_record(config, rows, plan, time.perf_counter() - started, peaks, machine_info)
            show_result(view, result)
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

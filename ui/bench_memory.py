"""A visitor's last benchmark, kept in their browser: a reload, or a page opened again later, shows its results.

The record (bench.result_record, as the JSON download holds it) is saved each time the JSON download changes, so a
benchmark cut off by a closed page keeps the rows it had measured; the page redraws everything else from it.
"""
from __future__ import annotations

import tempfile
from datetime import datetime
from pathlib import Path

import gradio as gr

from core.bench.report import is_result, read_result_file
from core.formatting import count, format_seconds
from ui.bench_run import BenchView, progress_text, show_result, write_downloads
from ui.bench_stop import StopFlags
from ui.downloads import BENCH_PREFIX
from ui.sessions import session_id

STORAGE_KEY = "rudistil-benchmark"


def memory(key: str) -> gr.BrowserState:
    """Where the page keeps its last benchmark: the browser's local storage, sealed with `key` (AppContext.browser_key,
    which a restarted app reads again). Made unrendered: the app renders it outside the tabs (a tab's components are
    mounted only once it is opened)."""
    return gr.BrowserState(None, storage_key=STORAGE_KEY, secret=key, render=False)


def remember(json_path: str | None, kept: dict | None):
    """The record in the JSON download `json_path` to keep in the browser; gr.skip() when the box was emptied (a
    refused request), holds something else, or holds the record kept already (the one recall redrew)."""
    if not json_path:
        return gr.skip()
    try:
        record = read_result_file(json_path)
    except OSError:
        return gr.skip()
    return gr.skip() if record is None or record == kept else record


def when_made(record: dict) -> str:
    """The record's time as "3 Dec 2026, 18:20 UTC"; "" for a record without one (written by an older version)."""
    try:
        return datetime.fromisoformat(record["time_utc"]).strftime("%-d %b %Y, %H:%M UTC")
    except (KeyError, TypeError, ValueError):
        return ""


def recalled_line(record: dict) -> tuple[float, str]:
    """The progress bar's share and the line for a benchmark redrawn from the browser: when it ran, and whether it
    measured all it planned."""
    measured = len(record["rows"])
    planned = record.get("planned_measurements")
    planned = planned if isinstance(planned, int) and planned >= measured else measured
    when = when_made(record)
    head = f"your last benchmark in this browser{f', {when}' if when else ''}"
    if measured == planned:
        took = record.get("wall_s")
        took = f" in {format_seconds(took)}" if isinstance(took, (int, float)) else ""
        return 1.0, f"{head}: {count(measured, 'measurement')}{took}. Press Run to measure again."
    return min(measured / max(planned, 1), 0.99), (
        f"{head}, did not finish: {measured} of {planned} planned measurements, kept when it was stopped or its page "
        "was closed. Press Run to measure again.")


FORM_FIELDS = ("models", "device", "batch_sizes", "seq_len", "modes", "runs", "compile")


def recalled_form(config: dict, devices: list[str], modes: list[str]) -> tuple:
    """The tab's form (FORM_FIELDS, as the page writes them) set as for the kept benchmark's `config` (BenchConfig
    as a dict), so Run measures the same again; a device or mode this machine does not offer (`devices`, `modes`)
    is left out, the device then left as the page has it. TypeError or ValueError for a config of another shape."""
    device = config["device"] if config["device"] in devices else gr.skip()
    return (list(config["models"]), device, ",".join(str(int(size)) for size in config["batch_sizes"]),
            int(config["seq_len"]), [mode for mode in config["modes"] if mode in modes], int(config["runs"] or 0),
            bool(config["compile"]))


def recall(stops: StopFlags, devices: list[str], modes: list[str], kept) -> tuple:
    """The page's outputs as it opens (BenchView.FIELDS, then FORM_FIELDS): the benchmark kept in this browser, with
    its downloads written afresh, and the form as it was set for it (recalled_form); gr.skip() everywhere when none
    is kept, or what is kept cannot be read as a result."""
    unchanged = tuple(gr.skip() for _ in (*BenchView.FIELDS, *FORM_FIELDS))
    if not is_result(kept) or not kept["rows"]:
        return unchanged
    view = BenchView()
    try:
        show_result(view, kept)
        fraction, line = recalled_line(kept)
        form = recalled_form(kept["config"], devices, modes)
    except Exception:  # a record of another version of the app, or altered in the browser: the page opens without it
        return unchanged
    view.progress = progress_text(fraction, line, 0.0, 0.0, final=True)
    view.csv, view.json = write_downloads(Path(tempfile.mkdtemp(prefix=BENCH_PREFIX)), kept)
    stops.showing.add(session_id())  # a later run stopped before its first row leaves these rows on the page
    return (*view.outputs(), *form)

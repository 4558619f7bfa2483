"""The Benchmark tab's tables and notes: measurements, the card beside this machine, speed-ups, checks, limits."""
from __future__ import annotations

import math

import gradio as gr
import pandas as pd

from core import bench
from core.formatting import format_seconds
from ui.bench_plots import CARD_MACHINE, short_names, times
from ui.page_text import markdown_text
from ui.tables import column_widths

# The page's tables fit a 1024-pixel window without sideways scrolling or a word broken. Each table maps its columns
# to the characters each needs (its longest word, of the header and of the values: the tables' font is monospace, and
# a name breaks at a hyphen or a space, else anywhere) and shares its width in those proportions (ui.tables).
# So the page shows short headers, explained in a legend under each table, and figures of three significant digits;
# the downloads keep the full field names and figures. The measurements table names models as the charts do
# (short_names) and leaves out gflops (its "of peak" gives it against this machine's limit), runs, params, and what is
# the same at every batch of a model and mode (the size in the card table; setup_s, check and tried in the notes).
ROW_COLUMNS = {"model": 16, "mode": 12, "dtype": 14, "batch": 5, "seq": 4, "ms": 6, "p90 ms": 6, "samples/s": 9,
               "MB": 6, "of peak": 6}
ROW_LEGEND = ("**model**: as in the charts · **batch**: sequences a forward pass · **seq**: tokens a sequence · "
              "**ms**: median milliseconds a batch takes, **p90 ms** its 90th percentile · **samples/s**: sequences a "
              "second · **MB**: the weights plus the most memory the passes add, in MiB (2^20 bytes) · **of peak**: "
              "see the notes below. The downloads keep full model names and each field under its own name "
              "(`batch_size`, `seq_len`, `latency_s` and `latency_p90_s` in seconds, `throughput_samples_s`, "
              "`peak_mem_mb`, `share_of_peak`), with `gflops`, `runs`, `params`, `size_mb`, `setup_s`, `check` and "
              "`tried`.")
# One line per model and source of figures (the card, or a mode measured here): any number of modes fits.
CARD_COLUMNS = {"model": 40, "figures": 24, "MB": 6, "ms": 6, "samples/s": 9}
CARD_LEGEND = ("**MB**: the model's size in MiB (2^20 bytes) as the card gives it, or what the mode loads here "
               "(`size_mb`) · **ms**: median milliseconds at batch 1 · **samples/s**: sequences a second at batch 16. "
               "The card measured 512-token sequences, so its figures stay empty beside a model measured at another "
               "length.")
# "card", "reference (here)" and "fast (here)": one ratio between two models, as the card gave it, then measured
# here in each mode; "between modes (here)": one model in two modes, a ratio the card has no column for
RATIO_COLUMNS = {"speed-up": 60, "card": 8, "reference (here)": 10, "fast (here)": 10, "between modes (here)": 13}


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


def frame(lines: list[dict], columns) -> pd.DataFrame:
    """A table's value for gr.Dataframe: one row a line of `lines` (dicts keyed by column name), the columns those
    of `columns` (a column-width dict such as ROW_COLUMNS, or any iterable of names) in their order whether or not
    the lines have them; a missing value or None shows as an empty cell rather than "NaN". Zero lines give an empty
    table with its headers."""
    frame = pd.DataFrame(lines, columns=list(columns))
    return frame.astype(object).where(frame.notna(), "")


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


def notes_text(rows: list[dict], peaks: dict | None) -> str:
    """The notes under the tables: how each mode was checked, then this machine's arithmetic limits (`peaks`: by
    dtype name, as bench.Peaks.as_dict() and a result record's "peak" give them; None or {}: not measured yet)."""
    checks = check_notes(rows)
    parts = ["**How each mode was checked** (every field of every row is in the downloads):", *checks] if checks else []
    if peaks:
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


def limits_text(peaks: dict) -> str:
    """The notes' part on this machine's matmul limits (Markdown); `peaks` as in notes_text."""
    lines = ["**This machine's arithmetic limits**, measured when the run started:"]
    for dtype, peak in peaks.items():
        lines.append(f"- {dtype}: measured matrix product {peak['measured_gflops']:,.0f} GFLOP/s; "
                     f"theoretical {peak['theoretical_basis']}")
    lines.append("\n*of peak* (`share_of_peak` in the downloads) is a row's `gflops` divided by the measured matrix "
                 "product of its dtype (one 2048 x 2048 product on CPU, timed for about a second), so 1.00 means as "
                 "fast as that product. It is a reference, not a ceiling: a row can pass 1.00 when the CPU clock was "
                 "higher during its runs (turbo, fewer programs sharing the machine) or its smaller matrices sit "
                 "better in the caches. The theoretical figure is the ceiling. The *Before you run* estimate uses a "
                 "different, quicker product (1024 x 1024, a quarter of a second), so its GFLOP/s differ from these.")
    return "\n".join(lines)

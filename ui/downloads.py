"""Results offered for download: tables as CSV and figures as HTML pages that open offline, in a fresh folder each.

A tab keeps what one action showed in a `Downloads` (per session, in a gr.State) and writes the files in a private
follow-up event, so the action's API outputs stay as they are and no model runs twice.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

SUFFIXES = {pd.DataFrame: ".csv", go.Figure: ".html"}
DOWNLOAD_PREFIX = "rudistil-download-"  # the folders write_files makes
BENCH_PREFIX = "rudistil-bench-"  # the Benchmark tab's result files
RUN_PREFIX = "rudistil-run-"  # the Distill tab's metrics and student downloads
TEMPORARY_PREFIXES = (DOWNLOAD_PREFIX, BENCH_PREFIX, RUN_PREFIX)
MAX_FOLDER_AGE_S = 3600.0  # Gradio copies what a handler returns into its own cache; older copies here are litter


@dataclass
class Downloads:
    """What one action showed, by the file name it downloads as: a table (written as UTF-8 CSV, no index) or a
    plotly figure (written as a whole HTML page with plotly.js inside). Kept in the order of the tab's file boxes."""
    files: dict[str, pd.DataFrame | go.Figure] = field(default_factory=dict)

    def __post_init__(self):
        for name, item in self.files.items():
            suffix = next((s for kind, s in SUFFIXES.items() if isinstance(item, kind)), None)
            if suffix is None or not name.endswith(suffix):
                raise ValueError(f"'{name}' must be a table named .csv or a figure named .html.")


def table(rows: list[dict]) -> pd.DataFrame:
    """Rows (one dict a row) as a table whose cells keep their Python values, so a CSV cell reads 1, not 1.0, and
    None is an empty cell."""
    return pd.DataFrame(rows, dtype=object)


def write_table(folder: Path, name: str, table: pd.DataFrame) -> Path:
    path = folder / name
    table.to_csv(path, index=False)
    return path


def write_figure(folder: Path, name: str, figure: go.Figure) -> Path:
    """A self-contained page: plotly.js is written into it (about 5 MB), so it opens with no network."""
    path = folder / name
    figure.write_html(path, include_plotlyjs=True, full_html=True)
    return path


def remove_old_folders(max_age_s: float = MAX_FOLDER_AGE_S, root: Path | None = None) -> list[Path]:
    """Remove the lab's temporary folders (TEMPORARY_PREFIXES, in the system's temporary folder or `root`) last
    changed more than `max_age_s` seconds ago; returns those removed. Run when the app starts, when a benchmark ends
    and whenever downloads are written."""
    root = Path(root or tempfile.gettempdir())
    removed, now = [], time.time()
    try:
        entries = list(root.iterdir())
    except OSError:
        return removed
    for entry in entries:
        try:
            old = entry.name.startswith(TEMPORARY_PREFIXES) and entry.is_dir() and not entry.is_symlink() \
                and now - entry.stat().st_mtime > max_age_s
        except OSError:  # gone meanwhile
            continue
        if old:
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def write_files(downloads: Downloads, prefix: str) -> list[Path]:
    """Every table and figure in a fresh temporary folder (named after `prefix`), in order; their paths. Folders
    written over an hour ago are removed first."""
    remove_old_folders()
    folder = Path(tempfile.mkdtemp(prefix=f"{DOWNLOAD_PREFIX}{prefix}-"))
    return [write_table(folder, name, item) if isinstance(item, pd.DataFrame) else write_figure(folder, name, item)
            for name, item in downloads.files.items()]


def file_boxes(downloads: Downloads | None, prefix: str, names: list[str]):
    """The updates of the gr.File boxes of `names` (file names, in the order of the event's outputs) after an action:
    a box whose file the action made shows it, written afresh; a box it made none for is emptied and hidden, since
    its file came from a view the action replaced. With nothing (yet) to download every box is left as it is. One
    box gets one update, not a tuple (Gradio's rule for a single output). ValueError for a file with no box."""
    if downloads is None or not downloads.files:
        updates = tuple(gr.skip() for _ in names)
    else:
        unboxed = [name for name in downloads.files if name not in names]
        if unboxed:
            raise ValueError(f"No download box for {', '.join(unboxed)}.")
        paths = {path.name: path for path in write_files(downloads, prefix)}
        updates = tuple(gr.File(value=str(paths[name]), visible=True) if name in paths
                        else gr.File(value=None, visible=False) for name in names)
    return updates[0] if len(names) == 1 else updates


def file_box(label: str, elem_id: str) -> gr.File:
    """A download box, hidden until it has a file."""
    return gr.File(label=label, visible=False, interactive=False, elem_id=elem_id)


"""Reading back the files a tab offers for download: the paths in gr.File updates, CSV tables and HTML figures."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go

NEW_PLOT = re.compile(r"Plotly\.newPlot\(\s*\"[^\"]+\",\s*")


def paths(updates) -> list[Path]:
    """The files of the gr.File updates a handler returned (one update or a tuple of them), all shown."""
    updates = updates if isinstance(updates, tuple) else (updates,)
    assert all(u.visible is True for u in updates)
    return [Path(u.value["path"]) for u in updates]


def read_csv(path: Path) -> pd.DataFrame:
    """A downloaded CSV as text cells with empty cells as "", so it compares with what the page shows."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def html_figure(path: Path) -> tuple[list, dict]:
    """The (data, layout) a downloaded HTML page draws, read from its Plotly.newPlot call."""
    page = path.read_text(encoding="utf-8")
    start = NEW_PLOT.search(page)
    assert start, f"{path.name} draws no plotly figure"
    decoder = json.JSONDecoder()
    data, end = decoder.raw_decode(page, start.end())
    layout, _ = decoder.raw_decode(page, page.index("{", end))
    return data, layout


def assert_offline_page_of(path: Path, figure: go.Figure) -> None:
    """The page holds plotly.js itself (no script loaded from elsewhere) and exactly the figure's traces and title."""
    page = path.read_text(encoding="utf-8")
    assert re.search(r"\* plotly\.js v\d", page) and "<script src" not in page
    data, layout = html_figure(path)
    expected = json.loads(figure.to_json())
    assert data == expected["data"]
    assert layout.get("title") == expected["layout"].get("title")

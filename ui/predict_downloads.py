"""What each Predictions action downloads (tables as CSV, the figure as HTML), and the boxes showing them."""
from __future__ import annotations

import plotly.graph_objects as go

from core.compare import predict, tables
from ui.downloads import Downloads, file_boxes, table
from ui.predict_figures import label
from ui.predict_tables import probe_table, summary_table

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

"""The Embeddings tab's layer figure, as a pure function of layer-by-layer scores (no Gradio): heat maps of linear
CKA and kNN overlap of every layer of one model against every layer of the others."""
from __future__ import annotations

import html
import textwrap
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.compare.similarity import RELIABLE_SENTENCES

NOTE_CHARS = 110  # characters a line of a note under the layer figure's title


def layer_figure(names: list[str], results: list[dict], sentences: str = "", notes: Sequence[str] = ()
                 ) -> go.Figure:
    """Heat maps with each cell's value written on it: CKA (first row) and kNN overlap (second row) of every layer
    of names[0] (the reference, y) against every layer of each other model (x), one column a model.

    results: embed.layer_similarity of names[0] against each of names[1:]. The closest reference layer for each layer
    of the other model ("closest") is outlined, so the number in it stays readable. When kNN overlap is undefined
    (too few sentences) its row says why instead. `sentences` ("704 sentences (the probe set), mean of token
    vectors") heads the title, so a figure left from earlier settings says so; a line under it warns when the
    sentences are too few for CKA to be reliable (results' "cka_note"), and says why a cell is blank (CKA NaN); the
    `notes` (plain text, such as which sentences a model reads as the same tokens) follow, each wrapped to
    NOTE_CHARS a line.
    """
    reference, others = names[0], names[1:]
    k, knn_note = results[0]["k"], results[0]["knn_note"]
    estimator = results[0]["estimator"]
    titles = [f"{metric}: {reference} vs {name}" for metric in (f"linear CKA ({estimator})", f"kNN overlap@{k}")
              for name in others]
    fig = make_subplots(rows=2, cols=len(others), subplot_titles=titles, vertical_spacing=0.16, horizontal_spacing=0.08)
    for row, metric in enumerate(("cka", "knn_overlap"), start=1):
        for col, result in enumerate(results, start=1):
            values = result[metric]  # (reference layers + 1, other layers + 1)
            fig.update_xaxes(title_text=f"{others[col - 1]} layer", dtick=1, row=row, col=col)
            fig.update_yaxes(title_text=f"{reference} layer", dtick=1, row=row, col=col)
            if metric == "knn_overlap" and knn_note:
                axis = (row - 1) * len(others) + col  # plotly numbers subplot axes row by row: x, x2, x3, ...
                suffix = "" if axis == 1 else str(axis)
                # In page coordinates: plotly.js does not place "domain" references on axes without a trace.
                x_domain, y_domain = fig.layout[f"xaxis{suffix}"].domain, fig.layout[f"yaxis{suffix}"].domain
                fig.add_annotation(text="<br>".join(textwrap.wrap(knn_note, 48)), showarrow=False,
                                   x=sum(x_domain) / 2, y=sum(y_domain) / 2, xref="paper", yref="paper",
                                   xanchor="center", yanchor="middle")
                fig.update_xaxes(visible=False, row=row, col=col)
                fig.update_yaxes(visible=False, row=row, col=col)
                continue
            fig.add_trace(go.Heatmap(z=values, x=list(range(values.shape[1])), y=list(range(values.shape[0])),
                                     zmin=0, zmax=1, colorscale="Viridis", showscale=row == 1 and col == 1,
                                     colorbar=dict(title=dict(text="linear CKA, kNN overlap", side="right")),
                                     texttemplate="%{z:.2f}", textfont=dict(size=11),
                                     hovertemplate="reference layer %{y}<br>other layer %{x}<br>%{z:.3f}"
                                                   "<extra></extra>"), row=row, col=col)
            for column, best in enumerate(result["closest"]):
                if best >= 0:
                    fig.add_shape(type="rect", x0=column - 0.46, x1=column + 0.46, y0=best - 0.46, y1=best + 0.46,
                                  line=dict(color="crimson", width=3), row=row, col=col)
    title = (f"{html.escape(sentences)}: " if sentences else "") + "outlined, for each layer, the closest reference " \
        "layer by CKA"
    # What the maps' note says goes under the title too: the figure may be read, or downloaded, alone.
    warnings = []
    if results[0].get("cka_note"):
        warnings.append(f"CKA is unreliable with fewer than {RELIABLE_SENTENCES} sentences: it moves a lot with the "
                        "choice of sentences.")
    if any(np.isnan(result["cka"]).any() for result in results):
        warnings.append("A blank cell: every sentence has the same vector at one of its layers (the [CLS] vector at "
                        "layer 0 does), so CKA is undefined.")
    # plotly does not wrap a title: a long note is cut into lines that fit a narrow page
    lines = warnings + [html.escape(line) for note in notes for line in textwrap.wrap(note, NOTE_CHARS)]
    title += "".join(f"<br><span style='font-size:12px'>{line}</span>" for line in lines)
    fig.update_layout(height=800, margin=dict(l=10, r=10, t=80 + 18 * len(lines), b=40),
                      title=dict(text=title, x=0.5, y=0.995, yanchor="top", pad=dict(t=14), font=dict(size=13)))
    return fig

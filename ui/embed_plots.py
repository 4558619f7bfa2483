"""The Embeddings tab's maps, as pure functions of sentences, spaces and their coordinates (no Gradio): one scatter a
model, coloured by label, with short labels beside the points placed so that none covers another."""
from __future__ import annotations

import html
import textwrap

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.compare.embed import Space
from core.compare.sentences import SentenceSet

# 20 colours from plotly's qualitative sets, picked one by one as far (CIELAB) from those already picked as possible,
# among those dark enough to read on white (relative luminance under 0.4): the probe set has 16 topics.
LABEL_PALETTE = (
    "#2E91E5", "#FB0D0D", "#66AA00", "#FE00FA", "#8C564B", "#00A08B", "#1616A7", "#FC0080", "#B68100", "#984EA3",
    "#0D2A63", "#6C7C32", "#ED645A", "#222A2A", "#A5AA99", "#511CFB", "#AB63FA", "#FF7F00", "#620042", "#F781BF",
)
UNLABELLED = "#4c78a8"
TEXT_LABELS_UP_TO = 30  # sentences; more labels than this cover each other
TEXT_LABEL_CHARS = 24


def _title(space: Space) -> str:
    return f"{space.model} · layer {space.layer}/{space.layers} · {space.pooling}"


def _hover(sentence: str, label: str, index: int) -> str:
    wrapped = "<br>".join(html.escape(line) for line in textwrap.wrap(sentence, 70))
    return f"{wrapped}<br><i>#{index}{' · ' + html.escape(label) if label else ''}</i>"


def short_text(sentence: str, chars: int = TEXT_LABEL_CHARS, escaped: bool = True) -> str:
    """The sentence cut at a word to at most `chars` characters, with an ellipsis when cut (inside the first word when
    that alone is longer): a label beside a point. escaped=False for 3D maps, whose labels plotly draws as plain text
    (an entity would show as "&lt;"); 2D labels are read as plotly's HTML subset, so they are escaped."""
    text = " ".join(sentence.split())
    if len(text) > chars:
        cut = textwrap.shorten(text, width=chars, placeholder="…")
        text = cut if cut != "…" else text[:chars - 1] + "…"
    return html.escape(text) if escaped else text


LABEL_POSITIONS = ("top center", "bottom center", "middle right", "middle left")
LABEL_FONT_PX = 10
MAP_PLOT_PX = (1100, 460)  # about the plotting area of the maps, all columns together: (width, height)


def _label_box(x: float, y: float, chars: int, position: str, px: tuple[float, float]) -> tuple:
    """(x0, x1, y0, y1) in data units of a label beside (x, y); px: data units per pixel on (x, y)."""
    width, height, gap = chars * 0.6 * LABEL_FONT_PX * px[0], 1.3 * LABEL_FONT_PX * px[1], 8
    if position == "top center":
        return x - width / 2, x + width / 2, y + gap * px[1], y + gap * px[1] + height
    if position == "bottom center":
        return x - width / 2, x + width / 2, y - gap * px[1] - height, y - gap * px[1]
    if position == "middle right":
        return x + gap * px[0], x + gap * px[0] + width, y - height / 2, y + height / 2
    return x - gap * px[0] - width, x - gap * px[0], y - height / 2, y + height / 2


def label_layout(xy: np.ndarray, texts: list[str], size_px: tuple[float, float]) -> tuple[list[str], list[str]]:
    """Text and position of each point's label so that no two labels cover each other: each label takes the first
    of above, below, right and left that is free; a label with no free place (and a second copy of a point) is left
    out, its sentence still in the hover.

    xy: (n, 2) the map's points; size_px: (width, height) of the map's plotting area in pixels."""
    low, high = xy.min(axis=0), xy.max(axis=0)
    span = np.maximum(high - low, 1e-9) * np.array([1.5, 1.24])  # the axes' range, padded as map_figure pads it
    px = (span[0] / size_px[0], span[1] / size_px[1])
    placed, shown, positions = [], [], []
    seen = set()
    for (x, y), text in zip(xy.tolist(), texts):
        place = None
        if (x, y) not in seen:
            for position in LABEL_POSITIONS:
                box = _label_box(x, y, len(html.unescape(text)), position, px)
                if not any(box[0] < b[1] and b[0] < box[1] and box[2] < b[3] and b[2] < box[3] for b in placed):
                    place = position
                    placed.append(box)
                    break
        seen.add((x, y))
        shown.append(text if place else "")
        positions.append(place or "top center")
    return shown, positions


def label_colours(labels: tuple[str, ...]) -> dict[str, str]:
    """A colour for each distinct label in order of first appearance; the palette repeats past its 20 colours."""
    return {label: LABEL_PALETTE[i % len(LABEL_PALETTE)] for i, label in enumerate(dict.fromkeys(labels))}


def component_titles(method: str, dims: int) -> list[str]:
    """The axis titles of a map: "PCA component 1", "PCA component 2" in 2D; "component 1" to "component 3" in 3D,
    where a longer title runs out of its cube's corner (the figure's title names the method)."""
    return [f"{method.upper() + ' ' if dims == 2 else ''}component {i}" for i in range(1, dims + 1)]


def map_figure(sentences: SentenceSet, spaces: list[Space], coords: list[np.ndarray], method: str,
               highlight: int | None = None, neighbours: list[list[int]] | None = None) -> go.Figure:
    """One scatter a model, coloured by label, hover showing the sentence; a highlighted sentence and its neighbours.

    coords: one (n, 2) or (n, 3) array a space. Sets of at most TEXT_LABELS_UP_TO sentences show each sentence's
    start beside its point.
    """
    dims = coords[0].shape[1]
    specs = [[{"type": "scene" if dims == 3 else "xy"} for _ in spaces]]
    fig = make_subplots(rows=1, cols=len(spaces), specs=specs, horizontal_spacing=0.03,
                        subplot_titles=[_title(s) for s in spaces])
    labelled = any(sentences.labels)
    labels = [(label or "(no label)") if labelled else "sentences" for label in sentences.labels]
    colours = label_colours(tuple(labels))
    hover = [_hover(s, sentences.labels[i], i) for i, s in enumerate(sentences.sentences)]
    with_text = len(sentences) <= TEXT_LABELS_UP_TO
    texts = [short_text(s, escaped=dims == 2) for s in sentences.sentences] if with_text else None
    flat = go.Scattergl if len(sentences) > 2000 else go.Scatter  # WebGL keeps thousands of points responsive
    kind, marker_size = (go.Scatter3d, 3 if not with_text else 5) if dims == 3 else (flat, 6 if not with_text else 9)

    def points(xy: np.ndarray, index: list[int], **style) -> dict:
        axes = dict(x=xy[index, 0], y=xy[index, 1])
        if dims == 3:
            axes["z"] = xy[index, 2]
        return dict(axes, hovertext=[hover[i] for i in index], hoverinfo="text", **style)

    for col, xy in enumerate(coords, start=1):
        if with_text and dims == 2:
            size = (MAP_PLOT_PX[0] / len(spaces), MAP_PLOT_PX[1])
            shown, places = label_layout(xy, texts, size)
        elif with_text:  # 3D turns: only copies of one point lose their label
            shown = [t if i == min(j for j in range(len(xy)) if np.array_equal(xy[j], xy[i])) else ""
                     for i, t in enumerate(texts)]
            places = ["top center"] * len(texts)
        for group, colour in colours.items():
            index = [i for i, label in enumerate(labels) if label == group]
            style = dict(marker=dict(size=marker_size, color=colour if labelled else UNLABELLED, opacity=0.8))
            if with_text:
                style.update(mode="markers+text", text=[shown[i] for i in index],
                             textposition=[places[i] for i in index], textfont=dict(size=LABEL_FONT_PX, color="#333"))
            else:
                style.update(mode="markers")
            fig.add_trace(kind(name=group, legendgroup=group, showlegend=col == 1, **points(xy, index, **style)),
                          row=1, col=col)
        if with_text and dims == 2:  # room around the points for their labels, which would be cut at the axes
            low, high = xy.min(axis=0), xy.max(axis=0)
            pad = np.maximum(high - low, 1e-6) * np.array([0.25, 0.12])
            fig.update_xaxes(range=[low[0] - pad[0], high[0] + pad[0]], row=1, col=col)
            fig.update_yaxes(range=[low[1] - pad[1], high[1] + pad[1]], row=1, col=col)
        if highlight is not None:
            near = neighbours[col - 1] if neighbours else []
            fig.add_trace(kind(mode="markers", name="neighbours", legendgroup="neighbours", showlegend=col == 1,
                               **points(xy, near, marker=dict(size=marker_size + 8, color="rgba(0,0,0,0)",
                                                              line=dict(color="black", width=2)))), row=1, col=col)
            fig.add_trace(kind(mode="markers+text", name="chosen", legendgroup="chosen", showlegend=col == 1,
                               text=[f"#{highlight}"], textposition="bottom center",
                               **points(xy, [highlight], marker=dict(size=marker_size + 10, color="crimson",
                                                                     symbol="diamond",
                                                                     line=dict(color="black", width=1)))),
                          row=1, col=col)
    # The numbers on a map's axes mean nothing on their own (the later maps are turned); the titles say which
    # component each axis is.
    axis = dict(showticklabels=False, zeroline=False)
    names = component_titles(method, dims)
    title = f"{method.upper()} {dims}D of {len(sentences)} sentences ({sentences.source})"
    if dims == 3:
        # A cube seen from further than plotly's default and a little to its left, so no corner leaves the subplot
        # and the third axis's title, drawn left of the cube, stays inside it.
        fig.update_scenes(**{f"{a}axis": dict(axis, title=dict(text=name, font=dict(size=11)))
                             for a, name in zip("xyz", names)},
                          aspectmode="cube", camera=dict(eye=dict(x=2.1, y=2.1, z=1.35),
                                                         center=dict(x=0.08, y=-0.08, z=0)))
        fig.update_layout(height=660, margin=dict(l=10, r=10, t=60, b=40))
    else:
        fig.update_xaxes(**axis, title=dict(text=names[0], standoff=4, font=dict(size=12)))
        fig.update_yaxes(**axis, title=dict(text=names[1], standoff=4, font=dict(size=12)))
        fig.update_layout(height=560, margin=dict(l=30, r=10, t=60, b=30))
    fig.update_layout(legend=dict(orientation="h", y=-0.04, yanchor="top", itemsizing="constant"),
                      hoverlabel=dict(align="left"),
                      title=dict(text=title, x=0.5, font=dict(size=14)))
    return fig

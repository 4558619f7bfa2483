"""The Embeddings tab: the same sentences in two or three models' embedding spaces side by side, and how alike."""
from __future__ import annotations

import html
import math
import textwrap
import time

import gradio as gr
import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.compare import embed
from core.compare.sentences import (
    FILE_TYPES,
    MAX_SENTENCE_CHARS,
    MAX_SENTENCES,
    SentenceSet,
    probe_set,
    read_sentence_file,
    typed_set,
)
from core.compare.similarity import KNN_K
from ui.context import AppContext, user_errors

SOURCES = ["Probe set", "Upload a file", "Typed sentences"]
LABEL_PALETTE = qualitative.Alphabet + qualitative.Dark24
UNLABELLED = "#4c78a8"
DEFAULT_NEIGHBOURS = 5

INTRO = f"""Embed the same sentences with two or three models (teacher, students, a run's student) and look at the
spaces side by side. Each model tokenises with its own tokenizer, so students with their own vocabulary and width
compare too.

- **Sentence vector**: the mean of a layer's token vectors over the sentence's tokens (padding left out), or the
  `[CLS]` vector. Layer 0 is the embedding layer, -1 the last; sentences keep their first {embed.MAX_TOKENS} tokens.
- **Maps**: PCA or UMAP (cosine, 15 neighbours, fixed seed). The second and third maps are turned (rotated or
  mirrored) to match the first as well as they can: no distance within a map changes.
- **How alike**: linear CKA (1 = the same geometry up to rotation and scale) and the mean share of each sentence's
  {KNN_K} nearest neighbours (cosine) that two spaces agree on. **Layer similarity** shows both for every pair of
  layers: which student layer is closest to which teacher layer.
- Uploads: a UTF-8 `.txt` (one sentence a line) or `.csv` (a `sentence` or `text` column, optional `label` or
  `topic`), at most {MAX_SENTENCES} sentences of at most {MAX_SENTENCE_CHARS} characters.
"""


# ---------------------------------------------------------------------------------------------------------------------
# Inputs


def sentence_set(source: str, upload: str | None, typed: str | None) -> SentenceSet:
    if source == "Upload a file":
        if not upload:
            raise ValueError("Upload a .txt or .csv file of sentences first.")
        return read_sentence_file(upload)
    if source == "Typed sentences":
        return typed_set(typed or "")
    return probe_set()


def _layer(value) -> int | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return int(value)


def _chosen(names: list[str | None], layers: list) -> list[tuple[str, int | None]]:
    chosen = [(n.strip(), _layer(layer)) for n, layer in zip(names, layers) if n and n.strip()]
    if len(chosen) < 2:
        raise ValueError("Choose at least two models to compare.")
    return chosen


def _spaces(ctx: AppContext, sentences: SentenceSet, chosen, pooling: str, progress) -> list[embed.Space]:
    spaces = []
    for i, (name, layer) in enumerate(chosen):
        loaded = ctx.load(name, progress=progress)
        step = lambda done, desc, i=i: progress((i + done) / len(chosen), desc=desc)  # noqa: E731
        spaces.append(embed.embed_space(loaded, sentences, layer, pooling.lower(), progress=step))
    return spaces


def sentence_index(sentences: SentenceSet, choice) -> int:
    """The sentence a user picked: '12. text' from the list, a number, or the sentence itself."""
    text = str(choice if choice is not None else "").strip()
    if not text:
        raise ValueError("Choose a sentence from the list (draw the maps first), or type its number.")
    head = text.split(".", 1)[0]
    if head.isdigit() and (text == head or text[len(head):].startswith(". ")):
        index = int(head)
        if not 0 <= index < len(sentences):
            raise ValueError(f"There is no sentence {index}; the set has sentences 0 to {len(sentences) - 1}.")
        return index
    if text in sentences.sentences:
        return sentences.sentences.index(text)
    raise ValueError("That sentence is not in the current set; pick one from the list.")


def sentence_choices(sentences: SentenceSet) -> list[str]:
    return [f"{i}. {s}" for i, s in enumerate(sentences.sentences)]


# ---------------------------------------------------------------------------------------------------------------------
# Figures and tables


def _title(space: embed.Space) -> str:
    return f"{space.model} · layer {space.layer}/{space.layers} · {space.pooling}"


def _hover(sentence: str, label: str, index: int) -> str:
    wrapped = "<br>".join(html.escape(line) for line in textwrap.wrap(sentence, 70))
    return f"{wrapped}<br><i>#{index}{' · ' + html.escape(label) if label else ''}</i>"


def map_figure(sentences: SentenceSet, spaces: list[embed.Space], coords: list[np.ndarray],
               method: str, highlight: int | None = None, neighbours: list[list[int]] | None = None) -> go.Figure:
    """One scatter a model, coloured by label, hover showing the sentence; a highlighted sentence and its neighbours."""
    dims = coords[0].shape[1]
    specs = [[{"type": "scene" if dims == 3 else "xy"} for _ in spaces]]
    fig = make_subplots(rows=1, cols=len(spaces), specs=specs, horizontal_spacing=0.03,
                        subplot_titles=[_title(s) for s in spaces])
    labelled = any(sentences.labels)
    labels = [(label or "(no label)") if labelled else "sentences" for label in sentences.labels]
    groups = list(dict.fromkeys(labels))
    hover = [_hover(s, sentences.labels[i], i) for i, s in enumerate(sentences.sentences)]
    flat = go.Scattergl if len(sentences) > 2000 else go.Scatter  # WebGL keeps thousands of points responsive
    kind, marker_size = (go.Scatter3d, 3) if dims == 3 else (flat, 6)

    def points(xy: np.ndarray, index, **style) -> dict:
        axes = dict(x=xy[index, 0], y=xy[index, 1])
        if dims == 3:
            axes["z"] = xy[index, 2]
        return dict(axes, hovertext=[hover[i] for i in index], hoverinfo="text", **style)

    for col, xy in enumerate(coords, start=1):
        for g, group in enumerate(groups):
            index = [i for i, label in enumerate(labels) if label == group]
            colour = LABEL_PALETTE[g % len(LABEL_PALETTE)] if labelled else UNLABELLED
            fig.add_trace(kind(mode="markers", name=group, legendgroup=group, showlegend=col == 1,
                               **points(xy, index, marker=dict(size=marker_size, color=colour, opacity=0.75))),
                          row=1, col=col)
        if highlight is not None:
            near = neighbours[col - 1] if neighbours else []
            fig.add_trace(kind(mode="markers", name="neighbours", legendgroup="neighbours", showlegend=col == 1,
                               **points(xy, near, marker=dict(size=marker_size + 8, color="rgba(0,0,0,0)",
                                                              line=dict(color="black", width=2)))), row=1, col=col)
            fig.add_trace(kind(mode="markers+text", name="chosen", legendgroup="chosen", showlegend=col == 1,
                               text=[f"#{highlight}"], textposition="top center",
                               **points(xy, [highlight], marker=dict(size=marker_size + 10, color="crimson",
                                                                     symbol="diamond"))), row=1, col=col)
    axis = dict(showticklabels=False, title=None, zeroline=False)
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
    if dims == 3:
        fig.update_scenes(xaxis=axis, yaxis=axis, zaxis=axis)
    fig.update_layout(height=560, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.05),
                      title=dict(text=f"{method.upper()} {dims}D of {len(sentences)} sentences ({sentences.source})",
                                 x=0.5, font=dict(size=14)), hoverlabel=dict(align="left"))
    return fig


def _number(value: float) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.3f}"


def scores_table(spaces: list[embed.Space]) -> pd.DataFrame:
    """CKA and kNN overlap for every pair of the chosen spaces."""
    rows = []
    for a in range(len(spaces)):
        for b in range(a + 1, len(spaces)):
            scores = embed.compare(spaces[a], spaces[b])
            rows.append({"space A": f"{a + 1}. {spaces[a].model} (L{spaces[a].layer})",
                         "space B": f"{b + 1}. {spaces[b].model} (L{spaces[b].layer})",
                         "linear CKA": _number(scores["cka"]),
                         f"kNN overlap@{scores['k']}": _number(scores["knn_overlap"])})
    return pd.DataFrame(rows)


def neighbours_table(sentences: SentenceSet, spaces: list[embed.Space], found: list[list[tuple[int, float]]],
                     ) -> pd.DataFrame:
    shared = set.intersection(*[{i for i, _ in f} for f in found])
    table = {"rank": list(range(1, len(found[0]) + 1))}
    for s, (space, near) in enumerate(zip(spaces, found), start=1):
        table[f"{s}. {space.model} (L{space.layer})"] = [
            f"{'● ' if i in shared else ''}{sentences.sentences[i]} (#{i}, cos {cos:.2f})" for i, cos in near]
    return pd.DataFrame(table)


def layer_figure(spaces_names: list[tuple[str, int]], results: list[dict]) -> go.Figure:
    """Heatmaps: rows CKA and kNN overlap, one column per compared model; the best first-model layer is marked."""
    reference, _ = spaces_names[0]
    others = spaces_names[1:]
    k = results[0]["k"]
    titles = [f"{metric}: {reference} vs {name}" for metric in ("linear CKA", f"kNN overlap@{k}") for name, _ in others]
    fig = make_subplots(rows=2, cols=len(others), subplot_titles=titles, vertical_spacing=0.14, horizontal_spacing=0.08)
    for row, metric in enumerate(("cka", "knn_overlap"), start=1):
        for col, result in enumerate(results, start=1):
            values = result[metric]  # (reference layers + 1, other layers + 1)
            fig.add_trace(go.Heatmap(z=values, x=list(range(values.shape[1])), y=list(range(values.shape[0])),
                                     zmin=0, zmax=1, colorscale="Viridis", showscale=row == 1 and col == 1,
                                     texttemplate="%{z:.2f}", textfont=dict(size=10),
                                     hovertemplate="reference layer %{y}<br>other layer %{x}<br>%{z:.3f}"
                                                   "<extra></extra>"),
                          row=row, col=col)
            filled = np.where(np.isnan(values), -np.inf, values)
            best = filled.argmax(axis=0)  # for each layer of the other model, the closest reference layer
            keep = np.isfinite(filled.max(axis=0))
            fig.add_trace(go.Scatter(x=np.arange(values.shape[1])[keep], y=best[keep], mode="markers",
                                     marker=dict(symbol="circle-open", size=22, color="crimson", line=dict(width=2)),
                                     name="closest reference layer", showlegend=row == 1 and col == 1,
                                     hoverinfo="skip"), row=row, col=col)
            fig.update_xaxes(title_text=f"{others[col - 1][0]} layer", dtick=1, row=row, col=col)
            fig.update_yaxes(title_text=f"{reference} layer", dtick=1, row=row, col=col)
    fig.update_layout(height=760, margin=dict(l=10, r=10, t=50, b=10), legend=dict(orientation="h", y=-0.06))
    return fig


# ---------------------------------------------------------------------------------------------------------------------
# The tab


def warm_up_in_background() -> None:
    """Compile UMAP's numba code in a daemon thread so the first UMAP map is fast; safe to call more than once."""
    embed.warm_up_umap_in_background()


def build(ctx: AppContext) -> dict:
    choices = ctx.model_choices()
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=2):
            source = gr.Radio(SOURCES, value=SOURCES[0], label="Sentences",
                              info="The topic-labelled probe set, your own file, or lines typed below.")
            upload = gr.File(label="Sentences file (.txt, .csv): one sentence a line, or a 'sentence' column and an "
                                   "optional 'label' column", file_types=list(FILE_TYPES), type="filepath",
                             visible=False)
            typed = gr.Textbox(label="Sentences, one a line", lines=6, visible=False, info="Up to 5,000 sentences.",
                               placeholder="Мы ходили в кино.\nКошка спит на диване.\nЗавтра обещают дождь.\n...")
        with gr.Column(scale=3):
            with gr.Row():
                first = gr.Dropdown(choices, value=ctx.default_teacher, label="Model 1 (reference)",
                                    allow_custom_value=True, scale=3)
                layer1 = gr.Number(-1, precision=0, label="layer", scale=1, min_width=80, info="0 embeddings, -1 last")
            with gr.Row():
                second = gr.Dropdown(choices, value=ctx.default_student, label="Model 2", allow_custom_value=True,
                                     scale=3)
                layer2 = gr.Number(-1, precision=0, label="layer", scale=1, min_width=80, info="0 embeddings, -1 last")
            with gr.Row():
                third = gr.Dropdown([""] + choices, value="", label="Model 3 (optional)", allow_custom_value=True,
                                    scale=3)
                layer3 = gr.Number(-1, precision=0, label="layer", scale=1, min_width=80, info="0 embeddings, -1 last")
    with gr.Row():
        pooling = gr.Radio(["mean", "CLS"], value="mean", label="Sentence vector",
                           info="Mean of the token vectors, or the [CLS] token's vector.")
        method = gr.Radio(["PCA", "UMAP"], value="PCA", label="Map",
                          info="PCA keeps global distances; UMAP keeps neighbourhoods.")
        dims = gr.Radio(["2D", "3D"], value="2D", label="Dimensions", info="3D maps can be turned with the mouse.")
        draw_button = gr.Button("Draw", variant="primary", elem_id="embed-draw")
    map_plot = gr.Plot(label="Maps", elem_id="embed-map")
    with gr.Row():
        scores = gr.Dataframe(headers=["space A", "space B", "linear CKA", f"kNN overlap@{KNN_K}"], label="How alike",
                              interactive=False, wrap=True, scale=3)
        status = gr.Markdown(scale=2)
    with gr.Row():
        chosen = gr.Dropdown([], value=None, label="Highlight a sentence (its number or text)", allow_custom_value=True,
                             scale=4, info="Marks it in every map and lists its nearest neighbours.")
        k = gr.Slider(1, 20, value=DEFAULT_NEIGHBOURS, step=1, label="neighbours", scale=1, info="How many to list.")
        neighbours_button = gr.Button("Neighbours", scale=1)
    neighbour_rows = gr.Dataframe(headers=["rank", "model 1", "model 2"], interactive=False, wrap=True,
                                  label="Nearest neighbours by cosine (● = in every model's list)")
    layers_button = gr.Button("Layer similarity")
    layer_plot = gr.Plot(label="Layer similarity")

    def draw_maps(spaces, sentences, method_name, dims_name, progress, highlight=None, near=None):
        progress(1.0, desc=f"{method_name} map ...")
        coords = [embed.project(s, method_name.lower(), int(dims_name[0])) for s in spaces]
        aligned = [coords[0]] + [embed.align(coords[0], c) for c in coords[1:]]
        return map_figure(sentences, spaces, aligned, method_name, highlight, near)

    @user_errors
    def run_draw(source=None, file=None, sentences=None, model_1=None, model_2=None, model_3=None, layer_1=None,
                 layer_2=None, layer_3=None, pooling=None, method=None, dims=None, progress=gr.Progress()):
        sentences = sentence_set(source, file, sentences)
        started = time.perf_counter()
        spaces = _spaces(ctx, sentences, _chosen([model_1, model_2, model_3], [layer_1, layer_2, layer_3]), pooling,
                         progress)
        embedded = time.perf_counter()
        figure = draw_maps(spaces, sentences, method, dims, progress)
        table = scores_table(spaces)
        flat = [s.model for s in spaces if not embed.varies(s.vectors)]
        note = (f"{len(sentences)} sentences: embedded in {embedded - started:.1f} s, mapped and compared in "
                f"{time.perf_counter() - embedded:.1f} s (cached results are instant).")
        if flat:
            note += f" Every sentence has the same vector in {', '.join(flat)} at this layer: nothing to map."
        return figure, table, note, gr.Dropdown(choices=sentence_choices(sentences), value=None)

    @user_errors
    def run_neighbours(source=None, file=None, sentences=None, model_1=None, model_2=None, model_3=None, layer_1=None,
                       layer_2=None, layer_3=None, pooling=None, method=None, dims=None, highlight=None,
                       neighbours=None, progress=gr.Progress()):
        sentences = sentence_set(source, file, sentences)
        index = sentence_index(sentences, highlight)
        spaces = _spaces(ctx, sentences, _chosen([model_1, model_2, model_3], [layer_1, layer_2, layer_3]), pooling,
                         progress)
        found = [embed.nearest(s, index, int(neighbours)) for s in spaces]
        near = [[i for i, _ in f] for f in found]
        figure = draw_maps(spaces, sentences, method, dims, progress, index, near)
        return figure, neighbours_table(sentences, spaces, found)

    @user_errors
    def run_layers(source=None, file=None, sentences=None, model_1=None, model_2=None, model_3=None, pooling=None,
                   progress=gr.Progress()):
        sentences = sentence_set(source, file, sentences)
        names = [n for n, _ in _chosen([model_1, model_2, model_3], [None] * 3)]
        models = [ctx.load(n, progress=progress) for n in names]
        results = []
        for i, other in enumerate(models[1:]):
            step = lambda done, desc, i=i: progress((i + done) / (len(models) - 1), desc=desc)  # noqa: E731
            results.append(embed.layer_similarity(models[0], other, sentences, pooling.lower(), progress=step))
        return layer_figure([(m.name, embed.layer_count(m)) for m in models], results)

    def show_source(source_name):
        return gr.File(visible=source_name == SOURCES[1]), gr.Textbox(visible=source_name == SOURCES[2])

    def refresh_models():
        return gr.Dropdown(choices=ctx.model_choices())  # a run that finished since the page opened

    source.change(show_source, source, [upload, typed], api_visibility="private")
    for dropdown in (first, second):
        dropdown.focus(refresh_models, None, dropdown, api_visibility="private")
    third.focus(lambda: gr.Dropdown(choices=[""] + ctx.model_choices()), None, third, api_visibility="private")
    inputs = [source, upload, typed, first, second, third, layer1, layer2, layer3, pooling, method, dims]
    draw_button.click(run_draw, inputs, [map_plot, scores, status, chosen], api_name="embedding_map")
    neighbours_button.click(run_neighbours, inputs + [chosen, k], [map_plot, neighbour_rows], api_name="neighbours")
    chosen.select(run_neighbours, inputs + [chosen, k], [map_plot, neighbour_rows], api_visibility="private")
    layers_button.click(run_layers, [source, upload, typed, first, second, third, pooling], layer_plot,
                        api_name="layer_similarity")
    return dict(source=source, upload=upload, typed=typed, first=first, second=second, third=third, map_plot=map_plot,
                scores=scores, chosen=chosen, neighbour_rows=neighbour_rows, layer_plot=layer_plot)

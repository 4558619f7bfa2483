"""Draw: the chosen models' maps side by side, with the how-alike table and the note beside them."""
from __future__ import annotations

import time
from dataclasses import dataclass

import gradio as gr
import plotly.graph_objects as go

from core.compare import embed
from core.compare.sentences import SentenceSet
from core.formatting import count
from ui import embed_plots, embed_tables
from ui.context import AppContext
from ui.embed_downloads import map_downloads
from ui.embed_inputs import (
    DEFAULT_ESTIMATOR,
    MapSettings,
    ModelChoice,
    chosen_models,
    map_settings,
    sentence_choices,
    sentence_set,
)
from ui.embed_notes import copies_note, layers_used_note, purity_note, same_tokens_note
from ui.embed_spaces import MAPS_NEED, chosen_spaces
from ui.errors import user_errors
from ui.page_text import markdown_text


def _maps(spaces: list[embed.Space], sentences: SentenceSet, method: str, dims: int, progress,
          highlight: int | None = None, near: list[list[int]] | None = None):
    """Every space projected, the later maps turned onto the first, drawn side by side: (figure, the points as
    drawn, one (n, 2) or (n, 3) array a space)."""
    progress(1.0, desc=f"{method} map ...")
    coords = [embed.project(s, method.lower(), dims) for s in spaces]
    aligned = [coords[0]] + [embed.align(coords[0], c) for c in coords[1:]]
    return embed_plots.map_figure(sentences, spaces, aligned, method, highlight, near), aligned


@dataclass
class Drawn:
    """One drawing of the maps: the spaces, the figure and its points, and what the note says of them besides the
    how-alike scores (which depend on the CKA estimator too)."""
    sentences: SentenceSet
    spaces: list[embed.Space]
    figure: go.Figure
    coords: list  # one (n, 2) or (n, 3) array a space, as drawn
    timing: str  # "8 sentences: embedded in 0.4 s, mapped in 0.1 s (...)."
    remarks: str  # same-label neighbours, spaces that do not vary, sentences that share a point, model notices

    def note(self, pairs: list) -> str:
        """The note beside the how-alike table of `pairs` (embed.compare_pairs of these spaces)."""
        return f"{self.timing} {embed_tables.scores_note(pairs)}{self.remarks}"


def draw(ctx: AppContext, sentences: SentenceSet, chosen: list[ModelChoice], settings: MapSettings, progress,
          index: int | None = None, k: int = 0) -> tuple[Drawn, list]:
    """The maps of every chosen model: (the drawing, each space's k nearest neighbours of sentence `index`, marked
    on the maps; [] without an index)."""
    started = time.perf_counter()
    spaces = chosen_spaces(ctx, sentences, chosen, settings.pooling, progress)
    embedded = time.perf_counter()
    found = [embed.nearest(s, index, k, sentences.sentences) for s in spaces] if index is not None else []
    near = [[i for i, _ in f] for f in found] if found else None
    figure, coords = _maps(spaces, sentences, settings.method, settings.dims, progress, index, near)
    timing = (f"{len(sentences)} sentences: embedded in {embedded - started:.1f} s, mapped in "
              f"{time.perf_counter() - embedded:.1f} s (cached results are instant).")
    remarks = copies_note(sentences) + purity_note(sentences, spaces)
    others = len(set(sentences.sentences)) - 1  # a list names each text once, never the chosen one's copies
    if index is not None and k > others:
        once = " (copies counted once)" if others < len(sentences) - 1 else ""
        remarks += (f" The set has {count(others, 'other sentence')}{once}, so each list of neighbours has "
                    f"{others}, not the {k} asked for.")
    remarks += layers_used_note(chosen, spaces)
    flat = [s.model for s in spaces if not embed.varies(s.vectors)]
    if flat:
        names = markdown_text(", ".join(flat))  # as typed
        remarks += f" Every sentence has the same vector in {names} at this layer: nothing to map."
    models = [ctx.load(choice.name) for choice in chosen]  # loaded already: read from the cache
    remarks += same_tokens_note(models, sentences)
    # once a model, though it be in two boxes; they name the models as typed
    remarks += "".join(f" {markdown_text(m.notice)}" for m in {m.name: m for m in models}.values() if m.notice)
    return Drawn(sentences, spaces, figure, coords, timing, remarks), found


@user_errors
def draw_maps(ctx: AppContext, source=None, file=None, sentences=None, model_1=None, model_2=None, model_3=None,
              layer_1=None, layer_2=None, layer_3=None, pooling=None, method=None, dims=None,
              cka_estimator=DEFAULT_ESTIMATOR, progress=gr.Progress()):
    """Maps, the how-alike table, the note beside it, the sentence list for highlighting, and the downloads (kept in a
    gr.State, which API clients do not receive)."""
    chosen = chosen_models([model_1, model_2, model_3], [layer_1, layer_2, layer_3], ctx.pair)
    settings = map_settings(pooling, method, dims, cka_estimator)
    sentences = sentence_set(source, file, sentences)
    embed.check_map_sentences(sentences, MAPS_NEED)  # before any model loads: it may be a download
    drawn, _ = draw(ctx, sentences, chosen, settings, progress)
    pairs = embed.compare_pairs(drawn.spaces, estimator=settings.estimator)
    return (drawn.figure, embed_tables.scores_table(drawn.spaces, pairs), drawn.note(pairs),
            gr.Dropdown(choices=sentence_choices(sentences), value=None),
            map_downloads(sentences, drawn.spaces, drawn.coords, pairs, drawn.figure))

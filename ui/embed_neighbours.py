"""Neighbours: a sentence's nearest neighbours in each space, marked on maps drawn again, and the table beside them."""
from __future__ import annotations

from dataclasses import dataclass

import gradio as gr
import pandas as pd

from core.compare import embed
from core.compare.similarity import ESTIMATORS
from ui import embed_tables
from ui.context import AppContext
from ui.downloads import Downloads, file_boxes
from ui.embed_downloads import neighbour_downloads, score_table
from ui.embed_inputs import (
    DEFAULT_ESTIMATOR,
    chosen_models,
    map_settings,
    sentence_choices,
    sentence_index,
    sentence_set,
)
from ui.embed_maps import Drawn, draw
from ui.embed_spaces import MAPS_NEED
from ui.errors import user_errors
from ui.input_checks import one_of, whole_number

MAX_NEIGHBOURS = 20  # the most neighbours a list shows


def chosen_sentence_check(source=None, file=None, sentences=None, model_1=None, model_2=None, model_3=None,
                          layer_1=None, layer_2=None, layer_3=None, pooling=None, method=None, dims=None,
                          highlight=None, *rest) -> None:
    """Before a Neighbours request is queued: ValueError (see sentence_index) when no sentence is chosen, when the set
    has too few different sentences for a map (core.compare.embed.check_map_sentences), or when the one chosen is not
    in the set. Sentences that cannot be read pass here; the request itself says what is wrong."""
    if highlight is None or not str(highlight).strip():
        raise ValueError("Choose a sentence from the list (draw the maps first), or type its number.")
    try:
        chosen_set = sentence_set(source, file, sentences)
    except (ValueError, TypeError, OSError):
        return
    embed.check_map_sentences(chosen_set, MAPS_NEED)
    sentence_index(chosen_set, highlight)


def page_neighbours_check(source=None, file=None, sentences=None, model_1=None, model_2=None, model_3=None,
                          layer_1=None, layer_2=None, layer_3=None, pooling=None, method=None, dims=None,
                          highlight=None, neighbours=None) -> None:
    """The page's check before it asks for neighbours: chosen_sentence_check, then ValueError when the neighbours
    count is not a whole number from 1 to MAX_NEIGHBOURS. Refused here, the maps already drawn stay on the page,
    where a failed request marks them "Error"; an API caller's request answers such a count itself."""
    chosen_sentence_check(source, file, sentences, model_1, model_2, model_3, layer_1, layer_2, layer_3, pooling,
                          method, dims, highlight)
    whole_number(neighbours, "Neighbours", 1, MAX_NEIGHBOURS)


@dataclass
class NeighboursShown(Downloads):
    """Neighbours' downloads, and the maps it drew with the settings now chosen (sentences, models, layers,
    pooling): the page puts their own how-alike table, note and sentence list beside them, since Draw's would be of
    other settings."""
    drawn: Drawn | None = None


@user_errors
def find_neighbours(ctx: AppContext, source=None, file=None, sentences=None, model_1=None, model_2=None,
                    model_3=None, layer_1=None, layer_2=None, layer_3=None, pooling=None, method=None, dims=None,
                    highlight=None, neighbours=None, progress=gr.Progress()):
    """The maps with one sentence and its neighbours marked, the neighbours of each space side by side, and the
    downloads with the maps drawn (kept in a gr.State, which API clients do not receive; show_beside makes the page's
    table and note of them)."""
    chosen = chosen_models([model_1, model_2, model_3], [layer_1, layer_2, layer_3], ctx.pair)
    settings = map_settings(pooling, method, dims)
    k = whole_number(neighbours, "Neighbours", 1, MAX_NEIGHBOURS)
    sentences = sentence_set(source, file, sentences)
    embed.check_map_sentences(sentences, MAPS_NEED)  # before any model loads: it may be a download
    index = sentence_index(sentences, highlight)
    drawn, found = draw(ctx, sentences, chosen, settings, progress, index, k)
    shown = neighbour_downloads(sentences, drawn.spaces, drawn.coords, drawn.figure, index, found)
    return (drawn.figure, embed_tables.neighbours_table(sentences, drawn.spaces, found),
            NeighboursShown(shown.files, drawn))


@user_errors
def show_beside(shown: NeighboursShown | None, cka_estimator=DEFAULT_ESTIMATOR):
    """Beside the maps Neighbours drew: their how-alike table (with the CKA estimator now chosen), the note, the
    list of their sentences and the how-alike.csv box; all left as they are before Neighbours has drawn any."""
    drawn = getattr(shown, "drawn", None)
    # The page runs this only after Neighbours filled the state, but the queue takes a private event from any
    # caller by its number, with a session whose state is still empty (or was evicted among many sessions).
    if drawn is None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    pairs = embed.compare_pairs(drawn.spaces, estimator=one_of(cka_estimator, "CKA estimator", ESTIMATORS))
    scores = Downloads({"how-alike.csv": score_table(drawn.sentences, drawn.spaces, pairs)})
    return (embed_tables.scores_table(drawn.spaces, pairs), drawn.note(pairs),
            gr.Dropdown(choices=sentence_choices(drawn.sentences)),
            file_boxes(scores, "embed-neighbours-scores", ["how-alike.csv"]))


def fit_neighbour_columns(table):
    """The neighbours table as it now is, its headers (one a model shown) and widths (a narrow rank, the models'
    columns equal) set with it, so a third model's column is named and sized."""
    return gr.Dataframe(value=table, headers=list(table.columns),
                        column_widths=embed_tables.neighbour_column_widths(max(1, len(table.columns) - 1)))


def neighbours_for_maps(scores) -> gr.Dataframe:
    """The empty neighbours table after drawing: one column a map just drawn (named as in the scores table), so no
    header of an earlier drawing stays."""
    frame = scores if isinstance(scores, pd.DataFrame) else pd.DataFrame(scores)
    names = list(dict.fromkeys([*frame.get("space A", []), *frame.get("space B", [])]))
    if not names:
        return gr.skip()
    return fit_neighbour_columns(pd.DataFrame(columns=["rank", *names]))

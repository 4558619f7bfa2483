"""Layer similarity: CKA and kNN overlap between every layer of model 1 and every layer of each other model."""
from __future__ import annotations

import functools

import gradio as gr

from core.compare import embed
from ui import embed_heatmaps
from ui.context import AppContext
from ui.embed_downloads import layer_downloads
from ui.embed_inputs import DEFAULT_ESTIMATOR, POOLING_NAMES, chosen_models, map_settings, sentence_set
from ui.embed_notes import same_tokens_lines
from ui.embed_spaces import LAYERS_NEED, check_models_and_sentences, scaled_progress
from ui.errors import user_errors

MAX_FIGURE_NOTES = 4  # groups of sentences read alike that the layer figure names before it counts the rest


@user_errors
def compare_layers(ctx: AppContext, source=None, file=None, sentences=None, model_1=None, model_2=None, model_3=None,
                   pooling=None, cka_estimator=DEFAULT_ESTIMATOR, progress=gr.Progress()):
    """Heat maps of CKA and kNN overlap between every layer of model 1 and every layer of each other model, and the
    downloads (kept in a gr.State, which API clients do not receive)."""
    names = [c.name for c in chosen_models([model_1, model_2, model_3], [None] * 3, ctx.pair)]
    settings = map_settings(pooling, estimator=cka_estimator)
    sentences = sentence_set(source, file, sentences)
    embed.check_map_sentences(sentences, LAYERS_NEED)  # before any model loads: it may be a download
    models = [ctx.load(n, progress=progress) for n in names]
    check_models_and_sentences(ctx, models, sentences, settings.pooling, LAYERS_NEED)
    results = []
    for i, other in enumerate(models[1:]):
        step = functools.partial(scaled_progress, progress, i, len(models) - 1)
        results.append(embed.layer_similarity(models[0], other, sentences, settings.pooling, progress=step,
                                              estimator=settings.estimator))
    # as the map's title names them, with the sentence vector: a figure left beside newer maps says what it shows
    about = f"{len(sentences)} sentences ({sentences.source}), {POOLING_NAMES[settings.pooling]}"
    shared = same_tokens_lines(models, sentences, on_maps=False)
    if len(shared) > MAX_FIGURE_NOTES:  # each a line or two above the heat maps, which the rest would squeeze
        rest = len(shared) - MAX_FIGURE_NOTES + 1
        shared = shared[:MAX_FIGURE_NOTES - 1] + [f"{rest} more groups of sentences are read as the same tokens; "
                                                  "Draw's note names them all."]
    figure = embed_heatmaps.layer_figure([m.name for m in models], results, about, notes=shared)
    return figure, layer_downloads([m.name for m in models], results, figure)

"""The Predictions tab's actions: Predict, Mask each word and Probe summary, and the status line after each."""
from __future__ import annotations

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from core.compare import predict
from ui.context import AppContext
from ui.downloads import Downloads
from ui.errors import ErrorLines, failure_line
from ui.predict_downloads import prediction_downloads, summary_downloads, word_downloads
from ui.predict_figures import prediction_figure, summary_figure, word_strip_figure
from ui.predict_inputs import DEFAULT_TOP_K, ModelChoice, checked_request, checked_top_k
from ui.predict_notes import checkpoint_used, language_note, model_notes
from ui.predict_tables import agreement_markdown, probe_table, summary_table, word_strip_markdown

ACTIONS = {"fill_mask": "Predict", "mask_each_word": "Mask each word", "probe_summary": "Probe summary",
           "compare_exported": "Compare with PyTorch"}


def status_line(action: str, message: str) -> str:
    """The visible line after a failed action: what failed and why (the message shown as written, never as HTML)."""
    return failure_line(ACTIONS[action], message)


def _models(ctx: AppContext, choice: ModelChoice, progress) -> list:
    return [ctx.load(name, progress=progress) for name in choice.names(ctx.pair)]


# Each action once with its downloads (what the page and the API run; the State output is not sent to API
# clients), and once as its documented outputs alone


def fill_mask_kept(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None, top_k=None,
                   sentence=None, progress=gr.Progress()) -> tuple[go.Figure, str, Downloads]:
    """Predict: (bars figure, agreement Markdown, downloads) for a sentence with [MASK]."""
    with errors.kept(errors.key("fill_mask", (model_1, model_2, model_3, top_k, sentence))):
        # before loading anything: a typo should not wait for a model
        choice, k, text = checked_request(model_1, model_2, model_3, top_k, sentence, True, ctx.pair)
        models = _models(ctx, choice, progress)
        result = predict.compare(models, text, k)
        figure = prediction_figure(result)
        markdown = agreement_markdown(result, language_note(text)) + model_notes(ctx, models)
        return figure, markdown, prediction_downloads(result, figure)


def fill_mask(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None, top_k=None,
              sentence=None, progress=gr.Progress()) -> tuple[go.Figure, str]:
    """Predict: (bars figure, agreement Markdown) for a sentence with [MASK]."""
    return fill_mask_kept(ctx, errors, model_1, model_2, model_3, top_k, sentence, progress)[:2]


def mask_each_word_kept(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None, top_k=None,
                        sentence=None, progress=gr.Progress()) -> tuple[go.Figure, str, Downloads]:
    """Mask each word: (heat-strip figure, per-word Markdown table, downloads) for a sentence; its [MASK]s, if
    any, filled in first (predict.fill_in: the probe set's expected word, else model 1's best whole word)."""
    with errors.kept(errors.key("mask_each_word", (model_1, model_2, model_3, top_k, sentence))):
        choice, k, text = checked_request(model_1, model_2, model_3, top_k, sentence, None, ctx.pair)
        models = _models(ctx, choice, progress)
        filled = predict.fill_in(models[0], text)
        result = predict.mask_each_word(models, filled.sentence, k)
        names = [m.name for m in models]
        figure = word_strip_figure(result)
        markdown = word_strip_markdown(result, names, filled, language_note(text)) + model_notes(ctx, models)
        return figure, markdown, word_downloads(result, names, figure, filled)


def mask_each_word(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None, top_k=None,
                   sentence=None, progress=gr.Progress()) -> tuple[go.Figure, str]:
    """Mask each word: (heat-strip figure, per-word Markdown table) for a sentence; its [MASK]s filled in first."""
    return mask_each_word_kept(ctx, errors, model_1, model_2, model_3, top_k, sentence, progress)[:2]


def probe_summary_kept(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None,
                       top_k=DEFAULT_TOP_K, progress=gr.Progress()
                       ) -> tuple[pd.DataFrame, go.Figure, pd.DataFrame, Downloads]:
    """Probe summary: (per-model table, figure, every-probe table, downloads) over the bundled probe set; top_k is
    the k of its top-k overlap, as Top-k is the guesses Predict shows (1 to MAX_SHOWN_TOP_K, else ValueError)."""
    with errors.kept(errors.key("probe_summary", (model_1, model_2, model_3, top_k))):
        choice = ModelChoice(model_1, model_2, model_3)
        choice.names(ctx.pair)  # before loading anything: a typo should not wait for a model
        k = checked_top_k(top_k)
        models = _models(ctx, choice, progress)
        progress(0.5, desc="Predicting the probe set ...")
        result = predict.probe_summary(models, top_k=k)
        used = {m.name: checkpoint_used(ctx, m.name) for m in models}
        figure = summary_figure(result)
        return (summary_table(result, used=used), figure, probe_table(result),
                summary_downloads(result, figure, used))


def probe_summary(ctx: AppContext, errors: ErrorLines, model_1=None, model_2=None, model_3=None, top_k=DEFAULT_TOP_K,
                  progress=gr.Progress()) -> tuple[pd.DataFrame, go.Figure, pd.DataFrame]:
    """Probe summary: (per-model table, figure, every-probe table) over the bundled probe set."""
    return probe_summary_kept(ctx, errors, model_1, model_2, model_3, top_k, progress)[:3]


def clear_status() -> str:
    """The status line after an action succeeded: empty."""
    return ""


def failure_status(errors: ErrorLines, action: str, *inputs) -> str:
    """The status line after `action` failed with these inputs."""
    return status_line(action, errors.take(errors.key(action, inputs)))

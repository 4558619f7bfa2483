"""The Predictions tab's inputs: the sentences and models offered, and every input checked before a model loads."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import gradio as gr

from core.compare import predict
from core.compare.probes import fill_mask_probes
from ui import lesson
from ui.context import AppContext, check_two_models
from ui.input_checks import model_name, text_input, whole_number

DEFAULT_TOP_K = 5
MAX_SHOWN_TOP_K = 20  # the most guesses the page shows (core.compare.predict itself takes up to MAX_TOP_K)
FALLBACK_EXAMPLES = [
    "Я сегодня приготовила овощной [MASK] с фрикадельками.",
    "Давай вечером сходим в [MASK], там новый фильм.",
    "Не забудь взять [MASK], на улице дождь.",
    "Мой [MASK] опять разрядился, дай зарядку.",
]


def example_sentences() -> list[str]:
    """The probe sentences, the lesson's example first: the page opens on a sentence the bundled teacher and student
    both get right (the first probe has the small teacher wrong, a poor first screen for a class)."""
    try:
        sentences = [p.sentence for p in fill_mask_probes()] or FALLBACK_EXAMPLES
    except FileNotFoundError:
        return FALLBACK_EXAMPLES
    figures = lesson.read_figures()
    first = figures["lesson_example"]["sentence"] if figures and "lesson_example" in figures else None
    return [first, *(s for s in sentences if s != first)] if first in sentences else sentences


@dataclass(frozen=True)
class ModelChoice:
    """The three model dropdowns: model 1 is the reference, model 3 may be empty."""
    model_1: str | None = None
    model_2: str | None = None
    model_3: str | None = None

    def names(self, suggested: Sequence[str] = ()) -> list[str]:
        """The chosen names, stripped, in box order with empty boxes left out (the first is the reference);
        ValueError when one is not a name (not text, too long) or fewer than two are chosen (ui.context
        .check_two_models, which suggests a model of `suggested`, the app's default pair)."""
        given = (self.model_1, self.model_2, self.model_3)
        chosen = [model_name(v, f"Model {i}") for i, v in enumerate(given, start=1)]
        check_two_models(chosen, suggested)
        return [n for n in chosen if n]


def checked_top_k(value) -> int:
    """Top-k as a whole number from 1 to MAX_SHOWN_TOP_K; ValueError otherwise."""
    return whole_number(value, "Top-k", 1, MAX_SHOWN_TOP_K)


def checked_request(model_1, model_2, model_3, top_k, sentence, with_masks: bool | None,
                    suggested: Sequence[str] = ()) -> tuple[ModelChoice, int, str]:
    """Every input of Predict and Mask each word checked before any model loads: (models, top-k, the text);
    with_masks as core.compare.predict.check_text takes it, `suggested` as ModelChoice.names."""
    choice = ModelChoice(model_1, model_2, model_3)
    choice.names(suggested)
    k = checked_top_k(top_k)
    return choice, k, predict.check_text(text_input(sentence, "The sentence"), with_masks=with_masks)


def model_lists(ctx: AppContext) -> tuple[gr.Dropdown, gr.Dropdown, gr.Dropdown]:
    """Fresh choices for the three model dropdowns (a finished run's student appears), values left as they are."""
    return tuple(gr.Dropdown(choices=choices) for choices in ctx.box_choices())

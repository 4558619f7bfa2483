"""The Embeddings tab's inputs checked: sentences, models and their layers, map settings, the sentence chosen."""
from __future__ import annotations

import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr

from core.compare import embed
from core.compare.sentences import SentenceSet, has_shown_text, probe_set, read_sentence_file, typed_set
from core.compare.similarity import ESTIMATORS
from core.formatting import count
from ui.components import given_name
from ui.context import check_two_models
from ui.errors import error_message
from ui.input_checks import model_name, one_of, text_input, whole_number
from ui.page_text import markdown_text

SOURCES = ["Probe set", "Upload a file", "Typed sentences"]
POOLINGS = ["mean", "CLS"]
POOLING_NAMES = {"mean": "mean of token vectors", "cls": "[CLS] vectors"}  # by core.compare.embed's names
METHODS = ["PCA", "UMAP"]
DIMENSIONS = ["2D", "3D"]
DEFAULT_ESTIMATOR = ESTIMATORS[0]  # debiased


@dataclass(frozen=True)
class ModelChoice:
    """One model the user chose and the layer to embed with."""
    name: str
    layer: int | None  # 0 = embeddings, negative counts from the last (-1 = the last); None = the last
    box: int = 1  # the model box it was chosen in, 1 to 3, as messages name it ("the layer of model 2")


def read_upload(upload) -> SentenceSet:
    """The sentences of an uploaded file (core.compare.sentences.read_sentence_file), every message and the set's
    source naming the file as the person gave it (given_name), not as Gradio stored it. ValueError for a file
    read_sentence_file refuses, or one no longer stored (the app removes uploads after an hour or so)."""
    path, name = Path(upload), given_name(upload)
    try:
        if name == path.name:
            return read_sentence_file(path)
        with tempfile.TemporaryDirectory(prefix="rudistil-upload-") as folder:
            named = Path(folder) / name  # read_sentence_file names a file by its path's name
            shutil.copyfile(path, named)
            return read_sentence_file(named)
    except OSError:
        raise ValueError(f"The uploaded file '{name}' is no longer on the server (uploads are removed after an hour "
                         "or so); upload it again.") from None


def sentence_set(source: str, upload: str | None, typed: str | None) -> SentenceSet:
    """The sentences the source names: an upload (read_upload), the typed lines or the probe set; ValueError with a
    sentence for a source that is not one of SOURCES, a missing upload, or text that is not text."""
    source = one_of(source, "Sentences", SOURCES)
    if source == "Upload a file":
        if not upload:
            raise ValueError("Upload a .txt, .csv or .tsv file of sentences first.")
        if not isinstance(upload, str):
            return read_sentence_file(upload)  # refused in its own sentence
        return read_upload(upload)
    if source == "Typed sentences":
        return typed_set(text_input(typed, "Typed sentences"))
    return probe_set()


def _layer(value, number: int) -> int | None:
    """A layer box: None (or an empty box, NaN) is the last layer, else a whole number; its range is the model's,
    checked once the model is loaded (model_layer)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return whole_number(value, f"The layer of model {number}")


def model_layer(loaded, choice: ModelChoice) -> int:
    """The layer `choice` asks of a loaded model, from 0 (embeddings) to its last (None: the last); negative layers
    count from the last, as Python counts. ValueError naming the model's range, both ways, for one it lacks."""
    return embed.resolve_layer(loaded, choice.layer, f"The layer of model {choice.box}")


def chosen_models(names: list[str | None], layers: list, suggested: tuple[str, ...] = ()) -> list[ModelChoice]:
    """The boxes that hold a name, with their layers and box numbers, in box order (the first is the reference);
    empty boxes are left out. ValueError when fewer than two hold a name (ui.context.check_two_models, which suggests
    a model of `suggested`, the app's default pair), when a name is not text or too long
    (ui.input_checks.model_name), or when a layer is not a whole number."""
    names = [model_name(name, f"Model {number}") for number, name in enumerate(names, start=1)]
    check_two_models(names, suggested)
    return [ModelChoice(name, _layer(layer, number), number)
            for number, (name, layer) in enumerate(zip(names, layers), start=1) if name]


@dataclass(frozen=True)
class MapSettings:
    """How sentences become points: the sentence vector, the map and its dimensions, the CKA estimator."""
    pooling: str  # "mean" or "cls", as core.compare.embed names them
    method: str  # "PCA" or "UMAP"
    dims: int  # 2 or 3
    estimator: str  # "debiased" or "biased"


def map_settings(pooling, method=METHODS[0], dims=DIMENSIONS[0], estimator=None) -> MapSettings:
    """The tab's choices checked (None for the estimator is its default); ValueError naming the one that is not
    among its options."""
    return MapSettings(one_of(pooling, "Sentence vector", POOLINGS).lower(), one_of(method, "Map", METHODS),
                       int(one_of(dims, "Dimensions", DIMENSIONS)[0]),
                       one_of(DEFAULT_ESTIMATOR if estimator is None else estimator, "CKA estimator", ESTIMATORS))


def sentence_index(sentences: SentenceSet, choice) -> int:
    """The sentence a user picked: '12. text' from the list, a number ('12' or '12.'), or the sentence itself.

    A '12. text' from a list made for other sentences is found by its text when the set has it elsewhere; when the
    set's sentence 12 is another text and the set lacks this one, ValueError says so, rather than marking the
    other sentence."""
    if isinstance(choice, float) and choice == int(choice):
        choice = int(choice)
    if choice is not None and not isinstance(choice, (str, int)) or isinstance(choice, bool):
        raise ValueError(f"Choose a sentence by its number or its text, not a {type(choice).__name__}.")
    text = str(choice if choice is not None else "").strip()
    if not text:
        raise ValueError("Choose a sentence from the list (draw the maps first), or type its number.")
    if text in sentences.sentences:  # a sentence of the set that itself begins "12. "
        return sentences.sentences.index(text)
    head, _, listed = text.partition(".")
    listed = listed.strip()
    # ASCII digits only: "²".isdigit() is True, yet int("²") fails, and int("٣") is 3, a number nobody typed here
    if not (head.isascii() and head.isdigit()) or (listed and not text[len(head):].startswith(". ")):
        raise ValueError("That sentence is not in the current set; pick one from the list.")
    index = int(head)
    if listed and not (0 <= index < len(sentences) and sentences.sentences[index] == listed):
        if listed in sentences.sentences:
            return sentences.sentences.index(listed)
        raise ValueError(f"'{short_quote(listed)}' is not among these {len(sentences)} sentences (the list was made "
                         "for other sentences); draw the maps again and pick one from the new list.")
    if not 0 <= index < len(sentences):
        raise ValueError(f"There is no sentence {index}; the set has sentences 0 to {len(sentences) - 1}.")
    return index


def short_quote(text: str, chars: int = 40) -> str:
    """A sentence quoted in a message: cut to `chars` characters with an ellipsis."""
    return text if len(text) <= chars else text[:chars - 1] + "…"


def sentence_choices(sentences: SentenceSet) -> list[str]:
    """The sentence dropdown's choices, one per sentence in order, numbered from 0: "0. Первое предложение."."""
    return [f"{i}. {s}" for i, s in enumerate(sentences.sentences)]


def show_source(source_name: str):
    """The upload box and the line under it for an upload, the text box for typed sentences (nothing for a name that
    is not a source)."""
    if source_name not in SOURCES:
        return gr.skip(), gr.skip(), gr.skip()
    upload = source_name == SOURCES[1]
    return gr.File(visible=upload), gr.Markdown(visible=upload), gr.Textbox(visible=source_name == SOURCES[2])


def show_typed_note(source_name: str):
    """The line under the typed sentences' box, shown with the box (nothing for a name that is not a source)."""
    return gr.Markdown(visible=source_name == SOURCES[2]) if source_name in SOURCES else gr.skip()


def typed_line(typed) -> str:
    """The line under the typed sentences' box: the sentence Draw would refuse the text with (the same check,
    typed_set), so that a paste of too many lines is told at once; empty for a text Draw takes, or an empty box."""
    if not typed:
        return ""
    if isinstance(typed, str) and not has_shown_text(typed):
        return ""  # nothing typed yet: Draw says so, the line need not
    try:
        typed_set(text_input(typed, "Typed sentences"))
    except ValueError as error:
        return markdown_text(error_message(error))
    return ""


def upload_line(upload: str | None) -> str:
    """The line under the upload box once a file is uploaded: the sentence Draw would refuse it with (the same
    check, read_upload), or how many sentences it holds; empty when it is cleared."""
    if not upload:
        return ""
    try:
        uploaded = read_upload(upload) if isinstance(upload, str) else read_sentence_file(upload)
    except ValueError as error:
        return markdown_text(error_message(error))
    labelled = " with labels" if all(uploaded.labels) else ""
    return markdown_text(f"{uploaded.source}: {count(len(uploaded), 'sentence')}{labelled}.")

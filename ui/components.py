"""Gradio components whose value reaches the handler as it was sent (CheckedNumber, CheckedSlider, CheckedRadio,
CheckedCheckboxGroup, CheckedFile), so the handler's own check refuses a wrong value with a sentence naming the input
where Gradio would answer with its generic error; and uploads named as the person gave them (Upload, SentenceFile,
given_name), up to the largest file the app takes (MAX_UPLOAD)."""
from __future__ import annotations

import math
from abc import ABCMeta
from pathlib import Path

import gradio as gr
from gradio.data_classes import ListFiles
from gradio.exceptions import Error as GradioError

MAX_UPLOAD_MB = 20  # the largest file the app takes (app.py launches Gradio with max_file_size=MAX_UPLOAD)
MAX_UPLOAD = f"{MAX_UPLOAD_MB}mb"


def _as_given(preprocess, payload):
    """Gradio's preprocessing of a value, or the value as it came when Gradio cannot read it: the handler's check
    then refuses it with a sentence naming the input, where Gradio would answer with its generic error."""
    try:
        return preprocess(payload)
    except Exception:
        return payload


class _NoStub(type(gr.Number)):
    """Gradio's component metaclass, less its writing of a .pyi stub beside the module that defines a component: the
    Checked components below add no events and no __init__, so nothing else of it is needed."""

    def __new__(mcs, name, bases, attrs):
        return ABCMeta.__new__(mcs, name, bases, attrs)


class CheckedNumber(gr.Number, metaclass=_NoStub):
    """gr.Number whose value reaches the handler even when it is not a number ("x", None, inf), or has a fraction
    where the box asks for a whole number (Gradio would round 2.5 to 2 without a word)."""
    is_template = True  # drawn as a gr.Number

    def preprocess(self, payload):
        if self.precision == 0 and isinstance(payload, float) and math.isfinite(payload) and payload != int(payload):
            return payload
        if isinstance(payload, bool):  # Gradio reads True as 1: the handler refuses it by name instead
            return payload
        return _as_given(super().preprocess, payload)


class CheckedSlider(gr.Slider, metaclass=_NoStub):
    """gr.Slider whose value reaches the handler even when it is not a number or lies outside the slider."""
    is_template = True

    def preprocess(self, payload):
        if isinstance(payload, bool):  # Gradio reads True as 1: the handler refuses it by name instead
            return payload
        return _as_given(super().preprocess, payload)


class CheckedRadio(gr.Radio, metaclass=_NoStub):
    """gr.Radio whose value reaches the handler even when it is not one of the choices."""
    is_template = True

    def preprocess(self, payload):
        return _as_given(super().preprocess, payload)


class CheckedCheckboxGroup(gr.CheckboxGroup, metaclass=_NoStub):
    """gr.CheckboxGroup whose value reaches the handler even when it is not a list of the choices."""
    is_template = True

    def preprocess(self, payload):
        return _as_given(super().preprocess, payload)


class CheckedFile(gr.File, metaclass=_NoStub):
    """gr.File (one file, type "filepath") whose upload reaches the handler whatever its name. `file_types` still
    filters what the page's file picker offers, but a file of another type sent through the API is refused by the
    tab's own check, in the sentence the page writes under the box, where gr.File refuses it with its generic error
    (an HTTP 400 for an event with a validator, and a traceback in the server's log)."""
    is_template = True  # drawn as a gr.File

    def preprocess(self, payload):
        try:
            return super().preprocess(payload)
        except GradioError:  # a name outside file_types; Gradio has already checked the file is an upload of this app
            upload = payload[0] if isinstance(payload, ListFiles) else payload
            return upload.path


class Upload(str):
    """An uploaded file's path on this server, with the name the person gave the file (`given`). Gradio stores an
    upload under a name of its own making: 'nul.txt' as '_nul.txt', characters some file systems refuse dropped."""
    given: str

    def __new__(cls, path: str, given: str = ""):
        upload = super().__new__(cls, path)
        upload.given = given
        return upload


class SentenceFile(CheckedFile):
    """An upload box of sentences (the Embeddings tab's sentences, the Distill tab's corpus): a CheckedFile whose
    value is an Upload, so messages name the file as the person gave it (given_name; the page sends the file's own
    name as the upload's orig_name, gradio_client its safe form)."""

    def get_block_name(self) -> str:  # drawn as a gr.File, as CheckedFile is
        return "file"

    def get_block_class(self) -> str:
        return "file"

    def preprocess(self, payload):
        path = super().preprocess(payload)
        upload = payload[0] if isinstance(payload, ListFiles) else payload
        given = getattr(upload, "orig_name", None)
        return Upload(path, given) if isinstance(path, str) and isinstance(given, str) else path


def given_name(upload) -> str:
    """The name the person gave an upload, when it can name the stored file: one plain file name (no folder, no
    NUL, at most 255 bytes) with the stored file's suffix; else the stored file's own name."""
    path = Path(upload)
    given = getattr(upload, "given", "") or ""
    plain = (given not in ("", ".", "..") and "/" not in given and "\\" not in given and "\0" not in given
             and len(given.encode("utf-8", "surrogateescape")) <= 255)
    return given if plain and Path(given).suffix.lower() == path.suffix.lower() else path.name

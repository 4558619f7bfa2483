"""What every tab shares: the model cache, the default pair, the offline notice and the rules for model names."""
from __future__ import annotations

import html
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from core.models import zoo
from core.models.cache import ModelCache
from core.runs.store import has_model, list_runs, read_status
from train.launcher import RunLauncher


@dataclass
class AppContext:
    default_teacher: str
    default_student: str
    notice: str = ""  # one visible line naming the pair the lab starts with (built by pair_notice)
    on_space: bool = False  # a public Hugging Face Space: no local paths, runs owned by browser sessions
    cache: ModelCache = field(default_factory=ModelCache)
    launcher: RunLauncher | None = None  # created by create(); one per app, shared by every session

    def __post_init__(self):
        if self.launcher is None:
            self.launcher = RunLauncher(shared=self.on_space)

    @classmethod
    def create(cls, teacher: str | None = None, student: str | None = None) -> AppContext:
        (default_teacher, default_student), fallback = zoo.default_pair()
        teacher, student = teacher or default_teacher, student or default_student
        return cls(teacher, student, pair_notice(teacher, student, fallback), on_space=bool(os.environ.get("SPACE_ID")))

    def model_choices(self, include_arch: bool = False) -> list[str]:
        """Known models, then the students of finished or checkpointed runs ("run:<id>", each followed by its untrained
        starting point "run:RUN_ID@init" when the run kept one), then with include_arch the random-weight architectures
        ("arch:NAME").

        Read from the runs folder on every call, never kept: call it each time a list is shown (page load, tab
        opened) and a run that finished a moment ago is in it."""
        names = list(zoo.KNOWN_MODELS)
        for run in list_runs(self.launcher.root):
            if has_model(run) and (run["public"] or not self.on_space):
                names += [f"run:{run['id']}"] + ([f"run:{run['id']}@init"] if run.get("init") else [])
        if include_arch:
            names += [f"arch:{a}" for a in zoo.arch_names()]
        return names

    def check_name(self, name: str) -> str:
        """Refuse what a public app must not load: local paths on a Space, anything that is not a model name."""
        name = (name or "").strip()
        source, location = zoo.resolve(name)  # raises ValueError with a sentence for unknown names
        if source == "local" and self.on_space:
            raise ValueError("Local folders cannot be loaded on a shared Space; choose a listed model or a Hub id.")
        if source == "run" and self.on_space and not read_status(Path(location)).get("public"):
            raise ValueError("This run's owner has not shared it; on a shared Space a run's student is usable by "
                             "everyone only after its owner ticks 'Share'.")
        return name

    def offline_line(self, name: str) -> str:
        """The visible line for a Hub model chosen while the Hub is out of reach (empty when all is well)."""
        known = zoo.KNOWN_MODELS.get(name)
        hub_id = known.hub_id if known else (name if zoo.HUB_ID_PATTERN.match(name or "") and
                                             not Path(name).exists() else None)
        if hub_id and not zoo.is_cached(hub_id) and not zoo.hub_reachable():
            return (f"'{name}' is on the Hugging Face Hub, which this machine cannot reach, and it is not cached: "
                    "choose bundled-teacher / bundled-student, or a run's student.")
        return ""

    def load(self, name: str, attentions: bool = False, progress: gr.Progress | None = None) -> zoo.LoadedModel:
        """Load through the shared cache, with a progress message; user mistakes become gr.Error."""
        try:
            name = self.check_name(name)
            line = self.offline_line(name)
            if line:
                raise ValueError(line)
            if progress is not None and not self.cache.is_loaded(name, attentions):
                progress(0, desc=f"Loading {name} ...")
            return self.cache.get(name, attentions)
        except gr.Error:
            raise
        except ValueError as error:
            raise user_error(str(error)) from None


def pair_notice(teacher: str, student: str, fallback: str = "") -> str:
    """The page's line under the title: which teacher and student the lab starts with, and from where.

    `fallback` is zoo.default_pair()'s line when the DeepPavlov models were out of reach (empty otherwise); the
    notice then also says how to have them on this machine."""
    if (teacher, student) == zoo.DEEPPAVLOV_PAIR:
        cached = all(zoo.is_cached(zoo.KNOWN_MODELS[n].hub_id) for n in zoo.DEEPPAVLOV_PAIR)
        where = "this machine's Hugging Face cache" if cached else "the Hugging Face Hub, downloaded on first use"
        return f"The lab uses DeepPavlov's pair: {teacher} (teacher) and {student} (student), from {where}."
    how = ("To use DeepPavlov's pair without a network, run python -m core.models.hub once while online (or on a "
           "machine with internet, then copy its Hugging Face cache here) and restart the app.")
    if fallback and (teacher, student) == zoo.BUNDLED_PAIR:
        return f"{fallback.rstrip('.')}: {teacher} and {student}. {how}"
    line = f"The lab starts with {teacher} (teacher) and {student} (student)."
    return f"{line} {fallback} {how}" if fallback else line


def page_text(text: str) -> str:
    """Text shown as HTML (a gr.Error's toast, a plotly label), escaped so that '<' and '&' show as typed."""
    return html.escape(str(text), quote=False)


MARKDOWN_SPECIALS = re.compile(r"([\\`*_\[\]|~$])")


def markdown_text(text: str) -> str:
    """Text put into a gr.Markdown (a sentence, a message, a table cell) shown as typed: HTML escaped, Markdown's
    emphasis, code, link, table and LaTeX characters backslashed, line breaks as spaces (a table row is one line)."""
    text = " ".join(str(text).splitlines())
    return MARKDOWN_SPECIALS.sub(r"\\\1", page_text(text))


def user_error(message: str) -> gr.Error:
    """The gr.Error for a sentence meant for a person: the page renders a gr.Error's message as HTML, so it is
    escaped (a name such as '<b>x</b>' shows as typed, not bold)."""
    return gr.Error(page_text(message), print_exception=False)


def error_message(error: Exception) -> str:
    """The sentence of a ValueError or gr.Error as written (str() of a gr.Error is its repr, quotes and all)."""
    return html.unescape(error.message) if isinstance(error, gr.Error) else str(error)


def user_errors(fn):
    """Turn a ValueError raised by core code into a gr.Error the page shows as one sentence; a gr.Error (already a
    sentence for the page, and itself a ValueError) passes unchanged."""
    import functools
    import inspect

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except ValueError as error:
                raise user_error(str(error)) from None
        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except ValueError as error:
            raise user_error(str(error)) from None
    return wrapper


@dataclass
class ErrorLines:
    """The last error of each action, keyed by the action and its inputs, so the page can keep it in view.

    A handler that fails raises gr.Error (the toast, and the message API callers receive); the page then asks for
    the message with the same inputs and shows it in a status line until the next success.
    """
    limit: int = 64
    _lines: OrderedDict = field(default_factory=OrderedDict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def kept(self, key: tuple) -> Iterator[None]:
        """Run a handler's body; a ValueError or gr.Error is recorded under `key` and raised as gr.Error."""
        try:
            yield
        except ValueError as error:  # gr.Error is a ValueError too
            message = error_message(error)
            with self._lock:
                self._lines[key] = message
                while len(self._lines) > self.limit:
                    self._lines.popitem(last=False)
            raise user_error(message) from None

    def take(self, key: tuple) -> str:
        with self._lock:
            return self._lines.pop(key, "")

    def wrap(self, action: str, fn, inputs: int):
        """fn (a handler bound to its context) with its errors kept under (action, its first `inputs` arguments):
        the event's inputs, without the gr.Progress Gradio passes after them. The signature stays fn's, so the API
        keeps its parameter names."""
        import functools

        @functools.wraps(fn)
        def kept_fn(*args, **kwargs):
            with self.kept(self.key(action, args[:inputs])):
                return fn(*args, **kwargs)
        return kept_fn

    @staticmethod
    def key(action: str, inputs) -> tuple:
        """The key of an action's inputs, as text: a NaN layer or an unhashable value still finds its line."""
        return (action, *map(repr, inputs))

    def failure(self, what: str, action: str):
        """The listener for an action's .failure(): given the same inputs, the status line of its error."""
        def line(*inputs) -> str:
            return failure_line(what, self.take(self.key(action, inputs)))
        return line


def failure_line(what: str, message: str) -> str:
    """The visible status line after a failed action: what failed and why (the message shown as written, never as
    HTML or Markdown); empty when there is no message."""
    return f"**{what} failed:** {markdown_text(message)}" if message else ""

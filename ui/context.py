"""What every tab shares: the model cache, the default pair, the offline notice, the rules for model names, the
checks every handler makes of its inputs, uploads named as the person gave them, the limits a shared app keeps, and
the lines and notices that say why an action was refused (one notice of a sentence at a time)."""
from __future__ import annotations

import html
import math
import numbers
import os
import re
import tempfile
import threading
import time
from abc import ABCMeta
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
from gradio.data_classes import ListFiles
from gradio.exceptions import Error as GradioError

from core.models import hub, zoo
from core.models.cache import ModelCache
from core.paths import REPO_ROOT
from core.runs.store import has_model, list_runs, read_status, run_dir_of
from train.admission import RunLimits
from train.launcher import RunLauncher

MAX_NAME_CHARS = 200  # a model name longer than this is refused before anything looks it up
HUB_SIZE_TTL_S = 600.0  # a Hub repository's size is asked again after ten minutes

MAX_UPLOAD_MB = 20  # the largest file the app takes (app.py launches Gradio with max_file_size=MAX_UPLOAD)
MAX_UPLOAD = f"{MAX_UPLOAD_MB}mb"


def on_a_space() -> bool:
    """True inside a Hugging Face Space (the SPACE_ID variable the Space sets)."""
    return bool(os.environ.get("SPACE_ID"))


def setting(name: str, default: float) -> float:
    """A number from the environment variable `name`, else `default`; ValueError naming the variable when it is
    not a positive number."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive number, not '{text}'.")
    return value


@dataclass
class AppContext:
    default_teacher: str
    default_student: str
    notice: str = ""  # one visible line naming the pair the lab starts with (built by pair_notice)
    on_space: bool = False  # a public Hugging Face Space: no local paths, runs owned by browser sessions
    cache: ModelCache = field(default_factory=ModelCache)
    launcher: RunLauncher | None = None  # created by create(); one per app, shared by every session
    # runs belong to the browser session that started them (others cannot see, stop, resume or delete them unless
    # shared): on a Space, and on an app served beyond this machine; None: on a Space only
    owned_runs: bool | None = None
    # Limits of one request; None takes the environment variable, else the default for a Space or for one's own machine.
    max_bench_s: float | None = None  # estimated seconds of a benchmark (RUDISTIL_MAX_BENCH_S; 5 min / 1 h)
    max_embed_s: float | None = None  # estimated seconds of embedding (RUDISTIL_MAX_EMBED_S; 2 min / 10 min)
    max_hub_mb: float | None = None  # MB a Hub model not cached may download (RUDISTIL_MAX_HUB_MB; 1,000 MB)
    max_run_s: float | None = None  # estimated seconds of a distillation run (RUDISTIL_MAX_RUN_S; 30 min / 24 h)
    max_session_runs: float | None = None  # runs of one session queued or running (RUDISTIL_MAX_SESSION_RUNS; 2 / none)
    max_session_mb: float | None = None  # MB of disk one session's runs take (RUDISTIL_MAX_SESSION_MB; 2,000 / none)
    _hub_sizes: dict = field(default_factory=dict, init=False, repr=False)  # hub id -> (when asked, bytes)

    def __post_init__(self):
        if self.launcher is None:
            self.launcher = RunLauncher(shared=self.on_space if self.owned_runs is None else self.owned_runs)
        if self.max_bench_s is None:
            self.max_bench_s = setting("RUDISTIL_MAX_BENCH_S", 300.0 if self.on_space else 3600.0)
        if self.max_embed_s is None:
            self.max_embed_s = setting("RUDISTIL_MAX_EMBED_S", 120.0 if self.on_space else 600.0)
        if self.max_hub_mb is None:
            self.max_hub_mb = setting("RUDISTIL_MAX_HUB_MB", 1000.0)
        if self.max_run_s is None:
            self.max_run_s = setting("RUDISTIL_MAX_RUN_S", 1800.0 if self.on_space else 86400.0)
        if self.max_session_runs is None:
            self.max_session_runs = setting("RUDISTIL_MAX_SESSION_RUNS", 2.0 if self.on_space else math.inf)
        if self.max_session_mb is None:
            self.max_session_mb = setting("RUDISTIL_MAX_SESSION_MB", 2000.0 if self.on_space else math.inf)

    def run_limits(self) -> RunLimits:
        """What one distillation run and one session's runs may take on this app (train.admission)."""
        return RunLimits(self.max_run_s, self.max_session_runs, self.max_session_mb * 1e6)

    @classmethod
    def create(cls, teacher: str | None = None, student: str | None = None,
               owned_runs: bool | None = None) -> AppContext:
        """The app's context: the default pair (the DeepPavlov pair when it can be had, else the bundled one);
        owned_runs as the field says (app.py turns it on when the app listens beyond this machine)."""
        (default_teacher, default_student), fallback = zoo.default_pair()
        teacher, student = teacher or default_teacher, student or default_student
        on_space = on_a_space()
        return cls(teacher, student, pair_notice(teacher, student, fallback), on_space=on_space,
                   owned_runs=on_space or bool(owned_runs))

    def model_choices(self, include_arch: bool = False) -> list[str]:
        """Known models (the default pair first, those that cannot load now last: a Hub model not cached while the Hub
        is out of reach), then the students of finished or checkpointed runs ("run:<id>", each followed by its
        untrained starting point "run:RUN_ID@init" when the run kept one), then with include_arch the random-weight
        architectures ("arch:NAME").

        Read from the runs folder on every call, never kept: call it each time a list is shown (page load, tab
        opened) and a run that finished a moment ago is in it."""
        names = self.known_models()
        for run in list_runs(self.launcher.root):
            if has_model(run) and (run["public"] or not self.on_space):
                names += [f"run:{run['id']}"] + ([f"run:{run['id']}@init"] if run.get("init") else [])
        if include_arch:
            names += [f"arch:{a}" for a in zoo.arch_names()]
        return names

    @property
    def pair(self) -> tuple[str, str]:
        """The default teacher and student: what an empty model box is told to choose."""
        return self.default_teacher, self.default_student

    def box_choices(self) -> tuple[list[str], list[str], list[str]]:
        """The choices of a tab's three model boxes (reference, compared, optional third): the first led by the
        default teacher, the second by the default student, the third by an empty choice. A dropdown takes its first
        choice when Enter is pressed in its empty box, so an emptied box comes back to its own default."""
        choices = self.model_choices()
        return led_by(choices, self.default_teacher), led_by(choices, self.default_student), [""] + choices

    def known_models(self) -> list[str]:
        """The table of known models in the order the lists offer them: the default pair, then the others that can
        load now, then those that cannot (offline, DeepPavlov's). A dropdown takes its first choice when Enter is
        pressed in its empty box: offline that was a Hub model that cannot load."""
        pair = [name for name in (self.default_teacher, self.default_student) if name in zoo.KNOWN_MODELS]
        rest = [name for name in zoo.KNOWN_MODELS if name not in pair]
        return pair + sorted(rest, key=lambda name: not zoo.is_available(name))  # stable: the table's order within

    def check_name(self, name) -> str:
        """The name, stripped, when this app may load it; ValueError with one sentence otherwise.

        Anything but text of at most MAX_NAME_CHARS characters is refused first, and an empty name with the app's
        default pair as the models to choose. On a Space only known names, arch:NAME, a shared run's run:RUN_ID and
        Hub ids of the form owner/name pass, and the answer never depends on what exists on the server: every path
        gets the same sentence, an unknown run and another person's unshared run the same sentence, and a Hub id is
        checked on the Hub alone (its download size included)."""
        name = model_name(name)
        if not name:  # offline, the table's own example (a Hub id) would name a model that cannot load
            raise ValueError(f"Choose a model, such as {self.default_teacher} or {self.default_student}, or another "
                             "from the list.")
        if not self.on_space:
            zoo.resolve(name)  # raises ValueError with a sentence for unknown names
            return name
        if name in zoo.KNOWN_MODELS or name.startswith("arch:"):
            zoo.resolve(name)
        elif name.startswith("run:"):
            run_id, _ = zoo.run_name_parts(name)
            run_dir = run_dir_of(run_id, self.launcher.root)  # a ValueError naming the id for one that is not valid
            if not (run_dir.is_dir() and read_status(run_dir).get("public")):
                raise ValueError(f"No shared run is named '{run_id}': on this Space a run's student can be used once "
                                 "its owner ticks 'Share' in the Distill tab; choose one from the model list.")
        elif zoo.HUB_ID_PATTERN.match(name):
            self.check_hub_model(name)
        else:
            raise ValueError(f"On this Space only the listed models, a shared run's run:RUN_ID and Hub ids of the form "
                             f"owner/name can be loaded; '{name}' is none of these.")
        return name

    def check_hub_model(self, hub_id: str) -> None:
        """On a Space: a Hub model is loadable when it is cached, or when the Hub says that the files the lab would
        download weigh at most max_hub_mb; ValueError otherwise (the offline line when the Hub is out of reach)."""
        if not zoo.is_cached(hub_id):
            if not zoo.hub_reachable():
                raise ValueError(out_of_reach_line(hub_id))
            size = self.hub_download_bytes(hub_id)
            limit = self.max_hub_mb * 1e6
            if size > limit:
                raise ValueError(f"'{hub_id}' would download {hub.format_bytes(size)} from the Hugging Face Hub; this "
                                 f"Space loads models of at most {hub.format_bytes(int(limit))}: choose a smaller "
                                 "model or run the lab on your own machine.")
        if Path(hub_id).exists():  # loading would read the server's folder of that name instead of the Hub's model
            raise ValueError(f"'{hub_id}' cannot be loaded on this Space; choose a listed model or another Hub id.")

    def hub_download_bytes(self, hub_id: str) -> int:
        """Bytes of the files loading `hub_id` fetches (config, one weights file, tokenizer files), from the Hub's
        file metadata, remembered for HUB_SIZE_TTL_S; ValueError naming the repository when the Hub refuses it or
        it lacks what the lab loads, the offline line when the Hub does not answer."""
        asked, size = self._hub_sizes.get(hub_id, (-math.inf, 0))
        if time.monotonic() - asked > HUB_SIZE_TTL_S:
            try:
                size = sum(hub.select_files(hub_id, hub.repo_sizes(hub_id)).values())
            except ValueError as error:
                if str(error) == hub.offline_sentence():  # names this server's cache folder: say it without it
                    raise ValueError(out_of_reach_line(hub_id)) from None
                raise
            if len(self._hub_sizes) > 256:
                self._hub_sizes.clear()
            self._hub_sizes[hub_id] = (time.monotonic(), size)
        return size

    def offline_line(self, name, checked: bool = False) -> str:
        """The visible line for a Hub model chosen while the Hub is out of reach (empty when all is well).

        The name is checked first (check_name, unless `checked`), so a handler that only asks about a name refuses
        what a load would refuse. On a Space a name of the Hub's form is a Hub id whatever the server's folders."""
        if not checked:
            name = self.check_name(name)
        known = zoo.KNOWN_MODELS.get(name)
        hub_id = known.hub_id if known else (name if zoo.HUB_ID_PATTERN.match(name or "") and
                                             (self.on_space or not Path(name).exists()) else None)
        if hub_id and not zoo.is_cached(hub_id) and not zoo.hub_reachable():
            return out_of_reach_line(name)
        return ""

    def public_text(self, text: str) -> str:
        """`text` as a Space may show it: the runs folder written as "runs", and the lab's own folder, the
        temporary folder (Gradio's uploads are there) and the Hugging Face cache left out. Unchanged elsewhere,
        where the person using the app is the one who keeps the files."""
        if not self.on_space:
            return text
        root = Path(self.launcher.root)
        for folder, shown in ((root, "runs"), (REPO_ROOT, ""), (Path(tempfile.gettempdir()), ""),
                              (hub.cache_folder(), "")):
            for form in dict.fromkeys([str(folder), str(folder.resolve())]):
                text = text.replace(form + os.sep, shown + os.sep if shown else "").replace(form, shown or ".")
        return text

    def load(self, name, attentions: bool = False, progress: gr.Progress | None = None) -> zoo.LoadedModel:
        """Load through the shared cache, with a progress message; user mistakes become gr.Error."""
        try:
            name = self.check_name(name)
            line = self.offline_line(name, checked=True)
            if line:
                raise ValueError(line)
            if progress is not None and not self.cache.is_loaded(name, attentions):
                progress(0, desc=f"Loading {name} ...")
            return self.cache.get(name, attentions)
        except ValueError as error:  # gr.Error too: its sentence, never its repr
            raise user_error(self.public_text(error_message(error))) from None


def led_by(choices: list[str], first: str) -> list[str]:
    """`choices` with `first` moved to the front, when it is one of them."""
    return [first, *(c for c in choices if c != first)] if first in choices else choices


def check_two_models(names: Sequence[str], suggested: Sequence[str] = ()) -> None:
    """Refuse a comparison of fewer than two models. `names`: the model boxes in order, "" where a box is empty; any
    two filled boxes compare (the first is the reference). ValueError naming a model to choose for the first empty box
    of the first two, from `suggested` (the app's default teacher and student), never one already chosen."""
    chosen = [n for n in names if n]
    if len(chosen) >= 2:
        return
    box = next((i + 1 for i in range(2) if i >= len(names) or not names[i]), 2)
    if not chosen:
        pair = [n for n in suggested if n][:2]
        raise ValueError("Choose two models to compare" + (f", such as {pair[0]} as model 1 and {pair[1]} as model 2."
                                                           if len(pair) == 2 else ", as model 1 and model 2."))
    other = next((n for n in suggested if n and n != chosen[0]), None)
    raise ValueError(f"Choose a second model to compare with {chosen[0]}"
                     + (f", such as {other} as model {box}." if other else f", as model {box}."))


def out_of_reach_line(name: str) -> str:
    """The sentence for a Hub model that is not cached while the Hub cannot be reached."""
    return (f"'{name}' is on the Hugging Face Hub, which this machine cannot reach, and it is not cached: "
            "choose bundled-teacher / bundled-student, or a run's student.")


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


LONG_TEXT_LINES = 200  # line breaks in one insertion past which the page inserts the text itself
# Chromium inserts a text of many lines into a text box one line at a time, laying the box out again after each
# (and Gradio's growing box measures itself at each): 10,000 lines pasted or filled in kept the page frozen for
# minutes before any refusal could show. Such an insertion is made at once instead, with one input event, so the
# checks that follow see the whole text in moments. (The box's undo history does not hold such an insertion.)
LONG_TEXT_JS = f"""
if (!window.rudistilLongText) {{
    window.rudistilLongText = true;
    document.addEventListener('beforeinput', (event) => {{
        const box = event.target;
        if (!(box instanceof HTMLTextAreaElement)
            || !['insertText', 'insertFromPaste', 'insertReplacementText'].includes(event.inputType)) return;
        const text = event.data ?? event.dataTransfer?.getData('text/plain');  // a paste's text is in dataTransfer
        if (typeof text !== 'string') return;
        let breaks = 0;
        for (let at = text.indexOf('\\n'); at >= 0 && breaks <= {LONG_TEXT_LINES}; at = text.indexOf('\\n', at + 1)) {{
            breaks++;
        }}
        if (breaks <= {LONG_TEXT_LINES}) return;
        event.preventDefault();
        box.setRangeText(text, box.selectionStart, box.selectionEnd, 'end');
        box.dispatchEvent(new InputEvent('input', {{bubbles: true, inputType: event.inputType}}));
    }}, true);
}}
"""


def long_text_guard() -> gr.HTML:
    """An element with no content that makes the page insert a pasted (or filled-in) text of more than
    LONG_TEXT_LINES lines into any text box at once (LONG_TEXT_JS); once a page is enough, more do no harm."""
    return gr.HTML("", visible="hidden", js_on_load=LONG_TEXT_JS, padding=False)


def user_error(message: str) -> gr.Error:
    """The gr.Error for a sentence meant for a person: the page renders a gr.Error's message as HTML, so it is
    escaped (a name such as '<b>x</b>' shows as typed, not bold)."""
    return gr.Error(page_text(message), print_exception=False)


def error_message(error: Exception) -> str:
    """The sentence of a ValueError or gr.Error as written (str() of a gr.Error is its repr, quotes and all)."""
    return html.unescape(error.message) if isinstance(error, gr.Error) else str(error)


def user_errors(fn):
    """Turn a ValueError raised by core code into a gr.Error the page shows as one sentence; a gr.Error (already a
    sentence for the page, and itself a ValueError) keeps its sentence."""
    import functools
    import inspect

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except ValueError as error:  # gr.Error too: its sentence, never its repr
                raise user_error(error_message(error)) from None
        return generator_wrapper

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except ValueError as error:
            raise user_error(error_message(error)) from None
    return wrapper


# ---------------------------------------------------------------------------------------------------------------------
# Input checks: what a handler does first with each input, whoever sent it (the page, gradio_client or raw HTTP)


def shown(value) -> str:
    """A value as an error sentence quotes it (1e9 as 1,000,000,000, text in quotes): core.formatting.shown, whose
    words the command lines use too."""
    from core.formatting import shown as quoted  # the one wording, kept in core so that core and train can use it

    return quoted(value)


def whole_number(value, what: str, low: int | None = None, high: int | None = None) -> int:
    """`value` as an int from `low` to `high` (None: any whole number, its range checked by the caller); a float
    with no fraction and text such as " 12 " count. ValueError naming `what` and the range for anything else (None,
    "ten", 2.5, inf, NaN, True, a list)."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    ok = (isinstance(number, numbers.Real) and not isinstance(number, bool) and math.isfinite(number)
          and number == int(number) and (low is None or low <= number) and (high is None or number <= high))
    if not ok:
        where = f" from {low:,} to {high:,}" if low is not None and high is not None else ""
        raise ValueError(f"{what} must be a whole number{where}; got {shown(value)}.")
    return int(number)


def real_number(value, what: str, finite: bool = True) -> float:
    """`value` as a float, finite unless `finite` is False (the caller then checks its range); text such as " 0.5 "
    counts. ValueError naming `what` for anything else (None, "ten", True, a list; inf and NaN when finite)."""
    number = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            number = None
    if not (isinstance(number, numbers.Real) and not isinstance(number, bool)) or \
            (finite and not math.isfinite(number)):
        raise ValueError(f"{what} must be a finite number; got {shown(value)}.")
    return float(number)


def one_of(value, what: str, options: Sequence[str]) -> str:
    """The option `value` names, compared without case or surrounding spaces; ValueError listing the options."""
    if isinstance(value, str):
        for option in options:
            if value.strip().lower() == option.lower():
                return option
    raise ValueError(f"{what} must be one of {', '.join(options)}; got {shown(value)}.")


def some_of(value, what: str, options: Sequence[str]) -> list[str]:
    """One or more of `options` (a list, or one of them alone), in the order given, each once; ValueError when
    none is chosen or one is not an option."""
    chosen = [value] if isinstance(value, str) else value
    if isinstance(chosen, (list, tuple)) and not chosen:  # every box left unticked
        raise ValueError(f"{what} must be one or more of {', '.join(options)}; none is chosen.")
    if not isinstance(chosen, (list, tuple)):
        raise ValueError(f"{what} must be one or more of {', '.join(options)}; got {shown(value)}.")
    return list(dict.fromkeys(one_of(item, what, options) for item in chosen))


FLAG = re.compile(r"--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def form_words(text: str, labels: dict[str, str], phrases: Sequence[tuple[str, str]] = ()) -> str:
    """A sentence of the command line's checks (train.config, train.preflight, ...) in a form's words: each
    `phrases` (old, new) replaced first (advice about flags the form has no field for), then each flag named in
    `labels` ("--lr" -> "Learning rate") by its field's label, as it is written at the start of the sentence and in
    quotes within it. The command line keeps its own sentences: it never calls this."""
    for old, new in phrases:
        text = text.replace(old, new)

    def label(match: re.Match) -> str:
        name = labels.get(match.group(0))
        if name is None:
            return match.group(0)
        return name if match.start() == 0 else f"'{name}'"
    return FLAG.sub(label, text)


def text_input(value, what: str) -> str:
    """Text as typed; None is empty text. ValueError for anything that is not text."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text; got {shown(value)}.")
    return value


def flag(value, what: str) -> bool:
    """A tick box: True or False (None is False); ValueError for anything else."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise ValueError(f"{what} must be true or false; got {shown(value)}.")


def model_name(value, what: str = "A model") -> str:
    """A model's name, stripped ("" for None or blank); ValueError for anything that is not text, or for a name over
    MAX_NAME_CHARS characters (which is never looked up)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} is chosen by its name as text (such as bundled-teacher), not {shown(value)}.")
    name = value.strip()
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"Model names have at most {MAX_NAME_CHARS} characters; {what.lower()} has {len(name):,}.")
    return name


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


# ---------------------------------------------------------------------------------------------------------------------
# Sessions: who is asking, and how many of their requests wait or run


def session_id() -> str | None:
    """The session (a browser tab, or one gradio_client Client) of the request being handled; None outside one."""
    from gradio.context import LocalContext

    request = LocalContext.request.get(None)
    return getattr(request, "session_hash", None) if request is not None else None


def pending_requests(session: str | None, group: str) -> int:
    """How many requests of `session` (None: of every session) in the concurrency group `group` wait in Gradio's
    queue or run now.

    Read from the queue of the app handling the current request (Gradio 6 keeps every event from its arrival to its
    end in Queue.event_ids_to_events); 0 outside a request."""
    from gradio.context import LocalContext

    queue = getattr(LocalContext.blocks.get(None), "_queue", None)
    events = list(getattr(queue, "event_ids_to_events", {}).values())
    return sum(1 for event in events
               if event.concurrency_id == group and (session is None or event.session_hash == session))


def busy_line(limit: int, one: str, many: str) -> str:
    """The sentence refusing a request of a visitor who already has `limit` of them waiting or running."""
    have = f"1 {one}" if limit == 1 else f"{limit} {many}"
    return (f"You already have {have} waiting or running, the most this app takes from one visitor at a time; wait "
            f"for {'it' if limit == 1 else 'one'} to finish.")


def queue_guard(group: str, limit: int, one: str, many: str, check=None, accepted=None, at: int = 0):
    """A Gradio validator (the `validator` of an event), run when a request arrives, before it is queued.

    It refuses the request when its session already has `limit` requests of `group` waiting or running (`one` and
    `many` name such a request, as in "benchmark", "benchmarks"), or when `check(*inputs)` raises ValueError (its
    sentence is the answer); `accepted(session)` is called for a request it lets through. The refusal is one
    gr.validate per input, the sentence on input `at` (default the first): gradio_client raises it as a
    ValidationError, the page shows it under that input, and the event's outputs keep what they showed."""
    def validator(*inputs):
        message = ""
        session = session_id()
        if session is not None and pending_requests(session, group) >= limit:
            message = busy_line(limit, one, many)
        elif check is not None:
            try:
                check(*inputs)
            except ValueError as error:
                message = error_message(error)
        if not message:
            if accepted is not None:
                accepted(session)
            return [gr.validate(True, "") for _ in inputs]
        at_input = at if 0 <= at < len(inputs) else 0
        return [gr.validate(i != at_input, message if i == at_input else "") for i in range(len(inputs))]
    return validator


ADMISSION_TTL_S = 5.0  # an admitted request follows its admission within moments; one the page dropped lapses


class VisitorLimit:
    """A concurrency group's places per visitor, with its refusal told on the page.

    Gradio's page shows a validator's refusal only under a text box among the event's inputs (nothing under a
    dropdown, a number, a radio or a file) and runs none of the event's .failure listeners after it, so a visitor at
    the limit saw a click do nothing. The page therefore asks first, in a step of its own (`admit`), which refuses
    with an error the page shows as a notice and the tab's status line; the event's `validator` lets each request so
    admitted through once, and answers any other (gradio_client, raw HTTP) as queue_guard does. An admission counts
    as a place until its request arrives, so two quick clicks cannot both pass the last place."""

    def __init__(self, group: str, limit: int, one: str, many: str, ttl_s: float = ADMISSION_TTL_S):
        self.group, self.limit, self.one, self.many, self.ttl_s = group, limit, one, many, ttl_s
        self._admitted: dict[str, list[float]] = {}  # session -> when each of its admissions was given
        self._lock = threading.Lock()

    def _current(self, session: str) -> list[float]:
        now = time.monotonic()
        when = [t for t in self._admitted.get(session, []) if now - t <= self.ttl_s]
        if when:
            self._admitted[session] = when
        else:
            self._admitted.pop(session, None)
        return when

    def admit(self, check=None):
        """The page's first step (inputs as the event's, no outputs): ValueError with the busy sentence when the
        session has `limit` requests waiting, running or admitted, or with `check(*inputs)`'s own; else the request
        is admitted."""
        def step(*inputs) -> None:
            if check is not None:
                check(*inputs)
            session = session_id()
            if session is None:
                return
            with self._lock:
                if pending_requests(session, self.group) + len(self._current(session)) >= self.limit:
                    raise ValueError(busy_line(self.limit, self.one, self.many))
                if len(self._admitted) > 1024:  # sessions that left admissions unused (a tab closed at once)
                    for other in list(self._admitted):
                        self._current(other)
                self._admitted.setdefault(session, []).append(time.monotonic())
        return step

    def validator(self, check=None, at: int = 0):
        """The event's validator: a request the page's `admit` let through passes (its admission used up); any
        other is answered by queue_guard(group, limit, one, many, check, at=at)."""
        guard = queue_guard(self.group, self.limit, self.one, self.many, check, at=at)

        def validate(*inputs):
            session = session_id()
            with self._lock:
                admitted = session is not None and bool(self._current(session))
                if admitted:
                    self._admitted[session].pop(0)
            return [gr.validate(True, "") for _ in inputs] if admitted else guard(*inputs)
        return validate


def cleared(results: list, boxes: int = 0):
    """A listener for an action's .failure() that puts its `results` components back as the page first showed them
    and hides its `boxes` download boxes (listed after them), so a failed action never leaves the previous input's
    results on the page, or offered for download, as the new input's."""
    def clear():
        updates = tuple(getattr(block, "value", None) for block in results) + tuple(
            gr.File(value=None, visible=False) for _ in range(boxes))
        return updates if len(updates) > 1 else updates[0]
    return clear


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
        """The key of an action's inputs in the session handled now, as text: a NaN layer or an unhashable value
        still finds its line, and two visitors who fail with the same inputs each find their own."""
        return (session_id(), action, *map(repr, inputs))

    def failure(self, what: str, action: str):
        """The listener for an action's .failure(): given the same inputs, the status line of its error."""
        def line(*inputs) -> str:
            return failure_line(what, self.take(self.key(action, inputs)))
        return line


def failure_line(what: str, message: str) -> str:
    """The visible status line after a failed action: what failed and why (the message shown as written, never as
    HTML or Markdown); empty when there is no message."""
    return f"**{what} failed:** {markdown_text(message)}" if message else ""


NOTICE_S = 10.0  # how long the page shows an error's notice: gr.Error's own duration


@dataclass
class Notices:
    """The refusals each session was shown as a notice, and when. The page lists notices of one kind together, so a
    sentence refused again while its notice still shows (Delete pressed after a download, with no run chosen) read
    "Error (2)" and the same sentence twice: such a repeat is sent without a notice (gr.Error's visible=False). API
    callers still receive it, and the lines under the buttons still say it."""

    limit: int = 256
    _shown: OrderedDict = field(default_factory=OrderedDict)  # (session, sentence) -> time.monotonic() when shown
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def first(self, message: str) -> bool:
        """Whether `message` is to be shown to the session handled now: not when its notice still shows there."""
        session = session_id()
        if session is None:
            return True
        key, now = (session, message), time.monotonic()
        with self._lock:
            shown = self._shown.pop(key, None)
            if shown is not None and now - shown < NOTICE_S:
                self._shown[key] = shown  # the notice on the page is still that one's
                return False
            self._shown[key] = now
            while len(self._shown) > self.limit:
                self._shown.popitem(last=False)
        return True

    def once(self, fn):
        """fn, its refusals (ValueError, gr.Error) raised as gr.Error with a notice only when first (see first). The
        signature stays fn's, so the API keeps its parameter names."""
        import functools

        @functools.wraps(fn)
        def said_once(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except ValueError as error:  # gr.Error too
                message = error_message(error)
                raise gr.Error(page_text(message), visible=self.first(message), print_exception=False) from None
        return said_once

"""The app's context, which every tab's handlers receive: the model cache and the run launcher, the default pair and
the line under the title that names it, the limits a shared app keeps, which model names this app may load (a Hub
model's download size checked on a Space), and the sentences that ask for two models to compare or say that a Hub
model is out of reach."""
from __future__ import annotations

import functools
import math
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr

from core.models import hub, zoo
from core.models.cache import ModelCache
from core.paths import REPO_ROOT
from core.runs.store import has_model, list_runs, read_status, run_dir_of
from train.admission import RunLimits
from train.launcher import RunLauncher
from ui.errors import error_message, user_error
from ui.input_checks import model_name
from ui.sessions import browser_key

HUB_SIZE_TTL_S = 600.0  # a Hub repository's size is asked again after ten minutes


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

    @functools.cached_property
    def browser_key(self) -> str:
        """The key sealing what the page keeps in the browser (gr.BrowserState's secret), kept in the runs folder so
        that a restarted app still reads it (ui.sessions.browser_key)."""
        return browser_key(self.launcher.root)

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

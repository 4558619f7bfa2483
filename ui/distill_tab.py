"""The Distill tab: configure a run, start it as a child process, watch its curves and what the student guesses,
stop and resume it, and download its metrics and student."""
from __future__ import annotations

import inspect
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, fields, replace
from functools import partial, wraps
from operator import attrgetter
from pathlib import Path

import gradio as gr
import pandas as pd

from core.bench.runtimes.available import why_not
from core.bench.runtimes.exported import export_name, run_exports
from core.distill.training_data import check_readable
from core.formatting import count, format_seconds, parse_int_list
from core.models import zoo
from core.models.student import teacher_depth
from core.models.vocab import ALIGNMENTS
from core.runs.export import write_metrics_csv, write_student_zip
from core.runs.guesses import COLUMNS as GUESS_COLUMNS
from core.runs.guesses import read_guesses
from core.runs.store import (
    ACTIVE_STATES,
    RunPaths,
    list_runs,
    quoted_id,
    read_console,
    read_metrics,
    read_status,
    run_dir_of,
    run_info,
    without_server_paths,
)
from train.config import (
    BUNDLED_CORPUS,
    MAX_BATCH_SIZE,
    MAX_LENGTH_RANGE,
    MAX_STEPS,
    MIN_STUDENT_VOCAB,
    STUDENT_TYPES,
    DistillConfig,
)
from train.export import export_model, mode_of
from train.export import summary as export_summary
from train.launcher import can_control, can_see, check_uploaded_corpus, deletion_refusal
from train.publish import publish
from ui.context import (
    MAX_UPLOAD_MB,
    AppContext,
    CheckedFile,
    CheckedNumber,
    CheckedRadio,
    CheckedSlider,
    ErrorLines,
    error_message,
    form_words,
    markdown_text,
    page_text,
    real_number,
    session_id,
    shown,
    user_errors,
    whole_number,
)
from ui.distill_plots import eval_figure, loss_figure, progress_line

DEFAULTS = DistillConfig()
LOSS_DEFAULTS = DEFAULTS.losses
BUNDLED = "bundled corpus"
UPLOAD = "upload a .txt"
RUN_COLUMNS = ["run", "state", "step", "teacher", "student", "owner", "shared"]
RUN_COLUMN_WIDTHS = ["20%", "12%", "12%", "20%", "16%", "10%", "10%"]  # every column in view, "shared" included
# the runs table's height before it scrolls: its header and nine runs, each two lines high (a run's id wraps in its
# column)
RUNS_TABLE_PX = 40 + 9 * 60
GUESS_LABEL = "Student's guesses at"
# the guesses table's headers as shown (core.runs.guesses.COLUMNS, shortened) and widths: one line of headers, and
# every column in view at 1280 px, the guesses wrapped in their cells and the longest expected word on one line
GUESS_HEADERS = ["sentence", "expected", "teacher's top 3", "student's top 3", "same 1st"]
GUESS_COLUMN_WIDTHS = ["25%", "16%", "25%", "25%", "9%"]
# Runs have owners on a Space and on an app served to a network; on this machine alone every page sees every run.
SHARE_INFO = {True: "Let everyone on this app see it and use its student.",
              False: "Matters on a Space or an app served to a network; here every page already sees every run."}
STUDENT_VOCAB_DEFAULT = 2000  # the form's vocabulary size when the smaller vocabulary is ticked
MAX_STUDENT_LAYERS = 48  # the form's bound while the teacher's depth cannot be read here; the run then checks it
MAX_OWNER_CHARS = 64  # the ids this app makes are 24 characters (owner_token)
# the command line's flags as the form labels them: the shared checks (train.config, train.preflight, train.estimate)
# name flags, and the page names the fields a person sees (form_words)
FORM_LABELS = {
    "--teacher": "Teacher", "--student-layers": "Student layers", "--init-layers": "Initialising teacher layers",
    "--student-type": "Student architecture", "--max-steps": "Steps", "--batch-size": "Batch size",
    "--lr": "Learning rate", "--temperature": "Temperature T", "--alpha-kl": "α KL", "--alpha-mlm": "α MLM",
    "--alpha-cos": "α cosine", "--alpha-att": "α attention", "--max-length": "Max length",
    "--student-vocab-size": "Student vocabulary size", "--student-hidden": "Student width",
    "--align": "Logit alignment", "--save-every": "Checkpoint every", "--kl-masked-only": "KL at masked positions only"}
# advice about flags the form has no field for (train.memory.run_levers), left out or said in the form's terms
FORM_PHRASES = [(" (a higher --grad-accum keeps the batch of a step)", ""), (", or add --gradient-checkpointing", ""),
                ("resume with --gradient-checkpointing, or free memory", "free memory"),
                (" (or raise --grad-accum)", ""), (", and --reduce-op sum or mean", "")]
NO_RUN_CHOSEN = "Choose a run in the 'Run shown below' list first (start one above if the list is empty)."
NO_RUNS = "No runs yet: set up a run and press Start run."  # the status line when this owner can see no run
DELETE_HELP = ("Delete the chosen run and its files. A run you have just stopped is waited for (a few seconds) while "
               "it saves its checkpoint; if it is still saving, the error says so and Delete can be called again.")
PUBLISH_HELP = ("Push the chosen run's student (a run that has not finished: its newest readable checkpoint's) to a "
                "Hugging Face model repository with the app's token (HF_TOKEN): the weights in safetensors, the "
                "tokenizer and a model card with the recipe, the data and the held-out figures; the same as "
                "`python -m train.publish RUN --repo-id owner/name`.")
ALIGN_HELP = """The authors' alignments (Kolesnikova et al., 2022): **reduce**: the student reads the teacher's tokens
split into its own pieces; its logits are summed over the pieces of each teacher token and mapped onto the teacher's
whole vocabulary. **match**: the student reads its own tokenisation; positions whose tokens are the same string in
both are paired and compared on the vocabulary both share. The lab's variants: **reduce-shared** compares the summed
logits on the shared vocabulary only; **match-pieces** keeps the teacher's tokenisation and compares only positions
whose teacher token is itself one student token."""


@dataclass
class RunSettings:
    """What the form asks for a run, one field a form input, named as /start_run's API parameters. None: the input
    was left out (a gradio_client caller), and the run takes DistillConfig's default."""

    teacher: str | None = None
    student_layers: int | None = None  # None: half the teacher's layers
    init_layers: str | None = None  # "0,2": teacher layers copied into the student; empty: every k-th
    student_type: str | None = None  # one of train.config.STUDENT_TYPES
    corpus_source: str | None = None  # "bundled corpus" or UPLOAD
    corpus_file: str | None = None  # the upload's server path; its file name is the one its owner gave it
    steps: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    temperature: float | None = None
    alpha_kl: float | None = None
    alpha_mlm: float | None = None
    alpha_cos: float | None = None
    alpha_att: float | None = None
    kl_masked_only: bool | None = None  # the KL term at masked positions only (the bundled student's recipe)
    max_length: int | None = None  # tokens a line
    reduced_vocab: bool | None = None  # the student gets its own smaller vocabulary (and width)
    student_vocab_size: int | None = None
    student_hidden: int | None = None
    align: str | None = None  # one of core.models.vocab.ALIGNMENTS
    save_every: int | None = None  # steps between checkpoints
    share: bool | None = None

    def uploaded_corpus(self) -> str | None:
        """The uploaded corpus's path when the form asks for an upload; ValueError when none was given, or the
        source is neither choice."""
        if self.corpus_source not in (None, BUNDLED, UPLOAD):
            raise ValueError(f"Corpus must be '{BUNDLED}' or '{UPLOAD}'; got {shown(self.corpus_source)}.")
        if self.corpus_source != UPLOAD:
            return None
        if not self.corpus_file:
            raise ValueError("Upload a .txt corpus first, or choose the bundled corpus.")
        return self.corpus_file

    def config(self, teacher: str) -> DistillConfig:
        """The run's configuration, checked as the run checks it (DistillConfig.check); `teacher`: the teacher's name,
        already checked. Raises ValueError: an input of the wrong kind names the input; a value out of range gets
        the sentence the run itself would give."""
        def given(value, default):
            return default if value is None else value

        def whole(value, what, default, low=None, high=None):
            return default if blank(value) else whole_number(value, what, low, high)

        def real(value, what, default):
            return default if blank(value) else real_number(value, what, finite=False)

        reduced = bool(self.reduced_vocab)
        layers = None if blank(self.student_layers) else self.student_layers
        cfg = DistillConfig.from_dict(dict(
            teacher=teacher, corpus=BUNDLED_CORPUS,
            student_layers=checked_student_layers(layers, teacher),  # 0 is refused, not "half"
            init_layers=parse_layers(self.init_layers), student_type=given(self.student_type, DEFAULTS.student_type),
            max_steps=whole(self.steps, "Steps", DEFAULTS.max_steps, 1, MAX_STEPS),
            batch_size=whole(self.batch_size, "Batch size", DEFAULTS.batch_size, 1, MAX_BATCH_SIZE),
            lr=real(self.learning_rate, "Learning rate", DEFAULTS.lr),
            temperature=real(self.temperature, "The temperature", LOSS_DEFAULTS.temperature),
            alpha_kl=real(self.alpha_kl, "alpha_kl", LOSS_DEFAULTS.alpha_kl),
            alpha_mlm=real(self.alpha_mlm, "alpha_mlm", LOSS_DEFAULTS.alpha_mlm),
            alpha_cos=real(self.alpha_cos, "alpha_cos", LOSS_DEFAULTS.alpha_cos),
            alpha_att=real(self.alpha_att, "alpha_att", LOSS_DEFAULTS.alpha_att),
            kl_masked_only=bool(given(self.kl_masked_only, LOSS_DEFAULTS.kl_masked_only)),
            max_length=whole(self.max_length, "Max length", DEFAULTS.max_length, *MAX_LENGTH_RANGE),
            save_every=whole(self.save_every, "Checkpoint every", DEFAULTS.save_every, 1, MAX_STEPS),
            # 0 goes on to DistillConfig.check, which refuses it as it refuses any size out of range; empty: the
            # form's default, which its box shows
            student_vocab_size=whole(self.student_vocab_size, "Student vocabulary size",
                                     STUDENT_VOCAB_DEFAULT) if reduced else None,
            # 0 is what the page shows in an emptied box: both keep the teacher's width
            student_hidden=whole(self.student_hidden or None, "Student width", None) if reduced else None,
            align=given(self.align, DEFAULTS.align)))
        cfg.check()  # refuses an alignment outside the radio's choices by name, even one the run would not use
        # the alignment of two vocabularies means nothing to a student sharing the teacher's, and the command line
        # refuses it there: a choice left in the hidden radio is not sent
        return cfg if reduced else replace(cfg, align=DEFAULTS.align)


def settings_line(cfg: DistillConfig) -> str:
    """The settings a run was started with, in a few words (an empty box takes the default its placeholder shows,
    and a browser empties a number box holding text such as "Infinity"): "300 steps of 16 lines of up to 128
    tokens, learning rate 0.0005, T 2"."""
    return (f"{count(cfg.max_steps, 'step')} of {count(cfg.batch_size, 'line')} of up to "
            f"{count(cfg.max_length, 'token')}, learning rate {cfg.lr:g}, T {cfg.losses.temperature:g}"
            + (", KL at masked positions only" if cfg.losses.kl_masked_only else ""))


# The form's number boxes that an empty box leaves to the run's default, in the form's order: RunSettings' field ->
# (the box's label, the DistillConfig field the default is read from). Student layers and the reduced student's two
# boxes have defaults of their own (defaults_taken).
DEFAULTED_BOXES = {
    "steps": ("Steps", "max_steps"), "batch_size": ("Batch size", "batch_size"),
    "learning_rate": ("Learning rate", "lr"), "temperature": ("Temperature T", "losses.temperature"),
    "alpha_kl": ("α KL", "losses.alpha_kl"), "alpha_mlm": ("α MLM", "losses.alpha_mlm"),
    "alpha_cos": ("α cosine", "losses.alpha_cos"), "alpha_att": ("α attention", "losses.alpha_att"),
    "max_length": ("Max length", "max_length"), "save_every": ("Checkpoint every", "save_every")}


def blank(value) -> bool:
    """Whether a box of the form was left empty: None (the page's empty number box, or an input an API caller left
    out) or text of spaces only."""
    return value is None or (isinstance(value, str) and not value.strip())


def number_text(value: float) -> str:
    """A setting's value as its number box shows it: 300, 10000, 0.0005, 2 (not 2.0)."""
    return str(value) if isinstance(value, int) else f"{value:g}"


def defaults_taken(settings: RunSettings, cfg: DistillConfig) -> list[str]:
    """Each box of the form that `settings` left empty, with the value the run `cfg` (settings.config's) took for it,
    in the form's order: ["Student layers 2 (half of bundled-teacher's 4)", "Steps 300", "α KL 5"]."""
    taken = []
    if blank(settings.student_layers):
        depth = known_teacher_depth(cfg.teacher)
        taken.append(f"Student layers {max(1, depth // 2)} (half of {cfg.teacher}'s {depth})" if depth else
                     "Student layers: half the teacher's")
    for name, (label, source) in DEFAULTED_BOXES.items():
        if name == "save_every" and cfg.student_vocab_size is not None:  # the reduced student's boxes come first
            if blank(settings.student_vocab_size):
                taken.append(f"Student vocabulary size {number_text(cfg.student_vocab_size)}")
            if blank(settings.student_hidden):
                taken.append("Student width: the teacher's")
        if blank(getattr(settings, name)):
            taken.append(f"{label} {number_text(attrgetter(source)(cfg))}")
    return taken


def defaults_sentence(taken: list[str]) -> str:
    """The sentence naming the boxes left empty and the values they took (defaults_taken); "" when none was."""
    return f"Boxes left empty took their defaults: {', '.join(taken)}." if taken else ""


def in_form_words(text: str) -> str:
    """A sentence of the run's own checks as the page says it: the form's field labels instead of flags."""
    return form_words(text, FORM_LABELS, FORM_PHRASES)


def owner_token(owner: str | None) -> str:
    """The browser's id in this app, made on first use and kept in the browser's local storage."""
    return owner or secrets.token_hex(12)


def parse_layers(text: str | None) -> list[int] | None:
    text = (text or "").strip()
    if not text:
        return None
    return parse_int_list(text, "Initialising layers", example="0,2,4")


def show_corpus_file(source: str | None) -> tuple[gr.File, gr.Markdown]:
    """The corpus box and the line under it, shown only when the corpus is an upload."""
    return gr.File(visible=source == UPLOAD), gr.Markdown(visible=source == UPLOAD)


def corpus_file_line(path: str | None, tokenizer=None) -> str:
    """The line under the corpus box once a file is uploaded: the sentence Start run would refuse it with (the same
    checks, train.launcher.check_uploaded_corpus and, with the teacher's `tokenizer`, its share of unknown tokens,
    core.distill.training_data.check_readable), or how many samples it holds; empty when the box is cleared."""
    if not path:
        return ""
    name = Path(path).name  # Gradio keeps an upload under the name its owner gave it
    try:
        lines = check_uploaded_corpus(path, name)
        if tokenizer is not None:
            check_readable(lines, tokenizer, name)
    except ValueError as error:
        return markdown_text(error_message(error))
    return markdown_text(f"'{name}': {count(len(lines), 'sample')}, one a line.")


def corpus_note_line(ctx: AppContext, path: str | None, teacher: str | None = None) -> str:
    """corpus_file_line, with the tokenizer of the teacher chosen when it can be read (teacher_tokenizer): said as the
    file arrives and again when the teacher changes."""
    return corpus_file_line(path, teacher_tokenizer(ctx, teacher) if path and teacher else None)


def teacher_tokenizer(ctx: AppContext, name: str | None):
    """The tokenizer of the teacher `name`, read without its weights, to count a corpus's unknown tokens. None when
    it cannot be read here: a name this app does not load, an architecture (random weights, a stand-in vocabulary),
    a Hub model not cached while the Hub is out of reach, a run without a student folder; Start run or the run
    itself then says what is wrong."""
    try:
        name = ctx.check_name(name)
        if ctx.offline_line(name, checked=True):
            return None
        source, location = zoo.resolve(name)
        if source == "arch":
            return None
        if source == "run":  # every copy of a run's student (init, checkpoints, final) has this tokenizer
            location = str(RunPaths(Path(location)).student)
        return zoo.load_tokenizer(name, location)[0]
    except ValueError:
        return None


def check_upload_readable(ctx: AppContext, upload: str, teacher: str) -> None:
    """Refuse an uploaded corpus that the teacher's tokenizer cannot read (core.distill.training_data.check_readable),
    as the run would, before it is queued; its other faults are refused by the launcher's own checks."""
    name = Path(upload).name
    tokenizer = teacher_tokenizer(ctx, teacher)
    if tokenizer is not None:
        check_readable(check_uploaded_corpus(upload, name), tokenizer, name)


# Teachers' layer counts read so far, by name: the runs table asks every two seconds, and a Hub teacher's config
# would be asked for again each time. Only counts found are kept: a name not readable yet (a Hub model still to be
# downloaded, a run with no student yet) is asked again.
TEACHER_DEPTHS: dict[str, int] = {}


def known_teacher_depth(name: str | None) -> int | None:
    """The number of layers of the teacher `name` (core.models.student.teacher_depth, remembered once found); a known
    model not downloaded yet is read from its architecture, which the lab ships (zoo.arch_config). None when it
    cannot be read."""
    if not name or not isinstance(name, str):
        return None
    if name not in TEACHER_DEPTHS:
        depth = teacher_depth(name)
        if depth is None and name in zoo.KNOWN_MODELS and name in zoo.arch_names():
            depth = teacher_depth(f"arch:{name}")
        if depth is None:
            return None
        TEACHER_DEPTHS[name] = depth
    return TEACHER_DEPTHS[name]


def layers_refusal(value, teacher: str, depth: int) -> str:
    """The sentence refusing `value` as the student's depth under the teacher `teacher` of `depth` layers."""
    return (f"Student layers must be a whole number from 1 to {depth} ({teacher} has {count(depth, 'layer')}); got "
            f"{shown(value)}.")


def checked_student_layers(value, teacher: str | None) -> int | None:
    """The student's number of layers as the form gives it: None (left out: half the teacher's) or a whole number from
    1 to the teacher's layers. ValueError naming the teacher's range (layers_refusal); from 1 to MAX_STUDENT_LAYERS
    while the teacher's depth cannot be read here (the run checks it against the teacher when it is queued)."""
    if value is None:
        return None
    depth = known_teacher_depth(teacher)
    try:
        return whole_number(value, "Student layers", 1, depth or MAX_STUDENT_LAYERS)
    except ValueError:
        if depth is None:
            raise
        raise ValueError(layers_refusal(value, teacher, depth)) from None


def layers_info(teacher: str | None, value=None) -> str:
    """The line under the Student layers box: the range the teacher `teacher` allows (None: a teacher not usable
    here, whose note says why), or the sentence Start run would refuse `value` with."""
    depth = known_teacher_depth(teacher)
    if depth is None:
        return ("At most the teacher's layers (checked when Start run reads the teacher); half of them is "
                "DistilBERT's choice.")
    try:
        checked_student_layers(value, teacher)
    except ValueError as error:
        return str(error)
    return (f"1 to {depth}: {teacher} has {count(depth, 'layer')}. Half of them, {max(1, depth // 2)}, is DistilBERT's "
            "choice, and is set when the teacher changes.")


def student_layer_count(info: dict) -> int | None:
    """The student's number of layers of a run_info() row: the one asked for, else half the teacher's (at least 1,
    as train.setup makes it); None when it is not set and the teacher's depth cannot be read."""
    if info.get("student_layers"):
        return info["student_layers"]
    depth = known_teacher_depth(info.get("teacher"))
    return max(1, depth // 2) if depth else None


def student_label(info: dict) -> str:
    """The student of a run_info() row in a few words: "2 L", or "2 L · width 264 · vocab 3,000 · reduce"; an unset
    depth is worked out from the teacher's (student_layer_count), and is "half" only when that cannot be read."""
    layers = student_layer_count(info)
    parts = [f"{layers} L" if layers else "half"]
    if info.get("student_vocab_size"):
        if info.get("student_hidden"):
            parts.append(f"width {info['student_hidden']}")
        parts += [f"vocab {info['student_vocab_size']:,}", info.get("align") or DEFAULTS.align]
    return " · ".join(parts)


def run_owner(run_owner_id: str | None, owner: str | None, shared: bool) -> str:
    """The runs table's owner cell: "you", "other", or "-" for a run started without an owner (the command line).

    On a private app the person at the keyboard started every run, whichever page or browser id did: a browser's id
    lasts only as long as the app that gave it (Gradio's BrowserState is sealed with a key made at each start), and
    every page may already stop, resume and delete any run (train.launcher.can_control)."""
    if not shared:
        return "you"
    if not run_owner_id:
        return "-"
    return "you" if run_owner_id == owner else "other"


def runs_table(ctx: AppContext, owner: str | None, infos: list[dict] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The runs this owner may see, as a table and their ids; `infos`: list_runs() already read, if any."""
    rows, ids = [], []
    for info in list_runs(ctx.launcher.root) if infos is None else infos:
        if not can_see(info, owner, ctx.launcher.shared):
            continue
        ids.append(info["id"])
        mine = run_owner(info["owner"], owner, ctx.launcher.shared)
        rows.append([info["id"], info["state"], f"{info['step']}/{info['max_steps']}", info["teacher"],
                     student_label(info), mine, "yes" if info["public"] else "no"])
    return pd.DataFrame(rows, columns=RUN_COLUMNS), ids


def run_to_open(ctx: AppContext, owner: str | None, infos: list[dict] | None = None) -> str | None:
    """The run a page shows as it opens: this owner's run training now (the newest, when several are), else their
    newest run, else None. Only runs the table marks "you" (run_owner) count, so a page on a shared app never opens on
    another visitor's run, shared or not; `infos`: list_runs() already read, if any."""
    shared = ctx.launcher.shared
    mine = [info for info in (list_runs(ctx.launcher.root) if infos is None else infos)
            if can_see(info, owner, shared) and run_owner(info["owner"], owner, shared) == "you"]
    training = [info for info in mine if info["state"] == "running"]
    return (training or mine)[0]["id"] if mine else None


# -- handlers: each takes the app's context first, then the event's inputs

def start_notice(run_id: str, position: int, busy: bool, seconds: float | None, settings: str,
                 defaults: str = "") -> str:
    """What Start run tells its owner: starting now, or its place in line (`position`, 1 for the next to start; 0: not
    waiting) when the runs ahead of it or a run in progress (`busy`: every place to run is taken) hold it back; then
    the time (`seconds`, the run's estimate) counts from its start. `settings`: settings_line of the run; `defaults`:
    defaults_sentence of the boxes left empty."""
    if position and (position > 1 or busy):
        before = "the run queued before it has" if position == 2 else f"the {position - 1} runs queued before it have"
        ahead = "the run in progress finishes" if position == 1 else f"{before} run"
        where = f"Run {run_id} is in line (place {position}): it starts when {ahead}."
        about = f" Once started, it should take about {format_seconds(seconds)}." if seconds else ""
    else:
        where = f"Run {run_id} is starting."
        about = f" It should take about {format_seconds(seconds)}." if seconds else ""
    return f"{where} {settings}.{' ' + defaults if defaults else ''}{about}"


def start_run(ctx: AppContext, owner: str | None, settings: RunSettings):
    """Queue a run; returns the owner id, the run list with the new run chosen, and the runs table."""
    owner_id = owner_token(owner)
    teacher = ctx.check_name(settings.teacher)
    line = ctx.offline_line(teacher)
    if line:
        raise ValueError(line)
    upload = settings.uploaded_corpus()
    try:  # the run's checks name its flags; the page names the form's fields
        cfg = settings.config(teacher)
        if upload:
            check_upload_readable(ctx, upload, teacher)
        ctx.launcher.start()
        run_id = ctx.launcher.submit(cfg, owner=owner_id, public=bool(settings.share), uploaded_corpus=upload,
                                     uploaded_name=Path(upload).name if upload else None, limits=ctx.run_limits(),
                                     session=session_id())
    except ValueError as error:
        raise ValueError(in_form_words(error_message(error))) from None
    runs = list_runs(ctx.launcher.root)
    busy = sum(r["state"] == "running" for r in runs) >= ctx.launcher.max_running
    gr.Info(start_notice(run_id, ctx.launcher.queue_position(run_id, runs), busy,
                         read_status(run_dir_of(run_id, ctx.launcher.root)).get("estimated_s"), settings_line(cfg),
                         defaults_sentence(defaults_taken(settings, cfg))))
    table, ids = runs_table(ctx, owner_id, runs)  # the runs already read for the notice
    return owner_id, gr.Dropdown(choices=ids, value=run_id), table


def start_run_from_form(ctx: AppContext, owner: str | None = None, **form):
    """/start_run: `owner`, then the form's inputs by keyword (RunSettings' fields)."""
    return start_run(ctx, owner, RunSettings(**form))


# Gradio names /start_run's API parameters, and makes them optional for gradio_client callers, from the handler's
# signature: list RunSettings' fields there, each defaulting to None.
start_run_from_form.__signature__ = inspect.Signature(
    [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD),
     inspect.Parameter("owner", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None)]
    + [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=None) for f in fields(RunSettings)])


def start_line(ctx: AppContext, run_id: str | None, **form) -> str:
    """The line under Start run once a run has started (the run chosen, `run_id`, and the form's inputs by keyword, as
    they were pressed): its settings and each box left empty with the value it took (defaults_taken), kept until the
    next Start where Start's notice fades in seconds. Empty when the form no longer reads as a run's settings."""
    settings = RunSettings(**form)
    try:
        cfg = settings.config(ctx.check_name(settings.teacher))
    except ValueError:
        return ""
    return markdown_text(f"Run {run_id}: {settings_line(cfg)}. {defaults_sentence(defaults_taken(settings, cfg))}"
                         .strip())


def refusal_line(refused: str | None) -> str:
    """The status line's first line while Start's last press was refused: its sentence, shown as written."""
    return f"**Start run refused:** {markdown_text(refused)}  \n" if refused else ""


def show_run(ctx: AppContext, run_id: str | None, owner: str | None, notice: str | None = None,
             refused: str | None = None, choose: bool = False):
    """The runs table, the run list, and the chosen run's progress line, curves, console and sharing. No run chosen,
    or one no longer among those this owner can see (deleted): the list's choice is cleared, so that nothing keeps
    asking for it, and the line is `notice` (what the last action did, such as "Deleted run ...") or says so, and
    says there are no runs when this owner can see none. `refused`: the sentence Start was last refused with, put
    first on the line (refusal_line); `choose`: the list is set to `run_id` (a run the handler chose, such as the
    one shown after Delete)."""
    infos = list_runs(ctx.launcher.root)  # read once: the table, the chosen run and the queue use it
    table, ids = runs_table(ctx, owner, infos)
    if not run_id or run_id not in ids:
        # only a choice that is gone is cleared: a tick begun before Start must not undo the choice of the new run
        dropdown = gr.Dropdown(choices=ids, value=None) if run_id or choose else gr.Dropdown(choices=ids)
        if ids:
            line = notice or "No run selected."
        else:
            line = f"{notice} {NO_RUNS}" if notice else NO_RUNS
        return table, dropdown, refusal_line(refused) + line, loss_figure([], run_chosen=False), \
            eval_figure([], run_chosen=False), "", False
    run_dir = run_dir_of(run_id, ctx.launcher.root)
    info, records = next(i for i in infos if i["id"] == run_id), read_metrics(run_dir)
    if info.get("message"):  # the run's own words name flags; the page names the form's fields
        info = {**info, "message": in_form_words(info["message"])}
    console = read_console(run_dir)
    line = progress_line(info, records, ctx.launcher.queue_position(run_id, infos), console)
    dropdown = gr.Dropdown(choices=ids, value=run_id) if choose else gr.Dropdown(choices=ids)
    return (table, dropdown, refusal_line(refused) + line, loss_figure(records), eval_figure(records), console,
            info["public"])


def open_run(ctx: AppContext, owner: str | None):
    """The run list as a page opens, on the run that matters to its visitor (run_to_open), and that run's guesses at
    its newest evaluated step (follow_guesses' outputs). Choosing the run fills the progress line, the curves and the
    console, as a person's choice does. The guesses come in the same update as the choice: a refresh of them begun
    later then reads the slider on the run's newest step, never the empty slider of before, which it would take for
    a step the person moved back to."""
    infos = list_runs(ctx.launcher.root)
    _, ids = runs_table(ctx, owner, infos)
    run_id = run_to_open(ctx, owner, infos)
    return gr.Dropdown(choices=ids, value=run_id), *follow_guesses(ctx, run_id, owner)


def stop_button(ctx: AppContext, run_id: str | None, owner: str | None) -> gr.Button:
    """Stop is active only while the chosen run is queued or running."""
    infos = [i for i in list_runs(ctx.launcher.root) if i["id"] == run_id and can_see(i, owner, ctx.launcher.shared)]
    return gr.Button(interactive=bool(infos) and infos[0]["state"] in ACTIVE_STATES)


def watch(ctx: AppContext, run_id: str | None, owner: str | None, notice: str | None = None,
          refused: str | None = None):
    """The timer's refresh: show_run's outputs and the Stop button's state."""
    return *show_run(ctx, run_id, owner, notice, refused), stop_button(ctx, run_id, owner)


def chosen(run_id: str | None) -> str:
    """The chosen run's id; ValueError with what to do when none is chosen."""
    if not run_id:
        raise ValueError(NO_RUN_CHOSEN)
    return run_id


def stop_run(ctx: AppContext, run_id: str | None, owner: str | None):
    """Stop the chosen run (it saves a checkpoint and ends) and show it. ValueError: no run chosen, one this owner
    cannot see (deleted), not its owner, or a run not queued or running."""
    gr.Info(ctx.launcher.stop(visible_run_dir(ctx, run_id, owner).name, owner))
    return show_run(ctx, run_id, owner)


def resume_run(ctx: AppContext, run_id: str | None, owner: str | None, up_to_step: int | None = None):
    """Queue the chosen run again from its last checkpoint, up to `up_to_step` (0 or None: its own steps)."""
    up_to = whole_number(up_to_step, "Resume up to step", 0, MAX_STEPS) if up_to_step is not None else 0
    ctx.launcher.start()
    try:  # the run's checks name its flags; the page names the form's fields
        line = ctx.launcher.resume(visible_run_dir(ctx, run_id, owner).name, owner, up_to or None,
                                   limits=ctx.run_limits(), session=session_id())
    except ValueError as error:
        raise ValueError(in_form_words(error_message(error))) from None
    gr.Info(line)
    return show_run(ctx, run_id, owner)


def delete_run(ctx: AppContext, run_id: str | None, owner: str | None):
    """Delete the chosen run, waiting a few seconds for one that is stopping (see RunLauncher.delete); show_run's
    outputs for the newest run left that this owner can see, chosen in the list, its line after the deletion's (none
    left: no run chosen, and the line saying the run was deleted and that there are no runs), then the deletion's line
    for the tab's notice (the line the status shows while no run is chosen)."""
    line = ctx.launcher.delete(check_deletable(ctx, run_id, owner).name, owner)
    gr.Info(line)  # the run list and status line change too, but a toast says it where the eye already is
    _, ids = runs_table(ctx, owner)  # newest first, as list_runs gives them
    shown = list(show_run(ctx, ids[0] if ids else None, owner, line, choose=True))
    if ids:  # the run now shown has its own line: the deletion's goes first, until the next redraw
        shown[2] = f"{line}  \n{shown[2]}"
    return *shown, line


def check_deletable(ctx: AppContext, run_id: str | None, owner: str | None) -> Path:
    """The chosen run's directory when this owner may delete it now; ValueError saying why not, and what to do: no
    run chosen, one this owner cannot see, another's run, or a run queued or running and not asked to stop (a run
    stopping is waited for by the deletion, RunLauncher.delete)."""
    run_dir = visible_run_dir(ctx, run_id, owner)
    status = read_status(run_dir)
    if not can_control({**status, "id": run_dir.name}, owner, ctx.launcher.shared):
        raise ValueError("This run belongs to another session: only the person who started it can delete it.")
    refusal = deletion_refusal(run_dir.name, status)
    if refusal:
        raise ValueError(refusal)
    return run_dir


def ask_to_delete(ctx: AppContext, run_id: str | None, owner: str | None) -> tuple[gr.Button, gr.Button, gr.Button]:
    """Delete's first press: the confirmation (ask_delete) for a run that can be deleted now, else at once the
    sentence saying why not and what to do (check_deletable), before anything is confirmed."""
    return ask_delete(check_deletable(ctx, run_id, owner).name)


def ask_delete(run_id: str | None) -> tuple[gr.Button, gr.Button, gr.Button]:
    """The page's first Delete press: Delete gives way to a button naming the run to delete for good, and Keep it.
    Deleting cannot be undone, and a class's runs sit side by side in one list."""
    return (gr.Button(visible=False), gr.Button(f"Delete {chosen(run_id)} for good", visible=True),
            gr.Button(visible=True))


def keep_run() -> tuple[gr.Button, gr.Button, gr.Button]:
    """Delete back in place of the confirmation (confirmed, kept, or another run chosen)."""
    return gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)


def unstarted_runs(ctx: AppContext, owner: str | None, infos: list[dict] | None = None) -> list[str]:
    """Ids of the runs this owner may delete that were stopped before their first step (no step done, no checkpoint,
    no student): what each Start then Stop leaves behind. Never a queued or running run, nor on a shared app another
    visitor's (train.launcher.can_control); `infos`: list_runs() already read, if any."""
    return [info["id"] for info in (list_runs(ctx.launcher.root) if infos is None else infos)
            if info["state"] == "stopped" and not info.get("step") and not info.get("checkpoint")
            and not info.get("final") and can_control(info, owner, ctx.launcher.shared)]


def unstarted_words(number: int) -> str:
    """"3 runs stopped before their first step", "1 run stopped before its first step"."""
    return f"{count(number, 'run')} stopped before {'its' if number == 1 else 'their'} first step"


def ask_to_delete_unstarted(ctx: AppContext, owner: str | None):
    """The first press of 'Delete runs stopped before step 1': the confirmation naming how many (the runs counted
    now, kept for the confirming press), and Keep them. With none, a notice says so and the buttons stay."""
    ids = unstarted_runs(ctx, owner)
    if not ids:
        gr.Info("None of your runs was stopped before its first step: there is nothing to delete.")
        return (*keep_unstarted(), None)
    return (gr.Button(visible=False), gr.Button(f"Delete {unstarted_words(len(ids))} for good", visible=True),
            gr.Button(visible=True), ids)


def keep_unstarted() -> tuple[gr.Button, gr.Button, gr.Button]:
    """'Delete runs stopped before step 1' back in place of its confirmation."""
    return gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)


def delete_unstarted(ctx: AppContext, run_id: str | None, owner: str | None, run_ids: list[str] | None = None):
    """/delete_unstarted_runs: delete this owner's runs stopped before their first step (unstarted_runs): those of
    `run_ids` (the ones the confirmation counted) that still are, or every such run when `run_ids` is None. Returns
    show_run's outputs, the run `run_id` still chosen unless it was deleted (then the newest run left), with the
    deletion's line first, then that line for the tab's notice. ValueError when there is none to delete."""
    if run_ids is not None and not (isinstance(run_ids, list) and all(isinstance(i, str) for i in run_ids)):
        raise ValueError(f"The runs to delete are a list of run ids; got {shown(run_ids)}.")
    ids = unstarted_runs(ctx, owner)
    ids = ids if run_ids is None else [i for i in ids if i in run_ids]  # one resumed since it was counted stays
    if not ids:
        raise ValueError("None of your runs is stopped before its first step now: nothing was deleted.")
    deleted, refusals = [], []
    for each in ids:
        try:
            ctx.launcher.delete(each, owner)
            deleted.append(each)
        except ValueError as error:  # its process still exiting, say: the others go on
            refusals.append(error_message(error))
    if not deleted:
        raise ValueError(refusals[0])
    line = f"Deleted {unstarted_words(len(deleted))}."
    if refusals:
        line += f" {count(len(refusals), 'run')} could not be deleted: {refusals[0]}"
    gr.Info(line)
    _, visible = runs_table(ctx, owner)
    keep = run_id if run_id in visible else (visible[0] if visible else None)
    outputs = list(show_run(ctx, keep, owner, line, choose=True))
    if keep:  # the run shown has its own line: the deletion's goes first, until the next redraw
        outputs[2] = f"{line}  \n{outputs[2]}"
    return *outputs, line


def share_run(ctx: AppContext, run_id: str | None, owner: str | None, shared: bool) -> str:
    """Make the chosen run visible (and its student usable) to everyone, or private again; returns the new line."""
    ctx.launcher.set_public(visible_run_dir(ctx, run_id, owner).name, owner, bool(shared))
    return f"Run {run_id} is {'shared with everyone' if shared else 'private'}."


def visible_run_dir(ctx: AppContext, run_id: str | None, owner: str | None) -> Path:
    """The chosen run's directory; ValueError when none is chosen, it does not exist (deleted, or an id typed wrong),
    or this owner may not see it."""
    try:
        run_dir = run_dir_of(chosen(run_id), ctx.launcher.root)
    except ValueError:
        if not run_id:
            raise
        run_dir = None  # an id no run can have (a slash, 300 characters): there is no such run, as for any other
    if run_dir is None or not run_dir.is_dir() or not can_see(run_info(run_dir), owner, ctx.launcher.shared):
        raise ValueError(f"There is no run {quoted_id(run_id)} among the runs you can see; choose one in the 'Run "
                         "shown below' list.")
    return run_dir


@dataclass
class GuessView:
    """What the guesses table last showed: the run, and the newest evaluated step it offered. A slider left on that
    newest step follows the run to its next evaluation; one moved back stays where it was put."""
    run_id: str | None = None
    newest: int | None = None


def run_guesses(ctx: AppContext, run_id: str | None, owner: str | None, step: float | None = None,
                view: GuessView | None = None, exact: bool = False):
    """The probe sentences with the teacher's and the student's top-3 guesses at the evaluated step nearest at or
    before `step` (None: the newest), a mark where their first guesses agree; the slider over the evaluated steps;
    the new GuessView. An empty table while nothing is evaluated or no run is chosen.

    exact: `step` is what was asked for (the slider released there, an API call); otherwise it is the slider's
    value as the page last drew it, and the newest step is shown when the slider was left on the newest step or
    belonged to another run (GuessView)."""
    empty = guess_table([])
    # the slider's bounds are the run's evaluated steps: any number is answered with the nearest of them
    step = None if step is None else real_number(step, "The step")
    if not run_id:
        return empty, gr.Slider(interactive=False, label=GUESS_LABEL), GuessView()
    history = read_guesses(visible_run_dir(ctx, run_id, owner))
    steps = history.steps
    if not steps:
        return empty, gr.Slider(0, 1, value=0, interactive=False, label=GUESS_LABEL), GuessView(run_id)
    view = view or GuessView()
    follow = step is None or (not exact and (view.run_id != run_id or view.newest is None or step >= view.newest))
    shown = steps[-1] if follow else history.nearest_step(step)
    slider = gr.Slider(steps[0], max(steps[-1], steps[0] + 1), value=shown, step=1, interactive=len(steps) > 1,
                       label=f"{GUESS_LABEL}: step {shown} (evaluated: {', '.join(map(str, steps))})")
    return guess_table(history.rows(shown)), slider, GuessView(run_id, steps[-1])


def guess_table(rows: list[dict]) -> pd.DataFrame:
    """GuessHistory.rows as the page shows them, under GUESS_HEADERS."""
    return pd.DataFrame([[row[c] for c in GUESS_COLUMNS] for row in rows], columns=GUESS_HEADERS)


def guesses_at(ctx: AppContext, run_id: str | None, owner: str | None, step: float | None = None,
               view: GuessView | None = None):
    """/run_guesses: the guesses at the evaluated step nearest at or before `step` (0: the untrained student; None:
    the newest); see run_guesses."""
    return run_guesses(ctx, run_id, owner, step, view, exact=True)


def follow_guesses(ctx: AppContext, run_id: str | None, owner: str | None, step: float | None = None,
                   view: GuessView | None = None):
    """The refresh of the guesses after each tick of the timer and each change of the chosen run: run_guesses, and
    for a run no longer among those this owner can see (deleted a moment ago, say) an empty table, not an error
    every two seconds."""
    try:
        visible_run_dir(ctx, run_id, owner)
    except ValueError:
        run_id = None
    return run_guesses(ctx, run_id, owner, step, view)


def download_folder() -> Path:
    """A fresh folder under the system's temporary folder, which Gradio serves files from."""
    return Path(tempfile.mkdtemp(prefix="rudistil-run-"))


def metrics_csv(ctx: AppContext, run_id: str | None, owner: str | None) -> str:
    """/run_metrics_csv: the chosen run's metrics, one row a logged step and one column a field, as a CSV file."""
    return str(write_metrics_csv(visible_run_dir(ctx, run_id, owner), download_folder()))


def student_zip(ctx: AppContext, run_id: str | None, owner: str | None) -> str:
    """/run_student_zip: the chosen run's student (final when finished, else its newest checkpoint) as a zip of a
    Hugging Face model folder with its tokenizer."""
    return str(write_student_zip(visible_run_dir(ctx, run_id, owner), download_folder()))


EXPORT_FORMATS = {"onnx": "ONNX Runtime", "openvino": "OpenVINO"}


def export_formats() -> list[str]:
    """The export formats whose runtime is installed here."""
    return [f for f in EXPORT_FORMATS if not why_not(mode_of(f, False))]


def export_run(ctx: AppContext, run_id: str | None, owner: str | None, fmt: str | None = "onnx",
               int8: bool | None = False) -> tuple[str, str]:
    """/export_run: export the chosen finished run's student for ONNX Runtime or OpenVINO (as `python -m
    train.export`) into the run's exports; returns the line of its measured size, speed and agreement, and the
    folder as a zip. ValueError: no run chosen, a run not finished, a format not installed here."""
    run_dir = visible_run_dir(ctx, run_id, owner)
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Choose the format to export to: onnx or openvino, not {shown(fmt)}.")
    if not (RunPaths(run_dir).final / "config.json").is_file():
        raise ValueError(not_finished_message(run_info(run_dir)))
    folder = run_exports(run_dir) / export_name(fmt, bool(int8))
    try:
        report = export_model(str(run_dir), fmt, bool(int8), folder, label=f"run:{run_id}")
    except ValueError as error:  # the page names runs by id, never by the server's folders
        raise ValueError(without_server_paths(run_dir, str(error))) from None
    archive = shutil.make_archive(str(download_folder() / f"{run_id}-{folder.name}"), "zip", folder.parent, folder.name)
    line = (f"Exported run {run_id} for {EXPORT_FORMATS[fmt]}: {export_summary(report)}. The Predictions tab can run "
            "it beside the PyTorch student.")
    return markdown_text(line), archive


def not_finished_message(info: dict) -> str:
    """Why a run_info() row's student is not exported (only a finished run's is), and what to do by its state: a
    queued or running run will finish, so wait; a stopped, failed or damaged one finishes only if resumed. The
    newest checkpoint is offered as a zip only when there is one."""
    zip_offer = ", or download its newest checkpoint as a zip" if info.get("checkpoint") else ""
    if info["state"] in ACTIVE_STATES:
        return (f"Run {info['id']} has not finished: only a finished run's student is exported; wait for it to "
                f"finish{zip_offer}.")
    return (f"Run {info['id']} is {info['state']}, not finished: only a finished run's student is exported; resume "
            f"it to its last step{zip_offer}.")


def export_started(run_id: str | None, fmt: str | None, int8: bool | None) -> str:
    """The line under Export while it works: what is exported, and what takes the time. Empty when there is nothing
    to export; the export's own sentence then says why."""
    if not run_id or fmt not in EXPORT_FORMATS:
        return ""
    weights = " with int8 weights" if int8 else ""
    return markdown_text(f"Exporting run {run_id} for {EXPORT_FORMATS[fmt]}{weights}: converting its student, then "
                         "measuring its size, speed and agreement …")


def export_controls() -> dict:
    """Export for ONNX Runtime / OpenVINO: format, int8, the button and the line reporting what was measured."""
    formats = export_formats()
    with gr.Accordion("Export for ONNX Runtime / OpenVINO", open=False, elem_id="distill-export-group"):
        gr.Markdown("Export the chosen finished run's student to a folder that ONNX Runtime or OpenVINO runs without "
                    "the lab (tokenizer and a README with its measured size, speed and agreement inside); the same as "
                    "`python -m train.export run:RUN_ID --format onnx --output DIR`.")
        with gr.Row():
            fmt = CheckedRadio(formats, value=formats[0] if formats else None, label="Format",
                           elem_id="distill-export-format",
                           info="only runtimes installed here" if formats else "neither runtime is installed here")
            int8 = gr.Checkbox(False, label="int8 weights", info="ONNX Runtime dynamic quantisation, or NNCF weight "
                                                                 "compression for OpenVINO")
        button = gr.Button("Export student", elem_id="distill-export", interactive=bool(formats))
        result = gr.Markdown(label="export message", show_label=False, elem_id="distill-exported")
        file = gr.File(label="Exported student (zip)", interactive=False, elem_id="distill-export-file")
    return {"format": fmt, "int8": int8, "button": button, "result": result, "file": file}


def publish_token() -> str | None:
    """The token the app publishes with: HF_TOKEN of its environment. Without one the tab has no Publish control."""
    return os.environ.get("HF_TOKEN", "").strip() or None


def publish_run(ctx: AppContext, run_id: str | None, owner: str | None, repo_id: str | None,
                private: bool | None = False) -> str:
    """/publish_run: push the chosen run's student (a run that has not finished: its newest readable checkpoint's),
    its tokenizer and its model card to the Hub repository `repo_id` (owner/name) with the app's token, through
    train.publish.publish; returns the line saying where, and which checkpoint for an unfinished run.

    ValueError: a shared app (its token would write to any repository for every visitor), no run chosen, a run
    without a readable student, a malformed repository id, no token, or a Hub that cannot be reached or refuses."""
    if ctx.launcher.shared:
        raise ValueError("Publishing is turned off on a shared app, where the app's token would write for every "
                         "visitor; download the student (zip) and publish it with python -m train.publish.")
    run_dir = visible_run_dir(ctx, run_id, owner)
    token = publish_token()
    if not token:
        raise ValueError("Publishing needs a Hugging Face token with write access: set HF_TOKEN where the app runs "
                         "and restart it.")
    try:
        result = publish(run_dir, repo_id or "", token=token, private=bool(private))
    except ValueError as error:  # the page names runs by id, never by the server's folders
        raise ValueError(without_server_paths(run_dir, str(error))) from None
    return markdown_text(f"Published run {run_id} to {result.url}" + (f". {result.note}" if result.note else ""))


def checked_teacher(ctx: AppContext, name) -> tuple[str | None, str]:
    """The teacher `name` checked as Start run checks it: the name as AppContext.check_name gives it (None when it
    refuses it), and the sentence Start run would refuse it with ("" when it can be used). A Hub model out of reach
    keeps its name: its depth may still be known (known_teacher_depth)."""
    try:
        name = ctx.check_name(name)
    except ValueError as error:
        return None, error_message(error)
    return name, ctx.offline_line(name, checked=True)


def teacher_note(line: str) -> gr.Markdown:
    """The line under the teacher box: why the teacher cannot be used, shown only then."""
    return gr.Markdown(markdown_text(line), visible=bool(line))


def teacher_changed(ctx: AppContext, name) -> tuple[gr.Number, gr.Markdown]:
    """The student's depth follows the teacher's: half of its layers, the box's line naming the range; the line under
    the teacher box saying why it cannot be used, if so. Nothing is raised: Start run refuses such a teacher, in one
    notice. A teacher whose depth cannot be read leaves the box's number as it was."""
    name, line = checked_teacher(ctx, name)
    depth = known_teacher_depth(name) if name else None
    box = gr.Number(info=layers_info(name)) if depth is None else \
        gr.Number(value=max(1, depth // 2), info=layers_info(name))
    return box, teacher_note(line)


def layers_typed(ctx: AppContext, name, layers) -> gr.Number:
    """The Student layers box's line once a number is typed: the range, or the sentence Start run would refuse it
    with; the number stays as typed."""
    try:
        name = ctx.check_name(name)  # on a Space, a name it refuses is never read
    except ValueError:
        name = None
    return gr.Number(info=layers_info(name, layers))


def refresh_lists(ctx: AppContext) -> gr.Dropdown:
    """The teacher list as it is now: runs that finished since the page was built are in it."""
    return gr.Dropdown(choices=ctx.model_choices())


def checked_owner(owner) -> str | None:
    """The browser's id as a handler may use it: None (a browser new to the app) or a short text; ValueError for
    anything else, which would otherwise be written into a run's status (an API caller can send any value)."""
    if owner is None or (isinstance(owner, str) and 0 < len(owner) <= MAX_OWNER_CHARS and owner.isprintable()):
        return owner
    raise ValueError(f"The owner must be the id this app gave your browser: a text of 1 to {MAX_OWNER_CHARS} "
                     "characters, or nothing for a new one.")


def keep_refusal(errors: ErrorLines, fn):
    """Start's handler `fn` with the sentence it is refused with kept under the asking session (session_id), for
    take_refusal to put on the status line once the toast has gone. The signature stays fn's: the API keeps its
    parameter names."""
    @wraps(fn)
    def kept(*args, **kwargs):
        with errors.kept(("start", session_id())):
            return fn(*args, **kwargs)
    return kept


def take_refusal(errors: ErrorLines) -> str:
    """The sentence this session's last Start was refused with (keep_refusal); "" when there is none."""
    return errors.take(("start", session_id()))


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
        @wraps(fn)
        def said_once(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except ValueError as error:  # gr.Error too
                message = error_message(error)
                raise gr.Error(page_text(message), visible=self.first(message), print_exception=False) from None
        return said_once


def refused_file(errors: ErrorLines, what: str, action: str):
    """The listener for the .failure() of an action that makes a file (a download, an export): given the action's
    inputs, the line saying `what` failed and why (ErrorLines.failure), and its file box emptied, so that no file of
    an earlier press is offered as this one's."""
    line = errors.failure(what, action)

    def refused(*inputs):
        return line(*inputs), None
    return refused


def handler(fn, ctx: AppContext):
    """fn with the context bound, its `owner` checked (checked_owner); user mistakes (ValueError) reach the page as
    one sentence."""
    bound = partial(fn, ctx)
    signature = inspect.signature(bound)  # once: the page's timer calls some handlers every second
    if "owner" not in signature.parameters:
        return user_errors(bound)

    @wraps(bound)
    def with_checked_owner(*args, **kwargs):
        given = signature.bind_partial(*args, **kwargs).arguments
        checked_owner(given.get("owner"))
        return bound(*args, **kwargs)

    return user_errors(with_checked_owner)


# -- layout and wiring

def build(ctx: AppContext) -> dict:
    """The tab's layout and events; returns its main components, "refresh": (function, outputs) for the app to run
    when the page loads and when the tab is opened, and "load": (function, inputs, outputs) for it to run when the
    page loads."""
    owner = gr.BrowserState(None, storage_key="rudistil-owner")
    gr.Markdown("Distil a smaller student from a teacher, live. The run is the same `python -m train.distill` command "
                "you can type in a terminal; it keeps going if you close the page, and stops cleanly when asked.")
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            corpus_note = gr.Markdown("", visible=False, render=False, label="corpus file check",
                                      show_label=False, elem_id="distill-corpus-note")
            # why the teacher chosen cannot be used, said as it is chosen; Start run's refusal is the one notice
            teacher_check = gr.Markdown("", visible=False, render=False, label="teacher check", show_label=False,
                                        elem_id="distill-teacher-note")
            form = settings_form(ctx, corpus_note, teacher_check)
            start = gr.Button("Start run", variant="primary", elem_id="distill-start")
            # what the last Start asked for, the values of boxes left empty included: its notice fades in seconds
            start_note = gr.Markdown("", label="start message", show_label=False, elem_id="distill-start-note")
        with gr.Column(scale=3, min_width=420):
            table, ids = runs_table(ctx, None)
            runs = gr.Dataframe(table, label="Runs", interactive=False, max_height=RUNS_TABLE_PX, wrap=True,
                                column_widths=RUN_COLUMN_WIDTHS, elem_id="distill-runs")
            # no run chosen until the page opens: which run is the visitor's is known only then (open_run)
            selected = gr.Dropdown(ids, value=None, label="Run shown below", allow_custom_value=True,
                                   elem_id="distill-run-shown",
                                   info="Pick a run to watch. The page opens on your run in training, else your "
                                        "newest; a new run is chosen as it starts.")
            status = gr.Markdown("No run selected.", label="run status", show_label=False, elem_id="run-status")
            with gr.Row():
                stop = gr.Button("Stop", variant="stop", elem_id="distill-stop", interactive=False)
                resume = gr.Button("Resume")
                more_steps = CheckedNumber(0, precision=0, label="Resume up to step", min_width=120,
                                       placeholder="0",
                                       info="0 keeps the run's own number of steps; more lays the learning-rate "
                                            "schedule over the new length (the rate goes back up).")
            share_selected = gr.Checkbox(False, label="Shared", info="Everyone may see this run and use its student.")
            # a row of their own, as wide as their words (the confirmation names the run): the confirmation and Keep
            # it side by side
            with gr.Row():
                delete = gr.Button("Delete", scale=0, elem_id="distill-delete")
                confirm_delete = gr.Button("Delete for good", variant="stop", visible=False, scale=0, min_width=400,
                                           elem_id="distill-delete-confirm")
                keep = gr.Button("Keep it", visible=False, scale=0, elem_id="distill-delete-keep")
            # each Start then Stop leaves a run with no step done: they go in one confirmed press, not one by one
            with gr.Row():
                clear = gr.Button("Delete runs stopped before step 1", scale=0, min_width=320,  # one line of words
                                  elem_id="distill-delete-unstarted")
                confirm_clear = gr.Button("Delete for good", variant="stop", visible=False, scale=0, min_width=400,
                                          elem_id="distill-delete-unstarted-confirm")
                keep_all = gr.Button("Keep them", visible=False, scale=0, elem_id="distill-delete-unstarted-keep")
            unstarted = gr.State(None)  # the runs the confirmation counted
            losses_plot = gr.Plot(loss_figure([], run_chosen=False), label="Losses", elem_id="distill-losses")
            eval_plot = gr.Plot(eval_figure([], run_chosen=False), label="Agreement and accuracy",
                                elem_id="distill-eval")
            with gr.Accordion("What did the student learn? Its guesses on probe sentences", open=True):
                gr.Markdown("The teacher's and the student's three best words for each [MASK], at each evaluation "
                            "(step 0 is the student before training); ✓ where their first guesses agree.")
                guess_step = CheckedSlider(0, 1, value=0, step=1, interactive=False, label=GUESS_LABEL,
                                       elem_id="distill-guess-step")
                guesses = gr.Dataframe(guess_table([]), interactive=False, wrap=True, max_height=1200,  # all 8 rows
                                       column_widths=GUESS_COLUMN_WIDTHS, label="guesses at the chosen step",
                                       show_label=False, elem_id="distill-guesses")
            guess_view = gr.State(GuessView())
            notice = gr.State("")  # the status line while no run is chosen: what the last Delete did
            with gr.Row():
                get_metrics = gr.Button("Download metrics (CSV)", elem_id="distill-metrics-csv")
                get_student = gr.Button("Download student (zip)", elem_id="distill-student-zip")
            # a download's refusal stays under the buttons pressed; each file has a box of its own, so fetching the
            # student leaves the metrics fetched before it in view
            downloaded = gr.Markdown("", label="download message", show_label=False, elem_id="distill-downloaded")
            with gr.Row():
                metrics_file = gr.File(label="Metrics (CSV)", interactive=False, elem_id="distill-metrics-file")
                student_file = gr.File(label="Student (zip)", interactive=False, elem_id="distill-student-file")
            exporting = export_controls()
            # a shared app's token would publish for every visitor, to any repository it may write to
            publishing = publish_controls() if publish_token() and not ctx.launcher.shared else None
            with gr.Accordion("Console output", open=False):
                console = gr.Code(label="console.log (last lines)", language=None, lines=12)
    timer = gr.Timer(2.0)

    form["corpus_source"].change(show_corpus_file, form["corpus_source"], [form["corpus_file"], corpus_note],
                                 api_visibility="private")
    # a file that is not text is told as it arrives, not only once Start run is pressed
    # the share of unknown tokens depends on the teacher: the line is said again when the teacher changes
    for changed in (form["corpus_file"], form["teacher"]):
        changed.change(partial(corpus_note_line, ctx), [form["corpus_file"], form["teacher"]], corpus_note,
                       api_visibility="private", show_progress="hidden")
    form["teacher"].change(handler(teacher_changed, ctx), form["teacher"], [form["student_layers"], teacher_check],
                           api_visibility="private", show_progress="hidden")
    # outside the queue: the line answers each key at once, never behind a run's start or the timer's redraws
    form["student_layers"].input(handler(layers_typed, ctx), [form["teacher"], form["student_layers"]],
                                 form["student_layers"], api_visibility="private", show_progress="hidden",
                                 queue=False)
    watch_outputs = [runs, selected, status, losses_plot, eval_plot, console, share_selected]
    # A refused Start leaves its sentence first on the status line, which the timer redraws, until Start next
    # succeeds: its toast fades in seconds, and a person who looked away would not know why nothing happened.
    refused = gr.State("")
    start_errors = ErrorLines()
    notices = Notices()  # every action's refusal: one notice of a sentence at a time
    started = start.click(notices.once(keep_refusal(start_errors, handler(start_run_from_form, ctx))), [owner],
                          [owner, selected, runs], inputs_kwargs=form, api_name="start_run", concurrency_limit=1)
    started.success(lambda: "", None, refused, api_visibility="private", queue=False)
    started.failure(partial(take_refusal, start_errors), None, refused, api_visibility="private", queue=False).then(
        handler(watch, ctx), [selected, owner, notice, refused], [*watch_outputs, stop], show_progress="hidden",
        api_visibility="private")
    # the line under Start: the run now chosen, and the form as it was pressed; a refusal is the status line's
    started.success(handler(start_line, ctx), [selected], start_note, inputs_kwargs=form, api_visibility="private",
                    show_progress="hidden")
    started.failure(lambda: "", None, start_note, api_visibility="private", queue=False)
    guess_io = dict(inputs=[selected, owner, guess_step, guess_view], outputs=[guesses, guess_step, guess_view],
                    show_progress="hidden")
    refresh_guesses = dict(fn=handler(follow_guesses, ctx), api_visibility="private", **guess_io)
    timer.tick(handler(watch, ctx), [selected, owner, notice, refused], [*watch_outputs, stop],
               show_progress="hidden", api_visibility="private").then(**refresh_guesses)
    follow_stop = dict(fn=handler(stop_button, ctx), inputs=[selected, owner], outputs=stop, api_visibility="private")
    selected.change(handler(show_run, ctx), [selected, owner, notice, refused], watch_outputs,
                    api_name="run_status").then(**follow_stop).then(**refresh_guesses)
    guess_step.release(notices.once(handler(guesses_at, ctx)), api_name="run_guesses", **guess_io)
    # the progress and a refusal on the line under the buttons, never on the file box, which stays empty and labelled
    fetches = ErrorLines()
    for button, fn, api_name, box in ((get_metrics, metrics_csv, "run_metrics_csv", metrics_file),
                                      (get_student, student_zip, "run_student_zip", student_file)):
        fetched = button.click(notices.once(fetches.wrap(api_name, handler(fn, ctx), 2)), [selected, owner], box,
                               api_name=api_name, show_progress_on=downloaded)
        fetched.success(lambda: "", None, downloaded, api_visibility="private", queue=False)
        fetched.failure(refused_file(fetches, button.value, api_name), [selected, owner], [downloaded, box],
                        api_visibility="private", show_progress="hidden")
    selected.change(lambda: "", None, downloaded, api_visibility="private", queue=False)  # it was the last run's
    stop.click(notices.once(handler(stop_run, ctx)), [selected, owner], watch_outputs,
               api_name="stop_run").then(**follow_stop)
    resume.click(notices.once(handler(resume_run, ctx)), [selected, owner, more_steps], watch_outputs,
                 api_name="resume_run").then(**follow_stop)
    # Delete asks first; the API's /delete_run is the confirming press, so a client deletes in one call as before
    deleting = [delete, confirm_delete, keep]
    # through the queue: the page shows no error of an event sent outside it, and a run still training is refused
    delete.click(notices.once(handler(ask_to_delete, ctx)), [selected, owner], deleting, api_visibility="private",
                 show_progress="hidden")
    keep.click(keep_run, None, deleting, api_visibility="private", queue=False)
    selected.change(keep_run, None, deleting, api_visibility="private", queue=False)
    deleted = confirm_delete.click(notices.once(handler(delete_run, ctx)), [selected, owner], [*watch_outputs, notice],
                                   api_name="delete_run", api_description=DELETE_HELP)
    deleted.then(**follow_stop)
    for ended in (deleted.then, deleted.failure):  # the page runs .then after a success only
        ended(keep_run, None, deleting, api_visibility="private", queue=False)
    clearing = [clear, confirm_clear, keep_all]
    clear.click(handler(ask_to_delete_unstarted, ctx), [owner], [*clearing, unstarted], api_visibility="private",
                show_progress="hidden")
    keep_all.click(keep_unstarted, None, clearing, api_visibility="private", queue=False)
    cleared = confirm_clear.click(notices.once(handler(delete_unstarted, ctx)), [selected, owner, unstarted],
                                  [*watch_outputs, notice], api_name="delete_unstarted_runs",
                                  api_description="Delete every run of yours stopped before its first step.")
    cleared.then(**follow_stop)
    for ended in (cleared.then, cleared.failure):
        ended(keep_unstarted, None, clearing, api_visibility="private", queue=False)
    share_selected.input(notices.once(handler(share_run, ctx)), [selected, owner, share_selected], status,
                         api_name="share_run")
    # An export takes a while: the line under its button says what is being done and carries the progress, which
    # would otherwise show on the file box above, away from where the person pressed; a failure stays there too.
    errors = ErrorLines()  # the failure stays in view under the button: the work can outlast its toast
    export_inputs = [selected, owner, exporting["format"], exporting["int8"]]
    exported = exporting["button"].click(export_started, export_inputs[:1] + export_inputs[2:], exporting["result"],
                                         api_visibility="private", queue=False, show_progress="hidden").then(
        notices.once(errors.wrap("export", handler(export_run, ctx), len(export_inputs))), export_inputs,
        [exporting["result"], exporting["file"]], api_name="export_run", concurrency_limit=1,
        show_progress_on=exporting["result"])
    exported.failure(refused_file(errors, "Export", "export"), export_inputs,
                     [exporting["result"], exporting["file"]], api_visibility="private", show_progress="hidden")
    if publishing is not None:
        publish_inputs = [selected, owner, publishing["repo_id"], publishing["private"]]
        published = publishing["button"].click(
            notices.once(errors.wrap("publish", handler(publish_run, ctx), len(publish_inputs))), publish_inputs,
            publishing["result"], api_name="publish_run", concurrency_limit=1)
        published.failure(errors.failure("Publishing", "publish"), publish_inputs, publishing["result"],
                          api_visibility="private", show_progress="hidden")
    # "load": the page opens on its visitor's run (the browser's id is read from its storage before load events
    # run), which the choice's change event then draws
    return {"start": start, "selected": selected, "status": status, "teacher": form["teacher"],
            "refresh": (handler(refresh_lists, ctx), [form["teacher"]]),
            "load": (handler(open_run, ctx), [owner], [selected, guesses, guess_step, guess_view])}


def publish_controls() -> dict:
    """The Publish to the Hub controls: repository id, private, the button and the line reporting the result."""
    with gr.Accordion("Publish to the Hub", open=False, elem_id="distill-publish-group"):
        gr.Markdown(PUBLISH_HELP)
        with gr.Row():
            repo_id = gr.Textbox(label="Repository id", placeholder="your-name/distilrubert-tiny", scale=3,
                                 elem_id="distill-publish-repo", info="owner/name on huggingface.co; created if new.")
            private = gr.Checkbox(False, label="Private", info="A new repository is private.", scale=1)
        button = gr.Button("Publish to the Hub", elem_id="distill-publish")
        result = gr.Markdown(elem_id="distill-published")
    return {"repo_id": repo_id, "private": private, "button": button, "result": result}


def default_text(value) -> str:
    """What an empty box of the form shows: the default the run then takes (RunSettings: None is the default), written
    as the line under Start names it (number_text)."""
    return f"{number_text(value)} (default)"


def settings_form(ctx: AppContext, corpus_note: gr.Markdown | None = None,
                  teacher_check: gr.Markdown | None = None) -> dict:
    """The run's settings as inputs, keyed by RunSettings' field names (the /start_run API parameters);
    `corpus_note` and `teacher_check` (made with render=False) are placed under the corpus box and the teacher box,
    where they are read."""
    form = {}
    form["teacher"] = gr.Dropdown(ctx.model_choices(), value=ctx.default_teacher, label="Teacher",
                                  allow_custom_value=True, elem_id="distill-teacher",
                                  info="The model to imitate: a known name, a run's student, or a Hub id.")
    if teacher_check is not None:
        teacher_check.render()
    depth = known_teacher_depth(ctx.default_teacher)
    # a number box: a slider moves a typed number into its range without a word; the box keeps what was typed, and
    # the line under it names the chosen teacher's range or the sentence Start run would refuse the number with
    form["student_layers"] = CheckedNumber(max(1, depth // 2) if depth else None, precision=0, minimum=1,
                                           label="Student layers", placeholder="half the teacher's layers",
                                           elem_id="distill-student-layers", info=layers_info(ctx.default_teacher))
    form["init_layers"] = gr.Textbox(label="Initialising teacher layers", placeholder="every k-th, e.g. 0,2",
                                     info="Teacher layers copied into the student, one per student layer; empty "
                                          "takes every k-th.")
    form["student_type"] = CheckedRadio(list(STUDENT_TYPES), value=DEFAULTS.student_type, label="Student architecture",
                                    info="DeepPavlov's students are DistilBERT (no token types, no pooler).")
    with gr.Group():
        form["corpus_source"] = CheckedRadio([BUNDLED, UPLOAD], value=BUNDLED, label="Corpus",
                                         info="One sample a line, UTF-8. The bundled corpus is the lab's own "
                                              "conversational Russian.")
        form["corpus_file"] = CheckedFile(label=f"Corpus file (.txt, UTF-8, one sample a line, at most "
                                                f"{MAX_UPLOAD_MB} MB)",
                                        file_types=[".txt"], type="filepath", visible=False,
                                        elem_id="distill-corpus-file")
        if corpus_note is not None:
            corpus_note.render()
    with gr.Row():
        form["steps"] = CheckedNumber(DEFAULTS.max_steps, precision=0, minimum=1, label="Steps",
                                      elem_id="distill-steps", placeholder=default_text(DEFAULTS.max_steps),
                                      info="Optimizer steps.")
        form["batch_size"] = CheckedNumber(DEFAULTS.batch_size, precision=0, minimum=1, label="Batch size",
                                           elem_id="distill-batch-size", placeholder=default_text(DEFAULTS.batch_size),
                                           info="Lines per step.")
        form["learning_rate"] = CheckedNumber(DEFAULTS.lr, label="Learning rate", placeholder=default_text(DEFAULTS.lr),
                                              info="Peak of AdamW, after 5% warm-up.")
    with gr.Row():
        form["temperature"] = CheckedNumber(LOSS_DEFAULTS.temperature, label="Temperature T",
                                            placeholder=default_text(LOSS_DEFAULTS.temperature),
                                        info="Softens both distributions in the KL term.")
        form["alpha_kl"] = CheckedNumber(LOSS_DEFAULTS.alpha_kl, label="α KL",
                                         placeholder=default_text(LOSS_DEFAULTS.alpha_kl),
                                         info="Weight of KL(teacher‖student)·T².")
        form["alpha_mlm"] = CheckedNumber(LOSS_DEFAULTS.alpha_mlm, label="α MLM",
                                          placeholder=default_text(LOSS_DEFAULTS.alpha_mlm),
                                      info="Weight of the student's own MLM loss.")
    with gr.Row():
        form["alpha_cos"] = CheckedNumber(LOSS_DEFAULTS.alpha_cos, label="α cosine",
                                          placeholder=default_text(LOSS_DEFAULTS.alpha_cos),
                                      info="Weight of 1−cos(student layer, mean of k teacher layers).")
        form["alpha_att"] = CheckedNumber(LOSS_DEFAULTS.alpha_att, label="α attention",
                                          placeholder=default_text(LOSS_DEFAULTS.alpha_att),
                                      info="Weight of the attention-map MSE (the small model's recipe).")
        form["kl_masked_only"] = gr.Checkbox(LOSS_DEFAULTS.kl_masked_only, label="KL at masked positions only",
                                             elem_id="distill-kl-masked-only",
                                             info="Off: over every token, as DistilRuBERT. On: as the bundled student "
                                                  "was made (with T 1, α MLM 0.5); faster, as logits are computed "
                                                  "only there.")
        form["max_length"] = CheckedNumber(DEFAULTS.max_length, precision=0, minimum=MAX_LENGTH_RANGE[0],
                                           maximum=MAX_LENGTH_RANGE[1], label="Max length",
                                           placeholder=default_text(DEFAULTS.max_length),
                                       elem_id="distill-max-length", info="Tokens per line; longer lines are cut.")
    with gr.Accordion("Smaller vocabulary and width (reduced students)", open=False):
        form["reduced_vocab"] = gr.Checkbox(False, label="Give the student its own smaller vocabulary",
                                            info="Trains a WordPiece vocabulary on the corpus; logits are aligned "
                                                 "below.")
        with gr.Row():
            form["student_vocab_size"] = CheckedNumber(STUDENT_VOCAB_DEFAULT, precision=0, minimum=MIN_STUDENT_VOCAB,
                                                       label="Student vocabulary size",
                                                       placeholder=default_text(STUDENT_VOCAB_DEFAULT),
                                                   info="Entries of the new WordPiece vocabulary.")
            form["student_hidden"] = CheckedNumber(None, precision=0, label="Student width",
                                                   placeholder="the teacher's",
                                               info="Hidden size; empty or 0 keeps the teacher's. Must divide by "
                                                    "the heads.")
        form["align"] = CheckedRadio(list(ALIGNMENTS), value=DEFAULTS.align, label="Logit alignment",
                                 info="How teacher and student logits meet across vocabularies.")
        gr.Markdown(ALIGN_HELP)
    with gr.Row():
        form["save_every"] = CheckedNumber(DEFAULTS.save_every, precision=0, minimum=1, label="Checkpoint every",
                                           placeholder=default_text(DEFAULTS.save_every),
                                       info="Steps between checkpoints (resume starts from the last one).")
        form["share"] = gr.Checkbox(False, label="Share this run", info=SHARE_INFO[bool(ctx.launcher.shared)])
    return form

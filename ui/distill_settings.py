"""A run's settings as the Distill tab's form gives them: RunSettings checked as the run checks them, the defaults
that boxes left empty take, the teacher's depth that bounds the student's, an uploaded corpus's checks, and the run's
own sentences in the form's words."""
from __future__ import annotations

from dataclasses import dataclass, replace
from operator import attrgetter
from pathlib import Path

from core.distill.training_data import check_readable
from core.formatting import count, parse_int_list
from core.models import zoo
from core.models.student import teacher_depth
from core.runs.store import RunPaths
from train.config import BUNDLED_CORPUS, MAX_BATCH_SIZE, MAX_LENGTH_RANGE, MAX_STEPS, DistillConfig
from train.launcher import check_uploaded_corpus
from ui.components import given_name
from ui.context import AppContext
from ui.errors import error_message
from ui.input_checks import form_words, real_number, shown, whole_number
from ui.page_text import markdown_text

DEFAULTS = DistillConfig()
LOSS_DEFAULTS = DEFAULTS.losses
BUNDLED = "bundled corpus"
UPLOAD = "upload a .txt"
STUDENT_VOCAB_DEFAULT = 2000  # the form's vocabulary size when the smaller vocabulary is ticked
MAX_STUDENT_LAYERS = 48  # the form's bound while the teacher's depth cannot be read here; the run then checks it
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


@dataclass
class RunSettings:
    """What the form asks for a run, one field a form input, named as /start_run's API parameters. None: the input
    was left out (a gradio_client caller), and the run takes DistillConfig's default."""

    teacher: str | None = None
    student_layers: int | None = None  # None: half the teacher's layers
    init_layers: str | None = None  # "0,2": teacher layers copied into the student; empty: every k-th
    student_type: str | None = None  # one of train.config.STUDENT_TYPES
    corpus_source: str | None = None  # "bundled corpus" or UPLOAD
    corpus_file: str | None = None  # the upload's server path; an Upload names the file as its owner gave it
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
    tokens, learning rate 0.0005, T 2", then the uploaded corpus by the name its owner gave it (cfg.corpus_name),
    if any: ", on the uploaded corpus 'отзывы.txt'"."""
    return (f"{count(cfg.max_steps, 'step')} of {count(cfg.batch_size, 'line')} of up to "
            f"{count(cfg.max_length, 'token')}, learning rate {cfg.lr:g}, T {cfg.losses.temperature:g}"
            + (", KL at masked positions only" if cfg.losses.kl_masked_only else "")
            + (f", on the uploaded corpus '{cfg.corpus_name}'" if cfg.corpus_name else ""))


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


def parse_layers(text: str | None) -> list[int] | None:
    """The form's Initialising layers as typed ("0, 2,4" or "0 2 4") -> [0, 2, 4]; None when empty (the default
    layers). Raises ValueError naming the field when a part is not a whole number or two commas have nothing
    between them."""
    text = (text or "").strip()
    if not text:
        return None
    return parse_int_list(text, "Initialising layers", example="0,2,4")


def corpus_file_line(path: str | None, tokenizer=None) -> str:
    """The line under the corpus box once a file is uploaded: the sentence Start run would refuse it with (the same
    checks, train.launcher.check_uploaded_corpus and, with the teacher's `tokenizer`, its share of unknown tokens,
    core.distill.training_data.check_readable), or how many samples it holds; empty when the box is cleared."""
    if not path:
        return ""
    name = given_name(path)  # Gradio stores an upload under a name of its own ('nul.txt' as '_nul.txt')
    try:
        lines = check_uploaded_corpus(path, name)
        if tokenizer is not None:
            check_readable(lines, tokenizer, name)
    except ValueError as error:
        return markdown_text(error_message(error))
    return markdown_text(f"'{name}': {count(len(lines), 'sample')}, one a line.")


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
    name = given_name(upload)
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

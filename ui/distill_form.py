"""The Distill tab's settings form: its controls, and the lines under them that answer as a teacher, a number of
layers or a corpus is chosen."""
from __future__ import annotations

import gradio as gr

from core.models.vocab import ALIGNMENTS
from train.config import MAX_LENGTH_RANGE, MIN_STUDENT_VOCAB, STUDENT_TYPES
from ui.components import MAX_UPLOAD_MB, CheckedNumber, CheckedRadio, SentenceFile
from ui.context import AppContext
from ui.distill_settings import (
    BUNDLED,
    DEFAULTS,
    LOSS_DEFAULTS,
    STUDENT_VOCAB_DEFAULT,
    UPLOAD,
    corpus_file_line,
    known_teacher_depth,
    layers_info,
    number_text,
    teacher_tokenizer,
)
from ui.errors import error_message
from ui.page_text import markdown_text

# Runs have owners on a Space and on an app served to a network; on this machine alone every page sees every run.
SHARE_INFO = {True: "Let everyone on this app see it and use its student.",
              False: "Matters on a Space or an app served to a network; here every page already sees every run."}
ALIGN_HELP = """The authors' alignments (Kolesnikova et al., 2022): **reduce**: the student reads the teacher's tokens
split into its own pieces; its logits are summed over the pieces of each teacher token and mapped onto the teacher's
whole vocabulary. **match**: the student reads its own tokenisation; positions whose tokens are the same string in
both are paired and compared on the vocabulary both share. The lab's variants: **reduce-shared** compares the summed
logits on the shared vocabulary only; **match-pieces** keeps the teacher's tokenisation and compares only positions
whose teacher token is itself one student token."""


def show_corpus_file(source: str | None) -> tuple[gr.File, gr.Markdown]:
    """The corpus box and the line under it, shown only when the corpus is an upload."""
    return gr.File(visible=source == UPLOAD), gr.Markdown(visible=source == UPLOAD)


def corpus_note_line(ctx: AppContext, path: str | None, teacher: str | None = None) -> str:
    """corpus_file_line, with the tokenizer of the teacher chosen when it can be read (teacher_tokenizer): said as the
    file arrives and again when the teacher changes."""
    return corpus_file_line(path, teacher_tokenizer(ctx, teacher) if path and teacher else None)


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


def default_text(value) -> str:
    """What an empty box of the form shows: the default the run then takes (RunSettings: None is the default), written
    as the line under Start names it (number_text)."""
    return f"{number_text(value)} (default)"


def loss_weight_boxes(form: dict, *boxes: tuple[str, str, str]) -> None:
    """form[field]: a number box for each (field, label, help) of the loss weights, with its default from
    LOSS_DEFAULTS as its value and, for an emptied box, its placeholder."""
    for field, label, info in boxes:
        default = getattr(LOSS_DEFAULTS, field)
        form[field] = CheckedNumber(default, label=label, placeholder=default_text(default), info=info)


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
    # no info: Gradio's text box holds it inside its <label>, which made the help part of the box's name
    form["init_layers"] = gr.Textbox(label="Initialising teacher layers",
                                     placeholder="one per student layer, e.g. 0,2; empty: every k-th")
    form["student_type"] = CheckedRadio(list(STUDENT_TYPES), value=DEFAULTS.student_type, label="Student architecture",
                                    info="DeepPavlov's students are DistilBERT (no token types, no pooler).")
    with gr.Group():
        form["corpus_source"] = CheckedRadio([BUNDLED, UPLOAD], value=BUNDLED, label="Corpus",
                                         info="One sample a line, UTF-8. The bundled corpus is the lab's own "
                                              "conversational Russian.")
        form["corpus_file"] = SentenceFile(label=f"Corpus file (.txt, UTF-8, one sample a line, at most "
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
        loss_weight_boxes(form, ("alpha_kl", "α KL", "Weight of KL(teacher‖student)·T²."),
                          ("alpha_mlm", "α MLM", "Weight of the student's own MLM loss."))
    with gr.Row():
        loss_weight_boxes(form, ("alpha_cos", "α cosine", "Weight of 1−cos(student layer, mean of k teacher layers)."),
                          ("alpha_att", "α attention", "Weight of the attention-map MSE (the small model's recipe)."))
    # On a line of its own: beside two number boxes a narrow window squeezed its label and help to a word a line
    form["kl_masked_only"] = gr.Checkbox(LOSS_DEFAULTS.kl_masked_only, label="KL at masked positions only",
                                         elem_id="distill-kl-masked-only",
                                         info="Off: over every token, as DistilRuBERT. On: as the bundled student was "
                                              "made (with T 1, α MLM 0.5); faster, as logits are computed only there.")
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

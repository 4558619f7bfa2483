"""The Predictions tab: two or three models fill in the same [MASK] side by side, with figures of how close they are.
The layout and its events are here; the handlers are in the ui.predict_* modules, one job each."""
from __future__ import annotations

import functools

import gradio as gr

from core.compare import predict
from ui.components import CheckedNumber
from ui.context import AppContext
from ui.downloads import file_box
from ui.errors import ErrorLines, cleared
from ui.page_text import long_text_guard
from ui.predict_actions import clear_status, failure_status, fill_mask_kept, mask_each_word_kept, probe_summary_kept
from ui.predict_downloads import DOWNLOAD_BOXES, show_downloads
from ui.predict_exported import EXPORTED_HELP, compare_exported, exported_choices, exported_list
from ui.predict_inputs import DEFAULT_TOP_K, MAX_SHOWN_TOP_K, example_sentences, model_lists
from ui.predict_notes import start_note
from ui.predict_tables import probe_table, summary_table
from ui.tables import SIDEWAYS_TABLES, scroll_note
from ui.visitor_limits import VisitorLimit

QUEUE_GROUP = "predictions"  # the tab's actions share one concurrency budget
CONCURRENCY = 4  # predictions computed at once, all sessions together
PER_SESSION = 4  # predictions one session may have waiting or running
KEPT_S = 600  # seconds a session keeps what an action showed (the downloads' follow-up reads it at once)
INTRO = f"""Type a Russian sentence with `[MASK]` where a word is missing (up to {predict.MAX_MASKS} masks), or pick one
from the probe set. Each model's top-k guesses stand side by side; a word found in more than one model's list has
the same colour everywhere, words only one model guesses are grey.

- Each `[MASK]` is predicted **on its own**, all of them in one forward pass (as the `transformers` fill-mask pipeline
  does): the guesses at one mask do not know what fills another.
- A `[MASK]` is filled with **one vocabulary entry**; a word the vocabulary splits can show only as its first piece.
  Continuation pieces are drawn as `…ка` (the vocabulary's `##ка`).
- Models are compared by the **strings** they predict, so models with different vocabularies compare.
  KL is KL(model 1 ‖ other) over the entries whose string both vocabularies hold (the plain KL when they are equal).
- **Mask each word** masks every word of the sentence in turn (the whole word as one `[MASK]`). A `[MASK]` already
  in it is filled in first: with the expected word when the sentence is one of the probe set (as the default is),
  else with model 1's most probable whole word; the result names the word put in.
- Write each blank as `[MASK]`, in capitals with its square brackets: the models read nothing else as a blank, so
  `[mask]`, an unclosed `[MASK`, `<mask>` or `___` is refused with a line saying what to write instead.
- **Top-k** takes a whole number from 1 to {MAX_SHOWN_TOP_K}; another is refused, never changed silently. It is
  the number of guesses shown at each mask, and the k of the probe summary's top-k overlap.
- A run's student that has not finished (stopped, failed or still training) loads from its newest checkpoint; the
  results say which step's.
- A sentence with no Russian words, or mostly other ones, is still predicted, with a note under it: the models
  here know Russian, so their guesses at English, emoji or digits say little.
- Text is read with its letters composed (NFC), so й and ё typed as two characters (as macOS often copies them) read
  the same as one.
- **Downloads** appear under each result: its tables as CSV, its figure as an HTML page that opens without a network.
"""
SENTENCE_HELP = ("Write each missing word as [MASK], in capitals with its square brackets; pick a probe sentence "
                 "below to fill the box in. Mask each word fills the [MASK] in first.")


def build(ctx: AppContext) -> dict:
    """The tab's layout and wiring; returns its main components and "refresh": (function, outputs), which the app
    runs on every page load and whenever the tab is opened, so the model lists include runs finished meanwhile."""
    errors = ErrorLines()
    choices_1, choices_2, choices_3 = ctx.box_choices()
    gr.Markdown(INTRO)
    with gr.Row():
        first = gr.Dropdown(choices_1, value=ctx.default_teacher, label="Model 1 (reference)", allow_custom_value=True,
                            info="Usually the teacher; the others are compared with it.", elem_id="predict-model-1")
        second = gr.Dropdown(choices_2, value=ctx.default_student, label="Model 2", allow_custom_value=True,
                             info="Usually a student, or a run's student.", elem_id="predict-model-2")
        third = gr.Dropdown(choices_3, value="", label="Model 3 (optional)", allow_custom_value=True,
                            info="A second student to compare, or empty.", elem_id="predict-model-3")
        # A number box, not a slider: the page's slider moves a typed 50 to 20 without a word, and the guesses
        # shown would not be the number asked for. Out of range, the check before predicting says so.
        top_k = CheckedNumber(DEFAULT_TOP_K, precision=0, minimum=1, maximum=MAX_SHOWN_TOP_K, step=1, label="Top-k",
                              info=f"Guesses shown per model at each mask, and the k of the probe summary's "
                                   f"top-k overlap; 1 to {MAX_SHOWN_TOP_K}.",
                              elem_id="predict-top-k")
    examples = example_sentences()
    # The help goes under the box, not in its info: Gradio's text box holds its info inside its <label>, so a
    # screen reader named the box by the label and the whole help, and no label finder found a box named "Sentence".
    sentence = gr.Textbox(value=examples[0], label="Sentence", lines=2, max_lines=8, elem_id="predict-sentence",
                          placeholder="Я люблю пить [MASK] с лимоном.")
    gr.Markdown(SENTENCE_HELP, elem_id="predict-sentence-help")
    long_text_guard()  # a pasted page of text is put in at once: the length check answers it in moments
    # Picking an example only fills the textbox: no API endpoint for it.
    gr.Examples([[s] for s in examples], inputs=[sentence], label="Probe sentences", examples_per_page=8,
                api_visibility="private")
    with gr.Row():
        predict_button = gr.Button("Predict", variant="primary", elem_id="predict-run")
        each_button = gr.Button("Mask each word", elem_id="predict-each-word")
        summary_button = gr.Button("Probe summary", elem_id="predict-summary")
    status = gr.Markdown("", elem_id="predict-status")

    gr.Markdown("### Predictions")
    bars = gr.Plot(label="Top-k guesses", elem_id="predict-bars")
    scroll_note("predict-agreement")
    agreement = gr.Markdown(label="agreement", show_label=False, elem_id="predict-agreement",
                            elem_classes=SIDEWAYS_TABLES)
    files = {}  # action -> its download boxes, hidden until the action has shown something
    with gr.Row():
        files["fill_mask"] = [file_box(text, elem_id) for _, text, elem_id in DOWNLOAD_BOXES["fill_mask"]]
    with gr.Accordion("The exported student beside PyTorch", open=False, elem_id="predict-exported-group"):
        gr.Markdown(EXPORTED_HELP)
        with gr.Row():
            exported = gr.Dropdown(exported_choices(ctx), value=None, label="Exported student", scale=3,
                                   elem_id="predict-exported", info="run · format; uses the sentence and top-k above")
            exported_button = gr.Button("Compare with PyTorch", elem_id="predict-exported-run", scale=1)
        exported_status = gr.Markdown("", elem_id="predict-exported-status")
        exported_bars = gr.Plot(label="PyTorch (model 1) and exported (model 2)", elem_id="predict-exported-bars")
        scroll_note("predict-exported-agreement")
        exported_agreement = gr.Markdown(elem_id="predict-exported-agreement", elem_classes=SIDEWAYS_TABLES)
    gr.Markdown("### Mask each word")
    strip = gr.Plot(label="Agreement per word", elem_id="predict-strip")
    scroll_note("predict-strip-words")
    strip_words = gr.Markdown(label="each word masked", show_label=False, elem_id="predict-strip-words",
                              elem_classes=SIDEWAYS_TABLES)
    with gr.Row():
        files["mask_each_word"] = [file_box(text, elem_id) for _, text, elem_id in DOWNLOAD_BOXES["mask_each_word"]]
    gr.Markdown("### Probe-set summary")
    # wrapped: a run's student named with its checkpoint would push the figures' columns out of view
    summary = gr.Dataframe(summary_table(), label="Probe-set summary", interactive=False, wrap=True,
                           elem_id="predict-summary-table")
    gr.Markdown(f"*{predict.SPLIT_NOTE}*", elem_id="predict-split-note")
    summary_plot = gr.Plot(label="Probe-set summary", elem_id="predict-summary-plot")
    with gr.Accordion("Every probe", open=False):
        probe_rows = gr.Dataframe(probe_table(), interactive=False, wrap=True, label="probe rows", show_label=False,
                                  elem_id="predict-probe-rows")
    with gr.Row():
        files["probe_summary"] = [file_box(text, elem_id) for _, text, elem_id in DOWNLOAD_BOXES["probe_summary"]]
    # per session: what each action last showed, for the follow-up the page runs right after it to write its files.
    # Kept KEPT_S only: an API caller never runs it, and Gradio frees a session's state only an hour after its page
    # closes, so an API caller's would stay for good
    kept = {action: gr.State(time_to_live=KEPT_S) for action in DOWNLOAD_BOXES}

    inputs = [first, second, third, top_k, sentence]
    wiring = [  # (triggers, action, handler, inputs, outputs); each action's API name is the action
        ([predict_button.click, sentence.submit], "fill_mask", fill_mask_kept, inputs, [bars, agreement]),
        ([each_button.click], "mask_each_word", mask_each_word_kept, inputs, [strip, strip_words]),
        ([summary_button.click], "probe_summary", probe_summary_kept, [first, second, third, top_k],
         [summary, summary_plot, probe_rows]),
    ]
    # One budget for the tab's actions, and a few places in the queue per visitor, refused before queueing: the page
    # asks in a step of its own first, as a validator's refusal would not show (see VisitorLimit).
    limit = VisitorLimit(QUEUE_GROUP, PER_SESSION, "prediction", "predictions")
    budget = dict(concurrency_id=QUEUE_GROUP, concurrency_limit=CONCURRENCY)
    quiet = dict(api_visibility="private", show_progress="hidden")
    for triggers, action, handler, event_inputs, outputs in wiring:
        admitted = gr.on(triggers, errors.wrap(action, limit.admit(), len(event_inputs)), event_inputs, None,
                         concurrency_limit=None, **quiet)
        admitted.failure(functools.partial(failure_status, errors, action), event_inputs, status, **quiet)
        at = event_inputs.index(sentence) if sentence in event_inputs else 0  # a text box shows a refusal
        event = admitted.success(functools.partial(handler, ctx, errors), event_inputs, outputs + [kept[action]],
                                 api_name=action, validator=limit.validator(at=at), **budget)
        if action == "probe_summary":  # a run's student below its untrained start is said on the status line
            event.success(start_note, outputs[0], status, **quiet)
        else:
            event.success(clear_status, None, status, **quiet)
        event.success(functools.partial(show_downloads, action), kept[action], files[action], **quiet)
        event.failure(functools.partial(failure_status, errors, action), event_inputs, status, **quiet)
        results = outputs + [kept[action]]
        event.failure(cleared(results, len(files[action])), None, results + files[action], **quiet)

    exported.focus(functools.partial(exported_list, ctx), None, exported, api_visibility="private",
                   show_progress="hidden")
    exported_inputs = [exported, top_k, sentence]
    admitted = exported_button.click(errors.wrap("compare_exported", limit.admit(), len(exported_inputs)),
                                     exported_inputs, None, concurrency_limit=None, **quiet)
    admitted.failure(functools.partial(failure_status, errors, "compare_exported"), exported_inputs, exported_status,
                     **quiet)
    compared = admitted.success(errors.wrap("compare_exported", functools.partial(compare_exported, ctx),
                                            len(exported_inputs)), exported_inputs,
                                [exported_bars, exported_agreement], api_visibility="private",
                                validator=limit.validator(at=2), **budget)
    compared.success(clear_status, None, exported_status, **quiet)
    compared.failure(functools.partial(failure_status, errors, "compare_exported"), exported_inputs, exported_status,
                     **quiet)
    compared.failure(cleared([exported_bars, exported_agreement]), None, [exported_bars, exported_agreement], **quiet)
    return dict(first=first, second=second, third=third, top_k=top_k, sentence=sentence, bars=bars,
                agreement=agreement, strip=strip, summary=summary, status=status, exported_status=exported_status,
                files=files,
                refresh=(functools.partial(model_lists, ctx), [first, second, third]))

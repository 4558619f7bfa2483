"""The Embeddings tab: the same sentences in two or three models' embedding spaces side by side, and how alike. The
layout and its events are here; the handlers are in the ui.embed_* modules, one job each."""
from __future__ import annotations

import functools

import gradio as gr

from core.compare import embed
from core.compare.sentences import FILE_TYPES, MAX_SENTENCE_CHARS, MAX_SENTENCES
from core.compare.similarity import ESTIMATORS, KNN_K
from ui import embed_plots, embed_tables
from ui.components import MAX_UPLOAD_MB, CheckedNumber, CheckedRadio, SentenceFile
from ui.context import AppContext
from ui.downloads import file_box
from ui.embed_downloads import ACTION_FILES, DOWNLOAD_BOXES, show_downloads
from ui.embed_inputs import (
    DEFAULT_ESTIMATOR,
    DIMENSIONS,
    METHODS,
    POOLINGS,
    SOURCES,
    show_source,
    show_typed_note,
    typed_line,
    upload_line,
)
from ui.embed_layers import compare_layers
from ui.embed_maps import draw_maps
from ui.embed_neighbours import (
    MAX_NEIGHBOURS,
    chosen_sentence_check,
    find_neighbours,
    fit_neighbour_columns,
    neighbours_for_maps,
    page_neighbours_check,
    show_beside,
)
from ui.errors import ErrorLines, cleared
from ui.page_text import long_text_guard
from ui.visitor_limits import VisitorLimit

DEFAULT_NEIGHBOURS = 5
LAYER_HINT = "0 embeddings, -1 (or empty) last, -2 the one before"
KEPT_S = 600  # seconds a session keeps what an action showed (the downloads' follow-ups read it at once)
QUEUE_GROUP = "embeddings"  # Draw, Neighbours and Layer similarity share one concurrency budget
CONCURRENCY = 2  # embedding requests computed at once, all sessions together
PER_SESSION = 2  # embedding requests one session may have waiting or running
# What the upload box takes, short enough for one line beside its clear button
UPLOAD_LABEL = (f"Sentences file (UTF-8 {', '.join(FILE_TYPES[:-1])} or {FILE_TYPES[-1]}, "
                f"at most {MAX_UPLOAD_MB} MB)")

INTRO = f"""Embed the same sentences with two or three models (teacher, students, a run's student) and look at the
spaces side by side. Each model tokenises with its own tokenizer, so students with their own vocabulary and width
compare too.

- **Sentence vector**: the mean of a layer's token vectors over the sentence's tokens (padding left out), or the
  `[CLS]` vector. Layer 0 is the embedding layer; negative layers count from the last, as in Python (-1 the last,
  -2 the one before; an empty layer box is the last too); a layer a model lacks is refused with its range. Sentences
  keep their first {embed.MAX_TOKENS} tokens.
- **Maps**: PCA or UMAP (cosine, 15 neighbours, fixed seed); copies of one sentence share one point. The second and
  third maps are turned (rotated or mirrored) to match the first as well as they can: no distance within a map
  changes. Sets of up to {embed_plots.TEXT_LABELS_UP_TO} sentences show their text beside the points.
- **How alike**: linear CKA (1 = the same geometry up to rotation and scale). The **debiased** estimator (default)
  is near 0 for unrelated spaces; the original **biased** one is high for unrelated spaces when the sentences are
  few against the vector width. Beside each CKA, the mean over 20 fixed shuffles of one side's sentences: what
  unmatched sentences score; with fewer than 20 sentences CKA is unreliable, and the note says so.
  kNN overlap: the mean share of each sentence's {KNN_K} nearest neighbours (cosine) that two
  spaces agree on; it needs at least {KNN_K + 2} sentences. **Layer similarity** shows both for every pair of
  layers and outlines, for each layer, the closest reference layer.
- Uploads: a `.txt` (one sentence a line), or a `.csv` or `.tsv` table (comma, semicolon or tab between columns; a
  `sentence` or `text` column, optional `label` or `topic`), saved as UTF-8 (a Windows-1251 file is refused: save it
  as UTF-8), at most {MAX_SENTENCES} sentences of at most {MAX_SENTENCE_CHARS} characters.
- Maps and Layer similarity need at least {embed.MIN_MAP_SENTENCES} different sentences, as each model reads them:
  sentences a model reads as the same tokens (emoji and symbols missing from its vocabulary read as `[UNK]`) share
  one point, and the note (for Layer similarity, the lines under its title) names them.
- **Downloads** appear under each result: the map's points, the scores and the neighbours (each sentence beside its
  neighbour's) as CSV, the figures as HTML pages that open without a network. They hold what the page shows:
  Neighbours draws the maps again with the settings now chosen, marks the sentence and puts the how-alike table
  of those maps beside them (and in the files); Draw takes away the neighbours' file.
"""


def on_lines(line, outputs: int):
    """A listener writing `line(*inputs)`, its one sentence, on each of `outputs` status lines."""
    if outputs == 1:
        return line
    return lambda *inputs: (line(*inputs),) * outputs


def model_lists(ctx: AppContext):
    """The three model lists as they are now: a run that finished since the page opened is in them."""
    return tuple(gr.Dropdown(choices=choices) for choices in ctx.box_choices())


def warm_up_in_background() -> None:
    """Compile UMAP's numba code in a daemon thread so the first UMAP map is fast; safe to call more than once."""
    embed.warm_up_umap_in_background()


def build(ctx: AppContext) -> dict:
    """The tab's layout and events; returns its main components and "refresh": (function, outputs), which the app
    runs on every page load and whenever the tab is opened, so the model lists include runs finished meanwhile."""
    choices_1, choices_2, choices_3 = ctx.box_choices()
    gr.Markdown(INTRO)
    with gr.Row():
        with gr.Column(scale=2):
            source = CheckedRadio(SOURCES, value=SOURCES[0], label="Sentences",
                              info="The topic-labelled probe set, your own file, or lines typed below.")
            # short enough for one line beside the box's clear button; the tab's notes above say the file's layout
            upload = SentenceFile(label=UPLOAD_LABEL, file_types=list(FILE_TYPES), type="filepath", visible=False,
                                  elem_id="embed-upload")
            upload_note = gr.Markdown("", visible=False, label="sentences file check", show_label=False,
                                      elem_id="embed-upload-note")
            typed = gr.Textbox(label="Sentences, one a line", lines=6, visible=False, info="Up to 5,000 sentences.",
                               placeholder="Мы ходили в кино.\nКошка спит на диване.\nЗавтра обещают дождь.\n...")
            typed_note = gr.Markdown("", visible=False, label="typed sentences check", show_label=False,
                                     elem_id="embed-typed-note")
            long_text_guard()
        with gr.Column(scale=3):
            with gr.Row():
                first = gr.Dropdown(choices_1, value=ctx.default_teacher, label="Model 1 (reference)",
                                    allow_custom_value=True, scale=3)
                layer1 = CheckedNumber(-1, precision=0, label="layer", scale=1, min_width=80,
                                       info=LAYER_HINT, elem_id="embed-layer-1")
            with gr.Row():
                second = gr.Dropdown(choices_2, value=ctx.default_student, label="Model 2", allow_custom_value=True,
                                     scale=3)
                layer2 = CheckedNumber(-1, precision=0, label="layer", scale=1, min_width=80,
                                       info=LAYER_HINT, elem_id="embed-layer-2")
            with gr.Row():
                third = gr.Dropdown(choices_3, value="", label="Model 3 (optional)", allow_custom_value=True,
                                    scale=3)
                layer3 = CheckedNumber(-1, precision=0, label="layer", scale=1, min_width=80,
                                       info=LAYER_HINT, elem_id="embed-layer-3")
    with gr.Row():
        pooling = CheckedRadio(POOLINGS, value=POOLINGS[0], label="Sentence vector", elem_id="embed-pooling",
                               info="Mean of the token vectors, or the [CLS] token's vector.")
        method = CheckedRadio(METHODS, value=METHODS[0], label="Map", elem_id="embed-method",
                              info="PCA keeps global distances; UMAP keeps neighbourhoods.")
        dims = CheckedRadio(DIMENSIONS, value=DIMENSIONS[0], label="Dimensions",
                            info="3D maps can be turned with the mouse.")
        estimator = CheckedRadio(list(ESTIMATORS), value=DEFAULT_ESTIMATOR, label="CKA estimator",
                                 info="Debiased: near 0 for unrelated spaces. Biased: the original, high for few "
                                      "sentences.")
        draw_button = gr.Button("Draw", variant="primary", elem_id="embed-draw")
    status_line = gr.Markdown("", elem_id="embed-status")  # what the last Draw that failed said, until one succeeds
    map_plot = gr.Plot(label="Maps", elem_id="embed-map")
    with gr.Row():
        scores = gr.Dataframe(headers=embed_tables.scores_headers(KNN_K), label="How alike", interactive=False,
                              wrap=True, scale=3, elem_id="embed-scores")
        note = gr.Markdown(scale=2, label="map note", show_label=False, elem_id="embed-note")
    boxes = {}  # file name -> its download box, hidden until an action has made the file
    with gr.Row():
        boxes.update((name, file_box(text, elem_id)) for name, text, elem_id in DOWNLOAD_BOXES["draw"])
    with gr.Row():
        chosen = gr.Dropdown([], value=None, label="Highlight a sentence (its number or text)", allow_custom_value=True,
                             scale=4, info="Marks it in every map and lists its nearest neighbours.",
                             elem_id="embed-chosen")
        # A number box, not a slider: the page's slider moves a typed 0 to 1 without a word. Out of range, the
        # check before the neighbours are found says so.
        k = CheckedNumber(DEFAULT_NEIGHBOURS, precision=0, minimum=1, maximum=MAX_NEIGHBOURS, step=1,
                          label="neighbours", scale=1, info=f"How many to list, 1 to {MAX_NEIGHBOURS}.",
                          elem_id="embed-k")
        neighbours_button = gr.Button("Neighbours", scale=1, elem_id="embed-neighbours-run")
    # Neighbours' and Layer similarity's failures on a line under their buttons, not on the status line above the
    # maps: that is a screen or two up from them, out of view once the toast fades
    neighbours_line = gr.Markdown("", elem_id="embed-neighbours-status")
    neighbour_rows = gr.Dataframe(headers=["rank", "model 1", "model 2"], interactive=False, wrap=True,
                                  column_widths=embed_tables.neighbour_column_widths(2), elem_id="embed-neighbours",
                                  label="Nearest neighbours by cosine (● = in every model's list)")
    with gr.Row():
        boxes.update((name, file_box(text, elem_id)) for name, text, elem_id in DOWNLOAD_BOXES["neighbours"])
    layers_button = gr.Button("Layer similarity", elem_id="embed-layers-run")
    layers_line = gr.Markdown("", elem_id="embed-layers-status")
    layer_plot = gr.Plot(label="Layer similarity", elem_id="embed-layers")
    with gr.Row():
        boxes.update((name, file_box(text, elem_id)) for name, text, elem_id in DOWNLOAD_BOXES["layers"])
    files = {action: [boxes[name] for name in names] for action, names in ACTION_FILES.items()}
    # per session: what each action last showed, for the follow-ups the page runs right after it. Kept KEPT_S only:
    # an API caller never runs them, and Gradio frees a session's state only an hour after its page closes, so an
    # API caller's would stay for good
    kept_state = {action: gr.State(time_to_live=KEPT_S) for action in ACTION_FILES}

    source.change(show_source, source, [upload, upload_note, typed], api_visibility="private")
    source.change(show_typed_note, source, typed_note, api_visibility="private", show_progress="hidden")
    # a file Draw would refuse is told as it arrives, not only once an action is asked for
    upload.change(upload_line, upload, upload_note, api_visibility="private", show_progress="hidden")
    # and so is a typed text over the limits; only the last of a burst of changes is sent
    typed.change(typed_line, typed, typed_note, api_visibility="private", show_progress="hidden",
                 trigger_mode="always_last")
    # Also read again when a list is opened: a run may finish while the tab stays open.
    refresh = functools.partial(model_lists, ctx)
    lists = [first, second, third]
    for dropdown in lists:
        dropdown.focus(refresh, None, lists, api_visibility="private")
    inputs = [source, upload, typed, first, second, third, layer1, layer2, layer3, pooling, method, dims]
    quiet = dict(api_visibility="private", show_progress="hidden")
    # One concurrency budget for the three heavy actions, and a few places in the queue per visitor, refused before
    # the request is queued: the page asks first, in a step of its own whose refusal the status line shows (a
    # validator's refusal shows nothing on the page; see VisitorLimit).
    limit = VisitorLimit(QUEUE_GROUP, PER_SESSION, "embedding request", "embedding requests")
    heavy = dict(concurrency_id=QUEUE_GROUP, concurrency_limit=CONCURRENCY, validator=limit.validator())
    errors = ErrorLines()  # the last failure of each action, for the status line (a toast alone goes unseen)
    # the line each action's failure is written on, until it next succeeds: Draw's above the maps, the others' under
    # their buttons
    lines = {"draw": [status_line], "neighbours": [neighbours_line], "layers": [layers_line]}

    def admitted(trigger, action: str, what: str, event_inputs: list, check=None):
        """The page's first step of an action: the visitor's places (and `check`), a refusal on its lines."""
        step = trigger(errors.wrap(action, limit.admit(check), len(event_inputs)), event_inputs, None,
                       concurrency_limit=None, **quiet)
        step.failure(on_lines(errors.failure(what, action), len(lines[action])), event_inputs, lines[action],
                     **quiet)
        return step

    def kept(action: str, handler, event_inputs: list):
        """handler bound to the context, its failures kept for the status line; the event and its failure line."""
        return errors.wrap(action, functools.partial(handler, ctx), len(event_inputs)), event_inputs

    def status_lines(event, action: str, what: str, event_inputs: list) -> None:
        event.success(on_lines(lambda: "", len(lines[action])), None, lines[action], **quiet)
        event.failure(on_lines(errors.failure(what, action), len(lines[action])), event_inputs, lines[action],
                      **quiet)

    draw_fn, draw_inputs = kept("draw", draw_maps, inputs + [estimator])
    drawn = admitted(draw_button.click, "draw", "Draw", draw_inputs).success(
        draw_fn, draw_inputs, [map_plot, scores, note, chosen, kept_state["draw"]], api_name="embedding_map", **heavy)
    drawn.success(functools.partial(show_downloads, "draw"), kept_state["draw"], files["draw"], **quiet)
    drawn.success(neighbours_for_maps, scores, neighbour_rows, **quiet)
    status_lines(drawn, "draw", "Draw", draw_inputs)
    drawn_results = [map_plot, scores, note, neighbour_rows, kept_state["draw"]]
    drawn.failure(cleared(drawn_results, len(files["draw"])), None, drawn_results + files["draw"], **quiet)
    # the list of the maps' sentences goes with the maps (and with it the "Error" mark a failed Draw leaves on it)
    drawn.failure(lambda: gr.Dropdown(choices=[], value=None), None, chosen, **quiet)
    neighbours_fn, neighbours_inputs = kept("neighbours", find_neighbours, inputs + [chosen, k])
    # A sentence not chosen, or not in the set, is told under the list before the request is queued, so the maps
    # already drawn stay on the page.
    neighbours_guard = dict(heavy, validator=limit.validator(check=chosen_sentence_check, at=len(inputs)))
    # Two or three models' columns: the widths follow the table once it is filled.
    neighbours_outputs = [map_plot, neighbour_rows, kept_state["neighbours"]]
    # The page asks first, in a step of its own with no outputs, whether the sentence chosen is in the set and the
    # neighbours count in range: the page shows nothing of a validator's refusal, and a failed step marks each of
    # its outputs "Error". The maps stay.
    for trigger, naming in ((neighbours_button.click, dict(api_name="neighbours")),
                            (chosen.select, dict(api_visibility="private"))):
        checked = admitted(trigger, "neighbours", "Neighbours", neighbours_inputs, check=page_neighbours_check)
        shown = checked.success(neighbours_fn, neighbours_inputs, neighbours_outputs, **naming, **neighbours_guard)
        shown.success(fit_neighbour_columns, neighbour_rows, neighbour_rows, api_visibility="private")
        shown.success(functools.partial(show_downloads, "neighbours"), kept_state["neighbours"],
                      files["neighbours"], **quiet)
        # the maps are redrawn with the settings now chosen: the table, note and list beside them follow
        shown.success(show_beside, [kept_state["neighbours"], estimator],
                      [scores, note, chosen, boxes["how-alike.csv"]], **quiet)
        status_lines(shown, "neighbours", "Neighbours", neighbours_inputs)
    layers_fn, layers_inputs = kept("layers", compare_layers,
                                    [source, upload, typed, first, second, third, pooling, estimator])
    compared = admitted(layers_button.click, "layers", "Layer similarity", layers_inputs).success(
        layers_fn, layers_inputs, [layer_plot, kept_state["layers"]], api_name="layer_similarity", **heavy)
    compared.success(functools.partial(show_downloads, "layers"), kept_state["layers"], files["layers"], **quiet)
    status_lines(compared, "layers", "Layer similarity", layers_inputs)
    layer_results = [layer_plot, kept_state["layers"]]
    compared.failure(cleared(layer_results, len(files["layers"])), None, layer_results + files["layers"], **quiet)
    return dict(source=source, upload=upload, upload_note=upload_note, typed=typed, typed_note=typed_note,
                first=first, second=second, third=third, map_plot=map_plot, scores=scores, note=note, chosen=chosen,
                neighbour_rows=neighbour_rows,
                layer_plot=layer_plot,
                estimator=estimator, files=files, failed=status_line, neighbours_failed=neighbours_line,
                layers_failed=layers_line, refresh=(refresh, lists))

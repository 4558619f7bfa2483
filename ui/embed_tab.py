"""The Embeddings tab: the same sentences in two or three models' embedding spaces side by side, and how alike.

Handlers are top-level functions of the app context and the inputs (bound with functools.partial in build()); the
figures and tables come from ui.embed_plots.
"""
from __future__ import annotations

import functools
import math
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
import torch

from core.bench import machine
from core.bench.plan import ENCODER_EFFICIENCY, encoder_flops
from core.compare import embed, quality, similarity, tables
from core.compare.sentences import (
    FILE_TYPES,
    MAX_SENTENCE_CHARS,
    MAX_SENTENCES,
    SentenceSet,
    probe_set,
    read_sentence_file,
    typed_set,
)
from core.compare.similarity import ESTIMATORS, KNN_K
from core.formatting import count, format_seconds
from core.models.student import dims as model_dims
from core.models.student import num_layers
from ui import embed_plots
from ui.context import (
    MAX_UPLOAD_MB,
    AppContext,
    CheckedNumber,
    CheckedRadio,
    ErrorLines,
    SentenceFile,
    VisitorLimit,
    check_two_models,
    cleared,
    error_message,
    given_name,
    markdown_text,
    model_name,
    one_of,
    text_input,
    user_errors,
    whole_number,
)
from ui.downloads import Downloads, file_box, file_boxes, table

SOURCES = ["Probe set", "Upload a file", "Typed sentences"]
POOLINGS = ["mean", "CLS"]
POOLING_NAMES = {"mean": "mean of token vectors", "cls": "[CLS] vectors"}  # by core.compare.embed's names
METHODS = ["PCA", "UMAP"]
DIMENSIONS = ["2D", "3D"]
DEFAULT_NEIGHBOURS = 5
MAX_NEIGHBOURS = 20  # the most neighbours a list shows
LAYER_HINT = "0 embeddings, -1 (or empty) last, -2 the one before"
KEPT_S = 600  # seconds a session keeps what an action showed (the downloads' follow-ups read it at once)
DEFAULT_ESTIMATOR = ESTIMATORS[0]  # debiased
QUEUE_GROUP = "embeddings"  # Draw, Neighbours and Layer similarity share one concurrency budget
CONCURRENCY = 2  # embedding requests computed at once, all sessions together
PER_SESSION = 2  # embedding requests one session may have waiting or running
EMBED_BATCH = 32  # sentences a forward pass, as core.compare.embed.all_layers embeds them
# What the upload box takes, short enough for one line beside its clear button
UPLOAD_LABEL = (f"Sentences file (UTF-8 {', '.join(FILE_TYPES[:-1])} or {FILE_TYPES[-1]}, "
                f"at most {MAX_UPLOAD_MB} MB)")
MAPS_NEED = "The maps need"  # how Draw's and Neighbours' refusals of too few sentences begin
LAYERS_NEED = "Layer similarity needs"  # and Layer similarity's, which draws no map

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


# ---------------------------------------------------------------------------------------------------------------------
# Inputs


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
    a model of `suggested`, the app's default pair), when a name is not text or too long (ui.context.model_name), or
    when a layer is not a whole number."""
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


def embedding_seconds(loaded, sentences: SentenceSet, pooling: str) -> tuple[float, int]:
    """(estimated seconds, tokens) of embedding `sentences` with `loaded`: the encoder's FLOPs over batches of
    EMBED_BATCH sentences of similar length, at this machine's measured float32 rate, sentences read as the same
    tokens counted once, as they are embedded (core.compare.embed.token_lengths); (0, tokens) when cached."""
    lengths = sorted(embed.token_lengths(loaded, sentences))
    if embed.is_embedded(loaded, sentences, pooling):
        return 0.0, sum(lengths)
    batches = [lengths[i:i + EMBED_BATCH] for i in range(0, len(lengths), EMBED_BATCH)]
    try:
        shape, layers = model_dims(loaded.model.config), num_layers(loaded.model.config)
        flops = sum(len(b) * encoder_flops(layers, shape["hidden"], shape["ffn"], max(b)) for b in batches)
    except AttributeError:  # not a BERT-like config: two FLOPs a parameter a token
        params = sum(p.numel() for p in loaded.model.base_model.parameters())
        flops = sum(2 * params * len(b) * max(b) for b in batches)
    rate = machine.quick_rate(torch.float32, "cpu") * ENCODER_EFFICIENCY["cpu", "reference"]
    return flops / rate, sum(lengths)


def check_models_and_sentences(ctx: AppContext, models: list, sentences: SentenceSet, pooling: str,
                               needs: str = MAPS_NEED) -> None:
    """Before any embedding: ValueError when it would take too long (check_embedding_work), or when a model reads
    the sentences as fewer different token sequences than a map or CKA needs (core.compare.embed.check_readable,
    its refusal begun by `needs`: MAPS_NEED or LAYERS_NEED). A set of too few different sentences is refused before
    any model is loaded (core.compare.embed.check_map_sentences)."""
    check_embedding_work(ctx, models, sentences, pooling)
    for loaded in models:
        embed.check_readable(loaded, sentences, needs)


def check_embedding_work(ctx: AppContext, models: list, sentences: SentenceSet, pooling: str) -> None:
    """Refuse, before any embedding runs, a request whose estimated time is over ctx.max_embed_s; ValueError saying
    the sentences, their tokens, the estimate and the limit."""
    estimates = [embedding_seconds(m, sentences, pooling) for m in models]
    seconds = sum(s for s, _ in estimates)
    if seconds > ctx.max_embed_s:
        tokens = max(t for _, t in estimates)
        raise ValueError(f"Embedding these {len(sentences):,} sentences ({tokens:,} tokens a model) with "
                         f"{len(models)} models would take about {format_seconds(seconds)} here, more than the "
                         f"{format_seconds(ctx.max_embed_s)} one request may take on this app; use fewer or shorter "
                         "sentences, or smaller models.")


def _scaled(progress, part: int, parts: int, done: float, desc: str) -> None:
    """Report a part's own fraction done as a fraction of the whole job."""
    progress((part + done) / parts, desc=desc)


def _spaces(ctx: AppContext, sentences: SentenceSet, chosen: list[ModelChoice], pooling: str,
            progress) -> list[embed.Space]:
    """Each chosen model's space at its layer; the layers (model_layer), the time it would take and how each model
    reads the sentences (check_models_and_sentences) are checked before any embedding starts."""
    models = [ctx.load(choice.name, progress=progress) for choice in chosen]
    for loaded, choice in zip(models, chosen):
        model_layer(loaded, choice)
    check_models_and_sentences(ctx, models, sentences, pooling)
    spaces = []
    for i, (loaded, choice) in enumerate(zip(models, chosen)):
        step = functools.partial(_scaled, progress, i, len(chosen))
        spaces.append(embed.embed_space(loaded, sentences, choice.layer, pooling, progress=step))
    return spaces


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
    return [f"{i}. {s}" for i, s in enumerate(sentences.sentences)]


def _maps(spaces: list[embed.Space], sentences: SentenceSet, method: str, dims: int, progress,
          highlight: int | None = None, near: list[list[int]] | None = None):
    """Every space projected, the later maps turned onto the first, drawn side by side: (figure, the points as
    drawn, one (n, 2) or (n, 3) array a space)."""
    progress(1.0, desc=f"{method} map ...")
    coords = [embed.project(s, method.lower(), dims) for s in spaces]
    aligned = [coords[0]] + [embed.align(coords[0], c) for c in coords[1:]]
    return embed_plots.map_figure(sentences, spaces, aligned, method, highlight, near), aligned


# ---------------------------------------------------------------------------------------------------------------------
# Downloads: what each action showed, by the file name it downloads as

DOWNLOAD_BOXES = {  # row of boxes on the page -> (file name, label of its box, elem_id)
    "draw": [("embedding-map.csv", "Map coordinates (CSV)", "embed-download-map-csv"),
             ("how-alike.csv", "How alike (CSV)", "embed-download-scores-csv"),
             ("embedding-map.html", "Maps (HTML, opens offline)", "embed-download-map-html")],
    "neighbours": [("neighbours.csv", "Neighbours (CSV)", "embed-download-neighbours-csv")],
    "layers": [("layer-similarity.csv", "CKA and kNN overlap per pair of layers (CSV)", "embed-download-layers-csv"),
               ("layer-similarity.html", "Figure (HTML, opens offline)", "embed-download-layers-html")],
}
# action -> the boxes whose view it replaces: it fills those it made a file for and empties the others. Draw
# redraws the maps and empties the neighbours table; Neighbours redraws the maps with the sentence marked (and
# show_beside writes the how-alike table of those maps, in its own box).
ACTION_FILES = {
    "draw": ["embedding-map.csv", "how-alike.csv", "embedding-map.html", "neighbours.csv"],
    "neighbours": ["embedding-map.csv", "embedding-map.html", "neighbours.csv"],
    "layers": ["layer-similarity.csv", "layer-similarity.html"],
}


def map_downloads(sentences: SentenceSet, spaces: list[embed.Space], coords: list, pairs: list,
                  figure: go.Figure) -> Downloads:
    """Draw's points (one row per map and sentence), its how-alike scores unrounded and its maps."""
    return Downloads({"embedding-map.csv": table(tables.map_rows(sentences, spaces, coords)),
                      "how-alike.csv": score_table(sentences, spaces, pairs), "embedding-map.html": figure})


def neighbour_downloads(sentences: SentenceSet, spaces: list[embed.Space], coords: list, figure: go.Figure,
                        index: int, found: list) -> Downloads:
    """Neighbours' points and maps as they are drawn now (the sentence and its neighbours marked) and its
    neighbours (one row per map and rank, the sentence and the neighbour each by number and text)."""
    return Downloads({"embedding-map.csv": table(tables.map_rows(sentences, spaces, coords)),
                      "embedding-map.html": figure,
                      "neighbours.csv": table(tables.neighbour_rows(sentences, spaces, index, found))})


def layer_downloads(names: list[str], results: list[dict], figure: go.Figure) -> Downloads:
    """Layer similarity's matrices in long form (one row per pair of layers) and its heat maps."""
    return Downloads({"layer-similarity.csv": table(tables.layer_rows(names, results)),
                      "layer-similarity.html": figure})


def show_downloads(action: str, downloads: Downloads | None):
    """The boxes of ACTION_FILES[action], in its order: each file the action made written afresh and shown, the
    others emptied and hidden; all left as they are when the action has shown nothing yet."""
    return file_boxes(downloads, f"embed-{action}", ACTION_FILES[action])


# ---------------------------------------------------------------------------------------------------------------------
# Handlers: (context, the inputs by their API names)


def label_purities(sentences: SentenceSet, spaces: list[embed.Space]) -> tuple[int, list[float], float] | None:
    """For labelled sentences (every one labelled, at least two labels): (k, each space's share of same-label
    neighbours among each sentence's k nearest by cosine, the share by chance); None otherwise."""
    labels = sentences.labels
    if len(sentences) < 3 or not all(labels) or len(set(labels)) < 2:
        return None
    k = similarity.effective_k(len(sentences), quality.TOPIC_K)
    return k, [quality.label_purity(s.vectors, labels, k) for s in spaces], quality.chance_purity(labels)


def purity_note(sentences: SentenceSet, spaces: list[embed.Space]) -> str:
    """label_purities as a sentence; "" for sentences without labels."""
    found = label_purities(sentences, spaces)
    if found is None:
        return ""
    k, shares, chance = found
    listed = ", ".join(f"{markdown_text(s.model)} {share:.0%}" for s, share in zip(spaces, shares))
    return f" Same-label neighbours (of each sentence's {k} nearest, cosine): {listed}; chance {chance:.0%}."


def score_table(sentences: SentenceSet, spaces: list[embed.Space], pairs: list) -> pd.DataFrame:
    """How alike each pair of spaces is, unrounded (tables.score_rows); for labelled sentences also each side's
    share of same-label neighbours and chance, the figures the note beside the page's table gives."""
    rows = tables.score_rows(spaces, pairs)
    found = label_purities(sentences, spaces)
    if found is not None:
        k, shares, chance = found
        for row, (a, b, _) in zip(rows, pairs):
            row.update({f"same-label neighbours@{k}, A": shares[a], f"same-label neighbours@{k}, B": shares[b],
                        "same-label neighbours, chance": chance})
    return table(rows)


MAX_LISTED = 8  # sentence numbers a note lists before it counts the rest
MAX_FIGURE_NOTES = 4  # groups of sentences read alike that the layer figure names before it counts the rest


def numbers_text(numbers: tuple[int, ...]) -> str:
    """Sentence numbers as a note lists them: "#1, #4 and #9"; past MAX_LISTED, "#1, #2, ... and 12 more"."""
    shown = [f"#{i}" for i in numbers[:MAX_LISTED]]
    if len(numbers) > MAX_LISTED:
        return f"{', '.join(shown)} and {len(numbers) - MAX_LISTED} more"
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} and {shown[-1]}"


def same_tokens_lines(models: list, sentences: SentenceSet, on_maps: bool = True) -> list[str]:
    """The different sentences that models read as the same tokens, and why, one sentence (plain text) a group;
    models that read a group alike (one tokenizer) are named together. With `on_maps`, each says the group shares
    one point on the models' maps (`models`: one a map, so a model in two boxes, at two layers, comes twice), else
    that it has one vector at every layer (Layer similarity). [] when there are none."""
    maps = Counter(m.name for m in models)  # a model's maps: one a box it is in
    readers: dict[tuple, list[str]] = {}  # (sentences, why, tokens read) -> the models' names, as typed
    for loaded in {m.name: m for m in models}.values():
        for group in embed.same_tokens(loaded, sentences):
            why = ("unknown" if group.unknown_only else "cut" if group.truncated
                   else "partly unknown" if group.with_unknown else "same")
            readers.setdefault((group.sentences, why, embed.tokens_read(loaded)), []).append(loaded.name)
    lines = []
    for (numbers, why, read), names in readers.items():
        who = f"{', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else names[0]
        what = {"unknown": f"are only unknown tokens ([UNK]) to {who}: none of their characters is in the vocabulary",
                "cut": f"begin with the same {read} tokens, all that {who} {'reads' if len(names) == 1 else 'read'}",
                "partly unknown": f"differ only in characters unknown to {who}, read as [UNK]",
                "same": f"are the same tokens to {who}"}[why]
        if on_maps:
            shown_on = sum(maps[name] for name in names)
            where = "its map" if shown_on == 1 else "its maps" if len(names) == 1 else "those maps"
            shared = f"they share one point on {where}"
        else:
            shared = "they share one vector at every layer"
        lines.append(f"{len(numbers)} sentences ({numbers_text(numbers)}) {what}; {shared}.")
    return lines


MAX_COPIED = 4  # sentences given more than once that the note names before it counts the rest


def copies_note(sentences: SentenceSet) -> str:
    """The sentences the set holds more than once, as the note's Markdown: each by its text, how many times and
    where, and what follows (one point on each map; never listed as each other's neighbours, and listed once among
    another's). "" when every sentence is different."""
    numbers: dict[str, list[int]] = {}
    for i, text in enumerate(sentences.sentences):
        numbers.setdefault(text, []).append(i)
    copied = [(text, found) for text, found in numbers.items() if len(found) > 1]
    if not copied:
        return ""
    named = [f"'{short_quote(text)}' {'twice' if len(found) == 2 else f'{len(found)} times'} "
             f"({numbers_text(tuple(found))})" for text, found in copied[:MAX_COPIED]]
    if len(copied) > MAX_COPIED:
        named.append(f"{len(copied) - MAX_COPIED} more sentences given more than once")
    listed = f"{', '.join(named[:-1])} and {named[-1]}" if len(named) > 1 else named[0]
    return markdown_text(f" The set holds {listed}: copies share one point on each map, are not each other's "
                         "neighbours, and a list of neighbours names them once, by the first number.")


def same_tokens_note(models: list, sentences: SentenceSet) -> str:
    """same_tokens_lines of the maps as the note's Markdown, each after a space; "" when there are none."""
    return markdown_text("".join(f" {line}" for line in same_tokens_lines(models, sentences)))


def layers_used_note(chosen: list[ModelChoice], spaces: list[embed.Space]) -> str:
    """The layer each negative layer other than -1 stands for (-5 of a 4-layer model is layer 0), as a sentence of
    the note: a box showing -5 beside a map of layer 0 would otherwise leave the change unsaid. "" when none."""
    lines = [f" Layer {choice.layer} of model {choice.box} is layer {space.layer} of {space.model}: negative layers "
             f"count from the last, as in Python (-1 is layer {space.layers})."
             for choice, space in zip(chosen, spaces) if choice.layer is not None and choice.layer < -1]
    return markdown_text("".join(lines))


@dataclass
class Drawn:
    """One drawing of the maps: the spaces, the figure and its points, and what the note says of them besides the
    how-alike scores (which depend on the CKA estimator too)."""
    sentences: SentenceSet
    spaces: list[embed.Space]
    figure: go.Figure
    coords: list  # one (n, 2) or (n, 3) array a space, as drawn
    timing: str  # "8 sentences: embedded in 0.4 s, mapped in 0.1 s (...)."
    remarks: str  # same-label neighbours, spaces that do not vary, sentences that share a point, model notices

    def note(self, pairs: list) -> str:
        """The note beside the how-alike table of `pairs` (embed.compare_pairs of these spaces)."""
        return f"{self.timing} {embed_plots.scores_note(pairs)}{self.remarks}"


def _draw(ctx: AppContext, sentences: SentenceSet, chosen: list[ModelChoice], settings: MapSettings, progress,
          index: int | None = None, k: int = 0) -> tuple[Drawn, list]:
    """The maps of every chosen model: (the drawing, each space's k nearest neighbours of sentence `index`, marked
    on the maps; [] without an index)."""
    started = time.perf_counter()
    spaces = _spaces(ctx, sentences, chosen, settings.pooling, progress)
    embedded = time.perf_counter()
    found = [embed.nearest(s, index, k, sentences.sentences) for s in spaces] if index is not None else []
    near = [[i for i, _ in f] for f in found] if found else None
    figure, coords = _maps(spaces, sentences, settings.method, settings.dims, progress, index, near)
    timing = (f"{len(sentences)} sentences: embedded in {embedded - started:.1f} s, mapped in "
              f"{time.perf_counter() - embedded:.1f} s (cached results are instant).")
    remarks = copies_note(sentences) + purity_note(sentences, spaces)
    others = len(set(sentences.sentences)) - 1  # a list names each text once, never the chosen one's copies
    if index is not None and k > others:
        once = " (copies counted once)" if others < len(sentences) - 1 else ""
        remarks += (f" The set has {count(others, 'other sentence')}{once}, so each list of neighbours has "
                    f"{others}, not the {k} asked for.")
    remarks += layers_used_note(chosen, spaces)
    flat = [s.model for s in spaces if not embed.varies(s.vectors)]
    if flat:
        names = markdown_text(", ".join(flat))  # as typed
        remarks += f" Every sentence has the same vector in {names} at this layer: nothing to map."
    models = [ctx.load(choice.name) for choice in chosen]  # loaded already: read from the cache
    remarks += same_tokens_note(models, sentences)
    # once a model, though it be in two boxes; they name the models as typed
    remarks += "".join(f" {markdown_text(m.notice)}" for m in {m.name: m for m in models}.values() if m.notice)
    return Drawn(sentences, spaces, figure, coords, timing, remarks), found


@user_errors
def draw_maps(ctx: AppContext, source=None, file=None, sentences=None, model_1=None, model_2=None, model_3=None,
              layer_1=None, layer_2=None, layer_3=None, pooling=None, method=None, dims=None,
              cka_estimator=DEFAULT_ESTIMATOR, progress=gr.Progress()):
    """Maps, the how-alike table, the note beside it, the sentence list for highlighting, and the downloads (kept in a
    gr.State, which API clients do not receive)."""
    chosen = chosen_models([model_1, model_2, model_3], [layer_1, layer_2, layer_3], ctx.pair)
    settings = map_settings(pooling, method, dims, cka_estimator)
    sentences = sentence_set(source, file, sentences)
    embed.check_map_sentences(sentences, MAPS_NEED)  # before any model loads: it may be a download
    drawn, _ = _draw(ctx, sentences, chosen, settings, progress)
    pairs = embed.compare_pairs(drawn.spaces, estimator=settings.estimator)
    return (drawn.figure, embed_plots.scores_table(drawn.spaces, pairs), drawn.note(pairs),
            gr.Dropdown(choices=sentence_choices(sentences), value=None),
            map_downloads(sentences, drawn.spaces, drawn.coords, pairs, drawn.figure))


def chosen_sentence_check(source=None, file=None, sentences=None, model_1=None, model_2=None, model_3=None,
                          layer_1=None, layer_2=None, layer_3=None, pooling=None, method=None, dims=None,
                          highlight=None, *rest) -> None:
    """Before a Neighbours request is queued: ValueError (see sentence_index) when no sentence is chosen, when the set
    has too few different sentences for a map (core.compare.embed.check_map_sentences), or when the one chosen is not
    in the set. Sentences that cannot be read pass here; the request itself says what is wrong."""
    if highlight is None or not str(highlight).strip():
        raise ValueError("Choose a sentence from the list (draw the maps first), or type its number.")
    try:
        chosen_set = sentence_set(source, file, sentences)
    except (ValueError, TypeError, OSError):
        return
    embed.check_map_sentences(chosen_set, MAPS_NEED)
    sentence_index(chosen_set, highlight)


def page_neighbours_check(source=None, file=None, sentences=None, model_1=None, model_2=None, model_3=None,
                          layer_1=None, layer_2=None, layer_3=None, pooling=None, method=None, dims=None,
                          highlight=None, neighbours=None) -> None:
    """The page's check before it asks for neighbours: chosen_sentence_check, then ValueError when the neighbours
    count is not a whole number from 1 to MAX_NEIGHBOURS. Refused here, the maps already drawn stay on the page,
    where a failed request marks them "Error"; an API caller's request answers such a count itself."""
    chosen_sentence_check(source, file, sentences, model_1, model_2, model_3, layer_1, layer_2, layer_3, pooling,
                          method, dims, highlight)
    whole_number(neighbours, "Neighbours", 1, MAX_NEIGHBOURS)


@dataclass
class NeighboursShown(Downloads):
    """Neighbours' downloads, and the maps it drew with the settings now chosen (sentences, models, layers,
    pooling): the page puts their own how-alike table, note and sentence list beside them, since Draw's would be of
    other settings."""
    drawn: Drawn | None = None


@user_errors
def find_neighbours(ctx: AppContext, source=None, file=None, sentences=None, model_1=None, model_2=None,
                    model_3=None, layer_1=None, layer_2=None, layer_3=None, pooling=None, method=None, dims=None,
                    highlight=None, neighbours=None, progress=gr.Progress()):
    """The maps with one sentence and its neighbours marked, the neighbours of each space side by side, and the
    downloads with the maps drawn (kept in a gr.State, which API clients do not receive; show_beside makes the page's
    table and note of them)."""
    chosen = chosen_models([model_1, model_2, model_3], [layer_1, layer_2, layer_3], ctx.pair)
    settings = map_settings(pooling, method, dims)
    k = whole_number(neighbours, "Neighbours", 1, MAX_NEIGHBOURS)
    sentences = sentence_set(source, file, sentences)
    embed.check_map_sentences(sentences, MAPS_NEED)  # before any model loads: it may be a download
    index = sentence_index(sentences, highlight)
    drawn, found = _draw(ctx, sentences, chosen, settings, progress, index, k)
    shown = neighbour_downloads(sentences, drawn.spaces, drawn.coords, drawn.figure, index, found)
    return (drawn.figure, embed_plots.neighbours_table(sentences, drawn.spaces, found),
            NeighboursShown(shown.files, drawn))


@user_errors
def show_beside(shown: NeighboursShown | None, cka_estimator=DEFAULT_ESTIMATOR):
    """Beside the maps Neighbours drew: their how-alike table (with the CKA estimator now chosen), the note, the
    list of their sentences and the how-alike.csv box; all left as they are before Neighbours has drawn any."""
    drawn = getattr(shown, "drawn", None)
    # The page runs this only after Neighbours filled the state, but the queue takes a private event from any
    # caller by its number, with a session whose state is still empty (or was evicted among many sessions).
    if drawn is None:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip()
    pairs = embed.compare_pairs(drawn.spaces, estimator=one_of(cka_estimator, "CKA estimator", ESTIMATORS))
    scores = Downloads({"how-alike.csv": score_table(drawn.sentences, drawn.spaces, pairs)})
    return (embed_plots.scores_table(drawn.spaces, pairs), drawn.note(pairs),
            gr.Dropdown(choices=sentence_choices(drawn.sentences)),
            file_boxes(scores, "embed-neighbours-scores", ["how-alike.csv"]))


def fit_neighbour_columns(table):
    """The neighbours table as it now is, its headers (one a model shown) and widths (a narrow rank, the models'
    columns equal) set with it, so a third model's column is named and sized."""
    return gr.Dataframe(value=table, headers=list(table.columns),
                        column_widths=embed_plots.neighbour_column_widths(max(1, len(table.columns) - 1)))


def neighbours_for_maps(scores) -> gr.Dataframe:
    """The empty neighbours table after drawing: one column a map just drawn (named as in the scores table), so no
    header of an earlier drawing stays."""
    frame = scores if isinstance(scores, pd.DataFrame) else pd.DataFrame(scores)
    names = list(dict.fromkeys([*frame.get("space A", []), *frame.get("space B", [])]))
    if not names:
        return gr.skip()
    return fit_neighbour_columns(pd.DataFrame(columns=["rank", *names]))


@user_errors
def compare_layers(ctx: AppContext, source=None, file=None, sentences=None, model_1=None, model_2=None, model_3=None,
                   pooling=None, cka_estimator=DEFAULT_ESTIMATOR, progress=gr.Progress()):
    """Heat maps of CKA and kNN overlap between every layer of model 1 and every layer of each other model, and the
    downloads (kept in a gr.State, which API clients do not receive)."""
    names = [c.name for c in chosen_models([model_1, model_2, model_3], [None] * 3, ctx.pair)]
    settings = map_settings(pooling, estimator=cka_estimator)
    sentences = sentence_set(source, file, sentences)
    embed.check_map_sentences(sentences, LAYERS_NEED)  # before any model loads: it may be a download
    models = [ctx.load(n, progress=progress) for n in names]
    check_models_and_sentences(ctx, models, sentences, settings.pooling, LAYERS_NEED)
    results = []
    for i, other in enumerate(models[1:]):
        step = functools.partial(_scaled, progress, i, len(models) - 1)
        results.append(embed.layer_similarity(models[0], other, sentences, settings.pooling, progress=step,
                                              estimator=settings.estimator))
    # as the map's title names them, with the sentence vector: a figure left beside newer maps says what it shows
    about = f"{len(sentences)} sentences ({sentences.source}), {POOLING_NAMES[settings.pooling]}"
    shared = same_tokens_lines(models, sentences, on_maps=False)
    if len(shared) > MAX_FIGURE_NOTES:  # each a line or two above the heat maps, which the rest would squeeze
        rest = len(shared) - MAX_FIGURE_NOTES + 1
        shared = shared[:MAX_FIGURE_NOTES - 1] + [f"{rest} more groups of sentences are read as the same tokens; "
                                                  "Draw's note names them all."]
    figure = embed_plots.layer_figure([m.name for m in models], results, about, notes=shared)
    return figure, layer_downloads([m.name for m in models], results, figure)


def show_source(source_name: str):
    """The upload box and the line under it for an upload, the text box for typed sentences (nothing for a name that
    is not a source)."""
    if source_name not in SOURCES:
        return gr.skip(), gr.skip(), gr.skip()
    upload = source_name == SOURCES[1]
    return gr.File(visible=upload), gr.Markdown(visible=upload), gr.Textbox(visible=source_name == SOURCES[2])


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


# ---------------------------------------------------------------------------------------------------------------------
# The tab


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
        scores = gr.Dataframe(headers=embed_plots.scores_headers(KNN_K), label="How alike", interactive=False,
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
                                  column_widths=embed_plots.neighbour_column_widths(2), elem_id="embed-neighbours",
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
    # a file Draw would refuse is told as it arrives, not only once an action is asked for
    upload.change(upload_line, upload, upload_note, api_visibility="private", show_progress="hidden")
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
    return dict(source=source, upload=upload, upload_note=upload_note, typed=typed, first=first, second=second,
                third=third, map_plot=map_plot, scores=scores, note=note, chosen=chosen,
                neighbour_rows=neighbour_rows,
                layer_plot=layer_plot,
                estimator=estimator, files=files, failed=status_line, neighbours_failed=neighbours_line,
                layers_failed=layers_line, refresh=(refresh, lists))


"""The comparisons' results as plain rows (one dict a row, columns in order), for CSV files and notebooks.

Numbers are kept unrounded; a figure that does not apply (model 1 against itself) or cannot be computed (KL with no
shared string, kNN overlap with too few sentences) is None, which pandas writes as an empty cell. Models are named
"1. name", "2. name", ... by their position, so the same model chosen twice stays two columns.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from core.compare.embed import Space
from core.compare.predict import FilledIn, SentenceComparison, WordStrip
from core.compare.sentences import SentenceSet

RECOVERED = {True: "yes", False: "no", None: "split"}  # WordStrip.recovered as people read it
AXES = ("x", "y", "z")


def _value(number: float | None) -> float | None:
    return None if number is None or math.isnan(number) else float(number)


def numbered(index: int, model: str, name: Callable[[str], str] = str) -> str:
    """A model by its position, counted from 1: "2. name"."""
    return f"{index + 1}. {name(model)}"


def prediction_rows(result: SentenceComparison, name: Callable[[str], str] = str) -> list[dict]:
    """One row per mask, model and rank of a Predict: the guessed word and its probability, and on every row of a
    model after the first its agreement with model 1 at that mask (top-1 agreement 1 or 0, top-k overlap as a
    fraction of k, KL(model 1 ‖ model) in nats; None for model 1 itself). `name` shortens model names."""
    overlap = f"top-{result.top_k} overlap"
    found = {(pair.other_index, m): item for pair in result.pairs for m, item in enumerate(pair.items)}
    rows = []
    for i, fill in enumerate(result.results):
        for m, guess in enumerate(fill.masks):
            item = found.get((i, m))
            figures = {"top-1 agreement with model 1": int(item.top1) if item else None,
                       overlap: item.overlap if item else None, "KL (nats)": _value(item.kl) if item else None}
            for rank, (word, probability) in enumerate(zip(guess.words, guess.probs), start=1):
                rows.append({"sentence": result.text, "mask": m + 1, "model": numbered(i, fill.model, name),
                             "rank": rank, "word": word, "probability": probability, **figures})
    return rows


def word_rows(strip: WordStrip, models: Sequence[str], name: Callable[[str], str] = str,
              filled: FilledIn | None = None) -> list[dict]:
    """One row per word of "Mask each word": the sentence whose words were masked (its [MASK]s filled in, see
    `filled`), the word's position and text, whether it was put in at a [MASK] ("yes" or "no"), each model's best
    guess and whether it is the masked word ("yes", "no", or "split" where that model's vocabulary cannot spell the
    word as one entry), then for each model after the first its top-1 agreement (1 or 0), top-k overlap and KL
    (nats) with model 1 at that word."""
    models = [numbered(i, model, name) for i, model in enumerate(models)]
    overlap = f"top-{len(strip.results[0][0].tokens)} overlap"  # the k each model guessed
    put_in = set(filled.spans) if filled else set()
    rows = []
    for j, word in enumerate(strip.words):
        row = {"sentence": strip.sentence, "position": j + 1, "word": word,
               "filled in": "yes" if strip.spans[j] in put_in else "no"}
        for m, model in enumerate(models):
            row[f"{model}: guess"] = strip.results[m][j].words[0]
            row[f"{model}: masked word recovered"] = RECOVERED[strip.recovered[m][j]]
        for pair in strip.pairs:
            item, model = pair.items[j], models[pair.other_index]
            row[f"{model}: top-1 agreement with model 1"] = int(item.top1)
            row[f"{model}: {overlap}"] = item.overlap
            row[f"{model}: KL (nats)"] = _value(item.kl)
        rows.append(row)
    return rows


def space_name(index: int, space: Space) -> str:
    """A map by its position, model and layer: "2. name (L4)"."""
    return f"{index + 1}. {space.model} (L{space.layer})"


def map_rows(sentences: SentenceSet, spaces: Sequence[Space], coords: Sequence[np.ndarray]) -> list[dict]:
    """One row per map and sentence: the sentence's number (from 0, as the tab numbers them), text and label, the
    map's model and layer, and the point's coordinates x, y (and z in 3D) as drawn.

    coords: one (n, 2) or (n, 3) array a space, in the sentences' order. ValueError when their count differs.
    """
    if len(coords) != len(spaces) or any(len(xy) != len(sentences) for xy in coords):
        raise ValueError("Each map needs one point per sentence; draw the maps again.")
    rows = []
    for s, (space, xy) in enumerate(zip(spaces, coords)):
        for i, (sentence, label) in enumerate(zip(sentences.sentences, sentences.labels)):
            rows.append({"sentence number": i, "sentence": sentence, "label": label, "map": s + 1,
                         "model": space.model, "layer": space.layer,
                         **{axis: float(value) for axis, value in zip(AXES, xy[i])}})
    return rows


def neighbour_rows(sentences: SentenceSet, spaces: Sequence[Space], index: int,
                   found: Sequence[Sequence[tuple[int, float]]]) -> list[dict]:
    """One row per map and rank of Neighbours: the chosen sentence (number from 0, text, label), the map's model and
    layer, then the neighbour at that rank (number, text, label), its cosine with the chosen sentence, and whether
    every map lists it ("yes" or "no", the page's ●).

    found: for each space, embed.nearest's (sentence number, cosine) pairs, nearest first. ValueError when there is
    not one list a space, or a number is outside the set.
    """
    n = len(sentences)
    if len(found) != len(spaces) or not 0 <= index < n or any(not 0 <= i < n for near in found for i, _ in near):
        raise ValueError("Each map needs its own list of neighbours from the sentence set; ask for them again.")
    shared = set.intersection(*[{i for i, _ in near} for near in found]) if found else set()
    rows = []
    for s, (space, near) in enumerate(zip(spaces, found)):
        for rank, (i, cosine) in enumerate(near, start=1):
            rows.append({"sentence number": index, "sentence": sentences.sentences[index],
                         "label": sentences.labels[index], "map": s + 1, "model": space.model, "layer": space.layer,
                         "rank": rank, "neighbour number": i, "neighbour": sentences.sentences[i],
                         "neighbour label": sentences.labels[i], "cosine": _value(cosine),
                         "in every map's list": "yes" if i in shared else "no"})
    return rows


def score_rows(spaces: Sequence[Space], pairs: Sequence[tuple[int, int, dict]]) -> list[dict]:
    """How alike every pair of spaces is (embed.compare_pairs): the CKA estimator, linear CKA, CKA with one side's
    rows shuffled (the mean over several shuffles, and their standard deviation) and kNN overlap@k, unrounded."""
    rows = []
    for a, b, scores in pairs:
        rows.append({"space A": space_name(a, spaces[a]), "space B": space_name(b, spaces[b]),
                     "estimator": scores["estimator"], "linear CKA": _value(scores["cka"]),
                     "CKA, rows shuffled": _value(scores["cka_shuffled"]),
                     "CKA, rows shuffled (sd)": _value(scores.get("cka_shuffled_sd", float("nan"))),
                     f"kNN overlap@{scores['k']}": _value(scores["knn_overlap"])})
    return rows


def layer_rows(models: Sequence[str], results: Sequence[dict]) -> list[dict]:
    """Layer similarity in long form: one row per pair of models and pair of layers, with linear CKA and kNN
    overlap@k between model 1's layer (the reference) and the other model's layer.

    results: embed.layer_similarity of models[0] against each of models[1:], in order; each "cka" and
    "knn_overlap" is (reference layers + 1, other layers + 1).
    """
    if len(results) != len(models) - 1:
        raise ValueError(f"Layer similarity of {len(models)} models needs {len(models) - 1} results; "
                         f"{len(results)} given.")
    reference = numbered(0, models[0])
    rows = []
    for o, result in enumerate(results, start=1):
        cka, knn = result["cka"], result["knn_overlap"]  # (La + 1, Lb + 1)
        for a in range(cka.shape[0]):
            for b in range(cka.shape[1]):
                rows.append({"reference model": reference, "reference layer": a,
                             "other model": numbered(o, models[o]), "other layer": b,
                             "estimator": result["estimator"], "linear CKA": _value(cka[a, b]),
                             f"kNN overlap@{result['k']}": _value(knn[a, b])})
    return rows

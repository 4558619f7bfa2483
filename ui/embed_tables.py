"""The Embeddings tab's tables, as pure functions of sentences, spaces and scores (no Gradio): how alike each pair
of spaces is (linear CKA, its shuffled-rows baseline, kNN overlap) with the note on how to read it, and each space's
nearest neighbours of a sentence."""
from __future__ import annotations

import math

import pandas as pd

from core.compare.embed import Space
from core.compare.sentences import SentenceSet
from core.compare.tables import space_name

NEIGHBOUR_RANK_PERCENT = 7  # of the table's width: room for "rank" and two digits


def number(value: float | None) -> str:
    """Three decimals, or n/a for a figure that does not exist (NaN or None); a small negative figure that rounds
    to zero reads 0.000, not -0.000."""
    if value is None or math.isnan(value):
        return "n/a"
    text = f"{value:.3f}"
    return "0.000" if text == "-0.000" else text


def scores_headers(k: int) -> list[str]:
    """The scores table's five column headers, the last naming the neighbours compared: k=10 -> "kNN overlap@10"."""
    return ["space A", "space B", "linear CKA", "CKA, rows shuffled", f"kNN overlap@{k}"]


def scores_table(spaces: list[Space], pairs: list[tuple[int, int, dict]]) -> pd.DataFrame:
    """CKA, its shuffled-rows baseline and kNN overlap for every pair of the chosen spaces (embed.compare_pairs)."""
    rows = []
    for a, b, scores in pairs:
        rows.append(dict(zip(scores_headers(scores["k"]), [
            space_name(a, spaces[a]), space_name(b, spaces[b]), number(scores["cka"]),
            number(scores["cka_shuffled"]), number(scores["knn_overlap"])])))
    return pd.DataFrame(rows)


def scores_note(pairs: list[tuple[int, int, dict]]) -> str:
    """How to read the scores table: the estimator, the baseline and its spread, whether CKA is reliable at this
    size, and why kNN overlap is n/a."""
    scores = pairs[0][2]
    spreads = [s["cka_shuffled_sd"] for _, _, s in pairs if not math.isnan(s.get("cka_shuffled_sd", math.nan))]
    line = (f"CKA: {scores['estimator']} estimator. 'Rows shuffled' is the mean CKA of the same vectors with one "
            f"side's sentences out of order, over {scores.get('shuffles', 1)} fixed-seed shuffles: what unmatched "
            "sentences score")
    if spreads:
        low, high = min(spreads), max(spreads)
        line += f" (standard deviation {number(low)}" + (f" to {number(high)}" if high - low >= 5e-4 else "") + ")"
    line += "."
    if scores.get("cka_note"):
        line += " " + scores["cka_note"]
    if scores["knn_note"]:
        line += " " + scores["knn_note"]
    return line


def neighbours_table(sentences: SentenceSet, spaces: list[Space], found: list[list[tuple[int, float]]],
                     ) -> pd.DataFrame:
    """rank, then one column a space: each neighbour's text, number and cosine; ● marks one in every space's list."""
    shared = set.intersection(*[{i for i, _ in f} for f in found])
    table = {"rank": list(range(1, len(found[0]) + 1))}
    for s, (space, near) in enumerate(zip(spaces, found)):
        table[space_name(s, space)] = [
            f"{'● ' if i in shared else ''}{sentences.sentences[i]} (#{i}, cos {cos:.2f})" for i, cos in near]
    return pd.DataFrame(table)


def neighbour_column_widths(spaces: int) -> list[str]:
    """A narrow rank column, the rest of the table's width shared equally by the spaces' columns."""
    share = (100 - NEIGHBOUR_RANK_PERCENT) / spaces
    return [f"{NEIGHBOUR_RANK_PERCENT}%"] + [f"{share:.1f}%"] * spaces

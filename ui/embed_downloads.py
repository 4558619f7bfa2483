"""The files each Embeddings action offers (CSV tables, HTML figures) and the boxes that show them."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from core.compare import embed, tables
from core.compare.sentences import SentenceSet
from ui.downloads import Downloads, file_boxes, table
from ui.embed_notes import label_purities

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

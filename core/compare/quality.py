"""How much Russian a masked LM knows, in the figures the bundled pair promises (assets/README.md):
fill-in probes top-1/top-5, everyday probes top-1/top-5, and topic purity of sentence neighbourhoods."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core.compare import embed, similarity
from core.compare.predict import predict_masks
from core.compare.probes import everyday_probes, fill_mask_probes
from core.compare.sentences import probe_set
from core.models.zoo import LoadedModel

TOPIC_K = 10


def fill_in_hits(loaded: LoadedModel, k: int) -> float:
    """Share (0..1) of the fill-in probes whose expected word is among the model's top-k guesses."""
    probes = fill_mask_probes()
    results = predict_masks(loaded, [p.sentence for p in probes], top_k=k)
    return sum(p.expected in r.masks[0].tokens[:k] for p, r in zip(probes, results)) / len(probes)


def everyday_hits(loaded: LoadedModel, k: int) -> float:
    """Share (0..1) of the everyday probes whose top-k guesses hold any acceptable answer (case-insensitive)."""
    probes = everyday_probes()
    results = predict_masks(loaded, [p.sentence for p in probes], top_k=k)
    return sum(any(w.lower() in p.answers for w in r.masks[0].tokens[:k])
               for p, r in zip(probes, results)) / len(probes)


def label_purity(vectors: np.ndarray, labels: Sequence[str], k: int = TOPIC_K) -> float:
    """Mean share (0..1) of each row's k nearest other rows (cosine) that carry its label.

    vectors: (n, hidden); labels: n texts; k shrinks to n - 1 for fewer rows. ValueError when the lengths differ."""
    labels = np.asarray(labels)
    if len(labels) != len(vectors):
        raise ValueError(f"{len(vectors)} vectors but {len(labels)} labels: give one label a vector.")
    neighbours = similarity.knn_indices(vectors, k)  # (n, k), each row left out of its own neighbours
    return float((labels[neighbours] == labels[:, None]).mean())


def chance_purity(labels: Sequence[str]) -> float:
    """The purity random neighbourhoods would get: sum over labels of (count/n) x (count-1)/(n-1)."""
    n = len(labels)
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def topic_purity(loaded: LoadedModel, k: int = TOPIC_K) -> float:
    """label_purity of the topic probe sentences' embeddings (last layer, mean pooling); chance is
    chance_purity(probe_set().labels), about 6% for 16 equal topics."""
    sentences = probe_set()
    return label_purity(embed.embed_space(loaded, sentences).vectors, sentences.labels, k)


def probe_figures(loaded: LoadedModel) -> dict[str, float]:
    """Every figure above for one model: fill_in_top1/5, everyday_top1/5 and topic_purity, each a share (0..1)."""
    return {**{f"fill_in_top{k}": fill_in_hits(loaded, k) for k in (1, 5)},
            **{f"everyday_top{k}": everyday_hits(loaded, k) for k in (1, 5)},
            "topic_purity": topic_purity(loaded)}

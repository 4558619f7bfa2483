"""How much Russian a masked LM knows, in the figures the bundled pair promises (assets/README.md):
fill-in probes top-1/top-5, everyday probes top-1/top-5, and topic purity of sentence neighbourhoods."""
from __future__ import annotations

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


def topic_purity(loaded: LoadedModel, k: int = TOPIC_K) -> float:
    """Mean share (0..1) of each topic probe sentence's k nearest neighbours (cosine, last layer, mean pooling)
    that carry its topic. Chance is about the mean topic share, roughly 1/number of topics."""
    sentences = probe_set()
    space = embed.embed_space(loaded, sentences)
    labels = np.asarray(sentences.labels)
    neighbours = similarity.knn_indices(space.vectors, k)  # (n, k), self excluded
    return float((labels[neighbours] == labels[:, None]).mean())


def chance_purity() -> float:
    """The topic purity a model with random neighbourhoods would get: sum over topics of share x (count-1)/(n-1)."""
    labels = probe_set().labels
    n = len(labels)
    counts = np.unique(np.asarray(labels), return_counts=True)[1]
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))

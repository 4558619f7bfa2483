"""The quality figures (core.compare.quality) against plain computations, and the Embeddings tab's purity line."""
import numpy as np
import pytest

from core.compare import quality
from core.compare.embed import Space
from core.compare.sentences import SentenceSet
from ui.embed_notes import purity_note


def brute_purity(vectors: np.ndarray, labels: list[str], k: int) -> float:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = unit @ unit.T
    np.fill_diagonal(cosine, -np.inf)
    shares = []
    for i, row in enumerate(cosine):
        nearest = np.argsort(-row, kind="stable")[:k]
        shares.append(np.mean([labels[j] == labels[i] for j in nearest]))
    return float(np.mean(shares))


def test_label_purity_equals_a_brute_force_count():
    rng = np.random.default_rng(0)
    labels = [f"t{i % 4}" for i in range(60)]
    centres = rng.normal(size=(4, 16))
    vectors = np.stack([centres[i % 4] + 0.8 * rng.normal(size=16) for i in range(60)])
    value = quality.label_purity(vectors, labels, k=5)
    assert value == pytest.approx(brute_purity(vectors, labels, 5))
    assert 0.5 < value <= 1.0


def test_separated_topics_are_pure_and_noise_is_near_chance():
    rng = np.random.default_rng(1)
    labels = [f"t{i % 5}" for i in range(200)]
    separated = np.stack([np.eye(5)[i % 5] * 10 + 0.01 * rng.normal(size=5) for i in range(200)])
    assert quality.label_purity(separated, labels, k=10) == 1.0
    noise = rng.normal(size=(200, 32))
    assert abs(quality.label_purity(noise, labels, k=10) - quality.chance_purity(labels)) < 0.06


def test_chance_purity_is_the_share_of_same_label_pairs():
    labels = ["a"] * 3 + ["b"] * 1 + ["c"] * 2
    pairs = [(i, j) for i in range(6) for j in range(6) if i != j]
    same = sum(labels[i] == labels[j] for i, j in pairs) / len(pairs)
    assert quality.chance_purity(labels) == pytest.approx(same)


def test_mismatched_labels_are_refused_with_a_sentence():
    with pytest.raises(ValueError, match="3 vectors but 2 labels"):
        quality.label_purity(np.ones((3, 4)), ["a", "b"])


def space(name: str, vectors: np.ndarray) -> Space:
    return Space(name, 1, 1, "mean", vectors, (name,))


def test_the_map_note_gives_each_models_purity_only_for_labelled_sentences():
    rng = np.random.default_rng(2)
    labels = tuple(f"t{i % 3}" for i in range(60))
    sentences = SentenceSet(tuple(f"s{i}" for i in range(60)), labels, "probe set")
    clustered = np.stack([np.eye(3)[i % 3] * 5 + 0.01 * rng.normal(size=3) for i in range(60)])
    note = purity_note(sentences, [space("teacher", clustered), space("noise", rng.normal(size=(60, 3)))])
    assert "teacher 100%" in note and f"chance {quality.chance_purity(labels):.0%}" in note and "10 nearest" in note
    unlabelled = SentenceSet(sentences.sentences, ("",) * 60, "the typed text")
    assert purity_note(unlabelled, [space("teacher", clustered)]) == ""
    one_label = SentenceSet(sentences.sentences, ("x",) * 60, "a file")
    assert purity_note(one_label, [space("teacher", clustered)]) == ""

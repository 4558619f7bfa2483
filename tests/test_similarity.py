"""Linear CKA (biased and debiased) and kNN overlap against plain computations of their formulas."""
from __future__ import annotations

import numpy as np
import pytest

from core.compare import similarity

RNG = np.random.default_rng(0)


def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA from its definition: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), K = XX^T, L = YY^T, H the centring matrix."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    gram_x, gram_y = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hsic(gram_x, gram_y) / np.sqrt(hsic(gram_x, gram_x) * hsic(gram_y, gram_y))


def unbiased_hsic(gram_x: np.ndarray, gram_y: np.ndarray) -> float:
    """Song et al. (2012), eq. 3 of Nguyen, Raghu & Kornblith (2020), term by term on uncentred Gram matrices:
    [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n (n-3)), K~ and L~ with zero diagonals."""
    n = gram_x.shape[0]
    kt, lt = gram_x - np.diag(np.diag(gram_x)), gram_y - np.diag(np.diag(gram_y))
    ones = np.ones(n)
    return (np.trace(kt @ lt) + (ones @ kt @ ones) * (ones @ lt @ ones) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * (ones @ kt @ lt @ ones)) / (n * (n - 3))


def debiased_cka(x: np.ndarray, y: np.ndarray) -> float:
    gram_x, gram_y = x @ x.T, y @ y.T
    return unbiased_hsic(gram_x, gram_y) / np.sqrt(unbiased_hsic(gram_x, gram_x) * unbiased_hsic(gram_y, gram_y))


def random_orthogonal(d: int) -> np.ndarray:
    q, _ = np.linalg.qr(RNG.normal(size=(d, d)))
    return q


def brute_knn(x: np.ndarray, k: int) -> list[set[int]]:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    result = []
    for i in range(len(x)):
        others = sorted((j for j in range(len(x)) if j != i), key=lambda j: -float(unit[i] @ unit[j]))
        result.append(set(others[:k]))
    return result


# ---------------------------------------------------------------------------------------------------------------------
# Linear CKA


@pytest.mark.parametrize("n, width_a, width_b", [(30, 50, 70), (80, 12, 5)])  # Gram form, then feature form
def test_both_estimators_match_their_formulas(n, width_a, width_b):
    x = RNG.normal(size=(n, width_a))
    y = np.tanh(x[:, :width_b] if width_b <= width_a else x @ RNG.normal(size=(width_a, width_b))) + \
        0.5 * RNG.normal(size=(n, width_b))
    unrelated = RNG.normal(size=(n, width_b))
    for other in (y, unrelated, y + 3.0):  # a shift changes neither estimator
        assert similarity.linear_cka(x, other, "biased") == pytest.approx(hsic_cka(x, other), rel=1e-9)
        assert similarity.linear_cka(x, other, "debiased") == pytest.approx(debiased_cka(x, other), rel=1e-9)
        assert similarity.linear_cka(x, other) == similarity.linear_cka(x, other, "debiased")  # the default


@pytest.mark.parametrize("estimator", similarity.ESTIMATORS)
def test_cka_properties(estimator):
    x = RNG.normal(size=(40, 10)) @ RNG.normal(size=(10, 10))
    assert similarity.linear_cka(x, x, estimator) == pytest.approx(1.0)
    turned = 3.7 * x @ random_orthogonal(10) + 5.0  # rotation, isotropic scale and a shift
    assert similarity.linear_cka(x, turned, estimator) == pytest.approx(1.0)
    wide = RNG.normal(size=(12, 300))  # fewer sentences than dimensions: the Gram form
    assert similarity.linear_cka(wide, 0.2 * wide @ random_orthogonal(300), estimator) == pytest.approx(1.0)
    stretched = x * np.array([10.0] + [0.1] * 9)  # scaling one axis is not isotropic: CKA must notice
    assert similarity.linear_cka(x, stretched, estimator) < 0.95
    unrelated = RNG.normal(size=(40, 6))
    assert similarity.linear_cka(x, unrelated, estimator) < similarity.linear_cka(x, x[:, :6] + 0.1 * unrelated,
                                                                                    estimator)
    assert np.isnan(similarity.linear_cka(x, np.ones((40, 3)), estimator))  # a space that does not vary


def test_debiased_cka_of_unrelated_spaces_is_near_zero():
    """704 probe sentences against BERT-base's width: the biased estimator says about 0.52 for unrelated Gaussians."""
    x, y = RNG.normal(size=(704, 768)), RNG.normal(size=(704, 768))
    debiased, biased = similarity.linear_cka(x, y), similarity.linear_cka(x, y, "biased")
    assert abs(debiased) < 0.05
    assert biased > 0.45  # the fault the debiased estimator removes, still there when asked for
    assert debiased == pytest.approx(debiased_cka(x, y), abs=1e-9)


def test_the_shuffled_baseline_pairs_no_sentence_with_itself():
    order = similarity.derangement(8)
    assert sorted(order) == list(range(8)) and not np.any(order == np.arange(8))
    assert list(similarity.derangement(8)) == list(order)  # fixed seed
    x = RNG.normal(size=(8, 256))
    y = x @ random_orthogonal(256)  # the same geometry
    assert similarity.linear_cka(x, y) == pytest.approx(1.0)
    assert similarity.shuffled_cka(x, y, shuffles=1) == pytest.approx(debiased_cka(x, y[order]), rel=1e-9)
    assert similarity.shuffled_cka(x, y) < 0.5
    assert similarity.shuffled_cka(x, y, "biased", shuffles=1) == pytest.approx(hsic_cka(x, y[order]), rel=1e-9)


def test_the_shuffled_baseline_is_the_mean_of_twenty_shuffles_with_its_spread():
    """With 4 or 5 sentences one shuffle said 0.99 or -0.38: the baseline is the mean of 20 derangements, and their
    standard deviation says how far CKA moves by chance at that size."""
    for n in (4, 5, 30):
        x = RNG.normal(size=(n, 16))
        y = x @ RNG.normal(size=(16, 8)) + 0.3 * RNG.normal(size=(n, 8))
        values = []
        for seed in range(20):
            order = similarity.derangement(n, seed)
            assert not np.any(order == np.arange(n))
            values.append(debiased_cka(x, y[order]))
        mean, spread = similarity.shuffled_cka_spread(x, y)
        assert (mean, spread) == (pytest.approx(np.mean(values), abs=1e-9), pytest.approx(np.std(values), abs=1e-9))
        assert similarity.shuffled_cka(x, y) == pytest.approx(np.mean(values), abs=1e-9)
        note = similarity.reliability_note(n)
        assert (f"With {n} sentences CKA is unreliable" in note) == (n < 20)
    assert similarity.reliability_note(20) == ""
    small = RNG.normal(size=(4, 16))
    assert similarity.shuffled_cka_spread(small, small @ RNG.normal(size=(16, 16)))[1] > 0.1  # spread shows it


def test_cka_refuses_what_it_cannot_compute():
    x = RNG.normal(size=(3, 5))
    with pytest.raises(ValueError, match="at least 4 sentences; there are 3.*biased estimator"):
        similarity.linear_cka(x, x)
    assert similarity.linear_cka(x, x, "biased") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="'debiased' or 'biased', not 'unbiased'"):
        similarity.linear_cka(RNG.normal(size=(10, 5)), RNG.normal(size=(10, 5)), "unbiased")


@pytest.mark.parametrize("estimator", similarity.ESTIMATORS)
def test_cka_matrix_is_pairwise_cka(estimator):
    a = [RNG.normal(size=(25, w)) for w in (8, 30)]
    b = [a[0] @ RNG.normal(size=(8, 4)), RNG.normal(size=(25, 40)), a[1]]
    matrix = similarity.cka_matrix(a, b, estimator)
    reference = debiased_cka if estimator == "debiased" else hsic_cka
    assert matrix.shape == (2, 3)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            assert matrix[i, j] == pytest.approx(reference(x, y), rel=1e-9)


def test_closest_rows_leaves_out_nan():
    matrix = np.array([[0.2, np.nan, 0.9], [0.7, np.nan, np.nan], [0.1, np.nan, 0.95]])
    assert list(similarity.closest_rows(matrix)) == [1, -1, 2]


# ---------------------------------------------------------------------------------------------------------------------
# kNN overlap


def test_knn_overlap_against_brute_force():
    x = RNG.normal(size=(50, 6))
    y = x + 0.8 * RNG.normal(size=(50, 6))
    expected = np.mean([len(a & b) / 10 for a, b in zip(brute_knn(x, 10), brute_knn(y, 10))])
    assert similarity.knn_overlap(x, y, 10) == pytest.approx(expected)
    assert [set(row) for row in similarity.knn_indices(x, 10)] == brute_knn(x, 10)
    assert similarity.knn_overlap(x, 2.0 * x @ random_orthogonal(6), 10) == pytest.approx(1.0)


def test_knn_overlap_on_points_around_a_circle():
    """Points evenly around a circle: the 2 cosine neighbours of point i are i-1 and i+1 (mod n)."""
    n = 24
    angles = 2 * np.pi * np.arange(n) / n
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    place = np.arange(n)
    place[[0, 1]] = [1, 0]  # space B: points 0 and 1 trade places around the circle
    moved = circle[place]
    at_position = np.argsort(place)  # which point sits at each place
    neighbours_a = [{(i - 1) % n, (i + 1) % n} for i in range(n)]
    neighbours_b = [{at_position[(place[i] - 1) % n], at_position[(place[i] + 1) % n]} for i in range(n)]
    expected = np.mean([len(a & b) / 2 for a, b in zip(neighbours_a, neighbours_b)])
    assert expected < 1.0
    assert similarity.knn_overlap(circle, moved, 2) == pytest.approx(expected)
    assert similarity.knn_overlap_matrix([circle], [circle, moved], 2) == pytest.approx(np.array([[1.0, expected]]))


def test_knn_overlap_is_not_reported_when_every_sentence_neighbours_all_others():
    """8 sentences, k = 10: each neighbour list would be all 7 others, and any two spaces would score 1."""
    x, unrelated = RNG.normal(size=(8, 32)), RNG.normal(size=(8, 32))
    assert np.isnan(similarity.knn_overlap(x, unrelated))
    assert np.isnan(similarity.knn_overlap_matrix([x], [x, unrelated])).all()
    reason = similarity.knn_unavailable(8)
    assert "8 sentences" in reason and "all 7 others" in reason and "at least 12" in reason and reason.endswith(".")
    assert similarity.knn_unavailable(11, 10) and not similarity.knn_unavailable(12, 10)
    twelve, other = RNG.normal(size=(12, 32)), RNG.normal(size=(12, 32))
    assert similarity.knn_overlap(twelve, other) < 1.0  # k < n - 1: unrelated spaces disagree somewhere
    assert similarity.knn_indices(RNG.normal(size=(5, 3))).shape == (5, 4)  # neighbour lists still cut k to n - 1

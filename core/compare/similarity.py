"""How alike two embedding spaces are, whatever their widths: linear CKA and the overlap of nearest-neighbour sets.

Both compare the same sentences embedded by two models, row i of each matrix being sentence i, so the models need
no shared vocabulary or width: each tokenises with its own tokenizer and only sentence-level vectors meet here.
"""
from __future__ import annotations

import functools

import numpy as np
from threadpoolctl import threadpool_limits

KNN_K = 10


def one_blas_thread(fn):
    """Run fn with BLAS on one thread.

    The matrices here are small (sentences x width). An SVD makes thousands of small BLAS calls, and waking BLAS
    threads for each one made a 500 x 256 PCA take 9 s instead of 0.04 s on a 2-core machine shared with other work.
    """
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with threadpool_limits(limits=1, user_api="blas"):
            return fn(*args, **kwargs)
    return wrapper


def _check_rows(x: np.ndarray, y: np.ndarray) -> None:
    if x.ndim != 2 or y.ndim != 2:
        raise ValueError("Embeddings must be 2-D arrays: one row a sentence.")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"The two spaces hold different numbers of sentences ({x.shape[0]} and {y.shape[0]}); "
                         "embed the same sentences with both models.")
    if x.shape[0] < 2:
        raise ValueError("Comparing two spaces needs at least 2 sentences.")


def _centred(x: np.ndarray) -> np.ndarray:
    """Columns centred; all zeros when the rows are equal, so rounding noise is not taken for variation."""
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0, keepdims=True)
    if np.linalg.norm(centred) <= 1e-9 * np.linalg.norm(x):
        centred[:] = 0.0
    return centred


def _unit_gram(x: np.ndarray) -> np.ndarray | None:
    """The centred linear Gram matrix of x scaled to unit Frobenius norm; None when x does not vary."""
    xc = _centred(x)
    gram = xc @ xc.T  # (n, n)
    norm = np.linalg.norm(gram)
    return None if norm == 0 else gram / norm


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA of Kornblith et al. (2019): ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F).

    x: (n, width_a), y: (n, width_b). 1 for spaces equal up to rotation and isotropic scaling, near 0 for unrelated
    ones. NaN when either space does not vary (every sentence has the same vector, as CLS pooling at layer 0 gives).
    """
    _check_rows(x, y)
    return float(cka_matrix([x], [y])[0, 0])


@one_blas_thread
def cka_matrix(spaces_a: list[np.ndarray], spaces_b: list[np.ndarray]) -> np.ndarray:
    """Linear CKA between every space of spaces_a and every space of spaces_b (e.g. every teacher and student layer).

    Returns (len(spaces_a), len(spaces_b)). Works on the centred (n, n) Gram matrices when they are smaller than the
    features, else on the (width_a, width_b) cross-covariances: the two forms are equal, the cheaper one is used.
    """
    for x in spaces_a + spaces_b:
        _check_rows(spaces_a[0], x)
    n = spaces_a[0].shape[0]
    widest = max(x.shape[1] for x in spaces_a + spaces_b)
    result = np.full((len(spaces_a), len(spaces_b)), np.nan)
    if n <= widest:
        grams_b = [_unit_gram(y) for y in spaces_b]
        for i, x in enumerate(spaces_a):
            gram_a = _unit_gram(x)
            for j, gram_b in enumerate(grams_b):
                if gram_a is not None and gram_b is not None:
                    result[i, j] = float(np.sum(gram_a * gram_b))  # <Ka, Kb>_F of unit Gram matrices
        return result
    centred_b = [_centred(y) for y in spaces_b]
    self_b = [np.linalg.norm(yc.T @ yc) for yc in centred_b]
    for i, x in enumerate(spaces_a):
        xc = _centred(x)
        self_a = np.linalg.norm(xc.T @ xc)
        for j, yc in enumerate(centred_b):
            if self_a > 0 and self_b[j] > 0:
                result[i, j] = np.linalg.norm(yc.T @ xc) ** 2 / (self_a * self_b[j])  # (width_b, width_a) inside
    return result


def effective_k(n: int, k: int = KNN_K) -> int:
    """k, or fewer when there are not k other sentences."""
    return max(1, min(k, n - 1))


@one_blas_thread
def knn_indices(x: np.ndarray, k: int = KNN_K) -> np.ndarray:
    """(n, k) indices of each sentence's k nearest other sentences by cosine similarity, itself left out."""
    k = effective_k(x.shape[0], k)
    from sklearn.neighbors import NearestNeighbors  # imported on first use: it adds seconds to the app's start
    finder = NearestNeighbors(n_neighbors=k, metric="cosine", algorithm="brute").fit(np.asarray(x, dtype=np.float64))
    return finder.kneighbors(return_distance=False)  # without a query, each point is left out of its own neighbours


def neighbour_overlap(indices_a: np.ndarray, indices_b: np.ndarray) -> float:
    """Mean over sentences of |kNN_A(i) ∩ kNN_B(i)| / k, from two (n, k) neighbour index arrays."""
    shared = (indices_a[:, :, None] == indices_b[:, None, :]).sum(axis=(1, 2))  # (n,) size of each intersection
    return float(shared.mean() / indices_a.shape[1])


def knn_overlap(x: np.ndarray, y: np.ndarray, k: int = KNN_K) -> float:
    """Mean fraction of each sentence's k cosine nearest neighbours that the two spaces share (1 = same neighbours)."""
    _check_rows(x, y)
    return neighbour_overlap(knn_indices(x, k), knn_indices(y, k))


def knn_overlap_matrix(spaces_a: list[np.ndarray], spaces_b: list[np.ndarray], k: int = KNN_K) -> np.ndarray:
    """kNN overlap between every space of spaces_a and every space of spaces_b: (len(spaces_a), len(spaces_b))."""
    for x in spaces_a + spaces_b:
        _check_rows(spaces_a[0], x)
    neighbours_b = [knn_indices(y, k) for y in spaces_b]
    result = np.zeros((len(spaces_a), len(spaces_b)))
    for i, x in enumerate(spaces_a):
        neighbours_a = knn_indices(x, k)
        for j, found in enumerate(neighbours_b):
            result[i, j] = neighbour_overlap(neighbours_a, found)
    return result

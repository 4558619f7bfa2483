"""How alike two embedding spaces are, whatever their widths: linear CKA and the overlap of nearest-neighbour sets.

Both compare the same sentences embedded by two models, row i of each matrix being sentence i, so the models need
no shared vocabulary or width: each tokenises with its own tokenizer and only sentence-level vectors meet here.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

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


ESTIMATORS = ("debiased", "biased")
MIN_DEBIASED_SENTENCES = 4  # the unbiased HSIC estimator divides by n (n - 3)
SHUFFLE_SEED = 0


def check_estimator(estimator: str) -> str:
    """The estimator's name in lower case; ValueError for anything but 'debiased' or 'biased'."""
    name = estimator.strip().lower() if isinstance(estimator, str) else ""
    if name not in ESTIMATORS:
        raise ValueError(f"The CKA estimator must be 'debiased' or 'biased', not '{estimator}'.")
    return name


@dataclass(frozen=True, eq=False)
class _Prepared:
    """What CKA needs of one space: centred features, or their (n, n) Gram matrix when that is the smaller."""
    centred: np.ndarray  # (n, width) float64, column means removed
    gram: np.ndarray | None  # (n, n) = centred @ centred.T, or None for the feature form
    row_norms: np.ndarray  # (n,) squared norm of each centred row: the diagonal of the centred Gram matrix
    total: float  # sum of row_norms: the trace of the centred Gram matrix

    @classmethod
    def of(cls, x: np.ndarray, gram_form: bool) -> _Prepared:
        xc = _centred(x)
        row_norms = np.einsum("ij,ij->i", xc, xc)
        return cls(xc, xc @ xc.T if gram_form else None, row_norms, float(row_norms.sum()))

    def trace_product(self, other: _Prepared) -> float:
        """tr(K L) of the centred Gram matrices K, L: <K, L>_F, or ||Yc^T Xc||_F^2 in feature form (equal)."""
        if self.gram is not None and other.gram is not None:
            return float(np.sum(self.gram * other.gram))
        return float(np.linalg.norm(other.centred.T @ self.centred) ** 2)  # (width_b, width_a) inside


def _hsic(a: _Prepared, b: _Prepared, debiased: bool) -> float:
    """HSIC of two linear kernels, up to a factor shared by every pair of the same n (it cancels in CKA).

    Biased: tr(Kc Lc), Kc the centred Gram matrix (Gretton et al. 2005). Debiased: the unbiased estimator of
    Song et al. (2012), as Nguyen, Raghu & Kornblith (2020) use for CKA,
        [tr(K~ L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1] / (n (n-3)),  K~ = K with a zero diagonal,
    which on centred features (K 1 = 0, so 1'K~1 = -tr K and K~1 = -diag K) reduces to the three terms below.
    """
    product = a.trace_product(b)
    if not debiased:
        return product
    n = a.centred.shape[0]
    return product - n / (n - 2) * float(a.row_norms @ b.row_norms) + a.total * b.total / ((n - 1) * (n - 2))


def linear_cka(x: np.ndarray, y: np.ndarray, estimator: str = "debiased") -> float:
    """Linear CKA of Kornblith et al. (2019): HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)) with K = XX^T, L = YY^T.

    x: (n, width_a), y: (n, width_b), row i of each the same sentence. 1 for spaces equal up to rotation, isotropic
    scaling and a shift. estimator "debiased" (the default) uses the unbiased HSIC estimator (Song et al. 2012;
    Nguyen, Raghu & Kornblith 2020): near 0 for unrelated spaces, even with few sentences and wide vectors, and it can
    fall a little below 0. "biased" is the original estimator, which is high for unrelated spaces when the sentences
    are few against the width (704 x 768 unrelated Gaussians: about 0.5). NaN when either space does not vary (every
    sentence has the same vector, as CLS pooling at layer 0 gives). ValueError for mismatched rows, an unknown
    estimator, or fewer than 4 sentences for the debiased one.
    """
    _check_rows(x, y)
    return float(cka_matrix([x], [y], estimator)[0, 0])


def derangement(n: int, seed: int = SHUFFLE_SEED) -> np.ndarray:
    """(n,) a fixed-seed permutation that moves every row (one random cycle): no sentence stays matched."""
    order = np.random.default_rng(seed).permutation(n)
    result = np.empty(n, dtype=int)
    result[order] = np.roll(order, -1)  # order[i] -> order[i + 1]
    return result


SHUFFLES = 20  # derangements the shuffled baseline averages over: one alone swings widely for few sentences
RELIABLE_SENTENCES = 20  # below this, CKA and its baseline move a lot with the choice of sentences


def shuffled_cka_spread(x: np.ndarray, y: np.ndarray, estimator: str = "debiased", shuffles: int = SHUFFLES,
                        seed: int = SHUFFLE_SEED) -> tuple[float, float]:
    """(mean, standard deviation) of CKA of x against y with y's rows deranged, over `shuffles` fixed-seed
    derangements (seeds seed, seed + 1, ...): what unmatched sentences score, and how much that moves.

    One derangement alone is a poor baseline with few sentences (4 sentences: 0.99 with one seed, -0.38 with
    another); the spread says how far a CKA can move by chance at this size. NaN where CKA is NaN.
    """
    _check_rows(x, y)
    y = np.asarray(y)
    values = cka_matrix([x], [y[derangement(len(y), seed + i)] for i in range(shuffles)], estimator)[0]
    values = values[~np.isnan(values)]
    if not len(values):
        return float("nan"), float("nan")
    return float(values.mean()), float(values.std())


def shuffled_cka(x: np.ndarray, y: np.ndarray, estimator: str = "debiased", seed: int = SHUFFLE_SEED,
                 shuffles: int = SHUFFLES) -> float:
    """Mean CKA of x against y with y's rows shuffled so that no sentence meets itself: what unmatched sentences
    score, over `shuffles` fixed-seed derangements (shuffled_cka_spread gives the spread too).

    A baseline to read a CKA against: the same vectors and widths, the pairing of sentences destroyed.
    """
    return shuffled_cka_spread(x, y, estimator, shuffles, seed)[0]


def reliability_note(n: int) -> str:
    """One sentence when n sentences are too few for CKA to mean much; "" from RELIABLE_SENTENCES on."""
    if n >= RELIABLE_SENTENCES:
        return ""
    return (f"With {n} sentences CKA is unreliable: it moves a lot with the choice of sentences, as the spread of the "
            f"shuffled baseline shows; use at least {RELIABLE_SENTENCES} sentences.")


@one_blas_thread
def cka_matrix(spaces_a: list[np.ndarray], spaces_b: list[np.ndarray], estimator: str = "debiased") -> np.ndarray:
    """Linear CKA between every space of spaces_a and every space of spaces_b (e.g. every teacher and student layer).

    Returns (len(spaces_a), len(spaces_b)), NaN where a space does not vary. Works on the centred (n, n) Gram matrices
    when they are smaller than the features, else on the (width_a, width_b) cross-covariances: the two forms are
    equal, the cheaper one is used. ValueError as for linear_cka.
    """
    debiased = check_estimator(estimator) == "debiased"
    for x in spaces_a + spaces_b:
        _check_rows(spaces_a[0], x)
    n = spaces_a[0].shape[0]
    if debiased and n < MIN_DEBIASED_SENTENCES:
        raise ValueError(f"Debiased CKA needs at least {MIN_DEBIASED_SENTENCES} sentences; there are {n}. "
                         "Add sentences or choose the biased estimator.")
    gram_form = n <= max(x.shape[1] for x in spaces_a + spaces_b)
    prepared_b = [_Prepared.of(y, gram_form) for y in spaces_b]
    self_b = [_hsic(b, b, debiased) for b in prepared_b]
    result = np.full((len(spaces_a), len(spaces_b)), np.nan)
    for i, x in enumerate(spaces_a):
        a = _Prepared.of(x, gram_form)
        self_a = _hsic(a, a, debiased)
        for j, b in enumerate(prepared_b):
            if self_a > 0 and self_b[j] > 0:
                result[i, j] = _hsic(a, b, debiased) / np.sqrt(self_a * self_b[j])
    return result


def closest_rows(matrix: np.ndarray) -> np.ndarray:
    """(columns,) for each column the row of its largest value, NaN left out; -1 where a column is all NaN.

    On a layer-similarity matrix (reference layers x other layers): the reference layer closest to each other layer.
    """
    filled = np.where(np.isnan(matrix), -np.inf, matrix)
    best = filled.argmax(axis=0)
    return np.where(np.isfinite(filled.max(axis=0)), best, -1)


def effective_k(n: int, k: int = KNN_K) -> int:
    """k, or fewer when there are not k other sentences (a neighbour list is then every other sentence)."""
    return max(1, min(k, n - 1))


def knn_unavailable(n: int, k: int = KNN_K) -> str:
    """Why kNN overlap@k means nothing for n sentences, in one sentence; "" when it does (k < n - 1).

    With k >= n - 1 each sentence's neighbours are all the others in any space, so every pair of spaces scores 1.
    """
    if k < n - 1:
        return ""
    return (f"kNN overlap@{k} is not shown for {n} sentences: each sentence's {k} nearest neighbours would be all "
            f"{n - 1} others in any space, so any two spaces would agree; it needs at least {k + 2} sentences.")


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
    """Mean fraction of each sentence's k cosine nearest neighbours that the two spaces share (1 = same neighbours).

    x: (n, width_a), y: (n, width_b). Two unrelated spaces share k / (n - 1) on average. NaN when k >= n - 1
    (knn_unavailable says why).
    """
    _check_rows(x, y)
    return float(knn_overlap_matrix([x], [y], k)[0, 0])


def does_not_vary(x: np.ndarray, tolerance: float = 1e-10) -> bool:
    """Whether every row of x (n, width) is the same vector, to rounding: then no sentence is nearer than another,
    and neighbours are only the order of the ties."""
    x = np.asarray(x, dtype=np.float64)
    spread = float(np.sum((x - x.mean(axis=0)) ** 2))
    return spread <= tolerance * max(float(np.sum(x**2)), 1e-300)


def knn_overlap_matrix(spaces_a: list[np.ndarray], spaces_b: list[np.ndarray], k: int = KNN_K) -> np.ndarray:
    """kNN overlap between every space of spaces_a and every space of spaces_b: (len(spaces_a), len(spaces_b)).

    All NaN when k >= n - 1 (knn_unavailable says why); NaN where either space does not vary (30 copies of one
    sentence scored 1.000 from the tie order alone, while CKA rightly said n/a).
    """
    for x in spaces_a + spaces_b:
        _check_rows(spaces_a[0], x)
    result = np.full((len(spaces_a), len(spaces_b)), np.nan)
    if knn_unavailable(spaces_a[0].shape[0], k):
        return result
    neighbours_b = [None if does_not_vary(y) else knn_indices(y, k) for y in spaces_b]
    for i, x in enumerate(spaces_a):
        if does_not_vary(x):
            continue
        neighbours_a = knn_indices(x, k)
        for j, found in enumerate(neighbours_b):
            if found is not None:
                result[i, j] = neighbour_overlap(neighbours_a, found)
    return result

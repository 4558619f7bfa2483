"""Sentence embeddings from any layer of a teacher or student, their PCA/UMAP maps and nearest neighbours, cached.

In a notebook:
    from core.compare import embed
    from core.models import zoo
    from core.compare.sentences import probe_set
    teacher, student = zoo.load("bundled-teacher"), zoo.load("bundled-student")
    sentences = probe_set()
    a, b = embed.embed_space(teacher, sentences), embed.embed_space(student, sentences, layer=-1, pooling="mean")
    embed.compare(a, b)                      # {"cka": ..., "cka_shuffled": ..., "knn_overlap": ..., "k": 10, ...}
    coords = embed.project(a, "umap", dims=2)  # (n, 2)
    embed.nearest(a, 0, 5, sentences.sentences)  # [(sentence index, cosine), ...], copies of a text once
    embed.same_tokens(teacher, sentences)      # different sentences it reads alike (emoji as [UNK]): one point
    embed.layer_similarity(teacher, student, sentences)["cka"]  # (teacher layers + 1, student layers + 1)

Each model tokenises with its own tokenizer; only sentence vectors are compared (see core.compare.similarity), so a
student may have its own vocabulary and width. Layer 0 is the embedding layer, layer L the last transformer layer.
The sentences come as a core.compare.sentences.SentenceSet (probe set, typed lines or an upload).
"""
from __future__ import annotations

import hashlib
import logging
import threading
import warnings
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from core.compare import similarity
from core.compare.sentences import SentenceSet
from core.models.student import num_layers
from core.models.zoo import LoadedModel

POOLINGS = ("mean", "cls")
METHODS = ("pca", "umap")
MAX_TOKENS = 256  # a sentence keeps its first 256 tokens (fewer when the model has fewer positions)
MIN_MAP_SENTENCES = 4
# random_state makes UMAP single-threaded; on the 2-core machine it was also faster than the threaded fit
# (704 sentences: 1.4 s against 5 s), and it draws the same map for the same input.
UMAP_SETTINGS = dict(n_neighbors=15, min_dist=0.1, metric="cosine", random_state=42, n_jobs=1)

Progress = Callable[[float, str], None]  # (fraction done, description)
log = logging.getLogger(__name__)
warnings.filterwarnings("ignore", message="Tensorflow not installed; ParametricUMAP")  # the lab uses plain UMAP


class _ArrayLRU:
    """A thread-safe least-recently-used store of read-only numpy arrays, bounded by their total bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple) -> np.ndarray | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key: tuple, value: np.ndarray) -> np.ndarray:
        value.setflags(write=False)  # callers share the cached array; nobody may change it
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > 1 and sum(v.nbytes for v in self._items.values()) > self.max_bytes:
                self._items.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


# All layers of the real-size teacher for 5000 sentences take about 200 MB.
EMBEDDINGS = _ArrayLRU(1 << 30)
PROJECTIONS = _ArrayLRU(64 << 20)


@dataclass(frozen=True, eq=False)
class Space:
    """One model's embeddings of a sentence set at one layer."""
    model: str
    layer: int
    layers: int  # the model's transformer layers; valid layers are 0..layers
    pooling: str
    vectors: np.ndarray  # (n, hidden), read-only; its own memory, not a view of the cached stack of every layer
    key: tuple  # (model version, pooling, sentences key, layer): projections are cached under it


def layer_count(loaded: LoadedModel) -> int:
    return num_layers(loaded.model.config)


def resolve_layer(loaded: LoadedModel, layer: int | None, label: str = "The layer") -> int:
    """A layer number from 0 (embeddings) to L (last); None is the last, and negative numbers count from the last as
    Python counts (-1 = L, -(L + 1) = 0). ValueError, starting with `label`, naming the range both ways for a layer
    the model lacks or one that is not a whole number."""
    last = layer_count(loaded)
    if layer is None:
        return last
    number = isinstance(layer, (int, float, np.integer)) and not isinstance(layer, bool) and np.isfinite(layer)
    whole = number and int(layer) == layer
    if not whole or not -(last + 1) <= layer <= last:
        got = f"{int(layer):,}" if whole else repr(layer)  # 1e9 as a person reads it, not 1000000000
        raise ValueError(f"{label} must be from {-(last + 1)} to {last} for {loaded.name}: 0 is its embeddings and "
                         f"{last} its last layer; negative layers count from the last, as in Python (-1 is layer "
                         f"{last}, {-(last + 1)} is layer 0). Got {got}.")
    return int(layer) % (last + 1)


def model_version(loaded: LoadedModel) -> str:
    """The model's name and a fingerprint of its weights, so a student that trained further gets new embeddings."""
    digest = hashlib.sha1(loaded.name.encode())
    for name, tensor in loaded.model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().reshape(-1)[:16].float().cpu().numpy().tobytes())
    return f"{loaded.name}@{digest.hexdigest()[:12]}"


def _check_pooling(pooling: str) -> str:
    name = pooling.strip().lower() if isinstance(pooling, str) else ""
    if name not in POOLINGS:
        raise ValueError(f"Pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}.")
    return name


def _max_positions(config) -> int:
    return int(getattr(config, "max_position_embeddings", MAX_TOKENS))


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """(bs, seq, hidden) states and (bs, seq) mask -> (bs, hidden): the mean over the real tokens, padding left out.
    The tab's "mean" pooling, and what the teacher's nearby-lines objective (train/neighbour_contrast.py) trains."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def tokens_read(loaded: LoadedModel) -> int:
    """How many tokens of a sentence `loaded` reads: MAX_TOKENS, or fewer when the model has fewer positions."""
    return min(MAX_TOKENS, _max_positions(loaded.model.config))


def _token_ids(loaded: LoadedModel, sentences: tuple[str, ...]) -> list[list[int]]:
    """The ids of the tokens `loaded` reads of each sentence (tokens_read at most), special tokens included."""
    return loaded.tokenizer(list(sentences), truncation=True, max_length=tokens_read(loaded),
                            return_attention_mask=False, return_token_type_ids=False)["input_ids"]


@torch.inference_mode()
def _pooled_layers(loaded: LoadedModel, sentences: tuple[str, ...], pooling: str, batch_size: int,
                   progress: Progress | None) -> np.ndarray:
    """(layers + 1, n, hidden): every layer's sentence vectors from one pass over the sentences.

    Sentences the model reads as the same tokens (copies, or texts whose differences it reads as [UNK]) are embedded
    once and share that vector exactly, so they share one point on a map whatever batch they would have fallen in.
    """
    tokenizer, model = loaded.tokenizer, loaded.model
    distinct: dict[tuple[int, ...], int] = {}  # token ids -> row among the distinct sequences
    slot = [distinct.setdefault(tuple(ids), len(distinct)) for ids in _token_ids(loaded, sentences)]  # (n,)
    token_ids = [list(ids) for ids in distinct]
    # Sentences of similar length share a batch: less padding to compute.
    order = sorted(range(len(token_ids)), key=lambda i: len(token_ids[i]))
    device = next(model.parameters()).device
    result: np.ndarray | None = None
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        padded = tokenizer.pad({"input_ids": [token_ids[i] for i in batch]}, padding_side="right",
                               return_tensors="pt")
        mask = padded["attention_mask"].to(device)  # (bs, seq)
        hidden = model.base_model(input_ids=padded["input_ids"].to(device), attention_mask=mask,
                                  output_hidden_states=True).hidden_states  # layers + 1 of (bs, seq, hidden)
        pooled = [h[:, 0] if pooling == "cls" else mean_pool(h, mask) for h in hidden]  # (bs, hidden) each
        if result is None:
            result = np.empty((len(hidden), len(token_ids), pooled[0].shape[-1]), dtype=np.float32)
        result[:, batch] = torch.stack(pooled).float().cpu().numpy()  # (layers + 1, bs, hidden)
        if progress is not None:
            progress(min(1.0, (start + len(batch)) / len(order)), f"Embedding with {loaded.name}")
    # every sentence read differently: slot is 0..n-1, and copying the stack would double its memory
    return result if len(token_ids) == len(slot) else result[:, slot]  # (layers + 1, n, hidden)


def all_layers(loaded: LoadedModel, sentences: SentenceSet, pooling: str = "mean", batch_size: int = 32,
               progress: Progress | None = None, version: str | None = None) -> np.ndarray:
    """(layers + 1, n, hidden) read-only sentence vectors of every layer, cached per model version, pooling and set.

    One pass gives every layer, so the whole stack is cached: another layer or the layer heatmap costs no pass.
    """
    pooling = _check_pooling(pooling)
    key = (version or model_version(loaded), pooling, sentences.key)
    found = EMBEDDINGS.get(key)
    if found is None:
        found = EMBEDDINGS.put(key, _pooled_layers(loaded, sentences.sentences, pooling, batch_size, progress))
    return found


def token_lengths(loaded: LoadedModel, sentences: SentenceSet) -> list[int]:
    """How many tokens `loaded` reads (tokens_read at most) of each different token sequence among `sentences`, in
    the order of their first sentences: what embedding them costs, since sentences read as the same tokens are
    embedded once (see _pooled_layers)."""
    distinct = dict.fromkeys(tuple(ids) for ids in _token_ids(loaded, sentences.sentences))
    return [len(ids) for ids in distinct]


@dataclass(frozen=True)
class SameTokens:
    """Different sentences that a model reads as the same tokens: they get one vector at every layer, one point."""
    sentences: tuple[int, ...]  # each different text by its first sentence's number (from 0), in order
    unknown_only: bool  # every token but [CLS]/[SEP] is the unknown token: the vocabulary has none of the characters
    with_unknown: bool  # some token is the unknown token: the texts may differ only in characters it does not know
    truncated: bool  # they fill the tokens the model reads: they may differ only after them


def same_tokens(loaded: LoadedModel, sentences: SentenceSet) -> list[SameTokens]:
    """Each group of two or more different sentences that `loaded` reads as the same token ids, in the order of their
    first sentences; copies of one text are one sentence here (they share a point by design)."""
    unknown = getattr(loaded.tokenizer, "unk_token_id", None)
    special = set(loaded.tokenizer.all_special_ids) - {unknown}
    firsts = {}  # text -> its first sentence's number
    for i, text in enumerate(sentences.sentences):
        firsts.setdefault(text, i)
    ids = _token_ids(loaded, tuple(firsts))
    groups: dict[tuple[int, ...], list[int]] = {}
    for first, tokens in zip(firsts.values(), ids):
        groups.setdefault(tuple(tokens), []).append(first)
    found = []
    for tokens, members in groups.items():
        if len(members) < 2:
            continue
        words = [t for t in tokens if t not in special]
        found.append(SameTokens(tuple(members), bool(words) and all(t == unknown for t in words),
                                unknown is not None and unknown in words, len(tokens) >= tokens_read(loaded)))
    return found


def check_readable(loaded: LoadedModel, sentences: SentenceSet, needs: str = "The maps need") -> None:
    """ValueError when `loaded` reads the different sentences as fewer than MIN_MAP_SENTENCES different token
    sequences: fewer points than a map needs (one when it reads them all alike), and a CKA of them means nothing
    (three points gave -1.000). The sentence says which read alike and why: characters missing from its vocabulary
    (emoji, rare symbols), or a shared start as long as all it reads; `needs` names what needs more points, as in
    check_map_sentences. Sets of fewer different texts are check_map_sentences' to refuse."""
    groups = same_tokens(loaded, sentences)
    different = len(set(sentences.sentences))
    read = different - sum(len(g.sentences) - 1 for g in groups)  # different token sequences
    if not groups or read >= min(MIN_MAP_SENTENCES, different):
        return
    if read == 1:
        if groups[0].unknown_only:
            why = "only unknown tokens ([UNK]): its vocabulary has none of their characters"
        elif groups[0].truncated:
            why = f"the same first {tokens_read(loaded)} tokens, all that it reads of a sentence"
        else:
            why = "the same tokens: the characters that tell them apart are unknown to it ([UNK])"
        raise ValueError(f"To {loaded.name}, all {different} different sentences are {why}; it would put them on one "
                         "point, with nothing to map or compare. Use sentences with words it knows.")
    alike = "; ".join(f"{', '.join(f'#{i}' for i in g.sentences)} "
                      f"{'are only unknown tokens ([UNK])' if g.unknown_only else 'read alike'}" for g in groups)
    more = MIN_MAP_SENTENCES - read
    raise ValueError(f"To {loaded.name}, these {different} different sentences are only {read} different token "
                     f"sequences ({alike}): {needs[:1].lower()}{needs[1:]} at least {MIN_MAP_SENTENCES} different "
                     f"points. Add {more} more {'sentence' if more == 1 else 'sentences'} with words it knows.")


def check_map_sentences(sentences: SentenceSet, needs: str = "The maps need") -> None:
    """ValueError, saying how many to add, when the set has fewer than MIN_MAP_SENTENCES different sentences: a map
    of fewer has nothing to show, and debiased CKA needs as many. Copies of a text count once (they share a point).
    `needs` begins the sentence, naming what needs them: "The maps need", "Layer similarity needs"."""
    different = len(set(sentences.sentences))
    if different >= MIN_MAP_SENTENCES:
        return
    there = f"there {'is' if different == 1 else 'are'} {different}"
    if different < len(sentences):
        there += f" among {len(sentences)} (copies of a sentence count once)"
    raise ValueError(f"{needs} at least {MIN_MAP_SENTENCES} different sentences; {there}: add "
                     f"{MIN_MAP_SENTENCES - different} more.")


def is_embedded(loaded: LoadedModel, sentences: SentenceSet, pooling: str = "mean") -> bool:
    """True when the vectors of `sentences` by `loaded` with this pooling are cached: embedding them costs nothing."""
    return EMBEDDINGS.get((model_version(loaded), _check_pooling(pooling), sentences.key)) is not None


def embed_space(loaded: LoadedModel, sentences: SentenceSet, layer: int | None = None, pooling: str = "mean",
                progress: Progress | None = None) -> Space:
    """The sentence vectors of one layer (default the last), mean-pooled over non-padding tokens or the CLS vector:
    a Space whose (n, hidden) vectors are a read-only copy of that layer. ValueError for a layer the model does not
    have (resolve_layer) or a pooling not in POOLINGS."""
    layer = resolve_layer(loaded, layer)
    pooling = _check_pooling(pooling)
    version = model_version(loaded)
    # A copy, not a view: a Space kept (in a page's session state, in a notebook) would otherwise keep the whole
    # (layers + 1, n, hidden) stack alive after the cache let it go, outside the cache's limit.
    vectors = np.array(all_layers(loaded, sentences, pooling, progress=progress, version=version)[layer])
    vectors.setflags(write=False)
    return Space(loaded.name, layer, layer_count(loaded), pooling, vectors, (version, pooling, sentences.key, layer))


def varies(vectors: np.ndarray) -> bool:
    """False when every sentence has the same vector (CLS pooling at layer 0 does that): nothing to map or compare."""
    return bool(np.ptp(vectors, axis=0).max() > 1e-6 * (np.abs(vectors).max() + 1e-12))


def _umap(dims: int, n: int):
    import umap  # about 10 s on a first import, so only when asked (or by the warm-up)
    settings = dict(UMAP_SETTINGS, n_neighbors=min(UMAP_SETTINGS["n_neighbors"], n - 1))
    if n <= dims + 2:  # the spectral start needs more points than dimensions + 1; a handful can start anywhere
        settings["init"] = "random"
    return umap.UMAP(n_components=dims, **settings)


@similarity.one_blas_thread
def _fit_pca(points: np.ndarray, dims: int) -> np.ndarray:
    from sklearn.decomposition import PCA
    return PCA(n_components=dims, random_state=0).fit_transform(points)


@similarity.one_blas_thread
def _fit_umap(points: np.ndarray, dims: int) -> np.ndarray:
    # numba's OpenMP layer shares torch's OpenMP runtime and sets its thread count to all CPUs; put torch's back.
    threads = torch.get_num_threads()
    try:
        return _umap(dims, len(points)).fit_transform(points)
    finally:
        torch.set_num_threads(threads)


def _fit(points: np.ndarray, method: str, dims: int) -> np.ndarray:
    """(m, dims) map of m distinct points; points that do not vary all land on the origin."""
    if not varies(points):
        return np.zeros((len(points), dims))
    if method == "umap" and len(points) >= MIN_MAP_SENTENCES:
        return _fit_umap(points, dims)
    # PCA, and UMAP of fewer than 4 distinct points (it has no neighbourhoods to keep): PCA keeps their distances.
    # PCA gives at most one axis fewer than the points; the missing axes are zero.
    axes = min(dims, len(points) - 1, points.shape[1])
    coords = np.zeros((len(points), dims))
    coords[:, :axes] = _fit_pca(points, axes)
    return coords


def project(space: Space, method: str = "pca", dims: int = 2) -> np.ndarray:
    """(n, dims) map of the space by PCA or UMAP (cosine), cached per space, method and dims.

    Identical vectors (the same sentence twice) are mapped once and share one point: UMAP's random start would
    otherwise scatter the copies, and PCA weighs each distinct sentence once. Fewer than 4 distinct vectors are
    placed by PCA, whichever method. ValueError for an unknown method, dims other than 2 or 3, or fewer than 4
    sentences.
    """
    name = method.strip().lower() if isinstance(method, str) else ""
    if name not in METHODS:
        raise ValueError(f"The map method must be PCA or UMAP, not {method!r}.")
    method = name
    if isinstance(dims, bool) or dims not in (2, 3):
        raise ValueError("Maps are 2D or 3D.")
    n = space.vectors.shape[0]
    if n < MIN_MAP_SENTENCES:
        raise ValueError(f"A map needs at least {MIN_MAP_SENTENCES} sentences; there are {n}: add "
                         f"{MIN_MAP_SENTENCES - n} more.")
    key = (space.key, method, dims)
    found = PROJECTIONS.get(key)
    if found is not None:
        return found
    distinct, copy_of = np.unique(space.vectors, axis=0, return_inverse=True)  # (m, hidden), (n,) row -> distinct row
    coords = _fit(distinct, method, dims)[copy_of.reshape(-1)]  # (n, dims)
    return PROJECTIONS.put(key, np.asarray(coords, dtype=np.float32))


@similarity.one_blas_thread
def align(reference: np.ndarray, coords: np.ndarray) -> np.ndarray:
    """coords centred and turned (rotation or reflection) to lie as close as they can to the centred reference.

    PCA axes have arbitrary signs and a UMAP map an arbitrary orientation; turning one map onto the other changes
    no distance within it and lets the eye compare two maps side by side.
    """
    from scipy.linalg import orthogonal_procrustes
    target = reference - reference.mean(axis=0)
    moving = coords - coords.mean(axis=0)
    if not np.any(target) or not np.any(moving):
        return moving
    rotation, _ = orthogonal_procrustes(moving, target)  # (dims, dims) orthogonal
    return moving @ rotation


def nearest(space: Space, index: int, k: int = 5, texts: Sequence[str] | None = None) -> list[tuple[int, float]]:
    """The k sentences most cosine-similar to sentence `index`, nearest first, as (index, cosine); itself left out.

    texts: the space's sentences, one a row of its (n, hidden) vectors. Given, copies of a text count as one
    sentence: the chosen sentence's own copies are never its neighbours (they would lead every list at cosine 1),
    and another text is listed once, by its first copy's number. ValueError for an index outside the set, a k below
    1, or texts that are not one a row."""
    n = space.vectors.shape[0]
    if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < n:
        raise ValueError(f"Sentence number {index!r} is outside the set of {n} sentences.")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"The number of neighbours must be a whole number of at least 1, not {k!r}.")
    if texts is not None and len(texts) != n:
        raise ValueError(f"The space has {n} sentences but {len(texts)} texts were given; give one a sentence.")
    unit = space.vectors / np.maximum(np.linalg.norm(space.vectors, axis=1, keepdims=True), 1e-12)  # (n, hidden)
    cosine = unit @ unit[index]  # (n,)
    cosine[index] = -np.inf
    order = np.argsort(-cosine, kind="stable")
    if texts is not None:
        first = {}  # text -> its first sentence's number
        for i, text in enumerate(texts):
            first.setdefault(text, i)
        listed, kept = {texts[index]}, []
        for i in order:  # copies share one vector: the first copy reached stands for them all
            if texts[i] not in listed:
                listed.add(texts[i])
                kept.append(first[texts[i]])
        order = kept
    return [(int(i), float(cosine[i])) for i in order[:k]]


def compare(a: Space, b: Space, k: int = similarity.KNN_K, estimator: str = "debiased") -> dict:
    """How alike two spaces of the same sentences are, any widths.

    Returns {"cka": linear CKA, "cka_shuffled": the mean CKA with b's rows shuffled over "shuffles" fixed-seed
    derangements (no sentence matched: what CKA gives for unmatched sentences), "cka_shuffled_sd": their standard
    deviation, "shuffles": how many, "cka_note": a sentence when the sentences are too few for CKA to be reliable
    ("" otherwise), "estimator": "debiased" or "biased", "knn_overlap": mean share of each
    sentence's k cosine nearest neighbours the spaces agree on (NaN for k >= n - 1), "k": k, "knn_note": why
    kNN overlap is NaN ("" when it is not)}. ValueError as similarity.linear_cka.
    """
    estimator = similarity.check_estimator(estimator)
    n = a.vectors.shape[0]
    shuffled, spread = similarity.shuffled_cka_spread(a.vectors, b.vectors, estimator)
    return {"cka": similarity.linear_cka(a.vectors, b.vectors, estimator),
            "cka_shuffled": shuffled,
            "cka_shuffled_sd": spread,
            "shuffles": similarity.SHUFFLES,
            "cka_note": similarity.reliability_note(n),
            "estimator": estimator,
            "knn_overlap": similarity.knn_overlap(a.vectors, b.vectors, k),
            "k": k,
            "knn_note": similarity.knn_unavailable(n, k)}


def compare_pairs(spaces: list[Space], k: int = similarity.KNN_K, estimator: str = "debiased",
                  ) -> list[tuple[int, int, dict]]:
    """compare() for every pair of spaces, (i, j, scores) with i < j, in order: 1-2, 1-3, 2-3 for three spaces."""
    return [(i, j, compare(spaces[i], spaces[j], k, estimator))
            for i in range(len(spaces)) for j in range(i + 1, len(spaces))]


def layer_similarity(a: LoadedModel, b: LoadedModel, sentences: SentenceSet, pooling: str = "mean",
                     k: int = similarity.KNN_K, progress: Progress | None = None, estimator: str = "debiased") -> dict:
    """CKA and kNN overlap between every layer of `a` (rows, 0..La) and every layer of `b` (columns, 0..Lb).

    Returns {"cka": (La + 1, Lb + 1), "knn_overlap": (La + 1, Lb + 1), NaN when k >= n - 1, "k": k,
    "knn_note": why kNN overlap is NaN or "", "cka_note": a sentence when the sentences are too few for CKA to be
    reliable ("" otherwise), "estimator": the CKA estimator, "closest": (Lb + 1,) for each layer of
    `b` the layer of `a` with the highest CKA (-1 where CKA is NaN for every layer of `a`)}.
    """
    estimator = similarity.check_estimator(estimator)
    layers_a = list(all_layers(a, sentences, pooling, progress=progress))
    layers_b = list(all_layers(b, sentences, pooling, progress=progress))
    cka = similarity.cka_matrix(layers_a, layers_b, estimator)
    return {"cka": cka,
            "knn_overlap": similarity.knn_overlap_matrix(layers_a, layers_b, k),
            "k": k,
            "knn_note": similarity.knn_unavailable(len(sentences), k),
            "cka_note": similarity.reliability_note(len(sentences)),
            "estimator": estimator,
            "closest": similarity.closest_rows(cka)}


def warm_up_umap() -> None:
    """Fit UMAP on a little random data with the maps' settings, so numba compiles now, not on a user's first map."""
    points = np.random.default_rng(0).normal(size=(64, 16)).astype(np.float32)  # float32, as sentence vectors are
    for dims in (2, 3):
        _fit_umap(points, dims)


_warm_up_lock = threading.Lock()
_warm_up_thread: threading.Thread | None = None


def warm_up_umap_in_background() -> threading.Thread:
    """Start warm_up_umap in a daemon thread, once per process; later calls return the same thread."""
    global _warm_up_thread
    with _warm_up_lock:
        if _warm_up_thread is None:
            _warm_up_thread = threading.Thread(target=_warm_up_quietly, name="umap-warm-up", daemon=True)
            _warm_up_thread.start()
        return _warm_up_thread


def _warm_up_quietly() -> None:
    try:
        warm_up_umap()
    except Exception as error:  # a failed warm-up only means the first UMAP map compiles; never stop the app for it
        log.warning("UMAP warm-up failed: %s", error)

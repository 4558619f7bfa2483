"""Pretrained Russian word vectors as the starting token embeddings of a BERT trained from scratch.

The vectors are navec's news vectors, by Alexander Kukushkin of the natasha project (https://github.com/natasha/navec,
MIT licence): GloVe vectors of 300 dimensions for 250K lower-case words (a few hundred of them with ё), trained on
about a billion words of Russian news and stored product-quantized (100 sub-vectors), 26 MB. The `natasha` package
ships them inside its wheel as natasha/data/emb/navec_news_v1_1B_250K_300d_100q.tar; the `navec` package reads them.

A WordPiece vocabulary entry that is a whole word gets the vector of that word lower-cased (Привет and привет share
привет's), with ё read as е when navec lacks the ё spelling. The vectors are carried to the model's width by a fixed
random orthogonal projection and scaled to the spread of the random rows they replace; every other entry (pieces
such as ##ет, special tokens, words navec lacks) keeps its random initialisation. BERT's masked-LM output layer is
tied to the input embeddings, so the output rows start from the same vectors.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

NAVEC_NEWS_FILE = "navec_news_v1_1B_250K_300d_100q.tar"
INSTALL = "pip install natasha"
NAVEC_SPECIALS = {"<unk>", "<pad>"}  # navec's own placeholder rows, never a word
_BRACKETED = re.compile(r"^\[[^\]]*\]$")  # [PAD], [unused3]


class WordVectors(Protocol):
    """Anything that maps a word to a 1-D vector: navec's `Navec`, or a dict of numpy arrays."""

    def __contains__(self, word: str) -> bool: ...

    def __getitem__(self, word: str) -> np.ndarray: ...


@dataclass(frozen=True)
class EmbeddingInit:
    """What `init_token_embeddings` did, for the run's record."""

    vocab_size: int  # entries in the vocabulary
    candidates: int  # whole-word entries looked up (no specials, no ##pieces; words of the corpus when given)
    initialised: int  # rows set from word vectors
    through_yo: int  # of those, found only after reading ё as е
    vector_dim: int  # width of the word vectors (300 for navec)
    hidden: int  # width of the model's embeddings
    projection: str  # "none" when the widths agree, else "orthogonal, seed N"
    target_std: float  # standard deviation of the random rows, which the initialised rows are scaled to
    scale: float  # factor applied to the projected vectors


def navec_news_path() -> Path:
    """The navec news vectors inside the installed natasha package.

    Raises ValueError with the command to install natasha when it is missing, or to reinstall it when its wheel
    lacks the file."""
    spec = find_spec("natasha")
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"The navec word vectors come with the natasha package, which is not installed: {INSTALL}")
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "data" / "emb" / NAVEC_NEWS_FILE
        if path.is_file():
            return path
    raise ValueError(f"The natasha package has no {NAVEC_NEWS_FILE}; reinstall it: pip install --force-reinstall "
                     "natasha")


def load_navec(path: str | Path | None = None) -> WordVectors:
    """navec vectors read from `path` (default: the news vectors inside natasha), about half a second.

    Raises ValueError naming the package to install when navec or natasha is missing, or when `path` is not a file."""
    if find_spec("navec") is None:
        raise ValueError(f"Reading navec word vectors needs the navec package, which is not installed: {INSTALL}")
    from navec import Navec

    path = Path(path) if path else navec_news_path()
    if not path.is_file():
        raise ValueError(f"The navec vectors file '{path}' does not exist.")
    try:
        return Navec.load(str(path))
    except Exception as error:  # a truncated download or another tar: say which file, not the tarfile internals
        raise ValueError(f"'{path}' is not a navec vectors file ({error}).") from error


def corpus_words(lines: Iterable[str], tokenizer) -> set[str]:
    """The words of `lines` as the tokenizer splits text before WordPiece (its normalizer, then pre-tokenizer).

    A vocabulary entry without ## is a word or only a word's beginning (прив of прив ##ет); one that occurs as a
    word of the corpus is a word."""
    backend = tokenizer.backend_tokenizer
    words: set[str] = set()
    for line in lines:
        text = backend.normalizer.normalize_str(line) if backend.normalizer else line
        words.update(word for word, _ in backend.pre_tokenizer.pre_tokenize_str(text))
    return words


def vector_key(entry: str, vectors: WordVectors) -> tuple[str | None, bool]:
    """The word of `vectors` for a vocabulary entry, lower-cased, and whether it was found only by reading ё as е;
    (None, False) when there is none."""
    word = entry.lower()
    if word in NAVEC_SPECIALS:
        return None, False
    if word in vectors:
        return word, False
    plain = word.replace("ё", "е")
    if plain != word and plain in vectors:
        return plain, True
    return None, False


def orthogonal_projection(source_dim: int, target_dim: int, seed: int) -> torch.Tensor:
    """A fixed random map from source_dim to target_dim that keeps lengths and angles as far as the widths allow.

    Returns a float64 matrix P of shape (source_dim, target_dim), used as x @ P: orthonormal columns when
    target_dim <= source_dim (an orthogonal projection onto a random target_dim-dimensional subspace), orthonormal
    rows when it is wider (a random isometric embedding). The identity when the widths agree. The QR factors of a
    Gaussian matrix with the signs of R's diagonal moved into Q give a uniformly random orthonormal frame (Mezzadri,
    "How to generate random matrices from the classical compact groups", 2007)."""
    if source_dim < 1 or target_dim < 1:
        raise ValueError(f"Widths must be positive, got {source_dim:,} and {target_dim:,}.")
    if source_dim == target_dim:
        return torch.eye(source_dim, dtype=torch.float64)
    generator = torch.Generator().manual_seed(seed)
    tall, narrow = max(source_dim, target_dim), min(source_dim, target_dim)
    gaussian = torch.randn(tall, narrow, generator=generator, dtype=torch.float64)
    q, r = torch.linalg.qr(gaussian)  # (tall, narrow), orthonormal columns
    q = q * torch.sign(torch.diagonal(r))
    return q if source_dim > target_dim else q.T


def whole_word_entries(tokenizer, words: set[str] | None = None) -> list[tuple[int, str]]:
    """(id, entry) of the vocabulary entries that can be whole words, in id order: no special tokens, no bracketed
    entries, no ##continuations, and, when `words` is given, only entries among them."""
    specials = set(tokenizer.all_special_tokens)
    found = []
    for entry, index in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1]):
        if entry in specials or _BRACKETED.match(entry) or entry.startswith("##"):
            continue
        if words is not None and entry not in words:
            continue
        found.append((index, entry))
    return found


def _matched(candidates: list[tuple[int, str]], vectors: WordVectors) -> tuple[list[int], list[str], int]:
    """(row ids, their words in `vectors`, how many were found by reading ё as е) of the entries that have a vector."""
    rows, keys, through_yo = [], [], 0
    for index, entry in candidates:
        key, by_yo = vector_key(entry, vectors)
        if key is not None:
            rows.append(index)
            keys.append(key)
            through_yo += by_yo
    return rows, keys, through_yo


def vector_rows(tokenizer, vectors: WordVectors, words: set[str] | None = None) -> list[int]:
    """Ids of the vocabulary entries `init_token_embeddings` sets from word vectors (same `words`), in id order."""
    return _matched(whole_word_entries(tokenizer, words), vectors)[0]


def init_token_embeddings(model, tokenizer, vectors: WordVectors, seed: int = 0,
                          words: set[str] | None = None) -> EmbeddingInit:
    """Set the token-embedding rows of whole-word entries from word vectors, in place; returns what was done.

    model: a Hugging Face model whose input embeddings are (vocab_size, hidden) (its tied MLM output shares them).
    vectors: word -> vector of length d (navec: d = 300), lower-case words. Each matched row becomes
    (v @ P) * s, where P is `orthogonal_projection(d, hidden, seed)` and s = target_std / std(V @ P) over all matched
    rows, target_std being the standard deviation of the embedding matrix as initialised, all-zero rows (padding)
    left out. One scale for all rows keeps the vectors' relative lengths. No random state is drawn from torch's
    global generator, so a run with the same seed sees the same other weights, data order and dropout.

    Raises ValueError when the vectors are not all of one width or the embeddings are not a matrix of the
    vocabulary's size."""
    weight = model.get_input_embeddings().weight  # (vocab_size, hidden)
    if weight.ndim != 2 or weight.shape[0] < len(tokenizer):
        raise ValueError(f"The model's embeddings have shape {tuple(weight.shape)}; they need a row for each of the "
                         f"tokenizer's {len(tokenizer):,} entries.")
    vocab_size, hidden = weight.shape
    candidates = whole_word_entries(tokenizer, words)
    rows, keys, through_yo = _matched(candidates, vectors)
    original = weight.detach().double()
    target_std = float(original[original.abs().sum(dim=1) > 0].std())
    if not rows:
        return EmbeddingInit(vocab_size, len(candidates), 0, 0, 0, hidden, "none", target_std, 0.0)
    found = [np.asarray(vectors[key], dtype=np.float64) for key in keys]
    if len({v.shape for v in found}) != 1 or found[0].ndim != 1:
        raise ValueError(f"The word vectors are not all 1-D and of one width: {sorted({v.shape for v in found})}.")
    source = np.stack(found)  # (n, d)
    dim = source.shape[1]
    projection = orthogonal_projection(dim, hidden, seed)  # (d, hidden)
    projected = torch.from_numpy(source) @ projection  # (n, hidden)
    spread = float(projected.std())
    scale = target_std / spread if spread > 0 else 0.0
    with torch.no_grad():
        weight[torch.tensor(rows)] = (projected * scale).to(weight.dtype)
    return EmbeddingInit(vocab_size, len(candidates), len(rows), through_yo, dim, hidden,
                         "none" if dim == hidden else f"orthogonal, seed {seed}", target_std, scale)


class FrozenRows:
    """Keeps chosen rows of an embedding matrix at their current values while the rest trains.

    Their gradient is zeroed as it is computed (gradient clipping and Adam's moments never see it), and `restore()`,
    called after each optimizer step, undoes what decoupled weight decay did to them. BERT's MLM output layer is tied
    to the input embeddings, so the frozen rows are the same words' fixed output vectors: a model trained on a small
    corpus keeps predicting in the word-vector space, where words it rarely saw sit next to words it saw often."""

    def __init__(self, weight: torch.nn.Parameter, rows: list[int]):
        self.weight = weight
        self.rows = torch.tensor(rows, dtype=torch.long, device=weight.device)
        self.values = weight.detach()[self.rows].clone()  # (n_rows, hidden)
        self.handle = weight.register_hook(self._zero_rows)

    def _zero_rows(self, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        grad[self.rows] = 0
        return grad

    @torch.no_grad()
    def restore(self) -> None:
        self.weight[self.rows] = self.values


def describe(result: EmbeddingInit, source: str = "navec") -> str:
    """One line for the console: how many entries started from word vectors, and how."""
    how = (f"projected {result.vector_dim} -> {result.hidden} ({result.projection})"
           if result.projection != "none" else f"{result.vector_dim} wide as the model")
    return (f"{source}: initialised {result.initialised:,} of {result.vocab_size:,} token embeddings "
            f"({result.candidates:,} whole-word entries looked up, {result.through_yo:,} found by reading ё as е); "
            f"{how}, scaled by {result.scale:.4g} to the random rows' standard deviation {result.target_std:.4g}")

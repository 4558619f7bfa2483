"""In-memory corpus reading and tokenising (small files: uploads, held-out sets), length-grouped batching and
dynamic MLM masking. A run's training corpus, of any size, goes through core.distill.training_data instead.

Every random choice takes an explicit seed or generator, so a run resumed from a checkpoint sees exactly the
batches and masks it would have seen without the interruption.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from core.textfiles import decode_utf8

MAX_CORPUS_BYTES = 2 * 1024**3
MAX_LINE_CHARS = 100_000  # a sample is cut to a few hundred tokens anyway; a longer "line" means missing line breaks


def read_corpus(path: str | Path, name: str | None = None) -> list[str]:
    """The non-blank lines of a UTF-8 text file, one sample a line; a BOM and CRLF line ends are accepted.

    Raises ValueError naming the file as `name` (default: its path) when it is missing, a folder, too large, not
    UTF-8 (UTF-16 and UTF-32 named as such), empty, or has a line over MAX_LINE_CHARS."""
    path = Path(path)
    name = name or str(path)
    if path.is_dir():
        raise ValueError(f"The corpus '{name}' is a folder; give a text file, one sample a line.")
    if not path.is_file():
        raise ValueError(f"The corpus file '{name}' does not exist.")
    if path.stat().st_size > MAX_CORPUS_BYTES:
        raise ValueError(f"The corpus '{name}' is larger than 2 GB; split it or sample it first.")
    text = decode_utf8(path.read_bytes(), name)
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise ValueError(f"The corpus '{name}' has no text: it needs at least one non-blank line.")
    longest = max(range(len(lines)), key=lambda i: len(lines[i]))
    if len(lines[longest]) > MAX_LINE_CHARS:
        raise ValueError(f"The corpus '{name}' has a line of {len(lines[longest]):,} characters (non-blank line "
                         f"{longest + 1:,}); put one sample on each line, at most {MAX_LINE_CHARS:,} characters.")
    return lines


def split_lines(lines: list[str], valid_fraction: float, seed: int, max_valid: int = 500) -> tuple[list, list]:
    """A reproducible held-out split: (train, valid), at least one line in each when there are two or more."""
    if len(lines) < 2:
        return lines, []
    order = list(range(len(lines)))
    random.Random(seed).shuffle(order)
    n_valid = min(max_valid, max(1, int(len(lines) * valid_fraction)))
    held = set(order[:n_valid])
    return [s for i, s in enumerate(lines) if i not in held], [s for i, s in enumerate(lines) if i in held]


@dataclass
class TokenizedCorpus:
    sequences: list[list[int]]  # token ids with [CLS] ... [SEP]
    truncated: int  # how many lines were longer than max_length and were cut

    @property
    def lengths(self) -> list[int]:
        return [len(s) for s in self.sequences]

    @property
    def tokens(self) -> int:
        return sum(self.lengths)


def tokenize_lines(lines: list[str], tokenizer, max_length: int) -> TokenizedCorpus:
    """Tokenise each line into [CLS] pieces [SEP], cutting lines longer than max_length (counted, not an error)."""
    if max_length < 3:
        raise ValueError("max_length must be at least 3 (room for [CLS], one token and [SEP]).")
    encoded = tokenizer(lines, add_special_tokens=False)["input_ids"]
    room = max_length - 2
    truncated = sum(len(ids) > room for ids in encoded)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    sequences = [[cls] + ids[:room] + [sep] for ids in encoded if ids]
    if not sequences:
        raise ValueError("The tokenizer produced no tokens from this corpus.")
    return TokenizedCorpus(sequences, truncated)


def length_grouped_batches(lengths: list[int], batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """Batches of indices of similar length, in a shuffled order fixed by (seed, epoch).

    Indices are shuffled, cut into mega-batches of 50 batches, each sorted by length and cut into batches, so a batch
    wastes little on padding while batch order stays random (the scheme of Hugging Face's group_by_length).
    """
    rng = random.Random(seed * 100_003 + epoch)
    order = list(range(len(lengths)))
    rng.shuffle(order)
    mega = batch_size * 50
    batches = []
    for start in range(0, len(order), mega):
        chunk = sorted(order[start:start + mega], key=lambda i: lengths[i], reverse=True)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def pad(sequences: list[list[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """input_ids and attention_mask, both (bs, longest), padded on the right."""
    longest = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = torch.tensor(seq)
        mask[row, :len(seq)] = 1
    return ids, mask


def mask_tokens(input_ids: torch.Tensor, attention_mask: torch.Tensor, special_ids: list[int], mask_id: int,
                vocab_size: int, generator: torch.Generator,
                probability: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's dynamic masking: choose `probability` of the real tokens; of those 80% -> [MASK], 10% -> a random
    token, 10% unchanged. Returns (masked input_ids, labels with -100 where nothing is to be predicted).

    At least one token per sequence is chosen, so even short lines teach something.
    """
    candidates = attention_mask.bool() & ~torch.isin(input_ids, torch.tensor(special_ids))  # (bs, seq)
    scores = torch.rand(input_ids.shape, generator=generator)
    chosen = candidates & (scores < probability)
    # Guarantee one choice per row that has any candidate: take the candidate with the lowest score.
    lowest = torch.where(candidates, scores, torch.full_like(scores, 2.0)).argmin(dim=1)
    has_candidate = candidates.any(dim=1)
    chosen[has_candidate, lowest[has_candidate]] = True
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (action < 0.8)] = mask_id
    random_positions = chosen & (action >= 0.8) & (action < 0.9)
    random_tokens = torch.randint(vocab_size, input_ids.shape, generator=generator)
    masked[random_positions] = random_tokens[random_positions]
    return masked, labels


def special_ids(tokenizer) -> list[int]:
    return sorted(set(tokenizer.all_special_ids))


def mlm_batch(sequences: list[list[int]], tokenizer, generator: torch.Generator, probability: float = 0.15) -> dict:
    """A padded, masked batch: input_ids, attention_mask, labels (all (bs, seq))."""
    ids, attention = pad(sequences, tokenizer.pad_token_id)
    masked, labels = mask_tokens(ids, attention, special_ids(tokenizer), tokenizer.mask_token_id,
                                 len(tokenizer), generator, probability)
    return {"input_ids": masked, "attention_mask": attention, "labels": labels}


def step_generator(seed: int, step: int, rank: int = 0, micro: int = 0) -> torch.Generator:
    """The masking generator of one micro-batch, derived from its place in the run rather than from history."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + step) * 1009 + rank) * 101 + micro)


def tokenize_parallel(lines: list[str], first_tokenizer, second_tokenizer,
                      max_length: int) -> tuple[TokenizedCorpus, TokenizedCorpus]:
    """The lines tokenised by two tokenizers as tokenize_lines does, row i of both from the same line.

    A line either tokenizer finds no token in is left out of both. Raises ValueError when no line is left.
    """
    if max_length < 3:
        raise ValueError("max_length must be at least 3 (room for [CLS], one token and [SEP]).")
    encoded = [tokenizer(lines, add_special_tokens=False)["input_ids"] for tokenizer in (first_tokenizer,
                                                                                        second_tokenizer)]
    kept = [i for i in range(len(lines)) if encoded[0][i] and encoded[1][i]]
    if not kept:
        raise ValueError("The tokenizer produced no tokens from this corpus.")
    room = max_length - 2
    corpora = []
    for tokenizer, ids in zip((first_tokenizer, second_tokenizer), encoded):
        cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
        corpora.append(TokenizedCorpus([[cls] + ids[i][:room] + [sep] for i in kept],
                                       sum(len(ids[i]) > room for i in kept)))
    return corpora[0], corpora[1]

"""Students with their own smaller vocabulary (Kolesnikova et al., 2022): the token mapping and logit alignment.

Every teacher token is split greedily, longest match first, into student tokens; special tokens map to themselves.
Four alignments compare the two models' logits (--align):
  match:         the authors' match. The student reads its own tokenisation of the text; teacher and student
                 positions are paired in order where their token strings are equal (`match_partners`), and compared
                 on the shared vocabulary.
  reduce:        the authors' reduce. The student reads the teacher's tokens, each replaced by its student pieces
                 ("owner": the teacher position of each student position); its logits are summed over the pieces of
                 each teacher token, then mapped onto the teacher's whole vocabulary, each teacher token's logit the
                 sum of its pieces' logits (`to_teacher_vocab`).
  match-pieces:  the student reads the teacher's tokens as pieces; only teacher positions whose token is itself one
                 student token are compared, on the shared vocabulary.
  reduce-shared: as reduce up to the piece sum (or mean), then compared on the shared vocabulary only.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch
from tokenizers import models

from core.models.alignments import ALIGNMENTS  # noqa: F401  the names of what this module implements
from core.models.tokenizer import train_wordpiece

OWN_TOKENISATION = ("match",)  # alignments where the student reads its own tokenisation of the text


def special_tokens_of(tokenizer) -> list[str]:
    """The teacher's special tokens in BERT's order, so the student keeps the same strings and roles."""
    return [tokenizer.pad_token, tokenizer.unk_token, tokenizer.cls_token, tokenizer.sep_token, tokenizer.mask_token]


def vocab_not_smaller(student: int, teacher: int) -> str:
    """The refusal of a reduced student's vocabulary of `student` entries that is not below the teacher's."""
    return f"The student vocabulary ({student:,}) must be smaller than the teacher's ({teacher:,})."


def train_student_vocab(texts: Iterable[str] | Iterable[list[str]], vocab_size: int, teacher_tokenizer):
    """A cased WordPiece tokenizer of vocab_size entries learnt on `texts` (samples, or batches of samples, read once
    as they come: a generator over a corpus of any size will do), with the teacher's special tokens.

    Entries are numbered in a fixed order (see in_fixed_order), so the same texts give the same ids in every run and
    every process. Raises ValueError when vocab_size is not below the teacher's vocabulary."""
    if vocab_size >= len(teacher_tokenizer):
        raise ValueError(vocab_not_smaller(vocab_size, len(teacher_tokenizer)))
    specials = special_tokens_of(teacher_tokenizer)
    return in_fixed_order(train_wordpiece(texts, vocab_size, special_tokens=specials), len(specials))


def in_fixed_order(tokenizer, specials: int):
    """The WordPiece tokenizer, in place, with its entries renumbered: the first `specials` ids as they are, then the
    other entries by length (without "##"), word-initial before continuation, then by string.

    The `tokenizers` trainer numbers entries of equal rank in hash order, which changes from one process to the
    next; the entries themselves, and so every text's tokens, stay the same."""
    backend = tokenizer.backend_tokenizer
    vocab = backend.get_vocab(with_added_tokens=False)
    by_id = sorted(vocab, key=vocab.get)
    rest = sorted(by_id[specials:], key=lambda token: (len(token.removeprefix("##")), token.startswith("##"), token))
    trained = backend.model
    backend.model = models.WordPiece({token: i for i, token in enumerate(by_id[:specials] + rest)},
                                     unk_token=trained.unk_token,
                                     continuing_subword_prefix=trained.continuing_subword_prefix,
                                     max_input_chars_per_word=trained.max_input_chars_per_word)
    return tokenizer


def greedy_split(token: str, vocab: dict[str, int], unk_token: str = "[UNK]") -> list[str]:
    """Split one WordPiece token into pieces of `vocab`, longest match first, as WordPiece itself tokenises.

    A continuation token ("##ка") yields continuation pieces only; a word-initial token starts with a bare piece.
    When some part matches nothing, the whole token becomes [UNK], again as WordPiece does.
    """
    continuation = token.startswith("##")
    body = token[2:] if continuation else token
    pieces, start = [], 0
    while start < len(body):
        prefix = "##" if continuation or start > 0 else ""
        for end in range(len(body), start, -1):
            if prefix + body[start:end] in vocab:
                pieces.append(prefix + body[start:end])
                start = end
                break
        else:
            return [unk_token]
    return pieces


@dataclass
class VocabMapping:
    pieces: list[list[int]]  # teacher id -> student ids of its pieces
    shared_teacher: torch.Tensor  # (n_shared,) teacher ids of the strings both vocabularies hold
    shared_student: torch.Tensor  # (n_shared,) student ids of the same strings, in the same order
    teacher_to_student: torch.Tensor  # (teacher vocab,) student id of the same string, or -1

    @property
    def single_piece(self) -> torch.Tensor:
        """(teacher vocab,) True where a teacher token is exactly one student token of the same string."""
        return self.teacher_to_student >= 0


def shared_ids(first_vocab: dict[str, int], other_vocab: dict[str, int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids of the strings both vocabularies hold, as (ids in first, ids in other), in the order of the first ids."""
    pairs = sorted((i, other_vocab[s]) for s, i in first_vocab.items() if s in other_vocab)
    return (torch.tensor([p[0] for p in pairs], dtype=torch.long),
            torch.tensor([p[1] for p in pairs], dtype=torch.long))


def build_mapping(teacher_tokenizer, student_tokenizer) -> VocabMapping:
    teacher_vocab, student_vocab = teacher_tokenizer.get_vocab(), student_tokenizer.get_vocab()
    specials = set(special_tokens_of(teacher_tokenizer))
    unk = student_tokenizer.unk_token
    pieces: list[list[int]] = [[] for _ in range(max(teacher_vocab.values()) + 1)]
    for token, teacher_id in teacher_vocab.items():
        split = [token] if token in specials else greedy_split(token, student_vocab, unk)
        pieces[teacher_id] = [student_vocab[p] for p in split]
    shared_teacher, shared_student = shared_ids(teacher_vocab, student_vocab)
    teacher_to_student = torch.full((len(pieces),), -1, dtype=torch.long)
    teacher_to_student[shared_teacher] = shared_student
    return VocabMapping(pieces, shared_teacher, shared_student, teacher_to_student)


def to_student_inputs(input_ids: torch.Tensor, attention_mask: torch.Tensor, mapping: VocabMapping,
                      pad_id: int, max_length: int) -> dict[str, torch.Tensor]:
    """Replace each teacher token by its student pieces.

    input_ids, attention_mask: (bs, t_seq) teacher batch. Returns student_input_ids and student_attention_mask
    (bs, s_seq), owner (bs, s_seq): the teacher position each student position belongs to (-1 on padding), and
    covered (bs, t_seq): teacher positions with all their pieces inside the student's max_length (a row longer
    than that is cut; its last teacher tokens are then not compared).
    """
    rows, owners = [], []
    for ids, mask in zip(input_ids.tolist(), attention_mask.tolist()):
        row, owner = [], []
        for position, (token, real) in enumerate(zip(ids, mask)):
            if real:
                row += mapping.pieces[token]
                owner += [position] * len(mapping.pieces[token])
        if len(row) > max_length:
            cut_owner = owner[max_length]
            keep = max_length
            while keep > 0 and owner[keep - 1] == cut_owner:  # never keep part of a teacher token's pieces
                keep -= 1
            row, owner = row[:keep], owner[:keep]
        rows.append(row)
        owners.append(owner)
    longest = max(len(r) for r in rows)
    student_ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    owner = torch.full((len(rows), longest), -1, dtype=torch.long)
    for i, (row, own) in enumerate(zip(rows, owners)):
        student_ids[i, :len(row)] = torch.tensor(row, dtype=torch.long)
        owner[i, :len(own)] = torch.tensor(own, dtype=torch.long)
    covered = torch.zeros(input_ids.shape, dtype=torch.bool)
    for i, own in enumerate(owners):
        covered[i, sorted(set(own))] = True
    return {"student_input_ids": student_ids, "student_attention_mask": (owner >= 0).long(), "owner": owner,
            "covered": covered}


def reduce_to_teacher_positions(values: torch.Tensor, owner: torch.Tensor, teacher_len: int,
                                op: str = "sum") -> torch.Tensor:
    """Sum (or average) student vectors over the pieces of each teacher token.

    values: (bs, s_seq, d) per student position; owner: (bs, s_seq). Returns (bs, teacher_len, d); teacher
    positions without pieces (padding) are zero.
    """
    valid = owner >= 0  # (bs, s_seq)
    index = owner.clamp(min=0).unsqueeze(-1).expand(-1, -1, values.shape[-1])  # (bs, s_seq, d)
    out = values.new_zeros(values.shape[0], teacher_len, values.shape[-1])
    out = out.scatter_add(1, index, values * valid.unsqueeze(-1).to(values.dtype))
    if op == "mean":
        counts = torch.zeros(values.shape[0], teacher_len, device=values.device, dtype=values.dtype)
        counts = counts.scatter_add(1, owner.clamp(min=0), valid.to(values.dtype))
        out = out / counts.clamp(min=1).unsqueeze(-1)
    return out


def aligned_positions(input_ids: torch.Tensor, attention_mask: torch.Tensor, mapping: VocabMapping,
                      align: str) -> torch.Tensor:
    """(bs, t_seq) bool: the teacher positions compared under a pieces alignment (match-pieces drops tokens the
    student splits; reduce and reduce-shared keep every real position)."""
    real = attention_mask.bool()
    if align in ("reduce", "reduce-shared"):
        return real
    if align != "match-pieces":
        raise ValueError(f"aligned_positions serves the alignments on pieces; '{align}' pairs positions with "
                         "match_partners.")
    return real & mapping.single_piece.to(input_ids.device)[input_ids]


def student_labels(labels: torch.Tensor, mapping: VocabMapping) -> torch.Tensor:
    """MLM labels in the student's vocabulary: the same string, or -100 where the student has no such token."""
    mapped = mapping.teacher_to_student.to(labels.device)[labels.clamp(min=0)]
    return torch.where((labels >= 0) & (mapped >= 0), mapped, torch.full_like(labels, -100))


def match_partners(teacher_tokens: list[str], student_tokens: list[str]) -> list[int]:
    """For each teacher position, the student position paired with it, or -1: the authors' match.

    Scanning the teacher's tokens in order, each is paired with the first student token of the same string at or after
    the position following the last pair; a teacher token with no such student token stays unpaired. Both lists are
    one row's token strings, without padding.
    """
    partners, start = [-1] * len(teacher_tokens), 0
    for t_position, token in enumerate(teacher_tokens):
        if start >= len(student_tokens):
            break
        try:
            s_position = student_tokens.index(token, start)
        except ValueError:
            continue
        partners[t_position], start = s_position, s_position + 1
    return partners


def gather_partners(values: torch.Tensor, partners: torch.Tensor) -> torch.Tensor:
    """values: (bs, s_seq, d) per student position; partners: (bs, t_seq), a student position or -1.

    Returns (bs, t_seq, d): at each teacher position the vector of its partner, zero where it has none.
    """
    index = partners.clamp(min=0).unsqueeze(-1).expand(-1, -1, values.shape[-1])  # (bs, t_seq, d)
    return values.gather(1, index) * (partners >= 0).unsqueeze(-1).to(values.dtype)


def piece_matrix(mapping: VocabMapping, student_vocab: int) -> torch.Tensor:
    """(teacher vocab, student vocab) sparse: entry [v, p] counts how often student piece p is in teacher token v."""
    rows = [v for v, pieces in enumerate(mapping.pieces) for _ in pieces]
    columns = [p for pieces in mapping.pieces for p in pieces]
    indices = torch.tensor([rows, columns], dtype=torch.long)
    return torch.sparse_coo_tensor(indices, torch.ones(len(rows)), (len(mapping.pieces), student_vocab),
                                   check_invariants=True).coalesce()


def to_teacher_vocab(logits: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """Map student logits onto the teacher's vocabulary: each teacher token's logit is the sum of its pieces' logits.

    logits: (..., student vocab); matrix: piece_matrix(...). Returns (..., teacher vocab) in float32.
    """
    flat = logits.reshape(-1, logits.shape[-1]).float()  # (n, Vs)
    mapped = torch.sparse.mm(matrix.to(flat.device), flat.T).T  # (n, Vt)
    return mapped.reshape(*logits.shape[:-1], matrix.shape[0])

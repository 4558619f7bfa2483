"""Students with their own smaller vocabulary (Kolesnikova et al., 2022): the token mapping and logit alignment.

Every teacher token is split greedily, longest match first, into student tokens; special tokens map to themselves.
The student reads the teacher's text as the teacher tokenised it, each teacher token replaced by its student pieces,
so every student position belongs to exactly one teacher position ("owner"). Then:
  reduce: the student's logits are summed (or averaged) over the pieces of each teacher token, giving one student
          vector per teacher position, compared with the teacher on the shared vocabulary;
  match:  only teacher positions whose token is itself one student token (same string) are compared, on the
          shared vocabulary.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from core.models.tokenizer import train_wordpiece

ALIGNMENTS = ("match", "reduce")


def special_tokens_of(tokenizer) -> list[str]:
    """The teacher's special tokens in BERT's order, so the student keeps the same strings and roles."""
    return [tokenizer.pad_token, tokenizer.unk_token, tokenizer.cls_token, tokenizer.sep_token, tokenizer.mask_token]


def train_student_vocab(lines: list[str], vocab_size: int, teacher_tokenizer):
    """A cased WordPiece tokenizer of vocab_size entries learnt on `lines`, with the teacher's special tokens."""
    if vocab_size >= len(teacher_tokenizer):
        raise ValueError(f"The student vocabulary ({vocab_size}) must be smaller than the teacher's "
                         f"({len(teacher_tokenizer)}).")
    return train_wordpiece(lines, vocab_size, special_tokens=special_tokens_of(teacher_tokenizer))


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
    """(bs, t_seq) bool: the teacher positions compared under `align` (match drops tokens the student splits)."""
    real = attention_mask.bool()
    if align == "reduce":
        return real
    return real & mapping.single_piece.to(input_ids.device)[input_ids]


def student_labels(labels: torch.Tensor, mapping: VocabMapping) -> torch.Tensor:
    """MLM labels in the student's vocabulary: the same string, or -100 where the student has no such token."""
    mapped = mapping.teacher_to_student.to(labels.device)[labels.clamp(min=0)]
    return torch.where((labels >= 0) & (mapped >= 0), mapped, torch.full_like(labels, -100))

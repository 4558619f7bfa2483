"""A streamed corpus in a student's own tokens as well: each training sample tokenised by the teacher's tokenizer and
the student's as it is read, and numbered as one sample of both.

Samples in which the student's tokenizer finds no piece are left out (as on disk, see core.distill.paired); the
held-out samples are the teacher stream's. Each epoch reads the stream from its start, so a resumed run sees the
very same batches.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice

from core.distill.paired import student_ids
from core.distill.stream import TOKENISE_ROWS, LiveSequences, StreamCorpus


class TokenPair(list):
    """One sample's teacher ids (the list itself, as a StreamEpoch sorts and holds them) with the student's ids of
    the same sample (.student)."""

    def __init__(self, teacher_ids: list[int], student: list[int]):
        super().__init__(teacher_ids)
        self.student = student


class StudentSequences:
    """The student's ids of the samples in hand: sequences[sample number] -> list of ints."""

    def __init__(self, pairs: LiveSequences):
        self.pairs = pairs

    def __getitem__(self, sample: int) -> list[int]:
        return self.pairs[sample].student


@dataclass
class StudentSide:
    """The student's tokenisation of a PairedStream, as a recipe reads it (sequences[sample number])."""
    sequences: StudentSequences
    truncated: int = 0  # not known before the stream is read


class PairedStream(StreamCorpus):
    """The training samples of a teacher stream (core.distill.stream.StreamCorpus) in both tokenisations: its
    sequences give the teacher's ids, student.sequences the student's, under the same sample numbers."""

    def __init__(self, stream: StreamCorpus, student_tokenizer):
        super().__init__(stream.open_rows, stream.tokenizer, stream.max_length, stream.column, stream.held_out)
        self.student_tokenizer = student_tokenizer
        self.student = StudentSide(StudentSequences(self.sequences))

    def samples(self) -> Iterator[tuple[int, TokenPair]]:
        """(sample number, teacher ids with the student's) of the training samples both tokenizers find a piece in,
        in stream order."""
        training = islice(self.encoded(), self.held_out, None)
        number = 0
        while chunk := list(islice(training, TOKENISE_ROWS)):
            own, _ = student_ids([text for text, _ in chunk], self.student_tokenizer, self.max_length)
            for (_, teacher_ids), student in zip(chunk, own):
                if student:
                    yield number, TokenPair(teacher_ids, student)
                    number += 1

"""The names of the ways a student with its own vocabulary meets the teacher's logits (--align, --reduce-op), in a
module that loads nothing, so the command line can offer them before torch is imported. What each one does:
core.models.vocab."""
from __future__ import annotations

ALIGNMENTS = ("match", "reduce", "match-pieces", "reduce-shared")  # the authors' two, then the lab's two variants
REDUCE_OPS = ("sum", "mean")  # of the student's logits over the pieces of a teacher token (reduce, reduce-shared)

"""Held-out quality figures: masked-token accuracy of a model, and top-1 agreement of a student with its teacher.

Masks are drawn from a fixed seed, so the same lines give the same figures every time they are measured. Every
recipe counts through `heldout_figures`; only how a batch becomes predictions differs (token ids when the two
models share a vocabulary, token strings when they do not).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from core.distill.data import length_grouped_batches, mlm_batch, tokenize_lines
from core.models.masked_lm import masked_lm_logits

HELDOUT_MLM_PROBABILITY = 0.15  # the held-out masks' share of tokens, whatever the run trains with


def masked_batches(lines: list[str], tokenizer, max_length: int = 128, batch_size: int = 32, seed: int = 1234,
                   probability: float = HELDOUT_MLM_PROBABILITY) -> list[dict]:
    """Masked batches of the lines, identical on every call with the same arguments."""
    corpus = tokenize_lines(lines, tokenizer, max_length)
    generator = torch.Generator().manual_seed(seed)
    order = length_grouped_batches(corpus.lengths, batch_size, seed, epoch=0)
    return [mlm_batch([corpus.sequences[i] for i in batch], tokenizer, generator, probability) for batch in order]


@torch.no_grad()
def masked_predictions(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(top-1 predicted ids, true ids), both (n_masked,), at the masked positions of one batch."""
    device = next(model.parameters()).device
    selected = batch["labels"] != -100
    logits = masked_lm_logits(model, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                              selected.to(device))  # (n_masked, vocab): the head runs only where it is read
    return logits.argmax(dim=-1).cpu(), batch["labels"][selected]


Predictions = tuple[Sequence, Sequence | None, Sequence]  # (student, teacher or None, truth), one entry a position


@torch.no_grad()
def heldout_figures(student, batches: list[dict], predict: Callable[[dict], Predictions]) -> dict:
    """mlm_acc, masked_positions and, when `predict` gives teacher predictions, agreement and teacher_mlm_acc.

    predict(batch) -> (student top-1, teacher top-1 or None, true token), three equal-length sequences of comparable
    items (ids or strings). mlm_acc = share of student == truth; agreement (top-1) = share of student == teacher.
    The student is put in eval mode while counting and given back in the mode it had.
    """
    was_training = student.training
    student.eval()
    right = agree = teacher_right = total = 0
    with_teacher = False
    try:
        for batch in batches:
            predicted, teacher_predicted, truth = predict(batch)
            right += sum(int(p == t) for p, t in zip(predicted, truth))
            total += len(truth)
            if teacher_predicted is not None:
                with_teacher = True
                agree += sum(int(p == q) for p, q in zip(predicted, teacher_predicted))
                teacher_right += sum(int(q == t) for q, t in zip(teacher_predicted, truth))
    finally:
        student.train(was_training)
    figures = {"mlm_acc": right / max(total, 1), "masked_positions": total}
    if with_teacher:
        figures.update(agreement=agree / max(total, 1), teacher_mlm_acc=teacher_right / max(total, 1))
    return figures


def mlm_figures(student, batches: list[dict], teacher=None) -> dict:
    """Student masked-token accuracy; with a teacher (same vocabulary) also its accuracy and top-1 agreement."""
    def predict(batch: dict) -> Predictions:
        predicted, truth = masked_predictions(student, batch)
        teacher_predicted = masked_predictions(teacher, batch)[0].tolist() if teacher is not None else None
        return predicted.tolist(), teacher_predicted, truth.tolist()

    return heldout_figures(student, batches, predict)

"""Held-out quality figures: masked-token accuracy of a model, and top-1 agreement of a student with its teacher.

Masks are drawn from a fixed seed, so the same lines give the same figures every time they are measured.
"""
from __future__ import annotations

import torch

from core.distill.data import length_grouped_batches, mlm_batch, tokenize_lines
from core.models.masked_lm import masked_lm_logits


def masked_batches(lines: list[str], tokenizer, max_length: int = 128, batch_size: int = 32, seed: int = 1234,
                   probability: float = 0.15) -> list[dict]:
    """Masked batches of the lines, identical on every call with the same arguments."""
    corpus = tokenize_lines(lines, tokenizer, max_length)
    generator = torch.Generator().manual_seed(seed)
    order = length_grouped_batches(corpus.lengths, batch_size, seed, epoch=0)
    return [mlm_batch([corpus.sequences[i] for i in batch], tokenizer, generator, probability) for batch in order]


@torch.no_grad()
def masked_predictions(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(top-1 predicted ids, true ids) at the masked positions of one batch."""
    device = next(model.parameters()).device
    selected = batch["labels"] != -100
    logits = masked_lm_logits(model, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                              selected.to(device))  # (n_masked, vocab): the head runs only where it is read
    return logits.argmax(dim=-1).cpu(), batch["labels"][selected]


@torch.no_grad()
def mlm_figures(student, batches: list[dict], teacher=None) -> dict:
    """Student masked-token accuracy; with a teacher (same vocabulary) also its accuracy and top-1 agreement."""
    was_training = student.training
    student.eval()
    right = agree = teacher_right = total = 0
    for batch in batches:
        predicted, truth = masked_predictions(student, batch)
        right += (predicted == truth).sum().item()
        total += truth.numel()
        if teacher is not None:
            teacher_predicted, _ = masked_predictions(teacher, batch)
            agree += (teacher_predicted == predicted).sum().item()
            teacher_right += (teacher_predicted == truth).sum().item()
    student.train(was_training)
    figures = {"mlm_acc": right / max(total, 1), "masked_positions": total}
    if teacher is not None:
        figures.update(agreement=agree / max(total, 1), teacher_mlm_acc=teacher_right / max(total, 1))
    return figures

"""The distillation losses of DistilBERT and DistilRuBERT, each usable on its own from a notebook.

Shapes: bs = batch size, seq = sequence length, vocab = vocabulary size, dim = hidden width, heads = attention heads.
`attention_mask` is 1 for real tokens and 0 for padding; padding never contributes to any loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class LossWeights:
    alpha_kl: float = 5.0  # KL between softened teacher and student distributions
    alpha_mlm: float = 2.0  # the student's own masked-LM cross-entropy
    alpha_cos: float = 1.0  # cosine between student hidden states and means of teacher hidden states
    alpha_att: float = 0.0  # MSE between student attention maps and means of teacher maps (distilrubert-small)
    temperature: float = 2.0
    kl_masked_only: bool = False  # KL over masked positions only, instead of every non-padding position

    def check(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"The temperature must be above 0; got {self.temperature}.")
        alphas = (self.alpha_kl, self.alpha_mlm, self.alpha_cos, self.alpha_att)
        if any(a < 0 for a in alphas):
            raise ValueError("Loss weights (alphas) cannot be negative.")
        if not any(a > 0 for a in alphas):
            raise ValueError("At least one loss weight (alpha) must be above 0, or the student learns nothing.")


def _zero(like: torch.Tensor) -> torch.Tensor:
    return like.sum() * 0.0  # keeps the graph, so backward works when a batch selects no position


def kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, positions: torch.Tensor,
            temperature: float) -> torch.Tensor:
    """KL(teacher || student) on distributions softened by T, times T^2, averaged over the selected positions.

    student_logits, teacher_logits: (bs, seq, vocab); positions: (bs, seq) bool, the positions that count.
    The T^2 factor keeps gradient sizes comparable across temperatures (Hinton et al., 2015).
    """
    s = student_logits[positions].float() / temperature  # (n, vocab)
    t = teacher_logits[positions].float() / temperature  # (n, vocab)
    if s.shape[0] == 0:
        return _zero(student_logits)
    return F.kl_div(F.log_softmax(s, dim=-1), F.log_softmax(t, dim=-1), reduction="batchmean",
                    log_target=True) * temperature ** 2


def mlm_loss(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student's predictions at masked positions; labels are -100 elsewhere.

    student_logits: (bs, seq, vocab); labels: (bs, seq).
    """
    selected = labels != -100  # (bs, seq)
    if not selected.any():
        return _zero(student_logits)
    return F.cross_entropy(student_logits[selected].float(), labels[selected])


def cosine_hidden_loss(student_hidden: tuple[torch.Tensor, ...], teacher_hidden: tuple[torch.Tensor, ...],
                       attention_mask: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """Mean over student layers of (1 - cosine) between student layer i and the mean of teacher group i.

    student_hidden, teacher_hidden: hidden_states of each model, index 0 the embeddings, each (bs, seq, dim);
    groups[i]: the teacher layers (1-based) whose mean student layer i + 1 imitates. Equals
    torch.nn.CosineEmbeddingLoss with target 1 over the non-padding positions.
    """
    real = attention_mask.bool()  # (bs, seq)
    losses = []
    for student_layer, teacher_layers in enumerate(groups, start=1):
        target = torch.stack([teacher_hidden[j] for j in teacher_layers]).mean(dim=0)  # (bs, seq, dim)
        cosine = F.cosine_similarity(student_hidden[student_layer][real].float(), target[real].float(), dim=-1)
        losses.append((1.0 - cosine).mean())
    return torch.stack(losses).mean()


def attention_mse_loss(student_attentions: tuple[torch.Tensor, ...], teacher_attentions: tuple[torch.Tensor, ...],
                       attention_mask: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """Mean squared error between student attention maps and the mean of consecutive teacher maps.

    *_attentions: one (bs, heads, seq, seq) map per layer, index 0 the first layer; groups as in cosine_hidden_loss.
    Only entries whose query and key are both real tokens count. When the head counts differ, maps are compared
    averaged over heads.
    """
    real = attention_mask.bool()
    pairs = (real[:, :, None] & real[:, None, :])[:, None]  # (bs, 1, seq, seq)
    losses = []
    for student_layer, teacher_layers in enumerate(groups):
        target = torch.stack([teacher_attentions[j - 1] for j in teacher_layers]).mean(dim=0)  # (bs, heads, seq, seq)
        student = student_attentions[student_layer]
        if student.shape[1] != target.shape[1]:
            student, target = student.mean(dim=1, keepdim=True), target.mean(dim=1, keepdim=True)
        selected = pairs.expand_as(student)
        losses.append(F.mse_loss(student[selected].float(), target[selected].float()))
    return torch.stack(losses).mean()


def distillation_loss(student_out, teacher_out, attention_mask: torch.Tensor, labels: torch.Tensor,
                      weights: LossWeights, groups: list[list[int]]) -> dict[str, torch.Tensor]:
    """All the losses for one batch, weighted and summed into "loss"; parts are returned unweighted.

    student_out, teacher_out: masked-LM outputs with logits (and hidden_states / attentions when their alphas are
    above 0). Parts whose alpha is 0 are not computed and reported as 0.
    """
    real = attention_mask.bool()
    positions = (labels != -100) & real if weights.kl_masked_only else real
    zero = _zero(student_out.logits)
    parts = {
        "loss_kl": kl_loss(student_out.logits, teacher_out.logits, positions, weights.temperature)
        if weights.alpha_kl > 0 else zero,
        "loss_mlm": mlm_loss(student_out.logits, labels) if weights.alpha_mlm > 0 else zero,
        "loss_cos": cosine_hidden_loss(student_out.hidden_states, teacher_out.hidden_states, attention_mask, groups)
        if weights.alpha_cos > 0 else zero,
        "loss_att": attention_mse_loss(student_out.attentions, teacher_out.attentions, attention_mask, groups)
        if weights.alpha_att > 0 else zero,
    }
    parts["loss"] = (weights.alpha_kl * parts["loss_kl"] + weights.alpha_mlm * parts["loss_mlm"]
                     + weights.alpha_cos * parts["loss_cos"] + weights.alpha_att * parts["loss_att"])
    return parts

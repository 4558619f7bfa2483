"""The distillation losses of DistilBERT, DistilRuBERT and the reduced-vocabulary students, each a pure function.

Shapes: bs = batch size, seq = sequence length, vocab = vocabulary size, dim = hidden width, heads = attention heads,
n = number of selected positions. `attention_mask` is 1 for real tokens and 0 for padding; padding never contributes.

The total loss of every recipe is stated once, in `total_loss`:

    loss = alpha_kl * loss_kl + alpha_mlm * loss_mlm + alpha_cos * loss_cos + alpha_att * loss_att
           + alpha_hidden_mse * loss_hidden_mse

A recipe computes the parts that apply to it and reports the others as 0.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.formatting import shown

LOSS_PARTS = ("loss_kl", "loss_mlm", "loss_cos", "loss_att", "loss_hidden_mse")  # metric names, in formula order
# Bounds far past any recipe: T^2 and an alpha times a loss must stay finite in 16-bit and fp32 arithmetic.
MAX_TEMPERATURE = 100.0
MAX_ALPHA = 10_000.0


@dataclass
class LossWeights:
    alpha_kl: float = 5.0  # KL between softened teacher and student distributions
    alpha_mlm: float = 2.0  # the student's own masked-LM cross-entropy
    alpha_cos: float = 1.0  # cosine between student hidden states and means of teacher hidden states
    alpha_att: float = 0.0  # MSE between student attention maps and means of teacher maps (distilrubert-small)
    alpha_hidden_mse: float = 1.0  # reduced-vocabulary students: MSE between projected student and teacher states
    temperature: float = 2.0  # softmax temperature T of the KL term
    kl_masked_only: bool = False  # KL over masked positions only, instead of every non-padding position

    def weight(self, part: str) -> float:
        """The alpha of one part named as in LOSS_PARTS ("loss_kl" -> alpha_kl)."""
        return getattr(self, "alpha_" + part.removeprefix("loss_"))

    def check(self, reduced_vocab: bool = False) -> None:
        """Raise ValueError unless 0 < T <= MAX_TEMPERATURE, every alpha is from 0 to MAX_ALPHA, and one alpha that
        applies is above 0.

        The hidden-state term of a reduced-vocabulary student is alpha_hidden_mse; of others, alpha_cos and alpha_att.
        """
        if not 0 < self.temperature < math.inf:
            raise ValueError(f"The temperature must be a finite number above 0; got {shown(self.temperature)}.")
        if self.temperature > MAX_TEMPERATURE:
            raise ValueError(f"The temperature must be at most {MAX_TEMPERATURE:g} (distillation uses 1 to 20); got "
                             f"{shown(self.temperature)}.")
        for part in LOSS_PARTS:
            name = "alpha_" + part.removeprefix("loss_")
            if not math.isfinite(self.weight(part)):
                raise ValueError(f"The loss weight {name} must be a finite number; got {shown(self.weight(part))}.")
            if self.weight(part) > MAX_ALPHA:
                raise ValueError(f"The loss weight {name} must be at most {MAX_ALPHA:,g}; "
                                 f"got {shown(self.weight(part))}.")
        if any(self.weight(part) < 0 for part in LOSS_PARTS):
            raise ValueError("Loss weights (alphas) cannot be negative.")
        applying = ("loss_kl", "loss_mlm", "loss_hidden_mse") if reduced_vocab else \
            ("loss_kl", "loss_mlm", "loss_cos", "loss_att")
        if not any(self.weight(part) > 0 for part in applying):
            raise ValueError("At least one loss weight (alpha) must be above 0, or the student learns nothing.")


def zero_like(like: torch.Tensor) -> torch.Tensor:
    """A 0 that keeps the graph, so backward works when a batch selects no position or a part is switched off."""
    return like.sum() * 0.0


def total_loss(parts: dict[str, torch.Tensor], weights: LossWeights) -> torch.Tensor:
    """The one formula of the module docstring; parts missing from `parts` count as 0."""
    return sum(weights.weight(name) * parts[name] for name in LOSS_PARTS if name in parts)


def softened_kl(student_rows: torch.Tensor, teacher_rows: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) of distributions softened by T, times T^2, averaged over rows.

    student_rows, teacher_rows: (n, vocab) logits. The T^2 factor keeps gradient sizes comparable across temperatures
    (Hinton et al., 2015). Returns 0 (with a graph) when n is 0.
    """
    if student_rows.shape[0] == 0:
        return zero_like(student_rows)
    s = F.log_softmax(student_rows.float() / temperature, dim=-1)  # (n, vocab)
    t = F.log_softmax(teacher_rows.float() / temperature, dim=-1)  # (n, vocab)
    return F.kl_div(s, t, reduction="batchmean", log_target=True) * temperature ** 2


KL_CHUNK_ELEMENTS = 2**25  # logits of each model in fp32 at once in kl_loss: 128 MB per block of rows
# The compiled kernel holds no fp32 copy of a block (only its 16-bit gradient), so on a GPU blocks are 4x larger:
# fewer launches, each well past launch overhead.
KL_CHUNK_ELEMENTS_GPU = 2**27


def _kl_block(student_block: torch.Tensor, teacher_block: torch.Tensor, temperature: float,
              scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One block of rows: (sum over its rows of KL(softmax(t/T) || softmax(s/T)), scale * d/ds of that sum * T).

    student_block, teacher_block: (rows, vocab) logits; scale: a 0-d tensor (T / n, kept out of the compiled code's
    constants so a new n does not recompile). The gradient comes back in the student logits' dtype."""
    log_s = F.log_softmax(student_block.float() / temperature, dim=-1)  # (rows, vocab)
    log_t = F.log_softmax(teacher_block.float() / temperature, dim=-1)
    p_t = log_t.exp()
    return (p_t * (log_t - log_s)).sum(), ((log_s.exp() - p_t) * scale).to(student_block.dtype)


class _BlockKernel:
    """_kl_block, compiled by torch.compile on a GPU: the dozen element-wise passes over a block become two fused
    kernels, which makes the KL term about ten times faster at RuBERT's vocabulary size. Falls back to plain
    PyTorch (with a warning) where compiling fails, and on the CPU, where it would cost more time than it saves."""

    def __init__(self):
        self.compiled, self.failed = None, False

    def __call__(self, student_block, teacher_block, temperature, scale):
        if student_block.device.type != "cuda" or self.failed:
            return _kl_block(student_block, teacher_block, temperature, scale)
        try:
            if self.compiled is None:
                self.compiled = torch.compile(_kl_block, dynamic=True)
            return self.compiled(student_block, teacher_block, temperature, scale)
        except Exception as error:  # no Triton, an unsupported GPU: the plain code computes the same
            warnings.warn(f"The KL term runs uncompiled ({type(error).__name__}: {str(error)[:200]}).", stacklevel=2)
            self.failed = True
            return _kl_block(student_block, teacher_block, temperature, scale)


kl_block_kernel = _BlockKernel()


class _ChunkedSoftenedKL(torch.autograd.Function):
    """softened_kl computed block by block of rows, its gradient worked out in the same pass.

    d/ds of T^2 * KL(softmax(t/T) || softmax(s/T)) / n is T * (softmax(s/T) - softmax(t/T)) / n, so the forward pass
    writes that gradient (in the logits' own dtype) and backward only scales it: no fp32 copy of the whole
    (rows x vocab) logits is alive at any time, and nothing is recomputed. The same analytic-gradient, chunked
    approach as Liger Kernel's fused losses (Hsu et al., 2024) and Apple's Cut Cross-Entropy (Wijmans et al., 2024).
    """

    @staticmethod
    def forward(ctx, student_flat, teacher_flat, rows, temperature, chunk_rows):
        n, every_row = rows.numel(), rows.numel() == student_flat.shape[0]
        wants_grad = ctx.needs_input_grad[0]
        grad = (torch.empty_like(student_flat) if every_row else torch.zeros_like(student_flat)) if wants_grad \
            else None  # (bs * seq, vocab), the logits' dtype
        total = torch.zeros((), dtype=torch.float32, device=student_flat.device)
        scale = torch.tensor(temperature / n, dtype=torch.float32, device=student_flat.device)
        for start in range(0, n, chunk_rows):
            # every row selected (no padding): blocks are views, not gathered copies
            block = slice(start, start + chunk_rows) if every_row else rows[start:start + chunk_rows]
            loss, block_grad = kl_block_kernel(student_flat[block], teacher_flat[block], temperature, scale)
            total += loss
            if wants_grad:
                grad[block] = block_grad
        if wants_grad:
            ctx.save_for_backward(grad)
        return total * temperature ** 2 / n

    @staticmethod
    def backward(ctx, grad_output):
        (grad,) = ctx.saved_tensors
        return grad * grad_output.to(grad.dtype), None, None, None, None


def kl_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, positions: torch.Tensor,
            temperature: float, chunk_elements: int | None = None) -> torch.Tensor:
    """softened_kl over the selected positions, equal to it to float rounding (tested to 1e-5), in bounded memory.

    student_logits, teacher_logits: (bs, seq, vocab), or (n, vocab) rows; positions: bool of the logits' leading
    shape, the positions that count. At most `chunk_elements` logits of each model (default 2^25 on CPU, 2^27 on a
    GPU) are in one block; the gradient is one tensor of the student logits' shape and dtype. At RuBERT's vocabulary
    and batch 32 x 256 on an H200 the whole-tensor formula peaked at 29.7 GiB for the step; this one at 10.8 GiB.
    """
    vocab = student_logits.shape[-1]
    rows = positions.reshape(-1).nonzero().squeeze(1)  # (n,) flat indices of the selected positions
    if rows.numel() == 0:
        return zero_like(student_logits)
    student_flat = student_logits.reshape(-1, vocab)  # (bs * seq, vocab), a view
    teacher_flat = teacher_logits.detach().reshape(-1, vocab)
    if chunk_elements is None:
        chunk_elements = KL_CHUNK_ELEMENTS_GPU if student_logits.device.type == "cuda" else KL_CHUNK_ELEMENTS
    chunk_rows = max(1, chunk_elements // vocab)
    return _ChunkedSoftenedKL.apply(student_flat, teacher_flat, rows, float(temperature), chunk_rows)


def mlm_loss(student_logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the student's predictions at masked positions; labels are -100 elsewhere.

    student_logits: (bs, seq, vocab) with labels (bs, seq), or (n, vocab) rows with labels (n,).
    """
    selected = labels != -100  # (bs, seq)
    if not selected.any():
        return zero_like(student_logits)
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


def hidden_mse_loss(student_states: list[torch.Tensor], teacher_hidden: tuple[torch.Tensor, ...],
                    positions: torch.Tensor, groups: list[list[int]]) -> torch.Tensor:
    """Mean over student layers of the MSE between student layer i and the mean of teacher group i.

    student_states: per student layer (index 0 the embeddings) a (bs, seq, dim) tensor already projected to the
    teacher's width and aligned to the teacher's positions; teacher_hidden: (bs, seq, dim) per teacher layer;
    positions: (bs, seq) bool, the positions that count; groups as in cosine_hidden_loss.
    """
    if not positions.any():
        return zero_like(student_states[-1])
    losses = []
    for student_layer, teacher_layers in enumerate(groups, start=1):
        target = torch.stack([teacher_hidden[j] for j in teacher_layers]).mean(dim=0)  # (bs, seq, dim)
        losses.append(F.mse_loss(student_states[student_layer][positions].float(), target[positions].float()))
    return torch.stack(losses).mean()


def logit_positions(attention_mask: torch.Tensor, labels: torch.Tensor, weights: LossWeights) -> torch.Tensor:
    """(bs, seq) bool: the positions whose logits some term reads, the KL term's and the MLM term's.

    With kl_masked_only (or alpha_kl 0) these are the masked positions only, about 15% of the tokens; otherwise every
    non-padding position. Logits elsewhere are never read, so the models need not compute them
    (core.models.masked_lm.logits_only_at).
    """
    real = attention_mask.bool()
    masked = (labels != -100) & real
    none = torch.zeros_like(real)
    kl = (masked if weights.kl_masked_only else real) if weights.alpha_kl > 0 else none
    return kl | (masked if weights.alpha_mlm > 0 else none)


def logit_share(weights: LossWeights, mlm_probability: float) -> float:
    """The expected share of non-padding positions in `logit_positions`: 1 when the KL term reads every position,
    otherwise the masking probability (0 when neither the KL nor the MLM term is on)."""
    if weights.alpha_kl > 0 and not weights.kl_masked_only:
        return 1.0
    return mlm_probability if weights.alpha_kl > 0 or weights.alpha_mlm > 0 else 0.0


def distillation_loss(student_out, teacher_out, attention_mask: torch.Tensor, labels: torch.Tensor,
                      weights: LossWeights, groups: list[list[int]]) -> dict[str, torch.Tensor]:
    """All the losses of a same-vocabulary student for one batch: parts unweighted, and "loss" from total_loss.

    student_out, teacher_out: masked-LM outputs with logits (bs, seq, vocab), or (n, vocab) when both models computed
    them only at `logit_positions(attention_mask, labels, weights)` (n of them, in (batch, position) order); with
    hidden_states / attentions when their alphas are above 0. attention_mask, labels: (bs, seq). Both forms give the
    same values. Parts whose alpha is 0 are not computed and are reported as 0; loss_hidden_mse does not apply here
    and is not reported.
    """
    real = attention_mask.bool()
    positions = (labels != -100) & real if weights.kl_masked_only else real
    if student_out.logits.dim() == 2:  # logits only where they are read: select the same rows of the rest
        read = logit_positions(attention_mask, labels, weights)
        positions, labels = positions[read], labels[read]  # (n,)
    zero = zero_like(student_out.logits)
    parts = {
        "loss_kl": kl_loss(student_out.logits, teacher_out.logits, positions, weights.temperature)
        if weights.alpha_kl > 0 else zero,
        "loss_mlm": mlm_loss(student_out.logits, labels) if weights.alpha_mlm > 0 else zero,
        "loss_cos": cosine_hidden_loss(student_out.hidden_states, teacher_out.hidden_states, attention_mask, groups)
        if weights.alpha_cos > 0 else zero,
        "loss_att": attention_mse_loss(student_out.attentions, teacher_out.attentions, attention_mask, groups)
        if weights.alpha_att > 0 else zero,
    }
    parts["loss"] = total_loss(parts, weights)
    return parts

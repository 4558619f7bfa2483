"""What happens in one distillation step: the same-vocabulary recipe of DistilRuBERT, and the reduced-vocabulary
recipe of DistilRuBERT-tiny (Kolesnikova et al., 2022). Usable from a notebook without train/:

    recipe = SameVocabRecipe(teacher, tokenizer, student, LossWeights(), layer_groups(4, 2), corpus)
    batch = recipe.build_batch([0, 1, 2], torch.Generator().manual_seed(0))
    parts = recipe.losses(recipe.trainable(), teacher, batch)   # {"loss", "loss_kl", ...}
    parts["loss"].backward()

Shapes: bs = batch size, t = teacher sequence length, s = student sequence length, Vt / Vs = teacher / student
vocabulary, dt / ds = teacher / student width.
"""
from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from core.distill.data import TokenizedCorpus, mlm_batch, pad
from core.distill.evaluate import Predictions, heldout_figures, masked_batches, mlm_figures
from core.distill.losses import (
    LossWeights,
    distillation_loss,
    hidden_mse_loss,
    kl_loss,
    logit_positions,
    mlm_loss,
    total_loss,
    zero_like,
)
from core.models.masked_lm import logits_only_at
from core.models.vocab import (
    VocabMapping,
    aligned_positions,
    gather_partners,
    match_partners,
    piece_matrix,
    reduce_to_teacher_positions,
    student_labels,
    to_student_inputs,
    to_teacher_vocab,
)


@dataclass
class SameVocabRecipe:
    """Teacher and student share the tokenizer: both read the same masked batch (DistilBERT's recipe)."""
    teacher: torch.nn.Module
    tokenizer: object  # the teacher's tokenizer: batches are built in the teacher's tokens
    student: torch.nn.Module
    weights: LossWeights
    groups: list[list[int]]  # teacher layers (1-based) each student layer learns from
    train: TokenizedCorpus
    valid_lines: list[str] = field(default_factory=list)
    max_length: int = 128  # tokens per held-out sample
    mlm_probability: float = 0.15
    eval_seed: int = 42  # seed of the held-out masks
    # Both models compute logits only where a loss reads them (logits_only_at); off under torch.compile, whose
    # traced graphs would not see the per-step hook.
    logits_where_read: bool = True

    @property
    def student_tokenizer(self):
        return self.tokenizer

    def build_batch(self, rows: list[int], generator: torch.Generator) -> dict:
        """A masked batch of the training rows: input_ids, attention_mask, labels, each (bs, t)."""
        return mlm_batch([self.train.sequences[i] for i in rows], self.tokenizer, generator, self.mlm_probability)

    def losses(self, trainable, teacher, batch: dict) -> dict[str, torch.Tensor]:
        weights = self.weights
        wants = dict(output_hidden_states=weights.alpha_cos > 0, output_attentions=weights.alpha_att > 0)
        inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        read = logit_positions(batch["attention_mask"], batch["labels"], weights)  # (bs, t) bool
        with torch.no_grad(), self._logits_at(teacher, read):
            teacher_out = teacher(**inputs, **wants)
        with self._logits_at(self.student, read):  # the student itself: `trainable` may be its DDP wrapper
            student_out = trainable(**inputs, **wants)
        return distillation_loss(student_out, teacher_out, batch["attention_mask"], batch["labels"], weights,
                                 self.groups)

    def _logits_at(self, model, read: torch.Tensor):
        return logits_only_at(model, read) if self.logits_where_read else nullcontext()

    def valid_batches(self) -> list[dict]:
        if not hasattr(self, "_valid_batches"):
            self._valid_batches = masked_batches(self.valid_lines, self.tokenizer, self.max_length,
                                                 seed=self.eval_seed)
        return self._valid_batches

    def evaluate(self, student, teacher) -> dict:
        """Held-out mlm_acc, agreement, teacher_mlm_acc and masked_positions (see core.distill.evaluate)."""
        return mlm_figures(student, self.valid_batches(), teacher)

    def trainable(self) -> torch.nn.Module:
        """The module the optimizer trains and Accelerate wraps: here the student itself."""
        return self.student

    def hf_student(self, trainable: torch.nn.Module):
        """The Hugging Face model inside the trainable module, for saving and evaluating."""
        return trainable


class ProjectedStudent(torch.nn.Module):
    """The student and its projection to the teacher's width, trained (and synchronised across processes) together.

    forward runs the student once per input set inside one call, so Accelerate's DDP wrapper sees a single forward
    per backward; the projection is applied to every student position, and averaging projected pieces equals
    projecting averaged pieces, as the projection is affine.
    """

    def __init__(self, student, projection: torch.nn.Linear):
        super().__init__()
        self.student, self.projection = student, projection

    def forward(self, runs: list[dict], hidden: list[bool]) -> list:
        outs = []
        for inputs, with_hidden in zip(runs, hidden):
            out = self.student(**inputs, output_hidden_states=with_hidden)
            out.projected = [self.projection(h) for h in out.hidden_states] if with_hidden else None  # (bs, s, dt)
            outs.append(out)
        return outs


@dataclass
class Aligned:
    """Both models' logits brought to the teacher's positions, and what each loss reads."""
    student_kl: torch.Tensor  # (bs, t, V) student logits compared by the KL term
    teacher_kl: torch.Tensor  # (bs, t, V) teacher logits on the same vocabulary
    kl_positions: torch.Tensor  # (bs, t) bool
    mlm_logits: torch.Tensor | None  # (bs, s, Vs) the student's logits on the tokens its MLM labels refer to
    mlm_labels: torch.Tensor  # (bs, s) student ids, -100 where nothing is predicted
    states: list[torch.Tensor] | None  # per student layer (bs, t, dt), projected, at the teacher's positions
    hidden_positions: torch.Tensor  # (bs, t) bool, where the hidden-state MSE counts


@dataclass
class ReducedVocabRecipe(SameVocabRecipe):
    """A student with its own smaller vocabulary (and width); logits aligned by `align` (see core.models.vocab).

    match and reduce are the authors' (ayeffkay/rubert-tiny): the teacher reads the unmasked text; the student's MLM
    loss uses its own tokenisation and its own masks. match-pieces and reduce-shared are the lab's variants on one
    masked teacher batch, the student reading it as pieces.
    """
    reduced_tokenizer: object = None
    mapping: VocabMapping | None = None
    projection: torch.nn.Linear | None = None  # student width -> teacher width, trained with the student
    align: str = "reduce"
    reduce_op: str = "sum"  # "sum" or "mean" of the student's logits over a teacher token's pieces
    # the training rows in the student's own tokens, row for row with train: sequences[i] -> ids (a TokenizedCorpus,
    # an ArrowCorpus read from disk, or a stream's StudentSide); None where the alignment never reads them
    student_train: object | None = None

    @property
    def student_tokenizer(self):
        return self.reduced_tokenizer

    @property
    def authors(self) -> bool:
        return self.align in ("match", "reduce")

    def pieces_inputs(self, batch: dict) -> dict:
        """The student's view of a teacher batch: each teacher token replaced by its pieces (see to_student_inputs)."""
        limit = self.student.config.max_position_embeddings
        return to_student_inputs(batch["input_ids"], batch["attention_mask"], self.mapping,
                                 self.reduced_tokenizer.pad_token_id, limit)

    def build_batch(self, rows: list[int], generator: torch.Generator) -> dict:
        """Teacher tensors (bs, t) and the student's: pieces (bs, s) with owner, or its own masked tokens with partners.

        authors' alignments: input_ids unmasked; own_input_ids, own_attention_mask, own_labels (bs, s) the student's
        own masked tokenisation; match adds partners (bs, t), reduce the pieces inputs of the unmasked text.
        """
        if not self.authors:
            batch = super().build_batch(rows, generator)
            batch.update(self.pieces_inputs(batch))
            batch["student_labels"] = student_labels(batch["labels"], self.mapping)
            batch["student_labels"][~batch["covered"]] = -100
            return batch
        teacher_rows = [self.train.sequences[i] for i in rows]
        input_ids, attention_mask = pad(teacher_rows, self.tokenizer.pad_token_id)
        batch = {"input_ids": input_ids, "attention_mask": attention_mask}
        own_rows = [self.student_train.sequences[i] for i in rows] if self.student_train is not None else None
        if own_rows is not None:  # reduce without the MLM term never reads the student's own tokenisation
            own = mlm_batch(own_rows, self.reduced_tokenizer, generator, self.mlm_probability)
            batch.update(own_input_ids=own["input_ids"], own_attention_mask=own["attention_mask"],
                         own_labels=own["labels"])
        if self.align == "match":  # pairs from the unmasked strings, as the authors compute them before masking
            partners = torch.full(input_ids.shape, -1, dtype=torch.long)
            for row, (t_ids, s_ids) in enumerate(zip(teacher_rows, own_rows)):
                found = match_partners(self.tokenizer.convert_ids_to_tokens(t_ids),
                                       self.reduced_tokenizer.convert_ids_to_tokens(s_ids))
                partners[row, :len(found)] = torch.tensor(found, dtype=torch.long)
            batch["partners"] = partners
        else:
            batch.update(self.pieces_inputs(batch))
        return batch

    def student_at_teacher_positions(self, out, batch: dict, op: str, hidden: bool):
        """Student logits (bs, t, Vs) and projected hidden states (bs, t, dt) per layer, one per teacher position.

        Hidden states are always averaged over pieces, never summed.
        """
        length = batch["input_ids"].shape[1]
        logits = reduce_to_teacher_positions(out.logits, batch["owner"], length, op)  # (bs, t, Vs)
        states = [reduce_to_teacher_positions(h, batch["owner"], length, "mean") for h in out.projected] \
            if hidden else None
        return logits, states

    def losses(self, trainable, teacher, batch: dict) -> dict[str, torch.Tensor]:
        weights = self.weights
        hidden = weights.alpha_hidden_mse > 0
        with torch.no_grad():
            teacher_out = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  output_hidden_states=hidden)
        align = {"match": self.align_match, "reduce": self.align_reduce}.get(self.align, self.align_pieces)
        a = align(trainable, batch, teacher_out.logits, hidden)
        zero = zero_like(a.student_kl)
        parts = {
            "loss_kl": kl_loss(a.student_kl, a.teacher_kl, a.kl_positions, weights.temperature)
            if weights.alpha_kl > 0 else zero,
            "loss_mlm": mlm_loss(a.mlm_logits, a.mlm_labels) if weights.alpha_mlm > 0 else zero,
            "loss_hidden_mse": hidden_mse_loss(a.states, teacher_out.hidden_states, a.hidden_positions, self.groups)
            if hidden else zero,
            "loss_cos": zero, "loss_att": zero,  # both need the same tokens in both models
        }
        parts["loss"] = total_loss(parts, weights)
        return parts

    def align_match(self, trainable, batch: dict, teacher_logits: torch.Tensor, hidden: bool) -> Aligned:
        """The authors' match: the student's own run, read at the partner of each paired teacher position."""
        (own,) = trainable([own_inputs(batch)], [hidden])
        partners = batch["partners"]  # (bs, t)
        logits = gather_partners(own.logits, partners)  # (bs, t, Vs)
        paired = partners >= 0
        kl_positions = paired
        if self.weights.kl_masked_only:  # pairs whose student token was chosen for masking
            masked = (batch["own_labels"] != -100).unsqueeze(-1).float()  # (bs, s, 1)
            kl_positions = paired & (gather_partners(masked, partners).squeeze(-1) > 0)
        shared_t, shared_s = (ids.to(logits.device) for ids in (self.mapping.shared_teacher,
                                                                 self.mapping.shared_student))
        return Aligned(logits[..., shared_s], teacher_logits[..., shared_t], kl_positions, own.logits,
                       batch["own_labels"], [gather_partners(h, partners) for h in own.projected] if hidden else None,
                       paired)

    def align_reduce(self, trainable, batch: dict, teacher_logits: torch.Tensor, hidden: bool) -> Aligned:
        """The authors' reduce: piece-summed logits over the teacher's whole vocabulary; MLM on the own run."""
        with_mlm = self.weights.alpha_mlm > 0
        runs = [pieces_inputs(batch)] + ([own_inputs(batch)] if with_mlm else [])
        outs = trainable(runs, [hidden, False][:len(runs)])
        logits, states = self.student_at_teacher_positions(outs[0], batch, self.reduce_op, hidden)
        mapped = to_teacher_vocab(logits, piece_matrix_of(self))  # (bs, t, Vt)
        positions = batch["attention_mask"].bool() & batch["covered"]
        mlm_logits = outs[1].logits if with_mlm else None
        return Aligned(mapped, teacher_logits[..., :mapped.shape[-1]],  # a padded model vocabulary adds unused ids
                       positions, mlm_logits, batch.get("own_labels"), states, positions)

    def align_pieces(self, trainable, batch: dict, teacher_logits: torch.Tensor, hidden: bool) -> Aligned:
        """match-pieces and reduce-shared: the student reads the masked teacher batch as pieces."""
        (out,) = trainable([pieces_inputs(batch)], [hidden])
        logits, states = self.student_at_teacher_positions(out, batch, self.reduce_op, hidden)
        covered = batch["attention_mask"].bool() & batch["covered"]
        positions = aligned_positions(batch["input_ids"], batch["attention_mask"], self.mapping, self.align) & covered
        if self.weights.kl_masked_only:
            positions &= batch["labels"] != -100
        shared_t, shared_s = (ids.to(logits.device) for ids in (self.mapping.shared_teacher,
                                                                 self.mapping.shared_student))
        return Aligned(logits[..., shared_s], teacher_logits[..., shared_t], positions, logits,
                       batch["student_labels"], states, covered)

    def valid_batches(self) -> list[dict]:
        if not hasattr(self, "_valid_batches"):
            self._valid_batches = [{**b, **self.pieces_inputs(b)} for b in masked_batches(
                self.valid_lines, self.tokenizer, self.max_length, seed=self.eval_seed)]
        return self._valid_batches

    @torch.no_grad()
    def evaluate(self, student, teacher) -> dict:
        """Held-out figures compared as strings: the two models' top-1 tokens and the true token.

        The student reads each masked teacher batch as pieces; its logits are summed (reduce_op) over the pieces of
        each teacher token. Teacher positions cut from the student's input are not counted.
        """
        device = next(student.parameters()).device

        def predict(batch: dict) -> Predictions:
            batch = {k: v.to(device) for k, v in batch.items()}
            out = student(input_ids=batch["student_input_ids"], attention_mask=batch["student_attention_mask"])
            logits = reduce_to_teacher_positions(out.logits, batch["owner"], batch["input_ids"].shape[1],
                                                 self.reduce_op)
            teacher_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            selected = (batch["labels"] != -100) & batch["covered"]
            return (self.reduced_tokenizer.convert_ids_to_tokens(logits[selected].argmax(-1).tolist()),
                    self.tokenizer.convert_ids_to_tokens(teacher_logits[selected].argmax(-1).tolist()),
                    self.tokenizer.convert_ids_to_tokens(batch["labels"][selected].tolist()))

        return heldout_figures(student, self.valid_batches(), predict)

    def trainable(self) -> torch.nn.Module:
        if not hasattr(self, "_trainable"):
            self._trainable = ProjectedStudent(self.student, self.projection)
        return self._trainable

    def hf_student(self, trainable: torch.nn.Module):
        return trainable.student


def own_inputs(batch: dict) -> dict:
    return {"input_ids": batch["own_input_ids"], "attention_mask": batch["own_attention_mask"]}


def pieces_inputs(batch: dict) -> dict:
    return {"input_ids": batch["student_input_ids"], "attention_mask": batch["student_attention_mask"]}


def piece_matrix_of(recipe: ReducedVocabRecipe) -> torch.Tensor:
    """The recipe's (Vt, Vs) piece matrix, built once."""
    if not hasattr(recipe, "_piece_matrix"):
        recipe._piece_matrix = piece_matrix(recipe.mapping, len(recipe.reduced_tokenizer))
    return recipe._piece_matrix

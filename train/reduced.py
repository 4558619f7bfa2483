"""Distillation into a student with its own smaller vocabulary and width (match / reduce alignment)."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from core.distill.data import tokenize_lines
from core.distill.losses import kl_loss, mlm_loss
from core.models.reduced_student import make_reduced_student
from core.models.student import dims, layer_groups, num_layers
from core.models.vocab import (
    VocabMapping,
    aligned_positions,
    build_mapping,
    reduce_to_teacher_positions,
    student_labels,
    to_student_inputs,
    train_student_vocab,
)
from train.config import DistillConfig
from train.setup import DistillSetup, check_batches


class ProjectedStudent(torch.nn.Module):
    """The student and its projection to the teacher's width, trained (and synchronised across processes) together.

    The projection is applied to every student position inside forward, so Accelerate's DDP wrapper sees it;
    averaging projected pieces equals projecting averaged pieces, as the projection is affine.
    """

    def __init__(self, student, projection: torch.nn.Linear):
        super().__init__()
        self.student, self.projection = student, projection

    def forward(self, output_hidden_states: bool = False, **inputs):
        out = self.student(**inputs, output_hidden_states=output_hidden_states)
        out.projected = [self.projection(h) for h in out.hidden_states] if output_hidden_states else None
        return out


@dataclass
class ReducedVocabSetup(DistillSetup):
    reduced_tokenizer: object = None
    mapping: VocabMapping | None = None
    projection: torch.nn.Linear | None = None  # student width -> teacher width, trained with the student
    hidden_groups: list[list[int]] = field(default_factory=list)

    @property
    def student_tokenizer(self):
        return self.reduced_tokenizer

    def extend_batch(self, batch: dict) -> dict:
        """Add the student's view of a teacher batch: its pieces, their owners, and labels in its vocabulary."""
        limit = self.student.config.max_position_embeddings
        batch.update(to_student_inputs(batch["input_ids"], batch["attention_mask"], self.mapping,
                                       self.reduced_tokenizer.pad_token_id, limit))
        batch["student_labels"] = student_labels(batch["labels"], self.mapping)
        batch["student_labels"][~batch["covered"]] = -100
        return batch

    def student_at_teacher_positions(self, student, batch: dict, hidden: bool):
        """Student logits (and projected hidden states) reduced to one vector per teacher position."""
        out = student(input_ids=batch["student_input_ids"], attention_mask=batch["student_attention_mask"],
                      output_hidden_states=hidden)
        length = batch["input_ids"].shape[1]
        logits = reduce_to_teacher_positions(out.logits, batch["owner"], length, self.cfg.reduce_op)  # (bs, t, Vs)
        states = [reduce_to_teacher_positions(h, batch["owner"], length, "mean") for h in out.projected] \
            if hidden else None  # (bs, t, dt) per layer; hidden states are averaged, never summed
        return logits, states

    def losses(self, student, teacher, batch: dict) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        hidden = cfg.alpha_hidden_mse > 0
        with torch.no_grad():
            teacher_out = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  output_hidden_states=hidden)
        logits, states = self.student_at_teacher_positions(student, batch, hidden)
        positions = aligned_positions(batch["input_ids"], batch["attention_mask"], self.mapping, cfg.align)
        positions &= batch["covered"]
        if cfg.kl_masked_only:
            positions &= batch["labels"] != -100
        shared_t = self.mapping.shared_teacher.to(logits.device)
        shared_s = self.mapping.shared_student.to(logits.device)
        zero = logits.sum() * 0.0
        parts = {"loss_kl": kl_loss(logits[..., shared_s], teacher_out.logits[..., shared_t], positions,
                                    cfg.temperature) if cfg.alpha_kl > 0 else zero,
                 "loss_mlm": mlm_loss(logits, batch["student_labels"]) if cfg.alpha_mlm > 0 else zero,
                 "loss_hidden_mse": self.hidden_mse(states, teacher_out.hidden_states,
                                                    batch["attention_mask"].bool() & batch["covered"])
                 if hidden else zero}
        parts["loss_cos"] = parts["loss_att"] = zero
        parts["loss"] = cfg.alpha_kl * parts["loss_kl"] + cfg.alpha_mlm * parts["loss_mlm"] + \
            cfg.alpha_hidden_mse * parts["loss_hidden_mse"]
        return parts

    def hidden_mse(self, student_states, teacher_states, real: torch.Tensor) -> torch.Tensor:
        """MSE between projected student layers and means of consecutive teacher layers, at real positions."""
        losses = []
        for student_layer, group in enumerate(self.hidden_groups, start=1):
            target = torch.stack([teacher_states[j] for j in group]).mean(dim=0)  # (bs, t, dt)
            losses.append(F.mse_loss(student_states[student_layer][real].float(), target[real].float()))
        return torch.stack(losses).mean()

    @torch.no_grad()
    def evaluate(self, student, teacher) -> dict:
        """Held-out figures compared as strings: the two models' top-1 tokens and the true token."""
        if not hasattr(self, "_valid_batches"):
            from core.distill.evaluate import masked_batches
            self._valid_batches = [self.extend_batch(b) for b in masked_batches(
                self.valid_lines, self.tokenizer, self.cfg.max_length, seed=self.cfg.seed)]
        was_training = student.training
        student.eval()
        device = next(student.parameters()).device
        right = agree = teacher_right = total = 0
        for batch in self._valid_batches:
            batch = {k: v.to(device) for k, v in batch.items()}
            logits, _ = self.student_at_teacher_positions(student, batch, hidden=False)
            teacher_logits = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
            selected = (batch["labels"] != -100) & batch["covered"]
            student_words = self.reduced_tokenizer.convert_ids_to_tokens(logits[selected].argmax(-1).tolist())
            teacher_words = self.tokenizer.convert_ids_to_tokens(teacher_logits[selected].argmax(-1).tolist())
            truth = self.tokenizer.convert_ids_to_tokens(batch["labels"][selected].tolist())
            right += sum(s == t for s, t in zip(student_words, truth))
            agree += sum(s == t for s, t in zip(student_words, teacher_words))
            teacher_right += sum(s == t for s, t in zip(teacher_words, truth))
            total += len(truth)
        student.train(was_training)
        return {"mlm_acc": right / max(total, 1), "agreement": agree / max(total, 1),
                "teacher_mlm_acc": teacher_right / max(total, 1), "masked_positions": total}

    def trainable(self) -> torch.nn.Module:
        if not hasattr(self, "_trainable"):
            self._trainable = ProjectedStudent(self.student, self.projection)
        return self._trainable

    def hf_student(self, trainable: torch.nn.Module):
        return trainable.student


def prepare_reduced(cfg: DistillConfig, teacher, tokenizer, lines: list[str], valid: list[str], layers: int,
                    verbose: bool, world: int) -> ReducedVocabSetup:
    if cfg.alpha_att > 0:
        raise ValueError("The attention-map loss needs the same tokens in both models; "
                         "set --alpha-att 0 for a reduced-vocabulary student.")
    torch.manual_seed(cfg.seed)
    student_tokenizer = train_student_vocab(lines, cfg.student_vocab_size, tokenizer)
    mapping = build_mapping(tokenizer, student_tokenizer)
    if verbose:
        print(f"student vocabulary: {len(student_tokenizer)} entries, {len(mapping.shared_teacher)} shared with the "
              f"teacher's {len(tokenizer)}", file=sys.stderr)
    student = make_reduced_student(teacher, tokenizer, student_tokenizer, mapping, layers, cfg.student_hidden,
                                   cfg.student_type)
    projection = torch.nn.Linear(dims(student.config)["hidden"], dims(teacher.config)["hidden"])
    train = tokenize_lines(lines, tokenizer, cfg.max_length)
    check_batches(train, cfg, world, verbose)
    groups = layer_groups(num_layers(teacher.config), layers)
    return ReducedVocabSetup(cfg, teacher, tokenizer, student, train, valid, groups,
                             reduced_tokenizer=student_tokenizer, mapping=mapping, projection=projection,
                             hidden_groups=groups)

"""Everything a run needs before its first step, checked before anything is written: teacher, student, data, losses.

DistillSetup is the same-vocabulary recipe of DistilRuBERT. train.reduced.ReducedVocabSetup extends it for students
with their own smaller vocabulary.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from core.distill.data import TokenizedCorpus, length_grouped_batches, read_corpus, split_lines, tokenize_lines
from core.distill.evaluate import masked_batches, mlm_figures
from core.distill.losses import distillation_loss
from core.models import zoo
from core.models.student import StudentSpec, layer_groups, make_student, num_layers
from train.config import DistillConfig


@dataclass
class DistillSetup:
    cfg: DistillConfig
    teacher: torch.nn.Module
    tokenizer: object  # the teacher's tokenizer: batches are built in the teacher's tokens
    student: torch.nn.Module
    train: TokenizedCorpus
    valid_lines: list[str]
    groups: list[list[int]] = field(default_factory=list)

    @property
    def student_tokenizer(self):
        return self.tokenizer

    def batches_for(self, epoch: int) -> list[list[int]]:
        return length_grouped_batches(self.train.lengths, self.cfg.batch_size, self.cfg.seed, epoch)

    def losses(self, student, teacher, batch: dict) -> dict[str, torch.Tensor]:
        weights = self.cfg.loss_weights
        wants = dict(output_hidden_states=weights.alpha_cos > 0, output_attentions=weights.alpha_att > 0)
        inputs = dict(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        with torch.no_grad():
            teacher_out = teacher(**inputs, **wants)
        student_out = student(**inputs, **wants)
        return distillation_loss(student_out, teacher_out, batch["attention_mask"], batch["labels"], weights,
                                 self.groups)

    def evaluate(self, student, teacher) -> dict:
        if not hasattr(self, "_valid_batches"):
            self._valid_batches = masked_batches(self.valid_lines, self.tokenizer, self.cfg.max_length,
                                                 seed=self.cfg.seed)
        return mlm_figures(student, self._valid_batches, teacher)

    def extend_batch(self, batch: dict) -> dict:
        """Add what the student needs beyond the teacher's batch (nothing when they share a vocabulary)."""
        return batch

    def trainable(self) -> torch.nn.Module:
        """The module the optimizer trains and Accelerate wraps: here the student itself."""
        return self.student

    def hf_student(self, trainable: torch.nn.Module):
        """The Hugging Face model inside the trainable module, for saving and evaluating."""
        return trainable


def load_lines(cfg: DistillConfig) -> tuple[list[str], list[str]]:
    train_path, valid_path = cfg.corpus_paths()
    lines = read_corpus(train_path)
    if valid_path is not None:
        valid = read_corpus(valid_path)
    else:
        lines, valid = split_lines(lines, 0.05, cfg.seed)
    return lines, valid[:cfg.eval_lines]


def prepare(cfg: DistillConfig, run_dir: Path, resume: bool, verbose: bool = True, world: int = 1) -> DistillSetup:
    """Load and check everything; raise ValueError (nothing written) when the run cannot start."""
    if not resume and (run_dir / "config.json").is_file():
        raise ValueError(f"'{run_dir}' already holds a run: use --resume to continue it, or another --output-dir.")
    lines, valid = load_lines(cfg)
    teacher_loaded = zoo.load(cfg.teacher, attentions=cfg.alpha_att > 0)
    teacher, tokenizer = teacher_loaded.model, teacher_loaded.tokenizer
    if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ValueError(f"The teacher's tokenizer lacks [MASK], [CLS] or [SEP]; '{cfg.teacher}' is not a "
                         "BERT-style MLM.")
    max_positions = teacher.config.max_position_embeddings
    if cfg.max_length > max_positions:
        raise ValueError(f"--max-length {cfg.max_length} is longer than the teacher's maximum ({max_positions}).")
    teacher_layers = num_layers(teacher.config)
    student_layers = cfg.student_layers or max(1, teacher_layers // 2)
    if student_layers > teacher_layers:
        raise ValueError(f"The student cannot have more layers ({student_layers}) than the teacher ({teacher_layers}).")
    if cfg.reduced_vocab:
        from train.reduced import prepare_reduced
        return prepare_reduced(cfg, teacher, tokenizer, lines, valid, student_layers, verbose, world)
    student = make_student(teacher, StudentSpec(student_layers, cfg.init_layers, cfg.student_type))
    train = tokenize_lines(lines, tokenizer, cfg.max_length)
    check_batches(train, cfg, world, verbose)
    return DistillSetup(cfg, teacher, tokenizer, student, train, valid, layer_groups(teacher_layers, student_layers))


def check_batches(train: TokenizedCorpus, cfg: DistillConfig, world: int, verbose: bool) -> None:
    if len(train.sequences) < cfg.batch_size * world:
        raise ValueError(f"The corpus has {len(train.sequences)} usable lines, fewer than one batch "
                         f"({cfg.batch_size} x {world} processes): lower --batch-size or add text.")
    if train.truncated and verbose:
        print(f"warning: {train.truncated} lines were longer than --max-length {cfg.max_length} tokens and were cut.",
              file=sys.stderr)

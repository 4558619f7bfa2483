"""Everything a run needs before its first step, loaded from a DistillConfig and checked before anything is written.

The step itself is a recipe from core.distill.recipes: SameVocabRecipe, or ReducedVocabRecipe (built by
train.reduced) for a student with its own smaller vocabulary.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from core.distill.data import TokenizedCorpus, length_grouped_batches, read_corpus, split_lines, tokenize_lines
from core.distill.recipes import SameVocabRecipe
from core.models import zoo
from core.models.student import StudentSpec, layer_groups, make_student, num_layers
from train.config import DistillConfig
from train.preflight import check_against_teacher
from train.reduced import reduced_recipe


@dataclass
class DistillSetup:
    cfg: DistillConfig
    recipe: SameVocabRecipe  # or ReducedVocabRecipe

    def batches_for(self, epoch: int) -> list[list[int]]:
        """Every batch of one epoch, as rows of the training corpus, in the order fixed by (seed, epoch)."""
        return length_grouped_batches(self.recipe.train.lengths, self.cfg.batch_size, self.cfg.seed, epoch)


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
    teacher_loaded = zoo.load(cfg.teacher, attentions=cfg.losses.alpha_att > 0)
    teacher, tokenizer = teacher_loaded.model, teacher_loaded.tokenizer
    if teacher_loaded.notice and verbose:
        print(f"warning: {teacher_loaded.notice}", file=sys.stderr)
    if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ValueError(f"The teacher's tokenizer lacks [MASK], [CLS] or [SEP]; '{cfg.teacher}' is not a "
                         "BERT-style MLM.")
    check_against_teacher(cfg, teacher.config)  # the app made the same checks before queueing the run
    teacher_layers = num_layers(teacher.config)
    student_layers = cfg.student_layers or max(1, teacher_layers // 2)
    if cfg.reduced_vocab:
        recipe = reduced_recipe(cfg, teacher, tokenizer, lines, valid, student_layers, verbose)
    else:
        student = make_student(teacher, StudentSpec(student_layers, cfg.init_layers, cfg.student_type))
        recipe = SameVocabRecipe(teacher, tokenizer, student, cfg.losses,
                                 layer_groups(teacher_layers, student_layers),
                                 tokenize_lines(lines, tokenizer, cfg.max_length), valid, cfg.max_length,
                                 cfg.mlm_probability, cfg.seed)
    check_batches(recipe.train, cfg, world, verbose)
    return DistillSetup(cfg, recipe)


def check_batches(train: TokenizedCorpus, cfg: DistillConfig, world: int, verbose: bool) -> None:
    if len(train.sequences) < cfg.batch_size * world:
        raise ValueError(f"The corpus has {len(train.sequences)} usable lines, fewer than one batch "
                         f"({cfg.batch_size} x {world} processes): lower --batch-size or add text.")
    if train.truncated and verbose:
        print(f"warning: {train.truncated} lines were longer than --max-length {cfg.max_length} tokens and were cut.",
              file=sys.stderr)

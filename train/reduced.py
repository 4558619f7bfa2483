"""Building the reduced-vocabulary recipe from a DistillConfig: the student's vocabulary, the student, its data."""
from __future__ import annotations

import sys

import torch

from core.distill.data import tokenize_lines, tokenize_parallel
from core.distill.recipes import ReducedVocabRecipe
from core.models.reduced_student import make_reduced_student
from core.models.student import dims, layer_groups, num_layers
from core.models.vocab import OWN_TOKENISATION, build_mapping, train_student_vocab
from train.config import DistillConfig


def reduced_recipe(cfg: DistillConfig, teacher, tokenizer, lines: list[str], valid: list[str], layers: int,
                   verbose: bool) -> ReducedVocabRecipe:
    """Train the student's WordPiece vocabulary on the lines, make the student and its projection, tokenise the data.

    Raises ValueError when the options cannot make such a student.
    """
    if cfg.losses.alpha_att > 0:
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
    own_needed = cfg.align in OWN_TOKENISATION or (cfg.align == "reduce" and cfg.losses.alpha_mlm > 0)
    if own_needed:
        train, student_train = tokenize_parallel(lines, tokenizer, student_tokenizer, cfg.max_length)
    else:
        train, student_train = tokenize_lines(lines, tokenizer, cfg.max_length), None
    groups = layer_groups(num_layers(teacher.config), layers)
    return ReducedVocabRecipe(teacher, tokenizer, student, cfg.losses, groups, train, valid, cfg.max_length,
                              cfg.mlm_probability, cfg.seed, reduced_tokenizer=student_tokenizer, mapping=mapping,
                              projection=projection, align=cfg.align, reduce_op=cfg.reduce_op,
                              student_train=student_train)

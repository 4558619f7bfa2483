"""Building the reduced-vocabulary recipe from a DistillConfig: the student's vocabulary, the student, its data."""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch

from core.distill.recipes import ReducedVocabRecipe
from core.distill.training_data import TrainingData, student_training_data
from core.distill.vocabulary import corpus_vocabulary, load_vocabulary
from core.models.reduced_student import make_reduced_student
from core.models.student import dims, layer_groups, num_layers
from core.models.vocab import OWN_TOKENISATION, build_mapping
from train.config import DistillConfig


def in_this_process(load: Callable):
    """load() here: what main_only and main_first come down to in a run of one process."""
    return load()


def student_vocabulary(cfg: DistillConfig, tokenizer, data: TrainingData, saved: Path | None = None):
    """The student's WordPiece vocabulary: the one a resumed run saved in `saved` (a folder holding tokenizer.json),
    else learnt from the training corpus (at most VOCAB_SAMPLES samples; kept beside an on-disk corpus and reused,
    see core.distill.vocabulary). Raises ValueError when cfg.student_vocab_size is not below the teacher's."""
    if saved is not None and (saved / "tokenizer.json").is_file():
        return load_vocabulary(saved)
    return corpus_vocabulary(data, cfg.student_vocab_size, tokenizer)


def reduced_recipe(cfg: DistillConfig, teacher, tokenizer, data: TrainingData, layers: int, verbose: bool,
                   saved: Path | None = None, main_only: Callable = in_this_process,
                   main_first: Callable = in_this_process) -> ReducedVocabRecipe:
    """Get the student's vocabulary (student_vocabulary; `saved`: a resumed run's student folder), make the student
    and its projection, and give it the data: the teacher's tokens of `data`, with the student's own tokens beside
    them where the alignment reads them (tokenised on disk and cached, or as a stream is read).

    Across processes, main_only(make) makes in the main process and hands the result to the others (every process
    needs the very same vocabulary); main_first(load) runs load() in the main process first (it writes the cache),
    then in the others. Raises ValueError when the options cannot make such a student.
    """
    if cfg.losses.alpha_att > 0:
        raise ValueError("The attention-map loss needs the same tokens in both models; "
                         "set --alpha-att 0 for a reduced-vocabulary student.")
    student_tokenizer = main_only(lambda: student_vocabulary(cfg, tokenizer, data, saved))
    torch.manual_seed(cfg.seed)
    mapping = build_mapping(tokenizer, student_tokenizer)
    if verbose:
        print(f"student vocabulary: {len(student_tokenizer):,} entries, {len(mapping.shared_teacher):,} shared with "
              f"the teacher's {len(tokenizer):,}", file=sys.stderr)
    student = make_reduced_student(teacher, tokenizer, student_tokenizer, mapping, layers, cfg.student_hidden,
                                   cfg.student_type)
    projection = torch.nn.Linear(dims(student.config)["hidden"], dims(teacher.config)["hidden"])
    own_needed = cfg.align in OWN_TOKENISATION or (cfg.align == "reduce" and cfg.losses.alpha_mlm > 0)
    if own_needed:
        progress = "tokenising for the student" if verbose and sys.stderr.isatty() else None
        train, student_train = main_first(lambda: student_training_data(data, tokenizer, student_tokenizer,
                                                                        cfg.max_length, cfg.num_proc, progress))
    else:
        train, student_train = data.train, None
    groups = layer_groups(num_layers(teacher.config), layers)
    return ReducedVocabRecipe(teacher, tokenizer, student, cfg.losses, groups, train, data.valid_lines,
                              cfg.max_length, cfg.mlm_probability, cfg.seed, reduced_tokenizer=student_tokenizer,
                              mapping=mapping, projection=projection, align=cfg.align, reduce_op=cfg.reduce_op,
                              student_train=student_train)

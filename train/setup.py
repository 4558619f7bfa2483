"""Everything a run needs before its first step, loaded from a DistillConfig and checked before anything is written.

The step itself is a recipe from core.distill.recipes: SameVocabRecipe, or ReducedVocabRecipe (built by
train.reduced) for a student with its own smaller vocabulary.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from accelerate import PartialState
from accelerate.utils import broadcast_object_list

from core.distill.batching import EpochBatches
from core.distill.recipes import SameVocabRecipe
from core.distill.sources import local_files
from core.distill.training_data import TrainingData, load_training_data
from core.formatting import count
from core.models import zoo
from core.models.student import StudentSpec, layer_groups, make_student, num_layers
from core.runs.store import RunPaths
from train.config import DistillConfig
from train.preflight import check_against_teacher
from train.reduced import reduced_recipe

Loaded = TypeVar("Loaded")


@dataclass
class DistillSetup:
    cfg: DistillConfig
    recipe: SameVocabRecipe  # or ReducedVocabRecipe
    data: TrainingData

    def batches_for(self, epoch: int):
        """Every batch of one epoch, as rows of the training corpus, in the order fixed by (seed, epoch):
        batches[i] is a list of rows (EpochBatches, or StreamEpoch for a streamed corpus)."""
        train = self.recipe.train
        if train is self.data.train:
            return self.data.batches_for(epoch, self.cfg.batch_size)
        # a recipe with rows of its own (a student's own tokenisation leaves out samples it finds no piece in)
        if hasattr(train, "batches_for"):  # a stream
            return train.batches_for(self.cfg.batch_size, self.cfg.seed, epoch)
        return EpochBatches(np.asarray(train.lengths), self.cfg.batch_size, self.cfg.seed, epoch)


def attempted_on_main(make: Callable[[], Loaded], send: bool) -> Loaded | None:
    """make() in the main process, then its ValueError (if any) raised in every process, so none waits for the others
    forever; returns make()'s result in the main process, and in the others that result when `send`, else None."""
    made, refusal = None, None
    if PartialState().is_main_process:
        try:
            made = make()
        except ValueError as error:
            refusal = str(error)
    sent, refusal = broadcast_object_list([made if send else None, refusal])
    if refusal:
        raise ValueError(refusal)
    return made if PartialState().is_main_process else sent


def main_process_first(load: Callable[[], Loaded]) -> Loaded:
    """load() in the main process first (it writes the tokenised cache), then in the others (they read it)."""
    if PartialState().num_processes == 1:
        return load()
    data = attempted_on_main(load, send=False)
    return data if PartialState().is_main_process else load()


def main_process_only(make: Callable[[], Loaded]) -> Loaded:
    """make() in the main process only, its result sent to the others (a student's vocabulary: every process must
    hold the very same one). A ValueError in the main process is raised in every process."""
    if PartialState().num_processes == 1:
        return make()
    return attempted_on_main(make, send=True)


def load_data(cfg: DistillConfig, tokenizer, verbose: bool) -> TrainingData:
    """The run's corpus through `datasets` (core.distill.training_data); a progress bar when stderr is a terminal."""
    import datasets

    shown = verbose and sys.stderr.isatty()
    if shown:
        datasets.enable_progress_bars()
    else:
        datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()
    train, valid = cfg.corpus_sources()
    return main_process_first(lambda: load_training_data(train, valid, tokenizer, cfg.max_length, cfg.seed,
                                                         cfg.eval_lines, cfg.num_proc,
                                                         "tokenising" if shown else None))


def prepare(cfg: DistillConfig, run_dir: Path, resume: bool, verbose: bool = True, world: int = 1) -> DistillSetup:
    """Load and check everything; raise ValueError (nothing written) when the run cannot start."""
    if not resume and (run_dir / "config.json").is_file():
        raise ValueError(f"'{run_dir}' already holds a run: use --resume to continue it, or another --output-dir.")
    for source in cfg.corpus_sources():  # a missing file or an empty folder is told before any model loads
        if source is not None:
            try:
                local_files(source)
            except ValueError as error:
                raise source.refusal(error) from None
    teacher_loaded = zoo.load(cfg.teacher, attentions=cfg.losses.alpha_att > 0)
    teacher, tokenizer = teacher_loaded.model, teacher_loaded.tokenizer
    if teacher_loaded.notice and verbose:
        print(f"warning: {teacher_loaded.notice}", file=sys.stderr)
    if tokenizer.mask_token_id is None or tokenizer.cls_token_id is None or tokenizer.sep_token_id is None:
        raise ValueError(f"The teacher's tokenizer lacks [MASK], [CLS] or [SEP]; '{cfg.teacher}' is not a "
                         "BERT-style MLM.")
    check_against_teacher(cfg, teacher.config)  # the app made the same checks before queueing the run
    data = load_data(cfg, tokenizer, verbose)
    teacher_layers = num_layers(teacher.config)
    student_layers = cfg.student_layers or max(1, teacher_layers // 2)
    if cfg.reduced_vocab:
        recipe = reduced_recipe(cfg, teacher, tokenizer, data, student_layers, verbose,
                                RunPaths(run_dir).student if resume else None, main_process_only, main_process_first)
    else:
        student = make_student(teacher, StudentSpec(student_layers, cfg.init_layers, cfg.student_type))
        recipe = SameVocabRecipe(teacher, tokenizer, student, cfg.losses,
                                 layer_groups(teacher_layers, student_layers),
                                 data.train, data.valid_lines, cfg.max_length, cfg.mlm_probability, cfg.seed)
    check_batches(recipe.train, cfg, world, verbose)
    return DistillSetup(cfg, recipe, data)


def check_batches(train, cfg: DistillConfig, world: int, verbose: bool) -> None:
    """Refuse a corpus with fewer training samples than one batch of every process; warn of cut samples."""
    needed = cfg.batch_size * world
    rows = train.count_rows(needed) if hasattr(train, "count_rows") else len(train.sequences)  # a stream: that far
    if rows < needed:
        batch = f"{cfg.batch_size:,}" + (f" x {world:,} processes" if world > 1 else "")
        raise ValueError(f"The corpus has {count(rows, 'usable line')}, fewer than one batch ({batch}): lower "
                         "--batch-size or add text.")
    if train.truncated and verbose:
        print(f"warning: {count(train.truncated, 'line')} {'was' if train.truncated == 1 else 'were'} longer than "
              f"--max-length {cfg.max_length:,} tokens and {'was' if train.truncated == 1 else 'were'} cut.",
              file=sys.stderr)

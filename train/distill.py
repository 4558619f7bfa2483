"""Distil a smaller masked LM from a larger one: python -m train.distill --help

Runs on one CPU, one GPU, or many processes under `accelerate launch`. Each process reads its own share of every
step's batches; gradients are averaged by Accelerate (DDP), or, with --fsdp, the student is sharded over the processes
(FSDP2, train.sharding). Only the main process writes the run directory.

A new run keeps its untrained student (init/) and evaluates it before step 1 (the metrics row of step 0), so the
curves start where the student started; at each evaluation it also records the student's top guesses on a few
probe sentences (guesses.jsonl). Until its first step its status says what it is doing (`phase`: loading,
preparing, evaluating; core.runs.store.PHASES), so that a page can tell a run that is starting from one that hangs.
"""
from __future__ import annotations

if __name__ == "__main__":  # read the flags (train.cli) before the imports below load torch: see run_command
    from train.cli import distill_command

    distill_command()

import argparse
import hashlib
import json
import math
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import DistributedType, broadcast_object_list, gather_object, set_seed
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup
from transformers.utils import logging as hf_logging

from core.compare.predict import predict_masks
from core.compare.probes import FillMaskProbe, fill_mask_probes
from core.distill.data import step_generator
from core.formatting import count
from core.models.aligned_head import pad_vocab_product
from core.models.masked_lm import display_word
from core.models.zoo import LoadedModel
from core.paths import runs_root
from core.runs.checkpoints import (
    DiskFullError,
    atomic_write_text,
    checkpoint_to_resume,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from core.runs.guesses import GUESS_TOP_K, Guess, append_guesses, guess_row, has_teacher_guesses
from core.runs.store import (
    RunPaths,
    new_run_id,
    read_json,
    read_metrics,
    remove_stale_temp_files,
    stop_requested,
    stopped_message,
    truncate_metrics,
    write_phase,
    write_status,
)
from core.saving import save_model, save_tokenizer
from train.cli import distill_parser
from train.config import DistillConfig, check_output_dir, from_flags
from train.memory import check_step_memory
from train.setup import DistillSetup, prepare
from train.sharding import full_state, load_full_state, root_gathered, shard, submodule_state
from train.tracking import log_metrics, start_tracking, tracking_dir


class StopRequested:
    """Set by SIGTERM/SIGINT; the loop checks it between steps, saves a checkpoint and ends cleanly. exit_code: what
    the process then returns, 128 + the signal's number as a shell reports a stopped command (130 for Ctrl-C, 143
    for SIGTERM), so a script or scheduler does not take the stopped run for a finished one; 0 when the stop was
    asked through the run's status (the app's Stop before the process could catch a signal)."""

    def __init__(self):
        self.flag = False
        self.exit_code = 0
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._set)

    def _set(self, signum, _frame):
        self.flag = True
        self.exit_code = 128 + signum


def uses_cpu(cfg: DistillConfig) -> bool:
    return cfg.device == "cpu" or not torch.cuda.is_available()


def make_accelerator(cfg: DistillConfig, run_dir: Path | None = None) -> Accelerator:
    """The run's Accelerator: its device and precision, and the trackers of --report-to, which write under
    RUN_DIR/tracking (train.tracking). run_dir may be None only without trackers."""
    cpu = uses_cpu(cfg)
    precision = cfg.mixed_precision
    if precision == "auto":
        precision = "no" if cpu else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    tracking = dict(log_with=cfg.report_to, project_dir=str(tracking_dir(run_dir))) if cfg.report_to else {}
    accelerator = Accelerator(cpu=cpu, mixed_precision=precision, **tracking)
    if sharded(cfg, accelerator):
        check_shardable(accelerator)
    return accelerator


def sharded(cfg: DistillConfig, accelerator: Accelerator) -> bool:
    """Whether the student is sharded (--fsdp, or an Accelerate FSDP config, which takes effect on GPUs only)."""
    return cfg.fsdp or accelerator.distributed_type == DistributedType.FSDP


def check_shardable(accelerator: Accelerator) -> None:
    """Raise ValueError when sharding cannot run: a single process, or fp16 (its loss scaler is not used here)."""
    if accelerator.num_processes < 2:
        raise ValueError("--fsdp shards the student over several processes: start the run with "
                         "`accelerate launch --num_processes N -m train.distill ...` (N of 2 or more).")
    if accelerator.mixed_precision == "fp16":
        raise ValueError("--fsdp trains in bf16 or fp32: this GPU has no bf16, so use --mixed-precision no.")


def place_teacher(teacher: torch.nn.Module, accelerator: Accelerator, pad_vocab: bool = True) -> torch.nn.Module:
    """The teacher on the run's device, frozen; on a GPU with its vocabulary product padded (core.models.aligned_head)
    and, in mixed precision, in 16 bits (it only runs forward, in no_grad, so fp32 weights would only cost memory
    and time)."""
    teacher.requires_grad_(False)
    if accelerator.device.type != "cuda":
        return teacher.to(accelerator.device)
    if pad_vocab:
        pad_vocab_product(teacher)
    if accelerator.mixed_precision in ("bf16", "fp16"):
        return teacher.to(accelerator.device, dtype=torch.bfloat16 if accelerator.mixed_precision == "bf16"
                          else torch.float16)
    return teacher.to(accelerator.device)


def place_student(recipe, accelerator: Accelerator, pad_vocab: bool = True) -> torch.nn.Module:
    """The module the optimizer trains, on the run's device; on a GPU the student's vocabulary product padded."""
    if accelerator.device.type == "cuda" and pad_vocab:
        pad_vocab_product(recipe.student)
    return recipe.trainable().to(accelerator.device)


def optimizer_for(cfg: DistillConfig, params: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    # Biases and LayerNorm weights are not decayed, as in BERT's and DistilBERT's training.
    # On a GPU the fused AdamW kernel updates every parameter in one launch instead of a dozen per tensor.
    decay = [p for n, p in params if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in params if p.requires_grad and p.ndim <= 1]
    fused = all(p.device.type == "cuda" for p in decay + no_decay) or None
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.adam_eps, fused=fused)


def write_run_start(run_dir: Path, cfg: DistillConfig, setup: DistillSetup) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (RunPaths(run_dir).config).write_text(json.dumps(cfg.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
    setup.recipe.student.config.save_pretrained(RunPaths(run_dir).student)
    save_tokenizer(setup.recipe.student_tokenizer, RunPaths(run_dir).student)
    save_model(setup.recipe.student, RunPaths(run_dir).init)  # the student before training: run:<id>@init
    save_tokenizer(setup.recipe.student_tokenizer, RunPaths(run_dir).init)
    (RunPaths(run_dir).metrics).write_text("")
    RunPaths(run_dir).guesses.write_text("")
    if "created" not in read_json(RunPaths(run_dir).status, {}):  # the app may have created the status already
        write_status(run_dir, created=time.time())


def holds(batches, count: int, keep_from: int) -> bool:
    """Whether an epoch's batches number at least `count`; a streamed epoch (which has a `holds` and no length) is
    read that far, keeping the batches from `keep_from` on."""
    return batches.holds(count, keep_from) if hasattr(batches, "holds") else len(batches) >= count


@dataclass
class DataCursor:
    """Where a run is in its data. position counts the batches all processes together have taken this epoch, so a
    run resumed with another number of processes continues from the same place; rank r takes batch position + r."""
    batches_for: Callable[[int], Sequence[list[int]]]  # epoch -> that epoch's batches of row indices
    rank: int = 0
    world: int = 1
    epoch: int = 0
    position: int = 0
    _batches: list[list[int]] | None = field(default=None, repr=False)

    def next_rows(self) -> list[int]:
        if self._batches is None:
            self._batches = self.batches_for(self.epoch)
        if not holds(self._batches, self.position + self.world, self.position):  # too few for every process
            self.epoch, self.position, self._batches = self.epoch + 1, 0, self.batches_for(self.epoch + 1)
        rows = self._batches[self.position + self.rank]
        self.position += self.world
        return rows

    def state(self) -> dict:
        # "position" per process is kept beside the global one for readers of older checkpoints
        return {"epoch": self.epoch, "global_position": self.position, "position": self.position // self.world}

    def restore(self, state: dict) -> None:
        self.epoch = state["epoch"]
        self.position = state.get("global_position", state["position"] * state.get("world_size", 1))
        self._batches = None


@dataclass
class LogWindow:
    """Sums of the steps since the last metrics row; saved in checkpoints, so a resumed run logs the same rows."""
    sums: dict = field(default_factory=dict)
    steps: int = 0
    tokens: int = 0
    seconds_before: float = 0.0  # time the window ran before a resume
    started: float = field(default_factory=time.perf_counter)

    def add(self, parts: dict, tokens: int) -> None:
        for name, value in parts.items():
            self.sums[name] = self.sums.get(name, 0.0) + value
        self.steps, self.tokens = self.steps + 1, self.tokens + tokens

    def seconds(self) -> float:
        return self.seconds_before + time.perf_counter() - self.started

    def state(self) -> dict:
        return {"sums": dict(self.sums), "steps": self.steps, "tokens": self.tokens, "seconds": self.seconds()}

    @classmethod
    def restore(cls, state: dict | None) -> LogWindow:
        if not state:
            return cls()
        return cls(dict(state["sums"]), state["steps"], state["tokens"], state["seconds"])


@dataclass
class Clock:
    """Seconds the run has trained, over all its sessions (time between a stop and its resume not counted)."""
    before: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def elapsed(self) -> float:
        return self.before + time.perf_counter() - self.started


PROBE_TOPICS = 8  # probe sentences whose guesses a run records


def guess_probes(probes: tuple[FillMaskProbe, ...] | None = None) -> list[FillMaskProbe]:
    """The sentences a run watches: the first probe of each of the first PROBE_TOPICS topics of fill_mask.tsv, in the
    file's order (a fixed rule, so every run shows the same sentences)."""
    chosen, topics = [], set()
    for probe in fill_mask_probes() if probes is None else probes:
        if probe.topic not in topics and len(topics) < PROBE_TOPICS:
            topics.add(probe.topic)
            chosen.append(probe)
    return chosen


@torch.no_grad()
def top_guesses(model, tokenizer, sentences: list[str], top_k: int = GUESS_TOP_K) -> list[Guess]:
    """The model's top-k words at the one [MASK] of each sentence, read in eval mode (no dropout, so no random draw
    that would change the run) and given back in the mode it had."""
    was_training = model.training
    model.eval()
    try:
        results = predict_masks(LoadedModel("model", model, tokenizer, "run"), sentences, top_k,
                                keep_distribution=False)
    finally:
        model.train(was_training)
    return [Guess(tuple(display_word(t) for t in r.masks[0].tokens), tuple(r.masks[0].probs)) for r in results]


@dataclass
class GuessRecorder:
    """Writes the probe sentences' guesses at each evaluation; the teacher's are read once, when first needed."""
    probes: list[FillMaskProbe]
    teacher_guesses: list[Guess] | None = None

    @classmethod
    def for_run(cls, evaluating: bool) -> GuessRecorder:
        if not evaluating:
            return cls([])
        try:
            return cls(guess_probes())
        except OSError as error:  # the run goes on without them
            print(f"warning: no probe guesses are recorded: the probe file cannot be read ({error}).", file=sys.stderr)
            return cls([])

    def record(self, run_dir: Path, recipe, student, teacher, step: int, write: bool = True) -> None:
        """Append the student's guesses at `step` (with the sentences and the teacher's, when the file lacks them).
        `student`: the Hugging Face student. A probe a model cannot read turns the recording off with a warning.
        write False: only run the student's forward (a sharded student's forward needs every process)."""
        if not self.probes:
            return
        sentences = [p.sentence for p in self.probes]
        try:
            student_guesses = top_guesses(student, recipe.student_tokenizer, sentences)
            if not write:
                return
            with_teacher = not has_teacher_guesses(run_dir)
            if with_teacher and self.teacher_guesses is None:
                self.teacher_guesses = top_guesses(teacher, recipe.tokenizer, sentences)
        except ValueError as error:
            print(f"warning: probe guesses are no longer recorded: {error}", file=sys.stderr)
            self.probes = []
            return
        append_guesses(run_dir, guess_row(step, student_guesses, [(p.sentence, p.expected) for p in self.probes]
                                          if with_teacher else None, self.teacher_guesses if with_teacher else None))


def train(cfg: DistillConfig, run_dir: Path, setup: DistillSetup, accelerator: Accelerator, resume: bool) -> int:
    recipe, is_main, rank, world = setup.recipe, accelerator.is_main_process, accelerator.process_index, \
        accelerator.num_processes
    stop = StopRequested()
    if is_main and stop_requested(run_dir, os.getpid()):
        stop.flag = True  # a Stop recorded while this process was starting, before it could catch SIGTERM
    student, teacher = place_student(recipe, accelerator), place_teacher(recipe.teacher, accelerator)
    if cfg.gradient_checkpointing:
        recipe.student.gradient_checkpointing_enable()
    is_sharded = sharded(cfg, accelerator)
    if is_sharded:  # before the optimizer: the parameters become DTensors holding this process's slice
        shard(student, accelerator.device)
    optimizer = optimizer_for(cfg, list(student.named_parameters()))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * cfg.max_steps), cfg.max_steps)
    cursor = DataCursor(setup.batches_for, rank, world)
    step, window, clock = restore(cfg, run_dir, resume, (student, optimizer, scheduler), cursor, accelerator,
                                  is_sharded)
    start_tracking(accelerator, cfg.to_dict(), run_dir, step, resume)
    if not is_sharded:  # DDP; a sharded student averages its own gradients (reduce-scatter)
        student, optimizer = accelerator.prepare(student, optimizer)
    student.train()
    # compiled views of the same modules: the optimizer, DDP and checkpoints keep working on the modules themselves
    models = (torch.compile(student), torch.compile(teacher)) if cfg.compile else (student, teacher)
    if cfg.compile:
        recipe.logits_where_read = False  # compiled graphs run the whole head: they would not see the per-step hook
    # a sharded student's forward is a collective: every process evaluates, the main one writes
    evaluating = is_main or is_sharded
    guesses = GuessRecorder.for_run(evaluating)
    if step == 0 and not agreed_flags(accelerator, False, stop.flag)[1]:
        evaluate_start(run_dir, recipe, (student, teacher), accelerator, clock, guesses, evaluating)
    if agreed_flags(accelerator, False, stop.flag)[1]:  # asked while starting: end now, not after a step and a save
        stopped_before_steps(run_dir, step, is_main)
        return stop.exit_code
    last_saved = step
    window.started = time.perf_counter()  # the first row's speed is the steps', not the setup's or step 0's evaluation
    if is_main:  # from here the progress bar and the metrics say what the run does
        write_phase(run_dir, None)
    progress = tqdm(total=cfg.max_steps, initial=step, disable=not is_main, desc="distilling", unit="step",
                    mininterval=0.5 if sys.stderr.isatty() else 5.0)
    trace = []
    while step < cfg.max_steps:
        parts, tokens = forward_backward(cfg, recipe, (student, *models), cursor, accelerator, step, trace)
        bad_loss, stop_asked = agreed_flags(accelerator, not math.isfinite(parts["loss"]), stop.flag)
        if bad_loss:
            return fail_on_bad_loss(run_dir, parts["loss"], step, last_saved, is_main)
        if is_sharded:  # the norm over every process's slices (DTensor gradients)
            torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip)
        else:
            accelerator.clip_grad_norm_(student.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)  # flush the gradients as soon as we can
        step += 1
        progress.update(1)
        window.add(parts, tokens)
        if step % cfg.log_every == 0 or step == cfg.max_steps:
            record = log_row(cfg, run_dir, recipe, (student, teacher), accelerator, step, scheduler.get_last_lr()[0],
                             cursor.epoch, window, clock, guesses, evaluating)
            progress.set_postfix(loss=f"{record['loss']:.3f}")
            window = LogWindow()
        if stop_asked or step % cfg.save_every == 0 or step == cfg.max_steps:
            save(run_dir, cfg, accelerator, (student, optimizer, scheduler), step, cursor, window, clock, is_sharded)
            last_saved = step
        if stop_asked:
            progress.close()
            if is_main:
                write_status(run_dir, state="stopped", step=step,
                             message=f"Stopped at step {step:,}; checkpoint saved, resume continues from here.")
                print(f"stopped at step {step:,} of {cfg.max_steps:,}; checkpoint saved. Resume with: python -m "
                      f"train.distill --resume {shlex.quote(str(run_dir))}", file=sys.stderr)
            return stop.exit_code
    progress.close()
    finish(run_dir, recipe, student, accelerator, step, trace if cfg.trace else None, is_sharded)
    return 0


def restore(cfg: DistillConfig, run_dir: Path, resume: bool, trained: tuple, cursor: DataCursor,
            accelerator: Accelerator, is_sharded: bool = False) -> tuple[int, LogWindow, Clock]:
    """Load the newest checkpoint into (student, optimizer, scheduler) and the cursor; tell the status what happened.

    Returns (step, log window, clock) to continue from: (0, empty, zero) when there is nothing to resume.
    """
    is_main, rank, world = accelerator.is_main_process, accelerator.process_index, accelerator.num_processes
    found = checkpoint_to_resume(run_dir, set_aside=is_main) if resume else None
    path = found.path if found else None
    step, window, clock = 0, LogWindow(), Clock()
    if path is not None:
        state = found.state
        student, optimizer, scheduler = trained
        if is_sharded:  # every process read the whole checkpoint and keeps its slice
            load_full_state(student, optimizer, state["model"], state["optimizer"])
        else:
            student.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step = state["step"]
        cursor.restore(state)
        window, clock = LogWindow.restore(state.get("log_window")), Clock(state.get("elapsed_s", 0.0))
        saved_world = state.get("world_size", len(state["rng"]))
        if saved_world == world:
            set_rng_state(state["rng"][rank])
        else:  # batches continue from the same place; dropout draws cannot, being kept per process
            set_seed(cfg.seed * 7919 + step * 31 + rank)
            if is_main:
                print(f"warning: this run was saved by {saved_world} process(es) and resumes with {world}; it "
                      f"continues from the same place in its data, with {world} batch(es) a step instead of "
                      f"{saved_world}, so it will not match an uninterrupted run exactly.", file=sys.stderr)
        message = f"Resumed from step {step:,}."
    elif resume:
        message = "No checkpoint was saved before the run stopped; starting again from step 0."
        if is_main:
            print(f"warning: {message}", file=sys.stderr)
    else:
        message = "Started."
    if found is not None and found.note:  # newer checkpoints that could not be read, each named
        message = f"{message} {found.note}"
        if is_main:
            print(f"warning: {found.note}", file=sys.stderr)
    if is_main:
        truncate_metrics(run_dir, step)
        truncate_metrics(run_dir, step, RunPaths(run_dir).guesses.name)
        if step < cfg.max_steps and RunPaths(run_dir).final.exists():
            # a finished run resumed for more steps: its final/ is no longer the current student, and every reader
            # takes final/ first (core.runs.model_source); the checkpoint of that step, just restored, stays
            shutil.rmtree(RunPaths(run_dir).final)
        write_status(run_dir, state="running", pid=os.getpid(), step=step, max_steps=cfg.max_steps,
                     message=message, phase="preparing")
    return step, window, clock


def forward_backward(cfg: DistillConfig, recipe, models: tuple, cursor: DataCursor, accelerator: Accelerator,
                     step: int, trace: list) -> tuple[dict[str, float], int]:
    """One optimizer step's micro-batches through the losses and backward. Returns (mean loss parts, tokens).

    models: (the prepared student, the student to run, the teacher to run); the last two are compiled with
    --compile."""
    student, run_student, teacher = models
    parts, tokens = {}, 0
    for micro in range(cfg.grad_accum):
        rows = cursor.next_rows()
        if cfg.trace:
            trace.append(rows)
        batch = recipe.build_batch(rows, step_generator(cfg.seed, step, accelerator.process_index, micro))
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        tokens += int(batch["attention_mask"].sum())
        last = micro == cfg.grad_accum - 1
        with nullcontext() if last else no_sync(student, accelerator):  # gradients sync once, on the last
            with accelerator.autocast():
                losses = recipe.losses(run_student, teacher, batch)
            accelerator.backward(losses["loss"] / cfg.grad_accum)
        for name, value in losses.items():
            parts[name] = parts.get(name, 0.0) + value.item() / cfg.grad_accum
    return parts, tokens


@contextmanager
def no_sync(student: torch.nn.Module, accelerator: Accelerator):
    """Accumulate this micro-batch's gradients locally, without averaging them over the processes."""
    if not hasattr(student, "set_requires_gradient_sync"):  # DDP, or a single process
        with accelerator.no_sync(student):
            yield
        return
    student.set_requires_gradient_sync(False)  # a sharded (FSDP2) student
    try:
        yield
    finally:
        student.set_requires_gradient_sync(True)


def stopped_before_steps(run_dir: Path, step: int, is_main: bool) -> None:
    """Record a run stopped before this process trained a step: its checkpoint, if any, is already of `step`, so
    nothing is saved (a fresh run's stays without one, and resume starts it from step 0)."""
    if is_main:
        write_status(run_dir, state="stopped", step=step, phase=None, message=stopped_message(run_dir, asked=True))
        print(f"stopped before step {step + 1:,}; nothing to save. Resume with: python -m train.distill --resume "
              f"{shlex.quote(str(run_dir))}", file=sys.stderr)


def agreed_flags(accelerator: Accelerator, bad_loss: bool, stop_asked: bool) -> tuple[bool, bool]:
    """Whether any process saw a non-finite loss, and whether any was asked to stop: all processes act alike."""
    flags = torch.tensor([float(bad_loss), float(stop_asked)], device=accelerator.device)
    if accelerator.num_processes > 1:
        flags = accelerator.reduce(flags, reduction="sum")
    return bool(flags[0] > 0), bool(flags[1] > 0)


def fail_on_bad_loss(run_dir: Path, loss: float, step: int, last_saved: int, is_main: bool) -> int:
    message = (f"The loss became {loss} at step {step + 1:,}; the run stopped and kept its last good checkpoint "
               f"(step {last_saved:,}). Lower --lr or check the data, then resume.")
    if is_main:
        write_status(run_dir, state="failed", message=message, step=step)
        print(f"error: {message}", file=sys.stderr)
    return 3


def evaluate_start(run_dir: Path, recipe, models: tuple, accelerator: Accelerator, clock: Clock,
                   guesses: GuessRecorder, evaluating: bool) -> None:
    """The metrics row of step 0: the untrained student's held-out figures (eval_*, no loss), and its guesses.

    Written once: a run resumed before its first checkpoint keeps the row it already has. Every process calls this;
    the evaluating ones (the main process, or all of them for a sharded student) evaluate, the main one writes."""
    student, teacher = models
    is_main = accelerator.is_main_process
    written = broadcast_object_list([is_main and any(r.get("step") == 0 for r in read_metrics(run_dir))])[0]
    if is_main and not written:
        write_phase(run_dir, "evaluating")
    if evaluating and not written:
        trained = recipe.hf_student(accelerator.unwrap_model(student))
        with root_gathered(accelerator.unwrap_model(student)):
            record = {"step": 0, "epoch": 0, "elapsed_s": clock.elapsed(),
                      **{f"eval_{k}": v for k, v in recipe.evaluate(trained, teacher).items()}}
            guesses.record(run_dir, recipe, trained, teacher, 0, write=is_main)
        if is_main:
            append_metrics(run_dir, record, accelerator)
    accelerator.wait_for_everyone()


def append_metrics(run_dir: Path, record: dict, accelerator: Accelerator) -> None:
    """One row to metrics.jsonl and its numbers to the run's trackers (main process only)."""
    with open(RunPaths(run_dir).metrics, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
    log_metrics(accelerator, record)


def log_row(cfg: DistillConfig, run_dir: Path, recipe, models: tuple, accelerator: Accelerator, step: int, lr: float,
            epoch: int, window: LogWindow, clock: Clock, guesses: GuessRecorder | None = None,
            evaluating: bool | None = None) -> dict:
    """Append one metrics row (means over the window's steps and processes, and held-out figures and probe guesses
    when due)."""
    (student, teacher), sums, tokens = models, window.sums, window.tokens
    if accelerator.num_processes > 1:  # the mean loss over processes and the tokens of all of them
        names = sorted(sums)
        values = accelerator.reduce(torch.tensor([sums[n] for n in names], device=accelerator.device), "mean")
        sums = dict(zip(names, values.tolist()))
        tokens = accelerator.reduce(torch.tensor(tokens, device=accelerator.device), "sum").item()
    seconds = max(window.seconds(), 1e-9)
    record = {"step": step, **{k: v / window.steps for k, v in sums.items()}, "lr": lr,
              "tokens_per_s": tokens / seconds, "steps_per_s": window.steps / seconds, "epoch": epoch,
              "elapsed_s": clock.elapsed()}
    if step % cfg.eval_every == 0 or step == cfg.max_steps:
        if accelerator.is_main_process if evaluating is None else evaluating:
            trained = recipe.hf_student(accelerator.unwrap_model(student))
            with root_gathered(accelerator.unwrap_model(student)):
                record.update({f"eval_{k}": v for k, v in recipe.evaluate(trained, teacher).items()})
                if guesses is not None:
                    guesses.record(run_dir, recipe, trained, teacher, step, write=accelerator.is_main_process)
        accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        append_metrics(run_dir, record, accelerator)
        write_status(run_dir, step=step)
    return record


def save(run_dir: Path, cfg: DistillConfig, accelerator: Accelerator, trained: tuple, step: int, cursor: DataCursor,
         window: LogWindow, clock: Clock, is_sharded: bool = False) -> None:
    """A checkpoint holding model, optimizer, scheduler, data place, log window, clock, config and every RNG; a
    sharded student's whole weights and optimizer state are gathered to the main process first."""
    student, optimizer, scheduler = trained
    rngs = gather_object([rng_state()])  # every process's RNG, so dropout continues identically on resume
    if is_sharded:
        model_state, optimizer_state = full_state(student, optimizer)
    else:
        model_state, optimizer_state = accelerator.unwrap_model(student).state_dict(), optimizer.state_dict()
    state = {"model": model_state, "optimizer": optimizer_state,
             "scheduler": scheduler.state_dict(), "step": step, **cursor.state(), "rng": rngs,
             "log_window": window.state(), "elapsed_s": clock.elapsed(), "config": cfg.to_dict(),
             "world_size": accelerator.num_processes}
    if accelerator.is_main_process:
        save_checkpoint(run_dir, step, state, cfg.keep_checkpoints)
    accelerator.wait_for_everyone()


def finish(run_dir: Path, recipe, student, accelerator: Accelerator, step: int, trace: list | None,
           is_sharded: bool = False) -> None:
    if trace is not None:
        _write_trace(run_dir, accelerator, student, trace, is_sharded)
    trainable = accelerator.unwrap_model(student)
    hf_student = recipe.hf_student(trainable)
    # a sharded student's whole weights, gathered to the main process (a collective)
    whole = submodule_state(full_state(trainable)[0], trainable, hf_student) if is_sharded else None
    if accelerator.is_main_process:
        final = RunPaths(run_dir).final
        save_model(hf_student, final, state_dict=whole)
        save_tokenizer(recipe.student_tokenizer, final)
        write_status(run_dir, state="finished", step=step, message=f"Finished {count(step, 'step')}.")
        print(f"finished {count(step, 'step')}; the student is in {final}", file=sys.stderr)
    accelerator.wait_for_everyone()


def _write_trace(run_dir: Path, accelerator, student, trace: list, is_sharded: bool = False) -> None:
    """Each process's sample indices and a checksum of its weights: evidence for multi-process tests. A sharded
    student's checksum is of the whole weights, gathered on every process."""
    digest = hashlib.sha256()
    module = accelerator.unwrap_model(student)
    weights = full_state(module, everywhere=True)[0] if is_sharded else module.state_dict()
    for name, tensor in sorted(weights.items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    folder = RunPaths(run_dir).trace
    folder.mkdir(exist_ok=True)
    (folder / f"rank{accelerator.process_index}.json").write_text(
        json.dumps({"batches": trace, "weights_sha256": digest.hexdigest()}))


def main(argv: list[str] | None = None) -> int:
    """The command line in this process: argparse exits 2 on a malformed flag, then run() returns the exit code."""
    return run(distill_parser().parse_args(argv))


def run(flags: argparse.Namespace) -> int:
    """Check the parsed flags (exit code 2 and one line for what a person can fix), then distil."""
    hf_logging.disable_progress_bar()  # our own bar shows the run; loading bars would bury one-line errors
    try:
        cfg, resume = from_flags(flags)
        PartialState(cpu=uses_cpu(cfg))  # the processes meet before the Accelerator, whose trackers need the run_dir
        run_id = broadcast_object_list([new_run_id()])[0]  # every process must agree on one directory
        run_dir = Path(cfg.output_dir) if cfg.output_dir else runs_root() / run_id
        check_output_dir(run_dir)
        accelerator = make_accelerator(cfg, run_dir)
        if accelerator.is_main_process:
            remove_stale_temp_files(run_dir)  # what a process killed while writing left behind
            write_phase(run_dir, "loading")
        set_seed(cfg.seed)
        setup = prepare(cfg, run_dir, resume, verbose=accelerator.is_main_process, world=accelerator.num_processes)
        check_memory(cfg, setup, accelerator, resume)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if accelerator.is_main_process:
        if not resume or not (RunPaths(run_dir).config).is_file():
            write_run_start(run_dir, cfg, setup)
        else:  # a resume may extend the run (--max-steps); the directory keeps describing it truly
            atomic_write_text(RunPaths(run_dir).config, json.dumps(cfg.to_dict(), indent=1, ensure_ascii=False))
        print(f"run directory: {run_dir}", file=sys.stderr)
        write_phase(run_dir, "preparing")
    accelerator.wait_for_everyone()
    try:
        return train(cfg, run_dir, setup, accelerator, resume)
    except DiskFullError as error:  # the sentence names the checkpoint the run keeps
        _fail(run_dir, accelerator, str(error))
        return 1
    except torch.OutOfMemoryError:
        message = (f"Out of memory with batch size {cfg.batch_size:,} and max length {cfg.max_length:,}: "
                   "lower --batch-size or --max-length (or raise --grad-accum), then resume.")
        _fail(run_dir, accelerator, message)
        return 1
    except Exception as error:  # any other failure is recorded for the app, then shown in full
        _fail(run_dir, accelerator, f"{type(error).__name__}: {error}")
        raise
    finally:
        accelerator.end_training()  # closes the trackers


def check_memory(cfg: DistillConfig, setup: DistillSetup, accelerator: Accelerator, resume: bool) -> None:
    """Print the estimated peak memory of a step (train.memory), or raise ValueError when it would not fit on any
    process's device: every process refuses alike, so none waits for the others forever."""
    try:
        shards = accelerator.num_processes if sharded(cfg, accelerator) else 1
        line, refusal = check_step_memory(cfg, setup.recipe, accelerator.device, accelerator.mixed_precision,
                                          resume, shards), None
    except ValueError as error:
        line, refusal = None, str(error)
    refusal = next((r for r in gather_object([refusal]) if r), None)
    if refusal:
        raise ValueError(refusal)
    if accelerator.is_main_process:
        print(line, file=sys.stderr)


def _fail(run_dir: Path, accelerator, message: str) -> None:
    if accelerator.is_main_process:
        write_status(run_dir, state="failed", message=message, phase=None)
    print(f"error: {message}", file=sys.stderr)


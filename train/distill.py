"""Distil a smaller masked LM from a larger one: python -m train.distill --help

Runs on one CPU, one GPU, or many processes under `accelerate launch`. Each process reads its own share of every
step's batches; gradients are averaged by Accelerate (DDP). Only the main process writes the run directory.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import broadcast_object_list, gather_object, set_seed
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup
from transformers.utils import logging as hf_logging

from core.distill.data import mlm_batch, step_generator
from core.paths import runs_root
from core.runs.checkpoints import (
    atomic_write_text,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from core.runs.store import new_run_id, read_json, truncate_metrics, write_status
from train.cli import parse_args
from train.config import DistillConfig
from train.setup import DistillSetup, prepare


class StopRequested:
    """Set by SIGTERM/SIGINT; the loop checks it between steps, saves a checkpoint and ends cleanly."""

    def __init__(self):
        self.flag = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._set)

    def _set(self, *_):
        self.flag = True


def make_accelerator(cfg: DistillConfig) -> Accelerator:
    cpu = cfg.device == "cpu" or not torch.cuda.is_available()
    precision = cfg.mixed_precision
    if precision == "auto":
        precision = "no" if cpu else ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    return Accelerator(cpu=cpu, mixed_precision=precision)


def optimizer_for(cfg: DistillConfig, params: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    # Biases and LayerNorm weights are not decayed, as in BERT's and DistilBERT's training.
    decay = [p for n, p in params if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in params if p.requires_grad and p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.adam_eps)


def write_run_start(run_dir: Path, cfg: DistillConfig, setup: DistillSetup) -> None:
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=1, ensure_ascii=False), encoding="utf-8")
    setup.student.config.save_pretrained(run_dir / "student")
    setup.student_tokenizer.save_pretrained(run_dir / "student")
    (run_dir / "metrics.jsonl").write_text("")
    if "created" not in read_json(run_dir / "status.json", {}):  # the app may have created the status already
        write_status(run_dir, created=time.time())


def train(cfg: DistillConfig, run_dir: Path, setup: DistillSetup, accelerator: Accelerator, resume: bool) -> int:
    is_main, rank, world = accelerator.is_main_process, accelerator.process_index, accelerator.num_processes
    stop = StopRequested()
    student, teacher = setup.trainable(), setup.teacher.to(accelerator.device)
    optimizer = optimizer_for(cfg, list(student.named_parameters()))
    scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup * cfg.max_steps), cfg.max_steps)
    step, epoch, position, last_checkpoint_step = 0, 0, 0, 0

    checkpoint_path = latest_checkpoint(run_dir) if resume else None
    if checkpoint_path is not None:
        state = load_checkpoint(checkpoint_path)
        student.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, epoch, position = state["step"], state["epoch"], state["position"]
        last_checkpoint_step = step
        if len(state["rng"]) == world:
            set_rng_state(state["rng"][rank])
    if is_main:
        truncate_metrics(run_dir, step)
        write_status(run_dir, state="running", pid=os.getpid(), step=step, max_steps=cfg.max_steps,
                     message=f"Resumed from step {step}." if resume else "Started.")
    student, optimizer = accelerator.prepare(student, optimizer)
    student.train()

    batches = setup.batches_for(epoch)
    per_rank = len(batches) // world

    def next_batch_indices() -> list[int]:
        nonlocal epoch, position, batches
        if position >= per_rank:
            epoch, position = epoch + 1, 0
            batches = setup.batches_for(epoch)
        indices = batches[position * world + rank]
        position += 1
        return indices

    def checkpoint_state() -> dict:
        rngs = gather_object([rng_state()])  # every process's RNG, so dropout continues identically on resume
        return {"model": accelerator.unwrap_model(student).state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(), "step": step,
                "epoch": epoch, "position": position, "rng": rngs, "config": cfg.to_dict(), "world_size": world}

    def save(at_step: int) -> None:
        nonlocal last_checkpoint_step
        state = checkpoint_state()
        if is_main:
            save_checkpoint(run_dir, at_step, state, cfg.keep_checkpoints)
        accelerator.wait_for_everyone()
        last_checkpoint_step = at_step

    progress = tqdm(total=cfg.max_steps, initial=step, disable=not is_main, desc="distilling", unit="step",
                    mininterval=0.5 if sys.stderr.isatty() else 5.0)
    sums, tokens, window_start, started = {}, 0, time.perf_counter(), time.perf_counter()
    trace = []
    while step < cfg.max_steps:
        step_parts = {}
        for micro in range(cfg.grad_accum):
            indices = next_batch_indices()
            if cfg.trace:
                trace.append(indices)
            batch = setup.extend_batch(mlm_batch([setup.train.sequences[i] for i in indices], setup.tokenizer,
                                                 step_generator(cfg.seed, step, rank, micro), cfg.mlm_probability))
            batch = {k: v.to(accelerator.device) for k, v in batch.items()}
            tokens += int(batch["attention_mask"].sum())
            sync = accelerator.no_sync(student) if micro < cfg.grad_accum - 1 else nullcontext()
            with sync:
                with accelerator.autocast():
                    parts = setup.losses(student, teacher, batch)
                accelerator.backward(parts["loss"] / cfg.grad_accum)
            for name, value in parts.items():
                step_parts[name] = step_parts.get(name, 0.0) + value.item() / cfg.grad_accum

        flags = torch.tensor([0.0 if math.isfinite(step_parts["loss"]) else 1.0, float(stop.flag)],
                             device=accelerator.device)
        if world > 1:
            flags = accelerator.reduce(flags, reduction="sum")
        if flags[0] > 0:
            message = (f"The loss became {step_parts['loss']} at step {step + 1}; the run stopped and kept its last "
                       f"good checkpoint (step {last_checkpoint_step}). Lower --lr or check the data, then resume.")
            if is_main:
                write_status(run_dir, state="failed", message=message, step=step)
                print(f"error: {message}", file=sys.stderr)
            return 3
        accelerator.clip_grad_norm_(student.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        progress.update(1)
        for name, value in step_parts.items():
            sums[name] = sums.get(name, 0.0) + value

        last = step == cfg.max_steps
        if step % cfg.log_every == 0 or last:
            count = cfg.log_every if step % cfg.log_every == 0 else step % cfg.log_every
            total_tokens = tokens
            if world > 1:  # report the mean loss over processes and the tokens of all of them
                names = sorted(sums)
                values = accelerator.reduce(torch.tensor([sums[n] for n in names], device=accelerator.device), "mean")
                sums = dict(zip(names, values.tolist()))
                total_tokens = accelerator.reduce(torch.tensor(tokens, device=accelerator.device), "sum").item()
            elapsed = time.perf_counter() - window_start
            record = {"step": step, **{k: v / count for k, v in sums.items()},
                      "lr": scheduler.get_last_lr()[0], "tokens_per_s": total_tokens / max(elapsed, 1e-9),
                      "steps_per_s": count / max(elapsed, 1e-9),
                      "epoch": epoch, "elapsed_s": time.perf_counter() - started}
            if step % cfg.eval_every == 0 or last:
                if is_main:
                    trained = setup.hf_student(accelerator.unwrap_model(student))
                    record.update({f"eval_{k}": v for k, v in setup.evaluate(trained, teacher).items()})
                accelerator.wait_for_everyone()
            if is_main:
                with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
                write_status(run_dir, step=step)
                progress.set_postfix(loss=f"{record['loss']:.3f}")
            sums, tokens, window_start = {}, 0, time.perf_counter()
        if flags[1] > 0:
            save(step)
            if is_main:
                write_status(run_dir, state="stopped", step=step,
                             message=f"Stopped at step {step}; checkpoint saved, resume continues from here.")
            progress.close()
            return 0
        if step % cfg.save_every == 0 or last:
            save(step)

    progress.close()
    if cfg.trace:
        _write_trace(run_dir, accelerator, student, trace)
    if is_main:
        final = run_dir / "final"
        setup.hf_student(accelerator.unwrap_model(student)).save_pretrained(final)
        setup.student_tokenizer.save_pretrained(final)
        write_status(run_dir, state="finished", step=step, message=f"Finished {step} steps.")
    accelerator.wait_for_everyone()
    return 0


def _write_trace(run_dir: Path, accelerator, student, trace: list) -> None:
    """Each process's sample indices and a checksum of its weights: evidence for multi-process tests."""
    digest = hashlib.sha256()
    for name, tensor in sorted(accelerator.unwrap_model(student).state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    folder = run_dir / "trace"
    folder.mkdir(exist_ok=True)
    (folder / f"rank{accelerator.process_index}.json").write_text(
        json.dumps({"batches": trace, "weights_sha256": digest.hexdigest()}))


def main(argv: list[str] | None = None) -> int:
    hf_logging.disable_progress_bar()  # our own bar shows the run; loading bars would bury one-line errors
    try:
        cfg, resume = parse_args(argv)
        accelerator = make_accelerator(cfg)
        set_seed(cfg.seed)
        run_id = broadcast_object_list([new_run_id()])[0]  # every process must agree on one directory
        run_dir = Path(cfg.output_dir) if cfg.output_dir else runs_root() / run_id
        setup = prepare(cfg, run_dir, resume, verbose=accelerator.is_main_process, world=accelerator.num_processes)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if accelerator.is_main_process:
        if not resume or not (run_dir / "config.json").is_file():
            write_run_start(run_dir, cfg, setup)
        else:  # a resume may extend the run (--max-steps); the directory keeps describing it truly
            atomic_write_text(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=1, ensure_ascii=False))
        print(f"run directory: {run_dir}", file=sys.stderr)
    accelerator.wait_for_everyone()
    try:
        return train(cfg, run_dir, setup, accelerator, resume)
    except torch.OutOfMemoryError:
        message = (f"Out of memory with batch size {cfg.batch_size} and max length {cfg.max_length}: "
                   "lower --batch-size or --max-length (or raise --grad-accum), then resume.")
        _fail(run_dir, accelerator, message)
        return 1
    except Exception as error:  # any other failure is recorded for the app, then shown in full
        _fail(run_dir, accelerator, f"{type(error).__name__}: {error}")
        raise


def _fail(run_dir: Path, accelerator, message: str) -> None:
    if accelerator.is_main_process:
        write_status(run_dir, state="failed", message=message)
    print(f"error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())

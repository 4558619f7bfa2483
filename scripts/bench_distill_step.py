"""How fast is one distillation step, how close to the hardware's limit (MFU), and how much memory does it take?

python -m scripts.bench_distill_step [--pair tiny|real|both] [--device cpu|cuda] [--steps 20] [--compile]
                                    [--kl-masked-only] [--all-logits]

tiny: the bundled teacher and its half-depth student; real: RuBERT-base's architecture with random weights and a
6-layer DistilBERT student initialised from teacher layers 0, 2, 4, 7, 9, 11 (DistilRuBERT-base's recipe), batch 32 x
256 by default, only where a GPU is unless asked for. The step is the training loop's own: the same Accelerator
(bf16 autocast on a GPU, the teacher in 16 bits), recipe.losses, backward, clipping, AdamW and the scheduler.

Printed per pair: median step time, tokens per second, achieved TFLOP/s and MFU (model FLOPs of the teacher's forward
and the student's forward and backward, MLM heads included, over this machine's measured bf16 or fp32 matmul peak:
core.bench.plan.distill_step_flops), peak memory, and each phase's share (data = batch building and masking;
forward = teacher and student forward and the losses; backward; optimizer = clipping, AdamW, scheduler).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from functools import cache

import torch
from transformers import get_linear_schedule_with_warmup

from core.bench import machine
from core.bench.engine import PeakMemory
from core.bench.plan import config_shape, distill_step_flops
from core.distill.data import TokenizedCorpus, length_grouped_batches, step_generator, tokenize_lines
from core.distill.losses import LossWeights, logit_positions
from core.distill.recipes import SameVocabRecipe
from core.formatting import OneLineParser
from core.models import zoo
from core.models.student import StudentSpec, layer_groups, make_student, num_layers
from core.paths import ASSETS
from train.config import DistillConfig
from train.distill import make_accelerator, optimizer_for, place_student, place_teacher
from train.setup import DistillSetup

PAIRS = {  # name -> (teacher, student layers, init layers, default batch size, default max length)
    "tiny": ("bundled-teacher", None, None, 32, 128),
    "real": ("arch:rubert-base-cased-conversational", 6, [0, 2, 4, 7, 9, 11], 32, 256),
    "arch-tiny": ("arch:distilrubert-tiny-cased-conversational-v1", 2, None, 4, 32),  # a check of the code, on CPU
}


def random_corpus(vocab_size: int, rows: int, length: int, seed: int = 0) -> TokenizedCorpus:
    """Rows of random ids of the real vocabulary at full length, [CLS] ... [SEP]: random weights need no text, and
    full rows make every step the same shape."""
    generator = torch.Generator().manual_seed(seed)
    body = torch.randint(5, vocab_size, (rows, length - 2), generator=generator)
    return TokenizedCorpus([[2, *row, 3] for row in body.tolist()], 0)


def make_setup(pair: str, batch_size: int | None = None, max_length: int | None = None,
               device: str = "auto", kl_masked_only: bool = False, all_logits: bool = False) -> DistillSetup:
    """The pair's teacher and student with a recipe of the card's losses (KL over every position), or of the bundled
    student's (kl_masked_only: KL at masked positions, T 1, alpha MLM 0.5); all_logits: both models compute logits
    at every position, as before core.models.masked_lm.logits_only_at."""
    teacher_name, layers, init_layers, default_batch, default_length = PAIRS[pair]
    batch_size, max_length = batch_size or default_batch, max_length or default_length
    if teacher_name.startswith("bundled") and not zoo.is_available(teacher_name):
        raise SystemExit("The bundled teacher is missing; build it first (see assets/README.md).")
    loaded = zoo.load(teacher_name)
    layers = layers or max(1, num_layers(loaded.model.config) // 2)
    student = make_student(loaded.model, StudentSpec(num_layers=layers, model_type="distilbert",
                                                     init_layers=init_layers))
    if loaded.source == "arch":
        corpus = random_corpus(loaded.model.config.vocab_size, batch_size * 20, max_length)
    else:
        lines = (ASSETS / "corpus" / "train.txt").read_text(encoding="utf-8").splitlines()
        corpus = tokenize_lines(lines, loaded.tokenizer, max_length)
    cfg = DistillConfig(teacher=teacher_name, batch_size=batch_size, max_length=max_length, device=device)
    if kl_masked_only:
        cfg.losses = LossWeights(alpha_kl=5.0, alpha_mlm=0.5, alpha_cos=1.0, temperature=1.0, kl_masked_only=True)
    recipe = SameVocabRecipe(loaded.model, loaded.tokenizer, student, cfg.losses,
                             layer_groups(num_layers(loaded.model.config), layers), corpus,
                             logits_where_read=not all_logits)
    return DistillSetup(cfg, recipe, data=None)  # measure() draws its batches from recipe.train itself


@cache
def accelerator_for(device: str):
    """One Accelerator per process (Accelerate keeps its state process-wide), configured as train.distill does."""
    return make_accelerator(DistillConfig(device="cpu" if device == "cpu" else "auto"))


def sync(device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


COMPILE_CHOICES = ("none", "student", "both")


def measure(setup: DistillSetup, device: str, steps: int = 20, warmup: int = 3, compile_models: str = "none",
            peak_flops: float | None = None, compile_mode: str | None = None, profile_steps: int = 0,
            pad_vocab: bool = True) -> dict:
    """Time `steps` training steps after `warmup` ones. Returns medians in seconds, tokens/s, FLOPs, MFU (when
    `peak_flops`, FLOP/s, is given) and peak memory in GiB (the allocator's on a GPU; on CPU both models' weights plus
    the most memory the steps add, engine.PeakMemory).

    compile_models: "none", "student" or "both" (student and teacher) through torch.compile with `compile_mode`.
    profile_steps > 0: that many more steps run under torch.profiler; the result gains "profile" (the busiest
    operations) and "device_busy" (the share of the steps' wall time that the device spent running kernels).
    pad_vocab=False measures the vocabulary product unpadded, as it was before core.models.aligned_head."""
    cfg, recipe = setup.cfg, setup.recipe
    accelerator = accelerator_for(device)
    teacher = place_teacher(recipe.teacher, accelerator, pad_vocab).eval()
    student = place_student(recipe, accelerator, pad_vocab).train()
    optimizer = optimizer_for(cfg, list(student.named_parameters()))
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, steps + warmup + profile_steps)
    forward = torch.compile(student, mode=compile_mode) if compile_models != "none" else student
    if compile_models != "none":
        recipe.logits_where_read = False  # as train.distill: compiled graphs compute the logits everywhere
    if compile_models == "both":
        teacher = torch.compile(teacher, mode=compile_mode)
    batches = length_grouped_batches(recipe.train.lengths, cfg.batch_size, 0, 0)
    phases = {name: [] for name in ("data", "forward", "backward", "optimizer")}
    tokens, padded, read = [], [], []  # real tokens, padded positions, positions with logits
    if device == "cuda":
        torch.cuda.empty_cache()

    def one_step(step: int) -> tuple[list[float], dict]:
        t0 = sync(device)
        batch = recipe.build_batch(batches[step % len(batches)], step_generator(0, step))
        batch = {k: v.to(accelerator.device) for k, v in batch.items()}
        t1 = sync(device)
        with accelerator.autocast():
            loss = recipe.losses(forward, teacher, batch)["loss"]
        t2 = sync(device)
        accelerator.backward(loss)
        t3 = sync(device)
        torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        t4 = sync(device)
        return [t1 - t0, t2 - t1, t3 - t2, t4 - t3], batch

    weights = sum(t.numel() * t.element_size() for model in (teacher, student)
                  for t in [*model.parameters(), *model.buffers()])  # loaded before the steps: not in their growth
    with PeakMemory(device, weights) as memory:
        for step in range(steps + warmup):
            seconds, batch = one_step(step)
            if step >= warmup:
                for name, value in zip(phases, seconds):
                    phases[name].append(value)
                tokens.append(int(batch["attention_mask"].sum()))
                padded.append(batch["attention_mask"].numel())
                read.append(int(logit_positions(batch["attention_mask"], batch["labels"], cfg.losses).sum())
                            if recipe.logits_where_read else padded[-1])
    profiled = profile(one_step, steps + warmup, profile_steps, device) if profile_steps else {}
    medians = {name: statistics.median(values) for name, values in phases.items()}
    step_s = sum(medians.values())
    seq_len = batch["attention_mask"].shape[1]
    flops = distill_step_flops(config_shape("teacher", "", recipe.teacher.config),
                               config_shape("student", "", recipe.hf_student(student).config),
                               statistics.median(padded) // seq_len, seq_len,
                               statistics.median(read) / statistics.median(padded))
    result = {"batch_size": cfg.batch_size, "seq_len": seq_len, "device": device,
              "kl_masked_only": cfg.losses.kl_masked_only,
              "logits_where_read": recipe.logits_where_read,
              "precision": accelerator.mixed_precision, "teacher_dtype": str(next(teacher.parameters()).dtype),
              "compiled": compile_models, "padded_vocab_product": pad_vocab, "compile_mode": compile_mode or "default",
              "steps": steps, "step_s": step_s,
              "tokens_per_s": statistics.median(tokens) / step_s, "flops_per_step": flops["total"],
              "teacher_forward_flops": flops["teacher_forward"], "achieved_tflops": flops["total"] / step_s / 1e12,
              "peak_memory_gib": memory.peak_bytes / 2**30, **{f"{k}_s": v for k, v in medians.items()}}
    if peak_flops:
        result["mfu"] = flops["total"] / step_s / peak_flops
    return {**result, **profiled}


def profile(one_step, first_step: int, steps: int, device: str, rows: int = 25) -> dict:
    """Run `steps` steps under torch.profiler: the operations with the most device (or CPU) time, and the share of
    the wall time the device was busy (kernel time summed; below 1 means the CPU could not keep it fed)."""
    from torch.profiler import ProfilerActivity
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    with torch.profiler.profile(activities=activities) as prof:
        start = sync(device)
        for step in range(first_step, first_step + steps):
            one_step(step)
        wall = sync(device) - start
    events = prof.key_averages()
    sort_by = "self_device_time_total" if device == "cuda" else "self_cpu_time_total"
    kernels_us = sum(getattr(e, "self_device_time_total", 0) for e in events if e.device_type.name == "CUDA")
    return {"profile": events.table(sort_by=sort_by, row_limit=rows, max_name_column_width=60),
            "device_busy": kernels_us / 1e6 / wall if device == "cuda" else None,
            "launches_per_step": sum(e.count for e in events if e.key == "cudaLaunchKernel") / steps}


def describe(pair: str, result: dict) -> str:
    mfu = f"  MFU {result['mfu']:6.1%}" if "mfu" in result else ""
    return (f"{pair:9s} step {result['step_s'] * 1000:8.1f} ms  {result['tokens_per_s']:10,.0f} tokens/s  "
            f"{result['achieved_tflops']:7.2f} TFLOP/s{mfu}  peak memory {result['peak_memory_gib']:.2f} GiB  "
            f"(data {result['data_s'] * 1000:.1f} ms, forward {result['forward_s'] * 1000:.1f}, "
            f"backward {result['backward_s'] * 1000:.1f}, optimizer {result['optimizer_s'] * 1000:.1f})")


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m scripts.bench_distill_step", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pair", choices=[*PAIRS, "both"], default="both")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, help="default: 32 (both pairs)")
    p.add_argument("--max-length", type=int, help="default: 128 tiny, 256 real")
    p.add_argument("--compile", choices=COMPILE_CHOICES, default="none", help="torch.compile the student or both")
    p.add_argument("--compile-mode", choices=["default", "reduce-overhead", "max-autotune-no-cudagraphs"],
                   default="default", help="torch.compile's mode (reduce-overhead: CUDA graphs)")
    p.add_argument("--profile", type=int, default=0, metavar="STEPS", help="profile this many more steps")
    p.add_argument("--kl-masked-only", action="store_true",
                   help="the bundled student's losses (KL at masked positions) instead of the card's")
    p.add_argument("--all-logits", action="store_true",
                   help="also measure with logits at every position, as before they were computed only where read")
    args = p.parse_args(argv)
    if args.steps < 1 or (args.batch_size is not None and args.batch_size < 1) or \
            (args.max_length is not None and args.max_length < 8):
        p.error("--steps and --batch-size must be at least 1 and --max-length at least 8.")
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda was asked for, but this machine has no usable NVIDIA GPU.")
    pairs = ["tiny", "real"] if args.pair == "both" else [args.pair]
    if args.pair == "both" and args.device == "cpu":
        pairs = ["tiny"]  # the real-size pair is a GPU measurement; ask for it explicitly to run it on a CPU
    dtype = torch.float32 if args.device == "cpu" else torch.bfloat16  # train.distill autocasts on GPUs only
    peak = machine.practical_peak(dtype, args.device)
    print(f"device {args.device}, {torch.get_num_threads()} threads, measured {machine.dtype_name(dtype)} matmul "
          f"peak {peak / 1e12:.2f} TFLOP/s, median of {args.steps} steps")
    for pair in pairs:
        for all_logits in ([False, True] if args.all_logits else [False]):
            setup = make_setup(pair, args.batch_size, args.max_length, "cpu" if args.device == "cpu" else "auto",
                               args.kl_masked_only, all_logits)
            result = measure(setup, args.device, args.steps, compile_models=args.compile, peak_flops=peak,
                             compile_mode=None if args.compile_mode == "default" else args.compile_mode,
                             profile_steps=args.profile)
            print(describe(pair + (" (logits everywhere)" if all_logits else ""), result))
        if args.profile:
            busy = f"device busy {result['device_busy']:.0%} of the wall time, " if result["device_busy"] else ""
            print(f"{busy}{result['launches_per_step']:.0f} kernel launches a step\n{result['profile']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

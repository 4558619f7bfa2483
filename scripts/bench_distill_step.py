"""How fast is one distillation step, and how much of it is not forward or backward?

python -m scripts.bench_distill_step [--pair tiny|real|both] [--device cpu|cuda] [--steps 30]

tiny: the bundled teacher (4 layers, 256 wide) and its 2-layer student; real: RuBERT-base's architecture with
random weights and a 6-layer DistilBERT student (DistilRuBERT-base's recipe), by default only where a GPU is.
Each phase of the training loop's step is timed on its own (data = batch building and masking; teacher forward;
student forward + losses; backward; optimizer = clipping, AdamW, scheduler), with the same functions the loop uses.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
from transformers import get_linear_schedule_with_warmup

from core.distill.data import TokenizedCorpus, length_grouped_batches, read_corpus, step_generator, tokenize_lines
from core.distill.losses import distillation_loss
from core.distill.recipes import SameVocabRecipe
from core.models import zoo
from core.models.student import StudentSpec, layer_groups, make_student, num_layers
from core.paths import ASSETS
from train.config import DistillConfig
from train.distill import optimizer_for
from train.setup import DistillSetup


def make_setup(pair: str, batch_size: int, max_length: int) -> DistillSetup:
    teacher_name = "bundled-teacher" if pair == "tiny" else "arch:rubert-base-cased-conversational"
    if pair == "tiny" and not zoo.is_available("bundled-teacher"):
        raise SystemExit("The bundled teacher is missing; build it first (see assets/README.md).")
    loaded = zoo.load(teacher_name)
    layers = 2 if pair == "tiny" else 6
    student = make_student(loaded.model, StudentSpec(num_layers=layers, model_type="distilbert",
                                                     init_layers=None if pair == "tiny" else [0, 2, 4, 7, 9, 11]))
    lines = read_corpus(ASSETS / "corpus" / "train.txt")
    if pair == "real":  # random weights need random tokens of the real vocabulary, at full length
        generator = torch.Generator().manual_seed(0)
        sequences = [[2] + torch.randint(5, loaded.model.config.vocab_size, (max_length - 2,),
                                         generator=generator).tolist() + [3] for _ in range(batch_size * 20)]
        corpus = TokenizedCorpus(sequences, 0)
    else:
        corpus = tokenize_lines(lines, loaded.tokenizer, max_length)
    cfg = DistillConfig(teacher=teacher_name, batch_size=batch_size, max_length=max_length)
    recipe = SameVocabRecipe(loaded.model, loaded.tokenizer, student, cfg.losses,
                             layer_groups(num_layers(loaded.model.config), layers), corpus)
    return DistillSetup(cfg, recipe)


def sync(device: str) -> float:
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def measure(setup: DistillSetup, device: str, steps: int, warmup: int = 3) -> dict:
    cfg, recipe = setup.cfg, setup.recipe
    teacher, student = recipe.teacher.to(device).eval(), recipe.student.to(device).train()
    optimizer = optimizer_for(cfg, list(student.named_parameters()))
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, steps + warmup)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda"
                else torch.autocast("cpu", enabled=False))
    batches = length_grouped_batches(recipe.train.lengths, cfg.batch_size, 0, 0)
    phases = {name: [] for name in ("data", "teacher_forward", "student_forward", "backward", "optimizer")}
    tokens = []
    for step in range(steps + warmup):
        t0 = sync(device)
        batch = recipe.build_batch(batches[step % len(batches)], step_generator(0, step))
        batch = {k: v.to(device) for k, v in batch.items()}
        t1 = sync(device)
        weights = cfg.losses
        with torch.no_grad(), autocast:
            teacher_out = teacher(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  output_hidden_states=True)
        t2 = sync(device)
        with autocast:
            student_out = student(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  output_hidden_states=True)
            loss = distillation_loss(student_out, teacher_out, batch["attention_mask"], batch["labels"], weights,
                                     recipe.groups)["loss"]
        t3 = sync(device)
        loss.backward()
        t4 = sync(device)
        torch.nn.utils.clip_grad_norm_(student.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        t5 = sync(device)
        if step >= warmup:
            for name, seconds in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
                phases[name].append(seconds)
            tokens.append(int(batch["attention_mask"].sum()))
    medians = {name: statistics.median(values) for name, values in phases.items()}
    step_time = sum(medians.values())
    outside = medians["data"] + medians["optimizer"]
    return {"step_s": step_time, "tokens_per_s": statistics.median(tokens) / step_time,
            "outside_share": outside / step_time, **{f"{k}_s": v for k, v in medians.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--pair", choices=["tiny", "real", "both"], default="both")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=128)
    args = p.parse_args()
    pairs = ["tiny", "real"] if args.pair == "both" else [args.pair]
    if args.pair == "both" and args.device == "cpu":
        pairs = ["tiny"]  # the real-size pair is a GPU measurement; ask for it explicitly to run it on a CPU
    print(f"device {args.device}, {torch.get_num_threads()} threads, batch {args.batch_size}, "
          f"max length {args.max_length}, median of {args.steps} steps")
    for pair in pairs:
        result = measure(make_setup(pair, args.batch_size, args.max_length), args.device, args.steps)
        print(f"{pair:5s} step {result['step_s'] * 1000:8.1f} ms  {result['tokens_per_s']:10,.0f} tokens/s  "
              f"outside forward/backward {result['outside_share']:6.1%}  (data {result['data_s'] * 1000:.1f} ms, "
              f"teacher {result['teacher_forward_s'] * 1000:.1f}, student {result['student_forward_s'] * 1000:.1f}, "
              f"backward {result['backward_s'] * 1000:.1f}, optimizer {result['optimizer_s'] * 1000:.1f})")


if __name__ == "__main__":
    main()

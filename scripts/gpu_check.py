"""Every GPU measurement of the lab in one call: python -m scripts.gpu_check OUT_DIR [--dry-run]

Four parts, each written to OUT_DIR/gpu_check.json as soon as it ends (a part that fails records its error and the
next one runs), then a short table:

1. peaks  the measured bf16 and fp32 matrix-product rates (an 8192^3 product) beside the vendor's figures;
2. card   the model card's GPU table: teacher, base and small (their exact architectures, random weights), batch 1
          and 16, 512 tokens, reference (fp32, eager attention, as the card measured) and fast; with the ratio of
          each reference figure to the card's P100 one (target: at least 5x on an H200);
3. step   the real-size distillation step, RuBERT-base's architecture -> 6-layer DistilBERT student, batch 32 x 256,
          bf16: tokens/s, MFU (model FLOPs over the measured bf16 peak; target at least 40% on an H200) and peak
          memory; as train.distill runs it (profiled: the busiest kernels), as it ran before the vocabulary product
          was padded and the KL computed in row blocks, and with --compile;
4. run    50 steps of `python -m train.distill` at real size on random tokens of the real vocabulary (random weights
          need no text); the loss must fall.

--dry-run runs the same code at toy sizes on the CPU (the test suite does), in about a minute. On an H200 the whole
check takes about 4 minutes; --time-limit skips the optional compiled variant when time runs short.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import torch

from core.bench import BenchConfig, machine, run_benchmark
from core.bench.records import Peaks, Row
from core.bench.report import card_figure
from core.distill import losses
from core.formatting import OneLineParser
from core.models import zoo
from core.paths import REPO_ROOT
from scripts import bench_distill_step

TARGET_MFU = 0.40
TARGET_CARD_SPEEDUP = 5.0
CARD_MODELS = ["arch:rubert-base-cased-conversational", "arch:distilrubert-base-cased-conversational",
               "arch:distilrubert-small-cased-conversational"]


@dataclass
class Sizes:
    """What each part measures: the real sizes on a GPU, toy ones for --dry-run on the CPU."""
    device: str
    card_models: list[str]
    card_batches: list[int]
    card_seq_len: int
    card_runs: int | None
    step_pair: str
    step_steps: int
    run_teacher: str
    run_student_layers: int
    run_init_layers: str
    run_batch: int
    run_length: int
    run_steps: int
    compile_variant: bool
    profile_steps: int


REAL = Sizes("cuda", CARD_MODELS, [1, 16], 512, None, "real", 20, "arch:rubert-base-cased-conversational", 6,
             "0,2,4,7,9,11", 32, 256, 50, True, 3)
DRY = Sizes("cpu", ["arch:distilrubert-tiny-cased-conversational-v1"], [1, 2], 32, 2, "arch-tiny", 2,
            "arch:distilrubert-tiny-cased-conversational-v1", 2, "0,2", 4, 32, 6, False, 1)


class Report:
    """The JSON file, rewritten after every part so that whatever ran is kept."""

    def __init__(self, path: Path, sizes: Sizes):
        self.path, self.started = path, time.perf_counter()
        self.data = {"sizes": sizes.__dict__, "machine": machine.machine_dict(sizes.device),
                     "torch": torch.__version__, "targets": {"step_mfu": TARGET_MFU,
                                                             "card_reference_speedup": TARGET_CARD_SPEEDUP},
                     "errors": {}}
        self.write()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def write(self) -> None:
        self.data["wall_s"] = round(self.elapsed(), 1)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.data, indent=1, ensure_ascii=False, default=str) + "\n", encoding="utf-8")

    def part(self, name: str, work) -> None:
        log(f"{name} ...")
        try:
            self.data[name] = work()
        except Exception as error:  # one failed part must not lose the others' figures
            self.data["errors"][name] = f"{type(error).__name__}: {error}\n{traceback.format_exc(limit=8)}"
            log(f"{name} failed: {type(error).__name__}: {error}")
        self.write()


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def measure_peaks(sizes: Sizes) -> dict:
    out = {}
    for dtype in (torch.bfloat16, torch.float32):
        theory, basis = machine.theoretical_peak(dtype, sizes.device)
        out[machine.dtype_name(dtype)] = {"measured_tflops": machine.practical_peak(dtype, sizes.device) / 1e12,
                                          "vendor_tflops": theory / 1e12 if theory else None, "basis": basis}
    return out


def card_table(sizes: Sizes) -> dict:
    config = BenchConfig(models=sizes.card_models, device=sizes.device, batch_sizes=sizes.card_batches,
                         seq_len=sizes.card_seq_len, runs=sizes.card_runs, warmup=1 if sizes.card_runs else None)

    def on_event(event: Row | Peaks | object) -> None:
        if isinstance(event, Row):
            log(f"  {event.model} {event.mode} batch {event.batch_size}: {event.latency_s * 1000:.2f} ms")

    result = run_benchmark(config, on_event=on_event)
    result["versus_card"] = versus_card(result["rows"], sizes.device)
    return result


def versus_card(rows: list[dict], device: str) -> list[dict]:
    """How many times faster each measurement is than the card's figure (latency at batch 1, throughput at 16)."""
    out = []
    for row in rows:
        if row["batch_size"] == 1 and (card := card_figure(row["model"], device, "latency")):
            out.append({"model": row["model"], "mode": row["mode"], "kind": "latency, batch 1", "card": card,
                        "measured": row["latency_s"], "times_faster": card / row["latency_s"]})
        if row["batch_size"] == 16 and (card := card_figure(row["model"], device, "throughput")):
            out.append({"model": row["model"], "mode": row["mode"], "kind": "throughput, batch 16", "card": card,
                        "measured": row["throughput_samples_s"],
                        "times_faster": row["throughput_samples_s"] / card})
    return out


def distill_step(sizes: Sizes, report: Report, time_limit_s: float) -> dict:
    dtype = torch.bfloat16 if sizes.device == "cuda" else torch.float32
    peak = machine.practical_peak(dtype, sizes.device)
    out = {"peak_tflops": peak / 1e12, "peak_dtype": machine.dtype_name(dtype), "variants": {}}

    def whole_tensor_kl(student, teacher, positions, temperature):  # the formula before row blocks
        return losses.softened_kl(student[positions], teacher[positions], temperature)

    variants = [("as train.distill runs it", None, "none", True),
                ("before: unpadded vocabulary product, whole-tensor KL", whole_tensor_kl, "none", False),
                ("train.distill --compile (student and teacher)", None, "both", True)]
    if not sizes.compile_variant:
        variants.pop()
    chunked_kl = losses.kl_loss
    for label, kl, compiled, padded in variants:
        if compiled != "none" and report.elapsed() > time_limit_s * 0.6:
            out["variants"][label] = {"skipped": f"{report.elapsed():.0f} s had passed of the {time_limit_s:.0f} s"}
            continue
        losses.kl_loss = kl or chunked_kl
        try:
            setup = bench_distill_step.make_setup(sizes.step_pair, device="cpu" if sizes.device == "cpu" else "auto")
            result = bench_distill_step.measure(setup, sizes.device, sizes.step_steps, compile_models=compiled,
                                                peak_flops=peak, pad_vocab=padded,
                                                profile_steps=sizes.profile_steps if label == variants[0][0] else 0)
            out["variants"][label] = result
            log("  " + bench_distill_step.describe(sizes.step_pair, result))
        except Exception as error:  # e.g. the whole-tensor KL running out of memory, itself a finding
            out["variants"][label] = {"error": f"{type(error).__name__}: {str(error)[:400]}"}
            log(f"  {label}: {type(error).__name__}: {str(error)[:200]}")
        finally:
            losses.kl_loss = chunked_kl
            setup = None
            if sizes.device == "cuda":
                torch.cuda.empty_cache()
        report.data["step"] = out
        report.write()
    return out


def random_word_corpus(path: Path, vocab_size: int, lines: int, words: int) -> Path:
    """Lines of the stand-in words (w0, w1, ...) of an architecture-only model's tokenizer, one token each."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab_size - 5, (lines, words), generator=generator)
    path.write_text("\n".join(" ".join(f"w{i}" for i in row) for row in ids.tolist()) + "\n", encoding="utf-8")
    return path


def short_run(sizes: Sizes) -> dict:
    vocab = zoo.arch_config(sizes.run_teacher.removeprefix("arch:")).vocab_size
    with tempfile.TemporaryDirectory(prefix="rudistil-gpu-check-") as folder:
        corpus = random_word_corpus(Path(folder) / "corpus.txt", vocab, sizes.run_batch * sizes.run_steps + 200,
                                    sizes.run_length - 2)
        run_dir = Path(folder) / "run"
        command = [sys.executable, "-m", "train.distill", "--teacher", sizes.run_teacher,
                   "--student-layers", str(sizes.run_student_layers), "--init-layers", sizes.run_init_layers,
                   "--student-type", "distilbert", "--corpus", str(corpus), "--max-length", str(sizes.run_length),
                   "--batch-size", str(sizes.run_batch), "--max-steps", str(sizes.run_steps),
                   "--log-every", str(max(1, sizes.run_steps // 10)), "--eval-every", str(sizes.run_steps),
                   "--eval-lines", "64", "--save-every", str(sizes.run_steps), "--keep-checkpoints", "1",
                   "--output-dir", str(run_dir)] + (["--device", "cpu"] if sizes.device == "cpu" else [])
        started = time.perf_counter()
        done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
        wall = time.perf_counter() - started
        rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()] \
            if (run_dir / "metrics.jsonl").is_file() else []
        status = json.loads((run_dir / "status.json").read_text()) if (run_dir / "status.json").is_file() else {}
    trained = [r for r in rows if "loss" in r]
    out = {"command": " ".join(command[1:]), "exit_code": done.returncode, "wall_s": wall, "status": status,
           "stderr_tail": done.stderr[-1500:], "metrics": rows}
    if trained:
        out.update(first_loss=trained[0]["loss"], last_loss=trained[-1]["loss"],
                   loss_fell=trained[-1]["loss"] < trained[0]["loss"],
                   median_tokens_per_s=sorted(r["tokens_per_s"] for r in trained)[len(trained) // 2])
    return out


def table(data: dict) -> str:
    lines = ["", "part   figure                                                   value        target"]
    for dtype, peak in data.get("peaks", {}).items():
        lines.append(f"peaks  {dtype} matmul, measured (vendor {peak['vendor_tflops'] or 0:.0f})"
                     f"{'':<17}{peak['measured_tflops']:8.1f} TFLOP/s")
    for line in data.get("card", {}).get("versus_card", []):
        target = f">= {TARGET_CARD_SPEEDUP:g}x" if line["mode"] == "reference" else ""
        name = line["model"].removeprefix("arch:").replace("-cased-conversational", "")
        lines.append(f"card   {name:<16} {line['mode']:<9} {line['kind']:<22}   {line['times_faster']:8.1f}x     "
                     f"{target}")
    for label, step in data.get("step", {}).get("variants", {}).items():
        if "mfu" in step:
            lines.append(f"step   {label[:44]:<44} MFU {step['mfu']:8.1%}      >= {TARGET_MFU:.0%}")
            lines.append(f"step   {'':<44} tokens/s {step['tokens_per_s']:>10,.0f}, peak "
                         f"{step['peak_memory_gib']:.1f} GiB")
        else:
            lines.append(f"step   {label[:44]:<44} {step.get('error') or step.get('skipped')}"[:118])
    run = data.get("run", {})
    if "first_loss" in run:
        lines.append(f"run    loss over {len(run['metrics']) - 1} rows: {run['first_loss']:.3f} -> "
                     f"{run['last_loss']:.3f}{'':<14}{'fell' if run['loss_fell'] else 'DID NOT FALL'}")
    for name, error in data.get("errors", {}).items():
        lines.append(f"ERROR  {name}: {error.splitlines()[0][:100]}")
    lines.append(f"wall time {data.get('wall_s', 0):.0f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m scripts.gpu_check", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", help="folder for gpu_check.json")
    p.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU: checks the script, not the GPU")
    p.add_argument("--time-limit", type=float, default=420.0, help="seconds; optional parts are skipped past it")
    args = p.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        p.error("no usable NVIDIA GPU here; use --dry-run to check the script on the CPU.")
    sizes = DRY if args.dry_run else REAL
    report = Report(Path(args.out_dir) / "gpu_check.json", sizes)
    report.part("peaks", lambda: measure_peaks(sizes))
    report.part("card", lambda: card_table(sizes))
    report.part("step", lambda: distill_step(sizes, report, args.time_limit))
    report.part("run", lambda: short_run(sizes))
    print(table(report.data))
    return 1 if report.data["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())

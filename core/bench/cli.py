"""The command line of the speed benchmark: python -m core.bench --help"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import torch

from core.bench.engine import run_benchmark
from core.bench.flags import build_parser
from core.bench.limits import MAX_RUNS
from core.bench.machine import busy_note
from core.bench.plan import BenchConfig, default_loader, make_plan
from core.bench.profile import profile_breakdown
from core.bench.records import Peaks, Progress, Row
from core.bench.report import card_gap, is_result_file, write_json
from core.bench.variants import choose_fast, reference_variant
from core.formatting import format_seconds, parse_int_list, shown

BAR_TEXT = 60  # characters of the progress message before the bar


def bar_text(message: str, width: int = BAR_TEXT) -> str:
    """The progress message in at most `width` characters, cut in its middle when longer: it starts with the model's
    name and ends with what is under way ("warm-up 1/2 ...", "run 3/5"), and a real model's name with its mode and
    batch size can fill the width alone."""
    if len(message) <= width:
        return message
    head = (width - 1) * 2 // 5
    return message[:head] + "…" + message[-(width - 1 - head):]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def check_threads(threads: int | None) -> None:
    """--threads from 1 to this machine's CPU count (more threads than cores only wait for each other)."""
    cores = os.cpu_count() or 1
    if threads is not None and not 1 <= threads <= cores:
        raise ValueError(f"--threads must be from 1 to {cores} (this machine's CPU count), not {shown(threads)}.")


def check_json_path(path: str | None) -> Path | None:
    """The --json file, checked before anything is measured and again before it is written: not a folder, new or an
    earlier result of this command (never another file, which would be lost), and in a folder that exists and can
    be written; ValueError naming the path otherwise. A missing folder is refused rather than made: a mistyped path
    would otherwise leave its folders behind, and the results somewhere no one looks."""
    if path is None:
        return None
    target = Path(path).expanduser()
    if target.is_dir():
        raise ValueError(f"--json {path} is a folder; give a file name such as {Path(path) / 'bench.json'}.")
    if target.exists():
        if not target.is_file():
            raise ValueError(f"--json {path} is not a regular file; give the name of a new file or of an earlier "
                             "result of this command.")
        try:
            # an empty file holds nothing to lose; anything else must be this command's own earlier result
            ours = not target.stat().st_size or is_result_file(target)
        except OSError as error:
            raise ValueError(f"--json {path} exists and cannot be read ({error.strerror or error}), so it cannot be "
                             "told apart from a file that must not be replaced; give a new file name.") from None
        if not ours:
            raise ValueError(f"--json {path} already exists and is not a benchmark result of this command; give a "
                             "new file name, or move or delete that file first.")
        try:
            with open(target, "a", encoding="utf-8"):
                pass
        except OSError as error:
            raise ValueError(f"--json {path} cannot be written ({error.strerror or error}).") from None
        return target
    folder = target.parent
    if not folder.exists():
        missing = folder
        while not missing.parent.exists():
            missing = missing.parent
        if missing.parent.is_dir():
            raise ValueError(f"--json {path} cannot be written: the folder {folder} does not exist; make it first "
                             "(mkdir -p) or give a file in a folder that exists.")
        folder = missing.parent
    if not folder.is_dir():
        raise ValueError(f"--json {path} cannot be written: {folder} is a file, not a folder.")
    try:
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(f"--json {path} cannot be written: the folder {folder} is not writable "
                         f"({error.strerror or error}).") from None
    return target


def config_from_args(args: argparse.Namespace) -> BenchConfig:
    """The benchmark the flags ask for; ValueError with a sentence for a negative --runs (0 is automatic)."""
    if args.runs is not None and args.runs < 0:
        raise ValueError(f"--runs must be 0 (about 3 s of runs) or 1 to {MAX_RUNS}; got {shown(args.runs)}.")
    return BenchConfig(models=[m.strip() for m in args.models.split(",") if m.strip()], device=args.device.strip(),
                       batch_sizes=parse_int_list(args.batch_sizes, "Batch sizes"), seq_len=args.seq_len,
                       modes=[m.strip() for m in args.modes.split(",") if m.strip()], runs=args.runs or None,
                       warmup=args.warmup, compile=args.compile)


def _print_table(lines: list[dict], columns: list[str]) -> None:
    import pandas as pd
    frame = pd.DataFrame(lines)
    print(frame[[c for c in columns if c in frame]].to_string(index=False, na_rep="-"))


def _print_result(result: dict, device: str) -> None:
    m = result["machine"]
    print(f"\nMachine: {m['cpu_model']}, {m['physical_cores']} cores, {m['torch_threads']} torch threads, "
          f"AMX {m['amx_bf16']}, AVX-512 BF16 {m['avx512_bf16']}; GPU {m['gpu']}; torch {m['torch']}, "
          f"transformers {m['transformers']}; load average {m['load_avg_1min']}")
    for dtype, peak in result["peak"].items():
        print(f"Limit {dtype}: measured matmul {peak['measured_gflops']:,.0f} GFLOP/s; theoretical "
              f"{peak['theoretical_basis']}")
    print()
    _print_table(result["rows"], ["model", "mode", "dtype", "batch_size", "latency_s", "latency_p90_s",
                                  "throughput_samples_s", "peak_mem_mb", "size_mb", "gflops", "share_of_peak",
                                  "share_of_theoretical", "runs", "setup_s"])
    checks = [r for r in result["rows"] if r["mode"] != "reference" and r["check"]]
    for row in {(r["model"], r["mode"]): r for r in checks}.values():
        print(f"check {row['model']} {row['mode']}: {row['check']}")
    gap = card_gap(result["rows"], device)
    if gap:
        print(f"\nBeside the card: nothing to compare, because {gap}")
    else:
        print(f"\nBeside the card ({device}; card latency at batch 1, throughput at batch 16):")
        _print_table(result["card"], ["model", "size_mb", "card_size_mb", "card_latency_s", "reference_latency_s",
                                      "fast_latency_s", "card_throughput", "reference_throughput", "fast_throughput"])
    if not result["speedups"]:
        print("\nSpeed-ups: none; measure a teacher and a student, or both modes, to compare them.")
        return
    print("\nSpeed-ups (latency: teacher / student; throughput: student / teacher; fast_speedup: reference / fast; "
          "runtime_speedup: fast / that mode):")
    _print_table(result["speedups"], ["pair", "batch_size", "card_latency_ratio", "reference_latency_ratio",
                                      "fast_latency_ratio", "card_throughput_ratio", "reference_throughput_ratio",
                                      "fast_throughput_ratio", "fast_speedup", "runtime_speedup"])


def _print_profiles(config: BenchConfig, models: list[str]) -> None:
    for name in models:
        loaded = default_loader(name, True)
        reference = reference_variant(loaded.model, config.device)
        variant, _ = choose_fast(reference, loaded, config.device, config.seq_len, config.compile)
        print(f"\nWhere the time goes, {name}, batch 1, seq_len {config.seq_len}, ms per pass:")
        for mode_variant in (reference, variant):
            parts = profile_breakdown(mode_variant, 1, config.seq_len)
            print(f"  {mode_variant.label}: " + ", ".join(f"{k} {v * 1e3:.1f}" for k, v in parts.items()))


def main(argv: list[str] | None = None) -> int:
    """The command line in this process: argparse exits 2 on a malformed flag, then run() returns the exit code."""
    return run(parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Measure as the flags say and print the tables; exit code 2 and one line for what a person can fix."""
    from tqdm import tqdm
    try:
        check_threads(args.threads)
        check_json_path(args.json_path)
        if args.threads is not None:
            torch.set_num_threads(args.threads)
        config = config_from_args(args)
        plan = make_plan(config)
    except ValueError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    print(plan.describe(), file=sys.stderr, flush=True)  # with the progress: stdout holds the tables alone
    for line in plan.skip_lines():
        print(f"note: {line}", file=sys.stderr, flush=True)
    busy = busy_note()
    if busy:
        print(f"note: {busy}", file=sys.stderr, flush=True)
    bar = tqdm(total=100, unit="%", file=sys.stderr, mininterval=0.5,
               bar_format="{desc:<" + str(BAR_TEXT) + "} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")

    explained: set[str] = set()

    def on_event(event: Progress | Peaks | Row) -> None:
        if isinstance(event, Progress):
            bar.n = round(100 * event.fraction)
            bar.set_description_str(bar_text(event.message), refresh=False)
            bar.refresh()
        elif isinstance(event, Row):
            # stderr, like the bar: stdout holds the tables alone, printed once the bar is closed
            if event.tried and event.model not in explained:
                explained.add(event.model)
                bar.write(f"{event.model} fast path chosen from: {event.tried}", file=sys.stderr)
            share = "" if event.share_of_peak is None else f", {event.share_of_peak:.0%} of the measured limit"
            bar.write(f"{event.model} {event.mode} ({event.dtype}) batch {event.batch_size}: "
                      f"{event.latency_s:.4f} s, {event.throughput_samples_s:.2f} samples/s{share}", file=sys.stderr)

    try:
        result = run_benchmark(config, plan=plan, on_event=on_event)
    except ValueError as error:
        bar.close()
        sys.stderr.write(f"error: {error}\n")
        return 2
    bar.n = 100
    bar.close()
    _print_result(result, config.device)
    if args.profile:
        _print_profiles(config, list(plan.shapes))
    print(f"\nTotal wall time {format_seconds(result['wall_s'])} (estimated {format_seconds(plan.estimate_s)}).")
    if args.json_path:
        try:
            check_json_path(args.json_path)  # the measurement took a while: the file may have appeared since
            print(f"Wrote {write_json(result, args.json_path)}")
        except ValueError as error:
            sys.stderr.write(f"error: {error}\n")
            return 2
        except OSError as error:
            sys.stderr.write(f"error: could not write {args.json_path} ({error.strerror or error}).\n")
            return 2
    return 0

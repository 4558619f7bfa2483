"""Memory and start-up time of a distillation run against the size of its corpus.

    python scripts/bench_corpus.py --size-mb 1000

Makes a synthetic corpus of about --size-mb megabytes (the bundled training lines, repeated), then runs
`python -m train.distill` on it for a few steps twice: first with an empty `datasets` cache (tokenising), then again
(reading the tokenised cache). Each run is compared with a run on a 1 MB corpus with the same models. Prints, per run:
seconds from start to the first optimizer step, and the peak resident memory of the run's process (RSS), and the
proportional set size of its process tree (PSS: with the tokenising workers, shared pages counted once), in MiB, and
their growth over the 1 MB run. The resident memory is also given as its anonymous part (heap and tensors); the rest
is pages of the memory-mapped Arrow files, which the kernel reclaims under pressure.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from core.formatting import count  # noqa: E402
from core.paths import ASSETS  # noqa: E402
from core.runs.store import read_metrics  # noqa: E402


def make_corpus(path: Path, size_mb: float) -> Path:
    """About size_mb MiB of the bundled training lines, repeated; one sample a line."""
    block = (ASSETS / "corpus" / "train.txt").read_bytes()
    target = int(size_mb * 2**20)
    with open(path, "wb") as handle:
        written = 0
        while written < target:
            piece = block[:target - written]
            piece = piece[:piece.rfind(b"\n") + 1]  # whole lines only
            if not piece:
                break
            handle.write(piece)
            written += len(piece)
    return path


def anonymous_bytes(pid: int) -> int:
    """Resident anonymous memory of a process (RssAnon: its heap and tensors, which only exiting frees), in bytes;
    the rest of its RSS is pages of files it maps (the Arrow tables), which the kernel drops when memory runs short."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    return 0


def tree_memory(process: psutil.Process) -> tuple[int, int, int]:
    """(resident bytes of the process, its anonymous resident bytes, proportional set size of the process and its
    children in bytes: pages the tokenising workers share with it, forked, are counted once)."""
    try:
        own, anon = process.memory_info().rss, anonymous_bytes(process.pid)
        tree = sum(p.memory_full_info().pss for p in [process, *process.children(recursive=True)])
    except (psutil.Error, OSError):
        return 0, 0, 0
    return own, anon, tree


def run(corpus: Path, out: Path, cache: Path, steps: int, extra: list[str]) -> dict:
    """One distillation run: seconds to its first step and its peak resident memory (bytes)."""
    env = {**os.environ, "HF_DATASETS_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "train.distill", "--corpus", str(corpus), "--max-steps", str(steps),
               "--log-every", "1", "--eval-every", str(steps), "--eval-lines", "40", "--save-every", str(steps),
               "--device", "cpu", "--output-dir", str(out), *extra]
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    process, peak_own, peak_anon, peak_tree, first_step = psutil.Process(child.pid), 0, 0, 0, None
    while child.poll() is None:
        own, anon, tree = tree_memory(process)
        peak_own, peak_anon, peak_tree = max(peak_own, own), max(peak_anon, anon), max(peak_tree, tree)
        if first_step is None and out.is_dir() and any(r.get("step", 0) >= 1 for r in read_metrics(out)):
            first_step = time.perf_counter() - started
        time.sleep(0.1)
    stderr = child.stderr.read()
    if child.returncode != 0:
        raise SystemExit(f"error: the run on {corpus.name} failed: {stderr.strip().splitlines()[-1:]}")
    return {"first_step_s": first_step, "peak_rss": peak_own, "peak_anon": peak_anon, "peak_tree_rss": peak_tree,
            "total_s": time.perf_counter() - started}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=50.0, help="corpus size in MiB (default 50)")
    parser.add_argument("--steps", type=int, default=3, help="optimizer steps of each run (default 3)")
    parser.add_argument("--work-dir", help="where corpora, caches and runs go (default: a temporary folder)")
    parser.add_argument("--distill-args", default="", help="more flags for train.distill, e.g. '--num-proc 2'")
    args = parser.parse_args(argv)
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="bench-corpus-"))
    work.mkdir(parents=True, exist_ok=True)
    extra = args.distill_args.split()
    small = make_corpus(work / "small.txt", 1)
    large = make_corpus(work / "large.txt", args.size_mb)
    base = run(small, work / "run-small", work / "cache-small", args.steps, extra)
    rows = [("1 MiB corpus", base)]
    for label in ("first (tokenising)", "second (cached)"):
        rows.append((f"{args.size_mb:g} MiB, {label}", run(large, work / f"run-{len(rows)}", work / "cache-large",
                                                          args.steps, extra)))
    mib = 2**20
    print(f"corpus {large.stat().st_size / mib:.1f} MiB, {count(args.steps, 'step')}; growth is over the 1 MiB run")
    print(f"{'run':<32} {'first step s':>12} {'peak RSS MiB':>13} {'growth':>8} {'of it anon':>11} {'growth':>8} "
          f"{'tree PSS MiB':>13} {'growth':>8}")
    for label, r in rows:
        print(f"{label:<32} {r['first_step_s'] or float('nan'):>12.1f} {r['peak_rss'] / mib:>13.0f} "
              f"{(r['peak_rss'] - base['peak_rss']) / mib:>8.0f} {r['peak_anon'] / mib:>11.0f} "
              f"{(r['peak_anon'] - base['peak_anon']) / mib:>8.0f} {r['peak_tree_rss'] / mib:>13.0f} "
              f"{(r['peak_tree_rss'] - base['peak_tree_rss']) / mib:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The levers of the bundled teacher, measured one against another: python -m scripts.teacher_levers OUT_DIR

Pretrains one teacher per lever with train.pretrain_teacher, side by side (one process each, sharing a GPU when
there is one), from the same seed and corpus:

  baseline      the first bundled recipe: 4 layers x 256, a 6,000-entry WordPiece vocabulary, random embeddings
  whole-words   6 layers x 300, a 20,000-entry vocabulary that holds every word seen in the corpus
  navec         the same, its whole-word embeddings (and tied MLM output) started from navec's news vectors
  navec-small   4 layers x 300 with navec, for a cheaper pair

Writes OUT_DIR/<lever>/ (each a model folder with pretraining.json, its curve) and OUT_DIR/levers.json (every curve
and best figure), and names the lever with the best held-out masked-token accuracy among those whose pair fits
the bundled size budget. A lever still running at --deadline is stopped; its curve and best weights so far stay.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from core.formatting import OneLineParser
from core.paths import REPO_ROOT

LEVERS = {
    "baseline": ["--layers", "4", "--hidden", "256", "--heads", "4", "--ffn", "1024", "--vocab-size", "6000",
                 "--lr", "1e-3"],
    "whole-words": ["--layers", "6", "--hidden", "300", "--heads", "5", "--ffn", "1200", "--vocab-size", "20000",
                    "--min-frequency", "1", "--lr", "7e-4"],
    "navec": ["--layers", "6", "--hidden", "300", "--heads", "5", "--ffn", "1200", "--vocab-size", "20000",
              "--min-frequency", "1", "--lr", "7e-4", "--init-embeddings", "navec"],
    "navec-small": ["--layers", "4", "--hidden", "300", "--heads", "5", "--ffn", "1200", "--vocab-size", "20000",
                    "--min-frequency", "1", "--lr", "7e-4", "--init-embeddings", "navec"],
}


def command(lever: str, out: Path, args: argparse.Namespace) -> list[str]:
    extra = ["--navec-file", args.navec_file] if args.navec_file and "navec" in LEVERS[lever] else []
    extra += [*(["--corpus", args.corpus] if args.corpus else []),
              *(["--valid-corpus", args.valid_corpus] if args.valid_corpus else [])]
    return [sys.executable, "-m", "train.pretrain_teacher", *LEVERS[lever], *extra, "--steps", str(args.steps),
            "--batch-size", str(args.batch_size), "--eval-every", str(args.eval_every), "--seed", str(args.seed),
            "--output-dir", str(out / lever)]


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m scripts.teacher_levers", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--levers", default=",".join(LEVERS), help="comma-separated, from: " + ", ".join(LEVERS))
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--corpus", help="training lines (default: the bundled corpus)")
    p.add_argument("--valid-corpus", help="held-out lines (default: the bundled validation split)")
    p.add_argument("--navec-file", help="navec .tar to read instead of the one inside natasha")
    p.add_argument("--deadline", type=float, default=0, help="seconds after which running levers are stopped")
    p.add_argument("--threads", type=int, default=2, help="CPU threads per lever process")
    args = p.parse_args(argv)
    levers = [name.strip() for name in args.levers.split(",") if name.strip()]
    unknown = [name for name in levers if name not in LEVERS]
    if unknown or not levers:
        p.error(f"unknown lever(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(LEVERS)}.")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "TOKENIZERS_PARALLELISM": "false"}
    started, running = time.perf_counter(), {}
    for lever in levers:
        log = open(args.out_dir / f"{lever}.log", "w", encoding="utf-8")
        running[lever] = subprocess.Popen(command(lever, args.out_dir, args), cwd=REPO_ROOT, env=env, stdout=log,
                                          stderr=subprocess.STDOUT)
    stopped = []
    while any(proc.poll() is None for proc in running.values()):
        if args.deadline and time.perf_counter() - started > args.deadline:
            for lever, proc in running.items():
                if proc.poll() is None:
                    proc.terminate()
                    stopped.append(lever)
            break
        time.sleep(1)
    for proc in running.values():
        proc.wait()
    results = {}
    for lever in levers:
        record_path = args.out_dir / lever / "pretraining.json"
        record = json.loads(record_path.read_text()) if record_path.is_file() else {}
        results[lever] = {"exit_code": running[lever].returncode, "stopped_at_deadline": lever in stopped,
                          "best": record.get("best"), "log": record.get("log", []),
                          "vocab_entries": record.get("vocab_entries"), "train_tokens": record.get("train_tokens"),
                          "init_embeddings": record.get("init_embeddings"), "device": record.get("device"),
                          "gpu": record.get("gpu"), "args": record.get("args")}
    scored = {k: v["best"]["valid_mlm_acc"] for k, v in results.items() if v["best"]}
    best = max(scored, key=scored.get) if scored else None
    summary = {"levers": results, "best_lever": best, "wall_s": round(time.perf_counter() - started, 1)}
    (args.out_dir / "levers.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    for lever, result in results.items():
        figure = f"{result['best']['valid_mlm_acc']:.3f} at step {result['best']['step']}" if result["best"] else "none"
        print(f"{lever:12s} best held-out masked-token accuracy {figure}"
              f"{' (stopped at the deadline)' if lever in stopped else ''}")
    print(f"best: {best}")
    return 0 if best else 1


if __name__ == "__main__":
    sys.exit(main())

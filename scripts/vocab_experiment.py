"""The reduced-vocabulary experiment of Kolesnikova et al. (2022), on the lab's bundled teacher.

python -m scripts.vocab_experiment [--steps 1500] [--plot-only]

Distils the bundled teacher five ways at equal steps with python -m train.distill: a 2-layer student with the
teacher's vocabulary, and 2-layer students with a smaller vocabulary and width aligned by the authors' `match` and
`reduce`, and by the lab's variants `match-pieces` and `reduce-shared`.
Writes one table (parameters, size, CPU latency, held-out MLM accuracy, top-1 agreement with the teacher) to
assets/results/vocab_experiment.json and a compression-against-quality plot to assets/results/vocab_experiment.png.
Finished runs are reused, so the measurements can be repeated without training again.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from core.bench import BenchConfig, Row, iter_benchmark
from core.bench.machine import machine_dict
from core.models import zoo
from core.paths import ASSETS, runs_root
from core.runs.store import RunPaths, read_metrics

RESULTS = ASSETS / "results"
ALIGNMENT_NAMES = ("match", "reduce", "match-pieces", "reduce-shared")
VARIANTS = {
    "same vocabulary": [],
    "reduced, match": ["--align", "match"],
    "reduced, reduce": ["--align", "reduce"],
    "reduced, match-pieces": ["--align", "match-pieces"],
    "reduced, reduce-shared": ["--align", "reduce-shared"],
}


def distil(name: str, extra: list[str], args) -> Path:
    run_dir = Path(args.runs) / ("vocab-" + name.replace(", ", "-").replace(" ", "-"))
    if (RunPaths(run_dir).final / "config.json").is_file():
        return run_dir
    reduced = ["--student-vocab-size", str(args.vocab_size), "--student-hidden", str(args.hidden)] if extra else []
    command = [sys.executable, "-m", "train.distill", "--teacher", "bundled-teacher", "--student-layers", "2",
               "--max-steps", str(args.steps), "--batch-size", "32", "--eval-every", str(args.steps),
               "--log-every", "50", "--eval-lines", "1000", "--save-every", str(args.steps), "--seed", "0",
               "--output-dir", str(run_dir), *reduced, *extra]
    print("$", " ".join(command), file=sys.stderr)
    subprocess.run(command, check=True)
    return run_dir


def latency(paths: dict[str, str]) -> dict[str, float]:
    """Median CPU latency of one 128-token sample through each encoder (the card's method, shorter inputs)."""
    config = BenchConfig(models=list(paths.values()), device="cpu", batch_sizes=[1], seq_len=128,
                         modes=["reference"], runs=30)
    rows = [r for r in iter_benchmark(config) if isinstance(r, Row)]
    by_path = {r.model: r.latency_s for r in rows}
    return {name: by_path[path] for name, path in paths.items()}


def plot(rows: list[dict], path: Path | None = None):
    """Parameters against top-1 agreement, one labelled point per model (the teacher at 100%); returns the figure.

    Labels of points in the right half of the axes sit to their left, and of points in the top band below them,
    so every label stays inside the figure.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    right = max(r["params"] for r in rows) / 1e6 * 1.15
    ax.set_xlim(0, right)
    ax.set_ylim(0, 1.05)
    for i, row in enumerate(rows):
        x, y = row["params"] / 1e6, row["agreement"]
        ax.scatter(x, y, s=70)
        label = f"{row['student']}: {row['params'] / 1e6:.2f}M, {row['cpu_latency_ms']:.1f} ms"
        to_left, near_top = x > right / 2, y > 0.9
        ax.annotate(label, (x, y), textcoords="offset points", fontsize=8.5, ha="right" if to_left else "left",
                    va="top" if near_top else "bottom",
                    xytext=(-8 if to_left else 8, -8 if near_top else 4 - 14 * (i % 2)))  # close points part
    ax.set_xlabel("parameters (millions)")
    ax.set_ylabel("top-1 agreement with the teacher")
    ax.set_title("Compression against quality (bundled teacher, equal steps)")
    ax.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0))
    ax.grid(alpha=0.3)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--vocab-size", type=int, default=2000)
    p.add_argument("--hidden", type=int, default=150, help="reduced students' width: half the bundled teacher's 300, "
                   "divisible by its 5 attention heads (default 150)")
    p.add_argument("--runs", default=str(runs_root()))
    p.add_argument("--plot-only", action="store_true", help="redraw the png from the saved JSON, without training")
    p.add_argument("--alignments", default=",".join(a for a in ALIGNMENT_NAMES),
                   help="which reduced-vocabulary students to train, comma-separated (default: all four)")
    args = p.parse_args()
    if args.plot_only:
        saved = json.loads((RESULTS / "vocab_experiment.json").read_text(encoding="utf-8"))
        plot(saved["rows"], RESULTS / "vocab_experiment.png")
        return
    started = time.time()
    wanted = {"same vocabulary"} | {f"reduced, {a}" for a in args.alignments.replace(" ", "").split(",") if a}
    unknown = sorted(wanted - set(VARIANTS))
    if unknown:
        p.error(f"unknown alignment {unknown[0].removeprefix('reduced, ')}; choose among {', '.join(ALIGNMENT_NAMES)}")
    dirs = {name: distil(name, extra, args) for name, extra in VARIANTS.items() if name in wanted}
    paths = {"teacher": str(zoo.BUNDLED_DIR / "teacher"), **{n: str(RunPaths(d).final) for n, d in dirs.items()}}
    seconds = latency(paths)
    rows = []
    for name, path in paths.items():
        loaded = zoo.load(path)
        summary = zoo.model_summary(loaded.model)
        final = read_metrics(dirs[name])[-1] if name in dirs else {}
        rows.append({"student": name, "params": summary["params"], "size_mb": summary["size_mb"],
                     "vocab": loaded.tokenizer.vocab_size, "cpu_latency_ms": round(seconds[name] * 1000, 2),
                     "mlm_acc": final.get("eval_mlm_acc", final.get("eval_teacher_mlm_acc")),
                     "agreement": final.get("eval_agreement", 1.0)})
    teacher_acc = read_metrics(dirs["same vocabulary"])[-1]["eval_teacher_mlm_acc"]
    rows[0]["mlm_acc"] = teacher_acc
    summary = " ".join(
        f"{r['student']}: {r['params'] / 1e6:.2f}M parameters, {r['cpu_latency_ms']:.1f} ms, "
        f"accuracy {r['mlm_acc']:.1%}, agreement {r['agreement']:.1%}." for r in rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = {"rows": rows, "steps": args.steps, "student_vocab_size": args.vocab_size, "student_hidden": args.hidden,
            "machine": machine_dict("cpu"), "summary": summary, "seconds": round(time.time() - started)}
    (RESULTS / "vocab_experiment.json").write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
    plot(rows, RESULTS / "vocab_experiment.png")
    for row in rows:
        print(json.dumps(row, ensure_ascii=False))


if __name__ == "__main__":
    main()

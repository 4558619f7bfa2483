"""Teachers pretrained with different levers, side by side: their learning curves and what each knows.

python -m scripts.compare_teachers NAME=FOLDER [NAME=FOLDER ...] [--out assets/results/teacher_levers]

Each FOLDER is a train.pretrain_teacher output (its best weights and pretraining.json). Writes OUT.json (per teacher:
its options, corpus size, the held-out masked-token accuracy at each evaluation, its best, and, measured on its best
weights, top-1/top-5 hits on the fill-in and everyday probes and topic purity) and OUT.png (the curves). Held-out
accuracy is over each teacher's own tokens, so it compares teachers of one vocabulary; the probe figures compare any.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from core.compare import quality  # noqa: E402
from core.models import zoo  # noqa: E402
from core.paths import ASSETS  # noqa: E402
from scripts.progress import stage  # noqa: E402

RECIPE_KEYS = ("layers", "hidden", "vocab_size", "init_embeddings", "freeze_word_vectors", "steps", "batch_size", "lr",
               "corpus")


def measure(name: str, folder: Path) -> dict:
    """One teacher's record: recipe, curve, best, and its probe and topic figures."""
    record = json.loads((folder / "pretraining.json").read_text(encoding="utf-8"))
    stage(f"{name}: probes and topics ...")
    loaded = zoo.load(str(folder))
    return {"folder": str(folder), "recipe": {k: record["args"].get(k) for k in RECIPE_KEYS},
            "train_tokens": record["train_tokens"], "device": record.get("device"),
            "curve": [[r["step"], r["valid_mlm_acc"], r["elapsed_s"]] for r in record["log"]],
            "best": record["best"], **quality.probe_figures(loaded)}


def plot(results: dict, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=100)
    for name, r in results.items():
        ax.plot([c[0] for c in r["curve"]], [c[1] for c in r["curve"]], marker="o", ms=2,
                label=f"{name} (fill-in top-5 {r['fill_in_top5']:.0%})")
    ax.set_xlabel("step (batch 64)")
    ax.set_ylabel("held-out masked-token accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("teachers", nargs="+", help="NAME=FOLDER")
    p.add_argument("--out", type=Path, default=ASSETS / "results" / "teacher_levers")
    args = p.parse_args(argv)
    pairs = [t.split("=", 1) for t in args.teachers]
    bad = [t for t, pair in zip(args.teachers, pairs) if len(pair) != 2 or not (Path(pair[1]) / "pretraining.json")
           .is_file()]
    if bad:
        print(f"error: {bad[0]} is not NAME=FOLDER with FOLDER a pretrain_teacher output (pretraining.json).",
              file=sys.stderr)
        return 2
    results = {name: measure(name, Path(folder)) for name, folder in pairs}
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    plot(results, args.out.with_suffix(".png"))
    for name, r in results.items():
        print(f"{name}: best held-out {r['best']['valid_mlm_acc']:.1%} at step {r['best']['step']}; fill-in top-1/5 "
              f"{r['fill_in_top1']:.1%}/{r['fill_in_top5']:.1%}; everyday {r['everyday_top1']:.1%}/"
              f"{r['everyday_top5']:.1%}; topic purity {r['topic_purity']:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Learning curves of the bundled pair, from the records kept beside the models.

python -m scripts.plot_bundled_curves [--out assets/results/bundled_curves.png]

Left: the teacher's held-out masked-token accuracy during pretraining, and the topic purity of the probe sentences'
neighbourhoods where it was recorded (models/teacher/pretraining.json). Right: the
student's held-out top-1 agreement with the teacher and its own masked-token accuracy during distillation
(models/student/distill_metrics.jsonl).
"""
from __future__ import annotations

import argparse
import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator, PercentFormatter, StrMethodFormatter  # noqa: E402

from core.models.zoo import BUNDLED_DIR  # noqa: E402
from core.paths import ASSETS  # noqa: E402
from core.runs.store import read_metrics  # noqa: E402
from scripts.progress import stage  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(ASSETS / "results" / "bundled_curves.png"))
    args = p.parse_args(argv)
    records = (BUNDLED_DIR / "teacher" / "pretraining.json", BUNDLED_DIR / "student" / "distill_metrics.jsonl")
    missing = [str(path) for path in records if not path.is_file()]
    if missing:
        print(f"error: {' and '.join(missing)} not found; the bundled pair's records are written when it is built "
              "(see assets/README.md).", file=sys.stderr)
        return 2
    stage(f"reading {records[0]} and {records[1]} ...")
    teacher = json.loads(records[0].read_text(encoding="utf-8"))["log"]
    student = [r for r in read_metrics(BUNDLED_DIR / "student", "distill_metrics.jsonl") if "eval_agreement" in r]
    stage("drawing ...")
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4), dpi=100)
    left.plot([r["step"] for r in teacher], [r["valid_mlm_acc"] for r in teacher], marker="o", ms=3,
              label="held-out masked-token accuracy")
    purity = [r for r in teacher if "topic_purity" in r]  # recorded by teachers pretrained since it was added
    if purity:
        left.plot([r["step"] for r in purity], [r["topic_purity"] for r in purity], marker="o", ms=3,
                  label="topic purity of probe neighbourhoods")
        left.legend(fontsize=8, loc="center right")
    else:
        left.set_ylabel("held-out masked-token accuracy")
    left.set_title("teacher pretraining (4 layers)")
    right.plot([r["step"] for r in student], [r["eval_agreement"] for r in student], marker="o", ms=3,
               label="top-1 agreement with the teacher")
    right.plot([r["step"] for r in student], [r["eval_mlm_acc"] for r in student], marker="o", ms=3,
               label="student masked-token accuracy")
    right.plot([r["step"] for r in student], [r["eval_teacher_mlm_acc"] for r in student], ls="--", color="grey",
               label="teacher masked-token accuracy")
    right.set_title("student distillation (2 layers)")
    right.legend(fontsize=8, loc="center right")
    for ax in (left, right):
        ax.set_xlabel("step")
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        ax.xaxis.set_major_locator(MaxNLocator(5, integer=True))  # "10,000" and its neighbours never overlap
        ax.xaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

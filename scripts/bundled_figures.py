"""The bundled pair's quality figures, and the examples the About tab's lesson quotes, measured once.

python -m scripts.bundled_figures [--out assets/results/bundled_quality.json]

Writes, for the models in assets/models: the teacher's and the student's held-out masked-token accuracy (validation
split, 15% masked with seed 1234) and their top-1 agreement, with the agreement of a fresh student made from the
teacher as the bundled one was (its layers copied, before any step) on the same positions; top-1 and top-5 hits on
the fill-in and everyday probe sets; topic purity of the probe sentences' neighbourhoods (10 nearest, cosine, last
layer, mean pooling) and its chance level; the probe summary's agreement; the distillation's agreement before its
first step and at its end on the run's own evaluation lines; and the lesson's example sentence (a fill-in probe whose
expected word both models name first). tests/test_bundled.py recomputes each figure and compares it with this file;
the About tab reads the file to state what a class will see.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.compare import quality
from core.compare.predict import predict_masks, probe_summary
from core.compare.probes import fill_mask_probes
from core.compare.sentences import probe_set
from core.distill.data import read_corpus
from core.distill.evaluate import masked_batches, mlm_figures
from core.models import zoo
from core.models.student import StudentSpec, make_student
from core.paths import ASSETS
from core.runs.store import read_metrics
from scripts.progress import stage

OUT = ASSETS / "results" / "bundled_quality.json"


def lesson_example(teacher, student) -> dict:
    """The shortest fill-in probe whose expected word is the first guess of both models, with their top 5."""
    probes = sorted(fill_mask_probes(), key=lambda p: len(p.sentence))
    sentences = [p.sentence for p in probes]
    first = [r.masks[0].tokens for r in predict_masks(teacher, sentences, top_k=5)]
    second = [r.masks[0].tokens for r in predict_masks(student, sentences, top_k=5)]
    for probe, t, s in zip(probes, first, second):
        if t[0] == s[0] == probe.expected:
            return {"sentence": probe.sentence, "expected": probe.expected, "teacher_top5": t, "student_top5": s}
    raise ValueError("No fill-in probe has its expected word as both models' first guess.")


def distillation_curve() -> dict:
    """Agreement with the teacher before the student's first step and at the last evaluation of its run."""
    rows = [r for r in read_metrics(zoo.BUNDLED_DIR / "student", "distill_metrics.jsonl") if "eval_agreement" in r]
    if not rows:
        return {}
    return {"first_step": rows[0]["step"], "first_agreement": rows[0]["eval_agreement"],
            "last_step": rows[-1]["step"], "last_agreement": rows[-1]["eval_agreement"]}


def initial_student(teacher, student):
    """The bundled student's starting point: a student of its type and depth with the teacher's layers it names in
    config.json (init_layers) copied in, before any distillation step."""
    config = student.model.config
    spec = StudentSpec(num_layers=config.n_layers, init_layers=config.init_layers, model_type=config.model_type)
    return make_student(teacher.model, spec).eval()


def figures() -> dict:
    teacher, student = zoo.load("bundled-teacher"), zoo.load("bundled-student")
    stage("held-out masked positions ...")
    batches = masked_batches(read_corpus(ASSETS / "corpus" / "valid.txt"), teacher.tokenizer, max_length=128,
                             seed=1234)
    heldout = mlm_figures(student.model, batches, teacher=teacher.model)
    out = {"teacher_layers": teacher.model.config.num_hidden_layers, "student_layers": student.model.config.n_layers,
           "valid_masked_positions": heldout["masked_positions"], "teacher_mlm_acc": heldout["teacher_mlm_acc"],
           "student_mlm_acc": heldout["mlm_acc"], "agreement": heldout["agreement"],
           "initial_agreement": mlm_figures(initial_student(teacher, student), batches,
                                            teacher=teacher.model)["agreement"]}
    for name, loaded in (("teacher", teacher), ("student", student)):
        stage(f"{name}: probe sets and topic purity ...")
        out.update({f"{name}_{key}": value for key, value in quality.probe_figures(loaded).items()})
    out["chance_topic_purity"] = quality.chance_purity(probe_set().labels)
    summary = probe_summary([teacher, student])
    out["probe_agreement"] = summary.pair_of(1).mean("top1")
    out["distillation"] = distillation_curve()
    out["lesson_example"] = lesson_example(teacher, student)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    try:
        result = figures()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())

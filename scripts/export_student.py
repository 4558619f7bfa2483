"""Copy a finished run's student into a model folder to ship, in float16, with the run's config and metrics beside it.

python -m scripts.export_student RUN_DIR OUT_DIR

OUT_DIR is new, empty, or an earlier export (a folder with distill_config.json), which is replaced whole.
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from core.formatting import OneLineParser
from core.paths import check_output_folder
from core.runs import RunPaths
from core.saving import save_model, save_tokenizer

EXPORT_MARK = "distill_config.json"  # what an earlier export holds


def check_paths(run_dir: Path, out_dir: Path) -> str | None:
    """The first reason the export cannot start, as a sentence; None when it can."""
    paths = RunPaths(run_dir)
    if not run_dir.exists():
        return f"'{run_dir}' does not exist; give a run's folder (runs/<id>)."
    if not run_dir.is_dir():
        return f"'{run_dir}' is not a folder; give a run's folder (runs/<id>)."
    if not paths.config.is_file():
        return (f"'{run_dir}' is not a distillation run's folder (it has no config.json); give a run's folder "
                "(runs/<id>).")
    if not (paths.final / "config.json").is_file():
        return f"'{run_dir}' has no finished student (final/); finish the run first (python -m train.distill --resume)."
    try:
        check_output_folder(out_dir, f"The output folder '{out_dir}'", "an earlier export", "replace it",
                            marks=(EXPORT_MARK,))
    except ValueError as error:
        return str(error)
    return None


def export(run_dir: Path, out_dir: Path) -> None:
    """Write the student in float16 with its tokenizer, config and metrics beside `out_dir`, then swap it in whole."""
    paths = RunPaths(run_dir)
    aside = out_dir.with_name(f".{out_dir.name}.{os.getpid()}.partial")
    shutil.rmtree(aside, ignore_errors=True)
    aside.mkdir(parents=True)
    try:
        model = AutoModelForMaskedLM.from_pretrained(paths.final, dtype=torch.float32).to(torch.float16)
        save_model(model, aside)
        save_tokenizer(AutoTokenizer.from_pretrained(paths.final), aside)
        shutil.copyfile(paths.config, aside / EXPORT_MARK)
        shutil.copyfile(paths.metrics, aside / "distill_metrics.jsonl")
        shutil.rmtree(out_dir, ignore_errors=True)
        os.replace(aside, out_dir)
    finally:
        shutil.rmtree(aside, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m scripts.export_student", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    args = p.parse_args(argv)
    problem = check_paths(args.run_dir, args.out_dir)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    export(args.run_dir, args.out_dir)
    print(f"exported {RunPaths(args.run_dir).final} to {args.out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Copy a finished run's student into a model folder to ship, in float16, with the run's config and metrics beside it.

python -m scripts.export_student RUN OUT_DIR

RUN is a run's folder or its run id under the runs folder.

OUT_DIR is new, empty, or an earlier export (a folder with distill_config.json), which is replaced whole.
"""
from __future__ import annotations

if __name__ == "__main__":  # read the flags (train.cli) before the imports below load torch: see run_command
    from train.cli import export_student_command

    export_student_command()

import argparse
import os
import shutil
import sys
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from core.paths import check_output_folder
from core.runs import RunPaths
from core.runs.store import find_run_dir
from core.saving import save_model, save_tokenizer
from train.cli import export_student_parser
from train.export import check_finished_run

EXPORT_MARK = "distill_config.json"  # what an earlier export holds


def finished_run(run: str, out_dir: Path) -> Path:
    """The folder of the finished run named by `run` (a folder or a run id). ValueError, one sentence, when it is not
    a run, has no finished student, or `out_dir` is neither new, empty nor an earlier export."""
    run_dir = find_run_dir(run)
    check_finished_run(run_dir, run)  # in the words of train.export, which refuses an unfinished run as this does
    check_output_folder(out_dir, "The output folder", "an earlier export", "replace it",
                        marks=(EXPORT_MARK,))
    return run_dir


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
    """The command line in this process: argparse exits 2 on a malformed flag, then run() returns the exit code."""
    return run(export_student_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Export the run the flags name; exit code 2 and one line for what a person can fix."""
    try:
        run_dir = finished_run(args.run, args.out_dir)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    export(run_dir, args.out_dir)
    print(f"exported {RunPaths(run_dir).final} to {args.out_dir}")
    return 0

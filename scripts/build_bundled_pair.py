"""Rebuild the bundled teacher and student from the repository in one command, from seed 0.

python -m scripts.build_bundled_pair [--work-dir runs/bundled-pair] [--into DIR] [--tokenizer DIR] [--print]

1. The teacher: train.pretrain_teacher on assets/corpus, its token embeddings started from the navec word vectors
   (`pip install natasha`), MLM plus the nearby-lines contrastive term (TEACHER_RECIPE).
2. The student: train.distill from that teacher, half its layers, with the recipe of STUDENT_RECIPE.
3. With --into DIR: the teacher's model folder copied to DIR/teacher and the student exported in float16 to
   DIR/student (scripts.export_student); `--into assets/models` replaces the shipped pair.

Each stage writes checkpoints under --work-dir and is resumed when the command runs again, so a stopped machine
loses at most one checkpoint interval. The WordPiece trainer breaks ties between equally frequent merges in no fixed
order; to rebuild the shipped weights exactly, pass the shipped vocabulary: --tokenizer assets/models/teacher.
--print shows the commands without running them. Threads: set OMP_NUM_THREADS as for any PyTorch program.
"""
from __future__ import annotations

import argparse
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from core.formatting import OneLineParser
from core.paths import ASSETS

TEACHER_RECIPE = ["--init-embeddings", "navec", "--layers", "4", "--hidden", "300", "--heads", "5", "--ffn", "1200",
                  "--vocab-size", "30000", "--min-frequency", "1", "--steps", "15000", "--batch-size", "64",
                  "--lr", "1e-3", "--eval-every", "500", "--seed", "0", "--contrastive-weight", "1",
                  "--contrastive-window", "16"]
STUDENT_RECIPE = ["--corpus", "bundled", "--student-layers", "2", "--student-type", "distilbert", "--temperature", "1",
                  "--alpha-kl", "5", "--alpha-mlm", "0.5", "--alpha-cos", "1", "--kl-masked-only", "--batch-size", "32",
                  "--lr", "5e-4", "--max-steps", "9000", "--eval-every", "250", "--eval-lines", "1000",
                  "--save-every", "250", "--seed", "0"]
TEACHER_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "pretraining.json")


def teacher_command(work: Path, tokenizer: Path | None) -> list[str]:
    """Pretrain (or resume) the teacher in work/teacher."""
    return [sys.executable, "-m", "train.pretrain_teacher", "--output-dir", str(work / "teacher"), *TEACHER_RECIPE,
            *(["--tokenizer", str(tokenizer)] if tokenizer else []), "--resume"]


def student_command(work: Path) -> list[str] | None:
    """Distil (or resume) the student in work/student; None when it has finished."""
    run = work / "student"
    if (run / "final" / "config.json").is_file():
        return None
    if (run / "config.json").is_file():
        return [sys.executable, "-m", "train.distill", "--resume", str(run)]
    return [sys.executable, "-m", "train.distill", "--teacher", str(work / "teacher"), *STUDENT_RECIPE,
            "--output-dir", str(run)]


def install(work: Path, into: Path) -> None:
    """The teacher's files to into/teacher and the student, in float16, to into/student."""
    (into / "teacher").mkdir(parents=True, exist_ok=True)
    for name in TEACHER_FILES:
        shutil.copyfile(work / "teacher" / name, into / "teacher" / name)
    subprocess.run([sys.executable, "-m", "scripts.export_student", str(work / "student"), str(into / "student")],
                   check=True)


def run_stage(command: list[str]) -> bool:
    print("running:", shlex.join(["python", *command[1:]]), flush=True)
    code = subprocess.run(command).returncode
    if code in (128 + signal.SIGINT, 128 + signal.SIGTERM):  # the trainer saved a checkpoint and stopped
        print("stopped; run this command again to resume.", file=sys.stderr)
    elif code:
        print("error: that stage failed; fix what it said and run this command again to resume.", file=sys.stderr)
    return code == 0


def main(argv: list[str] | None = None) -> int:
    p = OneLineParser(prog="python -m scripts.build_bundled_pair", description=__doc__,
                      formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work-dir", type=Path, default=Path("runs/bundled-pair"), help="the runs' folders")
    p.add_argument("--into", type=Path, help=f"where to put the finished pair (the shipped one: {ASSETS / 'models'})")
    p.add_argument("--tokenizer", type=Path, help="a teacher folder whose vocabulary to reuse")
    p.add_argument("--print", action="store_true", help="show the commands and run nothing")
    args = p.parse_args(argv)
    if args.print:
        for command in (teacher_command(args.work_dir, args.tokenizer), student_command(args.work_dir)):
            if command:
                print(shlex.join(["python", *command[1:]]))
        return 0
    if not run_stage(teacher_command(args.work_dir, args.tokenizer)):
        return 1
    student = student_command(args.work_dir)
    if student and not run_stage(student):
        return 1
    if args.into:
        install(args.work_dir, args.into)
        print(f"the pair is in {args.into}/teacher and {args.into}/student")
    return 0


if __name__ == "__main__":
    sys.exit(main())

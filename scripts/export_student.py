"""Copy a finished run's student into a model folder to ship, in float16, with the run's config and metrics beside it.

python -m scripts.export_student RUN_DIR OUT_DIR
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from core.models.tokenizer import save_tokenizer
from core.runs import RunPaths


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("run_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    args = p.parse_args()
    paths = RunPaths(args.run_dir)
    final = paths.final
    if not (final / "config.json").is_file():
        raise SystemExit(f"error: {args.run_dir} has no finished student (final/).")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    AutoModelForMaskedLM.from_pretrained(final, dtype=torch.float32).to(torch.float16).save_pretrained(args.out_dir)
    save_tokenizer(AutoTokenizer.from_pretrained(final), args.out_dir)
    shutil.copyfile(paths.config, args.out_dir / "distill_config.json")
    shutil.copyfile(paths.metrics, args.out_dir / "distill_metrics.jsonl")
    print(f"exported {final} to {args.out_dir}")


if __name__ == "__main__":
    main()

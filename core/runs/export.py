"""A run's records and student as files to take away: metrics as CSV, the student as a zip of a model folder."""
from __future__ import annotations

import csv
import zipfile
from pathlib import Path

from core.runs.store import RunPaths, missing_message, read_json, read_metrics, run_model_dir


def metrics_columns(records: list[dict]) -> list[str]:
    """Every field of the records, "step" first, then in the order they first appear."""
    columns = ["step"]
    for record in records:
        columns += [key for key in record if key not in columns]
    return columns


# core.runs.store.missing_message's sentences for a run without metrics
NO_METRICS = {
    "waiting": "Run '{name}' has logged no metrics yet: wait for its first evaluation.",
    "damaged": "Run '{name}' has no metrics: {reason}",
    "unstarted": "Run '{name}' {ended} before it started, so it has no metrics; start a new run.",
    "ended": "Run '{name}' {ended} before its first evaluation, so it has no metrics; resume it or start a new run.",
}


def no_metrics_message(run_dir: Path) -> str:
    """Why a run has logged no metrics, and what to do (core.runs.store.missing_message): wait for a queued or running
    run's step-0 evaluation; resume a stopped or failed one, or start it again when it never started."""
    return missing_message(run_dir, NO_METRICS)


def write_metrics_csv(run_dir: Path, folder: Path) -> Path:
    """<run id>-metrics.csv in `folder`: one row a logged step (step 0's evaluation included), one column a field
    of any row; a field a row lacks (step 0 has no loss) is left empty. Raises ValueError when nothing is logged."""
    run_dir = Path(run_dir)
    records = read_metrics(run_dir)
    if not records:
        raise ValueError(no_metrics_message(run_dir))
    path = Path(folder) / f"{run_dir.name}-metrics.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=metrics_columns(records), restval="")
        writer.writeheader()
        writer.writerows(records)
    return path


def write_student_zip(run_dir: Path, folder: Path) -> Path:
    """<run id>-<version>.zip in `folder`, holding one folder of the same name: the run's current student (final/
    when finished, else its newest checkpoint exported) as a Hugging Face model folder with its tokenizer, which
    AutoModelForMaskedLM and AutoTokenizer load once unzipped. Raises ValueError when no student is saved yet."""
    run_dir = Path(run_dir)
    model_dir = run_model_dir(run_dir)  # ValueError before the first checkpoint
    if model_dir == RunPaths(run_dir).final:
        version = "final"
    else:  # the snapshot says which checkpoint it holds
        version = Path((read_json(model_dir / "source.json", {}) or {}).get("checkpoint", "snapshot")).stem
    name = f"{run_dir.name}-{version}"
    path = Path(folder) / f"{name}.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for item in sorted(model_dir.iterdir()):
            if item.is_file() and item.name != "source.json":  # source.json only tells which checkpoint was exported
                # weights barely compress: stored as they are, a 500 MB student zips in seconds, not a minute
                kind = zipfile.ZIP_STORED if item.suffix in (".safetensors", ".bin") else zipfile.ZIP_DEFLATED
                archive.write(item, f"{name}/{item.name}", compress_type=kind)
    return path


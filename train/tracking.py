"""Experiment tracking through Accelerate's trackers: `--report-to tensorboard,trackio,wandb,mlflow` (or none).

Every metrics row a run appends to metrics.jsonl goes to the trackers too (its numbers, at its step), and the run's
options are logged once per session as hyperparameters. Only the main process logs (Accelerator.init_trackers and
Accelerator.log are main-process only). Where each tracker writes:

- tensorboard: event files in RUN_DIR/tracking/rudistil-lab/ (the hyperparameters in a timestamped folder beside
  them); `tensorboard --logdir RUN_DIR/tracking` or `--logdir runs` for every run. A resumed run purges the events
  logged after its checkpoint, so the curves equal metrics.jsonl.
- trackio: its SQLite database in RUN_DIR/tracking/trackio/, unless TRACKIO_DIR is set (one folder for many runs);
  `TRACKIO_DIR=RUN_DIR/tracking/trackio trackio show --project rudistil-lab`. Offline.
- wandb, mlflow: their own settings (WANDB_MODE, WANDB_PROJECT, MLFLOW_TRACKING_URI, ...); wandb keeps its local
  files under RUN_DIR/tracking/. The run's id is the run name.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from accelerate import Accelerator
from accelerate.utils import is_mlflow_available, is_tensorboard_available, is_trackio_available, is_wandb_available

TRACKING_PROJECT = "rudistil-lab"  # the project name every tracker files runs under
TRACKING_FOLDER = "tracking"  # in the run directory

# name (as Accelerate's log_with takes it) -> (the pip package, Accelerate's own test that it is installed)
TRACKERS: dict[str, tuple[str, Callable[[], bool]]] = {
    "tensorboard": ("tensorboard", is_tensorboard_available),
    "trackio": ("trackio", is_trackio_available),
    "wandb": ("wandb", is_wandb_available),
    "mlflow": ("mlflow", is_mlflow_available),
}


def tracker_names(value: str | Iterable[str] | None) -> list[str]:
    """'tensorboard,wandb' (a flag) or a list (a config file) -> ['tensorboard', 'wandb']; 'none', '' or None -> [].

    Raises ValueError naming an unknown tracker."""
    if value is None:
        return []
    items = value.split(",") if isinstance(value, str) else list(value)
    names = []
    for item in (str(i).strip().lower() for i in items):
        if item in ("", "none"):
            continue
        if item not in TRACKERS:
            raise ValueError(f"--report-to: unknown tracker '{item}'; choose from {', '.join(TRACKERS)} or none "
                             "(several separated by commas).")
        if item not in names:
            names.append(item)
    return names


def check_installed(names: Iterable[str]) -> None:
    """Raise ValueError, naming the package to install, for the first tracker whose package is missing (Accelerate
    itself would only skip it silently)."""
    for name in names:
        package, available = TRACKERS[name]
        if not available():
            raise ValueError(f"--report-to {name} needs the {package} package: pip install {package}")


def tracking_dir(run_dir: Path) -> Path:
    return Path(run_dir) / TRACKING_FOLDER


def hyperparameters(options: dict) -> dict[str, int | float | str | bool]:
    """A run's options as trackers take hyperparameters: numbers, strings and booleans kept; lists joined with
    commas ([0.9, 0.98] -> '0.9,0.98'); None -> 'none'; nested mappings flattened to 'outer.inner'."""
    flat = {}
    for key, value in options.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in hyperparameters(value).items()})
        elif isinstance(value, (list, tuple)):
            flat[key] = ",".join(str(v) for v in value)
        elif value is None:
            flat[key] = "none"
        elif isinstance(value, (bool, int, float, str)):
            flat[key] = value
        else:
            flat[key] = str(value)
    return flat


def numeric_values(record: dict) -> dict[str, float | int]:
    """The numbers of a metrics row other than its step (booleans and text left out)."""
    return {k: v for k, v in record.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def start_tracking(accelerator: Accelerator, options: dict, run_dir: Path, step: int, resumed: bool) -> None:
    """Start the trackers of `accelerator.log_with` (see make_accelerator) for a session that begins at `step`, and
    log `options` (the run's config, flat names) as hyperparameters. Does nothing without trackers."""
    if not accelerator.log_with or not accelerator.is_main_process:
        return
    folder, name = tracking_dir(run_dir), Path(run_dir).name
    folder.mkdir(parents=True, exist_ok=True)
    names = {str(t) for t in accelerator.log_with}
    if "trackio" in names:  # read when trackio is first imported, by Accelerate's tracker
        os.environ.setdefault("TRACKIO_DIR", str(folder / "trackio"))
    init_kwargs = {
        # the events logged after the checkpoint by the session that ended are hidden, as metrics.jsonl drops them
        "tensorboard": {"purge_step": step + 1} if resumed else {},
        "trackio": {"name": name, "resume": "allow" if resumed else "never"},
        "wandb": {"name": name, "dir": str(folder)},
        "mlflow": {"run_name": name},
    }
    accelerator.init_trackers(TRACKING_PROJECT, config=hyperparameters(options),
                              init_kwargs={k: v for k, v in init_kwargs.items() if k in names})


def log_metrics(accelerator: Accelerator, record: dict) -> None:
    """Send a metrics row's numbers to the trackers at its step (main process; nothing without trackers)."""
    if accelerator.trackers:
        accelerator.log(numeric_values(record), step=record["step"])

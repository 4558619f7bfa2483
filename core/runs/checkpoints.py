"""Checkpoints that survive a kill -9 at any moment: written to a temporary file, flushed, then renamed.

A checkpoint is one file, checkpoints/step-000123.pt, holding the student's weights, the optimizer, the scheduler,
every process's random-number state, the data position and the config: all a resumed run needs.
"""
from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import torch

NAME = re.compile(r"^step-(\d{6,})\.pt$")


def atomic_write(path: Path, write) -> None:
    """Call write(file_object) on a temporary file beside `path`, then rename it over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)  # atomic on POSIX: readers see the old file or the new one, never half of one
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def checkpoint_paths(run_dir: Path) -> list[Path]:
    """The run's checkpoints, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if NAME.match(p.name)), key=lambda p: int(NAME.match(p.name)[1]))


def latest_checkpoint(run_dir: Path) -> Path | None:
    paths = checkpoint_paths(run_dir)
    return paths[-1] if paths else None


def save_checkpoint(run_dir: Path, step: int, state: dict, keep: int) -> Path:
    path = Path(run_dir) / "checkpoints" / f"step-{step:06d}.pt"
    atomic_write(path, lambda handle: torch.save(state, handle))
    for old in checkpoint_paths(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path) -> dict:
    # weights_only=False: the file holds RNG states and the config, written by this code in this run directory.
    return torch.load(path, map_location="cpu", weights_only=False)

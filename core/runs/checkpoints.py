"""Checkpoints that survive a kill -9 at any moment: written to a temporary file, flushed, then renamed.

A checkpoint is one file, checkpoints/step-000123.pt, holding the student's weights, the optimizer, the scheduler,
every process's random-number state, the data position and the config: all a resumed run needs.

A checkpoint can still be unusable (cut short by a full disk outside this code, emptied, overwritten): readers ask
newest_readable_checkpoint, which passes over such files, says why in one sentence each, and gives the newest one
that loads. A full disk while saving raises DiskFullError, which names the checkpoint the run keeps.
"""
from __future__ import annotations

import contextlib
import errno
import os
import pickle
import random
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

NAME = re.compile(r"^step-(\d{6,})\.pt$")
TEMP_NAME = re.compile(r"^\.(.+)\.tmp-(\d+)$")  # atomic_write's temporary files: .<name>.tmp-<pid of the writer>
SET_ASIDE_SUFFIX = ".unreadable"  # an unreadable checkpoint a resume passed over: step-000012.pt.unreadable
MODEL_KEYS = ("model",)  # what loading a run's student needs
RESUME_KEYS = ("model", "optimizer", "scheduler", "step", "epoch", "rng")  # what a resume needs
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
PICKLE_OVERHEAD_BYTES = 1 << 20  # a checkpoint's pickled structure and zip records beside its tensors, at most


class DiskFullError(OSError):
    """A checkpoint could not be written for want of disk space; str() is one sentence naming the checkpoint the run
    keeps. errno is ENOSPC."""

    def __init__(self, message: str):
        super().__init__(message)
        self.errno = errno.ENOSPC


def atomic_write(path: Path, write) -> None:
    """Call write(file_object) on a temporary file beside `path`, then rename it over `path`. The temporary file is
    removed when writing fails; only a kill -9 leaves one (remove_stale_temp_files in core.runs.store clears it)."""
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
    """The run's checkpoints, oldest first (by the step in their names; whether they can be read is not checked)."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if NAME.match(p.name)), key=step_of)


def step_of(path: Path) -> int:
    """The step in a checkpoint's name: step-000120.pt -> 120."""
    return int(NAME.match(Path(path).name)[1])


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest checkpoint by name, readable or not; readers that load it use newest_readable_checkpoint."""
    paths = checkpoint_paths(run_dir)
    return paths[-1] if paths else None


@dataclass(frozen=True)
class Unreadable:
    """A checkpoint passed over, and why, in one sentence that names the file."""
    path: Path
    reason: str


@dataclass
class ReadableCheckpoint:
    """The newest checkpoint that can be used, and the newer ones that cannot.

    path: None when no checkpoint can be used; state: its loaded contents (None when only checked, or no path);
    unreadable: the checkpoints newer than `path` that were passed over, newest first."""
    path: Path | None = None
    state: dict | None = None
    unreadable: list[Unreadable] = field(default_factory=list)

    @property
    def step(self) -> int:
        """The step of `path` (0 without one)."""
        return step_of(self.path) if self.path else 0

    @property
    def note(self) -> str:
        """One sentence a passed-over checkpoint, then where reading went on from; "" when nothing was passed over."""
        if not self.unreadable:
            return ""
        where = f"{self.path.name} was used instead." if self.path else "No earlier checkpoint can be used."
        return " ".join([u.reason for u in self.unreadable] + [where])


# Verdicts on checkpoint files, keyed by (path, size, mtime_ns): a file is checked once, not at every listing, and
# one that failed to load is not loaded again by this process.
_verdicts: dict[tuple[str, int, int], str | None] = {}


def _file_key(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


def _remember(key: tuple[str, int, int], reason: str | None) -> None:
    if len(_verdicts) > 4096:
        _verdicts.clear()
    _verdicts[key] = reason


def checkpoint_problem(path: Path) -> str | None:
    """Why the checkpoint file `path` cannot be used, as one sentence naming it, or None when it looks whole.

    Cheap (the file's zip directory is read, not its tensors): an empty file, one cut short, or one that is not a
    PyTorch checkpoint is found here; a file whose contents fail to load is found by loading it
    (newest_readable_checkpoint), and remembered."""
    path = Path(path)
    try:
        key = _file_key(path)
    except OSError:
        return f"{path.name} disappeared while it was being read."
    if key in _verdicts:
        return _verdicts[key]
    reason = _structure_problem(path, key[1])
    _remember(key, reason)
    return reason


def _structure_problem(path: Path, size: int) -> str | None:
    if size == 0:
        return f"{path.name} is empty (0 bytes)."
    try:
        with open(path, "rb") as handle:
            head = handle.read(4)
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        if head == b"PK\x03\x04":
            return f"{path.name} is cut short (it stops after {size:,} bytes, before the end of the saved state)."
        return f"{path.name} is not a PyTorch checkpoint (its bytes are not a saved state)."
    except OSError as error:
        return f"{path.name} cannot be read ({error.strerror or error})."
    if not any(name.endswith("data.pkl") for name in names):
        return f"{path.name} is not a PyTorch checkpoint (it is a zip file without a saved state)."
    return None


def load_checkpoint(path: Path) -> dict:
    """The contents of one checkpoint file, on the CPU. Raises what torch.load raises for a bad file; readers that
    must survive one use newest_readable_checkpoint."""
    # weights_only=False: the file holds RNG states and the config, written by this code in this run directory.
    return torch.load(path, map_location="cpu", weights_only=False)


def _load_problem(path: Path, keys: tuple[str, ...]) -> tuple[dict | None, str | None]:
    """(state, None) for a checkpoint that loads and holds `keys`, else (None, one sentence why)."""
    try:
        state = load_checkpoint(path)
    except FileNotFoundError:
        return None, f"{path.name} disappeared while it was being read."
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, ValueError, KeyError, AttributeError,
            ImportError, IndexError, TypeError) as error:
        detail = " ".join(str(error).replace(str(path), path.name).split())[:160] or type(error).__name__
        return None, f"{path.name} cannot be loaded ({detail})."
    if not isinstance(state, dict):
        return None, f"{path.name} does not hold a checkpoint's entries (it holds a {type(state).__name__})."
    missing = [k for k in keys if k not in state]
    if missing:
        entries = "the entry" if len(missing) == 1 else "the entries"
        return None, f"{path.name} lacks {entries} {', '.join(repr(k) for k in missing)}."
    if "step" in keys and (isinstance(state["step"], bool) or not isinstance(state["step"], int)
                           or state["step"] != step_of(path)):
        return None, f"{path.name} holds step {state['step']!r}, not the step of its name."
    return state, None


def newest_readable_checkpoint(run_dir: Path, keys: tuple[str, ...] | None = MODEL_KEYS) -> ReadableCheckpoint:
    """The newest checkpoint of the run that can be used, and the newer ones that cannot, each with its reason.

    keys: the entries the loaded state must hold (MODEL_KEYS to load the student, RESUME_KEYS to resume); the
    newest candidate is loaded and returned as `state`. keys=None only checks the files' structure (cheap: for
    listings and messages) and leaves `state` None. Never raises for a bad file; a result without `path` means no
    checkpoint can be used."""
    found = ReadableCheckpoint()
    for path in reversed(checkpoint_paths(run_dir)):
        reason = checkpoint_problem(path)
        state = None
        if reason is None and keys is not None:
            state, reason = _load_problem(path, tuple(keys))
            if reason is not None:
                with contextlib.suppress(OSError):
                    _remember(_file_key(path), reason)
        if reason is not None:
            found.unreadable.append(Unreadable(path, reason))
            continue
        found.path, found.state = path, state
        return found
    return found


def checkpoint_to_resume(run_dir: Path, set_aside: bool = True) -> ReadableCheckpoint:
    """The newest checkpoint a resume can continue from, loaded with RESUME_KEYS (path None: start from step 0).

    set_aside: rename the unusable checkpoints newer than it to <name>.unreadable (the main process only): the
    resumed run saves those steps again, and keeping only the newest checkpoints must never count a broken one."""
    found = newest_readable_checkpoint(run_dir, RESUME_KEYS)
    if set_aside:
        for bad in found.unreadable:
            # another process may have set it aside first, or it vanished: either way it is out of the way
            with contextlib.suppress(OSError):
                os.replace(bad.path, bad.path.with_name(bad.path.name + SET_ASIDE_SUFFIX))
    return found


def state_bytes(state) -> int:
    """Bytes of the tensors in a checkpoint's state (dicts, lists and tuples are walked); a shared tensor counts
    once."""
    seen, total, stack = set(), 0, [state]
    while stack:
        item = stack.pop()
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                total += storage.nbytes()
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
        elif isinstance(item, np.ndarray):
            total += item.nbytes
    return total


def format_bytes(size: float) -> str:
    """1536 -> "1.5 KB"; decimal units, one decimal."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if size < 1000 or unit == "TB":
            return f"{size:,.0f} bytes" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1000
    return f"{size:,.1f} TB"


def disk_full_message(step: int, needed: int, free: int, kept: Path | None) -> str:
    """The one sentence for a checkpoint the disk has no room for: what it needed, what is free, which one is kept."""
    keeps = (f"the run keeps its checkpoint of step {step_of(kept):,} ({kept.name}), so free some space and resume "
             f"from there" if kept else "the run has no earlier checkpoint, so free some space and resume, which "
             "starts again from step 0")
    return (f"The disk is full: the checkpoint of step {step:,} needs about {format_bytes(needed)} and "
            f"{format_bytes(free)} are free, so it was not written; {keeps}.")


def is_disk_full(error: BaseException) -> bool:
    """Whether an error of torch.save (or of the writes around it) means the disk is full: an OSError ENOSPC or
    EDQUOT anywhere in its chain, or PyTorch's zip writer losing count of its position ("unexpected pos")."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError) and error.errno in DISK_FULL_ERRNOS:
            return True
        if isinstance(error, OSError) and error.errno is not None:
            return False  # another write error (EIO, EROFS, ...): not for lack of space
        if "unexpected pos" in str(error) or "No space left on device" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def save_checkpoint(run_dir: Path, step: int, state: dict, keep: int) -> Path:
    """Write checkpoints/step-<step>.pt atomically, then remove the older ones beyond the `keep` newest.

    Before writing, the free space of the run's disk is compared with the larger of the previous checkpoint's size
    and the state's tensors; a checkpoint that would not fit, or a write that runs out of space, raises
    DiskFullError naming the checkpoint the run keeps, and leaves no partial file. Checkpoints newer than `step`
    (left by an earlier session) are never removed here."""
    run_dir = Path(run_dir)
    path = run_dir / "checkpoints" / f"step-{step:06d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = next((p for p in reversed(checkpoint_paths(run_dir)) if step_of(p) < step and checkpoint_problem(p) is None),
                None)
    needed = state_bytes(state) + PICKLE_OVERHEAD_BYTES
    if kept is not None:
        with contextlib.suppress(OSError):
            needed = max(needed, kept.stat().st_size)
    free = shutil.disk_usage(path.parent).free
    if free < needed:
        raise DiskFullError(disk_full_message(step, needed, free, kept))
    try:
        atomic_write(path, lambda handle: torch.save(state, handle))
    except (OSError, RuntimeError) as error:
        if not is_disk_full(error):
            raise
        raise DiskFullError(disk_full_message(step, needed, shutil.disk_usage(path.parent).free, kept)) from error
    older = [p for p in checkpoint_paths(run_dir) if step_of(p) < step]
    for old in older[:max(0, len(older) - (keep - 1))]:
        old.unlink(missing_ok=True)
    return path


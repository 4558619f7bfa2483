"""What a run must pass before the launcher queues or starts it: its settings against its teacher (train.preflight),
its memory and time (train.estimate), and the limits one session keeps on a shared app: runs waiting or running,
disk taken by its runs, and the disk free for the run's checkpoints."""
from __future__ import annotations

import contextlib
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from core.distill.tokenized import MAX_VALID
from core.runs.checkpoints import format_bytes
from core.runs.store import ACTIVE_STATES
from train.config import DistillConfig
from train.estimate import RunEstimate, check_estimate, estimate_run
from train.preflight import check_against_teacher, teacher_config

CHECKPOINT_BYTES_PER_PARAM = 12  # fp32 weights and AdamW's two moments
COPY_BYTES_PER_PARAM = 4  # init/, final/ and a snapshot: fp32 weights each


@dataclass(frozen=True)
class RunLimits:
    """Limits on runs queued through the app; math.inf (or None for max_run_s) is no limit.

    max_run_s: estimated seconds of one run; max_active_runs: runs of one session queued or running at once;
    max_session_bytes: bytes of disk one session's runs may take, the new run's estimate included."""
    max_run_s: float | None = None
    max_active_runs: float = math.inf
    max_session_bytes: float = math.inf


def run_disk_bytes(student_params: int, keep_checkpoints: int, corpus_bytes: int = 0) -> int:
    """Bytes a run writes at most: keep_checkpoints checkpoints and the one being saved, three copies of the student
    (init/, final/, a snapshot), and its own copy of an uploaded corpus."""
    return student_params * (CHECKPOINT_BYTES_PER_PARAM * (keep_checkpoints + 1) + COPY_BYTES_PER_PARAM * 3) + \
        corpus_bytes


def folder_bytes(path: Path) -> int:
    """Bytes of the files under `path` (0 when it is gone); files that vanish while counted are skipped."""
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_size
    return total


def check_free_disk(root: Path, needed: int, what: str = "This run") -> None:
    """ValueError when the disk holding the runs folder `root` has less than `needed` bytes free."""
    free = shutil.disk_usage(root if root.exists() else root.parent).free
    if free < needed:
        raise ValueError(f"{what} needs about {format_bytes(needed)} of disk for its checkpoints and student, and the "
                         f"app's disk has {format_bytes(free)} free; delete runs you no longer need, or choose a "
                         "smaller student.")


def held_out_lines(lines: int) -> int:
    """Lines a corpus without its own held-out file gives to evaluation (core.distill.tokenized.held_out_rows)."""
    return 0 if lines < 2 else min(MAX_VALID, max(1, int(lines * 0.05)))


def lines_needed(batch_size: int, held_out: bool) -> int:
    """The fewest non-blank lines a corpus needs for one batch of `batch_size` to train on, and, when the held-out
    lines come out of it (`held_out`), at least one line to evaluate on."""
    if not held_out:
        return batch_size
    lines = batch_size + 1
    while lines - held_out_lines(lines) < batch_size:
        lines += 1
    return lines


def check_corpus_lines(lines: int, batch_size: int, name: str, held_out: bool) -> None:
    """ValueError, before the run is queued, for a corpus of `lines` non-blank lines too short to train on: the run
    would fail on it at its start. `name`: the corpus as its owner knows it."""
    needed = lines_needed(batch_size, held_out)
    if lines < needed:
        split = (f"{batch_size:,} to train on, one batch, and {needed - batch_size:,} held out to evaluate the "
                 "student" if held_out else f"one batch of {batch_size:,}")
        raise ValueError(f"The corpus '{name}' has {lines:,} line{'s' if lines != 1 else ''} of text; a run with a "
                         f"batch size of {batch_size:,} needs at least {needed:,} ({split}): add lines, or lower the "
                         "batch size.")


def check_session(runs: list[dict], root: Path, owner: str | None, session: str | None, needed: int,
                  limits: RunLimits) -> None:
    """ValueError when the session already has max_active_runs runs queued or running, or its runs and this one
    would take more than max_session_bytes of disk. A session's runs are those of its owner id (kept in the
    browser) or of its connection `session` (an API client can leave the owner out). `runs`: list_runs() of
    `root`."""
    mine = [r for r in runs if (owner and r.get("owner") == owner) or (session and r.get("session") == session)]
    active = sum(r["state"] in ACTIVE_STATES for r in mine)
    if active >= limits.max_active_runs:
        most = int(limits.max_active_runs)
        raise ValueError(f"You already have {active} run{'s' if active != 1 else ''} waiting or running, the most this "
                         f"app takes from one visitor at a time ({most}); wait for one to finish, or stop one.")
    if math.isfinite(limits.max_session_bytes):
        used = sum(folder_bytes(root / r["id"]) for r in mine)
        if used + needed > limits.max_session_bytes:
            raise ValueError(f"Your runs take {format_bytes(used)} of this app's disk and this one needs about "
                             f"{format_bytes(needed)} more, past the {format_bytes(limits.max_session_bytes)} one "
                             "visitor may use; delete a run you no longer need, or choose a smaller student.")


def admit(cfg: DistillConfig, lines: list[str], evaluations: int, runs: list[dict], root: Path, owner: str | None,
          limits: RunLimits, corpus_bytes: int = 0, reclaimable: int = 0, steps_done: int = 0,
          resumed: bool = False, session: str | None = None) -> tuple[RunEstimate | None, int]:
    """(the run's estimate, the disk bytes it needs) once every check passes; ValueError with the first refusal.

    lines: the run's corpus; evaluations: held-out evaluations it makes; owner, session: who asks (check_session);
    reclaimable: bytes of memory the runs now training hold, free again before this one starts; steps_done: the step
    a resumed run continues from; resumed: the run's folder exists already and holds what it writes, so only its
    time and the session's run count are checked. The estimate is None, and only the session's run count is
    checked, for a teacher whose config cannot be read before the run downloads it."""
    teacher = teacher_config(cfg.teacher)
    counting_only = RunLimits(max_active_runs=limits.max_active_runs)
    if teacher is None:
        check_session(runs, root, owner, session, 0, counting_only)
        return None, 0
    student = check_against_teacher(cfg, teacher)
    estimate = estimate_run(cfg, teacher, student, lines, evaluations, steps_done, reclaimable)
    check_estimate(estimate, limits.max_run_s)
    if resumed:
        check_session(runs, root, owner, session, 0, counting_only)
        return estimate, 0
    needed = run_disk_bytes(estimate.student_params, cfg.keep_checkpoints, corpus_bytes)
    check_session(runs, root, owner, session, needed, limits)
    check_free_disk(root, needed)
    return estimate, needed

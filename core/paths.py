"""Where the lab's files are: the repository, the assets that ship with it, and the runs folder."""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS = REPO_ROOT / "assets"


def runs_root() -> Path:
    """The folder that holds run directories: $RUDISTIL_RUNS_DIR, else runs/ in the repository."""
    return Path(os.environ.get("RUDISTIL_RUNS_DIR", REPO_ROOT / "runs"))


def check_can_make(folder: Path, name: str) -> None:
    """Refuse, before any work, a folder that cannot be made or written: its nearest existing parent must be a folder
    that takes new entries (a trial folder is made there, then removed). ValueError naming `name` (the flag and
    path a person gave, e.g. "--output '/proc/x'") and the cause; nothing is left behind either way."""
    folder = Path(folder).expanduser()
    parent = folder if folder.is_dir() else folder.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise ValueError(f"{name} cannot be made: '{parent}' is a file, not a folder.")
    try:
        shutil.rmtree(tempfile.mkdtemp(prefix=".rudistil-check-", dir=parent))
    except OSError as error:
        # /proc answers "No such file or directory" for a folder it exists beside: that cause would contradict
        why = "" if error.errno == errno.ENOENT else f" ({error.strerror or error})"
        raise ValueError(f"{name} cannot be made: the folder '{parent}' does not take new files or folders"
                         f"{why}.") from None


def check_output_folder(folder: Path, label: str, kind: str = "", action: str = "",
                        marks: tuple[str, ...] = ()) -> None:
    """Refuse, before any work, an output folder that is a file, that holds files not made by this tool, or that
    cannot be made (check_can_make). `label` names where the folder came from ("--output-dir", "The folder"); a
    folder holding any of the files named in `marks` is `kind` ("a run's folder"), which the tool takes back
    (`action`: "resume it"). Without marks, only a new or empty folder passes. ValueError with one sentence naming
    the label and the folder, also for a path the system refuses (too long), where the path is cut to 40 characters."""
    folder = Path(folder)
    name = f"{label} '{folder}'"
    reuse = f", or {kind} to {action}" if marks else ""
    try:
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{name} is a file; give a new or empty folder{reuse}.")
        if folder.is_dir() and any(folder.iterdir()) and not any((folder / mark).exists() for mark in marks):
            what = f" and is not {kind}" if marks else ""
            raise ValueError(f"{name} already holds other files{what}; give a new or empty folder{reuse}.")
        check_can_make(folder, name)
    except OSError as error:  # a name the system refuses as a path (too long)
        text = str(folder)
        cut = text if len(text) <= 40 else text[:40] + "…"
        raise ValueError(f"{label} '{cut}' ({len(text):,} characters) cannot be made ({error.strerror or error}); "
                         "give a shorter path.") from None

"""Where the lab's files are: the repository, the assets that ship with it, and the runs folder."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ASSETS = REPO_ROOT / "assets"


def runs_root() -> Path:
    """The folder that holds run directories: $RUDISTIL_RUNS_DIR, else runs/ in the repository."""
    return Path(os.environ.get("RUDISTIL_RUNS_DIR", REPO_ROOT / "runs"))

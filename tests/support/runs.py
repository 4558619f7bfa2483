"""The runs folder as a test reads it: what runs put there, without the key the app keeps there for the page."""
from __future__ import annotations

from pathlib import Path

from ui.sessions import BROWSER_KEY_FILE


def run_entries(root: Path) -> list[Path]:
    """The entries of the runs folder `root` other than the app's browser key (ui.sessions.browser_key), sorted."""
    return sorted(p for p in Path(root).iterdir() if p.name != BROWSER_KEY_FILE)

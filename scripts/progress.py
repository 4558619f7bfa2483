"""Progress for the measurement scripts: a line per stage on stderr, so a long run never looks stuck and stdout
keeps the figures alone."""
from __future__ import annotations

import sys
import time

_STARTED = time.perf_counter()


def stage(message: str) -> None:
    """One line on stderr, flushed at once, with the seconds since the script started."""
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)

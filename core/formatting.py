"""Small readings and writings shared by every room: durations and numbers as people read them, lists of numbers as
typed, library errors quoted as whole sentences, and command lines whose mistakes are one line and that answer at
once."""
from __future__ import annotations

import argparse
import importlib
import math
import numbers
import os
import re
import signal
import sys
from typing import NoReturn


def format_seconds(seconds: float) -> str:
    """A duration in seconds as people read it: '42 s', '3 min 05 s', '2 h 07 min'."""
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest:02d} s"
    hours, rest = divmod(round(seconds), 3600)
    return f"{hours} h {rest // 60:02d} min"


def count(number: int, noun: str) -> str:
    """A number with its noun in the right form, thousands separated: count(1, "step") -> "1 step",
    count(16000, "line") -> "16,000 lines". English plurals by -s, which every noun the lab counts takes."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def shown(value) -> str:
    """A value as an error sentence quotes it: text in quotes (cut at 40 characters), whole numbers with their
    thousands separated as a person reads them (1,000,000,000), other numbers as Python writes them (2.5, 1e+20,
    inf), "nothing" for None, and other things by their kind ("a list")."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return f"'{value if len(value) <= 40 else value[:40] + '…'}'"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{value:,}"
    if isinstance(value, float) and math.isfinite(value) and value == int(value) and abs(value) < 1e16:
        return f"{int(value):,}"  # 1e9 typed in a number box reaches the app as 1000000000.0: said 1,000,000,000
    if isinstance(value, float):
        return str(value)
    return f"a {type(value).__name__}"


def parse_int_list(text: str, what: str, example: str = "1,16") -> list[int]:
    """Whole numbers typed as "0, 2,4" or "0 2 4" -> [0, 2, 4]: commas and spaces both separate them.

    Raises ValueError naming `what` (e.g. "Batch sizes") when a part is not a whole number, when nothing is given,
    or when two commas have nothing between them ("1,,16": a number left out, more likely than a slip of the key).
    Repeats are the caller's to judge (a batch size given twice is measured once; a layer given twice is refused).
    """
    text = str(text).strip()
    quoted = text if len(text) <= 60 else text[:60] + "…"
    if re.search(r",\s*,|^,", text):
        raise ValueError(f"{what} has an empty place between two commas in '{quoted}'; give a number there or remove "
                         f"a comma, such as {example}.")
    try:
        values = [int(part) for part in re.split(r"[,\s]+", text) if part]
    except ValueError:
        raise ValueError(f"{what} must be whole numbers separated by commas, such as {example}; "
                         f"got '{quoted}'.") from None
    if not values:
        raise ValueError(f"Give at least one {what.rstrip('s').lower()}.")
    return values


MAX_QUOTE = 300  # characters of a library's error message quoted in ours


def error_sentence(error: BaseException, limit: int = MAX_QUOTE) -> str:
    """A library's error message as one complete sentence: its lines joined, cut at a sentence end when too long.

    Library messages often run over several lines and the first may end with ':' (a list follows), so quoting only
    the first line would stop mid-sentence.
    """
    text = " ".join(str(error).split()) or type(error).__name__
    if len(text) > limit:
        cut = text[:limit]
        end = max(cut.rfind(". "), cut.rfind("; "))
        text = cut[:end] if end > 0 else cut[:cut.rfind(" ")] + " …"
    text = text.rstrip(" :;,")
    return text if text.endswith((".", "!", "?", "…", ")")) else text + "."


class OneLineParser(argparse.ArgumentParser):
    """An argparse parser whose usage errors are one stderr line ("error: ... (see --help)") and exit code 2, as for
    every other bad input of the lab's command lines, instead of argparse's usage block."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # "-1,0" is a value (a list of layers counted from the end), not an unknown flag
        self._negative_number_matcher = re.compile(r"^-\d+(,-?\d+)*$|^-\d*\.\d+$")

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")


STOPPED_EXIT_CODE = 130  # 128 + SIGINT, as a shell reports a command stopped by Ctrl-C


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a command's work (run_command). A class of its own because CPython takes a plain
    KeyboardInterrupt that leaves a string exec (dataclasses build their methods so) as unhandled even once it is
    caught, and under `python -m` then ends the process by SIGINT instead of with the command's exit code."""


def run_command(parser: str, work: str) -> NoReturn:
    """The `python -m` entry of a command whose work loads torch and transformers; exits with the work's code.

    parser, work: "module:function". The parser's module is light (argparse and the lab's own small modules), so
    --help and a mistyped flag answer at once instead of after seconds of imports; the work's module is imported
    only once the flags are read, and its function returns the exit code for them. Ctrl-C ends the command with
    one line and STOPPED_EXIT_CODE, never a traceback: at once while the flags are read and the libraries load
    (_stop_now), and during the work through Interrupted, so that its cleanup runs (train.distill handles Ctrl-C
    itself while it trains, and saves a checkpoint).
    """
    signal.signal(signal.SIGINT, _stop_now)
    try:
        args = _function(parser)().parse_args(sys.argv[1:])
        run = _function(work)
        signal.signal(signal.SIGINT, _interrupt)
        code = run(args)
    except KeyboardInterrupt:
        print("Stopped.", file=sys.stderr)
        code = STOPPED_EXIT_CODE
    sys.exit(code)


def _function(name: str):
    module, function = name.split(":")
    return getattr(importlib.import_module(module), function)


def _stop_now(signum, frame) -> NoReturn:
    # Nothing is written yet, and an exception thrown into these imports can leave a library half-loaded or, raised
    # through torch's C++, abort the process: end it here. os.write: print could find stderr's buffer mid-write.
    os.write(sys.stderr.fileno(), b"Stopped.\n")
    os._exit(STOPPED_EXIT_CODE)


def _interrupt(signum, frame) -> NoReturn:
    raise Interrupted

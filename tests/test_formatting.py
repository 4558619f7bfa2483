"""Small shared readings: typed number lists and durations; and the command lines' entry (run_command)."""
import os
import subprocess
import sys

import pytest

from core.formatting import count, format_seconds, parse_int_list, shown
from tests.support.models import REPO


@pytest.mark.parametrize("text, values", [("1,16", [1, 16]), ("1 16", [1, 16]), (" 0, 2 ,4 ", [0, 2, 4]),
                                          ("1,2,", [1, 2]), ("7", [7])])
def test_numbers_are_separated_by_commas_or_spaces(text, values):
    assert parse_int_list(text, "Batch sizes") == values


@pytest.mark.parametrize("text, message", [("1 x", "whole numbers separated by commas"), ("", "at least one"),
                                           ("2.5", "whole numbers"), ("1,,16", "empty place between two commas"),
                                           (",16", "empty place"), ("1, ,16", "empty place"),
                                           ("1,x" + "0" * 10_000, r"got '1,x0{57}…'\.")])
def test_bad_lists_are_refused_in_a_sentence(text, message):
    with pytest.raises(ValueError, match=message):
        parse_int_list(text, "Batch sizes")


def test_durations_read_as_people_read_them():
    assert [format_seconds(s) for s in (42, 185, 7620)] == ["42 s", "3 min 05 s", "2 h 07 min"]


@pytest.mark.parametrize("number, noun, said", [(1, "step", "1 step"), (0, "step", "0 steps"), (2, "line", "2 lines"),
                                                (16000, "token", "16,000 tokens")])
def test_a_count_takes_the_nouns_form_for_its_number(number, noun, said):
    assert count(number, noun) == said


@pytest.mark.parametrize("value, read", [(10**9, "1,000,000,000"), (1e9, "1,000,000,000"), (-12345, "-12,345"),
                                         (0, "0"), (2.5, "2.5"), (1e20, "1e+20"), (float("nan"), "nan"),
                                         ("1e9", "'1e9'"), ("x" * 50, f"'{'x' * 40}…'"), (None, "nothing"),
                                         (True, "True"), ([1], "a list")])
def test_a_value_is_quoted_as_a_person_reads_it(value, read):
    assert shown(value) == read


def test_the_app_quotes_values_in_the_command_lines_words():
    from ui import input_checks

    assert [input_checks.shown(v) for v in (10**9, 1e9, "x", None)] == [shown(v) for v in (10**9, 1e9, "x", None)]


COMMAND = '''
if __name__ == "__main__":
    from core.formatting import run_command

    run_command("demo_command:parser", "demo_command:work")

import argparse
import os
import signal
import time


def ctrl_c():
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)  # the signal is taken within this


def parser():
    p = argparse.ArgumentParser(prog="demo_command")
    p.add_argument("--code", type=int, default=0)
    return p

{body}
'''


def run_demo(tmp_path, body: str, *args: str) -> subprocess.CompletedProcess:
    """`python -m demo_command` whose work module ends with `body` (a `work(args)` among it), through run_command."""
    (tmp_path / "demo_command.py").write_text(COMMAND.replace("{body}", body), encoding="utf-8")
    return subprocess.run([sys.executable, "-m", "demo_command", *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_a_command_exits_with_its_works_code_and_help_with_0(tmp_path):
    body = "def work(args):\n    print('worked')\n    return args.code\n"
    done = run_demo(tmp_path, body, "--code", "3")
    assert (done.returncode, done.stdout, done.stderr) == (3, "worked\n", "")
    assert run_demo(tmp_path, body, "--help").stdout.startswith("usage: demo_command")


@pytest.mark.parametrize("body, printed", [
    # while the work's module loads, inside a library that swallows the interrupt: the command ends all the same
    ("try:\n    ctrl_c()\nexcept BaseException:\n    pass\nprint('imported')\n\ndef work(args):\n    print('worked')\n",
     ""),
    ("def work(args):\n    try:\n        ctrl_c()\n    finally:\n        print('cleaned up')\n", "cleaned up\n"),
    # CPython takes a plain KeyboardInterrupt that leaves a string exec as unhandled, and ends `python -m` by SIGINT
    ("def work(args):\n    exec('ctrl_c()')\n    print('worked')\n", ""),
], ids=["importing", "working", "in-a-string-exec"])
def test_ctrl_c_ends_a_command_in_one_line_and_130(tmp_path, body, printed):
    done = run_demo(tmp_path, body)
    assert (done.returncode, done.stdout, done.stderr) == (130, printed, "Stopped.\n")

"""`python -m core.models.hub` as a process, offline: one line and exit 2, never a traceback."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.models import REPO

pytestmark = pytest.mark.cli


def run_hub(*args, cache) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache)}
    return subprocess.run([sys.executable, "-m", "core.models.hub", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300)


def test_offline_the_command_says_so_in_one_line_and_exits_2(tmp_path):
    done = run_hub("--dry-run", cache=tmp_path / "cache")
    assert done.returncode == 2 and done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: The Hugging Face Hub cannot be reached"), done.stderr
    assert str(tmp_path / "cache") in lines[0] and lines[0].endswith(".")


def test_help_lists_the_models_and_the_flags(tmp_path):
    done = run_hub("--help", cache=tmp_path)
    assert done.returncode == 0
    flat = "".join(done.stdout.split())  # argparse wraps long names at their hyphens
    for text in ("--models", "--dry-run", "distilrubert-tiny-cased-conversational-v1"):
        assert text in flat

"""The distillation command line run as a child process, offline, with settings short enough for tests."""
from __future__ import annotations

import os
import subprocess
import sys

from tests.support.models import REPO

SHORT = ["--batch-size", "8", "--max-length", "32", "--log-every", "2", "--eval-every", "4", "--eval-lines", "40"]


def run_cli(*args, env_extra=None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "train.distill", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)


def start_cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "train.distill", *map(str, args)], cwd=REPO,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)

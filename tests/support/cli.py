"""The distillation command line run as a child process, offline, with settings short enough for tests."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.support.models import REPO
from tests.support.waiting import wait_for

SHORT = ["--batch-size", "8", "--max-length", "32", "--log-every", "2", "--eval-every", "4", "--eval-lines", "40"]


def run_cli(*args, env_extra=None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "train.distill", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)


def start_cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "train.distill", *map(str, args)], cwd=REPO,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def whole_and_resumed(common: list, tmp_path: Path) -> tuple[Path, Path]:
    """One run uninterrupted (tmp_path/whole) and the same run killed (SIGKILL) after its step-6 checkpoint and
    resumed (tmp_path/killed); both finished. `common` must save a checkpoint every 3 steps and trace batches."""
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    done = run_cli(*common, "--output-dir", whole)
    assert done.returncode == 0, done.stderr
    process = start_cli(*common, "--output-dir", killed)
    wait_for(lambda: (killed / "checkpoints" / "step-000006.pt").exists())
    process.send_signal(signal.SIGKILL)
    process.wait()
    resumed = run_cli("--resume", killed)
    assert resumed.returncode == 0, resumed.stderr
    return whole, killed


def assert_resumed_exactly(whole: Path, killed: Path) -> None:
    """The resumed run ended with the uninterrupted run's weights and took the very batches it took."""
    a, b = load_file(whole / "final" / "model.safetensors"), load_file(killed / "final" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    traced = [json.loads((run / "trace" / "rank0.json").read_text())["batches"] for run in (whole, killed)]
    assert traced[1] == traced[0][-len(traced[1]):]

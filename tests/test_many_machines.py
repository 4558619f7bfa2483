"""`accelerate launch` across machines: two single-process "machines" on loopback (CPU, gloo) distil together, then
the run resumes on one process from the same global place in its data."""
import json
import os
import socket
import subprocess
import sys

import pytest
from transformers import AutoTokenizer

from core.distill.sources import CorpusSource
from core.distill.training_data import load_training_data
from core.runs.store import read_metrics
from tests.support.cli import SHORT
from tests.support.models import REPO

pytestmark = pytest.mark.cli


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def machine(rank: int, port: int, args: list[str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_machines", "2",
               "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1", "--main_process_port", str(port),
               "--num_processes", "2", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "train.distill", "--device", "cpu", *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def test_two_machines_hold_identical_weights_see_disjoint_batches_and_resume_on_one(tmp_path, tiny_teacher_dir,
                                                                                    tiny_corpus):
    out = tmp_path / "run"
    args = ["--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus), "--max-steps", "4", "--save-every",
            "4", "--output-dir", str(out), "--trace", "--seed", "3", *SHORT]
    port = free_port()
    machines = [machine(rank, port, args) for rank in (0, 1)]
    errors = [m.communicate(timeout=300)[1] for m in machines]
    assert [m.returncode for m in machines] == [0, 0], [e[-1500:] for e in errors]
    ranks = [json.loads((out / "trace" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    seen = [{i for batch in r["batches"] for i in batch} for r in ranks]
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) == 4 and not seen[0] & seen[1]

    # the same batches, computed here: step s of rank r took global batch 2s + r of epoch 0
    tokenizer = AutoTokenizer.from_pretrained(tiny_teacher_dir)
    data = load_training_data(CorpusSource(str(tiny_corpus)), None, tokenizer, 32, seed=3)
    epoch = data.batches_for(0, 8)
    assert [ranks[r]["batches"] for r in (0, 1)] == [[epoch[2 * s + r] for s in range(4)] for r in (0, 1)]

    resumed = subprocess.run([sys.executable, "-m", "train.distill", "--resume", str(out), "--max-steps", "6"],
                             cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                             timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-1500:]
    assert "saved by 2 process(es) and resumes with 1" in resumed.stderr
    after = json.loads((out / "trace" / "rank0.json").read_text())["batches"]
    assert after == [epoch[8], epoch[9]]  # global batches 8 and 9: nothing re-read, nothing skipped
    assert [r["step"] for r in read_metrics(out)][-1] == 6

"""train.distill --fsdp: the student sharded with FSDP2 over two CPU processes (gloo) under `accelerate launch`.

It must train as DDP does (same losses and weights to float rounding), write whole weights that `from_pretrained`
loads, and resume exactly after kill -9, with or without --fsdp."""
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM

from core.models.student import StudentSpec, make_student
from core.runs.store import read_metrics
from tests.support.cli import SHORT, run_cli
from tests.support.models import REPO, tiny_bert
from tests.support.waiting import wait_for
from train.sharding import transformer_layers

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}


def launch_command(args: list) -> list[str]:
    return [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
            "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "train.distill", "--device", "cpu",
            *map(str, args)]


def launch(args: list) -> None:
    result = subprocess.run(launch_command(args), cwd=REPO, env=ENV, capture_output=True, text=True, timeout=400)
    assert result.returncode == 0, result.stderr[-3000:]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "final" / "model.safetensors")


def losses(run: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(run) if "loss" in r]


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_teacher_dir, tiny_corpus) -> dict[str, Path]:
    """Uninterrupted runs with and without --fsdp, and an --fsdp run killed (-9) after a checkpoint."""
    root = tmp_path_factory.mktemp("fsdp")
    common = ["--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--max-steps", "12", "--save-every", "3",
              "--trace", *SHORT]
    found = {name: root / name for name in ("fsdp", "ddp", "killed")}
    launch([*common, "--fsdp", "--output-dir", found["fsdp"]])
    launch([*common, "--output-dir", found["ddp"]])
    process = subprocess.Popen(launch_command([*common, "--fsdp", "--output-dir", found["killed"]]), cwd=REPO,
                               env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for(lambda: (found["killed"] / "checkpoints" / "step-000003.pt").exists(), timeout=300)
    os.killpg(process.pid, signal.SIGKILL)  # the launcher and both training processes
    process.wait()
    assert not (found["killed"] / "final").exists()
    return found


@pytest.mark.cli
def test_a_sharded_run_trains_as_ddp_does_and_writes_whole_weights(runs):
    sharded, ddp = weights(runs["fsdp"]), weights(runs["ddp"])
    assert sharded.keys() == ddp.keys()  # each tied weight once, as save_pretrained writes it
    assert all(torch.allclose(sharded[k], ddp[k], atol=1e-5) for k in ddp)
    assert losses(runs["fsdp"]) == pytest.approx(losses(runs["ddp"]), rel=1e-5)
    ranks = [json.loads((runs["fsdp"] / "trace" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    assert not set(map(tuple, ranks[0]["batches"])) & set(map(tuple, ranks[1]["batches"]))
    evaluated = [r for r in read_metrics(runs["fsdp"]) if "eval_agreement" in r]
    assert [r["step"] for r in evaluated] == [0, 4, 8, 12]  # every process evaluated the sharded student together
    model = AutoModelForMaskedLM.from_pretrained(runs["fsdp"] / "final")
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight


@pytest.mark.cli
def test_kill_9_then_resume_with_fsdp_gives_the_uninterrupted_weights(runs, tmp_path):
    killed = tmp_path / "killed"
    shutil.copytree(runs["killed"], killed)
    launch(["--resume", killed, "--fsdp"])
    whole, resumed = weights(runs["fsdp"]), weights(killed)
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)


@pytest.mark.cli
def test_a_sharded_checkpoint_resumes_without_fsdp(runs, tmp_path):
    killed = tmp_path / "killed"
    shutil.copytree(runs["killed"], killed)
    launch(["--resume", killed])
    whole, resumed = weights(runs["fsdp"]), weights(killed)
    assert all(torch.allclose(whole[k], resumed[k], atol=1e-5) for k in whole)


@pytest.mark.cli
def test_fsdp_on_one_process_is_refused_in_one_line(tiny_teacher_dir, tiny_corpus, tmp_path):
    result = run_cli("--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--device", "cpu", "--fsdp",
                     "--max-steps", "2", "--output-dir", tmp_path / "run", *SHORT)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: --fsdp shards the student over several processes: start the run with `accelerate launch "
        "--num_processes N -m train.distill ...` (N of 2 or more)."]
    assert not (tmp_path / "run").exists()


@pytest.mark.cli
def test_fsdp_with_fp16_is_refused(tiny_teacher_dir, tmp_path):
    result = run_cli("--teacher", tiny_teacher_dir, "--fsdp", "--mixed-precision", "fp16", "--output-dir",
                     tmp_path / "run")
    assert result.returncode == 2 and "--fsdp trains in bf16 or fp32" in result.stderr


@pytest.mark.parametrize("student_type", ["bert", "distilbert"])
def test_the_shard_units_are_the_students_transformer_layers(student_type):
    student = make_student(tiny_bert(100), StudentSpec(num_layers=2, model_type=student_type))
    layers = transformer_layers(student)
    assert len(layers) == 2
    assert {type(layer).__name__ for layer in layers} == {"BertLayer" if student_type == "bert" else "TransformerBlock"}

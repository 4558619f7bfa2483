"""python -m train.distill end to end: bad input, a full run, kill -9 and resume, SIGTERM, NaN, two processes."""
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForMaskedLM, AutoTokenizer

from core.runs.store import read_metrics, read_status
from tests.conftest import REPO
from tests.waiting import wait_for
from train.distill import main

SHORT = ["--batch-size", "8", "--max-length", "32", "--log-every", "2", "--eval-every", "4", "--eval-lines", "40"]


def run_cli(*args, env_extra=None, **kwargs) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "train.distill", *map(str, args)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300, **kwargs)


def start_cli(*args) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "train.distill", *map(str, args)], cwd=REPO,
                            env={**os.environ, "HF_HUB_OFFLINE": "1"}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)



def test_help_lists_the_main_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ["--teacher", "--corpus", "--student-layers", "--max-steps", "--batch-size", "--max-length", "--lr",
                 "--temperature", "--alpha-kl", "--alpha-mlm", "--alpha-cos", "--seed", "--save-every",
                 "--output-dir", "--resume", "--config"]:
        assert flag in text


def bad_corpus(tmp_path, kind):
    path = tmp_path / f"{kind}.txt"
    path.write_bytes({"empty": b"\n\n", "binary": bytes(range(256)) * 8, "cp1251": "Привет мир".encode("cp1251")}[kind])
    return path


@pytest.mark.parametrize("case, message", [
    ("empty", "no text"),
    ("binary", "binary"),
    ("cp1251", "UTF-8"),
    ("steps", "--max-steps"),
    ("batch", "--batch-size"),
    ("temperature", "temperature"),
    ("alphas", "At least one"),
    ("layers", "more layers"),
    ("teacher", "does not exist"),
    ("hub", "cannot be reached"),
    ("flag", "invalid int"),
])
def test_bad_input_gives_one_line_exit_2_and_no_run(case, message, tmp_path, tiny_teacher_dir, tiny_corpus, capsys):
    out = tmp_path / "run"
    args = {"teacher": str(tiny_teacher_dir), "corpus": str(tiny_corpus)}
    extra = []
    if case in ("empty", "binary", "cp1251"):
        args["corpus"] = str(bad_corpus(tmp_path, case))
    extra = {"steps": ["--max-steps", "0"], "batch": ["--batch-size", "0"], "temperature": ["--temperature", "0"],
             "alphas": ["--alpha-kl", "0", "--alpha-mlm", "0", "--alpha-cos", "0"],
             "layers": ["--student-layers", "5"], "flag": ["--max-steps", "many"]}.get(case, [])
    if case == "teacher":
        args["teacher"] = str(tmp_path / "no-such-teacher")
    if case == "hub":
        args["teacher"] = "DeepPavlov/rubert-base-cased-conversational"
    argv = ["--teacher", args["teacher"], "--corpus", args["corpus"], "--output-dir", str(out), *extra]
    try:
        code = main(argv)
    except SystemExit as exit_info:  # argparse's own refusal of a malformed flag
        code = exit_info.code
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    assert not out.exists()


def test_a_run_writes_its_directory_and_a_loadable_student(tmp_path, tiny_teacher_dir, tiny_corpus):
    long_line = tmp_path / "corpus.txt"
    long_line.write_text(tiny_corpus.read_text(encoding="utf-8") + " ".join(["очень"] * 300) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    result = run_cli("--teacher", tiny_teacher_dir, "--corpus", long_line, "--max-steps", 8, "--save-every", 4,
                     "--output-dir", out, *SHORT, "--max-length", 128)
    assert result.returncode == 0, result.stderr
    assert "warning: 1 lines were longer" in result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["max_steps"] == 8 and config["teacher"] == str(tiny_teacher_dir)
    records = read_metrics(out)
    assert [r["step"] for r in records] == [2, 4, 6, 8]
    for key in ["step", "loss", "loss_kl", "loss_mlm", "loss_cos", "lr", "tokens_per_s"]:
        assert all(key in r for r in records)
    assert "eval_mlm_acc" in records[1] and "eval_agreement" in records[3]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000004.pt", "step-000008.pt"]
    checkpoint = torch.load(out / "checkpoints" / "step-000008.pt", weights_only=False)
    assert {"model", "optimizer", "scheduler", "rng", "epoch", "position", "step"} <= set(checkpoint)
    student = AutoModelForMaskedLM.from_pretrained(out / "final")
    tokenizer = AutoTokenizer.from_pretrained(out / "final")
    assert student.config.num_hidden_layers == 2
    assert student(**tokenizer(["Привет!"], return_tensors="pt")).logits.shape[-1] == len(tokenizer)
    assert read_status(out)["state"] == "finished"


def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_teacher_dir, tiny_corpus):
    common = ["--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--max-steps", 24, "--save-every", 6, *SHORT]
    whole = tmp_path / "whole"
    assert run_cli(*common, "--output-dir", whole).returncode == 0
    killed = tmp_path / "killed"
    process = start_cli(*common, "--output-dir", killed)
    wait_for(lambda: (killed / "checkpoints" / "step-000012.pt").exists())
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert read_status(killed)["state"] == "stopped"  # the dead process is seen as stopped, not running
    resumed = run_cli("--resume", killed)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(whole / "final" / "model.safetensors"), load_file(killed / "final" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # same data, masks, dropout and optimizer state
    steps = [r["step"] for r in read_metrics(killed)]
    assert steps == list(range(2, 25, 2))
    assert [r["loss"] for r in read_metrics(killed)] == pytest.approx([r["loss"] for r in read_metrics(whole)])


def test_sigterm_stops_cleanly_with_a_checkpoint(tmp_path, tiny_teacher_dir, tiny_corpus):
    out = tmp_path / "run"
    process = start_cli("--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--max-steps", 100000,
                        "--save-every", 100000, "--output-dir", out, *SHORT)
    wait_for(lambda: len(read_metrics(out)) >= 2)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    status = read_status(out)
    assert status["state"] == "stopped"
    checkpoints = list((out / "checkpoints").iterdir())
    assert len(checkpoints) == 1 and int(checkpoints[0].stem.split("-")[1]) == status["step"] >= 4


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, tiny_teacher_dir, tiny_corpus):
    teacher = tmp_path / "teacher"
    teacher.mkdir()
    for item in tiny_teacher_dir.iterdir():
        (teacher / item.name).write_bytes(item.read_bytes())
    out = tmp_path / "run"
    assert run_cli("--teacher", teacher, "--corpus", tiny_corpus, "--max-steps", 4, "--save-every", 4,
                   "--output-dir", out, *SHORT).returncode == 0
    good = (out / "checkpoints" / "step-000004.pt").read_bytes()
    weights = load_file(teacher / "model.safetensors")  # the teacher goes bad on disk: its outputs become NaN
    save_file({k: torch.full_like(v, float("nan")) if "LayerNorm.weight" in k else v for k, v in weights.items()},
              teacher / "model.safetensors")
    result = run_cli("--resume", out, "--max-steps", 8)
    assert result.returncode == 3
    assert "became nan" in result.stderr and "step 4" in result.stderr
    assert read_status(out)["state"] == "failed"
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-000004.pt"]
    assert (out / "checkpoints" / "step-000004.pt").read_bytes() == good


def test_resume_refuses_to_change_the_student(tmp_path, tiny_teacher_dir, tiny_corpus, capsys):
    out = tmp_path / "run"
    assert run_cli("--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--max-steps", 2, "--output-dir", out,
                   *SHORT).returncode == 0
    assert main(["--resume", str(out), "--student-layers", "3"]) == 2
    assert "student_layers" in capsys.readouterr().err


def test_two_processes_hold_identical_weights_and_see_different_batches(tmp_path, tiny_teacher_dir, tiny_corpus):
    out = tmp_path / "ddp"
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "-m", "train.distill",
               "--device", "cpu", "--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus),
               "--max-steps", "6", "--output-dir", str(out), "--trace", *SHORT]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    ranks = [json.loads((out / "trace" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["weights_sha256"] == ranks[1]["weights_sha256"]
    seen = [set(i for batch in r["batches"] for i in batch) for r in ranks]
    assert len(ranks[0]["batches"]) == len(ranks[1]["batches"]) == 6
    assert not seen[0] & seen[1]
    assert read_metrics(out)[-1]["tokens_per_s"] > 0 and Path(out / "final" / "config.json").is_file()

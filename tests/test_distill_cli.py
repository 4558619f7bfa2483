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

from core.runs.guesses import read_guesses
from core.runs.store import read_metrics, read_status
from core.saving import RUNTIME_KEYS
from tests.support.cli import SHORT, run_cli, start_cli
from tests.support.models import REPO
from tests.support.waiting import wait_for
from train.distill import main

pytestmark = pytest.mark.cli


def test_help_lists_the_main_flags(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ["--teacher", "--corpus", "--student-layers", "--max-steps", "--batch-size", "--max-length", "--lr",
                 "--temperature", "--alpha-kl", "--alpha-mlm", "--alpha-cos", "--seed", "--save-every",
                 "--output-dir", "--resume", "--config"]:
        assert flag in text


# settings refused by DistillConfig.check before anything loads (the app's launcher refuses them the same way)
BAD_SETTINGS = {
    "narrow": ["--student-vocab-size", "3000", "--student-hidden", "-64"],
    "narrow-positive": ["--student-vocab-size", "3000", "--student-hidden", "4"],
    "vocab": ["--student-vocab-size", "2000000"],
    "inf-temperature": ["--temperature", "inf"],
    "nan-alpha": ["--alpha-kl", "nan"],
    "inf-alpha": ["--alpha-cos", "inf"],
    "nan-clip": ["--grad-clip", "nan"],
    "nan-decay": ["--weight-decay", "nan"],
    "huge-batch": ["--batch-size", "100001"],
    "huge-steps": ["--max-steps", "10000001"],
    "negative-seed": ["--seed", "-1"],
    "layers-from-the-end": ["--init-layers", "-1,0"],  # a value, not an unknown flag
    "same-layer-twice": ["--init-layers", "3,3"],
    "layers-reversed": ["--init-layers", "3,1"],
    "layer-left-out": ["--init-layers", "0,,3"],
}


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
    ("narrow", "--student-hidden must be at least 8; got -64."),
    ("narrow-positive", "--student-hidden must be at least 8; got 4."),
    ("vocab", "--student-vocab-size must be between 100 and 1,000,000; got 2,000,000."),
    ("inf-temperature", "The temperature must be a finite number above 0; got inf."),
    ("nan-alpha", "The loss weight alpha_kl must be a finite number; got nan."),
    ("inf-alpha", "The loss weight alpha_cos must be a finite number; got inf."),
    ("nan-clip", "--grad-clip must be a finite number above 0; got nan."),
    ("nan-decay", "--weight-decay must be a finite number, 0 or above; got nan."),
    ("huge-batch", "--batch-size must be at most 100,000; got 100,001."),
    ("huge-steps", "--max-steps must be at most 10,000,000; got 10,000,001."),
    ("negative-seed", "--seed must be a whole number from 0 to 4,294,967,295; got -1."),
    ("layers-from-the-end", "Initialising layers must be between 0 and 3; got [-1, 0]."),
    ("same-layer-twice", "Initialising layers name a teacher layer more than once ([3, 3]); give 2 different layers"),
    ("layers-reversed", "Initialising layers must go from shallower to deeper teacher layers, as the student's layers "
                        "do: give [1, 3] rather than [3, 1]."),
    ("layer-left-out", "Layer numbers has an empty place between two commas in '0,,3'"),
    ("device-file", "The corpus '/dev/null' is not a file or a folder of"),
    ("align-alone", "--align and --reduce-op set how logits meet across two vocabularies; the student shares the "
                    "teacher's unless you also give --student-vocab-size."),
    ("align-default", "--align sets how logits meet across two vocabularies; the student shares the teacher's unless "
                      "you also give --student-vocab-size."),  # the default named, not silently unused
])
def test_bad_input_gives_one_line_exit_2_and_no_run(case, message, tmp_path, tiny_teacher_dir, tiny_corpus, capsys):
    out = tmp_path / "run"
    args = {"teacher": str(tiny_teacher_dir), "corpus": str(tiny_corpus)}
    extra = []
    if case in ("empty", "binary", "cp1251"):
        args["corpus"] = str(bad_corpus(tmp_path, case))
    extra = {"steps": ["--max-steps", "0"], "batch": ["--batch-size", "0"], "temperature": ["--temperature", "0"],
             "alphas": ["--alpha-kl", "0", "--alpha-mlm", "0", "--alpha-cos", "0"],
             "layers": ["--student-layers", "5"], "flag": ["--max-steps", "many"],
             "align-alone": ["--align", "match", "--reduce-op", "mean"], "align-default": ["--align", "reduce"],
             **{case: flags for case, flags in BAD_SETTINGS.items()}}.get(case, [])
    if case == "teacher":
        args["teacher"] = str(tmp_path / "no-such-teacher")
    if case == "device-file":
        args["corpus"] = "/dev/null"
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


# the command lines of the abuse audit (issue 13, item 15): each is one stderr line and exit 2, before any folder
CONFIG_FILES = {"config-betas": {"betas": "x"}, "config-student-layers": {"student_layers": "2"},
                "config-lr": {"lr": "0.1"}}


@pytest.mark.parametrize("case, message", [
    ("long-teacher", "error: The model '" + "a" * 40 + "…' (300 characters) is not a known name, a Hub id or a "
                     "folder this machine can open (File name too long)."),
    ("config-betas", 'error: --betas must be a list of numbers; got "x".'),
    ("config-student-layers", 'error: --student-layers must be a whole number or null; got "2".'),
    ("config-lr", 'error: --lr must be a number; got "0.1".'),
    ("output-proc", "error: --output-dir '/proc/x' cannot be made: the folder '/proc' does not take new files or "
                    "folders"),
    ("output-file", "is a file; give a new or empty folder, or a run's folder to resume it."),
    ("output-other-files", "already holds other files and is not a run's folder; give a new or empty folder, or a "
                           "run's folder to resume it."),
    ("temperature-inf", "error: The temperature must be a finite number above 0; got inf."),
    ("temperature-huge", "error: The temperature must be at most 100 (distillation uses 1 to 20); got 1e+308."),
    ("alpha-kl-nan", "error: The loss weight alpha_kl must be a finite number; got nan."),
    ("alpha-kl-huge", "error: The loss weight alpha_kl must be at most 10,000; got 1e+308."),
    ("corpus-folder", "error: The corpus '/etc' is a folder; give a text file, one sample a line."),
])
def test_audited_command_lines_are_one_line_exit_2_and_leave_no_folder(case, message, tmp_path, runs_dir,
                                                                       tiny_teacher_dir, tiny_corpus, capsys):
    out = tmp_path / "run"
    argv = ["--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus), "--output-dir", str(out)]
    if case == "long-teacher":
        argv[1] = "a" * 300
    elif case in CONFIG_FILES:
        config = tmp_path / "config.json"
        config.write_text(json.dumps(CONFIG_FILES[case]), encoding="utf-8")
        argv += ["--config", str(config)]
    elif case == "output-proc":
        if not Path("/proc/self").is_dir():
            pytest.skip("no /proc on this machine")
        argv[-1] = "/proc/x"
    elif case == "output-file":
        out.write_text("notes", encoding="utf-8")
    elif case == "output-other-files":  # such as /etc: a run must not scatter its files among others
        out.mkdir()
        (out / "passwd").write_text("root:x:0:0", encoding="utf-8")
    elif case == "corpus-folder":
        argv[3] = "/etc"
    argv += {"temperature-inf": ["--temperature", "inf"], "temperature-huge": ["--temperature", "1e308"],
             "alpha-kl-nan": ["--alpha-kl", "nan"], "alpha-kl-huge": ["--alpha-kl", "1e308"]}.get(case, [])
    before = sorted(tmp_path.iterdir())
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0], err
    assert sorted(tmp_path.iterdir()) == before and list(runs_dir.iterdir()) == []
    if case == "output-other-files":
        assert [p.name for p in out.iterdir()] == ["passwd"]
    assert not Path("/proc/x").exists()


def test_a_run_writes_its_directory_and_a_loadable_student(tmp_path, tiny_teacher_dir, tiny_corpus):
    long_line = tmp_path / "corpus.txt"
    long_line.write_text(tiny_corpus.read_text(encoding="utf-8") + " ".join(["очень"] * 300) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    result = run_cli("--teacher", tiny_teacher_dir, "--corpus", long_line, "--max-steps", 8, "--save-every", 4,
                     "--output-dir", out, *SHORT, "--max-length", 128)
    assert result.returncode == 0, result.stderr
    assert "warning: 1 line was longer than --max-length 128 tokens and was cut." in result.stderr
    assert result.stderr.strip().splitlines()[-1] == f"finished 8 steps; the student is in {out / 'final'}"
    config = json.loads((out / "config.json").read_text())
    assert config["max_steps"] == 8 and config["teacher"] == str(tiny_teacher_dir)
    records = read_metrics(out)
    assert [r["step"] for r in records] == [0, 2, 4, 6, 8]
    for key in ["step", "loss", "loss_kl", "loss_mlm", "loss_cos", "lr", "tokens_per_s"]:
        assert all(key in r for r in records[1:])
    assert "eval_mlm_acc" in records[2] and "eval_agreement" in records[4]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000004.pt", "step-000008.pt"]
    checkpoint = torch.load(out / "checkpoints" / "step-000008.pt", weights_only=False)
    assert {"model", "optimizer", "scheduler", "rng", "epoch", "position", "step"} <= set(checkpoint)
    student = AutoModelForMaskedLM.from_pretrained(out / "final")
    tokenizer = AutoTokenizer.from_pretrained(out / "final")
    assert student.config.num_hidden_layers == 2
    assert student(**tokenizer(["Привет!"], return_tensors="pt")).logits.shape[-1] == len(tokenizer)
    assert read_status(out)["state"] == "finished"
    for folder in ("student", "init", "final"):  # evaluation's truncated calls leave nothing in the saved files
        saved = json.loads((out / folder / "tokenizer_config.json").read_text(encoding="utf-8"))
        assert not set(RUNTIME_KEYS) & set(saved), folder


def test_kill_9_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_teacher_dir, tiny_corpus):
    # checkpoints every 5 steps and rows every 4: the resume starts inside a logging window
    common = ["--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--max-steps", 24, "--save-every", 5, *SHORT,
              "--log-every", 4]
    whole = tmp_path / "whole"
    assert run_cli(*common, "--output-dir", whole).returncode == 0
    killed = tmp_path / "killed"
    process = start_cli(*common, "--output-dir", killed)
    wait_for(lambda: (killed / "checkpoints" / "step-000010.pt").exists())
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert read_status(killed)["state"] == "stopped"  # the dead process is seen as stopped, not running
    resumed = run_cli("--resume", killed)
    assert resumed.returncode == 0, resumed.stderr
    a, b = load_file(whole / "final" / "model.safetensors"), load_file(killed / "final" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)  # same data, masks, dropout and optimizer state
    rows, whole_rows = read_metrics(killed), read_metrics(whole)
    assert [r["step"] for r in rows] == list(range(0, 25, 4))  # step 0's row kept, not written again
    timing = {"tokens_per_s", "steps_per_s", "elapsed_s"}  # the only fields a resume may change
    for row, whole_row in zip(rows, whole_rows):
        assert set(row) == set(whole_row)
        for key in set(row) - timing:
            assert row[key] == pytest.approx(whole_row[key], rel=1e-6), (row["step"], key)
    elapsed = [r["elapsed_s"] for r in rows]
    assert elapsed == sorted(elapsed)  # the clock continues across the resume instead of starting again


def test_resume_before_any_checkpoint_says_it_starts_again(tmp_path, tiny_teacher_dir, tiny_corpus):
    out = tmp_path / "run"
    assert run_cli("--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--max-steps", 2, "--output-dir", out,
                   *SHORT).returncode == 0
    for path in (out / "checkpoints").iterdir():  # as if killed before its first checkpoint
        path.unlink()
    result = run_cli("--resume", out, "--max-steps", 4)
    assert result.returncode == 0, result.stderr
    said = [line for line in result.stderr.splitlines() if "checkpoint" in line]
    assert said == ["warning: No checkpoint was saved before the run stopped; starting again from step 0."]
    assert [r["step"] for r in read_metrics(out)] == [0, 2, 4]  # the untrained student's row once
    assert read_guesses(out).steps == [0, 4]  # the guesses of step 2 were cut with its metrics row


def test_resume_status_says_when_there_was_no_checkpoint(tmp_path):
    from accelerate import Accelerator

    from train.config import DistillConfig
    from train.distill import DataCursor, restore
    (tmp_path / "metrics.jsonl").write_text("")
    cursor = DataCursor(lambda epoch: [[0], [1]])
    step, window, _ = restore(DistillConfig(), tmp_path, True, (), cursor, Accelerator(cpu=True))
    assert step == 0 and window.steps == 0 and (cursor.epoch, cursor.position) == (0, 0)
    assert read_status(tmp_path)["message"] == ("No checkpoint was saved before the run stopped; starting again "
                                                "from step 0.")


def test_cursor_continues_from_the_same_global_place_with_fewer_processes():
    from train.distill import DataCursor
    batches = {epoch: [[epoch * 100 + i] for i in range(7)] for epoch in range(3)}  # 7 batches an epoch
    two = [DataCursor(batches.get, rank, 2) for rank in (0, 1)]
    taken = [[c.next_rows() for c in two] for _ in range(2)]
    assert taken == [[[0], [1]], [[2], [3]]]
    state = {**two[0].state(), "world_size": 2}
    one = DataCursor(batches.get, 0, 1)
    one.restore(state)
    assert [one.next_rows() for _ in range(4)] == [[4], [5], [6], [100]]  # nothing re-read, nothing skipped
    older = DataCursor(batches.get, 0, 1)
    older.restore({"epoch": 0, "position": 2, "world_size": 2})  # a checkpoint counting steps per process
    assert older.next_rows() == [4]
    # two processes leave an odd last batch out, as before: epoch 1 starts after 3 steps
    fresh = [DataCursor(batches.get, rank, 2) for rank in (0, 1)]
    assert [[c.next_rows() for c in fresh] for _ in range(4)][3] == [[100], [101]]


@pytest.mark.parametrize("suffix, text", [(".yaml", "alpha_kl: [1, 2\nlr: 3\n"), (".json", '{"alpha_kl": 5,}')])
def test_unreadable_config_file_is_one_whole_sentence(tmp_path, suffix, text, capsys):
    path = tmp_path / f"bad{suffix}"
    path.write_text(text)
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: Could not read the config file") and "line" in err[0]
    assert err[0].endswith("fix it and try again."), err


def test_a_config_file_that_is_a_document_is_named_for_what_it_is(tmp_path, capsys):
    path = tmp_path / "recipe.yaml"
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\n1 0 obj")
    assert main(["--config", str(path)]) == 2
    assert capsys.readouterr().err == (f"error: The config file '{path}' is a PDF document, not plain text; save or "
                                       "export it as a YAML or JSON text file and try again.\n")


def test_sigterm_stops_cleanly_with_a_checkpoint(tmp_path, tiny_teacher_dir, tiny_corpus):
    out = tmp_path / "run"
    process = start_cli("--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--max-steps", 100000,
                        "--save-every", 100000, "--output-dir", out, *SHORT)
    wait_for(lambda: len(read_metrics(out)) >= 3)  # step 0's evaluation, then steps 2 and 4
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM  # as a shell reports a stopped command: not finished
    status = read_status(out)
    assert status["state"] == "stopped"
    said = process.stderr.read().strip().splitlines()[-1] if process.stderr else ""
    assert said == f"stopped at step {status['step']:,} of 100,000; checkpoint saved. Resume with: python -m " \
                   f"train.distill --resume {out}", said
    checkpoints = list((out / "checkpoints").iterdir())
    assert len(checkpoints) == 1 and int(checkpoints[0].stem.split("-")[1]) == status["step"] >= 4


def test_nan_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, tiny_teacher_dir, tiny_corpus):
    teacher_copy_dir = tmp_path / "teacher"
    teacher_copy_dir.mkdir()
    for item in tiny_teacher_dir.iterdir():
        (teacher_copy_dir / item.name).write_bytes(item.read_bytes())
    out = tmp_path / "run"
    assert run_cli("--teacher", teacher_copy_dir, "--corpus", tiny_corpus, "--max-steps", 4, "--save-every", 4,
                   "--output-dir", out, *SHORT).returncode == 0
    good = (out / "checkpoints" / "step-000004.pt").read_bytes()
    weights = load_file(teacher_copy_dir / "model.safetensors")  # the teacher goes bad on disk: its outputs become NaN
    save_file({k: torch.full_like(v, float("nan")) if "LayerNorm.weight" in k else v for k, v in weights.items()},
              teacher_copy_dir / "model.safetensors")
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
    # fewer steps than the run has done: it used to say "finished 2 steps" and the app then showed "step 2 of 1"
    assert main(["--resume", str(out), "--max-steps", "1"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --max-steps 1 is below the 2 steps the run run has done; give "
                                               "more than 2 to train it further, or leave --max-steps out.")


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


def test_the_config_holds_one_loss_weights_and_keeps_flat_names():
    from core.distill.losses import LossWeights
    from train.config import DistillConfig, build_config

    cfg = build_config({"alpha_kl": 3.0, "temperature": 1.5}, {"alpha_mlm": 0.5, "max_steps": 7})
    assert cfg.losses == LossWeights(alpha_kl=3.0, alpha_mlm=0.5, temperature=1.5)
    flat = cfg.to_dict()
    assert "losses" not in flat and (flat["alpha_kl"], flat["alpha_mlm"], flat["max_steps"]) == (3.0, 0.5, 7)
    assert DistillConfig.from_dict(flat) == cfg  # config.json written by a run reads back the same
    with pytest.raises(ValueError, match="Unknown option.*alpha_kll"):
        build_config({"alpha_kll": 1}, {})


@pytest.mark.parametrize("case, message", [
    ("missing", "error: --resume: '{p}/nothere' does not exist; give a run's folder (runs/<id>) or a run id."),
    ("not-a-run", "error: --resume: '{p}' is not a distillation run's folder (it has no config.json); give a run's "
                  "folder (runs/<id>) or a run id."),
])
def test_resume_names_what_is_wrong_with_the_folder(case, message, tmp_path, capsys):
    folder = tmp_path / "nothere" if case == "missing" else tmp_path
    assert main(["--resume", str(folder)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(message.format(p=tmp_path)), err


def test_the_first_rows_speed_leaves_out_the_untrained_students_evaluation(tmp_path, tiny_teacher_dir, tiny_corpus,
                                                                          monkeypatch):
    import time

    from train import distill

    evaluate_start = distill.evaluate_start

    def slow_evaluation(*args, **kwargs):  # as a real teacher's held-out evaluation takes seconds
        time.sleep(4)
        return evaluate_start(*args, **kwargs)

    monkeypatch.setattr(distill, "evaluate_start", slow_evaluation)
    out = tmp_path / "run"
    assert main(["--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus), "--max-steps", "2",
                 "--output-dir", str(out), *SHORT]) == 0
    first = next(r for r in read_metrics(out) if r["step"] == 2)
    # the run's clock holds the evaluation and the two steps; the row's speed, the steps alone: however busy the
    # machine, the two differ by at least the evaluation's 4 s (they would by almost nothing if it were counted)
    assert first["elapsed_s"] - 2 / first["steps_per_s"] >= 4.0


def test_a_finished_run_resumed_for_more_steps_no_longer_offers_its_old_final_student(tmp_path, tiny_teacher_dir,
                                                                                      tiny_corpus, monkeypatch):
    from core.runs.store import model_source
    from train import distill

    out = tmp_path / "run"
    assert main(["--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus), "--max-steps", "2",
                 "--save-every", "2", "--output-dir", str(out), *SHORT]) == 0
    assert model_source(out)[0] == "final"

    def power_cut(*args, **kwargs):  # the resumed run ends before its first new step is saved
        raise RuntimeError("power cut")

    monkeypatch.setattr(distill, "forward_backward", power_cut)
    with pytest.raises(RuntimeError, match="power cut"):
        main(["--resume", str(out), "--max-steps", "6"])
    # publish, export, run:<id> and the Predictions tab all read model_source: the step-2 checkpoint, not final/
    assert model_source(out) == ("step-000002.pt", out / "checkpoints" / "step-000002.pt")


def test_a_run_resumed_for_more_steps_lays_its_schedule_over_the_new_length(tmp_path, tiny_teacher_dir, tiny_corpus):
    """As README and the Resume box say: the rate, at 0 where the run ended, goes back up and decays to 0 again."""
    out = tmp_path / "run"
    assert main(["--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus), "--max-steps", "4",
                 "--save-every", "4", "--output-dir", str(out), *SHORT]) == 0
    assert main(["--resume", str(out), "--max-steps", "8"]) == 0
    rate = {r["step"]: r["lr"] for r in read_metrics(out) if "lr" in r}
    assert rate[4] == 0.0 and rate[6] > rate[8] == 0.0  # SHORT logs every 2 steps

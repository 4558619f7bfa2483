"""python -m train.export, the Distill tab's export button and the Predictions tab's exported student.

Each test that needs a runtime skips with the reason when its package is not installed."""
from __future__ import annotations

import json
import os
import shutil
import zipfile

import numpy as np
import pytest

from core.bench.runtimes.exported import exported_folders, load_exported, run_exports
from core.compare import predict
from tests.support.runtimes import needs
from train import export as export_cli
from train.launcher import RunLauncher
from ui.context import AppContext

pytestmark = pytest.mark.slow

SENTENCE = "Я люблю пить [MASK] с лимоном."


@pytest.mark.parametrize("fmt, int8", [("onnx", False), ("onnx", True), ("openvino", False), ("openvino", True)])
def test_the_export_folder_runs_without_the_lab(fmt, int8, tiny_student_dir, tmp_path, capsys):
    needs(export_cli.mode_of(fmt, int8))
    out = tmp_path / "export"
    assert export_cli.main([str(tiny_student_dir), "--format", fmt, *(["--int8"] if int8 else []),
                            "--output", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"Exported {tiny_student_dir} to {out}: ")
    info = json.loads((out / "export.json").read_text(encoding="utf-8"))
    assert info["format"] == fmt and info["int8"] == int8 and info["positions"] > 0 and 0 <= info["agreement"] <= 1
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert "## Run it" in readme and f"{info['size_mb']:,.1f} MB" in readme and "Top-1 agreement" in readme
    assert readme.startswith(f"# {tiny_student_dir.name}, exported") and str(tmp_path) not in readme  # no path
    assert (out / "tokenizer.json").is_file() and (out / "config.json").is_file()
    if fmt == "onnx" and not int8:
        assert info["agreement"] >= 0.99  # fp32 says the same words
        assert info["size_mb"] <= info["pytorch_size_mb"] * 1.02  # the tied output layer is not stored twice
    else:  # random weights: near-ties that bf16 or int8 may flip
        assert info["agreement"] > 0.8
    from transformers import AutoTokenizer  # as the README says: the runtime alone, with the tokenizer
    tokenizer = AutoTokenizer.from_pretrained(out)
    batch = tokenizer([SENTENCE.replace("[MASK]", tokenizer.mask_token)], return_tensors="np",
                      return_token_type_ids=False)
    if fmt == "onnx":
        import onnxruntime as ort
        logits = ort.InferenceSession(str(out / "model.onnx")).run(None, dict(batch))[0]
    else:
        import openvino as ov
        logits = ov.Core().compile_model(str(out / "openvino_model.xml"), "CPU")(dict(batch))[0]
    assert logits.shape == (1, batch["input_ids"].shape[1], len(tokenizer)) and np.isfinite(logits).all()


def test_export_mistakes_are_one_line_exit_2(tiny_student_dir, tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine", encoding="utf-8")
    cases = [(["--format", "onnx", "--output", str(busy)], "already holds other files and is not an earlier export"),
             (["--format", "tflite", "--output", str(tmp_path / "x")], "argument --format: invalid choice"),
             (["--output", str(tmp_path / "x")], "the following arguments are required: --format"),
             (["--format", "onnx", "--output", "/proc/x"], "--output '/proc/x' cannot be made: the folder '/proc'"),
             (["--format", "onnx", "--output", str(busy / "notes.txt" / "x")], "is a file, not a folder")]
    for args, words in cases:
        assert exit_code([str(tiny_student_dir), *args]) == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and words in err[0], err
    assert (busy / "notes.txt").is_file()


def test_an_unknown_run_is_named_in_the_terminals_words(runs_dir, tmp_path, capsys):
    assert exit_code(["run:nope", "--format", "onnx", "--output", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["error: There is no run 'nope' in this lab's runs folder: name a run that train.distill or the "
                   "Distill tab started (run:RUN_ID, RUN_ID being its folder's name), or start one."]
    assert not (tmp_path / "x").exists()


def exit_code(argv: list[str]) -> int:
    """main's return code, or argparse's exit code for a usage error."""
    try:
        return export_cli.main(argv)
    except SystemExit as stop:
        return stop.code


def finished_run(runs_dir, student_dir, run_id="done-run"):
    run = runs_dir / run_id
    shutil.copytree(student_dir, run / "final")
    (run / "status.json").write_text(json.dumps({"state": "finished"}), encoding="utf-8")
    return run


def test_distill_tab_exports_a_finished_run_and_predictions_compare_it(tiny_teacher_dir, tiny_student_dir, runs_dir):
    needs("onnxruntime")
    from ui import distill_tab, predict_exported

    run = finished_run(runs_dir, tiny_student_dir)
    ctx = AppContext(str(tiny_teacher_dir), str(tiny_student_dir), launcher=RunLauncher(runs_dir))
    line, archive = distill_tab.export_run(ctx, "done-run", None, "onnx", False)
    assert line.startswith("Exported run done-run for ONNX Runtime: ") and "top-1 agreement" in line
    assert str(runs_dir) not in line
    assert [p.name for p in exported_folders(run)] == ["onnx"]
    with zipfile.ZipFile(archive) as zipped:
        assert {"onnx/model.onnx", "onnx/README.md", "onnx/export.json"} <= set(zipped.namelist())
    assert "run:done-run" in (run_exports(run) / "onnx" / "README.md").read_text(encoding="utf-8")

    assert predict_exported.exported_choices(ctx) == [("run:done-run · onnx", "run:done-run:onnx")]
    figure, agreement = predict_exported.compare_exported(ctx, "run:done-run:onnx", 3, SENTENCE,
                                                          progress=lambda *a, **k: 0)
    assert "| 1 | run:done-run \\[onnx\\] | " in agreement and "| yes | 100% |" in agreement
    assert [t.type for t in figure.data].count("bar") == 2  # PyTorch's and the export's bars (words: text traces)
    with pytest.raises(ValueError, match="Choose an exported student from the list"):
        predict_exported.compare_exported(ctx, "run:done-run:../../etc", 3, SENTENCE, progress=lambda *a, **k: 0)


def test_the_exported_student_says_the_same_words(tiny_student_dir, tmp_path):
    needs("onnxruntime")
    from core.models import zoo
    export_cli.export_model(str(tiny_student_dir), "onnx", False, tmp_path / "onnx")
    pytorch, exported = zoo.load(str(tiny_student_dir)), load_exported(tmp_path / "onnx")
    result = predict.compare([pytorch, exported], SENTENCE, 5)
    assert result.results[0].masks[0].tokens == result.results[1].masks[0].tokens
    assert all(item.top1 for pair in result.pairs for item in pair.items)


def test_a_damaged_export_is_one_sentence(tiny_student_dir, tmp_path):
    needs("onnxruntime")
    export_cli.export_model(str(tiny_student_dir), "onnx", False, tmp_path / "onnx")
    (tmp_path / "onnx" / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ValueError) as refused:
        load_exported(tmp_path / "onnx")
    said = str(refused.value)
    assert said.startswith("The export onnx cannot be loaded (") and said.endswith("); export the model again.")
    assert "\n" not in said and str(tmp_path) not in said and "onnx/model.onnx" in said


def test_an_unfinished_run_is_not_exported(tiny_teacher_dir, tiny_student_dir, runs_dir):
    from ui import distill_tab

    run = runs_dir / "running-run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "running"}), encoding="utf-8")
    ctx = AppContext(str(tiny_teacher_dir), str(tiny_student_dir), launcher=RunLauncher(runs_dir))
    with pytest.raises(ValueError, match="only a finished run's student is exported"):
        distill_tab.export_run(ctx, "running-run", None, "onnx", False)


def unfinished_run(runs_dir, student_dir, run_id: str, status: dict, step: int = 3):
    """A run stopped or still training at `step`: its student's shape (student/), its checkpoint of that step with
    the student's weights as train.distill saves them, and no final/."""
    import torch
    from transformers import AutoModelForMaskedLM

    run = runs_dir / run_id
    shutil.copytree(student_dir, run / "student")
    (run / "config.json").write_text("{}", encoding="utf-8")
    (run / "status.json").write_text(json.dumps(status), encoding="utf-8")
    weights = AutoModelForMaskedLM.from_pretrained(student_dir).state_dict()
    (run / "checkpoints").mkdir()
    torch.save({"model": {f"student.{k}": v for k, v in weights.items()}, "step": step},
               run / "checkpoints" / f"step-{step:06d}.pt")
    return run


def test_the_command_refuses_an_unfinished_run_as_the_tab_does(runs_dir, tiny_student_dir, tmp_path, capsys):
    """Its newest checkpoint is not the student the run was asked for: the command says how to finish the run (or
    to finish it where it stands) and writes nothing, by run id and by folder alike."""
    needs("onnxruntime")
    run = unfinished_run(runs_dir, tiny_student_dir, "stopped-run", {"state": "stopped", "step": 3})
    out = tmp_path / "x"
    capsys.readouterr()
    for named in ("run:stopped-run", str(run)):
        assert exit_code([named, "--format", "onnx", "--output", str(out)]) == 2
        assert capsys.readouterr().err.splitlines() == [
            "error: Run 'stopped-run' has no finished student (final/): only a finished run's student is exported; "
            f"finish it with python -m train.distill --resume {named} (or with --max-steps 3 to finish it at its "
            "checkpoint of step 3, training no further), then export it."]
        assert not out.exists()


def test_a_run_still_training_is_waited_for(runs_dir, tiny_student_dir, tmp_path, capsys):
    needs("onnxruntime")
    unfinished_run(runs_dir, tiny_student_dir, "busy-run", {"state": "running", "pid": os.getpid(), "step": 3})
    capsys.readouterr()
    assert exit_code(["run:busy-run", "--format", "onnx", "--output", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: Run 'busy-run' is still training: only a finished run's student is exported; wait for it to finish, "
        "then export it."]


def test_scripts_export_student_refuses_in_the_same_words(runs_dir, tiny_student_dir, tmp_path, capsys):
    from scripts import export_student

    unfinished_run(runs_dir, tiny_student_dir, "stopped-run", {"state": "stopped", "step": 3})
    capsys.readouterr()
    assert export_student.main(["run:stopped-run", str(tmp_path / "out")]) == 2
    said = capsys.readouterr().err
    assert "finish it with python -m train.distill --resume run:stopped-run (or with --max-steps 3" in said
    assert exit_code(["run:stopped-run", "--format", "onnx", "--output", str(tmp_path / "x")]) == 2
    assert capsys.readouterr().err == said


def test_a_runs_student_before_training_is_exported_while_it_trains(runs_dir, tiny_student_dir, tmp_path, capsys):
    """run:RUN_ID@init names a finished copy (the student before its first step), so it is exported."""
    needs("onnxruntime")
    run = unfinished_run(runs_dir, tiny_student_dir, "stopped-run", {"state": "stopped", "step": 3})
    shutil.copytree(tiny_student_dir, run / "init")
    assert exit_code(["run:stopped-run@init", "--format", "onnx", "--output", str(tmp_path / "x")]) == 0
    assert json.loads((tmp_path / "x" / "export.json").read_text(encoding="utf-8"))["source"] == "run:stopped-run@init"


@pytest.mark.parametrize("agreement, int8, fmt, note", [
    (0.9375, True, "onnx", "Low agreement (below 99%): this export predicts a different top word than the PyTorch "
                           "model at 6.2% of the 96 masked positions; for a closer export, use fp32 weights instead "
                           "of int8, or OpenVINO (its int8 compresses the weights only)."),
    (0.9792, True, "openvino", "Low agreement (below 99%): this export predicts a different top word than the "
                               "PyTorch model at 2.1% of the 96 masked positions; for a closer export, use fp32 "
                               "weights instead of int8."),
    (0.9, False, "openvino", "Low agreement (below 99%): this export predicts a different top word than the PyTorch "
                             "model at 10.0% of the 96 masked positions; for a closer export, use ONNX Runtime (it "
                             "computes in float32 on every CPU)."),
    (0.99, True, "onnx", ""),
    (1.0, False, "onnx", ""),
])
def test_a_low_agreement_is_flagged_with_what_it_means(agreement, int8, fmt, note):
    assert export_cli.agreement_note(agreement, 96, fmt, int8) == note


@pytest.mark.parametrize("measured", [(0.9375, 96), (1.0, 96)])
def test_the_flag_is_in_the_printed_line_the_readme_and_export_json(measured, tiny_student_dir, tmp_path, capsys,
                                                                     monkeypatch):
    """An export whose agreement falls below 99% says so wherever its agreement is reported; one above says nothing
    more. The measurement is set here: a tiny random student's agreement is whatever its near-ties give."""
    needs("onnxruntime")
    monkeypatch.setattr(export_cli, "top1_agreement", lambda loaded, session: measured)
    out = tmp_path / "onnx"
    assert export_cli.main([str(tiny_student_dir), "--format", "onnx", "--output", str(out)]) == 0
    note = export_cli.agreement_note(*measured, "onnx", False)
    assert bool(note) == (measured[0] < 0.99)
    line = capsys.readouterr().out
    info = json.loads((out / "export.json").read_text(encoding="utf-8"))
    readme = (out / "README.md").read_text(encoding="utf-8")
    assert info["agreement"] == measured[0] and info["agreement_note"] == note
    if note:
        assert line.endswith(f"over 96 masked positions. {note}\n")
        assert readme.endswith(f"\n**{note}**\n")
    else:
        assert line.endswith("over 96 masked positions.\n") and "Low agreement" not in readme


def test_an_int8_onnx_export_stores_the_word_embeddings_once(tiny_student_dir, tmp_path):
    """The tied MLM output layer reads the embeddings' int8 table (transposed) instead of a second quantised copy:
    one (vocab, hidden) matrix in the file, and the export still says the PyTorch student's words."""
    needs("onnxruntime-int8")
    import onnx
    from transformers import AutoConfig

    report = export_cli.export_model(str(tiny_student_dir), "onnx", True, tmp_path / "int8")
    config = AutoConfig.from_pretrained(tiny_student_dir)
    shape = {config.vocab_size, config.dim}
    graph = onnx.load(str(tmp_path / "int8" / "model.onnx")).graph
    tables = [w.name for w in graph.initializer if len(w.dims) == 2 and set(w.dims) == shape]
    assert len(tables) == 1, tables
    assert report.agreement > 0.8  # random weights: near-ties that int8 may flip

"""python -m train.export, the Distill tab's export button and the Predictions tab's exported student.

Each test that needs a runtime skips with the reason when its package is not installed."""
from __future__ import annotations

import json
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

pytestmark = pytest.mark.unit

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
    from ui import distill_tab, predict_tab

    run = finished_run(runs_dir, tiny_student_dir)
    ctx = AppContext(str(tiny_teacher_dir), str(tiny_student_dir), launcher=RunLauncher(runs_dir))
    line, archive = distill_tab.export_run(ctx, "done-run", None, "onnx", False)
    assert line.startswith("Exported run done-run for ONNX Runtime: ") and "top-1 agreement" in line
    assert str(runs_dir) not in line
    assert [p.name for p in exported_folders(run)] == ["onnx"]
    with zipfile.ZipFile(archive) as zipped:
        assert {"onnx/model.onnx", "onnx/README.md", "onnx/export.json"} <= set(zipped.namelist())
    assert "run:done-run" in (run_exports(run) / "onnx" / "README.md").read_text(encoding="utf-8")

    assert predict_tab.exported_choices(ctx) == [("run:done-run · onnx", "run:done-run:onnx")]
    figure, agreement = predict_tab.compare_exported(ctx, "run:done-run:onnx", 3, SENTENCE, progress=lambda *a, **k: 0)
    assert "| 1 | run:done-run \\[onnx\\] | " in agreement and "| yes | 100% |" in agreement
    assert len(figure.data) == 2
    with pytest.raises(ValueError, match="Choose an exported student from the list"):
        predict_tab.compare_exported(ctx, "run:done-run:../../etc", 3, SENTENCE, progress=lambda *a, **k: 0)


def test_the_exported_student_says_the_same_words(tiny_student_dir, tmp_path):
    needs("onnxruntime")
    from core.models import zoo
    export_cli.export_model(str(tiny_student_dir), "onnx", False, tmp_path / "onnx")
    pytorch, exported = zoo.load(str(tiny_student_dir)), load_exported(tmp_path / "onnx")
    result = predict.compare([pytorch, exported], SENTENCE, 5)
    assert result.results[0].masks[0].tokens == result.results[1].masks[0].tokens
    assert all(item.top1 for pair in result.pairs for item in pair.items)


def test_an_unfinished_run_is_not_exported(tiny_teacher_dir, tiny_student_dir, runs_dir):
    from ui import distill_tab

    run = runs_dir / "running-run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "running"}), encoding="utf-8")
    ctx = AppContext(str(tiny_teacher_dir), str(tiny_student_dir), launcher=RunLauncher(runs_dir))
    with pytest.raises(ValueError, match="Run running-run has not finished"):
        distill_tab.export_run(ctx, "running-run", None, "onnx", False)

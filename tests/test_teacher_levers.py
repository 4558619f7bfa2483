"""The teacher-lever comparison: each lever is pretrained by train.pretrain_teacher and its curve lands in one file."""
from __future__ import annotations

import json

import pytest
from transformers import AutoTokenizer

from scripts import teacher_levers
from tests.support.models import corpus_lines

pytestmark = pytest.mark.cli


def test_one_lever_writes_its_model_curve_and_the_summary(tmp_path, capsys):
    lines = corpus_lines(400)
    (tmp_path / "train.txt").write_text("\n".join(lines[:360]), encoding="utf-8")
    (tmp_path / "valid.txt").write_text("\n".join(lines[360:]), encoding="utf-8")
    out = tmp_path / "levers"
    assert teacher_levers.main([str(out), "--levers", "baseline", "--steps", "2", "--eval-every", "1",
                                "--batch-size", "4", "--threads", "1", "--corpus", str(tmp_path / "train.txt"),
                                "--valid-corpus", str(tmp_path / "valid.txt")]) == 0
    summary = json.loads((out / "levers.json").read_text())
    lever = summary["levers"]["baseline"]
    assert summary["best_lever"] == "baseline" and lever["exit_code"] == 0
    assert [row["step"] for row in lever["log"]] == [1, 2]
    assert lever["vocab_entries"] == len(AutoTokenizer.from_pretrained(out / "baseline"))
    assert lever["args"]["corpus"] == str(tmp_path / "train.txt")
    assert (out / "baseline" / "model.safetensors").is_file()
    assert "baseline     best held-out masked-token accuracy" in capsys.readouterr().out


def test_an_unknown_lever_is_refused_in_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        teacher_levers.main([str(tmp_path), "--levers", "baseline,bigger"])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "unknown lever(s) bigger" in err and err.count("\n") == 1

"""The one-shot GPU script, run on the CPU at toy sizes: every part runs, is written to JSON and is in the table."""
from __future__ import annotations

import json

import pytest

from scripts import gpu_check

pytestmark = pytest.mark.cli


def test_dry_run_writes_every_part_and_a_table(tmp_path, capsys):
    assert gpu_check.main([str(tmp_path), "--dry-run"]) == 0
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert data["errors"] == {}
    assert data["peaks"]["float32"]["measured_tflops"] > 0
    assert {row["mode"] for row in data["card"]["rows"]} == {"reference", "fast"}
    variants = data["step"]["variants"]
    chunked = variants["as train.distill runs it"]
    whole = variants["before: unpadded vocabulary product, whole-tensor KL"]
    assert 0 < chunked["mfu"] < 1 and chunked["tokens_per_s"] > 0 and chunked["peak_memory_gib"] > 0
    assert chunked["flops_per_step"] == whole["flops_per_step"]
    assert "aten::" in chunked["profile"] and "profile" not in whole
    assert data["run"]["exit_code"] == 0 and data["run"]["status"]["state"] == "finished"
    assert data["run"]["loss_fell"] and data["run"]["last_loss"] < data["run"]["first_loss"]
    table = capsys.readouterr().out
    assert "MFU" in table and "fell" in table and "ERROR" not in table


def test_a_part_that_fails_is_recorded_and_the_rest_still_run(tmp_path, monkeypatch, capsys):
    def broken(sizes):
        raise RuntimeError("no such kernel")

    later = {"variants": {"a step measured after the failure": {"skipped": "not measured in this test"}}}
    monkeypatch.setattr(gpu_check, "card_table", broken)
    monkeypatch.setattr(gpu_check, "distill_step", lambda sizes, report, time_limit_s: later)
    monkeypatch.setattr(gpu_check, "short_run", lambda sizes: {"skipped": True})
    assert gpu_check.main([str(tmp_path), "--dry-run"]) == 1
    data = json.loads((tmp_path / "gpu_check.json").read_text())
    assert data["errors"]["card"].startswith("RuntimeError: no such kernel")
    assert "card" not in data and data["step"] == later and data["run"] == {"skipped": True}
    assert "ERROR  card: RuntimeError: no such kernel" in capsys.readouterr().out


def test_without_a_gpu_and_without_dry_run_it_refuses_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    with pytest.raises(SystemExit) as stopped:
        gpu_check.main([str(tmp_path)])
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and "--dry-run" in err and err.count("\n") == 1

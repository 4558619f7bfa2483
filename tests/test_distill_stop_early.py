"""A Stop that reaches a run while it starts (loading, or evaluating its untrained student) ends it there: before,
the run went on to evaluate, train one step and save a checkpoint, so "stopped before its first step" depended on
when the signal came, and a press of Stop during loading cost a minute of evaluation."""
import os
import signal

import pytest

import train.distill as distill
from core.runs.store import read_metrics, read_status
from tests.support.cli import SHORT

pytestmark = pytest.mark.cli


@pytest.fixture
def own_signals():
    """train.distill installs its SIGTERM/SIGINT handlers in this process: put pytest's back afterwards."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def distil(tmp_path, tiny_teacher_dir, tiny_corpus) -> int:
    return distill.main(["--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus), "--max-steps", "100000",
                         "--save-every", "100000", "--output-dir", str(tmp_path / "run"), *SHORT])


def checkpoints(run_dir) -> list[str]:
    folder = run_dir / "checkpoints"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_a_stop_asked_while_the_process_started_ends_it_before_any_evaluation_or_step(
        tmp_path, tiny_teacher_dir, tiny_corpus, monkeypatch, own_signals):
    """The app's Stop written to the status before the process could catch a signal (stop_requested)."""
    monkeypatch.setattr(distill, "stop_requested", lambda run_dir, pid: True)
    assert distil(tmp_path, tiny_teacher_dir, tiny_corpus) == 0
    run = tmp_path / "run"
    status = read_status(run)
    assert (status["state"], status["step"]) == ("stopped", 0)
    assert status["message"] == "Stopped as asked, before its first checkpoint; resume starts again from step 0."
    assert checkpoints(run) == [] and read_metrics(run) == []


def test_sigterm_during_the_untrained_students_evaluation_ends_the_run_after_it_without_a_step(
        tmp_path, tiny_teacher_dir, tiny_corpus, monkeypatch, own_signals, capsys):
    evaluate_start = distill.evaluate_start

    def evaluate_then_signal(*args, **kwargs):
        evaluate_start(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # caught by the run's handler, as the app's Stop would be

    monkeypatch.setattr(distill, "evaluate_start", evaluate_then_signal)
    assert distil(tmp_path, tiny_teacher_dir, tiny_corpus) == 128 + signal.SIGTERM
    run = tmp_path / "run"
    status = read_status(run)
    assert (status["state"], status["step"]) == ("stopped", 0)
    assert checkpoints(run) == []
    assert [row["step"] for row in read_metrics(run)] == [0]  # the untrained student's figures are kept
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said == f"stopped before step 1; nothing to save. Resume with: python -m train.distill --resume {run}"

"""The app's run launcher: a queue on disk, one run at a time, ownership on a shared app, failures with reasons."""

import pytest

from core.runs.store import checkpoint_step, read_metrics, read_status, run_dir_of
from tests.waiting import wait_for
from train.config import DistillConfig
from train.launcher import RunLauncher


def config(teacher, corpus, steps=6, **kwargs) -> DistillConfig:
    return DistillConfig(teacher=str(teacher), corpus=str(corpus), max_steps=steps, batch_size=8, max_length=32,
                         log_every=2, eval_every=2, eval_lines=20, save_every=2, **kwargs)


@pytest.fixture
def launcher(runs_dir):
    return RunLauncher(runs_dir, poll_s=0.2).start()


def test_runs_wait_in_line_and_run_one_at_a_time(launcher, tiny_teacher_dir, tiny_corpus):
    first = launcher.submit(config(tiny_teacher_dir, tiny_corpus, steps=30))
    second = launcher.submit(config(tiny_teacher_dir, tiny_corpus))
    wait_for(lambda: read_status(run_dir_of(first, launcher.root)).get("state") == "running")
    assert read_status(run_dir_of(second, launcher.root))["state"] == "queued"
    assert launcher.queue_position(second) == 1
    wait_for(lambda: read_status(run_dir_of(second, launcher.root)).get("state") == "finished", timeout=240)
    assert read_status(run_dir_of(first, launcher.root))["state"] == "finished"
    assert read_metrics(run_dir_of(second, launcher.root))[-1]["step"] == 6


def test_stop_then_resume_continues_from_the_checkpoint(launcher, tiny_teacher_dir, tiny_corpus):
    run_id = launcher.submit(config(tiny_teacher_dir, tiny_corpus, steps=100000))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: checkpoint_step(run_dir) >= 2)
    assert "Stopping" in launcher.stop(run_id)
    wait_for(lambda: read_status(run_dir).get("state") == "stopped")
    stopped_at = checkpoint_step(run_dir)
    assert stopped_at == read_status(run_dir)["step"]
    launcher.resume(run_id, max_steps=stopped_at + 4)
    wait_for(lambda: read_status(run_dir).get("state") == "finished", timeout=240)
    final = stopped_at + 4
    assert [r["step"] for r in read_metrics(run_dir)] == sorted(set(range(2, final + 1, 2)) | {final})


def test_bad_input_is_refused_before_anything_is_queued(launcher, tmp_path, tiny_teacher_dir, tiny_corpus):
    with pytest.raises(ValueError, match="temperature"):
        launcher.submit(config(tiny_teacher_dir, tiny_corpus, temperature=0))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no text"):
        launcher.submit(config(tiny_teacher_dir, tiny_corpus), uploaded_corpus=str(empty))
    assert list(launcher.root.iterdir()) == []


def test_a_failing_run_shows_its_reason(launcher, tmp_path, tiny_corpus):
    run_id = launcher.submit(config(tmp_path / "missing-teacher", tiny_corpus))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: read_status(run_dir).get("state") == "failed")
    assert "does not exist" in read_status(run_dir)["message"]


def test_on_a_shared_app_only_the_owner_controls_a_run(runs_dir, tiny_teacher_dir, tiny_corpus):
    shared = RunLauncher(runs_dir, poll_s=0.2, shared=True)  # not started: the run stays queued
    run_id = shared.submit(config(tiny_teacher_dir, tiny_corpus), owner="alice")
    for action in (shared.stop, shared.resume, shared.delete):
        with pytest.raises(ValueError, match="another session"):
            action(run_id, "bob")
    with pytest.raises(ValueError, match="another session"):
        shared.set_public(run_id, "bob", True)
    assert "queue" in shared.stop(run_id, "alice")
    assert shared.delete(run_id, "alice").startswith("Deleted")
    with pytest.raises(ValueError, match="not a valid run id"):
        shared.stop("../../etc", "alice")

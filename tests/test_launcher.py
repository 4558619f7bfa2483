"""The app's run launcher: a queue on disk, one run at a time, ownership on a shared app, failures with reasons."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from core.runs.checkpoints import checkpoint_paths
from core.runs.store import (
    RunPaths,
    checkpoint_step,
    list_runs,
    pid_alive,
    read_config,
    read_console,
    read_metrics,
    read_status,
    run_dir_of,
    write_status,
)
from core.textfiles import wide_encoding
from tests.support.cli import SHORT
from tests.support.models import REPO
from tests.support.waiting import wait_for
from train.config import DistillConfig
from train.launcher import RunLauncher, evaluation_interval

pytestmark = pytest.mark.cli


def config(teacher, corpus, steps=6, **kwargs) -> DistillConfig:
    values = dict(teacher=str(teacher), corpus=str(corpus), max_steps=steps, batch_size=8, max_length=32,
                  log_every=2, eval_every=2, eval_lines=20, save_every=2)
    return DistillConfig.from_dict({**values, **kwargs})


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
    with pytest.raises(ValueError) as behind:  # not "finished": the run is only asked to end where it already is
        launcher.resume(run_id, max_steps=stopped_at)
    assert str(behind.value) == (f"The run is already at step {stopped_at}; resume it up to a later step than that "
                                 "(0 keeps its own number of steps).")
    launcher.resume(run_id, max_steps=stopped_at + 4)
    wait_for(lambda: read_status(run_dir).get("state") == "finished", timeout=240)
    final = stopped_at + 4
    assert [r["step"] for r in read_metrics(run_dir)] == sorted(set(range(0, final + 1, 2)) | {final})


def test_bad_input_is_refused_before_anything_is_queued(launcher, tmp_path, tiny_teacher_dir, tiny_corpus):
    with pytest.raises(ValueError, match="temperature"):
        launcher.submit(config(tiny_teacher_dir, tiny_corpus, temperature=0))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    with pytest.raises(ValueError, match="no text"):
        launcher.submit(config(tiny_teacher_dir, tiny_corpus), uploaded_corpus=str(empty))
    with pytest.raises(ValueError, match="does not exist"):  # the run would say so 20 s later, holding the queue
        launcher.submit(config(tmp_path / "missing-teacher", tiny_corpus))
    assert list(launcher.root.iterdir()) == []


def test_a_failing_run_shows_its_reason(launcher, tmp_path, tiny_teacher_dir, tiny_corpus):
    broken = tmp_path / "broken-teacher"  # its config reads, so it is queued; its weights do not load
    shutil.copytree(tiny_teacher_dir, broken)
    (broken / "model.safetensors").write_bytes(b"not weights")
    run_id = launcher.submit(config(broken, tiny_corpus))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: read_status(run_dir).get("state") == "failed")
    assert "cannot be read" in read_status(run_dir)["message"]


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


def test_delete_right_after_stop_waits_for_the_stop(launcher, tiny_teacher_dir, tiny_corpus):
    run_id = launcher.submit(config(tiny_teacher_dir, tiny_corpus, steps=100000))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: checkpoint_step(run_dir) >= 2)
    with pytest.raises(ValueError) as refused:
        launcher.delete(run_id)  # a running run is never deleted without being stopped first
    assert str(refused.value) == (f"Run {run_id} is running: press Stop first (it saves a checkpoint and ends), then "
                                  "Delete.")  # as the Distill tab says it
    launcher.stop(run_id)
    assert launcher.delete(run_id) == f"Deleted run {run_id}."
    time.sleep(4 * launcher.poll_s)  # the watcher reaps the child: it must not write the folder back
    assert not run_dir.exists() and launcher.queue_position(run_id) == 0


def test_delete_says_when_the_stop_outlasts_the_wait(runs_dir, tiny_teacher_dir, tiny_corpus):
    launcher = RunLauncher(runs_dir, poll_s=0.2, stop_wait_s=0.3).start()
    run_id = launcher.submit(config(tiny_teacher_dir, tiny_corpus, steps=100000))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: checkpoint_step(run_dir) >= 2)  # in its loop: SIGTERM now asks it to stop rather than kills it
    pid = read_status(run_dir)["pid"]
    os.kill(pid, signal.SIGSTOP)  # a run that cannot answer its stop in time
    try:
        launcher.stop(run_id)
        with pytest.raises(ValueError, match="still saving its checkpoint.*press Delete again"):
            launcher.delete(run_id)
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: read_status(run_dir).get("state") != "running", timeout=60)
    assert launcher.delete(run_id).startswith("Deleted") and not run_dir.exists()


def test_a_queued_run_lists_the_teacher_and_student_asked_for(runs_dir, tiny_teacher_dir, tiny_corpus):
    waiting = RunLauncher(runs_dir)  # not started: the run stays queued, its config.json not yet written
    run_id = waiting.submit(config(tiny_teacher_dir, tiny_corpus, student_layers=3, student_vocab_size=300))
    [info] = list_runs(runs_dir)
    assert (info["id"], info["state"], info["teacher"]) == (run_id, "queued", str(tiny_teacher_dir))
    assert (info["student_layers"], info["student_vocab_size"], info["align"]) == (3, 300, "reduce")


@pytest.mark.parametrize("max_steps, log_every, every", [(600, 10, 100), (300, 10, 50), (12, 10, 10), (100, 2, 16)])
def test_app_runs_are_evaluated_about_six_times_on_logged_steps(max_steps, log_every, every):
    assert evaluation_interval(max_steps, log_every) == every
    assert every % log_every == 0


def test_the_launcher_sets_the_evaluation_schedule(runs_dir, tiny_teacher_dir, tiny_corpus):
    run_id = RunLauncher(runs_dir).submit(config(tiny_teacher_dir, tiny_corpus, steps=600))
    assert read_config(run_dir_of(run_id, runs_dir))["eval_every"] == 100  # the config asked for 2
    run_id = RunLauncher(runs_dir, evaluations_per_run=None).submit(config(tiny_teacher_dir, tiny_corpus, steps=600))
    assert read_config(run_dir_of(run_id, runs_dir))["eval_every"] == 2


TEXT = "Привет, как дела?\nНормально, а у тебя?\n" * 20
WIDE = [("utf-16", "UTF-16"), ("utf-16-le", "UTF-16"), ("utf-16-be", "UTF-16"), ("utf-32", "UTF-32")]


@pytest.mark.parametrize("codec, named", WIDE)
def test_a_utf16_or_utf32_upload_is_named_by_its_encoding_and_its_own_name(runs_dir, tmp_path, tiny_teacher_dir,
                                                                           tiny_corpus, codec, named):
    upload = tmp_path / "gradio" / "5f0c1e" / "диалоги.txt"  # where the server keeps an upload under its own name
    upload.parent.mkdir(parents=True)
    upload.write_bytes(TEXT.encode(codec))
    with pytest.raises(ValueError) as error:
        RunLauncher(runs_dir).submit(config(tiny_teacher_dir, tiny_corpus), uploaded_corpus=str(upload),
                                     uploaded_name="диалоги.txt")
    message = str(error.value)
    assert f"'диалоги.txt' is saved as {named} text" in message and "UTF-8" in message, message
    assert str(tmp_path) not in message and message.endswith(".")
    assert list(runs_dir.iterdir()) == []


def test_other_upload_faults_name_the_file_not_the_server_path(runs_dir, tmp_path, tiny_teacher_dir, tiny_corpus):
    upload = tmp_path / "gradio" / "a1" / "notes.txt"
    upload.parent.mkdir(parents=True)
    for content, reason in [("Привет, мир".encode("cp1251"), "not UTF-8 text"), (bytes(range(256)) * 8, "binary"),
                            (b"\n \n", "no text")]:
        upload.write_bytes(content)
        with pytest.raises(ValueError, match=reason) as error:
            RunLauncher(runs_dir).submit(config(tiny_teacher_dir, tiny_corpus), uploaded_corpus=str(upload))
        assert "'notes.txt'" in str(error.value) and str(tmp_path) not in str(error.value)


def test_utf8_text_and_binary_data_are_not_taken_for_wide_text():
    assert wide_encoding(TEXT.encode("utf-8")) is None
    assert wide_encoding(b"Hello, world. " * 50) is None
    assert wide_encoding(bytes(range(256)) * 16) is None
    assert wide_encoding("Hello, world.\n".encode("utf-16-le") * 50) == "UTF-16"


def test_the_console_shows_the_command_without_server_paths(launcher, tiny_teacher_dir, tiny_corpus):
    run_id = launcher.submit(config(tiny_teacher_dir, tiny_corpus))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: read_status(run_dir).get("state") == "finished", timeout=240)
    first = read_console(run_dir, max_lines=10_000).splitlines()[0]
    assert first == f"$ python -m train.distill --config runs/{run_id}/request.json --output-dir runs/{run_id}"


@pytest.mark.parametrize("settings, message", [
    (dict(student_vocab_size=3000, student_hidden=-64), "--student-hidden must be at least 8; got -64."),
    (dict(student_vocab_size=2_000_000), "--student-vocab-size must be between 100 and 1,000,000; got 2,000,000."),
    (dict(temperature=float("inf")), "The temperature must be a finite number above 0; got inf."),
    (dict(alpha_kl=float("nan")), "The loss weight alpha_kl must be a finite number; got nan."),
    (dict(alpha_mlm=float("inf")), "The loss weight alpha_mlm must be a finite number; got inf."),
    (dict(batch_size=100_001), "--batch-size must be at most 100,000; got 100,001."),
    (dict(steps=10_000_001), "--max-steps must be at most 10,000,000; got 10,000,001."),
])
def test_settings_that_would_fail_later_are_refused_at_submit(runs_dir, tiny_teacher_dir, tiny_corpus, settings,
                                                              message):
    with pytest.raises(ValueError) as error:
        RunLauncher(runs_dir).submit(config(tiny_teacher_dir, tiny_corpus, **settings))
    assert str(error.value) == message
    assert list(runs_dir.iterdir()) == []


def stop_when_stopped(launcher, run_id) -> dict:
    """Stop a running run and wait until it reads stopped; every status read meanwhile says it was asked to stop."""
    run_dir = run_dir_of(run_id, launcher.root)
    launcher.stop(run_id)
    while (status := read_status(run_dir)).get("state") == "running":
        time.sleep(0.02)
    assert "unexpectedly" not in status["message"], status
    return status


def test_resume_at_once_after_stop_continues_to_the_new_end(launcher, tiny_teacher_dir, tiny_corpus):
    run_id = launcher.submit(config(tiny_teacher_dir, tiny_corpus, steps=100000))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: checkpoint_step(run_dir) >= 2)
    stop_when_stopped(launcher, run_id)
    stopped_at = checkpoint_step(run_dir)
    assert launcher.resume(run_id, max_steps=stopped_at + 4) == f"Resuming from step {stopped_at}."
    wait_for(lambda: read_status(run_dir).get("state") in ("finished", "stopped", "failed"), timeout=240)
    status = read_status(run_dir)
    assert (status["state"], status["step"]) == ("finished", stopped_at + 4), status
    assert read_metrics(run_dir)[-1]["step"] == stopped_at + 4


def test_resume_after_the_stopped_process_has_exited_unreaped_continues(runs_dir, tiny_teacher_dir, tiny_corpus):
    """The tester's race: the old process has ended but is not reaped yet when Resume queues the run; reaping it
    must not turn the queued run back into a stopped one."""
    launcher = RunLauncher(runs_dir, poll_s=3600).start()  # the watcher looks only when woken (submit, resume)
    run_id = launcher.submit(config(tiny_teacher_dir, tiny_corpus, steps=100000))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: checkpoint_step(run_dir) >= 2)
    pid = read_status(run_dir)["pid"]
    stop_when_stopped(launcher, run_id)
    wait_for(lambda: not pid_alive(pid), timeout=60)  # ended, a zombie nobody has reaped
    stopped_at = checkpoint_step(run_dir)
    launcher.resume(run_id, max_steps=stopped_at + 4)
    wait_for(lambda: read_status(run_dir).get("pid") not in (None, pid), timeout=30)  # a new process started
    wait_for(lambda: read_status(run_dir).get("state") in ("finished", "stopped", "failed"), timeout=240)
    status = read_status(run_dir)
    assert (status["state"], status["step"]) == ("finished", stopped_at + 4), status


def test_a_run_stopped_in_its_first_seconds_says_it_was_stopped(launcher, tiny_teacher_dir, tiny_corpus):
    run_id = launcher.submit(config(tiny_teacher_dir, tiny_corpus, steps=100000))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: read_status(run_dir).get("state") == "running", every=0.01)
    stop_when_stopped(launcher, run_id)
    time.sleep(4 * launcher.poll_s)  # the watcher has reaped the process: the final word
    status = read_status(run_dir)
    step = checkpoint_step(run_dir)
    assert status["state"] == "stopped"
    if step:  # the run caught the signal in its loop and saved
        assert status["message"] == f"Stopped at step {step}; checkpoint saved, resume continues from here."
    else:
        assert status["message"] == "Stopped as asked, before its first checkpoint; resume starts again from step 0."


def test_stopping_a_resumed_finished_run_at_once_names_the_step_it_continues_from(launcher, tiny_teacher_dir,
                                                                                    tiny_corpus):
    run_id = launcher.submit(config(tiny_teacher_dir, tiny_corpus, steps=4))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: read_status(run_dir).get("state") == "finished", timeout=240)
    with pytest.raises(ValueError) as finished:  # not the Steps box, which is for new runs
        launcher.resume(run_id)
    assert str(finished.value) == ("The run has finished all its 4 steps; to train it further, resume it up to a "
                                   "later step (Resume up to step), such as 8.")
    old_pid = read_status(run_dir)["pid"]
    launcher.resume(run_id, max_steps=100000)
    wait_for(lambda: read_status(run_dir).get("state") == "running" and read_status(run_dir)["pid"] != old_pid,
             every=0.01)
    stop_when_stopped(launcher, run_id)
    time.sleep(4 * launcher.poll_s)
    status, step = read_status(run_dir), checkpoint_step(run_dir)
    assert status["state"] == "stopped" and step >= 4
    assert "first checkpoint" not in status["message"]
    assert f"step {step}" in status["message"], status


def start_and_stop(launcher: RunLauncher, actor: RunLauncher, cfg: DistillConfig, delay_s: float) -> dict:
    """Submit a run through `launcher`, stop it `delay_s` seconds later through `actor`, wait until its process (if
    it had one) is gone and reaped, and return its final status."""
    run_id = launcher.submit(cfg)
    run_dir = run_dir_of(run_id, launcher.root)
    time.sleep(delay_s)
    actor.stop(run_id)
    wait_for(lambda: read_status(run_dir).get("state") not in ("queued", "running"), timeout=30, every=0.02)
    pid = json.loads(RunPaths(run_dir).status.read_text()).get("pid")  # as written, not inferred
    wait_for(lambda: not pid_alive(pid) and run_id not in launcher._children, timeout=30, every=0.05)
    return read_status(run_dir)


def test_runs_stopped_as_they_start_end_stopped_never_failed_or_training(runs_dir, tiny_teacher_dir, tiny_corpus):
    """Stop pressed soon after Start, ten times, at moments from 'still queued' to 'process starting'; every other
    Stop goes through a second launcher on the same folder (an app restarted beside the old one), whose lock the
    watcher does not share. Each run ends stopped (or taken out of the queue), and no process keeps training."""
    launcher = RunLauncher(runs_dir, poll_s=0.05).start()
    other = RunLauncher(runs_dir)  # never started: it only acts
    cfg = config(tiny_teacher_dir, tiny_corpus, steps=100000)
    messages = []
    for trial, delay_s in enumerate([0, 0, 0.005, 0.005, 0.02, 0.02, 0.1, 0.1, 0.8, 1.6]):
        status = start_and_stop(launcher, other if trial % 2 else launcher, cfg, delay_s)
        assert status["state"] == "stopped" and "without saying why" not in status["message"], (trial, status)
        messages.append(status["message"])
    time.sleep(0.3)  # a watcher that got a stopped run wrong would have written it by now
    assert {r["state"] for r in list_runs(runs_dir)} == {"stopped"}
    assert any(m.startswith("Stopped as asked") for m in messages), messages  # some stops reached a process


def test_a_damaged_run_does_not_stop_the_launcher(runs_dir, tiny_teacher_dir, tiny_corpus):
    waiting = RunLauncher(runs_dir)  # not started: the runs stay queued while they are damaged
    broken = {name: waiting.submit(config(tiny_teacher_dir, tiny_corpus)) for name in ("status", "request")}
    run_dir_of(broken["status"], runs_dir).joinpath("status.json").write_text("[1]")
    run_dir_of(broken["request"], runs_dir).joinpath("request.json").write_text("null")
    launcher = RunLauncher(runs_dir, poll_s=0.2).start()
    good = launcher.submit(config(tiny_teacher_dir, tiny_corpus, steps=4))
    wait_for(lambda: read_status(run_dir_of(good, runs_dir)).get("state") == "finished", timeout=240)
    runs = {r["id"]: r for r in list_runs(runs_dir)}
    assert runs[broken["status"]]["state"] == runs[broken["request"]]["state"] == "damaged"
    assert runs[broken["request"]]["message"] == (f"The file {broken['request']}/request.json is damaged (it holds "
                                                  "null, not a JSON object); delete the run, or repair the file by "
                                                  "hand.")
    assert not run_dir_of(broken["request"], runs_dir).joinpath("console.log").exists()  # never started


def test_kill_9_shows_the_run_stopped_at_its_checkpoint(launcher, tiny_teacher_dir, tiny_corpus):
    run_id = launcher.submit(config(tiny_teacher_dir, tiny_corpus, steps=100000))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: checkpoint_step(run_dir) >= 2)
    stale = run_dir / "checkpoints" / ".step-000099.pt.tmp-4194399"  # as a save killed by kill -9 leaves it
    stale.write_bytes(b"partial")
    os.kill(read_status(run_dir)["pid"], signal.SIGKILL)
    wait_for(lambda: run_id not in launcher._children and read_status(run_dir).get("state") != "running")
    status, step = read_status(run_dir), checkpoint_step(run_dir)
    assert (status["state"], status["step"]) == ("stopped", step), status
    assert status["message"] == (f"Stopped at step {step} (the process ended without saying why); resume continues "
                                 f"from the checkpoint of step {step}.")
    assert launcher.resume(run_id, max_steps=step + 2) == f"Resuming from step {step}."
    wait_for(lambda: read_status(run_dir).get("state") == "finished", timeout=240)
    assert not stale.exists()  # cleared when the run started again


def test_resume_passes_over_an_unreadable_newest_checkpoint(launcher, tiny_teacher_dir, tiny_corpus):
    run_id = launcher.submit(config(tiny_teacher_dir, tiny_corpus, steps=100000))
    run_dir = run_dir_of(run_id, launcher.root)
    wait_for(lambda: checkpoint_step(run_dir) >= 4)
    stop_when_stopped(launcher, run_id)
    *_, previous, newest = checkpoint_paths(run_dir)
    newest.write_bytes(newest.read_bytes()[:1000])  # cut short, as a copy or a disk that filled up leaves it
    before, after = int(previous.stem[5:]), int(newest.stem[5:])
    reason = f"{newest.name} is cut short (it stops after 1,000 bytes, before the end of the saved state)."
    assert launcher.resume(run_id, max_steps=after + 2) == \
        f"Resuming from step {before}. {reason} {previous.name} was used instead."
    wait_for(lambda: read_status(run_dir).get("state") in ("finished", "stopped", "failed"), timeout=240)
    assert read_status(run_dir)["state"] == "finished", read_status(run_dir)
    assert f"warning: {reason} {previous.name} was used instead." in read_console(run_dir, max_lines=10_000)
    final = after + 2
    assert [r["step"] for r in read_metrics(run_dir)] == sorted(set(range(0, final + 1, 2)) | {final})
    assert (run_dir / "checkpoints" / f"{newest.name}.unreadable").is_file()  # set aside, for a person to look at


FULL_DISK = """import shutil, sys
real, seen = shutil.disk_usage, []
def disk_usage(path):  # room for the run's first checkpoint, then 900 bytes
    if str(path).endswith("checkpoints"):
        seen.append(path)
        if len(seen) > 1:
            return real(path)._replace(free=900)
    return real(path)
shutil.disk_usage = disk_usage
from train.distill import main
sys.exit(main(sys.argv[1:]))
"""


def test_a_run_on_a_full_disk_fails_naming_the_checkpoint_it_keeps(tmp_path, tiny_teacher_dir, tiny_corpus):
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", FULL_DISK, "--teacher", str(tiny_teacher_dir), "--corpus",
                             str(tiny_corpus), "--max-steps", "6", "--save-every", "2", "--output-dir", str(out),
                             *SHORT], cwd=REPO, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 1, result.stderr
    status = read_status(out)
    assert status["state"] == "failed"
    assert re.fullmatch(r"The disk is full: the checkpoint of step 4 needs about [\d.,]+ [KM]B and 900 bytes are "
                        r"free, so it was not written; the run keeps its checkpoint of step 2 \(step-000002\.pt\), "
                        r"so free some space and resume from there\.", status["message"]), status["message"]
    assert f"error: {status['message']}\n" in result.stderr
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002.pt"]  # no partial file


def test_a_queued_run_taken_out_says_whether_it_had_trained():
    from train.launcher import take_out_of_queue
    assert take_out_of_queue({"state": "queued"})["message"] == "Taken out of the queue before it started."
    assert take_out_of_queue({"state": "queued", "step": 1200})["message"] == \
        "Taken out of the queue before it resumed; it stays at step 1,200."
    assert take_out_of_queue({"state": "running", "step": 5}) is None


def test_a_second_stop_of_a_stopping_run_sends_no_second_signal(runs_dir):
    idle = RunLauncher(runs_dir)  # no watcher: the run below is only a status
    run_dir = runs_dir / "20260101-000000-abcd"
    run_dir.mkdir()
    # this test's own process as the run's: a second SIGTERM would end the test itself
    write_status(run_dir, state="running", pid=os.getpid(), stop_requested=True, message="Stopping")
    assert idle.stop(run_dir.name) == "The run is already stopping: it saves a checkpoint and ends."
    assert read_status(run_dir)["state"] == "running"


def test_a_queued_run_or_one_another_process_asked_to_stop_is_refused_or_waited_for(runs_dir, tiny_teacher_dir,
                                                                                     tiny_corpus):
    """The launcher refuses as the Distill tab does; a run whose status says a stop was asked (by an earlier app
    process, say) is waited for, not refused as running."""
    idle = RunLauncher(runs_dir, stop_wait_s=0.3)  # never started: a submitted run stays queued
    run_id = idle.submit(config(tiny_teacher_dir, tiny_corpus))
    with pytest.raises(ValueError) as refused:
        idle.delete(run_id)
    assert str(refused.value) == f"Run {run_id} is waiting in line: press Stop to take it out of the line, then Delete."
    run_dir = run_dir_of(run_id, runs_dir)
    write_status(run_dir, state="running", pid=os.getpid(), stop_requested=True)
    with pytest.raises(ValueError, match=r"^The run is still saving its checkpoint before it stops; press Delete "):
        idle.delete(run_id)
    write_status(run_dir, state="stopped", step=3)
    assert idle.delete(run_id) == f"Deleted run {run_id}." and not run_dir.exists()

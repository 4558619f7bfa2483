"""Damaged run folders: a bad status.json, config.json, request.json, metrics line or checkpoint is reported for that
run alone, in a sentence naming the file; stale temporary files are cleared; a full disk keeps the last checkpoint."""
import errno
import io
import json
import os
import signal
import subprocess
import sys
import zipfile

import pytest
import torch

import train.launcher as launcher_module
from core.runs import checkpoints, store
from core.runs.checkpoints import (
    RESUME_KEYS,
    DiskFullError,
    checkpoint_to_resume,
    newest_readable_checkpoint,
    save_checkpoint,
)
from core.runs.guesses import read_guesses
from core.runs.store import (
    RunPaths,
    checkpoint_step,
    list_runs,
    model_source,
    read_metrics,
    read_status,
    remove_stale_temp_files,
    run_info,
    run_model,
    stopped_message,
    truncate_metrics,
    update_status,
    write_status,
)
from train.launcher import RunLauncher
from ui import distill_tab
from ui.context import AppContext

GOOD, BAD = "20250101-000000-good", "20250101-000001-bad"
DEAD_PID = 2 ** 22 + 12345  # above the default pid_max of 4194304: no such process


def make_run(root, run_id, **status):
    """A finished-looking run: status, config and two metrics rows."""
    paths = RunPaths(root / run_id)
    paths.root.mkdir(parents=True)
    write_status(paths.root, **{"state": "stopped", "step": 4, "max_steps": 8, "created": 1.0, "queued_at": 1.0,
                                "message": "Stopped at step 4.", **status})
    paths.config.write_text(json.dumps({"teacher": "bundled-teacher", "student_layers": 2, "max_steps": 8}))
    paths.metrics.write_text('{"step": 0, "eval_mlm_acc": 0.1}\n{"step": 2, "loss": 3.0, "steps_per_s": 1.0}\n')
    return paths


def write_checkpoint(run_dir, step: int, **extra) -> None:
    path = run_dir / "checkpoints" / f"step-{step:06d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {"w": torch.full((4,), float(step))}, "optimizer": {}, "scheduler": {}, "step": step,
                "epoch": 0, "rng": [], **extra}, path)


def damaged(run_id: str, name: str, problem: str) -> str:
    return f"The file {run_id}/{name} is damaged ({problem}); delete the run, or repair the file by hand."


# -- status.json, config.json, request.json

STATUS_CASES = [
    ("[1]", "it holds a list, not a JSON object"),
    ("5", "it holds a number, not a JSON object"),
    ("null", "it holds null, not a JSON object"),
    ('"running"', "it holds a string, not a JSON object"),
    ("", "it is empty"),
    ("  \n", "it is empty"),
    ('{"state": "running", ', "it is not valid JSON at line 1, column 22"),
    (b"\xff\xfe{\x00}\x00", "it is not UTF-8 text"),
    ('{"state": "exploded"}', "its 'state' is \"exploded\", not one of queued, running, finished, stopped, failed"),
    ('{"state": "running", "pid": -1}', "its 'pid' is -1, not a process id"),
    ('{"state": "stopped", "step": "12"}', "its 'step' is \"12\", not a whole number"),
    ('{"state": "queued", "queued_at": [1]}', "its 'queued_at' is [1], not a time in seconds"),
    ('{"state": "queued", "launch_args": "--resume"}', "its 'launch_args' is \"--resume\", not a list of texts"),
]


@pytest.mark.parametrize("content, problem", STATUS_CASES)
def test_a_damaged_status_marks_that_run_alone(tmp_path, content, problem):
    make_run(tmp_path, GOOD)
    bad = make_run(tmp_path, BAD)
    bad.status.write_bytes(content if isinstance(content, bytes) else content.encode())
    runs = {r["id"]: r for r in list_runs(tmp_path)}
    assert (runs[GOOD]["state"], runs[GOOD]["step"], runs[GOOD]["teacher"]) == ("stopped", 4, "bundled-teacher")
    assert (runs[BAD]["state"], runs[BAD]["message"]) == ("damaged", damaged(BAD, "status.json", problem))
    assert read_status(bad.root) == {"state": "damaged", "message": damaged(BAD, "status.json", problem),
                                     "damaged": "status.json"}


CONFIG_CASES = [
    ("[1]", "it holds a list, not a JSON object"),
    ("null", "it holds null, not a JSON object"),
    ("", "it is empty"),
    ("{", "it is not valid JSON at line 1, column 2"),
    ('{"max_steps": "many"}', "its 'max_steps' is \"many\", not a whole number above 0"),
    ('{"student_vocab_size": true}', "its 'student_vocab_size' is true, not a whole number above 0"),
    ('{"teacher": 7}', "its 'teacher' is 7, not a text"),
]


@pytest.mark.parametrize("name", ["config.json", "request.json"])
@pytest.mark.parametrize("content, problem", CONFIG_CASES)
def test_a_damaged_config_or_request_marks_that_run_alone(tmp_path, name, content, problem):
    make_run(tmp_path, GOOD)
    bad = make_run(tmp_path, BAD, state="queued" if name == "request.json" else "stopped")
    if name == "request.json":  # a queued run has no config.json yet
        bad.config.unlink()
    (bad.root / name).write_text(content)
    runs = {r["id"]: r for r in list_runs(tmp_path)}
    assert runs[GOOD]["state"] == "stopped"
    assert (runs[BAD]["state"], runs[BAD]["message"]) == ("damaged", damaged(BAD, name, problem))


def test_a_running_run_with_a_damaged_config_keeps_running_and_says_so(tmp_path):
    paths = make_run(tmp_path, BAD, state="running", pid=os.getpid(), message="Started.")
    paths.config.write_text("[]")
    info = run_info(paths.root)
    assert info["state"] == "running"
    assert info["message"] == "Started. " + damaged(BAD, "config.json", "it holds a list, not a JSON object")


def test_a_run_folder_that_cannot_be_read_is_listed_as_damaged(tmp_path, monkeypatch):
    make_run(tmp_path, GOOD)
    make_run(tmp_path, BAD)
    real = store.run_info

    def run_info_denied(run_dir):  # as for a folder of another user on a shared machine (root reads every folder)
        if run_dir.name == BAD:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(run_dir)

    monkeypatch.setattr(store, "run_info", run_info_denied)
    runs = {r["id"]: r for r in list_runs(tmp_path)}
    assert runs[GOOD]["state"] == "stopped"
    assert (runs[BAD]["state"], runs[BAD]["message"]) == (
        "damaged", f"The folder {BAD} cannot be read (Permission denied); delete the run, or fix its permissions.")
    assert distill_tab.student_label(runs[BAD]) == "half"


@pytest.fixture
def ctx(tmp_path):
    """An app context whose launcher is never started: a queued run stays queued."""
    return AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(tmp_path))


def test_the_distill_tab_and_the_launcher_work_beside_a_damaged_run(ctx, tmp_path):
    make_run(tmp_path, GOOD)
    bad = make_run(tmp_path, BAD)
    bad.status.write_text("[1]")
    shown = distill_tab.show_run(ctx, GOOD, None)
    table, line = shown[0], shown[2]
    assert list(table["state"]) == ["damaged", "stopped"] and "step 4 of 8" in line
    line = distill_tab.show_run(ctx, BAD, None)[2]
    assert damaged(BAD, "status.json", "it holds a list, not a JSON object") in line
    launcher = ctx.launcher
    assert launcher.pump() is False  # the watcher's look at the folder: nothing to start, nothing raised
    with pytest.raises(ValueError, match=r"^The run is not running \(it is damaged\)\.$"):
        launcher.stop(BAD)
    with pytest.raises(ValueError, match="damaged"):
        launcher.set_public(BAD, None, True)
    assert launcher.resume(GOOD) == "Resuming from step 0."  # no checkpoint: the good run goes back in line
    assert read_status(RunPaths(tmp_path / GOOD).root)["state"] == "queued"
    assert launcher.delete(BAD) == f"Deleted run {BAD}." and not bad.root.exists()


@pytest.mark.parametrize("content, problem", [("[1]", "it holds a list, not a JSON object"), ("", "it is empty")])
def test_resume_refuses_a_damaged_config_naming_it(tmp_path, content, problem):
    paths = make_run(tmp_path, BAD)
    paths.config.write_text(content)
    with pytest.raises(ValueError) as error:
        RunLauncher(tmp_path).resume(BAD)
    assert str(error.value) == damaged(BAD, "config.json", problem)
    assert read_status(paths.root)["state"] == "stopped"  # nothing was queued


def test_a_status_written_over_a_damaged_one_replaces_it(tmp_path):
    paths = make_run(tmp_path, BAD)
    paths.status.write_text("5")
    assert write_status(paths.root, state="stopped", step=2)["step"] == 2
    assert read_status(paths.root)["state"] == "stopped"


def test_a_conditional_status_change_sees_the_status_as_written(tmp_path):
    paths = make_run(tmp_path, BAD, state="queued")
    assert update_status(paths.root, lambda s: None if s["state"] != "running" else {"x": 1}) is None
    assert "x" not in read_status(paths.root)
    assert update_status(paths.root, lambda s: {"state": "stopped"} if s["state"] == "queued" else None)
    assert read_status(paths.root)["state"] == "stopped"


# -- metrics.jsonl and guesses.jsonl

def test_metrics_lines_that_are_not_records_are_skipped_and_counted(tmp_path):
    paths = make_run(tmp_path, BAD)
    paths.metrics.write_text('{"step": 0, "eval_mlm_acc": 0.1}\n5\n[1, 2]\nnull\nnot json\n"text"\n'
                             '{"loss": 1.0}\n{"step": "2"}\n{"step": 2, "loss": "high"}\n{"step": -1}\n\n'
                             '{"step": 2, "loss": 3.0, "steps_per_s": 1.0}\n{"step": 4, "lo')
    records = read_metrics(paths.root)
    assert [r["step"] for r in records] == [0, 2]
    assert records.skipped == 9  # the blank line is no record and no fault; the unfinished last line is being written
    assert records.note == ("9 lines of metrics.jsonl are not records (JSON objects with a step) and were "
                            "skipped.")
    paths.metrics.write_text('{"step": 0}\n5\n')
    assert read_metrics(paths.root).note == ("1 line of metrics.jsonl is not a record (a JSON object with a step) "
                                            "and was skipped.")
    assert read_metrics(tmp_path / "no-such-run") == [] and read_metrics(paths.root, "absent.jsonl").note == ""


def test_the_tab_and_a_resume_read_past_bad_metrics_lines(ctx, tmp_path):
    paths = make_run(tmp_path, GOOD)
    paths.metrics.write_text('{"step": 0, "eval_mlm_acc": 0.1, "eval_agreement": 0.2}\n5\n[1,2]\nnull\n{\n'
                             '{"step": 2, "loss": 3.0, "steps_per_s": 1.0, "tokens_per_s": 10.0}\n'
                             '{"step": 4, "loss": 2.0, "steps_per_s": 1.0, "tokens_per_s": 10.0}\n')
    line = distill_tab.show_run(ctx, GOOD, None)[2]
    assert "10 tokens/s" in line and "agreement 20.0%" in line
    truncate_metrics(paths.root, 2)
    assert paths.metrics.read_text().splitlines() == [
        '{"step": 0, "eval_mlm_acc": 0.1, "eval_agreement": 0.2}',
        '{"step": 2, "loss": 3.0, "steps_per_s": 1.0, "tokens_per_s": 10.0}']


def test_guesses_rows_of_the_wrong_shape_are_skipped(tmp_path):
    paths = make_run(tmp_path, GOOD)
    good = {"step": 0, "student": [{"words": ["чай"], "probs": [0.5]}], "probes": [{"sentence": "a [MASK]",
            "expected": "чай"}], "teacher": [{"words": ["чай"], "probs": [0.6]}]}
    rows = [good, 5, None, [1], {"step": 4, "student": 5}, {"step": 4, "student": [5]},
            {"step": 4, "student": [{"words": "чай", "probs": [0.5]}]}, {"step": 4, "probes": [{"sentence": 1}]},
            {"step": 8, "student": [{"words": ["кофе"], "probs": [0.4]}]}]
    paths.guesses.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    assert read_metrics(paths.root, paths.guesses.name).skipped == 7
    history = read_guesses(paths.root)
    assert history.steps == [0, 8] and history.sentences == ["a [MASK]"]


# -- checkpoints

def corrupt(path, how: str) -> str:
    """Damage a checkpoint file as a full disk, a failed copy or a stray write would; returns the expected reason."""
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
        return f"{path.name} is empty (0 bytes)."
    if how == "truncated":
        path.write_bytes(data[:len(data) // 2])
        return f"{path.name} is cut short (it stops after {len(data) // 2:,} bytes, before the end of the saved state)."
    if how == "random":
        path.write_bytes(os.urandom(len(data)))
        return f"{path.name} is not a PyTorch checkpoint (its bytes are not a saved state)."
    if how == "other zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("notes.txt", "hello")
        return f"{path.name} is not a PyTorch checkpoint (it is a zip file without a saved state)."
    if how == "a list":
        torch.save([1, 2], path)
        return f"{path.name} does not hold a checkpoint's entries (it holds a list)."
    if how == "no optimizer":
        state = torch.load(path, weights_only=False)
        del state["optimizer"]
        torch.save(state, path)
        return f"{path.name} lacks the entry 'optimizer'."
    if how == "bad pickle":
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        with zipfile.ZipFile(path, "w") as archive:
            for name, content in members.items():
                archive.writestr(name, b"\x80\x02garbage" if name.endswith("data.pkl") else content)
        return f"{path.name} cannot be loaded ("
    raise AssertionError(how)


HOW = ["empty", "truncated", "random", "other zip", "a list", "no optimizer", "bad pickle"]


@pytest.mark.parametrize("how", HOW)
def test_resume_passes_over_an_unreadable_newest_checkpoint(tmp_path, how):
    paths = make_run(tmp_path, BAD)
    for step in (2, 4):
        write_checkpoint(paths.root, step)
    reason = corrupt(paths.root / "checkpoints" / "step-000004.pt", how)
    found = newest_readable_checkpoint(paths.root, RESUME_KEYS)
    assert found.path.name == "step-000002.pt" and found.step == 2
    assert torch.equal(found.state["model"]["w"], torch.full((4,), 2.0))
    [unreadable] = found.unreadable
    assert unreadable.path.name == "step-000004.pt" and unreadable.reason.startswith(reason)
    assert found.note == f"{unreadable.reason} step-000002.pt was used instead."
    # found once by loading, the file is passed over by every later reader of this process without loading it
    assert checkpoint_step(paths.root) == 2 and model_source(paths.root)[0] == "step-000002.pt"
    assert run_info(paths.root)["checkpoint"] == "step-000002.pt"
    resumed = checkpoint_to_resume(paths.root)
    assert resumed.path.name == "step-000002.pt"
    assert sorted(p.name for p in (paths.root / "checkpoints").iterdir()) == \
        ["step-000002.pt", "step-000004.pt.unreadable"]  # set aside: keeping the newest never counts it


def test_no_readable_checkpoint_means_step_0_with_the_reasons(tmp_path):
    paths = make_run(tmp_path, BAD)
    write_checkpoint(paths.root, 2)
    reason = corrupt(paths.root / "checkpoints" / "step-000002.pt", "empty")
    found = newest_readable_checkpoint(paths.root, RESUME_KEYS)
    assert (found.path, found.state, found.step) == (None, None, 0)
    assert found.note == f"{reason} No earlier checkpoint can be used."
    assert model_source(paths.root) is None
    (paths.student).mkdir()
    (paths.student / "config.json").write_text("{}")
    with pytest.raises(ValueError) as error:
        run_model(paths.root)
    assert str(error.value) == f"Run '{BAD}' has no checkpoint that can be read: {found.note}"


def test_a_run_stopped_without_saying_why_is_stopped_at_its_checkpoint(tmp_path):
    paths = make_run(tmp_path, BAD, state="running", pid=DEAD_PID, step=7)
    assert read_status(paths.root)["message"] == ("Stopped before its first checkpoint (the process ended without "
                                                 "saying why); resume starts again from step 0.")
    for step in (2, 4):
        write_checkpoint(paths.root, step)
    status = read_status(paths.root)
    assert (status["state"], status["step"]) == ("stopped", 4)
    assert status["message"] == ("Stopped at step 4 (the process ended without saying why); resume continues from "
                                 "the checkpoint of step 4.")
    reason = corrupt(paths.root / "checkpoints" / "step-000004.pt", "truncated")
    assert stopped_message(paths.root, asked=False) == (
        "Stopped at step 2 (the process ended without saying why); resume continues from the checkpoint of step 2. "
        f"{reason} step-000002.pt was used instead.")


def ended_child(code: int) -> subprocess.Popen:
    """A finished process that ended by signal -code, or with exit code `code`."""
    script = f"import os, signal; os.kill(os.getpid(), {-code})" if code < 0 else f"import sys; sys.exit({code})"
    child = subprocess.Popen([sys.executable, "-c", script])
    child.wait()
    return child


@pytest.mark.parametrize("code, state, message", [
    (-signal.SIGKILL, "stopped", "Stopped at step 4 (the process ended without saying why); resume continues from "
                                 "the checkpoint of step 4."),
    (-signal.SIGTERM, "stopped", "Stopped at step 4 (the process ended without saying why); resume continues from "
                                 "the checkpoint of step 4."),
    (0, "stopped", "Stopped at step 4 (the process ended without saying why); resume continues from the checkpoint "
                   "of step 4."),
    (1, "failed", "RuntimeError: CUDA went away"),
])
def test_the_launcher_records_how_its_child_ended(tmp_path, code, state, message):
    paths = make_run(tmp_path, BAD)
    write_checkpoint(paths.root, 4)
    paths.console.write_text("RuntimeError: CUDA went away\n"
                             "distilling:   7%|▋         | 7/100 [00:03<00:45,  2.05step/s, loss=10.7]\r")
    launcher = RunLauncher(tmp_path)
    child = ended_child(code)
    write_status(paths.root, state="running", pid=child.pid, step=7)
    launcher._children[BAD] = child
    launcher.pump()
    status = read_status(paths.root)
    assert (status["state"], status["message"]) == (state, message)
    if state == "stopped":
        assert status["step"] == 4


def test_a_child_asked_to_stop_that_ends_by_sigterm_is_stopped_as_asked(tmp_path):
    paths = make_run(tmp_path, BAD)
    launcher = RunLauncher(tmp_path)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    write_status(paths.root, state="running", pid=child.pid)
    launcher._children[BAD] = child
    assert launcher.stop(BAD) == "Stopping: the run saves a checkpoint and ends."
    child.wait(timeout=30)
    launcher.pump()
    status = read_status(paths.root)
    assert (status["state"], status["message"]) == \
        ("stopped", "Stopped as asked, before its first checkpoint; resume starts again from step 0.")


def test_stop_leaves_a_run_that_ended_meanwhile_as_it_ended(tmp_path, monkeypatch):
    paths = make_run(tmp_path, BAD, state="running", pid=os.getpid())

    def finish_first(run_dir, change):  # the run writes its own end just before the stop is recorded
        write_status(run_dir, state="finished", message="Finished 8 steps.")
        return update_status(run_dir, change)

    monkeypatch.setattr(launcher_module, "update_status", finish_first)
    with pytest.raises(ValueError, match=r"not running \(it is finished\)"):
        RunLauncher(tmp_path).stop(BAD)
    assert read_status(paths.root)["message"] == "Finished 8 steps."


def test_stop_of_a_queued_run_started_meanwhile_stops_the_process(tmp_path, monkeypatch):
    """Two launchers on one folder (an app restarted beside the old one): the run is started by the other between
    this launcher's look and its change; the stop must reach the new process, not mark it 'taken out'."""
    paths = make_run(tmp_path, BAD, state="queued")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    calls = []

    def started_first(run_dir, change):
        if not calls:
            write_status(run_dir, state="running", pid=child.pid, stop_requested=False)
        calls.append(change)
        return update_status(run_dir, change)

    monkeypatch.setattr(launcher_module, "update_status", started_first)
    assert RunLauncher(tmp_path).stop(BAD) == "Stopping: the run saves a checkpoint and ends."
    assert child.wait(timeout=30) == -signal.SIGTERM
    status = read_status(paths.root)
    assert status["state"] == "stopped" and status["message"].startswith("Stopped as asked")


def test_a_run_whose_status_is_damaged_while_its_process_runs_can_be_stopped(tmp_path):
    paths = make_run(tmp_path, BAD)
    launcher = RunLauncher(tmp_path, stop_wait_s=0.2)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    write_status(paths.root, state="running", pid=child.pid)
    launcher._children[BAD] = child
    paths.status.write_text("null")
    with pytest.raises(ValueError, match=r"^The run's process is still running; stop it, then delete it\.$"):
        launcher.delete(BAD)
    with pytest.raises(ValueError, match=r"^The run's process is still running; stop it, then resume it\.$"):
        launcher.resume(BAD)
    assert launcher.stop(BAD) == "Stopping: the run saves a checkpoint and ends."
    assert child.wait(timeout=30) == -signal.SIGTERM
    launcher.pump()
    status = read_status(paths.root)
    assert (status["state"], status["message"]) == \
        ("stopped", "Stopped as asked, before its first checkpoint; resume starts again from step 0.")
    assert launcher.delete(BAD) == f"Deleted run {BAD}."


# -- temporary files and a full disk

def test_stale_temporary_files_are_removed_and_live_ones_kept(tmp_path):
    paths = make_run(tmp_path, BAD)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        folder = paths.root / "checkpoints"
        folder.mkdir()
        stale = [folder / f".step-000010.pt.tmp-{DEAD_PID}", paths.root / f".status.json.tmp-{DEAD_PID}",
                 paths.root / f".snapshot-{DEAD_PID}"]
        kept = [folder / f".step-000012.pt.tmp-{live.pid}", paths.root / f".status.json.tmp-{os.getpid()}",
                folder / "notes.tmp", paths.root / "console.log"]
        for path in stale[:2] + kept:
            path.write_bytes(b"partial")
        stale[2].mkdir()
        (stale[2] / "config.json").write_text("{}")
        assert sorted(remove_stale_temp_files(paths.root)) == sorted(stale)
        assert not any(p.exists() for p in stale) and all(p.exists() for p in kept)
    finally:
        live.kill()
        live.wait()


class FullDisk(io.FileIO):
    """A file on a disk with `room` bytes left: a write beyond them fails as the kernel's would."""
    room = 50_000

    def write(self, data):
        if self.tell() + len(data) > self.room:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return super().write(data)


def state_of(step: int) -> dict:
    return {"model": {"w": torch.zeros(40_000)}, "optimizer": {}, "scheduler": {}, "step": step, "epoch": 0,
            "rng": []}


def test_a_full_disk_during_a_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    run_dir = tmp_path / BAD
    save_checkpoint(run_dir, 2, state_of(2), keep=1)

    def opened(path, mode="r", *args, **kwargs):  # files written by the checkpoint code land on the full disk
        return FullDisk(path, "w") if "w" in mode else open(path, mode, *args, **kwargs)

    monkeypatch.setattr(checkpoints, "open", opened, raising=False)
    with pytest.raises(DiskFullError) as error:
        save_checkpoint(run_dir, 4, state_of(4), keep=1)
    free = checkpoints.format_bytes(checkpoints.shutil.disk_usage(run_dir).free)
    assert str(error.value).startswith("The disk is full: the checkpoint of step 4 needs about 1.2 MB and ")
    assert str(error.value).endswith(" are free, so it was not written; the run keeps its checkpoint of step 2 "
                                     "(step-000002.pt), so free some space and resume from there.")
    assert free.split()[-1] in str(error.value) and error.value.errno == errno.ENOSPC
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-000002.pt"]  # no partial file
    assert newest_readable_checkpoint(run_dir, RESUME_KEYS).step == 2


def test_torchs_unexpected_pos_error_is_a_full_disk(tmp_path, monkeypatch):
    run_dir = tmp_path / BAD

    def short_write(state, handle):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 19457344 vs 19457232")

    monkeypatch.setattr(checkpoints.torch, "save", short_write)
    with pytest.raises(DiskFullError, match=r"the run has no earlier checkpoint, so free some space and resume, "
                                            r"which starts again from step 0\.$"):
        save_checkpoint(run_dir, 2, state_of(2), keep=1)
    assert list((run_dir / "checkpoints").iterdir()) == []

    def broken_write(state, handle):
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(checkpoints.torch, "save", broken_write)
    with pytest.raises(OSError) as error:  # another write error is not called a full disk
        save_checkpoint(run_dir, 2, state_of(2), keep=1)
    assert not isinstance(error.value, DiskFullError)


def test_a_checkpoint_that_would_not_fit_is_refused_before_writing(tmp_path, monkeypatch):
    run_dir = tmp_path / BAD
    save_checkpoint(run_dir, 2, state_of(2), keep=1)
    previous = (run_dir / "checkpoints" / "step-000002.pt").stat().st_size
    usage = checkpoints.shutil.disk_usage(run_dir)
    monkeypatch.setattr(checkpoints.shutil, "disk_usage", lambda path: usage._replace(free=300_000))
    with pytest.raises(DiskFullError) as error:
        save_checkpoint(run_dir, 4, state_of(4), keep=1)
    needed = checkpoints.format_bytes(max(previous, 160_000 + checkpoints.PICKLE_OVERHEAD_BYTES))
    assert str(error.value) == (f"The disk is full: the checkpoint of step 4 needs about {needed} and 300.0 KB are "
                                "free, so it was not written; the run keeps its checkpoint of step 2 "
                                "(step-000002.pt), so free some space and resume from there.")
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step-000002.pt"]


def test_keeping_the_newest_checkpoints_never_removes_the_one_just_saved(tmp_path):
    run_dir = tmp_path / BAD
    for step in (2, 4, 6):
        save_checkpoint(run_dir, step, state_of(step), keep=2)
    assert [p.name for p in checkpoints.checkpoint_paths(run_dir)] == ["step-000004.pt", "step-000006.pt"]
    (run_dir / "checkpoints" / "step-000010.pt").write_bytes(b"")  # left by an earlier session, unreadable
    save_checkpoint(run_dir, 8, state_of(8), keep=1)
    assert [p.name for p in checkpoints.checkpoint_paths(run_dir)] == ["step-000008.pt", "step-000010.pt"]
    assert checkpoint_step(run_dir) == 8

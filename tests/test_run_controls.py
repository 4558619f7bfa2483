"""Stop and Resume pressed twice: the second press finds what the first asked for under way or done, and says so
rather than failing."""
import json

import pytest

from core.runs.store import RunPaths, read_status, write_status
from train.launcher import ALREADY_STOPPED, RunLauncher

RUN = "20250101-000000-twice"


def make_run(root, **status) -> RunPaths:
    paths = RunPaths(root / RUN)
    paths.root.mkdir(parents=True)
    write_status(paths.root, **{"state": "stopped", "step": 4, "max_steps": 8, "created": 1.0, "queued_at": 1.0,
                                "message": "Stopped at step 4.", **status})
    paths.config.write_text(json.dumps({"teacher": "bundled-teacher", "student_layers": 2, "max_steps": 8}))
    return paths


def test_stop_of_a_stopped_run_says_it_has_stopped_and_leaves_it(tmp_path):
    paths = make_run(tmp_path)
    assert RunLauncher(tmp_path).stop(RUN) == ALREADY_STOPPED
    assert read_status(paths.root)["state"] == "stopped" and read_status(paths.root)["message"] == "Stopped at step 4."


@pytest.mark.parametrize("state", ["finished", "failed"])
def test_stop_of_a_run_that_ended_otherwise_is_refused(tmp_path, state):
    make_run(tmp_path, state=state)
    with pytest.raises(ValueError) as refused:
        RunLauncher(tmp_path).stop(RUN)
    assert str(refused.value) == f"The run is not running (it is {state})."


def test_resume_pressed_twice_queues_the_run_once(tmp_path):
    paths = make_run(tmp_path)
    launcher = RunLauncher(tmp_path)  # never started: the resumed run stays queued
    assert launcher.resume(RUN) == "Resuming from step 0."
    queued = read_status(paths.root)
    assert queued["state"] == "queued"
    assert launcher.resume(RUN) == "The run is already queued."
    assert read_status(paths.root) == queued  # not put in line a second time

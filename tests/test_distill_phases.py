"""What a starting run writes in its status.json while it loads, prepares and evaluates step 0, and that its phase
is gone once its steps are counted: the Distill tab reads the phase from there, not from the run's console."""
import json
import os

import pytest

from core.runs.store import PHASES, RunPaths, read_status, run_info, write_phase, write_status
from tests.support.cli import SHORT
from train.config import DistillConfig
from train.launcher import RunLauncher


@pytest.mark.cli
def test_a_run_on_the_bundled_pair_says_its_phase_while_it_starts_and_none_once_it_steps(runs_dir, monkeypatch):
    """The run's own process, started as the app starts it (its status written before it by a launcher that wrote no
    phase), records each phase as it enters it; each is read back from status.json at that moment."""
    from train import distill

    run_dir = runs_dir / "20250101-120000-ph01"
    run_dir.mkdir()
    write_status(run_dir, state="running", pid=os.getpid(), max_steps=2, message="Starting ...")
    seen = []

    def phase_at(where: str, fn):
        def watched(*args, **kwargs):
            status = read_status(run_dir)
            seen.append((where, status.get("phase"), status.get("step")))
            return fn(*args, **kwargs)
        return watched

    record = distill.GuessRecorder.record
    monkeypatch.setattr(distill, "prepare", phase_at("reading the corpus", distill.prepare))
    monkeypatch.setattr(distill, "place_student", phase_at("placing the student", distill.place_student))
    monkeypatch.setattr(distill.GuessRecorder, "record",
                        lambda self, *a, **k: phase_at(f"guesses of step {a[-1]}", record)(self, *a, **k))
    monkeypatch.setattr(distill, "forward_backward", phase_at("a step", distill.forward_backward))
    assert distill.main(["--teacher", "bundled-teacher", "--max-steps", "2", "--output-dir", str(run_dir),
                         *SHORT]) == 0
    assert seen == [("reading the corpus", "loading", None), ("placing the student", "preparing", None),
                    ("guesses of step 0", "evaluating", 0), ("a step", None, 0), ("a step", None, 0),
                    ("guesses of step 2", None, 0)]
    status = read_status(run_dir)
    assert status["state"] == "finished" and status["step"] == 2 and status["phase"] is None


def test_the_launcher_starts_a_run_in_its_loading_phase_and_its_end_clears_it(runs_dir, monkeypatch):
    """The page names the phase from the moment the process is started, before it can write anything itself."""
    from train import launcher as launcher_module

    class Child:  # the run's process, which here ends at once without writing its status
        pid, returncode = os.getpid(), 2

        def __init__(self, command, **_):
            self.command = command

        def poll(self):
            return self.returncode if ended else None

    monkeypatch.setattr(launcher_module.subprocess, "Popen", Child)
    launcher = RunLauncher(runs_dir)
    run_id = launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=10))
    ended = False
    launcher.pump()
    status = read_status(runs_dir / run_id)
    assert (status["state"], status["phase"]) == ("running", "loading")
    assert run_info(runs_dir / run_id)["phase"] == "loading"
    ended = True
    launcher.pump()  # reaps the child, which ended with exit code 2 before its first step
    status = read_status(runs_dir / run_id)
    assert status["state"] == "failed" and status["phase"] is None


def test_a_phase_is_one_of_the_runs_phases_and_shown_only_while_running(tmp_path):
    run_dir = tmp_path / "20250101-120000-ph02"
    write_phase(run_dir, "loading")  # no status yet: nothing is written, no folder made
    assert not run_dir.exists()
    run_dir.mkdir()
    write_status(run_dir, state="running", pid=os.getpid())
    for phase in (*PHASES, None):
        write_phase(run_dir, phase)
        assert read_status(run_dir)["phase"] == phase == run_info(run_dir)["phase"]
    with pytest.raises(ValueError, match="one of loading, preparing, evaluating"):
        write_phase(run_dir, "sleeping")
    write_status(run_dir, phase="evaluating", state="stopped")
    assert run_info(run_dir)["phase"] is None  # a run not running is doing nothing
    RunPaths(run_dir).status.write_text(json.dumps({"state": "running", "pid": os.getpid(), "phase": 3}))
    assert run_info(run_dir)["message"] == (f"The file {run_dir.name}/status.json is damaged (its 'phase' is 3, not "
                                            "null or one of loading, preparing, evaluating); delete the run, or "
                                            "repair the file by hand.")

"""core.runs: a run directory's layout, read by one module; which copy of a run's student is current."""
import json

import pytest
import torch

from core.paths import REPO_ROOT
from core.runs.store import (
    RunPaths,
    checkpoint_step,
    console_error,
    find_run_dir,
    has_model,
    list_runs,
    model_source,
    read_console,
    read_status,
    run_info,
    run_version,
    write_request,
    write_status,
)


def write_checkpoint(run_dir, step: int) -> None:
    """A small checkpoint file that loads: the entries a resume needs, with no weights."""
    path = run_dir / "checkpoints" / f"step-{step:06d}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": {}, "optimizer": {}, "scheduler": {}, "step": step, "epoch": 0, "rng": []}, path)


def make_run(root, run_id="20250101-120000-abcd", **status):
    paths = RunPaths(root / run_id)
    paths.root.mkdir(parents=True)
    write_status(paths.root, state="queued", **status)
    return paths


def test_every_tool_finds_a_run_by_folder_or_id_and_says_the_same_when_it_cannot(runs_dir, tmp_path, monkeypatch):
    run = runs_dir / "20250101-120000-abcd"
    run.mkdir()
    (run / "config.json").write_text("{}", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert find_run_dir(str(run)) == run and find_run_dir("20250101-120000-abcd") == run
    assert find_run_dir("run:20250101-120000-abcd") == run  # as the model lists name it
    give = "give a run's folder (runs/<id>) or a run id."
    for name, says in [("nope", f"There is no run 'nope' in this lab's runs folder and no folder of that name here; "
                                f"{give}"),
                       (f"{tmp_path}/nope", f"'{tmp_path}/nope' does not exist; {give}"),
                       ("notes.txt", f"'notes.txt' is a file, not a folder; {give}"),
                       (str(runs_dir), f"'{runs_dir}' is not a distillation run's folder (it has no config.json); "
                                       f"{give}"),
                       ("../runs", f"'../runs' does not exist; {give}")]:
        with pytest.raises(ValueError) as refused:
            find_run_dir(name)
        assert str(refused.value) == says


def test_a_queued_run_shows_the_teacher_and_student_it_asked_for(tmp_path):
    paths = make_run(tmp_path)
    write_request(paths.root, {"teacher": "bundled-teacher", "student_layers": 3, "max_steps": 40,
                               "student_vocab_size": 3000, "student_hidden": None, "align": "match"})
    info = run_info(paths.root)
    assert (info["teacher"], info["student_layers"], info["max_steps"]) == ("bundled-teacher", 3, 40)
    assert (info["student_vocab_size"], info["align"]) == (3000, "match")
    paths.config.write_text(json.dumps({"teacher": "other-teacher", "student_layers": 2, "max_steps": 40}))
    info = run_info(paths.root)  # once started, the run's own config is the truth
    assert (info["teacher"], info["student_layers"], info["student_vocab_size"], info["align"]) == \
        ("other-teacher", 2, None, None)


def test_final_wins_over_the_newest_checkpoint_in_every_reader(tmp_path):
    paths = make_run(tmp_path)
    assert model_source(paths.root) is None and run_version(paths.root) is None
    assert not has_model(run_info(paths.root))
    for step in (2, 10):
        write_checkpoint(paths.root, step)
    assert model_source(paths.root) == ("step-000010.pt", paths.root / "checkpoints" / "step-000010.pt")
    assert run_version(paths.root) == "step-000010.pt" and has_model(run_info(paths.root))
    paths.final.mkdir()
    (paths.final / "config.json").write_text("{}")
    assert model_source(paths.root) == ("final", paths.final) and run_version(paths.root) == "final"
    assert run_info(paths.root)["final"] is True


def test_console_tail_splits_progress_bars_and_hides_the_runs_folder(tmp_path):
    paths = make_run(tmp_path)
    assert read_console(paths.root) == ""
    lines = [f"line {i}" for i in range(100)]
    paths.console.write_text("\n".join(lines) + "\nstep 1\rstep 2\rstep 3\n"
                             f"error: The corpus file '{paths.corpus}' does not exist.\n", encoding="utf-8")
    tail = read_console(paths.root, max_lines=5).splitlines()
    assert tail[:4] == ["line 99", "step 1", "step 2", "step 3"]
    assert tail[4] == f"error: The corpus file 'runs/{paths.root.name}/corpus.txt' does not exist."
    assert str(tmp_path) not in read_console(paths.root)
    paths.console.write_text(f'  File "{REPO_ROOT}/train/distill.py", line 3, in main\n', encoding="utf-8")
    assert read_console(paths.root) == '  File "train/distill.py", line 3, in main'
    paths.console.write_text(f"error: The corpus file '{paths.corpus}' does not exist.\n", encoding="utf-8")
    assert console_error(paths.root) == f"The corpus file 'runs/{paths.root.name}/corpus.txt' does not exist."


def test_status_messages_do_not_show_the_servers_folders(tmp_path):
    make_run(tmp_path, message=f"Could not read {tmp_path}/20250101-120000-abcd/request.json.")
    assert list_runs(tmp_path)[0]["message"] == "Could not read runs/20250101-120000-abcd/request.json."


def test_a_resume_cuts_the_guesses_with_the_metrics_and_keeps_step_0(tmp_path):
    from core.runs.guesses import Guess, append_guesses, guess_row, read_guesses
    from core.runs.store import truncate_metrics
    paths = make_run(tmp_path)
    truncate_metrics(paths.root, 4, paths.guesses.name)  # a run from before guesses were kept: nothing made
    assert not paths.guesses.exists()
    teacher = [Guess(("чай", "кофе", "суп"), (0.5, 0.2, 0.1))]
    untrained = [Guess(("…ка", "и", "в"), (0.01, 0.01, 0.004))]
    append_guesses(paths.root, guess_row(0, untrained, [("Будешь [MASK]?", "чай")], teacher))
    for step in (4, 8):
        append_guesses(paths.root, guess_row(step, [Guess(("чай", "сок", "и"), (0.3, 0.1, 0.05))]))
    truncate_metrics(paths.root, 4, paths.guesses.name)
    history = read_guesses(paths.root)
    assert history.steps == [0, 4] and history.sentences == ["Будешь [MASK]?"] and history.teacher == teacher


def test_the_guess_table_snaps_to_an_evaluated_step_and_marks_agreement(tmp_path):
    from core.runs.guesses import SAME_MARK, Guess, GuessHistory
    history = GuessHistory(["a [MASK]", "b [MASK]"], ["x", "y"],
                           [Guess(("x", "y", "z"), (0.5, 0.2, 0.1)), Guess(("y", "x", "z"), (0.6, 0.1, 0.001))],
                           {0: [Guess(("q", "x", "z"), (0.1, 0.1, 0.1)), Guess(("q",), (0.2,))],
                            40: [Guess(("x", "q", "z"), (0.4, 0.1, 0.1)), Guess(("q",), (0.2,))]})
    assert history.steps == [0, 40]
    assert [history.nearest_step(s) for s in (None, -5, 0, 39, 40, 99)] == [40, 0, 0, 0, 40, 40]
    rows = history.rows(39)
    assert [r["same first guess"] for r in rows] == ["", ""]
    assert rows[1]["teacher's guesses"] == "y\u00a060% · x\u00a010% · z\u00a0<1%"  # a share kept beside its word
    assert [r["same first guess"] for r in history.rows(None)] == [SAME_MARK, ""]
    assert GuessHistory().rows(None) == []


def test_run_info_tells_whether_the_untrained_student_was_kept(tmp_path):
    paths = make_run(tmp_path)
    assert run_info(paths.root)["init"] is False
    paths.init.mkdir()
    (paths.init / "config.json").write_text("{}")
    assert run_info(paths.root)["init"] is True


def test_a_progress_bar_is_never_taken_for_the_reason_a_run_ended(tmp_path):
    paths = make_run(tmp_path)
    paths.console.write_text("$ python -m train.distill --resume runs/x\nRuntimeError: CUDA went away\n"
                             "distilling:  16%|█▌        | 16/100 [00:03<00:15,  5.30step/s, loss=10.703]\r"
                             "distilling:  17%|█▋        | 17/100 [00:03<00:15,  5.31step/s, loss=10.703]\n",
                             encoding="utf-8")
    assert console_error(paths.root) == "RuntimeError: CUDA went away"
    paths.console.write_text("distilling:   0%|          | 0/100 [00:00<?, ?step/s]\n", encoding="utf-8")
    assert console_error(paths.root) == ""


def test_a_dead_process_reads_as_stopped_as_asked_when_it_was_asked(tmp_path):
    dead = 2 ** 22 + 12345  # above the default pid_max of 4194304: no such process
    paths = make_run(tmp_path, pid=dead)
    write_status(paths.root, state="running", stop_requested=True)
    status = read_status(paths.root)
    assert status["state"] == "stopped"
    assert status["message"] == "Stopped as asked, before its first checkpoint; resume starts again from step 0."
    write_checkpoint(paths.root, 40)
    assert checkpoint_step(paths.root) == 40
    assert read_status(paths.root)["message"] == \
        "Stopped as asked, before its next checkpoint; resume continues from step 40."
    write_status(paths.root, stop_requested=False)
    assert read_status(paths.root)["message"] == ("Stopped at step 40 (the process ended without saying why); resume "
                                                  "continues from the checkpoint of step 40.")

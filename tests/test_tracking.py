"""--report-to: the metrics records and the options reach Accelerate's trackers, read back with each tracker's own
reader; bad tracker names and missing packages are refused before the run starts."""
import json
import os
import subprocess
import sys

import pytest
import yaml

from core.runs.store import read_metrics
from tests.support.cli import SHORT, run_cli
from tests.support.models import REPO
from train import tracking
from train.config import build_config
from train.distill import main
from train.tracking import TRACKING_PROJECT, hyperparameters, numeric_values, tracker_names

pytestmark = pytest.mark.cli


def tensorboard_scalars(run_dir) -> dict[str, list[tuple[int, float]]]:
    """Every scalar tag of the run's TensorBoard events: tag -> [(step, value)], as TensorBoard itself reads them
    (orphaned events of an interrupted session purged)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run_dir / "tracking" / TRACKING_PROJECT))
    events.Reload()
    return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def trackio_logs(run_dir) -> list[dict]:
    """The run's records in its trackio database, read by trackio in a child process (trackio fixes its folder,
    TRACKIO_DIR, when first imported)."""
    code = ("import json, sys; from trackio import SQLiteStorage; "
            "print(json.dumps(SQLiteStorage.get_logs(sys.argv[1], sys.argv[2])))")
    env = {**os.environ, "TRACKIO_DIR": str(run_dir / "tracking" / "trackio")}
    result = subprocess.run([sys.executable, "-c", code, TRACKING_PROJECT, run_dir.name], env=env, cwd=REPO,
                            capture_output=True, text=True, timeout=120, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def assert_scalars_equal_records(scalars: dict, records: list[dict]) -> None:
    """Each number of each metrics record is in the tracker once, at the record's step (TensorBoard keeps float32)."""
    expected = {}
    for record in records:
        for key, value in numeric_values(record).items():
            expected.setdefault(key, []).append((record["step"], value))
    assert set(scalars) == set(expected)
    for key, points in expected.items():
        assert [step for step, _ in scalars[key]] == [step for step, _ in points], key
        assert [v for _, v in scalars[key]] == pytest.approx([v for _, v in points], rel=1e-6), key


def test_tensorboard_and_trackio_hold_the_metrics_records(tmp_path, tiny_teacher_dir, tiny_corpus):
    pytest.importorskip("trackio")
    out = tmp_path / "run"
    result = run_cli("--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--max-steps", 8, "--output-dir", out,
                     "--report-to", "tensorboard,trackio", *SHORT)
    assert result.returncode == 0, result.stderr
    records = read_metrics(out)
    assert [r["step"] for r in records] == [0, 2, 4, 6, 8]
    scalars = tensorboard_scalars(out)
    assert_scalars_equal_records(scalars, records)
    assert {"loss", "loss_kl", "lr", "eval_agreement"} <= set(scalars)
    hparams = [yaml.safe_load(p.read_text()) for p in (out / "tracking" / TRACKING_PROJECT).glob("*/hparams.yml")]
    assert len(hparams) == 1 and hparams[0]["max_steps"] == 8 and hparams[0]["betas"] == "0.9,0.98"
    assert hparams[0]["report_to"] == "tensorboard,trackio"
    logs = trackio_logs(out)
    assert [row["step"] for row in logs] == [0, 2, 4, 6, 8]
    for row, record in zip(logs, records):
        assert {k: row[k] for k in numeric_values(record)} == pytest.approx(numeric_values(record), rel=1e-12)


def test_a_resume_may_add_trackers_and_tensorboard_drops_the_steps_after_the_checkpoint(tmp_path, tiny_teacher_dir,
                                                                                      tiny_corpus):
    out = tmp_path / "run"
    first = run_cli("--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--max-steps", 8, "--save-every", 4,
                    "--output-dir", out, "--report-to", "tensorboard", *SHORT)
    assert first.returncode == 0, first.stderr
    (out / "checkpoints" / "step-000008.pt").unlink()  # as if killed after logging steps 6 and 8 again
    trackers = "tensorboard,trackio" if tracking.TRACKERS["trackio"][1]() else "tensorboard"
    resumed = run_cli("--resume", out, "--report-to", trackers)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((out / "config.json").read_text())["report_to"] == trackers.split(",")
    records = read_metrics(out)
    assert [r["step"] for r in records] == [0, 2, 4, 6, 8]
    assert_scalars_equal_records(tensorboard_scalars(out), records)  # steps 6 and 8 once, not twice
    if "trackio" in trackers:  # added on resume: it holds the resumed session's records
        assert [row["step"] for row in trackio_logs(out)] == [6, 8]


@pytest.mark.parametrize("flag, message", [
    ("tensorbord", "--report-to: unknown tracker 'tensorbord'; choose from tensorboard, trackio, wandb, mlflow or "
                   "none"),
    ("tensorboard,comet", "unknown tracker 'comet'"),
])
def test_an_unknown_tracker_gives_one_line_exit_2(flag, message, tmp_path, tiny_teacher_dir, tiny_corpus, capsys):
    out = tmp_path / "run"
    code = main(["--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus), "--output-dir", str(out),
                 "--report-to", flag])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    assert not out.exists()


@pytest.mark.parametrize("name", ["wandb", "mlflow", "tensorboard"])
def test_a_missing_tracker_package_gives_one_line_exit_2(name, tmp_path, tiny_teacher_dir, tiny_corpus, capsys,
                                                         monkeypatch):
    monkeypatch.setitem(tracking.TRACKERS, name, (name, lambda: False))  # as on a machine without the package
    out = tmp_path / "run"
    code = main(["--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus), "--output-dir", str(out),
                 "--report-to", f"none,{name}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"error: --report-to {name} needs the {name} package: pip install {name}"]
    assert not out.exists()


def test_wandb_and_mlflow_are_refused_where_they_are_not_installed(capsys):
    for name in ("wandb", "mlflow"):
        if tracking.TRACKERS[name][1]():
            continue
        assert main(["--report-to", name]) == 2
        assert capsys.readouterr().err.strip() == f"error: --report-to {name} needs the {name} package: " \
                                                  f"pip install {name}"


def test_tracker_names_from_flags_and_files():
    assert tracker_names("none") == tracker_names("") == tracker_names(None) == []
    assert tracker_names(" TensorBoard, trackio,tensorboard ") == ["tensorboard", "trackio"]
    assert build_config({"report_to": ["tensorboard"]}, {}).report_to == ["tensorboard"]  # a YAML list
    assert build_config({"report_to": "tensorboard"}, {"report_to": "none"}).report_to == []  # the flag wins


def test_hyperparameters_are_flat_scalars_and_metrics_rows_give_their_numbers():
    flat = hyperparameters({"lr": 5e-4, "betas": [0.9, 0.98], "init_layers": None, "compile": False,
                            "teacher": "bundled-teacher", "nested": {"a": 1}})
    assert flat == {"lr": 5e-4, "betas": "0.9,0.98", "init_layers": "none", "compile": False,
                    "teacher": "bundled-teacher", "nested.a": 1}
    assert numeric_values({"step": 4, "loss": 1.5, "epoch": 0, "note": "x", "flag": True}) == {"loss": 1.5,
                                                                                               "epoch": 0}

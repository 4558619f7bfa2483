"""What a run keeps to show the student learning: step 0's evaluation, init/ (run:<id>@init), the probe guesses,
and its metrics and student as files to download. One short run of the command line serves every test."""
import csv
import json
import os
import shutil
import zipfile

import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from core.compare.predict import predict_masks
from core.models import zoo
from core.models.student import StudentSpec, make_student
from core.runs.export import write_metrics_csv, write_student_zip
from core.runs.guesses import GUESS_TOP_K, read_guesses
from core.runs.store import RunPaths, read_metrics
from tests.support.cli import SHORT, run_cli
from train.config import DistillConfig
from train.distill import PROBE_TOPICS, guess_probes
from train.setup import prepare

pytestmark = pytest.mark.cli

RUN_ID = "20250101-000000-test"


@pytest.fixture(scope="module")
def run_root(tmp_path_factory, tiny_teacher_dir, tiny_corpus):
    """A runs folder holding one finished 8-step run (checkpoints at 4 and 8, evaluations at 0, 4 and 8)."""
    root = tmp_path_factory.mktemp("runs")
    result = run_cli("--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--max-steps", 8, "--save-every", 4,
                     "--output-dir", root / RUN_ID, *SHORT)
    assert result.returncode == 0, result.stderr
    return root


@pytest.fixture
def runs(run_root, monkeypatch):
    monkeypatch.setenv("RUDISTIL_RUNS_DIR", str(run_root))
    return run_root


def test_the_first_metrics_row_is_the_untrained_student_evaluated(run_root, tiny_teacher_dir):
    run_dir = run_root / RUN_ID
    records = read_metrics(run_dir)
    first = records[0]
    assert first["step"] == 0 and not any(key.startswith("loss") for key in first)
    assert {"eval_agreement", "eval_mlm_acc", "eval_teacher_mlm_acc", "eval_masked_positions"} <= set(first)
    assert [r["step"] for r in records].count(0) == 1
    # the same held-out figures, measured again on the saved untrained student
    cfg = DistillConfig.from_dict(json.loads(RunPaths(run_dir).config.read_text()))
    recipe = prepare(cfg, run_dir, resume=True, verbose=False).recipe
    init = AutoModelForMaskedLM.from_pretrained(RunPaths(run_dir).init)
    again = recipe.evaluate(init, recipe.teacher)
    for key, value in again.items():
        assert first[f"eval_{key}"] == pytest.approx(value), key
    assert first["eval_teacher_mlm_acc"] == pytest.approx(records[-1]["eval_teacher_mlm_acc"])


def test_run_init_loads_the_student_make_student_builds(runs, tiny_teacher_dir):
    teacher = AutoModelForMaskedLM.from_pretrained(tiny_teacher_dir)
    made = make_student(teacher, StudentSpec(num_layers=2)).eval()  # the run's defaults: half the layers, same type
    loaded = zoo.load(f"run:{RUN_ID}@init")
    assert zoo.resolve(f"run:{RUN_ID}@init") == ("run", str(runs / RUN_ID))
    text = ["Я поставил чайник, будешь [MASK] с печеньем?"]
    made_guess = predict_masks(zoo.LoadedModel("made", made, loaded.tokenizer, "local"), text, 5)[0].masks[0]
    init_guess = predict_masks(loaded, text, 5)[0].masks[0]
    assert init_guess.tokens == made_guess.tokens
    assert init_guess.probs == pytest.approx(made_guess.probs, abs=1e-6)
    trained = zoo.load(f"run:{RUN_ID}")  # the run's own name still loads its final student, which has moved on
    assert not torch.equal(trained.model.base_model.embeddings.word_embeddings.weight,
                           loaded.model.base_model.embeddings.word_embeddings.weight)


@pytest.mark.parametrize("name, message", [
    (f"run:{RUN_ID}@best", f"names an unknown copy of run '{RUN_ID}'"),
    ("run:no-such-run@init", "There is no run 'no-such-run'"),
])
def test_a_bad_run_copy_says_so_in_one_sentence(runs, name, message):
    with pytest.raises(ValueError, match=message) as error:
        zoo.load(name)
    text = str(error.value)
    assert text.endswith(".") and "\n" not in text and "Traceback" not in text


def test_a_run_without_init_says_so(runs):
    copy = runs / "20250101-000001-copy"
    shutil.copytree(runs / RUN_ID, copy)
    shutil.rmtree(RunPaths(copy).init)
    with pytest.raises(ValueError, match="kept no copy of its student before training") as error:
        zoo.load(f"run:{copy.name}@init")
    assert str(error.value).endswith(".")
    assert zoo.run_model_version(f"run:{RUN_ID}@init") == "init"
    assert zoo.run_model_version(f"run:{RUN_ID}") == "final"


def test_each_evaluation_records_the_probe_guesses(run_root, tiny_teacher_dir):
    run_dir = run_root / RUN_ID
    history = read_guesses(run_dir)
    probes = guess_probes()
    assert history.steps == [0, 4, 8]  # every evaluation, step 0 included
    assert history.sentences == [p.sentence for p in probes] and len(probes) == PROBE_TOPICS
    assert len({p.topic for p in probes}) == PROBE_TOPICS  # one sentence a topic
    assert sum("teacher" in row for row in read_metrics(run_dir, "guesses.jsonl")) == 1  # the teacher's once
    teacher = zoo.load(str(tiny_teacher_dir))
    init = zoo.load(str(RunPaths(run_dir).init))
    final = zoo.load(str(RunPaths(run_dir).final))
    for model, guesses in [(teacher, history.teacher), (init, history.student[0]), (final, history.student[8])]:
        expected = predict_masks(model, history.sentences, GUESS_TOP_K)
        assert [list(g.words) for g in guesses] == [[w for w in r.masks[0].words] for r in expected]
        assert [g.probs[0] for g in guesses] == pytest.approx([r.masks[0].probs[0] for r in expected], abs=1e-3)


def test_metrics_download_has_a_row_per_logged_step_and_every_field(run_root, tmp_path):
    run_dir = run_root / RUN_ID
    path = write_metrics_csv(run_dir, tmp_path)
    assert path.name == f"{RUN_ID}-metrics.csv"
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    records = read_metrics(run_dir)
    assert [int(r["step"]) for r in rows] == [r["step"] for r in records] == [0, 2, 4, 6, 8]
    assert set(rows[0]) == {key for r in records for key in r}
    assert rows[0]["loss"] == "" and float(rows[-1]["loss"]) == pytest.approx(records[-1]["loss"])
    assert float(rows[0]["eval_agreement"]) == pytest.approx(records[0]["eval_agreement"])


@pytest.mark.parametrize("finished", [True, False])
def test_student_download_loads_after_unzipping(run_root, tmp_path, finished):
    run_dir = run_root / RUN_ID
    if not finished:  # the same run as if still training: its newest checkpoint is exported
        run_dir = shutil.copytree(run_dir, tmp_path / "20250101-000002-live")
        shutil.rmtree(RunPaths(run_dir).final)
    path = write_student_zip(run_dir, tmp_path)
    version = "final" if finished else "step-000008"
    assert path.name == f"{run_dir.name}-{version}.zip"
    with zipfile.ZipFile(path) as archive:
        archive.extractall(tmp_path / "unzipped")
    folder = tmp_path / "unzipped" / f"{run_dir.name}-{version}"
    model = AutoModelForMaskedLM.from_pretrained(folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    reference = AutoModelForMaskedLM.from_pretrained(run_root / RUN_ID / "final")  # step 8 is the final step
    inputs = tokenizer(["Привет, как дела?"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(model.eval()(**inputs).logits, reference.eval()(**inputs).logits, atol=1e-5)


def test_student_download_before_any_checkpoint_says_to_wait(tmp_path):
    run_dir = tmp_path / "20250101-000003-new"
    run_dir.mkdir()
    with pytest.raises(ValueError, match="has no saved student yet: wait for its first checkpoint."):
        write_student_zip(run_dir, tmp_path)
    with pytest.raises(ValueError, match="has logged no metrics yet"):
        write_metrics_csv(run_dir, tmp_path)


def damage(path, how: str) -> None:
    """Damage a checkpoint file as a full disk, a failed copy or a stray write would."""
    data = path.read_bytes()
    if how == "bad pickle":  # a whole zip whose saved state cannot be unpickled
        with zipfile.ZipFile(path) as archive:
            members = {name: archive.read(name) for name in archive.namelist()}
        with zipfile.ZipFile(path, "w") as archive:
            for name, content in members.items():
                archive.writestr(name, b"\x80\x02garbage" if name.endswith("data.pkl") else content)
        return
    path.write_bytes({"truncated": data[:len(data) // 3], "empty": b"", "random": os.urandom(len(data))}[how])


@pytest.mark.parametrize("how", ["truncated", "empty", "random", "bad pickle"])
def test_a_run_loads_its_newest_readable_checkpoint_and_names_the_unreadable_one(runs, how):
    copy = runs / f"20250101-000004-{how.replace(' ', '-')}"
    shutil.copytree(runs / RUN_ID, copy)
    shutil.rmtree(RunPaths(copy).final)  # as if still training: its newest checkpoint is what loads
    damage(copy / "checkpoints" / "step-000008.pt", how)
    loaded = zoo.load(f"run:{copy.name}")
    assert loaded.notice.startswith(f"Run '{copy.name}': step-000008.pt ")
    assert loaded.notice.endswith(" step-000004.pt was used instead.") and "\n" not in loaded.notice
    assert zoo.run_model_version(f"run:{copy.name}") == "step-000004.pt"
    state = torch.load(copy / "checkpoints" / "step-000004.pt", weights_only=False)["model"]
    [key] = [k for k in state if k.endswith("word_embeddings.weight")]
    assert torch.equal(loaded.model.base_model.embeddings.word_embeddings.weight, state[key])

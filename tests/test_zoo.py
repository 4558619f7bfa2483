"""Naming and loading models, offline."""
import pytest

from core.models import zoo


def test_known_names_resolve_to_hub_or_bundled():
    assert zoo.resolve("rubert-base-cased-conversational") == ("hub", "DeepPavlov/rubert-base-cased-conversational")
    source, location = zoo.resolve("bundled-teacher")
    assert source == "bundled" and location.endswith("assets/models/teacher")
    name = "distilrubert-base-cased-conversational"
    assert zoo.resolve(f"arch:{name}") == ("arch", name)
    assert zoo.resolve("someone/some-model") == ("hub", "someone/some-model")


def test_local_folders_and_runs(tiny_teacher_dir, runs_dir):
    assert zoo.resolve(str(tiny_teacher_dir)) == ("local", str(tiny_teacher_dir.resolve()))
    (runs_dir / "r1").mkdir()
    assert zoo.resolve("run:r1") == ("run", str(runs_dir / "r1"))


def test_a_run_folder_given_by_path_loads_its_student_as_its_run_name_does(tiny_student_dir, runs_dir, tmp_path):
    """python -m core.bench --models runs/ID said the folder had no model_type, though train.export took it."""
    import json
    import shutil

    import torch

    from core.bench.plan import model_config

    run = runs_dir / "20250101-120000-abcd"
    shutil.copytree(tiny_student_dir, run / "final")
    (run / "status.json").write_text(json.dumps({"state": "finished"}), encoding="utf-8")
    assert zoo.resolve(str(run)) == ("run", str(run.resolve()))
    by_path, by_name = zoo.load(str(run)), zoo.load(f"run:{run.name}")
    assert by_path.source == "run" and all(torch.equal(a, b) for a, b in zip(
        by_path.model.state_dict().values(), by_name.model.state_dict().values()))
    assert model_config(str(run)).model_type == by_name.model.config.model_type
    from core.models.cache import ModelCache

    # cached by what the run holds now, as run:ID is: a newer student is loaded afresh, not served from the cache
    assert ModelCache._key(str(run), False)[2] == ModelCache._key(f"run:{run.name}", False)[2] == "final"


@pytest.mark.parametrize("name, message", [
    ("", "Choose a model"),
    ("arch:gpt-7", "No architecture"),
    ("run:../../etc", "not a valid run id"),
    ("run:missing-run", "no run"),
    ("./no/such/folder", "does not exist"),
    ("not a model name!", "Unknown model"),
])
def test_bad_names_get_a_sentence(name, message, runs_dir):
    with pytest.raises(ValueError, match=message):
        zoo.resolve(name)


def test_an_empty_name_offline_names_what_loads_here(monkeypatch):
    with pytest.raises(ValueError) as offline:
        zoo.resolve(" ")
    assert str(offline.value) == ("Choose a model: bundled-teacher or bundled-student, run:RUN_ID for a run's student, "
                                  "or a local model folder (the Hugging Face Hub is out of reach, so a Hub id loads "
                                  "only when it is already cached).")
    monkeypatch.setattr(zoo, "hub_reachable", lambda: True)
    with pytest.raises(ValueError, match=r"^Choose a model: a known name, a Hub id such as DeepPavlov/"):
        zoo.resolve("")


def test_uncached_hub_model_offline_says_what_to_do():
    assert not zoo.hub_reachable()  # HF_HUB_OFFLINE=1 in tests
    with pytest.raises(ValueError, match="cannot be reached"):
        zoo.load("rubert-base-cased-conversational")
    assert not zoo.is_available("distilrubert-base-cased-conversational")


def test_offline_default_is_the_bundled_pair_with_a_notice():
    pair, notice = zoo.default_pair()
    assert pair == zoo.BUNDLED_PAIR and "bundled" in notice


def test_architecture_models_have_the_exact_published_shapes():
    config = zoo.arch_config("rubert-base-cased-conversational")
    assert (config.num_hidden_layers, config.hidden_size, config.vocab_size) == (12, 768, 119547)
    tiny = zoo.arch_config("distilrubert-tiny-cased-conversational-v1")
    assert (tiny.n_layers, tiny.dim, tiny.hidden_dim, tiny.vocab_size) == (3, 264, 792, 30522)

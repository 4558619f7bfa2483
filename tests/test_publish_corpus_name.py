"""The model card names a corpus uploaded in the app as its owner named it; a run saved before the name was kept
(its config.json has no corpus_name) still loads and publishes, saying only that its corpus was uploaded."""
import json

import pytest

from core.runs.store import RunPaths, write_status
from tests.support.models import corpus_lines
from train.config import DistillConfig
from train.publish import model_card, run_config


def uploaded_run(root, corpus_name: str | None):
    """A finished run's folder on its own copy of an uploaded corpus: config.json as the run writes it, with
    `corpus_name` (None: without the field, as older versions wrote it), status.json and one evaluation."""
    paths = RunPaths(root / "20250101-120000-abcd")
    paths.root.mkdir(parents=True)
    paths.corpus.write_text("\n".join(corpus_lines(40)) + "\n", encoding="utf-8")
    config = DistillConfig(teacher="bundled-teacher", corpus=str(paths.corpus), max_steps=4).to_dict()
    if corpus_name is None:
        del config["corpus_name"]
    else:
        config["corpus_name"] = corpus_name
    paths.config.write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    write_status(paths.root, state="finished", step=4, max_steps=4)
    paths.metrics.write_text(json.dumps({"step": 4, "eval_agreement": 0.5, "eval_mlm_acc": 0.25}) + "\n")
    return paths.root


def corpus_line(run_dir, student_dir) -> str:
    text = model_card(run_dir, "someone/tiny-student", student_dir).text
    return next(line for line in text.splitlines() if line.startswith("- Corpus:"))


@pytest.mark.parametrize("given, written", [("отзывы клиентов.txt", "отзывы клиентов.txt"),
                                            ("my_notes*.txt", r"my\_notes\*.txt")])  # Markdown shows it as typed
def test_the_card_names_an_uploaded_corpus_as_its_owner_named_it(tmp_path, tiny_teacher_dir, given, written):
    run_dir = uploaded_run(tmp_path, given)
    assert corpus_line(run_dir, tiny_teacher_dir) == \
        f"- Corpus: a corpus uploaded to RuDistil Lab as '{written}', 40 non-blank lines."


def test_a_run_saved_without_the_corpus_name_still_loads_and_publishes(tmp_path, tiny_teacher_dir):
    run_dir = uploaded_run(tmp_path, None)
    assert run_config(run_dir).corpus_name is None
    assert corpus_line(run_dir, tiny_teacher_dir) == "- Corpus: a corpus uploaded to RuDistil Lab, 40 non-blank lines."

"""The About tab's lesson, step by step through the app's API: each step's action shows what the lesson says it shows.

The lesson quotes assets/results/bundled_quality.json; tests/test_bundled.py checks that file against the models.
"""
import json
import re
import time

import pandas as pd
import pytest

from scripts.appserver import start_app
from tests.support.waiting import wait_for
from ui.lesson import SETTINGS, lesson_markdown, pct, read_figures

pytestmark = pytest.mark.app

FIGURES = read_figures()


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lesson")
    running = start_app(folder / "runs", folder / "app.log")
    yield running.client()
    running.kill()


def test_the_lesson_quotes_the_measured_figures():
    assert FIGURES is not None, "assets/results/bundled_quality.json is missing: python -m scripts.bundled_figures"
    text = lesson_markdown(FIGURES)
    for needed in (FIGURES["lesson_example"]["sentence"], pct(FIGURES["teacher_fill_in_top1"]),
                   pct(FIGURES["teacher_topic_purity"]), pct(FIGURES["chance_topic_purity"])):
        assert needed in text


def test_the_lesson_says_topics_gather_only_where_the_measured_purity_shows_it():
    for teacher, student, on_teacher, on_student in ((0.74, 0.71, True, True), (0.74, 0.45, True, False),
                                                     (0.26, 0.24, False, False)):
        text = lesson_markdown({**FIGURES, "teacher_topic_purity": teacher, "student_topic_purity": student})
        assert ("gather in islands on the teacher's map" in text) is on_teacher, text
        assert ("and on the student's" in text) is on_student, text


def test_step_1_the_teachers_guesses_and_the_probe_summary(client):
    example = FIGURES["lesson_example"]
    figure, agreement = client.predict(model_1=SETTINGS.teacher, model_2=SETTINGS.student, model_3="", top_k=5,
                                       sentence=example["sentence"], api_name="/fill_mask")
    plotted = json.dumps(figure, ensure_ascii=False)
    assert all(word in plotted for word in example["teacher_top5"])
    table, _, rows = client.predict(model_1=SETTINGS.teacher, model_2=SETTINGS.student, model_3="",
                                    api_name="/probe_summary")
    columns = table["headers"]
    teacher_row, student_row = table["data"]
    accuracy, agreement = columns.index("top-1 accuracy"), columns.index("top-1 agreement with model 1")

    def share(cell: str) -> float:  # the page shows shares as percentages, "10.1%"
        return float(cell.rstrip("%")) / 100

    # the summary leaves out probes whose word the vocabulary splits; the lesson counts them as misses
    assert share(teacher_row[accuracy]) == pytest.approx(FIGURES["teacher_fill_in_top1"], abs=0.01), table
    assert share(student_row[agreement]) == pytest.approx(FIGURES["probe_agreement"], abs=0.006), table


def test_step_2_a_default_run_finishes_in_time_and_its_agreement_rises(client, tmp_path):
    started = time.perf_counter()
    owner, dropdown, _ = client.predict(owner=None, teacher=SETTINGS.teacher,
                                        student_layers=FIGURES["teacher_layers"] // 2,
                                        kl_masked_only=SETTINGS.kl_masked_only, api_name="/start_run")
    run_id = dropdown["value"]
    wait_for(lambda: "finished" in client.predict(run_id=run_id, owner=owner, api_name="/run_status")[2],
             timeout=SETTINGS.run_minutes * 60, every=2)
    assert time.perf_counter() - started < SETTINGS.run_minutes * 60
    path = client.predict(run_id=run_id, owner=owner, api_name="/run_metrics_csv")
    metrics = pd.read_csv(path["value"] if isinstance(path, dict) else path).dropna(subset=["eval_agreement"])
    assert metrics["step"].iloc[0] == 0 and len(metrics) >= 3
    assert metrics["eval_agreement"].iloc[-1] > metrics["eval_agreement"].iloc[0] + 0.05, metrics
    early = metrics.loc[metrics["step"] == SETTINGS.early_step, "eval_agreement"]  # where a busy class may stop
    assert len(early) == 1 and early.iloc[0] > metrics["eval_agreement"].iloc[0] + 0.03, metrics


def test_step_3_same_label_neighbours_under_the_map(client):
    outputs = client.predict(source="Probe set", file=None, sentences="", model_1=SETTINGS.teacher,
                             model_2=SETTINGS.student, model_3="", pooling="mean", method="UMAP", dims="2D",
                             api_name="/embedding_map")
    note = next(o for o in outputs if isinstance(o, str) and "Same-label neighbours" in o)
    assert f"{SETTINGS.teacher} {pct(FIGURES['teacher_topic_purity'])}" in note, note
    assert f"{SETTINGS.student} {pct(FIGURES['student_topic_purity'])}" in note, note
    assert f"chance {pct(FIGURES['chance_topic_purity'])}" in note, note


def seconds_in(estimate: str) -> float:
    """The first duration of an estimate sentence, in seconds ('about 12 s', '1 min 05 s')."""
    found = re.search(r"(?:(\d+) min )?(\d+(?:\.\d+)?) s\b", estimate)
    assert found, estimate
    return 60 * int(found.group(1) or 0) + float(found.group(2))


def test_step_4_the_benchmark_is_as_quick_as_promised_and_the_student_faster(client):
    settings = dict(models=[SETTINGS.teacher, SETTINGS.student], device="cpu",
                    batch_sizes=str(SETTINGS.bench_batch), seq_len=SETTINGS.bench_seq_len, modes=["reference"])
    estimate = client.predict(**settings, api_name="/estimate_benchmark")
    assert seconds_in(estimate) <= SETTINGS.bench_seconds, estimate
    started = time.perf_counter()
    result = client.predict(**settings, api_name="/run_benchmark")
    assert time.perf_counter() - started <= 2 * SETTINGS.bench_seconds
    shown = json.dumps(result, ensure_ascii=False)
    assert SETTINGS.student in shown and SETTINGS.teacher in shown
    ratios = result[5]  # the speed-ups table: the student faster than the teacher, as the step says
    row = next(dict(zip(ratios["headers"], r)) for r in ratios["data"] if "throughput" in str(r[0]))
    assert float(row["reference (here)"]) > 1, row


def test_every_control_the_lesson_names_in_bold_is_on_the_page():
    """A person follows the lesson by the names it puts in bold: each is a tab, a label, a button or a choice as the
    page shows it (a label may go on with its unit, as in 'Sequence length (tokens)')."""
    from app import build_app
    from ui.context import AppContext

    demo = build_app(AppContext.create())
    shown = set()
    for block in demo.blocks.values():
        shown.update(v for v in (getattr(block, "label", None), getattr(block, "value", None)) if isinstance(v, str))
        for choice in getattr(block, "choices", None) or []:
            shown.update(str(part) for part in (choice if isinstance(choice, (tuple, list)) else [choice]))
        shown.update(str(header) for header in getattr(block, "headers", None) or [])
    text = lesson_markdown(FIGURES)
    named = {name for name in re.findall(r"\*\*([^*]+)\*\*", text)
             if not name.startswith("(") and name not in (SETTINGS.teacher, SETTINGS.student)}
    missing = {name for name in named if not any(s == name or s.startswith(name + " (") for s in shown)}
    assert len(named) >= 10 and not missing, missing

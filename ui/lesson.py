"""The About tab's 10-minute lesson on the bundled pair: each step names the control to press, the figure to look
at and what a class will see there, quoting the pair's figures as measured by scripts/bundled_figures.py
(assets/results/bundled_quality.json). tests/test_lesson.py runs every step through the app's API."""
from __future__ import annotations

import json
from dataclasses import dataclass

from core.paths import ASSETS

FIGURES = ASSETS / "results" / "bundled_quality.json"
GROUPED_PURITY = 0.5  # the share of same-topic neighbours above which a map shows topics as groups


@dataclass(frozen=True)
class LessonSettings:
    """What the lesson asks a class to choose; everything else keeps the tabs' defaults."""
    teacher: str = "bundled-teacher"
    student: str = "bundled-student"
    kl_masked_only: bool = True  # the bundled student's recipe: the vocabulary logits only where a loss reads them
    run_minutes: int = 4  # the default Distill run so, on a 2-core laptop, with room to spare
    early_step: int = 100  # an evaluation of the default run by which its agreement has risen
    bench_batch: int = 32
    bench_seq_len: int = 128
    bench_seconds: int = 60  # the lesson's benchmark, estimated before it starts


SETTINGS = LessonSettings()


def read_figures() -> dict | None:
    """The bundled pair's measured figures, or None before scripts/bundled_figures.py has written them."""
    return json.loads(FIGURES.read_text(encoding="utf-8")) if FIGURES.is_file() else None


def pct(value: float) -> str:
    """A share as the lesson and the app's notes print it: 0.4173 -> '42%'."""
    return f"{value:.0%}"


def lesson_markdown(figures: dict | None) -> str:
    """The lesson as Markdown; without measured figures, the same steps with what to look for instead of numbers."""
    s = SETTINGS
    if figures is None:
        return ("## A 10-minute lesson\n\nRun `python -m scripts.bundled_figures` to measure the bundled pair; the "
                "lesson then says what each step shows.")
    example, curve = figures["lesson_example"], figures.get("distillation") or {}
    guesses = ", ".join(f"*{w}*" for w in example["teacher_top5"])
    grouped = "."  # said only when the measured purity shows it: most of a sentence's neighbours share its topic
    if figures["teacher_topic_purity"] >= GROUPED_PURITY:
        grouped = ": each topic's sentences (one colour) gather in islands on the teacher's map"
        grouped += " and on the student's." if figures["student_topic_purity"] >= GROUPED_PURITY else "."
    tick = (", tick **KL at masked positions only** (the bundled student was made with it; a step takes about a "
            "quarter of the time it takes with the card's recipe)") if s.kl_masked_only else ""
    started = (f"{pct(curve['first_agreement'])} at step {curve['first_step']}, {pct(curve['last_agreement'])} at "
               f"step {curve['last_step']:,}") if curve else "rising through the run"
    return f"""
## A 10-minute lesson

The lesson uses the pair bundled with the lab (**{s.teacher}**, {figures['teacher_layers']} layers, and
**{s.student}**, {figures['student_layers']} layers distilled from it), which work without a network.
The figures below were measured on this pair; the app shows the same.

1. **(2 min) What the teacher knows.** In **Predictions**, choose {s.teacher} and {s.student}, type
   *{example['sentence']}* and press **Predict**. The teacher's five guesses are {guesses}; the student's first guess
   is the same *{example['expected']}*. Press **Probe summary**: over the 190 fill-in probes the teacher names the
   expected word first for {pct(figures['teacher_fill_in_top1'])} of them, and the student's first guess is the
   teacher's for {pct(figures['probe_agreement'])}. Ask: the teacher read about a million words of our corpus (its
   word embeddings started from vectors learnt on a billion words of news); DeepPavlov's read billions. What does a
   small teacher get right, and what not?
2. **(4 min) Watch a student learn.** In **Distill**, keep the bundled teacher and the defaults{tick} and
   press **Start run** (it takes under {s.run_minutes} minutes on an idle 2-core laptop, longer while other programs
   keep its cores busy; on a busy machine the curve has already risen by step {s.early_step}, and **Stop** ends the
   run there with its student kept). The agreement curve's first point is
   the untrained student, made of {figures['student_layers']} of the teacher's layers: it already agrees with the
   teacher on some masked words, and the curve rises as the KL term pulls it toward the teacher (the bundled
   student's own run, on its own evaluation lines: {started}). Ask: why does the student agree with the teacher more
   often than either is right?
3. **(2 min) Inside the models.** In **Embeddings**, keep the probe set (704 sentences on 16 topics), choose
   **UMAP** (it keeps each sentence's neighbours; PCA keeps only the largest directions) and press
   **Draw**{grouped} Under the maps, the note with the **How alike** table (beside it, or under it in a narrow
   window) says, as *same-label neighbours*, how many of each sentence's 10 nearest sentences share its topic:
   teacher {pct(figures['teacher_topic_purity'])},
   student {pct(figures['student_topic_purity'])}, against {pct(figures['chance_topic_purity'])} by chance. The
   table's *linear CKA* column says how alike the two spaces are.
4. **(1 min) The price.** In **Benchmark**, replace the models with {s.teacher} and {s.student}, set **Batch sizes**
   to {s.bench_batch} and **Sequence length** to {s.bench_seq_len}, leave only **reference** ticked under **Modes**,
   and press **Run benchmark** (the estimate above
   the button says it takes under {s.bench_seconds} s). The student, with half the layers, runs about twice as fast
   on an idle machine (the speed-ups table's *reference (here)* column; less while other programs keep its cores
   busy): the model card's promise for the real pair. Read the speed, not the MB column: at this size the
   memory a pass takes is small and moves from one run to the next.
5. **(1 min) A smaller vocabulary.** Read the experiment below: parameters and speed bought against agreement lost.
"""

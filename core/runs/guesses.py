"""What the student learned, sentence by sentence: a run's guesses.jsonl, its probe sentences' top guesses.

At each evaluation (step 0 included) the run appends one JSON object:
  {"step": 40, "student": [{"words": ["чай", "кофе", "суп"], "probs": [0.41, 0.12, 0.05]}, ...]}
one entry a probe sentence, in the probes' order, best guess first, probabilities in [0, 1]. The first object of the
file also holds the sentences and the teacher's guesses (the teacher does not change during a run):
  "probes": [{"sentence": "... [MASK] ...", "expected": "чай"}, ...], "teacher": [{"words": [...], "probs": [...]}]
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from core.runs.store import RunPaths, read_metrics

GUESS_TOP_K = 3  # guesses kept per sentence
COLUMNS = ["sentence", "expected", "teacher's guesses", "student's guesses", "same first guess"]
SAME_MARK = "✓"
NBSP = "\u00a0"


@dataclass(frozen=True)
class Guess:
    """One model's top guesses for one [MASK]: words as people read them ("…ка" for a piece), best first."""
    words: tuple[str, ...]
    probs: tuple[float, ...]  # each in [0, 1], same length as words

    def as_dict(self) -> dict:
        return {"words": list(self.words), "probs": [round(p, 4) for p in self.probs]}

    @classmethod
    def from_dict(cls, data: dict) -> Guess:
        return cls(tuple(data.get("words", ())), tuple(data.get("probs", ())))

    def text(self) -> str:
        """ "чай 41% · кофе 12% · суп <1%", each word and its share joined by a no-break space (NBSP), so a table
        that wraps the guesses never leaves a share at the start of a line, apart from its word."""
        return " · ".join(f"{w}{NBSP}{p:.0%}" if p >= 0.005 else f"{w}{NBSP}<1%"
                          for w, p in zip(self.words, self.probs)) or "-"


@dataclass
class GuessHistory:
    """A run's guesses.jsonl read back: the probe sentences, the teacher's guesses, the student's at each step."""
    sentences: list[str] = field(default_factory=list)
    expected: list[str] = field(default_factory=list)
    teacher: list[Guess] = field(default_factory=list)
    student: dict[int, list[Guess]] = field(default_factory=dict)  # step -> one Guess a sentence

    @property
    def steps(self) -> list[int]:
        """The evaluated steps, in increasing order."""
        return sorted(self.student)

    def nearest_step(self, step: int | float | None) -> int | None:
        """The newest evaluated step at or before `step` (None: the newest of all); None when nothing is evaluated.
        A step before the first evaluation gives the first."""
        steps = self.steps
        if not steps:
            return None
        if step is None:
            return steps[-1]
        before = [s for s in steps if s <= step]
        return before[-1] if before else steps[0]

    def rows(self, step: int | None) -> list[dict]:
        """One row a sentence for the student at `step` (snapped by nearest_step), keyed by COLUMNS: the sentence,
        the expected word, both models' guesses as text, and SAME_MARK where the student's first guess is the
        teacher's first guess (else ""). [] when nothing is evaluated."""
        chosen = self.nearest_step(step)
        if chosen is None:
            return []
        rows = []
        for i, sentence in enumerate(self.sentences):
            teacher = self.teacher[i] if i < len(self.teacher) else Guess((), ())
            student = self.student[chosen][i] if i < len(self.student[chosen]) else Guess((), ())
            same = bool(teacher.words and student.words and teacher.words[0] == student.words[0])
            values = [sentence, self.expected[i] if i < len(self.expected) else "", teacher.text(), student.text(),
                      SAME_MARK if same else ""]
            rows.append(dict(zip(COLUMNS, values)))
        return rows


def guess_row(step: int, student: list[Guess], probes: list[tuple[str, str]] | None = None,
              teacher: list[Guess] | None = None) -> dict:
    """One object of guesses.jsonl; `probes` ((sentence, expected) pairs) and `teacher` go in the file's first one."""
    row = {"step": int(step), "student": [g.as_dict() for g in student]}
    if probes is not None and teacher is not None:
        row["probes"] = [{"sentence": s, "expected": e} for s, e in probes]
        row["teacher"] = [g.as_dict() for g in teacher]
    return row


def append_guesses(run_dir: Path, row: dict) -> None:
    """Append one object to the run's guesses.jsonl."""
    with open(RunPaths(run_dir).guesses, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def has_teacher_guesses(run_dir: Path) -> bool:
    """Whether guesses.jsonl already holds the sentences and the teacher's guesses."""
    return any("teacher" in row for row in read_metrics(run_dir, RunPaths(run_dir).guesses.name))


def read_guesses(run_dir: Path) -> GuessHistory:
    """The run's guesses.jsonl; an empty GuessHistory when the run has none yet (a line cut by a crash is skipped,
    a step written twice keeps its last object)."""
    history = GuessHistory()
    for row in read_metrics(run_dir, RunPaths(run_dir).guesses.name):
        if "teacher" in row and not history.sentences:
            history.sentences = [p.get("sentence", "") for p in row.get("probes", [])]
            history.expected = [p.get("expected", "") for p in row.get("probes", [])]
            history.teacher = [Guess.from_dict(g) for g in row["teacher"]]
        if isinstance(row.get("step"), int) and isinstance(row.get("student"), list):
            history.student[row["step"]] = [Guess.from_dict(g) for g in row["student"]]
    return history

"""The notes under a Predictions result: a sentence that is not Russian, which checkpoint each model loaded, and a
run's student scoring below its untrained start."""
from __future__ import annotations

import pandas as pd

from core.compare.sentences import mixed_script_words, word_scripts
from core.models import zoo
from core.runs.checkpoints import step_of
from core.runs.store import model_source, run_dir_of, run_info
from ui.context import AppContext
from ui.page_text import markdown_text
from ui.predict_figures import label

NO_RUSSIAN = "This sentence has no Russian words; the models here know Russian, so their guesses say little."
LITTLE_RUSSIAN = ("Most words of this sentence are not Russian; the models here know Russian, so their guesses say "
                  "little.")


MAX_MIXED_NAMED = 3  # words of mixed letters a note names


def language_note(text: str) -> str:
    """The note shown with the results of a sentence that is not Russian (it is still predicted), or of one whose
    Russian words have Latin letters typed into them (mixed_script_words); "" for one that is Russian throughout.
    `text` is the sentence as typed, before Mask each word fills its [MASK]s in with a model's words."""
    scripts = word_scripts(text)
    if not scripts.russian:
        return LITTLE_RUSSIAN if scripts.cyrillic else NO_RUSSIAN
    mixed = mixed_script_words(text)
    if not mixed:
        return ""
    named = ", ".join(f"'{w}'" for w in mixed[:MAX_MIXED_NAMED])
    named += " and more" if len(mixed) > MAX_MIXED_NAMED else ""
    return (f"{named} {'mixes' if len(mixed) == 1 else 'mix'} Latin letters into Russian ones (a Latin o, a, e, c or "
            "p looks like the Russian letter); the models read such a word as rare pieces, not as the word it looks "
            "like: type it again in Russian letters.")


def _notices(models: list) -> list[str]:
    """The one-line notices of loading (e.g. a cased vocabulary read cased), once each."""
    return list(dict.fromkeys(m.notice for m in models if getattr(m, "notice", "")))


RUN_STATES = {"stopped": "the run was stopped", "failed": "the run failed", "running": "the run is still training",
              "queued": "the run waits in the queue", "done": "the run finished", "damaged": "the run is damaged"}


def checkpoint_used(ctx: AppContext, name: str) -> str:
    """Which copy of a run's student "run:RUN_ID" loads while the run has no final model: "the checkpoint at step 120
    of 600, the run was stopped" (core.runs.store.model_source's rule, which the model cache follows too); "" for
    any other model, a finished run's student and run:RUN_ID@init included."""
    if not name.startswith("run:"):
        return ""
    try:
        run_id, copy = zoo.run_name_parts(name)
        run_dir = run_dir_of(run_id, ctx.launcher.root)
        source = None if copy else model_source(run_dir)
        info = run_info(run_dir) if source else {}
    except (ValueError, OSError):  # loaded a moment ago: a run deleted since is said by the next request
        return ""
    if source is None or source[0] == "final":
        return ""
    total, state = info.get("max_steps"), RUN_STATES.get(info.get("state"))
    of = f" of {total:,}" if isinstance(total, int) and not isinstance(total, bool) else ""
    return f"the checkpoint at step {step_of(source[1]):,}{of}" + (f", {state}" if state else "")


def model_notes(ctx: AppContext, models: list) -> str:
    """What a result says under it of the models it used, as Markdown paragraphs: the checkpoint each unfinished
    run's student was loaded from (checkpoint_used), then the notices of loading; "" when there is nothing to say."""
    used = [f"{label(m.name)}: {line}." for m in {m.name: m for m in models}.values()
            if (line := checkpoint_used(ctx, m.name))]
    return "".join(f"\n\n*{markdown_text(n)}*" for n in used + _notices(models))


INIT_SUFFIX = "@init"  # run:<id>@init: a run's student before its first step (core.runs.store)
START_FIGURES = ("top-1 accuracy", "top-1 agreement with model 1")


def _share(cell) -> float | None:
    """A share as the summary table shows it ("45.8%") as a fraction; None for an empty or unreadable cell."""
    try:
        return float(str(cell).rstrip("%")) / 100
    except ValueError:
        return None


def start_note(summary: pd.DataFrame | None) -> str:
    """The status line after a probe summary (its table as the page shows it, `summary`): when a run's student
    (run:<id>) and its untrained start (run:<id>@init) are both in it and the student scores below its start on
    top-1 accuracy or agreement with model 1, why that happens and what to do (Markdown); "" otherwise."""
    if summary is None or "model" not in getattr(summary, "columns", ()):
        return ""
    rows = {str(row["model"]).split(" (")[0]: row for _, row in summary.iterrows()}  # "name (checkpoint ...)"
    lines = []
    for name, row in rows.items():
        start = rows.get(name + INIT_SUFFIX)
        if not name.startswith("run:") or start is None:
            continue
        below = [f"{column.removeprefix('top-1 ')} {new:.1%} against {old:.1%}" for column in START_FIGURES
                 if column in row and (new := _share(row[column])) is not None
                 and (old := _share(start[column])) is not None and new < old]
        if below:
            lines.append(f"{markdown_text(name)} scores below its untrained start {markdown_text(name + INIT_SUFFIX)} "
                         f"({', '.join(below)}): a student copied from teacher layers starts close to the teacher, "
                         "and a short run's first steps move it away before the losses pull it back. The About tab's "
                         "lesson run (the Distill tab's default steps, KL at masked positions only) passes its start; "
                         "resume this run for more steps in the Distill tab.")
    return "  \n".join(lines)

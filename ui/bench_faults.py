"""A benchmark's fault (not the request's) as sentences a person can act on; the traceback to the app's log."""
from __future__ import annotations

import traceback

from core.formatting import error_sentence
from ui.context import AppContext

NOT_PREPARED = "The benchmark could not be prepared"  # a fault before measuring: the estimate's words and the run's


def what_next(ctx: AppContext) -> str:
    """What to do after a benchmark failed for no fault of the request, as the end of a sentence: a Space's visitor
    cannot read the app's log, so on a Space it says what to try instead."""
    if ctx.on_space:
        return ("try again with fewer models, smaller batch sizes or a shorter sequence length; if it happens again, "
                "run the lab on your own machine, where the app's log has the details.")
    return "try again with fewer models, batch sizes or modes; if it happens again, the app's log has the details."


def fault_text(ctx: AppContext, what: str, error: Exception) -> str:
    """A fault of PyTorch, a runtime or a model's files (not a mistake in the request) as sentences for the page:
    `what` happened, the error's own sentence, and what to do next; the traceback goes to the app's log. Call it
    while handling `error`."""
    traceback.print_exc()
    then = what_next(ctx)
    return ctx.public_text(f"{what}: {error_sentence(error)} {then[:1].upper()}{then[1:]}")


def no_reason(ctx: AppContext) -> str:
    """The progress line's reason when a benchmark failed and no sentence was kept for it."""
    return f"the benchmark ended without saying why; {what_next(ctx)}"

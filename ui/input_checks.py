"""The checks a handler makes first of each input, whoever sent it (the page, gradio_client or raw HTTP): whole and
real numbers, options, text, tick boxes and model names, each refused with a ValueError whose sentence names the
input and quotes the value; and the command line's sentences put in a form's words (form_words)."""
from __future__ import annotations

import math
import numbers
import re
from collections.abc import Sequence

MAX_NAME_CHARS = 200  # a model name longer than this is refused before anything looks it up


def shown(value) -> str:
    """A value as an error sentence quotes it (1e9 as 1,000,000,000, text in quotes): core.formatting.shown, whose
    words the command lines use too."""
    from core.formatting import shown as quoted  # the one wording, kept in core so that core and train can use it

    return quoted(value)


def typed_number(value):
    """Text such as " 12 " or "0.5" as a float, other text as None; any other value as it is."""
    if not isinstance(value, str):
        return value
    try:
        return float(value.strip())
    except ValueError:
        return None


def whole_number(value, what: str, low: int | None = None, high: int | None = None) -> int:
    """`value` as an int from `low` to `high` (None: any whole number, its range checked by the caller); a float
    with no fraction and text such as " 12 " count. ValueError naming `what` and the range for anything else (None,
    "ten", 2.5, inf, NaN, True, a list)."""
    number = typed_number(value)
    ok = (isinstance(number, numbers.Real) and not isinstance(number, bool) and math.isfinite(number)
          and number == int(number) and (low is None or low <= number) and (high is None or number <= high))
    if not ok:
        where = f" from {low:,} to {high:,}" if low is not None and high is not None else ""
        raise ValueError(f"{what} must be a whole number{where}; got {shown(value)}.")
    return int(number)


def real_number(value, what: str, finite: bool = True) -> float:
    """`value` as a float, finite unless `finite` is False (the caller then checks its range); text such as " 0.5 "
    counts. ValueError naming `what` for anything else (None, "ten", True, a list; inf and NaN when finite)."""
    number = typed_number(value)
    if not (isinstance(number, numbers.Real) and not isinstance(number, bool)) or \
            (finite and not math.isfinite(number)):
        raise ValueError(f"{what} must be a finite number; got {shown(value)}.")
    return float(number)


def one_of(value, what: str, options: Sequence[str]) -> str:
    """The option `value` names, compared without case or surrounding spaces; ValueError listing the options."""
    if isinstance(value, str):
        for option in options:
            if value.strip().lower() == option.lower():
                return option
    raise ValueError(f"{what} must be one of {', '.join(options)}; got {shown(value)}.")


def some_of(value, what: str, options: Sequence[str]) -> list[str]:
    """One or more of `options` (a list, or one of them alone), in the order given, each once; ValueError when
    none is chosen or one is not an option."""
    chosen = [value] if isinstance(value, str) else value
    if isinstance(chosen, (list, tuple)) and not chosen:  # every box left unticked
        raise ValueError(f"{what} must be one or more of {', '.join(options)}; none is chosen.")
    if not isinstance(chosen, (list, tuple)):
        raise ValueError(f"{what} must be one or more of {', '.join(options)}; got {shown(value)}.")
    return list(dict.fromkeys(one_of(item, what, options) for item in chosen))


FLAG = re.compile(r"--[a-z][a-z0-9]*(?:-[a-z0-9]+)*")


def form_words(text: str, labels: dict[str, str], phrases: Sequence[tuple[str, str]] = ()) -> str:
    """A sentence of the command line's checks (train.config, train.preflight, ...) in a form's words: each
    `phrases` (old, new) replaced first (advice about flags the form has no field for), then each flag named in
    `labels` ("--lr" -> "Learning rate") by its field's label, as it is written at the start of the sentence and in
    quotes within it. The command line keeps its own sentences: it never calls this."""
    for old, new in phrases:
        text = text.replace(old, new)

    def label(match: re.Match) -> str:
        name = labels.get(match.group(0))
        if name is None:
            return match.group(0)
        return name if match.start() == 0 else f"'{name}'"
    return FLAG.sub(label, text)


def text_input(value, what: str) -> str:
    """Text as typed; None is empty text. ValueError for anything that is not text."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text; got {shown(value)}.")
    return value


def flag(value, what: str) -> bool:
    """A tick box: True or False (None is False); ValueError for anything else."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise ValueError(f"{what} must be true or false; got {shown(value)}.")


def model_name(value, what: str = "A model") -> str:
    """A model's name, stripped ("" for None or blank); ValueError for anything that is not text, or for a name over
    MAX_NAME_CHARS characters (which is never looked up)."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{what} is chosen by its name as text (such as bundled-teacher), not {shown(value)}.")
    name = value.strip()
    if len(name) > MAX_NAME_CHARS:
        raise ValueError(f"Model names have at most {MAX_NAME_CHARS} characters; {what.lower()} has {len(name):,}.")
    return name

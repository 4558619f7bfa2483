"""The runs a visitor of the Distill tab sees: the runs table, the run a page opens on, and the chosen run's
folder."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.runs.store import list_runs, quoted_id, run_dir_of, run_info
from train.launcher import can_see
from ui.context import AppContext
from ui.distill_settings import DEFAULTS, known_teacher_depth
from ui.tables import column_widths

# each column's longest unbreakable word (ui.tables): a run's id breaks before a hyphen that leads digits
# ("20261203", "-140559-"), a step count is one word ("9000/9000"), "bundled-teacher" breaks after its hyphen, the
# student's label at its spaces ("100,000")
RUN_COLUMN_CHARS = {"run": 8, "state": 8, "step": 9, "teacher": 8, "student": 7, "owner": 5, "shared": 6}
RUN_COLUMNS = list(RUN_COLUMN_CHARS)
RUN_COLUMN_WIDTHS = column_widths(RUN_COLUMN_CHARS)
# the runs table's height before it scrolls: its header and nine runs, each two lines high (a run's id wraps in its
# column)
RUNS_TABLE_PX = 40 + 9 * 60
NO_RUN_CHOSEN = "Choose a run in the 'Run shown below' list first (start one above if the list is empty)."


def student_layer_count(info: dict) -> int | None:
    """The student's number of layers of a run_info() row: the one asked for, else half the teacher's (at least 1,
    as train.setup makes it); None when it is not set and the teacher's depth cannot be read."""
    if info.get("student_layers"):
        return info["student_layers"]
    depth = known_teacher_depth(info.get("teacher"))
    return max(1, depth // 2) if depth else None


def student_label(info: dict) -> str:
    """The student of a run_info() row in a few words: "2 L", or "2 L · width 264 · vocab 3,000 · reduce"; an unset
    depth is worked out from the teacher's (student_layer_count), and is "half" only when that cannot be read."""
    layers = student_layer_count(info)
    parts = [f"{layers} L" if layers else "half"]
    if info.get("student_vocab_size"):
        if info.get("student_hidden"):
            parts.append(f"width {info['student_hidden']}")
        parts += [f"vocab {info['student_vocab_size']:,}", info.get("align") or DEFAULTS.align]
    return " · ".join(parts)


def run_owner(run_owner_id: str | None, owner: str | None, shared: bool) -> str:
    """The runs table's owner cell: "you", "other", or "-" for a run started without an owner (the command line).

    On a private app the person at the keyboard started every run, whichever page or browser id did: another
    browser on the same machine has another id, and every page may already stop, resume and delete any run
    (train.launcher.can_control)."""
    if not shared:
        return "you"
    if not run_owner_id:
        return "-"
    return "you" if run_owner_id == owner else "other"


def runs_table(ctx: AppContext, owner: str | None, infos: list[dict] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The runs this owner may see, as a table and their ids; `infos`: list_runs() already read, if any."""
    rows, ids = [], []
    for info in list_runs(ctx.launcher.root) if infos is None else infos:
        if not can_see(info, owner, ctx.launcher.shared):
            continue
        ids.append(info["id"])
        mine = run_owner(info["owner"], owner, ctx.launcher.shared)
        rows.append([info["id"], info["state"], f"{info['step']}/{info['max_steps']}", info["teacher"],
                     student_label(info), mine, "yes" if info["public"] else "no"])
    return pd.DataFrame(rows, columns=RUN_COLUMNS), ids


def run_to_open(ctx: AppContext, owner: str | None, infos: list[dict] | None = None) -> str | None:
    """The run a page shows as it opens: this owner's run training now (the newest, when several are), else their
    newest run, else None. Only runs the table marks "you" (run_owner) count, so a page on a shared app never opens on
    another visitor's run, shared or not; `infos`: list_runs() already read, if any."""
    shared = ctx.launcher.shared
    mine = [info for info in (list_runs(ctx.launcher.root) if infos is None else infos)
            if can_see(info, owner, shared) and run_owner(info["owner"], owner, shared) == "you"]
    training = [info for info in mine if info["state"] == "running"]
    return (training or mine)[0]["id"] if mine else None


def chosen(run_id: str | None) -> str:
    """The chosen run's id; ValueError with what to do when none is chosen."""
    if not run_id:
        raise ValueError(NO_RUN_CHOSEN)
    return run_id


def visible_run_dir(ctx: AppContext, run_id: str | None, owner: str | None) -> Path:
    """The chosen run's directory; ValueError when none is chosen, it does not exist (deleted, or an id typed wrong),
    or this owner may not see it."""
    try:
        run_dir = run_dir_of(chosen(run_id), ctx.launcher.root)
    except ValueError:
        if not run_id:
            raise
        run_dir = None  # an id no run can have (a slash, 300 characters): there is no such run, as for any other
    if run_dir is None or not run_dir.is_dir() or not can_see(run_info(run_dir), owner, ctx.launcher.shared):
        raise ValueError(f"There is no run {quoted_id(run_id)} among the runs you can see; choose one in the 'Run "
                         "shown below' list.")
    return run_dir

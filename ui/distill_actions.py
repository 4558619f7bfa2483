"""What the Distill tab does to the chosen run: stop, resume, delete (asked first), share, and delete the runs
stopped before their first step in one confirmed press."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from core.formatting import count
from core.runs.store import list_runs, read_status
from train.config import MAX_STEPS
from train.launcher import can_control, deletion_refusal
from ui.context import AppContext
from ui.distill_runs import chosen, runs_table, visible_run_dir
from ui.distill_settings import in_form_words
from ui.distill_status import show_run
from ui.errors import error_message
from ui.input_checks import shown, whole_number
from ui.sessions import session_id

DELETE_HELP = ("Delete the chosen run and its files. A run you have just stopped is waited for (a few seconds) while "
               "it saves its checkpoint; if it is still saving, the error says so and Delete can be called again.")


def stop_run(ctx: AppContext, run_id: str | None, owner: str | None):
    """Stop the chosen run (it saves a checkpoint and ends) and show it. ValueError: no run chosen, one this owner
    cannot see (deleted), not its owner, or a run not queued or running."""
    gr.Info(ctx.launcher.stop(visible_run_dir(ctx, run_id, owner).name, owner))
    return show_run(ctx, run_id, owner)


def resume_run(ctx: AppContext, run_id: str | None, owner: str | None, up_to_step: int | None = None):
    """Queue the chosen run again from its last checkpoint, up to `up_to_step` (0 or None: its own steps)."""
    up_to = whole_number(up_to_step, "Resume up to step", 0, MAX_STEPS) if up_to_step is not None else 0
    ctx.launcher.start()
    try:  # the run's checks name its flags; the page names the form's fields
        line = ctx.launcher.resume(visible_run_dir(ctx, run_id, owner).name, owner, up_to or None,
                                   limits=ctx.run_limits(), session=session_id())
    except ValueError as error:
        raise ValueError(in_form_words(error_message(error))) from None
    gr.Info(line)
    return show_run(ctx, run_id, owner)


def delete_run(ctx: AppContext, run_id: str | None, owner: str | None):
    """Delete the chosen run, waiting a few seconds for one that is stopping (see RunLauncher.delete); show_run's
    outputs for the newest run left that this owner can see, chosen in the list, its line after the deletion's (none
    left: no run chosen, and the line saying the run was deleted and that there are no runs), then the deletion's line
    for the tab's notice (the line the status shows while no run is chosen)."""
    line = ctx.launcher.delete(check_deletable(ctx, run_id, owner).name, owner)
    gr.Info(line)  # the run list and status line change too, but a toast says it where the eye already is
    _, ids = runs_table(ctx, owner)  # newest first, as list_runs gives them
    shown = list(show_run(ctx, ids[0] if ids else None, owner, line, choose=True))
    if ids:  # the run now shown has its own line: the deletion's goes first, until the next redraw
        shown[2] = f"{line}  \n{shown[2]}"
    return *shown, line


def check_deletable(ctx: AppContext, run_id: str | None, owner: str | None) -> Path:
    """The chosen run's directory when this owner may delete it now; ValueError saying why not, and what to do: no
    run chosen, one this owner cannot see, another's run, or a run queued or running and not asked to stop (a run
    stopping is waited for by the deletion, RunLauncher.delete)."""
    run_dir = visible_run_dir(ctx, run_id, owner)
    status = read_status(run_dir)
    if not can_control({**status, "id": run_dir.name}, owner, ctx.launcher.shared):
        raise ValueError("This run belongs to another session: only the person who started it can delete it.")
    refusal = deletion_refusal(run_dir.name, status)
    if refusal:
        raise ValueError(refusal)
    return run_dir


def ask_to_delete(ctx: AppContext, run_id: str | None, owner: str | None) -> tuple[gr.Button, gr.Button, gr.Button]:
    """Delete's first press: the confirmation (ask_delete) for a run that can be deleted now, else at once the
    sentence saying why not and what to do (check_deletable), before anything is confirmed."""
    return ask_delete(check_deletable(ctx, run_id, owner).name)


def ask_delete(run_id: str | None) -> tuple[gr.Button, gr.Button, gr.Button]:
    """The page's first Delete press: Delete gives way to a button naming the run to delete for good, and Keep it.
    Deleting cannot be undone, and a class's runs sit side by side in one list."""
    return (gr.Button(visible=False), gr.Button(f"Delete {chosen(run_id)} for good", visible=True),
            gr.Button(visible=True))


def keep_run() -> tuple[gr.Button, gr.Button, gr.Button]:
    """Delete back in place of the confirmation (confirmed, kept, or another run chosen)."""
    return gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)


def unstarted_runs(ctx: AppContext, owner: str | None, infos: list[dict] | None = None) -> list[str]:
    """Ids of the runs this owner may delete that were stopped before their first step (no step done, no checkpoint,
    no student): what each Start then Stop leaves behind. Never a queued or running run, nor on a shared app another
    visitor's (train.launcher.can_control); `infos`: list_runs() already read, if any."""
    return [info["id"] for info in (list_runs(ctx.launcher.root) if infos is None else infos)
            if info["state"] == "stopped" and not info.get("step") and not info.get("checkpoint")
            and not info.get("final") and can_control(info, owner, ctx.launcher.shared)]


def unstarted_words(number: int) -> str:
    """"3 runs stopped before their first step", "1 run stopped before its first step"."""
    return f"{count(number, 'run')} stopped before {'its' if number == 1 else 'their'} first step"


def ask_to_delete_unstarted(ctx: AppContext, owner: str | None):
    """The first press of 'Delete runs stopped before step 1': the confirmation naming how many (the runs counted
    now, kept for the confirming press), and Keep them. With none, a notice says so and the buttons stay."""
    ids = unstarted_runs(ctx, owner)
    if not ids:
        gr.Info("None of your runs was stopped before its first step: there is nothing to delete.")
        return (*keep_unstarted(), None)
    return (gr.Button(visible=False), gr.Button(f"Delete {unstarted_words(len(ids))} for good", visible=True),
            gr.Button(visible=True), ids)


def keep_unstarted() -> tuple[gr.Button, gr.Button, gr.Button]:
    """'Delete runs stopped before step 1' back in place of its confirmation."""
    return gr.Button(visible=True), gr.Button(visible=False), gr.Button(visible=False)


def delete_unstarted(ctx: AppContext, run_id: str | None, owner: str | None, run_ids: list[str] | None = None):
    """/delete_unstarted_runs: delete this owner's runs stopped before their first step (unstarted_runs): those of
    `run_ids` (the ones the confirmation counted) that still are, or every such run when `run_ids` is None. Returns
    show_run's outputs, the run `run_id` still chosen unless it was deleted (then the newest run left), with the
    deletion's line first, then that line for the tab's notice. ValueError when there is none to delete."""
    if run_ids is not None and not (isinstance(run_ids, list) and all(isinstance(i, str) for i in run_ids)):
        raise ValueError(f"The runs to delete are a list of run ids; got {shown(run_ids)}.")
    ids = unstarted_runs(ctx, owner)
    ids = ids if run_ids is None else [i for i in ids if i in run_ids]  # one resumed since it was counted stays
    if not ids:
        raise ValueError("None of your runs is stopped before its first step now: nothing was deleted.")
    deleted, refusals = [], []
    for each in ids:
        try:
            ctx.launcher.delete(each, owner)
            deleted.append(each)
        except ValueError as error:  # its process still exiting, say: the others go on
            refusals.append(error_message(error))
    if not deleted:
        raise ValueError(refusals[0])
    line = f"Deleted {unstarted_words(len(deleted))}."
    if refusals:
        line += f" {count(len(refusals), 'run')} could not be deleted: {refusals[0]}"
    gr.Info(line)
    _, visible = runs_table(ctx, owner)
    keep = run_id if run_id in visible else (visible[0] if visible else None)
    outputs = list(show_run(ctx, keep, owner, line, choose=True))
    if keep:  # the run shown has its own line: the deletion's goes first, until the next redraw
        outputs[2] = f"{line}  \n{outputs[2]}"
    return *outputs, line


def share_run(ctx: AppContext, run_id: str | None, owner: str | None, shared: bool) -> str:
    """Make the chosen run visible (and its student usable) to everyone, or private again; returns the new line."""
    ctx.launcher.set_public(visible_run_dir(ctx, run_id, owner).name, owner, bool(shared))
    return f"Run {run_id} is {'shared with everyone' if shared else 'private'}."

"""Plotly figures and status lines of a distillation run, drawn from its metrics.jsonl records."""
from __future__ import annotations

import re

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.formatting import format_seconds
from train.launcher import ALREADY_STOPPING, STOPPING

LOSS_PARTS = [("loss_kl", "KL (teacher‖student)"), ("loss_mlm", "MLM"), ("loss_cos", "cosine (hidden)"),
              ("loss_att", "attention MSE"), ("loss_hidden_mse", "hidden MSE (projected)")]


NO_RUN = "No run yet: choose a run or start one."
# The axes' titles, units included. The KL term (times T²) and the MLM cross-entropy are in nats (natural
# logarithms) per position; the cosine distance (1 - cos) and the MSE terms have no unit, so the total mixes both.
STEP_TITLE = "optimizer step"
TOTAL_LOSS_TITLE = "α-weighted sum (nats + unitless)"
PART_LOSS_TITLE = "nats (KL, MLM); unitless (cos, MSE)"
EVAL_TITLE = "share of masked positions (%)"


def empty_figure(title: str, text: str, height: int) -> go.Figure:
    """A panel with a title and one short line in the middle, and no axes to read: nothing is drawn yet."""
    fig = go.Figure()
    fig.add_annotation(text=text, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_layout(height=height, title=title, margin=dict(l=40, r=10, t=40, b=40))
    return fig


def step_axes(fig: go.Figure, steps: list[int]) -> None:
    """Steps are whole and never negative: a run with only step 0 or 1 gets ticks 0 and 1, not -1, -0.5 and 0.5.
    The range reaches a little past the first and last step, less than one tick, so their markers are drawn whole
    rather than cut in half by the plot's edge, and no negative tick appears."""
    low, high = min(steps), max(steps)
    few = high - low < 5
    pad = 0.5 if few else 0.02 * (high - low)
    fig.update_xaxes(range=[low - pad, high + pad], tickformat=",d", **({"dtick": 1, "tick0": 0} if few else {}))


def loss_figure(records: list[dict], run_chosen: bool = True) -> go.Figure:
    """Total loss on the left; each unweighted part on the right (only parts that are in use), against the optimizer
    step. KL and MLM are in nats per position, cosine and MSE have no unit (the axes' titles say so). Rows without a
    loss (step 0's evaluation of the untrained student) are left out. No run chosen (`run_chosen` False), or no loss
    logged yet: an empty panel that says so."""
    records = [r for r in records if "loss" in r]
    if not run_chosen:
        return empty_figure("losses", NO_RUN, 330)
    if not records:
        return empty_figure("losses", "No loss logged yet: curves appear here as the run trains.", 330)
    # room between the panels for the right one's y-axis title and tick labels
    fig = make_subplots(rows=1, cols=2, subplot_titles=("total (weighted) loss", "loss parts (unweighted)"),
                        horizontal_spacing=0.14)
    steps = [r["step"] for r in records]
    fig.add_trace(go.Scatter(x=steps, y=[r["loss"] for r in records], name="total", mode="lines+markers"), 1, 1)
    parts_mode = "lines+markers" if len(steps) <= 30 else "lines"  # a line through one point is not drawn at all
    for key, label in LOSS_PARTS:
        values = [r.get(key, 0.0) for r in records]
        if any(values):
            fig.add_trace(go.Scatter(x=steps, y=values, name=label, mode=parts_mode), 1, 2)
    fig.update_xaxes(title_text=STEP_TITLE)
    fig.update_yaxes(title_text=TOTAL_LOSS_TITLE, row=1, col=1)
    fig.update_yaxes(title_text=PART_LOSS_TITLE, row=1, col=2)
    step_axes(fig, steps)
    fig.update_layout(height=330, margin=dict(l=60, r=10, t=40, b=40), legend=dict(orientation="h", y=-0.25))
    return fig


def eval_figure(records: list[dict], run_chosen: bool = True) -> go.Figure:
    """Held-out figures at each evaluation, step 0 (the untrained student) included: student accuracy, teacher
    accuracy, top-1 agreement, each a share of the held-out masked positions (in %) against the optimizer step. No
    run chosen, or no evaluation yet: an empty panel that says so."""
    evaluated = [r for r in records if "eval_mlm_acc" in r]
    if not run_chosen:
        return empty_figure("held-out masked positions", NO_RUN, 300)
    if not evaluated:
        return empty_figure("held-out masked positions",
                            "No evaluation yet: held-out figures appear here as the run is evaluated.", 300)
    fig = go.Figure()
    for key, label in [("eval_agreement", "top-1 agreement with teacher"), ("eval_mlm_acc", "student MLM accuracy"),
                       ("eval_teacher_mlm_acc", "teacher MLM accuracy")]:
        if any(key in r for r in evaluated):
            fig.add_trace(go.Scatter(x=[r["step"] for r in evaluated], y=[r.get(key) for r in evaluated],
                                     name=label, mode="lines+markers"))
    fig.update_layout(height=300, title="held-out masked positions",
                      yaxis=dict(range=[-0.03, 1.03], tickformat=".0%", title_text=EVAL_TITLE),
                      xaxis_title=STEP_TITLE, margin=dict(l=60, r=10, t=40, b=40),
                      legend=dict(orientation="h", y=-0.3))
    step_axes(fig, [r["step"] for r in evaluated])
    return fig


# What a starting run's process is doing, as its status's `phase` says (train.distill writes it; core.runs.PHASES),
# in the words of the progress line. A run started by an older version writes no phase: its line names none.
LOADING = "loading the teacher, then reading and tokenising the corpus"
EVALUATING_START = "evaluating the untrained student on held-out lines (step 0)"
PREPARING = "preparing its first step"
PHASE_WORDS = {"loading": LOADING, "evaluating": EVALUATING_START, "preparing": PREPARING}
# The progress bar a run's process prints to its console ("distilling:  18%|█▊   | 7/40 [01:34<07:02, 12.80s/step]"),
# whose step runs ahead of the status's, which is written only with each metrics row.
STEP_BAR = re.compile(r"\|\s*(\d+)/\d+\s*\[")


def still_running(info: dict) -> bool:
    """Whether a run_info() row is of a run whose process runs and has not been asked to stop."""
    return info.get("state") == "running" and info.get("message") not in (STOPPING, ALREADY_STOPPING)


def run_phase(info: dict) -> str:
    """What a running run's process is doing before its first step, from its status's `phase` (a run_info() row's):
    LOADING, PREPARING or EVALUATING_START; "" once its steps have begun, for a run not running or asked to stop, and
    for a run whose status has no phase (started by an older version)."""
    return PHASE_WORDS.get(info.get("phase"), "") if still_running(info) else ""


def bar_step(info: dict, console: str) -> int | None:
    """The step the progress bar of a running run's process has reached (core.runs.read_console's text), which runs
    ahead of the status's; None before the bar appears, for a run not running or asked to stop, and without console
    output (a run started at a terminal). Only this process's lines count: an earlier process's bar is not its own."""
    if not still_running(info):
        return None
    lines = console.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("$ ")]
    lines = lines[starts[-1] + 1:] if starts else lines  # this process's lines, not an earlier one's
    steps = [int(found[1]) for line in lines if (found := STEP_BAR.search(line))]
    return steps[-1] if steps else None


# What a run's process writes as it begins (train.distill): a page opened later read it as its own doing, and the
# line's state and step already say that the run trains.
STARTED = "Started."


def run_message(message: str) -> str:
    """A run's last message as its progress line shows it: without the bare STARTED its process writes as it begins
    (a note after it, such as that of a checkpoint that could not be read, stays); other messages as they are."""
    if message == STARTED or message.startswith(STARTED + " "):
        return message[len(STARTED):].strip()
    return message


def progress_line(info: dict, records: list[dict], queue_position: int = 0, console: str = "") -> str:
    """State, step of steps, what a run starting is doing (run_phase, from its status), speed and time left on one
    line; the run's last message below it (run_message), then the note on metrics lines that were skipped as
    unreadable (core.runs.Records.note), if any. The step is the progress bar's (bar_step, from the run's `console`
    output) while it runs ahead of the status. Speed and time left come from the newest trained row (step 0's
    evaluation has none) and are left out before it."""
    state, step, total = info.get("state", "unknown"), info.get("step") or 0, info.get("max_steps") or 0
    phase = run_phase(info)
    step = max(step, bar_step(info, console) or 0)
    line = f"**{info.get('id', '')}** · {state} · step {step} of {total}"
    if phase:
        line += f" · {phase} …"
    if state == "queued" and queue_position:
        line += f" · place in line: {queue_position}"
    if records:
        last = next((r for r in reversed(records) if "steps_per_s" in r), None)
        if last is not None:
            line += f" · {last.get('tokens_per_s', 0):,.0f} tokens/s"
            rate = last.get("steps_per_s", 0)
            if state == "running" and rate > 0 and total > step:
                line += f" · about {format_seconds((total - step) / rate)} left"
        if "eval_agreement" in (evaluated := next((r for r in reversed(records) if "eval_mlm_acc" in r), {})):
            line += f" · agreement {evaluated['eval_agreement']:.1%}"
    if message := run_message(info.get("message") or ""):
        line += f"  \n{message}"
    if getattr(records, "note", ""):
        line += f"  \n{records.note}"
    return line


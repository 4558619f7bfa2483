"""The request checked and planned, and the estimate line: how long the benchmark will take, or why it can't."""
from __future__ import annotations

from core import bench
from core.bench import machine
from core.bench.plan import check_estimate
from ui.bench_admission import QUEUE_GROUP
from ui.bench_faults import NOT_PREPARED, fault_text
from ui.bench_inputs import config_from_inputs
from ui.context import AppContext
from ui.errors import error_message
from ui.page_text import markdown_text
from ui.sessions import pending_requests, session_id


def checked_config(ctx: AppContext, models, device, batch_sizes, seq_len, modes, runs,
                   compile_fast) -> bench.BenchConfig:
    """The request as a BenchConfig, refused (ValueError) when a name must not or cannot be loaded here."""
    config = config_from_inputs(models, device, batch_sizes, seq_len, modes, runs, compile_fast)
    for name in config.models:
        ctx.check_name(name)
        line = ctx.offline_line(name, checked=True)
        if line:
            raise ValueError(line)
    return config


def planned(ctx: AppContext, *inputs) -> bench.Plan:
    """The checked request and its estimates; the shared model cache loads what a plan needs (shared with the other
    tabs). Errors are sentences as a Space may show them."""
    try:
        config = checked_config(ctx, *inputs)
        return bench.make_plan(config, ctx.cache.get)
    except ValueError as error:
        raise ValueError(ctx.public_text(error_message(error))) from None


def checked_plan(ctx: AppContext, *inputs) -> bench.Plan:
    """planned(), refused when its estimate is over ctx.max_bench_s."""
    plan = planned(ctx, *inputs)
    check_estimate(plan, ctx.max_bench_s)
    return plan


def over_the_time_limit(ctx: AppContext, *inputs) -> None:
    """The check made when a run arrives, before it is queued: ValueError only for a plan over the time limit (any
    other mistake is answered by the run itself, with the same sentence the estimate shows)."""
    try:
        plan = planned(ctx, *inputs)
    except Exception:  # a model that fails to load too: the run says why, with the whole sentence
        return
    check_estimate(plan, ctx.max_bench_s)


def cannot_run_line(message: str) -> str:
    """The estimate line (Markdown) for settings the benchmark refuses: why, in the sentence a Run would be refused
    with, shown as written (a model named a_b_*c* or <b>x</b> as typed, not as emphasis or HTML)."""
    return f"**Cannot run as set:** {markdown_text(message)}"


def estimate_benchmark(ctx: AppContext, models=None, device=None, batch_sizes=None, seq_len=None, modes=None,
                       runs=None, compile=None) -> str:
    """How long and how much memory the measurement as set will take, or why it cannot run."""
    try:
        plan = checked_plan(ctx, models, device, batch_sizes, seq_len, modes, runs, compile)
    except ValueError as error:
        return cannot_run_line(error_message(error))
    except Exception as error:  # a model that fails to load with a library's error: a sentence, not "Error"
        return cannot_run_line(fault_text(ctx, NOT_PREPARED, error))
    busy = machine.busy_note()
    notes = plan.skip_lines() + ([busy] if busy else [])
    session = session_id()
    if session is not None and pending_requests(session, QUEUE_GROUP):
        # settings changed while a benchmark runs: the line above its progress must not read as its description
        notes.insert(0, "your benchmark below keeps the settings it started with; this estimate is for your next run")
        return f"**Before your next run:** {estimate_text(plan, notes)}"
    return f"**Before you run:** {estimate_text(plan, notes)}"


def estimate_text(plan: bench.Plan, notes: list[str]) -> str:
    """The estimate line after its heading: the plan and each note (Markdown), shown as written."""
    return markdown_text(plan.describe()) + "".join(f"\n\n*Note: {markdown_text(n)}*" for n in notes)

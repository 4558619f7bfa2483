"""The Benchmark tab: measure teacher and students live, beside the model card's speed table. The layout and its
events are here; the handlers are in the ui.bench_* modules, one job each."""
from __future__ import annotations

import functools

import gradio as gr
import torch

from core import bench
from core.bench.plan import MAX_RUNS
from core.bench.runtimes import available_modes
from ui.bench_admission import (
    PER_SESSION,
    QUEUE_GROUP,
    RUN_LABEL,
    Admissions,
    admit_run,
    admitted_or,
    idle_buttons,
)
from ui.bench_estimate import estimate_benchmark, over_the_time_limit
from ui.bench_memory import memory, recall, remember
from ui.bench_outcomes import failed_view, kept_errors
from ui.bench_run import run_benchmark
from ui.bench_stop import StopFlags, stop_benchmark
from ui.bench_tables import (
    CARD_COLUMNS,
    CARD_LEGEND,
    RATIO_COLUMNS,
    ROW_COLUMNS,
    ROW_LEGEND,
    card_only_rows,
    frame,
    results_table,
)
from ui.components import CheckedCheckboxGroup, CheckedNumber, CheckedRadio
from ui.context import AppContext
from ui.errors import ErrorLines
from ui.visitor_limits import queue_guard

INTRO = """### Speed: the model card's table, measured here
The card's headline compares teacher and students by **latency at batch 1** and **throughput at batch 16**, with
512-token sequences through the encoder. `arch:` models have the exact real architectures with random weights: speed
does not depend on the weights, so nothing is downloaded. **reference** is fp32 with eager attention, as the card
measured; **fast** is the quickest path this hardware offers (bf16 where the CPU multiplies it in hardware, 16-bit
on a GPU, SDPA attention), checked against reference before it is timed. **onnxruntime** (fp32 with its transformer
fusions), **onnxruntime-int8** (dynamic quantisation), **openvino** (bf16 where the CPU has it, else f32) and
**openvino-int8** (NNCF int8 weights) export the encoder to those runtimes, CPU only, with the same check (int8 modes
report how far they agree); `size_mb` is then what the runtime loads from disk, and `setup_s` the export and compile
time, which is never part of the timed runs. Only the modes this machine can run are offered."""


def model_list(ctx: AppContext) -> gr.Dropdown:
    """The models that can be measured now (a run that finished since the page opened is among them)."""
    return gr.Dropdown(choices=ctx.model_choices(include_arch=True))


def build(ctx: AppContext) -> dict:
    """The tab's layout and wiring; returns its main components, "refresh": (function, outputs) for the app to run
    on every page load and whenever the tab is opened, "load": (function, inputs, outputs) to run as the page loads
    (the benchmark kept in the browser drawn again) and "kept": the gr.BrowserState holding it, for the app to render
    outside the tabs."""
    cuda = torch.cuda.is_available()
    devices, offered_modes = ["cpu", "cuda"] if cuda else ["cpu"], available_modes(bench.MODES)
    gr.Markdown(INTRO)
    with gr.Row():
        models = gr.Dropdown(ctx.model_choices(include_arch=True), value=list(bench.CARD_MODELS), multiselect=True,
                             allow_custom_value=True, label="Models", scale=3, elem_id="bench-models",
                             info="arch:NAME needs no download; a Hub id or a run's student works too")
        device = CheckedRadio(devices, value="cpu", label="Device",
                          info=None if cuda else "no GPU on this machine")
    with gr.Row():
        batch_sizes = gr.Textbox("1,16", label="Batch sizes", elem_id="bench-batch-sizes",
                                 info="comma-separated; the card used 1 and 16")
        seq_len = CheckedNumber(bench.CARD_SEQ_LEN, precision=0, label="Sequence length (tokens)",
                                elem_id="bench-seq-len", info="the card used 512")
        modes = CheckedCheckboxGroup(offered_modes, value=["reference", "fast"], label="Modes",
                                     elem_id="bench-modes", info="reference: fp32 eager; fast: 16-bit and SDPA; "
                                     "onnxruntime, openvino: exported (CPU only, adds export time)")
        runs = CheckedNumber(0, precision=0, label="Timed runs", elem_id="bench-runs",
                             info=f"0: automatic (about 3 s of runs, 3 to 10); at most {MAX_RUNS}")
        # min_width: at an 800 px window the row's share left the checkbox's label clipped
        compile_fast = gr.Checkbox(False, label="torch.compile the fast path", info="about 30 s more per input shape",
                                   min_width=220, scale=1)
    inputs = [models, device, batch_sizes, seq_len, modes, runs, compile_fast]
    estimate_md = gr.Markdown(label="estimate", show_label=False, elem_id="bench-estimate")
    with gr.Row():
        run_button = gr.Button(RUN_LABEL, variant="primary", scale=3, elem_id="bench-run")
        stop_button = gr.Button("Stop", variant="stop", scale=1, interactive=False, elem_id="bench-stop")
    progress_md = gr.Markdown("", label="progress", show_label=False, elem_id="bench-progress")
    results = results_table(frame([], ROW_COLUMNS), ROW_COLUMNS, elem_id="bench-results",
                            label="Measurements (one row as each arrives)")
    gr.Markdown(ROW_LEGEND, elem_id="bench-results-legend")
    with gr.Row():
        latency_plot = gr.Plot(label="Latency", elem_id="bench-latency")
        throughput_plot = gr.Plot(label="Throughput", elem_id="bench-throughput")
    card = results_table(frame(card_only_rows(list(bench.CARD_MODELS), "cpu"), CARD_COLUMNS), CARD_COLUMNS,
                         elem_id="bench-card", label="Beside the model card")
    gr.Markdown(CARD_LEGEND, elem_id="bench-card-legend")
    ratios = results_table(frame([], RATIO_COLUMNS), RATIO_COLUMNS, elem_id="bench-ratios",
                           label="Speed-ups, card and here (the card's only beside figures measured at seq_len 512)")
    notes_md = gr.Markdown("", label="notes on the measurements", show_label=False, elem_id="bench-notes")
    with gr.Row():
        csv_file = gr.File(label="Results as CSV", elem_id="bench-csv", interactive=False)
        json_file = gr.File(label="Results as JSON (with the machine record)", elem_id="bench-json",
                            interactive=False)
    kept = memory(ctx.browser_key)

    # no triggers: on page load and on every change of an input, as one endpoint (a Markdown whose value is a
    # function would add a second, unnamed /estimate event on the same triggers)
    gr.on(None, functools.partial(estimate_benchmark, ctx), inputs=inputs, outputs=estimate_md,
          api_name="estimate_benchmark", show_progress="hidden")
    stops, admissions = StopFlags(), Admissions()
    # One measurement at a time; a run over the time limit, or a second one from the same visitor, is refused before
    # it is queued.
    check = functools.partial(over_the_time_limit, ctx)
    # The page checks the request first, in a step of its own that disables Run while the benchmark runs: a second
    # click would otherwise vanish in the page (Gradio drops a click on an event still running). Only that step may
    # refuse a page's request: a request refused by a validator runs nothing after it, so a button disabled before
    # the refusal would stay disabled.
    page_guard = queue_guard(QUEUE_GROUP, PER_SESSION, "benchmark", "benchmarks", check)
    client_guard = queue_guard(QUEUE_GROUP, PER_SESSION, "benchmark", "benchmarks", check, accepted=stops.accept)
    errors = ErrorLines()  # why this session's last request failed, for the progress line once the notice fades
    # queued, as the page shows a notice only for a queued event's error; beside a running benchmark, not behind it
    admitted = run_button.click(kept_errors(errors, functools.partial(admit_run, admissions, page_guard)),
                                inputs=inputs, outputs=[run_button, stop_button, progress_md], concurrency_limit=None,
                                show_progress="hidden", api_visibility="private")
    outputs = [progress_md, results, latency_plot, throughput_plot, card, ratios, notes_md, csv_file, json_file]
    measured = admitted.success(kept_errors(errors, functools.partial(run_benchmark, ctx, stops)), inputs=inputs,
                                api_name="run_benchmark", show_progress="minimal", concurrency_limit=1,
                                concurrency_id=QUEUE_GROUP,
                                validator=admitted_or(admissions, client_guard, stops.accept), outputs=outputs)
    # Gradio 6's page runs .then only after a success, so .failure as well: the button must never stay disabled
    for ended in (measured.then, measured.failure):
        ended(idle_buttons, None, [run_button, stop_button], queue=False, api_visibility="private")
    # A refused or failed request takes the results of the one before it off the page and says why on the progress
    # line, unless the estimate line says it already; writing every output also removes the "Error" mark the failed
    # event leaves on each.
    for failed in (admitted.failure, measured.failure):
        failed(functools.partial(failed_view, ctx, errors, stops), estimate_md, outputs, queue=False,
               show_progress="hidden", api_visibility="private")
    # No cancels=[run_event]: cancelling dropped the run's last message, so the page never heard that it stopped.
    # The Stop flag ends the run between two forward passes, and the run itself sends the final line and rows.
    stop_button.click(functools.partial(stop_benchmark, stops), outputs=progress_md, api_name="stop_benchmark",
                      show_progress="hidden")
    # each new JSON download is the benchmark's record so far: kept in the browser, a reload shows it again
    json_file.change(remember, [json_file, kept], kept, queue=False, show_progress="hidden",
                     api_visibility="private")
    return dict(models=models, device=device, batch_sizes=batch_sizes, seq_len=seq_len, modes=modes, runs=runs,
                compile=compile_fast, estimate=estimate_md, run=run_button, stop=stop_button, progress=progress_md,
                results=results, latency_plot=latency_plot, throughput_plot=throughput_plot, card=card,
                ratios=ratios, files=(csv_file, json_file), refresh=(functools.partial(model_list, ctx), [models]),
                load=(functools.partial(recall, stops, devices, offered_modes), [kept],
                      [*outputs, *inputs]), kept=[kept])

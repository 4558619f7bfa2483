"""The Benchmark tab: measure teacher and students live, beside the model card's speed table."""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
import torch

from core import bench
from core.bench import machine
from ui.context import AppContext, user_errors

MODE_COLOURS = {"card": "#9aa5b1", "reference": "#3b6fb6", "fast": "#e9a23b"}
CARD_MACHINE = {"cpu": "card: Xeon E5-2698 v4", "cuda": "card: Tesla P100"}
ROW_COLUMNS = ["model", "mode", "dtype", "batch_size", "seq_len", "latency_s", "latency_p90_s", "throughput_samples_s",
               "peak_mem_mb", "gflops", "share_of_peak", "params", "size_mb", "runs", "check", "tried"]
CARD_COLUMNS = ["model", "size_mb", "card_size_mb", "card_latency_s", "reference_latency_s", "fast_latency_s",
                "card_throughput", "reference_throughput", "fast_throughput"]
RATIO_COLUMNS = ["speed-up", "card", "reference (here)", "fast (here)"]
INTRO = """### Speed: the model card's table, measured here
The card's headline compares teacher and students by **latency at batch 1** and **throughput at batch 16**, with
512-token sequences through the encoder. `arch:` models have the exact real architectures with random weights: speed
does not depend on the weights, so nothing is downloaded. **reference** is fp32 with eager attention, as the card
measured; **fast** is the quickest path this hardware offers (bf16 where the CPU multiplies it in hardware, 16-bit
on a GPU, SDPA attention), checked against reference before it is timed."""


def short_name(model: str) -> str:
    return model.removeprefix("arch:").replace("-cased-conversational", "")


def config_from_inputs(models, device, batch_sizes, seq_len, modes, runs, compile_fast) -> bench.BenchConfig:
    if seq_len is None or float(seq_len) != int(seq_len):
        raise ValueError("Sequence length must be a whole number of tokens.")
    return bench.BenchConfig(models=[m.strip() for m in (models or []) if m and m.strip()], device=device or "cpu",
                             batch_sizes=bench.parse_int_list(batch_sizes, "Batch sizes"), seq_len=int(seq_len),
                             modes=list(modes or []), runs=int(runs) if runs else None, compile=bool(compile_fast))


def latency_figure(rows: list[dict], device: str) -> go.Figure:
    return _bar_figure(rows, device, "latency", "Latency at batch 1 (s, lower is better)")


def throughput_figure(rows: list[dict], device: str) -> go.Figure:
    return _bar_figure(rows, device, "throughput", "Throughput at batch 16 (samples/s, higher is better)")


def _bar_figure(rows: list[dict], device: str, kind: str, title: str) -> go.Figure:
    """Card, reference and fast bars per model; the card's batch (1 or 16) where measured, else the nearest one."""
    models = list(dict.fromkeys(r["model"] for r in rows))
    batches = sorted({r["batch_size"] for r in rows}) or [1]
    wanted = 1 if kind == "latency" else 16
    batch = wanted if wanted in batches else min(batches, key=lambda b: abs(b - wanted))
    if batch != wanted:
        title = title.replace(f"batch {wanted}", f"batch {batch} (batch {wanted} not measured)")
    figure = go.Figure()
    card_key = f"{device}_{'latency_s' if kind == 'latency' else 'throughput'}"
    card = [bench.published(m).get(card_key) for m in models]
    same_shape = batch == wanted and all(r["seq_len"] == bench.CARD_SEQ_LEN for r in rows)
    if not same_shape:
        title += f"<br><sup>card bars only at seq_len {bench.CARD_SEQ_LEN}, the card's length</sup>"
    if same_shape and any(v is not None for v in card):
        figure.add_bar(name=CARD_MACHINE[device], x=[short_name(m) for m in models], y=card,
                       marker_color=MODE_COLOURS["card"], texttemplate="%{y:.3g}", textposition="outside",
                       cliponaxis=False)
    for mode in bench.MODES:
        found = {r["model"]: r for r in rows if r["mode"] == mode and r["batch_size"] == batch}
        if not found:
            continue
        value = "latency_s" if kind == "latency" else "throughput_samples_s"
        figure.add_bar(name=f"{mode} (here)", x=[short_name(m) for m in models],
                       y=[found[m][value] if m in found else None for m in models],
                       marker_color=MODE_COLOURS[mode], texttemplate="%{y:.3g}", textposition="outside",
                       cliponaxis=False)
    figure.update_layout(title=title, barmode="group", height=380, margin=dict(l=40, r=10, t=80, b=40),
                         legend=dict(orientation="h", y=-0.15), template="plotly_white")
    return figure


def _frame(lines: list[dict], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame(lines, columns=columns)
    return frame.astype(object).where(frame.notna(), "")


def ratio_rows(speedups: list[dict]) -> list[dict]:
    """The speed-ups as one line per question, with card, reference and fast side by side."""
    lines = []
    for item in speedups:
        if "fast_speedup" in item:
            lines.append({"speed-up": f"{short_name(item['model'])}: reference latency / fast latency "
                                      f"(batch {item['batch_size']})", "fast (here)": item["fast_speedup"]})
            continue
        teacher, student = (short_name(part) for part in item["pair"].split(" / "))
        for kind, batch, how in (("latency", 1, f"{teacher} latency / {student} latency"),
                                 ("throughput", 16, f"{student} throughput / {teacher} throughput")):
            lines.append({"speed-up": f"{how} (batch {batch})", "card": item[f"card_{kind}_ratio"],
                          "reference (here)": item[f"reference_{kind}_ratio"],
                          "fast (here)": item[f"fast_{kind}_ratio"]})
    return lines


def card_only_rows(models: list[str], device: str) -> list[dict]:
    """The card's figures for the chosen models, shown before any measurement arrives."""
    key = device if device in bench.DEVICES else "cpu"
    return [{"model": m, "card_size_mb": bench.published(m).get("size_mb"),
             "card_latency_s": bench.published(m).get(f"{key}_latency_s"),
             "card_throughput": bench.published(m).get(f"{key}_throughput")} for m in models if bench.published(m)]


def write_downloads(folder: Path, result: dict) -> tuple[str, str]:
    csv_path, json_path = folder / "benchmark.csv", folder / "benchmark.json"
    pd.DataFrame(result["rows"]).to_csv(csv_path, index=False)
    bench.write_json(result, json_path)
    return str(csv_path), str(json_path)


def progress_text(fraction: float, message: str, started: float, estimate_s: float) -> str:
    elapsed = time.perf_counter() - started
    filled = round(20 * fraction)
    left = max(estimate_s - elapsed, 0.0) if fraction < 0.99 else 0.0
    return (f"`{'█' * filled}{'░' * (20 - filled)}` {fraction:.0%} · {message} · elapsed "
            f"{bench.format_seconds(elapsed)}, about {bench.format_seconds(left)} left")


def build(ctx: AppContext) -> dict:
    cuda = torch.cuda.is_available()
    loader = lambda name, attentions: ctx.cache.get(name, attentions)  # noqa: E731  shares loads with the other tabs

    def checked_config(*values) -> bench.BenchConfig:
        config = config_from_inputs(*values)
        for name in config.models:
            ctx.check_name(name)
            line = ctx.offline_line(name)
            if line:
                raise ValueError(line)
        return config

    def estimate(models=None, device=None, batch_sizes=None, seq_len=None, modes=None, runs=None,
                 compile=None) -> str:
        try:
            plan = bench.make_plan(checked_config(models, device, batch_sizes, seq_len, modes, runs, compile), loader)
        except ValueError as error:
            return f"**Cannot run as set:** {error}"
        busy = machine.busy_note()
        return f"**Before you run:** {plan.describe()}" + (f"\n\n*Note: {busy}*" if busy else "")

    gr.Markdown(INTRO)
    with gr.Row():
        models = gr.Dropdown(ctx.model_choices(include_arch=True), value=list(bench.CARD_MODELS), multiselect=True,
                             allow_custom_value=True, label="Models", scale=3, elem_id="bench-models",
                             info="arch:<name> needs no download; a Hub id or a run's student works too")
        device = gr.Radio(["cpu", "cuda"] if cuda else ["cpu"], value="cpu", label="Device",
                          info=None if cuda else "no GPU on this machine")
    with gr.Row():
        batch_sizes = gr.Textbox("1,16", label="Batch sizes", elem_id="bench-batch-sizes",
                                 info="comma-separated; the card used 1 and 16")
        seq_len = gr.Number(bench.CARD_SEQ_LEN, precision=0, label="Sequence length (tokens)", elem_id="bench-seq-len",
                            info="the card used 512")
        modes = gr.CheckboxGroup(list(bench.MODES), value=list(bench.MODES), label="Modes", elem_id="bench-modes",
                                 info="reference: fp32 eager; fast: 16-bit and SDPA")
        runs = gr.Number(0, precision=0, label="Timed runs", info="0: automatic (about 3 s of runs, 3 to 10)")
        compile_fast = gr.Checkbox(False, label="torch.compile the fast path", info="about 30 s more per input shape")
    inputs = [models, device, batch_sizes, seq_len, modes, runs, compile_fast]
    estimate_md = gr.Markdown()
    with gr.Row():
        run_button = gr.Button("Run benchmark", variant="primary", scale=3, elem_id="bench-run")
        stop_button = gr.Button("Stop", variant="stop", scale=1)
    progress_md = gr.Markdown("")
    results = gr.Dataframe(_frame([], ROW_COLUMNS), label="Measurements (one row as each arrives)", interactive=False,
                           elem_id="bench-results")
    with gr.Row():
        latency_plot = gr.Plot(label="Latency")
        throughput_plot = gr.Plot(label="Throughput")
    card = gr.Dataframe(_frame(card_only_rows(list(bench.CARD_MODELS), "cpu"), CARD_COLUMNS), interactive=False,
                        label="Beside the model card (card: seq_len 512, latency at batch 1, throughput at batch 16)")
    ratios = gr.Dataframe(_frame([], RATIO_COLUMNS), interactive=False, label="Speed-ups, card and here")
    limits_md = gr.Markdown("")
    with gr.Row():
        csv_file = gr.File(label="Results as CSV")
        json_file = gr.File(label="Results as JSON (with the machine record)")

    @user_errors
    def run(models=None, device=None, batch_sizes=None, seq_len=None, modes=None, runs=None, compile=None):
        """Stream the benchmark: the progress line on every pass, tables, charts and files on every result."""
        config = checked_config(models, device, batch_sizes, seq_len, modes, runs, compile)
        plan = bench.make_plan(config, loader)
        folder = Path(tempfile.mkdtemp(prefix="rudistil-bench-"))
        started, rows, peaks = time.perf_counter(), [], None
        machine_info = machine.machine_dict(config.device)  # before the run, so its load average is other programs'
        # progress, results, latency, throughput, card, ratios, limits, csv, json: the last full state, so the final
        # yield (what an API client receives) carries everything
        state = [progress_text(0.0, "starting; " + plan.describe(), started, plan.estimate_s), _frame([], ROW_COLUMNS),
                 None, None, _frame(card_only_rows(config.models, config.device), CARD_COLUMNS),
                 _frame([], RATIO_COLUMNS), "", None, None]
        yield tuple(state)
        for event in bench.iter_benchmark(config, loader, plan):
            if isinstance(event, bench.Progress):
                state[0] = progress_text(event.fraction, event.message, started, plan.estimate_s)
                yield (state[0],) + (gr.skip(),) * 8
                continue
            if isinstance(event, bench.Peaks):
                peaks, state[6] = event, limits_text(event)
                yield (gr.skip(),) * 6 + (state[6],) + (gr.skip(),) * 2
                continue
            rows.append(event)
            result = bench.report(config, rows, plan, time.perf_counter() - started, peaks, machine_info)
            state[1:6] = [_frame(result["rows"], ROW_COLUMNS), latency_figure(result["rows"], config.device),
                          throughput_figure(result["rows"], config.device), _frame(result["card"], CARD_COLUMNS),
                          _frame(ratio_rows(result["speedups"]), RATIO_COLUMNS)]
            state[7:9] = write_downloads(folder, result)  # after every row, so a stopped run keeps its results
            yield (gr.skip(),) + tuple(state[1:6]) + (gr.skip(),) + tuple(state[7:9])
        took = bench.format_seconds(time.perf_counter() - started)
        state[0] = progress_text(1.0, f"done: {len(rows)} measurements in {took} (estimated "
                                 f"{bench.format_seconds(plan.estimate_s)})", started, plan.estimate_s)
        yield tuple(state)

    # no triggers: on page load and on every change of an input, as one endpoint (a Markdown whose value is a
    # function would add a second, unnamed /estimate event on the same triggers)
    gr.on(None, estimate, inputs=inputs, outputs=estimate_md, api_name="estimate_benchmark", show_progress="hidden")
    run_event = run_button.click(run, inputs=inputs, api_name="run_benchmark", show_progress="minimal",
                                 concurrency_limit=1, concurrency_id="benchmark",  # two runs would slow each other
                                 outputs=[progress_md, results, latency_plot, throughput_plot, card, ratios,
                                          limits_md, csv_file, json_file])
    stop_button.click(lambda: "Stopped. The results measured so far are above and in the downloads.",
                      outputs=progress_md, cancels=[run_event], api_name="stop_benchmark")
    return dict(models=models, device=device, batch_sizes=batch_sizes, seq_len=seq_len, modes=modes, runs=runs,
                compile=compile_fast, estimate=estimate_md, run=run_button, stop=stop_button, progress=progress_md,
                results=results, latency_plot=latency_plot, throughput_plot=throughput_plot, card=card,
                ratios=ratios, files=(csv_file, json_file))


def limits_text(peaks: bench.Peaks) -> str:
    lines = ["**This machine's arithmetic limits** (`share_of_peak` in the table is of the measured one):"]
    for dtype, peak in peaks.as_dict().items():
        lines.append(f"- {dtype}: measured matrix product {peak['measured_gflops']:,.0f} GFLOP/s; "
                     f"theoretical {peak['theoretical_basis']}")
    return "\n".join(lines)

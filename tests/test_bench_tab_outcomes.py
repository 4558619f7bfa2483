"""The Benchmark tab after each way a run can end: refused, failed while measuring, stopped (twice), and the tables a
run leaves, which must fit the page while the downloads keep every field."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

STUDENT_ARCH = "arch:distilrubert-base-cased-conversational"
INPUTS = dict(models=["bundled-student"], device="cpu", batch_sizes="1", seq_len=16, modes=["reference"], runs=1,
              compile=False)


def row(model: str, mode: str = "reference", batch_size: int = 1, seq_len: int = 512, **changes) -> dict:
    """One measurement as the engine yields it, as a dict (core.bench.records.Row)."""
    from core.bench.records import Row

    fields = dict(model=model, mode=mode, device="cpu", dtype="float32 (eager)", batch_size=batch_size,
                  seq_len=seq_len, params=1_000, size_mb=10.0, latency_s=0.5, latency_p90_s=0.6,
                  throughput_samples_s=batch_size / 0.5, peak_mem_mb=20.0, gflops=3.0, flops_per_sample_g=1.5,
                  share_of_peak=0.2, share_of_theoretical=0.1, runs=3, check="", tried="")
    return asdict(Row(**{**fields, **changes}))


def kept_run(ctx, stops):
    """The run handler as the tab wires it: its failures kept for the progress line."""
    from ui import bench_outcomes, bench_run
    from ui.errors import ErrorLines

    errors = ErrorLines()
    return errors, bench_outcomes.kept_errors(errors, bench_run.run_benchmark)


def test_a_refused_run_says_why_on_the_progress_line_and_empties_every_result(runs_dir):
    import gradio as gr

    from ui import bench_faults, bench_outcomes, bench_stop, bench_tables
    from ui.context import AppContext

    ctx, stops = AppContext("bundled-teacher", "bundled-student"), bench_stop.StopFlags()
    stops.showing.add(None)  # an earlier benchmark's rows are on this page (no request: the session is None)
    errors, run = kept_run(ctx, stops)
    with pytest.raises(gr.Error):
        next(run(ctx, stops, **{**INPUTS, "batch_sizes": "abc"}))
    view = bench_outcomes.failed_view(ctx, errors, stops)
    progress, results, latency, throughput, card, ratios, notes, csv, json_file = view
    assert progress == ("**Benchmark failed:** Batch sizes must be whole numbers separated by commas, such as 1,16; "
                        "got 'abc'.")
    assert results.empty and list(results.columns) == list(bench_tables.ROW_COLUMNS)
    assert card.empty and ratios.empty and (latency, throughput, notes, csv, json_file) == (None, None, "", None, None)
    assert None not in stops.showing  # a later run stopped early no longer says the previous rows are above
    # the line is taken once: a later failure with nothing kept says it has no reason rather than repeating this one
    assert bench_outcomes.failed_view(ctx, errors, stops)[0] == f"**Benchmark failed:** {bench_faults.no_reason(ctx)}"


def test_a_refusal_before_the_run_is_kept_for_the_progress_line_too(runs_dir):
    from ui import bench_admission, bench_outcomes, bench_stop
    from ui.context import AppContext
    from ui.errors import ErrorLines

    errors, stops = ErrorLines(), bench_stop.StopFlags()

    def guard(*inputs):
        return [{"is_valid": False, "message": "This measurement would take about 2 h."}]

    admit = bench_outcomes.kept_errors(errors, bench_admission.admit_run)
    with pytest.raises(Exception, match="would take about 2 h"):
        admit(bench_admission.Admissions(), guard, *INPUTS.values())
    ctx = AppContext("bundled-teacher", "bundled-student")
    assert bench_outcomes.failed_view(ctx, errors, stops)[0] == ("**Benchmark failed:** This measurement would take "
                                                                 "about 2 h.")


@pytest.mark.parametrize("change, said", [
    (dict(batch_sizes="0"), "Batch size must be at least 1, not 0."),
    (dict(batch_sizes="abc"), "Batch sizes must be whole numbers separated by commas, such as 1,16; got 'abc'."),
    (dict(seq_len=100000), "Sequence length must be a whole number from 1 to 4,096; got 100,000."),
    (dict(models=[]), "Choose at least one model to benchmark."),
])
def test_a_refusal_the_estimate_line_shows_is_not_said_again_on_the_progress_line(runs_dir, change, said):
    """The estimate line above Run already says why the settings cannot run: the refused run empties the results and
    leaves the progress line empty, so the page carries the sentence once (and the notice once)."""
    import gradio as gr

    from ui import bench_estimate, bench_outcomes, bench_stop
    from ui.context import AppContext
    from ui.errors import error_message
    from ui.page_text import markdown_text

    ctx, stops = AppContext("bundled-teacher", "bundled-student"), bench_stop.StopFlags()
    inputs = {**INPUTS, **change}
    estimate = bench_estimate.estimate_benchmark(ctx, **inputs)
    assert estimate == f"**Cannot run as set:** {said}"
    errors, run = kept_run(ctx, stops)
    with pytest.raises(gr.Error) as error:
        next(run(ctx, stops, **inputs))
    assert error_message(error.value) == said  # the notice
    # as the page sends it back
    progress, results, *_ = bench_outcomes.failed_view(ctx, errors, stops, f"\n{estimate}\n")
    assert progress == "" and results.empty
    # an estimate line that does not say it (another visitor's settings a moment ago): the progress line says it
    with pytest.raises(gr.Error):
        next(run(ctx, stops, **inputs))
    other = "**Before you run:** 1 measurement of 1 model"
    assert bench_outcomes.failed_view(ctx, errors, stops, other)[0] == f"**Benchmark failed:** {markdown_text(said)}"


def test_a_refusal_over_the_time_limit_before_the_run_is_said_once_too(runs_dir):
    from ui import bench_admission, bench_estimate, bench_outcomes, bench_stop
    from ui.context import AppContext
    from ui.errors import ErrorLines

    errors, stops = ErrorLines(), bench_stop.StopFlags()
    said = "This measurement would take about 2 h, more than the 60 min 00 s one benchmark may take here."

    def guard(*inputs):
        return [{"is_valid": False, "message": said}]

    with pytest.raises(Exception, match="would take about 2 h"):
        admit = bench_outcomes.kept_errors(errors, bench_admission.admit_run)
        admit(bench_admission.Admissions(), guard, *INPUTS.values())
    ctx = AppContext("bundled-teacher", "bundled-student")
    assert bench_outcomes.failed_view(ctx, errors, stops, bench_estimate.cannot_run_line(said))[0] == ""


def test_a_second_benchmark_refused_while_the_first_runs_leaves_the_first_ones_page(monkeypatch):
    """Run refused because the visitor's benchmark still runs (or has only just ended): its progress line, rows and
    files stay; the notice says why."""
    import gradio as gr

    from ui import bench_admission, bench_outcomes, bench_run, bench_stop
    from ui.context import AppContext
    from ui.errors import ErrorLines

    for module in (bench_admission, bench_outcomes):
        monkeypatch.setattr(module, "session_id", lambda: "me")
    errors, stops = ErrorLines(), bench_stop.StopFlags()
    stops.showing.add("me")  # its rows are on the page

    def guard(*inputs):
        return [{"is_valid": False, "message": bench_admission.BUSY_LINE}]

    with pytest.raises(gr.Error, match="You already have 1 benchmark waiting or running"):
        admit = bench_outcomes.kept_errors(errors, bench_admission.admit_run)
        admit(bench_admission.Admissions(), guard, *INPUTS.values())
    view = bench_outcomes.failed_view(AppContext("bundled-teacher", "bundled-student"), errors, stops, "")
    assert len(view) == len(bench_run.BenchView.FIELDS)
    assert all(isinstance(out, type(gr.skip())) for out in view)  # the running benchmark's outputs, untouched
    assert "me" in stops.showing


def queue_of(*groups: str):
    """A stand-in for the app handling a request, whose queue holds one event in each of `groups`."""
    events = {str(i): SimpleNamespace(concurrency_id=group, session_hash=f"visitor-{i}")
              for i, group in enumerate(groups)}
    return SimpleNamespace(_queue=SimpleNamespace(event_ids_to_events=events))


@pytest.mark.parametrize("groups, line", [
    ((), "Starting…"),
    (("embed",), "Starting…"),  # another tab's work does not hold a benchmark back
    (("benchmark",), "Waiting for its turn: another benchmark is running, and this app runs one at a time."),
])
def test_an_admitted_run_replaces_the_last_runs_line_at_once(groups, line):
    """The last run's "done", "stopped" or "failed" line must not stand above a run that has not yet started, and
    the line says it waits only when another benchmark is in the queue."""
    from gradio.context import LocalContext

    from ui import bench_admission

    def guard(*inputs):
        return [{"is_valid": True, "message": ""} for _ in inputs]

    token = LocalContext.blocks.set(queue_of(*groups))
    try:
        run, stop, progress = bench_admission.admit_run(bench_admission.Admissions(), guard, *INPUTS.values())
    finally:
        LocalContext.blocks.reset(token)
    assert (run.interactive, stop.interactive) == (False, True)
    assert progress == line


def test_the_wrapped_handlers_keep_their_api_parameters_and_the_run_still_streams():
    import functools
    import inspect

    from ui import bench_outcomes, bench_run
    from ui.errors import ErrorLines

    errors = ErrorLines()
    run = bench_outcomes.kept_errors(errors, functools.partial(bench_run.run_benchmark, None, None))
    assert inspect.isgeneratorfunction(run)
    assert list(inspect.signature(run).parameters) == list(INPUTS)


def fake_plan(models: list[str]):
    from core import bench

    config = bench.BenchConfig(models=models, batch_sizes=[1], seq_len=16, modes=["reference"], runs=1)
    return SimpleNamespace(config=config, estimate_s=1.0, calibration={}, jobs=[object()], describe=lambda: "1 job")


def test_a_fault_while_measuring_is_a_sentence_and_stops_answer_says_the_same(runs_dir, monkeypatch):
    import gradio as gr

    from core import bench
    from core.bench import machine
    from core.bench.records import Row
    from ui import bench_outcomes, bench_run, bench_stop
    from ui.context import AppContext
    from ui.errors import error_message

    def measure_then_fail(config, load, plan, stop):
        yield Row(**row("bundled-student", seq_len=16))
        raise RuntimeError("DefaultCPUAllocator: can't allocate memory:\nyou tried to allocate 9 GB")

    monkeypatch.setattr(bench_run, "checked_plan", lambda ctx, *inputs: fake_plan(["bundled-student"]))
    monkeypatch.setattr(bench, "iter_benchmark", measure_then_fail)
    monkeypatch.setattr(machine, "machine_dict", lambda device: {})
    ctx, stops = AppContext("bundled-teacher", "bundled-student"), bench_stop.StopFlags()
    flags = []
    start = stops.start
    monkeypatch.setattr(stops, "start", lambda session: flags.append(start(session)) or flags[-1])
    errors, run = kept_run(ctx, stops)
    shown = []
    with pytest.raises(gr.Error) as error:
        for outputs in run(ctx, stops, **INPUTS):
            shown.append(outputs)
    said = ("The benchmark stopped on an error while measuring: DefaultCPUAllocator: can't allocate memory: you tried "
            "to allocate 9 GB. Try again with fewer models, batch sizes or modes; if it happens again, the app's log "
            "has the details.")
    assert error_message(error.value) == said
    assert any(isinstance(out[1], pd.DataFrame) and len(out[1]) == 1 for out in shown)  # a row was on the page
    assert flags[0].ended.is_set() and flags[0].final_line == f"**Benchmark failed:** {said}"
    view = bench_outcomes.failed_view(ctx, errors, stops)
    assert view[0] == f"**Benchmark failed:** {said}" and view[1].empty and view[7] is None


def test_stop_pressed_again_while_the_run_ends_its_pass_is_not_told_it_was_cancelled(monkeypatch):
    from ui import bench_stop

    monkeypatch.setattr(bench_stop, "session_id", lambda: "me")
    monkeypatch.setattr(bench_stop, "pending_requests", lambda session, group: 1)  # the run itself, still running
    stops = bench_stop.StopFlags()
    flag_ = stops.start("me")
    first = bench_stop.stop_benchmark(stops, wait_s=0.01)
    second = bench_stop.stop_benchmark(stops, wait_s=0.01)
    assert flag_.is_set() and first == second == ("Stopping after this forward pass; the results measured so far "
                                                  "stay above and in the downloads.")
    flag_.finish("stopped after 2 of 4 measurements")
    assert bench_stop.stop_benchmark(stops, wait_s=0.01) == "stopped after 2 of 4 measurements"
    stops.end("me", flag_)
    stops.accept("me")  # the next run, waiting in the queue
    assert bench_stop.stop_benchmark(stops, wait_s=0.01) == bench_stop.CANCELLED_IN_QUEUE


LOCAL_NEXT = "Try again with fewer models, batch sizes or modes; if it happens again, the app's log has the details."
SPACE_NEXT = ("Try again with fewer models, smaller batch sizes or a shorter sequence length; if it happens again, run "
              "the lab on your own machine, where the app's log has the details.")


@pytest.mark.parametrize("on_space, then", [(False, LOCAL_NEXT), (True, SPACE_NEXT)])
def test_a_model_that_fails_to_load_while_planning_is_a_sentence_on_the_progress_line(runs_dir, monkeypatch, on_space,
                                                                                      then):
    import gradio as gr

    from ui import bench_estimate, bench_outcomes, bench_run, bench_stop
    from ui.context import AppContext
    from ui.errors import error_message

    def fail_to_load(ctx, *inputs):
        raise RuntimeError("the checkpoint file\nis truncated")

    monkeypatch.setattr(bench_run, "checked_plan", fail_to_load)
    ctx, stops = AppContext("bundled-teacher", "bundled-student", on_space=on_space), bench_stop.StopFlags()
    errors, run = kept_run(ctx, stops)
    with pytest.raises(gr.Error) as error:
        list(run(ctx, stops, **INPUTS))
    said = f"The benchmark could not be prepared: the checkpoint file is truncated. {then}"
    assert error_message(error.value) == said
    assert bench_outcomes.failed_view(ctx, errors, stops)[0] == f"**Benchmark failed:** {said}"
    # the estimate plans the same way and says it in the same words: the progress line then leaves it to the estimate
    monkeypatch.setattr(bench_estimate, "planned", fail_to_load)
    estimate = bench_estimate.estimate_benchmark(ctx, *INPUTS.values())
    assert estimate == f"**Cannot run as set:** {said}"
    with pytest.raises(gr.Error):
        list(run(ctx, stops, **INPUTS))
    assert bench_outcomes.failed_view(ctx, errors, stops, estimate)[0] == ""


def test_the_estimate_and_the_time_limit_check_answer_a_model_that_fails_to_load(runs_dir, monkeypatch):
    from ui import bench_estimate
    from ui.context import AppContext

    def fail_to_load(ctx, *inputs):
        raise OSError("Unable to load weights from pytorch checkpoint file")

    monkeypatch.setattr(bench_estimate, "planned", fail_to_load)
    ctx = AppContext("bundled-teacher", "bundled-student")
    assert bench_estimate.estimate_benchmark(ctx, *INPUTS.values()) == (
        "**Cannot run as set:** The benchmark could not be prepared: Unable to load weights from pytorch checkpoint "
        f"file. {LOCAL_NEXT}")
    assert bench_estimate.over_the_time_limit(ctx, *INPUTS.values()) is None  # the run itself says why


@pytest.mark.parametrize("on_space, then", [(False, LOCAL_NEXT), (True, SPACE_NEXT)])
def test_a_failure_without_a_reason_says_what_to_do_where_the_app_runs(runs_dir, on_space, then):
    from ui import bench_outcomes, bench_stop
    from ui.context import AppContext
    from ui.errors import ErrorLines

    ctx = AppContext("bundled-teacher", "bundled-student", on_space=on_space)
    line = bench_outcomes.failed_view(ctx, ErrorLines(), bench_stop.StopFlags())[0]
    assert line == f"**Benchmark failed:** the benchmark ended without saying why; {then[0].lower()}{then[1:]}"


def test_a_stop_as_the_run_ends_answers_with_its_final_line_until_the_next_run(runs_dir, monkeypatch):
    """Gradio keeps the run's event a moment after the run has forgotten its stop flag: a Stop then must neither say
    it cancelled a waiting benchmark nor write that over the finished run's line."""
    from core import bench
    from core.bench import machine
    from core.bench.records import Row
    from ui import bench_run, bench_stop
    from ui.context import AppContext

    for module in (bench_run, bench_stop):  # the run and Stop both ask whose they are
        monkeypatch.setattr(module, "session_id", lambda: "me")
    monkeypatch.setattr(bench_stop, "pending_requests", lambda session, group: 1)  # the finished run's event
    monkeypatch.setattr(bench_run, "checked_plan", lambda ctx, *inputs: fake_plan(["bundled-student"]))
    monkeypatch.setattr(bench, "iter_benchmark",
                        lambda config, load, plan, stop: iter([Row(**row("bundled-student", seq_len=16))]))
    monkeypatch.setattr(machine, "machine_dict", lambda device: {})
    ctx, stops = AppContext("bundled-teacher", "bundled-student"), bench_stop.StopFlags()
    stops.accept("me")
    final = list(bench_run.run_benchmark(ctx, stops, **INPUTS))[-1][0]
    assert "done: 1 measurement" in final
    assert bench_stop.stop_benchmark(stops, wait_s=0.01) == final
    assert bench_stop.stop_benchmark(stops, wait_s=0.01) == final  # pressed again: the same line
    stops.accept("me")  # the next run, waiting in the queue: Stop cancels it
    assert bench_stop.stop_benchmark(stops, wait_s=0.01) == bench_stop.CANCELLED_IN_QUEUE


# ---------------------------------------------------------------------------------------------------------------------
# Model names: short where that stays unique, the same in the table, the charts and the speed-ups


TEACHER_ARCH, TEACHER_HUB = "arch:rubert-base-cased-conversational", "rubert-base-cased-conversational"


@pytest.mark.parametrize("models, names", [
    ([TEACHER_ARCH, STUDENT_ARCH], ["rubert-base", "distilrubert-base"]),
    ([TEACHER_ARCH, TEACHER_HUB, STUDENT_ARCH], ["arch:rubert-base", "rubert-base", "distilrubert-base"]),
    # the Hub's name shortened would be the folder's: both keep their full names
    (["rubert-base", TEACHER_HUB], ["rubert-base", TEACHER_HUB]),
    (["arch:x-cased-conversational", "x-cased-conversational", "arch:x"],
     ["arch:x-cased-conversational", "x", "arch:x"]),
])
def test_short_names_stay_unique_among_the_runs_models(models, names):
    from ui import bench_plots

    assert list(bench_plots.short_names(models).values()) == names


def test_two_models_that_shorten_alike_keep_their_own_rows_and_bars(runs_dir, monkeypatch):
    from core import bench
    from core.bench import machine
    from core.bench.records import Row
    from ui import bench_run, bench_stop
    from ui.context import AppContext

    measured = [row(TEACHER_ARCH, latency_s=0.5), row(TEACHER_HUB, latency_s=0.3)]
    monkeypatch.setattr(bench_run, "checked_plan", lambda ctx, *inputs: fake_plan([TEACHER_ARCH, TEACHER_HUB]))
    monkeypatch.setattr(bench, "iter_benchmark", lambda config, load, plan, stop: iter([Row(**r) for r in measured]))
    monkeypatch.setattr(machine, "machine_dict", lambda device: {})
    ctx, stops = AppContext("bundled-teacher", "bundled-student"), bench_stop.StopFlags()
    shown = list(bench_run.run_benchmark(ctx, stops, **INPUTS))
    first = next(out[1] for out in shown if isinstance(out[1], pd.DataFrame) and len(out[1]) == 1)
    assert list(first["model"]) == ["arch:rubert-base"]  # named apart from the start, not only once both are in
    progress, table, latency, *_ = shown[-1]
    assert list(table["model"]) == ["arch:rubert-base", "rubert-base"]
    reference = next(trace for trace in latency.data if trace.name == "reference (here)")
    assert list(zip(reference.x, reference.y)) == [("arch:rubert-base", 500.0), ("rubert-base", 300.0)]  # ms
    assert list(latency.layout.xaxis.categoryarray) == ["arch:rubert-base", "rubert-base"]


def test_the_speed_ups_name_models_as_the_table_does():
    from ui import bench_tables

    speedups = [{"pair": f"{TEACHER_ARCH} / {TEACHER_HUB}", "batch_size": 1, "card_latency_ratio": None,
                 "reference_latency_ratio": 1.7, "fast_latency_ratio": None},
                {"model": TEACHER_HUB, "batch_size": 1, "fast_speedup": 2.0}]
    assert [line["speed-up"] for line in bench_tables.ratio_rows(speedups)] == [
        "arch:rubert-base latency / rubert-base latency (batch 1)",
        "rubert-base: reference latency / fast latency (batch 1)"]


# ---------------------------------------------------------------------------------------------------------------------
# The tables: narrow enough for the page, with every field in the downloads


@pytest.mark.parametrize("name", ["ROW_COLUMNS", "CARD_COLUMNS", "RATIO_COLUMNS"])
def test_each_column_has_room_for_its_header_and_the_widths_fill_the_table(name):
    from ui import bench_tables

    columns = getattr(bench_tables, name)
    # a header breaks only between its words: "between modes (here)" over three lines, "batch_size" not at all
    assert all(chars >= max(map(len, header.split())) for header, chars in columns.items()), columns
    widths = bench_tables.column_widths(columns)
    assert len(widths) == len(columns) and 99.5 < sum(float(w.rstrip("%")) for w in widths) <= 100


@pytest.mark.parametrize("value, scale, shown", [
    (0.0748093, 1, 0.0748), (0.074809, 1000, 74.8), (0.11173, 1000, 112), (3715.24, 1, 3715), (99.96, 1, 100),
    (0.3285, 1000, 328), (2.9271, 1, 2.93), (0.0, 1, 0.0), (None, 1000, None),
])
def test_the_tables_show_figures_of_three_significant_digits(value, scale, shown):
    from ui import bench_tables

    assert bench_tables.figure_cell(value, scale) == shown


def test_the_measurements_table_shows_short_headers_over_figures_that_fit_them():
    """Each line of the measurements table from a row: milliseconds for the latencies, three significant digits, and
    every value no longer than its column's characters (a longer one would break inside a word)."""
    from ui import bench_tables

    rows = [row("bundled-teacher", "fast", 16, seq_len=512, dtype="bfloat16 (sdpa)", latency_s=0.074809,
                latency_p90_s=0.0811, throughput_samples_s=213.87, peak_mem_mb=1234.56, share_of_peak=0.0891),
            row("bundled-student", "onnxruntime-int8", 256, seq_len=4096, dtype="onnxruntime int8 dynamic (fused)",
                latency_s=12.3456, latency_p90_s=13.9, throughput_samples_s=20.736, peak_mem_mb=45.0,
                share_of_peak=None)]
    lines = bench_tables.row_lines(rows, {"bundled-teacher": "teacher", "bundled-student": "student"})
    assert lines[0] == {"model": "teacher", "mode": "fast", "dtype": "bfloat16 (sdpa)", "batch": 16, "seq": 512,
                        "ms": 74.8, "p90 ms": 81.1, "samples/s": 214, "MB": 1235, "of peak": 0.0891}
    assert (lines[1]["ms"], lines[1]["p90 ms"], lines[1]["samples/s"], lines[1]["of peak"]) == (12346, 13900, 20.7,
                                                                                                   None)
    for line in lines:
        for header, value in line.items():
            words = str(value).replace("-", "- ").split()  # a name breaks after its hyphens
            assert max(map(len, words)) <= bench_tables.ROW_COLUMNS[header], (header, value)
    assert list(bench_tables.frame(lines, bench_tables.ROW_COLUMNS).columns) == list(bench_tables.ROW_COLUMNS)


def test_the_card_table_gives_each_source_of_figures_a_line(monkeypatch):
    from core import bench
    from ui import bench_tables

    rows = [row(STUDENT_ARCH, mode, batch, size_mb=size, latency_s=latency, throughput_samples_s=batch / latency)
            for mode, size, latency in (("reference", 500.0, 0.4), ("fast", 250.0, 0.1), ("onnxruntime", 480.0, 0.2))
            for batch in (1, 16)]
    rows.append(row("bundled-student", "reference", 1, seq_len=32, size_mb=40.0, latency_s=0.01))
    lines = bench_tables.card_rows(bench.card_comparison(rows, "cpu"), rows, "cpu")
    assert [(line["model"], line["figures"]) for line in lines] == [
        (STUDENT_ARCH, "card: Xeon E5-2698 v4"), (STUDENT_ARCH, "reference (here)"), (STUDENT_ARCH, "fast (here)"),
        (STUDENT_ARCH, "onnxruntime (here)"), ("bundled-student", "reference (here)")]
    card, fast, runtime, other = lines[0], lines[2], lines[3], lines[4]
    # the card's 0.3285 s and 0.5803 samples/s, in milliseconds and three significant digits as the page shows them
    assert (bench.card_figure(STUDENT_ARCH, "cpu", "latency"), bench.card_figure(STUDENT_ARCH, "cpu", "throughput"),
            bench.published(STUDENT_ARCH)["size_mb"]) == (0.3285, 0.5803, 517)
    assert (card["MB"], card["ms"], card["samples/s"]) == (517, 328, 0.58)
    assert (fast["MB"], fast["ms"], fast["samples/s"]) == (250, 100, 160)
    assert (runtime["MB"], runtime["ms"]) == (480, 200)  # the runtime's own file, its own latency
    assert (other["ms"], other["samples/s"]) == (10, None)  # batch 16 was not measured
    frame = bench_tables.frame(lines, bench_tables.CARD_COLUMNS)
    assert list(frame.columns) == list(bench_tables.CARD_COLUMNS)


def test_a_model_measured_at_another_length_has_no_card_figures_beside_it():
    from core import bench
    from ui import bench_tables

    rows = [row(STUDENT_ARCH, "reference", 1, seq_len=128)]
    card = bench_tables.card_rows(bench.card_comparison(rows, "cpu"), rows, "cpu")[0]
    assert card["figures"] == "card: Xeon E5-2698 v4" and (card["ms"], card["samples/s"]) == (None, None)


def test_the_notes_say_how_each_mode_was_checked_as_written():
    from ui import bench_tables

    rows = [row("my_model", "reference"),
            row("my_model", "fast", 1, dtype="bfloat16 (sdpa)", check="top-1 agreement 1.00 >= 0.99",
                tried="bfloat16 (sdpa): 4.0 ms at batch 1"),
            row("my_model", "fast", 16, dtype="bfloat16 (sdpa)", check="top-1 agreement 1.00 >= 0.99"),
            row("my_model", "onnxruntime", 1, dtype="float32 (onnxruntime)", check="cosine 0.9999", setup_s=12.0)]
    # Markdown source: the page shows "\_" as "_" and "&gt;" as ">"
    assert bench_tables.check_notes(rows) == [
        r"- my\_model, fast, bfloat16 (sdpa): checked against reference: top-1 agreement 1.00 &gt;= 0.99; candidates "
        r"timed: bfloat16 (sdpa): 4.0 ms at batch 1",
        r"- my\_model, onnxruntime, float32 (onnxruntime): checked against reference: cosine 0.9999; setup\_s "
        r"(export and compile) 12 s, not part of the timed runs"]
    assert bench_tables.notes_text(rows[:1], None) == ""  # reference alone: nothing was checked


@pytest.mark.app
def test_the_page_shows_fewer_columns_and_the_downloads_keep_every_field(tiny_teacher_dir, tiny_student_dir,
                                                                         runs_dir):
    import gradio as gr
    from gradio_client import Client

    from core.bench.records import Row
    from ui import bench_tab, bench_tables
    from ui.context import AppContext

    with gr.Blocks() as demo:
        for state in bench_tab.build(AppContext.create())["kept"]:  # as the app renders them, outside the tab
            state.render()
    demo.queue().launch(prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        models = [str(tiny_teacher_dir), str(tiny_student_dir)]
        outputs = client.predict(models, "cpu", "1", 16, ["reference", "fast"], 1, False, api_name="/run_benchmark")
        progress, table, _, _, card, ratios, notes, csv_path, json_path = outputs
        assert "done: 4 measurements" in progress
        assert table["headers"] == list(bench_tables.ROW_COLUMNS) and len(table["data"]) == 4
        assert card["headers"] == list(bench_tables.CARD_COLUMNS)
        # the page's short headers; the downloads keep the full field names
        assert {"batch", "ms", "samples/s", "MB", "of peak"} <= set(table["headers"])
        assert [line[1] for line in card["data"]] == ["reference (here)", "fast (here)"] * 2
        assert notes.startswith("**How each mode was checked**") and notes.count("\n- ") >= 2
        assert "float32: measured matrix product" in notes
        fields = list(Row.__dataclass_fields__)
        assert Path(csv_path).read_text(encoding="utf-8").splitlines()[0].split(",") == fields
        saved = json.loads(Path(json_path).read_text(encoding="utf-8"))
        assert all(list(line) == fields for line in saved["rows"]) and len(saved["card"]) == 2
        assert not (set(table["headers"]) - {"model", "mode", "dtype"}) & set(fields)
        downloaded = pd.read_csv(csv_path)
        shown = pd.DataFrame(table["data"], columns=table["headers"])
        # the same measurements: the page's milliseconds are the file's seconds, rounded for the page
        assert list(shown["batch"]) == list(downloaded["batch_size"])
        assert list(shown["ms"]) == [bench_tables.figure_cell(s, 1000) for s in downloaded["latency_s"]]
        assert all(abs(ms - 1000 * s) <= 0.005 * 1000 * s for ms, s in zip(shown["ms"], downloaded["latency_s"]))
        with pytest.raises(Exception, match="Batch sizes must be whole numbers separated by commas"):
            client.predict(models, "cpu", "abc", 16, ["reference"], 1, False, api_name="/run_benchmark")
    finally:
        demo.close()


@pytest.mark.parametrize("change, said", [
    (dict(seq_len=10**9), "Sequence length must be a whole number from 1 to 4,096; got 1,000,000,000."),
    (dict(seq_len=1e9), "Sequence length must be a whole number from 1 to 4,096; got 1,000,000,000."),
    (dict(runs=10**9), "Timed runs must be a whole number from 0 to 50; got 1,000,000,000."),
    (dict(batch_sizes=[1, 10**9]), "Each batch size must be a whole number from 1 to 256; got 1,000,000,000."),
    (dict(batch_sizes="1000000000"), "Batch size must be at most 256 here, not 1,000,000,000."),
])
def test_a_number_out_of_range_is_echoed_as_a_person_reads_it(runs_dir, change, said):
    """1e9 typed in a number box reaches the app as 1000000000, and the refusal echoed it so."""
    from ui import bench_estimate
    from ui.context import AppContext

    assert bench_estimate.estimate_benchmark(AppContext("bundled-teacher", "bundled-student"),
                                        **{**INPUTS, **change}) == f"**Cannot run as set:** {said}"


def shown_text(markdown: str) -> tuple[str, str]:
    """(HTML, the text a person reads) of a Markdown line as a page renders it (CommonMark, HTML allowed)."""
    import html
    import re

    markdown_it = pytest.importorskip("markdown_it")
    rendered = markdown_it.MarkdownIt("commonmark", {"html": True}).render(markdown)
    return rendered, html.unescape(re.sub(r"<[^>]+>", "", rendered))


@pytest.mark.parametrize("name", ["my_model_*x*", "<b>bold</b>", "[link](http://x)", "a__b__c"])
def test_a_model_name_on_the_estimate_and_progress_lines_reads_as_typed(runs_dir, name):
    """The estimate line is Markdown: a model named my_model_*x* read as 'mymodelx' in italics, <b>bold</b> as bold."""
    import time

    from ui import bench_estimate, bench_run
    from ui.context import AppContext

    ctx = AppContext("bundled-teacher", "bundled-student")
    line = bench_estimate.estimate_benchmark(ctx, **{**INPUTS, "models": [name]})
    rendered, text = shown_text(line)
    assert f"'{name}'" in text and text.startswith("Cannot run as set: ")
    assert "<em>" not in rendered and "<b>" not in rendered and "<a " not in rendered
    rendered, text = shown_text(bench_run.progress_text(0.5, f"Loading {name} ...", time.perf_counter(), 60.0))
    assert f"· Loading {name} ... ·" in text
    assert "<em>" not in rendered and "<b>" not in rendered and "<a " not in rendered

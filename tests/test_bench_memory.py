"""The Benchmark tab's memory: the last benchmark kept in the browser and drawn again when the page opens."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

INPUTS = dict(models=["bundled-student"], device="cpu", batch_sizes="1", seq_len=16, modes=["reference"], runs=1,
              compile=False)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """A real benchmark through the tab's handler: its last outputs (BenchView.FIELDS) and its JSON download, copied
    (the handler removes its folder once Gradio has copied the files)."""
    from ui import bench_run, bench_stop
    from ui.context import AppContext

    original = bench_run.write_downloads
    kept = tmp_path_factory.mktemp("downloads")

    def copied(folder, result):
        paths = original(folder, result)
        return tuple(str(Path(path).replace(kept / Path(path).name)) for path in paths)

    bench_run.write_downloads = copied
    try:
        outputs = list(bench_run.run_benchmark(AppContext("bundled-teacher", "bundled-student"),
                                               bench_stop.StopFlags(), **INPUTS))[-1]
    finally:
        bench_run.write_downloads = original
    return outputs


def test_a_kept_benchmark_is_drawn_again_as_its_run_left_the_page(measured):
    import gradio as gr

    from ui import bench_memory, bench_stop

    progress, results, latency, throughput, card, ratios, notes, csv_path, json_path = measured
    assert "done: 1 measurement" in progress
    record = bench_memory.remember(json_path, None)
    assert record == json.loads(Path(json_path).read_text(encoding="utf-8"))
    assert record["planned_measurements"] == 1 and len(record["rows"]) == 1
    assert isinstance(bench_memory.remember(json_path, record), type(gr.skip()))  # kept already: not saved again
    stops = bench_stop.StopFlags()
    again = bench_memory.recall(stops, ["cpu"], ["reference", "fast"], record)
    line, *shown, csv_again, json_again = again[:9]
    # the form as it was set, so Run measures the same again
    assert again[9:] == (["bundled-student"], "cpu", "1", 16, ["reference"], 1, False)
    assert line.endswith("· your last benchmark in this browser, " + bench_memory.when_made(record)
                         + f": 1 measurement in {bench_memory.format_seconds(record['wall_s'])}. Press Run to "
                         "measure again.")
    assert line.startswith("`" + "█" * 20 + "` 100%")
    pd.testing.assert_frame_equal(shown[0], results)
    assert shown[1].to_dict() == latency.to_dict() and shown[2].to_dict() == throughput.to_dict()
    pd.testing.assert_frame_equal(shown[3], card)
    pd.testing.assert_frame_equal(shown[4], ratios)
    assert shown[5] == notes and "measured matrix product" in notes
    assert Path(csv_again).read_bytes() == Path(csv_path).read_bytes()
    assert json.loads(Path(json_again).read_text(encoding="utf-8")) == record
    assert None in stops.showing  # a later run stopped before its first row says these rows are still above


def test_a_benchmark_cut_off_says_how_much_of_it_was_measured(measured):
    from ui import bench_memory

    record = bench_memory.remember(measured[-1], None)
    fraction, line = bench_memory.recalled_line({**record, "planned_measurements": 4})
    assert fraction == 0.25
    assert line == (f"your last benchmark in this browser, {bench_memory.when_made(record)}, did not finish: 1 of 4 "
                    "planned measurements, kept when it was stopped or its page was closed. Press Run to measure "
                    "again.")
    # a record of an earlier version has no plan count and no time: it is taken as whole
    older = {key: value for key, value in record.items() if key not in ("planned_measurements", "time_utc")}
    assert bench_memory.recalled_line({**older, "wall_s": 3.0}) == (
        1.0, "your last benchmark in this browser: 1 measurement in 3 s. Press Run to measure again.")


def test_the_form_keeps_only_what_this_machine_offers():
    import gradio as gr

    from ui import bench_memory

    config = dict(models=["arch:rubert-base-cased-conversational"], device="cuda", batch_sizes=[1, 16], seq_len=512,
                  modes=["reference", "fast", "openvino"], runs=None, warmup=None, compile=True)
    models, device, *rest = bench_memory.recalled_form(config, ["cpu"], ["reference", "fast"])
    assert models == ["arch:rubert-base-cased-conversational"] and isinstance(device, type(gr.skip()))
    assert rest == ["1,16", 512, ["reference", "fast"], 0, True]  # runs None: automatic, the box's 0
    assert bench_memory.recalled_form(config, ["cpu", "cuda"], ["reference"])[1] == "cuda"


@pytest.mark.parametrize("made, shown", [("2026-12-03T18:20:05+00:00", "3 Dec 2026, 18:20 UTC"),
                                         ("yesterday", ""), (None, "")])
def test_the_time_a_benchmark_ran_reads_as_a_date(made, shown):
    from ui import bench_memory

    assert bench_memory.when_made({"time_utc": made}) == shown


def test_nothing_kept_or_a_record_that_cannot_be_drawn_leaves_the_page_as_it_opens(measured):
    import gradio as gr

    from ui import bench_memory, bench_run, bench_stop

    record = bench_memory.remember(measured[-1], None)
    broken_row = {**record, "rows": [{"model": "bundled-student"}]}
    for kept in (None, "text", [], {}, {**record, "rows": []}, {**record, "rows": "many"}, broken_row,
                 {**record, "config": {"models": 3, "device": "cpu"}}):
        stops = bench_stop.StopFlags()
        outputs = bench_memory.recall(stops, ["cpu"], ["reference"], kept)
        assert len(outputs) == len(bench_run.BenchView.FIELDS) + len(bench_memory.FORM_FIELDS)
        assert all(isinstance(output, type(gr.skip())) for output in outputs), kept
        assert not stops.showing


def test_only_a_benchmark_result_is_kept(tmp_path, measured):
    import gradio as gr

    from ui import bench_memory

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"rows": [], "note": "a JSON file of something else"}), encoding="utf-8")
    text = tmp_path / "benchmark.json"
    text.write_text("not JSON", encoding="utf-8")
    for path in (None, "", str(other), str(text), str(tmp_path / "gone.json")):
        assert isinstance(bench_memory.remember(path, None), type(gr.skip())), path

"""What the app answers when it is used against its grain: inputs of the wrong type or size sent through
gradio_client or raw HTTP, requests that would hold the machine for hours, a Stop sent by API, another session's
run, server paths on a shared Space, temporary files left behind. Each fault found becomes a test here."""
from __future__ import annotations

import json
import math
import os
import shutil
import threading
import time
from pathlib import Path

import pytest

from core.bench import cli as bench_cli
from core.bench import plan as bench_plan
from tests.support import fake_hub
from tests.support.waiting import wait_for

TINY_ARCH = "arch:distilrubert-tiny-cased-conversational-v1"


class NoProgress:
    """Stands in for gr.Progress when a handler is called directly."""

    def __call__(self, *args, **kwargs):
        pass


def message_of(error) -> str:
    from ui.errors import error_message
    return error_message(error)


def context(teacher_dir, student_dir, **changes):
    from ui.context import AppContext
    return AppContext(default_teacher=str(teacher_dir), default_student=str(student_dir), **changes)


def make_run(root: Path, run_id: str, student_dir: Path, public: bool) -> Path:
    run = root / run_id
    shutil.copytree(student_dir, run / "final")
    (run / "status.json").write_text(json.dumps({"state": "finished", "public": public}), encoding="utf-8")
    return run


# ---------------------------------------------------------------------------------------------------------------------
# The shared checks of ui/input_checks.py and ui/components.py


@pytest.mark.parametrize("value, expected", [(5, 5), (5.0, 5), (" 7 ", 7), ("-2", -2), (20, 20)])
def test_whole_numbers_are_read_from_numbers_and_numeric_text(value, expected):
    from ui.input_checks import whole_number
    assert whole_number(value, "Top-k", -5, 20) == expected


@pytest.mark.parametrize("value, shown", [
    (None, "nothing"), ("ten", "'ten'"), ("abc", "'abc'"), (math.inf, "inf"), (math.nan, "nan"), (2.5, "2.5"),
    (True, "True"), ([5], "a list"), (21, "21"), (-6, "-6"), ("x" * 60, "'" + "x" * 40 + "…'"),
])
def test_anything_else_is_one_sentence_naming_the_input_and_its_range(value, shown):
    from ui.input_checks import whole_number
    with pytest.raises(ValueError) as error:
        whole_number(value, "Top-k", -5, 20)
    assert str(error.value) == f"Top-k must be a whole number from -5 to 20; got {shown}."


def test_choices_and_names_are_checked_by_type():
    from ui.input_checks import MAX_NAME_CHARS, flag, model_name, one_of, some_of, text_input

    assert one_of(" cls ", "Sentence vector", ["mean", "CLS"]) == "CLS"
    assert some_of("fast", "Modes", ["reference", "fast"]) == ["fast"]
    assert some_of(["fast", "fast", "reference"], "Modes", ["reference", "fast"]) == ["fast", "reference"]
    assert model_name(None) == "" and model_name("  bundled-teacher ") == "bundled-teacher"
    assert text_input(None, "The sentence") == "" and flag(None, "Share") is False
    for call, message in [
        (lambda: one_of(None, "Map", ["PCA", "UMAP"]), "Map must be one of PCA, UMAP; got nothing."),
        (lambda: one_of(3, "Map", ["PCA", "UMAP"]), "Map must be one of PCA, UMAP; got 3."),
        (lambda: some_of(None, "Modes", ["reference", "fast"]),
         "Modes must be one or more of reference, fast; got nothing."),
        (lambda: some_of(["turbo"], "Modes", ["reference", "fast"]),
         "Modes must be one of reference, fast; got 'turbo'."),
        (lambda: model_name(5, "Model 1"), "Model 1 is chosen by its name as text (such as bundled-teacher), not 5."),
        (lambda: model_name(["a"], "Model 2"),
         "Model 2 is chosen by its name as text (such as bundled-teacher), not a list."),
        (lambda: model_name("x" * 300, "Model 1"),
         f"Model names have at most {MAX_NAME_CHARS} characters; model 1 has 300."),
        (lambda: text_input(["a"], "The sentence"), "The sentence must be text; got a list."),
        (lambda: flag("yes", "Share"), "Share must be true or false; got 'yes'."),
    ]:
        with pytest.raises(ValueError) as error:
            call()
        assert str(error.value) == message


def test_checked_components_pass_what_gradio_cannot_read_on_to_the_handler():
    from ui.components import CheckedCheckboxGroup, CheckedNumber, CheckedRadio, CheckedSlider

    number, slider = CheckedNumber(1, precision=0), CheckedSlider(1, 20, value=5, step=1)
    radio, group = CheckedRadio(["mean", "CLS"], value="mean"), CheckedCheckboxGroup(["a", "b"], value=["a"])
    assert [c.get_block_name() for c in (number, slider, radio, group)] == ["number", "slider", "radio",
                                                                           "checkboxgroup"]
    assert number.preprocess(3.0) == 3 and slider.preprocess(4) == 4.0  # Gradio's own reading when it can
    assert number.preprocess(2.6) == 2.6  # not rounded to 3: a fraction in a whole-number box is refused by name
    assert number.preprocess("x") == "x" and slider.preprocess("abc") == "abc" and slider.preprocess(None) is None
    assert slider.preprocess(25) == 25 and radio.preprocess("max") == "max" and group.preprocess(None) is None
    assert number.preprocess(True) is True and slider.preprocess(True) is True  # not read as 1: refused by name
    assert not list(Path(__file__).parents[1].glob("ui/*.pyi"))  # no stub files written beside the module


# ---------------------------------------------------------------------------------------------------------------------
# 1. Every error is a sentence: the handlers, called as Gradio calls them


def test_predictions_refuse_bad_top_k_and_model_names_in_one_sentence(tiny_teacher_dir, tiny_student_dir, runs_dir):
    import gradio as gr

    from ui import predict_actions
    from ui.errors import ErrorLines

    ctx, errors = context(tiny_teacher_dir, tiny_student_dir), ErrorLines()
    good = dict(model_1=ctx.default_teacher, model_2=ctx.default_student, model_3="", top_k=5,
                sentence="Привет, [MASK]!")
    cases = [
        (dict(top_k=None), "Top-k must be a whole number from 1 to 20; got nothing."),
        (dict(top_k="abc"), "Top-k must be a whole number from 1 to 20; got 'abc'."),
        (dict(top_k=math.inf), "Top-k must be a whole number from 1 to 20; got inf."),
        (dict(top_k=25), "Top-k must be a whole number from 1 to 20; got 25."),
        (dict(model_1=5), "Model 1 is chosen by its name as text (such as bundled-teacher), not 5."),
        (dict(model_2=["bundled-student"]),
         "Model 2 is chosen by its name as text (such as bundled-teacher), not a list."),
        (dict(model_1="x" * 300), "Model names have at most 200 characters; model 1 has 300."),
        (dict(sentence=7), "The sentence must be text; got 7."),
    ]
    for change, message in cases:
        inputs = {**good, **change}
        for handler in (predict_actions.fill_mask, predict_actions.mask_each_word):
            if handler is predict_actions.mask_each_word and "sentence" not in change:
                inputs = {**inputs, "sentence": "Мы гуляли."}
            with pytest.raises(gr.Error) as error:
                handler(ctx, errors, **inputs, progress=NoProgress())
            assert message_of(error.value) == message
    # an unhashable input (a list sent through the API) still gives its status line
    inputs = {**good, "model_2": ["x"]}
    with pytest.raises(gr.Error):
        predict_actions.fill_mask(ctx, errors, **inputs, progress=NoProgress())
    assert "not a list" in predict_actions.failure_status(errors, "fill_mask", *inputs.values())
    with pytest.raises(gr.Error) as error:
        predict_actions.probe_summary(ctx, errors, 3, ctx.default_student, None, progress=NoProgress())
    assert message_of(error.value) == "Model 1 is chosen by its name as text (such as bundled-teacher), not 3."


def test_embeddings_refuse_bad_neighbours_layers_and_choices_in_one_sentence(tiny_teacher_dir, tiny_student_dir):
    import gradio as gr

    from ui import embed_layers, embed_maps, embed_neighbours

    ctx = context(tiny_teacher_dir, tiny_student_dir)
    common = dict(source="Typed sentences", file=None, sentences="один\nдва\nтри\nчетыре\nпять",
                  model_1=ctx.default_teacher, model_2=ctx.default_student, model_3="", layer_1=-1, layer_2=-1,
                  layer_3=-1, pooling="mean", method="PCA", dims="2D")
    cases = [
        (embed_neighbours.find_neighbours, dict(highlight="1", neighbours=None),
         "Neighbours must be a whole number from 1 to 20; got nothing."),
        (embed_neighbours.find_neighbours, dict(highlight="1", neighbours="many"),
         "Neighbours must be a whole number from 1 to 20; got 'many'."),
        (embed_maps.draw_maps, dict(layer_1="x"), "The layer of model 1 must be a whole number; got 'x'."),
        (embed_maps.draw_maps, dict(layer_2=1.5), "The layer of model 2 must be a whole number; got 1.5."),
        (embed_maps.draw_maps, dict(layer_1=1e9), f"The layer of model 1 must be from -5 to 4 for "
                                                  f"{ctx.default_teacher}: 0 is its embeddings and 4 its last layer; "
                                                  "negative layers count from the last, as in Python (-1 is layer 4, "
                                                  "-5 is layer 0). Got 1,000,000,000."),
        (embed_maps.draw_maps, dict(pooling=None), "Sentence vector must be one of mean, CLS; got nothing."),
        (embed_maps.draw_maps, dict(method=None), "Map must be one of PCA, UMAP; got nothing."),
        (embed_maps.draw_maps, dict(dims=None), "Dimensions must be one of 2D, 3D; got nothing."),
        (embed_maps.draw_maps, dict(dims=3), "Dimensions must be one of 2D, 3D; got 3."),
        (embed_maps.draw_maps, dict(source=None), "Sentences must be one of Probe set, Upload a file, Typed "
                                                  "sentences; got nothing."),
        (embed_maps.draw_maps, dict(cka_estimator="fast"), "CKA estimator must be one of debiased, biased; got "
                                                           "'fast'."),
        (embed_maps.draw_maps, dict(model_1=12), "Model 1 is chosen by its name as text (such as bundled-teacher), "
                                                 "not 12."),
        (embed_maps.draw_maps, dict(sentences=["a", "b"]), "Typed sentences must be text; got a list."),
    ]
    for handler, change, message in cases:
        with pytest.raises(gr.Error) as error:
            handler(ctx, **{**common, **change}, progress=NoProgress())
        assert message_of(error.value) == message
    layer_inputs = {k: v for k, v in common.items() if not k.startswith("layer") and k not in ("method", "dims")}
    with pytest.raises(gr.Error) as error:
        embed_layers.compare_layers(ctx, **{**layer_inputs, "pooling": None}, progress=NoProgress())
    assert message_of(error.value) == "Sentence vector must be one of mean, CLS; got nothing."


@pytest.mark.parametrize("change, message", [
    (dict(seq_len="x"), "Sequence length must be a whole number from 1 to 4,096; got 'x'."),
    (dict(seq_len=None), "Sequence length must be a whole number from 1 to 4,096; got nothing."),
    (dict(modes=None), f"Modes must be one or more of {', '.join(bench_plan.MODES)}; got nothing."),
    (dict(runs=1_000_000), "Timed runs must be a whole number from 0 to 50; got 1,000,000."),
    (dict(runs="ten"), "Timed runs must be a whole number from 0 to 50; got 'ten'."),
    (dict(batch_sizes="300"), "Batch size must be at most 256 here, not 300."),
    (dict(batch_sizes=None), "Batch sizes must be whole numbers separated by commas, such as 1,16; got nothing."),
    (dict(models=5), "Models must be a list of model names; got 5."),
    (dict(models=["x" * 300]), "Model names have at most 200 characters; a model has 300."),
    (dict(device="tpu"), "Device must be one of cpu, cuda; got 'tpu'."),
    (dict(compile="yes"), "torch.compile must be true or false; got 'yes'."),
])
def test_benchmark_refuses_bad_inputs_and_sizes_over_the_caps(change, message, runs_dir):
    import gradio as gr

    from ui import bench_estimate, bench_run, bench_stop
    from ui.context import AppContext

    ctx = AppContext("bundled-teacher", "bundled-student")
    inputs = {**dict(models=[TINY_ARCH], device="cpu", batch_sizes="1", seq_len=32, modes=["reference"], runs=1,
                     compile=False), **change}
    assert bench_estimate.estimate_benchmark(ctx, **inputs) == f"**Cannot run as set:** {message}"
    with pytest.raises(gr.Error) as error:
        next(bench_run.run_benchmark(ctx, bench_stop.StopFlags(), **inputs))
    assert message_of(error.value) == message


def test_a_loading_error_arrives_as_its_sentence_without_extra_quotes(tiny_teacher_dir, tiny_student_dir, runs_dir,
                                                                      monkeypatch):
    import gradio as gr

    from core import bench
    from ui import bench_estimate, predict_actions
    from ui.errors import ErrorLines, user_error

    ctx = context(tiny_teacher_dir, tiny_student_dir)
    sentence = "The weights of 'my-model' cannot be read: download or save the model again."

    def failing_load(name, attentions=False):
        raise user_error(sentence)  # a gr.Error from a load, as a wrapped loader raises it

    monkeypatch.setattr(ctx.cache, "get", failing_load)
    with pytest.raises(gr.Error) as error:
        ctx.load(ctx.default_teacher)
    assert message_of(error.value) == sentence
    with pytest.raises(gr.Error) as error:
        predict_actions.fill_mask(ctx, ErrorLines(), ctx.default_teacher, ctx.default_student, "", 5,
                                  "Привет, [MASK]!", progress=NoProgress())
    assert message_of(error.value) == sentence

    def failing_plan(config, load):
        raise user_error(sentence)

    monkeypatch.setattr(bench, "make_plan", failing_plan)
    line = bench_estimate.estimate_benchmark(ctx, [TINY_ARCH], "cpu", "1", 32, ["reference"], 1, False)
    assert line == f"**Cannot run as set:** {sentence}"


# ---------------------------------------------------------------------------------------------------------------------
# 2. Benchmark limits, in the app and at the command line


def test_a_benchmark_over_the_time_limit_is_refused_before_it_runs(runs_dir, monkeypatch):
    import gradio as gr

    from ui import bench_estimate, bench_run, bench_stop
    from ui.context import AppContext

    monkeypatch.delenv("RUDISTIL_MAX_BENCH_S", raising=False)
    assert AppContext("bundled-teacher", "bundled-student", on_space=True).max_bench_s == 300.0
    assert AppContext("bundled-teacher", "bundled-student").max_bench_s == 3600.0
    monkeypatch.setenv("RUDISTIL_MAX_BENCH_S", "30")
    ctx = AppContext("bundled-teacher", "bundled-student")
    assert ctx.max_bench_s == 30.0
    inputs = dict(models=[TINY_ARCH], device="cpu", batch_sizes="256", seq_len=512, modes=["reference"], runs=50,
                  compile=False)
    plan = bench_estimate.planned(ctx, *inputs.values())
    assert plan.estimate_s > 30
    expected = (f"This measurement would take about {bench_plan.format_seconds(plan.estimate_s)}, more than the "
                "30 s one benchmark may take here; choose fewer models, batch sizes, modes or timed runs, or a "
                "shorter sequence length.")
    assert bench_estimate.estimate_benchmark(ctx, **inputs) == f"**Cannot run as set:** {expected}"
    with pytest.raises(gr.Error) as error:
        next(bench_run.run_benchmark(ctx, bench_stop.StopFlags(), **inputs))
    assert message_of(error.value) == expected
    with pytest.raises(ValueError, match="would take about"):
        bench_estimate.over_the_time_limit(ctx, *inputs.values())
    bench_estimate.over_the_time_limit(ctx, *{**inputs, "seq_len": "x"}.values())  # the run itself says what is wrong
    monkeypatch.setenv("RUDISTIL_MAX_BENCH_S", "soon")
    with pytest.raises(ValueError, match="RUDISTIL_MAX_BENCH_S must be a positive number, not 'soon'"):
        AppContext("bundled-teacher", "bundled-student")


def test_cli_runs_0_is_the_automatic_count_as_in_the_tab():
    args = bench_cli.parse_args(["--models", TINY_ARCH, "--runs", "0"])
    assert bench_cli.config_from_args(args).runs is None


@pytest.mark.parametrize("argv, line", [
    (["--threads", "999"], f"error: --threads must be from 1 to {os.cpu_count()} (this machine's CPU count), not 999."),
    (["--threads", "0"], f"error: --threads must be from 1 to {os.cpu_count()} (this machine's CPU count), not 0."),
    (["--runs", "1000000"], "error: The number of timed runs must be at most 50 here, not 1,000,000."),
    (["--runs", "-2"], "error: --runs must be 0 (about 3 s of runs) or 1 to 50; got -2."),
    (["--batch-sizes", "200,300"], "error: Batch size must be at most 256 here, not 300."),
    (["--seq-len", "100000"], "error: Sequence length must be at most 4,096 tokens here, not 100,000."),
    (["--warmup", "1000"], "error: The number of warm-up runs must be at most 20 here, not 1,000."),
    (["--models", "x" * 300], "error: Model names have at most 200 characters; one has 300."),
])
def test_cli_caps_are_one_line_and_exit_2_before_measuring(argv, line, capsys, monkeypatch):
    monkeypatch.setattr(bench_cli, "run_benchmark", lambda *a, **k: pytest.fail("measured despite the error"))
    code = bench_cli.main(["--models", TINY_ARCH, "--seq-len", "32", "--batch-sizes", "1", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err == line + "\n"


def test_cli_refuses_a_json_path_it_cannot_write_before_measuring(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench_cli, "make_plan", lambda *a, **k: pytest.fail("planned despite the error"))
    a_file = tmp_path / "notes.txt"
    a_file.write_text("x", encoding="utf-8")
    cases = [(str(tmp_path), f"error: --json {tmp_path} is a folder; give a file name such as "
                             f"{tmp_path / 'bench.json'}."),
             (str(a_file / "out.json"), f"error: --json {a_file / 'out.json'} cannot be written: {a_file} is a file, "
                                        "not a folder.")]
    if Path("/proc/self").is_dir():  # /proc takes no new files, not even from root
        cases.append(("/proc/rudistil-bench.json", "error: --json /proc/rudistil-bench.json cannot be written: the "
                                                   "folder /proc is not writable"))
    for path, start in cases:
        assert bench_cli.main(["--models", TINY_ARCH, "--json", path]) == 2
        err = capsys.readouterr().err
        assert err.startswith(start) and err.count("\n") == 1, err
    # a folder that does not exist is refused, not made: a mistyped path left folders behind (user review)
    for path in (tmp_path / "new" / "bench.json", tmp_path / "new" / "deeper" / "bench.json"):
        assert bench_cli.main(["--models", TINY_ARCH, "--json", str(path)]) == 2
        assert capsys.readouterr().err == (f"error: --json {path} cannot be written: the folder {path.parent} does "
                                           "not exist; make it first (mkdir -p) or give a file in a folder that "
                                           "exists.\n")
        assert not (tmp_path / "new").exists()
    bench_cli.check_json_path(str(tmp_path / "bench.json"))  # a new file in a folder that exists is fine


# ---------------------------------------------------------------------------------------------------------------------
# 3. Stop stops the caller's own measurement


def test_stop_flags_belong_to_one_session():
    from ui.bench_stop import StopFlags

    stops = StopFlags()
    mine = stops.start("me")
    assert not stops.stop("someone else") and not mine.is_set()
    assert stops.stop("me") and mine.is_set() and not stops.stop("me")  # once
    newer = stops.start("me")
    stops.end("me", mine)  # the old measurement ending leaves the newer one's flag
    assert stops.stop("me") and newer.is_set()


def test_the_engine_stops_between_forward_passes_and_keeps_no_partial_row():
    from core import bench
    from core.bench.records import Row

    config = bench.BenchConfig(models=[TINY_ARCH], batch_sizes=[1, 2], seq_len=16, modes=["reference"], runs=20)
    stop = threading.Event()
    events = []
    for event in bench.iter_benchmark(config, stop=stop):
        events.append(event)
        if isinstance(event, bench.Progress) and "run 3/20" in event.message:
            stop.set()
    runs = [e.message for e in events if isinstance(e, bench.Progress) and "/20" in e.message]
    assert runs[-1].endswith("run 3/20") and not any(isinstance(e, Row) for e in events)


@pytest.mark.app
@pytest.mark.app
def test_stop_through_the_api_ends_the_callers_run_only_and_one_run_per_session(runs_dir):
    import gradio as gr
    from gradio_client import Client
    from gradio_client.exceptions import ValidationError

    from ui import bench_stop, bench_tab
    from ui.context import AppContext

    ctx = AppContext("bundled-teacher", "bundled-student", max_bench_s=3000)
    with gr.Blocks() as demo:
        for state in bench_tab.build(ctx)["kept"]:  # as the app renders them, outside the tab
            state.render()
    demo.queue().launch(prevent_thread_lock=True, quiet=True)
    try:
        mine, other, third = (Client(demo.local_url, verbose=False) for _ in range(3))
        # a second or more a pass on two cores, fifty passes: long enough to stop in the middle
        long_run = dict(models=[TINY_ARCH], device="cpu", batch_sizes="16", seq_len=512, modes=["reference"],
                        runs=50, compile=False)
        job = mine.submit(**long_run, api_name="/run_benchmark")

        def progress_line() -> str:
            return " ".join(str(out[0]) for out in job.outputs() if out)

        wait_for(lambda: "run 1/50" in progress_line(), timeout=120, every=0.2)
        with pytest.raises(ValidationError, match="You already have 1 benchmark waiting or running"):
            mine.predict(**long_run, api_name="/run_benchmark")
        short_run = dict(long_run, batch_sizes="1", seq_len=16, runs=1)
        waiting = other.submit(**short_run, api_name="/run_benchmark")  # waits behind mine: one at a time
        wait_for(lambda: waiting.status().code.name == "IN_QUEUE", timeout=30, every=0.1)
        assert third.predict(api_name="/stop_benchmark") == "Nothing of yours is being measured."
        wait_for(lambda: "run 2/50" in progress_line(), timeout=60, every=0.2)  # someone else's Stop changed nothing
        assert other.predict(api_name="/stop_benchmark") == bench_stop.CANCELLED_IN_QUEUE  # its waiting one
        asked = time.monotonic()
        answer = mine.predict(api_name="/stop_benchmark")  # Stop answers with the run's own final line
        progress, table, *_ = job.result(timeout=60)
        assert time.monotonic() - asked < 30 and job.status().code.name != "CANCELLED"
        assert "stopped after 0 of 1 measurements" in progress and not table["data"] and answer == progress
        assert "100%" not in progress and "█" * 20 not in progress  # the bar of a stopped run is never full
        cancelled, cancelled_table, *_ = waiting.result(timeout=60)
        assert cancelled == bench_stop.CANCELLED_IN_QUEUE and not cancelled_table["data"]
        again, again_table, *_ = other.predict(**short_run, api_name="/run_benchmark")  # a later one is not cancelled
        assert "done: 1 measurement in" in again and len(again_table["data"]) == 1
        ctx.max_bench_s = 5.0
        with pytest.raises(ValidationError, match="would take about .*, more than the 5 s one benchmark may take"):
            other.predict(**long_run, api_name="/run_benchmark")  # refused before it is queued
    finally:
        demo.close()


def test_a_finished_benchmark_removes_its_temporary_folder(tiny_student_dir, runs_dir):
    from ui import bench_run, bench_stop

    ctx = context(tiny_student_dir, tiny_student_dir)
    outputs = list(bench_run.run_benchmark(ctx, bench_stop.StopFlags(), [str(tiny_student_dir)], "cpu", "1", 16,
                                           ["reference"], 1, False))
    csv_path = next(out[7] for out in outputs if isinstance(out[7], str))
    assert "done: 1 measurement in" in outputs[-1][0]
    assert Path(csv_path).parent.name.startswith("rudistil-bench-") and not Path(csv_path).parent.exists()


# ---------------------------------------------------------------------------------------------------------------------
# 4. Heavy endpoints: one budget, places per session, an estimate before embedding


def test_heavy_endpoints_share_one_budget_and_guard_their_places(tiny_teacher_dir, tiny_student_dir, runs_dir):
    import gradio as gr

    from ui import bench_tab, embed_tab, predict_tab

    ctx = context(tiny_teacher_dir, tiny_student_dir)
    with gr.Blocks() as demo:
        embed_tab.build(ctx)
        predict_tab.build(ctx)
        bench_tab.build(ctx)
    fns = {fn.api_name: fn for fn in demo.fns.values() if fn.api_name}
    heavy = [fns[n] for n in ("embedding_map", "neighbours", "layer_similarity")]
    heavy += [fn for fn in demo.fns.values() if fn.fn is fns["neighbours"].fn and fn not in heavy]
    assert len(heavy) == 4  # the Neighbours button and picking a sentence
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in heavy} == {("embeddings", 2)}
    assert all(fn.validator is not None for fn in heavy)
    light = [fns[n] for n in ("fill_mask", "mask_each_word", "probe_summary")]
    assert {(fn.concurrency_id, fn.concurrency_limit) for fn in light} == {("predictions", 4)}
    assert (fns["run_benchmark"].concurrency_id, fns["run_benchmark"].concurrency_limit) == ("benchmark", 1)
    assert fns["run_benchmark"].validator is not None


def test_the_queue_guard_counts_the_sessions_own_requests(monkeypatch):
    from types import SimpleNamespace

    from ui import sessions, visitor_limits

    events = {str(i): SimpleNamespace(session_hash=s, concurrency_id=g)
              for i, (s, g) in enumerate([("a", "embeddings"), ("a", "embeddings"), ("b", "embeddings"),
                                          ("a", "predictions")])}
    blocks = SimpleNamespace(_queue=SimpleNamespace(event_ids_to_events=events))
    from gradio.context import LocalContext
    LocalContext.blocks.set(blocks)
    try:
        assert sessions.pending_requests("a", "embeddings") == 2
        assert sessions.pending_requests("b", "embeddings") == 1
        assert sessions.pending_requests(None, "embeddings") == 3  # every session's
        for session, refused in (("a", True), ("b", False)):
            monkeypatch.setattr(visitor_limits, "session_id", lambda s=session: s)
            answer = visitor_limits.queue_guard("embeddings", 2, "embedding request", "embedding requests")(1, 2)
            assert len(answer) == 2 and answer[1]["is_valid"]
            assert answer[0]["is_valid"] is not refused
        assert answer[0]["message"] == ""
        monkeypatch.setattr(visitor_limits, "session_id", lambda: "a")
        answer = visitor_limits.queue_guard("embeddings", 2, "embedding request", "embedding requests")(1)
        assert answer[0]["message"] == ("You already have 2 embedding requests waiting or running, the most this app "
                                        "takes from one visitor at a time; wait for one to finish.")
    finally:
        LocalContext.blocks.set(None)


def encoder_flops_by_hand(layers: int, hidden: int, ffn: int, tokens: int) -> float:
    """Per layer: Q, K, V, output 4 * 2*s*h*h, feed-forward 2 * 2*s*h*f, scores and their product with V 2 * 2*s*s*h."""
    return layers * (8 * tokens * hidden * hidden + 4 * tokens * hidden * ffn + 4 * tokens * tokens * hidden)


@pytest.mark.slow
def test_5000_lines_of_250_tokens_are_refused_on_a_space_before_embedding(bundled_teacher, monkeypatch, runs_dir):
    import gradio as gr

    from core.bench import machine
    from core.compare import embed
    from core.compare.sentences import typed_set
    from ui import embed_layers, embed_spaces
    from ui.context import AppContext

    rate = 100e9  # FLOP/s the encoder reaches: fixed, so the estimate is the same on any machine
    monkeypatch.setattr(machine, "quick_rate", lambda dtype, device="cpu": rate / 0.55)
    monkeypatch.delenv("RUDISTIL_MAX_EMBED_S", raising=False)
    ctx = AppContext("bundled-teacher", "bundled-student", on_space=True)
    assert ctx.max_embed_s == 120.0
    tokenizer = bundled_teacher.tokenizer
    words = [w for w in sorted(tokenizer.get_vocab()) if w.isalpha() and len(tokenizer(f"{w} и")["input_ids"]) == 4]
    lines = typed_set("\n".join(f"{words[i // 100]} {words[i % 100]} " + "и " * 246 for i in range(5000)))
    lengths = embed.token_lengths(bundled_teacher, lines)
    assert len(lengths) == 5000 and set(lengths) == {250}  # [CLS], 248 words, [SEP]
    copies = typed_set("\n".join([lines.sentences[0]] * 5000))  # embedded once: the cost of one sentence
    assert embed.token_lengths(bundled_teacher, copies) == [250]
    assert embed_spaces.embedding_seconds(bundled_teacher, copies, "mean") == pytest.approx(
        (embed_spaces.embedding_seconds(bundled_teacher, typed_set(lines.sentences[0]), "mean")[0], 250))
    teacher_s, tokens = embed_spaces.embedding_seconds(bundled_teacher, lines, "mean")
    assert tokens == 5000 * 250
    config = bundled_teacher.model.config
    by_hand = encoder_flops_by_hand(config.num_hidden_layers, config.hidden_size, config.intermediate_size, 250)
    assert teacher_s == pytest.approx(5000 * by_hand / rate, rel=1e-9)
    student = ctx.load("bundled-student")
    student_s, _ = embed_spaces.embedding_seconds(student, lines, "mean")
    expected = (f"Embedding these 5,000 sentences (1,250,000 tokens a model) with 2 models would take about "
                f"{bench_plan.format_seconds(teacher_s + student_s)} here, more than the 2 min 00 s one request may "
                "take on this app; use fewer or shorter sentences, or smaller models.")
    with pytest.raises(ValueError) as error:
        embed_spaces.check_embedding_work(ctx, [bundled_teacher, student], lines, "mean")
    assert str(error.value) == expected
    text = "\n".join(lines.sentences)
    with pytest.raises(gr.Error) as error:
        embed_layers.compare_layers(ctx, "Typed sentences", None, text, "bundled-teacher", "bundled-student", "",
                                    "mean", progress=NoProgress())
    assert message_of(error.value) == expected


def test_cached_embeddings_cost_nothing_and_pass_any_limit(tiny_teacher_dir, tiny_student_dir, runs_dir):
    import gradio as gr

    from ui import embed_maps

    ctx = context(tiny_teacher_dir, tiny_student_dir, max_embed_s=1e-9)
    inputs = dict(source="Typed sentences", sentences="один кот\nдва кота\nтри кота\nчетыре кота\nпять котов",
                  model_1=ctx.default_teacher, model_2=ctx.default_student)
    with pytest.raises(gr.Error, match="would take about .* more than the 0 s one request may take"):
        embed_maps.draw_maps(ctx, **inputs, pooling="mean", method="PCA", dims="2D", progress=NoProgress())
    ctx.max_embed_s = 600.0
    embed_maps.draw_maps(ctx, **inputs, pooling="mean", method="PCA", dims="2D", progress=NoProgress())
    ctx.max_embed_s = 1e-9
    figure, *_ = embed_maps.draw_maps(ctx, **inputs, pooling="mean", method="PCA", dims="2D", progress=NoProgress())
    assert figure is not None  # embedded already: nothing left to estimate


# ---------------------------------------------------------------------------------------------------------------------
# 5. Disk


def test_gradios_cache_is_swept_and_old_download_folders_are_removed(tmp_path, tiny_teacher_dir, tiny_student_dir,
                                                                     runs_dir):
    import app as app_module
    from ui.downloads import remove_old_folders

    demo = app_module.build_app(context(tiny_teacher_dir, tiny_student_dir))
    assert demo.delete_cache == app_module.DELETE_CACHE == (1800, 3600)
    two_hours_ago = time.time() - 7200
    names = ["rudistil-bench-old", "rudistil-download-fill-mask-old", "rudistil-run-old", "rudistil-bench-new",
             "someone-elses-old", "rudistil-publish-old"]
    for name in names:
        (tmp_path / name).mkdir()
        (tmp_path / name / "file.csv").write_text("x", encoding="utf-8")
        if name.endswith("-old"):
            os.utime(tmp_path / name, (two_hours_ago, two_hours_ago))
    removed = remove_old_folders(root=tmp_path)
    assert sorted(p.name for p in removed) == ["rudistil-bench-old", "rudistil-download-fill-mask-old",
                                               "rudistil-run-old"]
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "runs") == [
        "rudistil-bench-new", "rudistil-publish-old", "someone-elses-old"]


# ---------------------------------------------------------------------------------------------------------------------
# 6. A shared Space names only what the user gave


SPACE_REFUSAL = ("On this Space only the listed models, a shared run's run:RUN_ID and Hub ids of the form owner/name "
                 "can be loaded; '{}' is none of these.")


def test_on_a_space_every_path_gets_the_same_answer_whatever_exists(tiny_teacher_dir, tiny_student_dir, runs_dir,
                                                                    tmp_path):
    from ui.context import AppContext

    ctx = AppContext("bundled-teacher", "bundled-student", on_space=True)
    (tmp_path / "a-file.txt").write_text("x", encoding="utf-8")
    paths = [str(tiny_teacher_dir), "/etc/passwd", "/no/such/folder", str(tmp_path / "a-file.txt"), "~", "./assets",
             "../", str(runs_dir)]
    for path in paths:
        with pytest.raises(ValueError) as error:
            ctx.check_name(path)
        assert str(error.value) == SPACE_REFUSAL.format(path)
    assert ctx.check_name(" bundled-teacher ") == "bundled-teacher" and ctx.check_name(TINY_ARCH) == TINY_ARCH


def test_on_a_space_an_unknown_run_and_anothers_private_run_get_the_same_answer(tiny_student_dir, runs_dir):
    from ui import distill_tab
    from ui.context import AppContext
    from ui.page_text import markdown_text

    make_run(runs_dir, "20250101-000000-priv", tiny_student_dir, public=False)
    make_run(runs_dir, "20250101-000000-open", tiny_student_dir, public=True)
    ctx = AppContext("bundled-teacher", "bundled-student", on_space=True)

    def answer(run_id: str) -> str:
        with pytest.raises(ValueError) as error:
            ctx.check_name(f"run:{run_id}")
        return str(error.value).replace(run_id, "RUN")

    assert answer("20250101-000000-priv") == answer("20250101-000000-none") == (
        "No shared run is named 'RUN': on this Space a run's student can be used once its owner ticks 'Share' in the "
        "Distill tab; choose one from the model list.")
    assert ctx.check_name("run:20250101-000000-open") == "run:20250101-000000-open"
    assert "run:20250101-000000-priv" not in ctx.model_choices()
    # the Distill tab's teacher change (a handler without an API name) says the same under the teacher box, without
    # reading the run
    for name, message in [("run:20250101-000000-priv", "No shared run is named '20250101-000000-priv'"),
                          (str(tiny_student_dir), SPACE_REFUSAL.format(tiny_student_dir))]:
        _, note = distill_tab.teacher_changed(ctx, name)
        assert markdown_text(message) in note.value and str(runs_dir) not in note.value, note.value


def test_on_a_space_messages_never_show_server_folders(tiny_student_dir, runs_dir):
    import tempfile

    from ui.context import AppContext

    ctx = AppContext("bundled-teacher", "bundled-student", on_space=True)
    temp = tempfile.gettempdir()
    text = (f"no file in {runs_dir}/20250101-000000-open/final; upload {temp}/gradio/abc/my.txt; "
            f"{runs_dir.resolve()}/x")
    assert ctx.public_text(text) == "no file in runs/20250101-000000-open/final; upload gradio/abc/my.txt; runs/x"
    assert AppContext("bundled-teacher", "bundled-student").public_text(text) == text  # your own machine: as it is
    run = make_run(runs_dir, "20250101-000000-open", tiny_student_dir, public=True)
    for weights in (run / "final").glob("*.safetensors"):
        weights.unlink()  # a shared run whose student lost its weights: the loader's error names its folder
    (run / "final" / "pytorch_model.bin").unlink(missing_ok=True)
    with pytest.raises(Exception) as error:
        ctx.load("run:20250101-000000-open")
    message = message_of(error.value)
    assert str(runs_dir) not in message and temp not in message and str(Path.cwd()) not in message, message


def test_on_a_space_a_hub_id_is_sized_on_the_hub_before_anything_downloads(monkeypatch, tmp_path, runs_dir):
    from ui.context import AppContext

    fake = fake_hub.install(monkeypatch, tmp_path)
    hub_id = "DeepPavlov/rubert-base-cased-conversational"  # 713.1 MB of files the lab loads
    ctx = AppContext("bundled-teacher", "bundled-student", on_space=True, max_hub_mb=500)
    with pytest.raises(ValueError) as error:
        ctx.check_name(hub_id)
    assert str(error.value) == (f"'{hub_id}' would download 713.1 MB from the Hugging Face Hub; this Space loads "
                                "models of at most 500.0 MB: choose a smaller model or run the lab on your own "
                                "machine.")
    assert fake.info_calls == [hub_id] and not fake.downloads
    ctx.max_hub_mb = 1000
    assert ctx.check_name(hub_id) == hub_id and fake.info_calls == [hub_id]  # the size is remembered
    fake.reachable = False
    offline = AppContext("bundled-teacher", "bundled-student", on_space=True)
    with pytest.raises(ValueError) as error:
        offline.check_name("DeepPavlov/distilrubert-small-cased-conversational")
    assert str(error.value) == ("'DeepPavlov/distilrubert-small-cased-conversational' is on the Hugging Face Hub, "
                                "which this machine cannot reach, and it is not cached: choose bundled-teacher / "
                                "bundled-student, or a run's student.")
    fake.reachable, fake.metadata_fails = True, True  # the socket answers, the Hub's API does not
    with pytest.raises(ValueError) as error:
        offline.check_name("DeepPavlov/distilrubert-small-cased-conversational")
    assert "cannot reach" in str(error.value) and str(fake.cache_dir) not in str(error.value)


def test_two_visitors_failing_with_the_same_inputs_each_see_their_own_reason(monkeypatch):
    """The status line's reason was kept by action and inputs only: the first visitor to ask took the other's."""
    import gradio as gr

    from ui import errors as errors_module

    errors = errors_module.ErrorLines()
    def draw(sentences, model):
        raise ValueError(f"{errors_module.session_id()}'s reason")

    fail, line = errors.wrap("draw", draw, 2), errors.failure("Draw", "draw")
    for session in ("a", "b"):
        monkeypatch.setattr(errors_module, "session_id", lambda s=session: s)
        with pytest.raises(gr.Error):
            fail("the same sentences", "the same model")
    said = {}
    for session in ("a", "b"):
        monkeypatch.setattr(errors_module, "session_id", lambda s=session: s)
        said[session] = line("the same sentences", "the same model")
    assert said == {"a": "**Draw failed:** a's reason", "b": "**Draw failed:** b's reason"}

"""The speed benchmark: validation messages, a tiny real measurement, the correctness check of fast mode, FLOPs."""
from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoModelForMaskedLM

from core import bench
from core.bench import cli as bench_cli
from core.bench import engine
from core.bench import plan as bench_plan
from core.bench.engine import PeakMemory, percentile
from core.bench.plan import (
    CARD_SEQ_LEN,
    MEMORY_HEADROOM,
    encoder_flops,
    forward_memory_bytes,
    memory_needed_bytes,
    model_shape,
    validate,
)
from core.bench.report import is_result_file
from core.bench.variants import Variant, check_variant, fast_candidates, random_tokens, reference_variant
from core.formatting import error_sentence
from core.models import zoo
from tests.support.models import REPO, tiny_bert

TEACHER_ARCH, STUDENT_ARCH = bench.CARD_MODELS
ROW_FIELDS = ["model", "mode", "device", "dtype", "batch_size", "seq_len", "params", "size_mb", "latency_s",
              "latency_p90_s", "throughput_samples_s", "peak_mem_mb"]


def config(**changes) -> bench.BenchConfig:
    return bench.BenchConfig(**{"models": [TEACHER_ARCH], "batch_sizes": [1], "seq_len": 32, **changes})


# ---- validation -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("changes, message", [
    (dict(models=["no-such-model"]), "Unknown model 'no-such-model'"),
    (dict(batch_sizes=[1, 0]), "Batch size must be at least 1, not 0"),
    (dict(seq_len=0), "Sequence length must be at least 1"),
    (dict(seq_len=513), "longer than arch:rubert-base-cased-conversational accepts \\(512 tokens\\)"),
    (dict(modes=["turbo"]), "Modes must be among reference, fast"),
    (dict(models=["arch:no-such-arch"]), "No architecture named 'no-such-arch'"),
])
def test_bad_requests_are_refused_with_a_sentence(changes, message):
    with pytest.raises(ValueError, match=message):
        validate(config(**changes))


def test_seq_len_limit_comes_from_the_models_own_config(tiny_teacher_dir):
    assert model_shape(str(tiny_teacher_dir)).max_seq_len == 128  # the fixture's max_position_embeddings
    validate(config(models=[str(tiny_teacher_dir)], seq_len=128))
    with pytest.raises(ValueError, match="accepts \\(128 tokens\\)"):
        validate(config(models=[str(tiny_teacher_dir)], seq_len=129))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_on_a_machine_without_gpu():
    with pytest.raises(ValueError, match="no usable NVIDIA GPU"):
        validate(config(device="cuda"))


def test_memory_estimate_refuses_a_batch_that_cannot_fit(monkeypatch):
    monkeypatch.setattr(bench_plan, "free_memory_bytes", lambda device: 4 * 2**30)  # a machine with 4 GiB free
    with pytest.raises(ValueError, match="needs about .* GiB .* free; choose a smaller batch size"):
        validate(config(batch_sizes=[1, 256], seq_len=512))
    shape = model_shape(TEACHER_ARCH)
    # An eager forward pass at batch 64 x 512 keeps 3 fp32 attention maps of (64, 12, 512, 512) alive.
    maps = 3 * 64 * 12 * 512 * 512 * 4
    assert forward_memory_bytes(shape, 64, 512, "reference", 4) > maps
    assert memory_needed_bytes(shape, 1, 512, "reference") > shape.params * 4


@pytest.mark.parametrize("free, need_unit, said_free", [
    (3 * 2**30, "GiB", "3.0 GiB"),  # 3 x 2^30 bytes: 3.2 GB in decimal units
    (300 * 2**20, "GiB", "300 MiB"),
    (10**8, "MiB", "95 MiB"),  # 100 MB in decimal units
])
def test_memory_refusal_names_binary_sizes_by_their_binary_units(monkeypatch, free, need_unit, said_free):
    monkeypatch.setattr(bench_plan, "free_memory_bytes", lambda device: free)
    batch = 256 if need_unit == "GiB" else 1
    with pytest.raises(ValueError) as refused:
        validate(config(models=[STUDENT_ARCH], batch_sizes=[batch], seq_len=128 if batch == 1 else 512))
    said = str(refused.value)
    assert re.search(rf"needs about [\d,.]+ {need_unit} for {STUDENT_ARCH}", said), said
    assert f"but only {said_free} of CPU memory is free" in said


def test_memory_refusal_follows_free_memory(monkeypatch):
    shape = model_shape(STUDENT_ARCH)
    need = memory_needed_bytes(shape, 4, 128, "fast")
    monkeypatch.setattr(bench_plan, "free_memory_bytes", lambda device: need)  # estimate above 85% of free memory
    with pytest.raises(ValueError, match="memory is free"):
        validate(config(models=[STUDENT_ARCH], batch_sizes=[4], seq_len=128, modes=["fast"]))
    monkeypatch.setattr(bench_plan, "free_memory_bytes", lambda device: need / MEMORY_HEADROOM + 1)
    validate(config(models=[STUDENT_ARCH], batch_sizes=[4], seq_len=128, modes=["fast"]))


@pytest.mark.cli
def test_cli_bad_input_exits_2_with_one_stderr_line():
    done = subprocess.run([sys.executable, "-m", "core.bench", "--models", "no-such-model"], cwd=REPO,
                          capture_output=True, text=True, timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2
    assert done.stderr.splitlines() == [done.stderr.strip()] and done.stderr.startswith("error: Unknown model")
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("argv, start", [
    (["--batch-sizes", "1,x"], "error: Batch sizes must be whole numbers"),
    (["--seq-len", "many"], "error: argument --seq-len: invalid int value"),
    (["--seq-len", "600"], "error: Sequence length 600 is longer than"),
    (["--batch-sizes", "0"], "error: Batch size must be at least 1"),
])
def test_cli_argument_errors_are_one_line(argv, start, capsys):
    try:
        code = bench_cli.main(argv)
    except SystemExit as exit_:  # argparse's own checks
        code = exit_.code
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(start) and err.count("\n") == 1


# the command lines of the abuse audit (issue 13, item 15): one stderr line, exit 2, nothing measured or written
@pytest.mark.parametrize("case, start", [
    ("long-model", "error: Model names have at most 200 characters; one has 300."),
    ("threads", f"error: --threads must be from 1 to {os.cpu_count()} (this machine's CPU count), not 100,000."),
    ("json-folder", "error: --json {tmp} is a folder; give a file name such as {tmp}/bench.json."),
    ("json-unwritable", "error: --json /proc/bench.json cannot be written: the folder /proc is not writable"),
    ("json-missing-folder", "error: --json {tmp}/no/such/bench.json cannot be written: the folder {tmp}/no/such does "
                            "not exist; make it first"),
])
def test_audited_command_lines_are_one_line_exit_2_before_measuring(case, start, tmp_path, capsys, monkeypatch):
    if case == "json-unwritable" and not Path("/proc/self").is_dir():
        pytest.skip("no /proc on this machine")
    monkeypatch.setattr(bench_cli, "run_benchmark", lambda *a, **k: pytest.fail("measured despite the error"))
    argv = {"long-model": ["--models", "x" * 300], "threads": ["--threads", "100000"],
            "json-folder": ["--json", str(tmp_path)], "json-unwritable": ["--json", "/proc/bench.json"],
            "json-missing-folder": ["--json", str(tmp_path / "no" / "such" / "bench.json")]}[case]
    code = bench_cli.main(["--models", "arch:distilrubert-tiny-cased-conversational-v1", "--seq-len", "32", *argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(start.format(tmp=tmp_path)) and err.count("\n") == 1, err
    assert list(tmp_path.iterdir()) == []


FOREIGN_FILES = {  # what a mistyped --json path may hold, none of it a result of this command
    "notes": "measured by hand: 0.12 s\n",
    "model-config": json.dumps({"model_type": "bert", "hidden_size": 768}),
    "json-list": json.dumps([{"rows": []}]),
    "half-a-result": json.dumps({"rows": [], "machine": {}}),
    "another-tools-result": (REPO / "assets" / "results" / "gpu_check_h200.json").read_text(encoding="utf-8"),
}


@pytest.mark.parametrize("kind", FOREIGN_FILES)
def test_cli_refuses_to_overwrite_a_file_it_did_not_write(kind, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench_cli, "run_benchmark", lambda *a, **k: pytest.fail("measured despite the error"))
    path = tmp_path / "bench.json"
    path.write_text(FOREIGN_FILES[kind], encoding="utf-8")
    code = bench_cli.main(["--models", TEACHER_ARCH, "--seq-len", "32", "--json", str(path)])
    assert code == 2
    assert capsys.readouterr().err == (f"error: --json {path} already exists and is not a benchmark result of this "
                                       "command; give a new file name, or move or delete that file first.\n")
    assert path.read_text(encoding="utf-8") == FOREIGN_FILES[kind]


def test_result_files_are_told_from_other_files(tmp_path):
    assert is_result_file(REPO / "assets" / "results" / "bench_card_cpu.json")  # an earlier one, as shipped
    assert not is_result_file(REPO / "assets" / "results" / "gpu_check_h200.json")
    binary = tmp_path / "weights.bin"
    binary.write_bytes(bytes(range(256)))
    assert not is_result_file(binary)


@pytest.mark.parametrize("below", ["bench.json", "more/bench.json"])
def test_cli_refuses_a_json_path_through_a_file(below, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(bench_cli, "run_benchmark", lambda *a, **k: pytest.fail("measured despite the error"))
    (tmp_path / "notes.txt").write_text("keep me", encoding="utf-8")
    code = bench_cli.main(["--models", TEACHER_ARCH, "--seq-len", "32", "--json", str(tmp_path / "notes.txt" / below)])
    assert code == 2
    assert capsys.readouterr().err == (f"error: --json {tmp_path}/notes.txt/{below} cannot be written: "
                                       f"{tmp_path}/notes.txt is a file, not a folder.\n")
    assert (tmp_path / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_cli_help_says_which_files_json_replaces(capsys):
    with pytest.raises(SystemExit):
        bench_cli.main(["--help"])
    assert "an earlier result of this command there is replaced, any other existing file is refused" in " ".join(
        capsys.readouterr().out.split())


@pytest.mark.slow
def test_cli_replaces_its_own_earlier_result_and_nothing_else(tiny_teacher_dir, tmp_path, capsys, monkeypatch):
    path = tmp_path / "bench.json"
    path.write_text("", encoding="utf-8")  # an empty file holds nothing to lose
    tiny = ["--models", str(tiny_teacher_dir), "--modes", "reference", "--seq-len", "16", "--runs", "1",
            "--warmup", "0", "--json", str(path)]
    assert bench_cli.main([*tiny, "--batch-sizes", "1"]) == 0
    assert [r["batch_size"] for r in json.loads(path.read_text(encoding="utf-8"))["rows"]] == [1]
    assert bench_cli.main([*tiny, "--batch-sizes", "2"]) == 0  # its own earlier result: replaced
    assert [r["batch_size"] for r in json.loads(path.read_text(encoding="utf-8"))["rows"]] == [2]
    capsys.readouterr()
    # a file that appears at the path while the benchmark measures is kept, and the command says why it wrote nothing
    measure = bench_cli.run_benchmark

    def measure_while_someone_writes(*args, **kwargs):
        result = measure(*args, **kwargs)
        path.write_text("notes written meanwhile\n", encoding="utf-8")
        return result

    monkeypatch.setattr(bench_cli, "run_benchmark", measure_while_someone_writes)
    assert bench_cli.main([*tiny, "--batch-sizes", "1"]) == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: --json {path} already exists and is not a benchmark result of this command; give a new file name, "
        "or move or delete that file first.")
    assert path.read_text(encoding="utf-8") == "notes written meanwhile\n"


# ---- a tiny real measurement ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_tiny_measurement_writes_rows_with_every_field(tiny_teacher_dir, tiny_student_dir, tmp_path, capsys):
    path = tmp_path / "bench.json"
    models = f"{tiny_teacher_dir},{tiny_student_dir}"
    assert bench_cli.main(["--models", models, "--batch-sizes", "1,2", "--seq-len", "32", "--runs", "1",
                           "--warmup", "1", "--json", str(path)]) == 0
    printed = capsys.readouterr()
    assert "estimated time" in printed.err.splitlines()[0] and "estimated time" not in printed.out
    result = json.loads(path.read_text(encoding="utf-8"))
    # progress (the bar, a line per measurement) on stderr; stdout holds the tables alone
    assert "warm-up" not in printed.out and "%|" not in printed.out and "samples/s," not in printed.out
    assert printed.err.count("samples/s, ") == 8 and "%|" in printed.err
    # no card figures for these models: one line says why instead of an empty table
    assert [line for line in printed.out.splitlines() if line.startswith("Beside the card")] == [
        "Beside the card: nothing to compare, because the card has CPU figures only for DeepPavlov's teacher and its "
        "base and small students (arch:<name> or their Hub ids), and none of them was measured."]
    # a teacher/student ratio at every batch size measured, 2 included (the card used 1 and 16 only)
    pairs = [line for line in result["speedups"] if "fast_speedup" not in line]
    assert [line["batch_size"] for line in pairs] == [1, 2]
    for line in pairs:
        teacher, student = (next(r for r in result["rows"] if r["model"] == str(model) and r["mode"] == "reference"
                                 and r["batch_size"] == line["batch_size"]) for model in (tiny_teacher_dir,
                                                                                           tiny_student_dir))
        assert line["reference_latency_ratio"] == round(teacher["latency_s"] / student["latency_s"], 2)
        assert line["fast_latency_ratio"] is not None and line["fast_throughput_ratio"] is not None
        printed_line = next(o for o in printed.out.splitlines() if o.lstrip().startswith(line["pair"])
                            and o.split()[3] == str(line["batch_size"]))
        # columns: pair (3 words), batch_size, card_latency_ratio, reference_latency_ratio, ...
        assert float(printed_line.split()[5]) == line["reference_latency_ratio"]
    rows = result["rows"]
    assert len(rows) == 2 * 2 * 2  # models x modes x batch sizes
    assert {"cpu_model", "physical_cores", "torch_threads", "amx_bf16", "gpu", "torch", "transformers"} <= set(
        result["machine"])
    assert result["peak"]["float32"]["measured_gflops"] > 0
    for row in rows:
        assert all(row[name] is not None for name in ROW_FIELDS + ["gflops", "share_of_peak"])
        model = zoo.load(row["model"]).model
        params = sum(p.numel() for p in model.parameters())  # counted independently of model_summary
        assert row["params"] == params and row["size_mb"] == pytest.approx(params * 4 / 2**20, abs=0.05)
        assert row["seq_len"] == 32 and row["device"] == "cpu" and row["runs"] == 1
        assert 0 < row["latency_s"] <= row["latency_p90_s"] < 30
        assert row["throughput_samples_s"] == pytest.approx(row["batch_size"] / row["latency_s"], rel=1e-3)
        assert 0 < row["peak_mem_mb"] < 64  # the tiny model's needs, not the process's hundreds of MB
        layers = model.config.num_hidden_layers if model.config.model_type == "bert" else model.config.n_layers
        flops = encoder_flops(layers, 32, 64, 32) * row["batch_size"]
        assert row["gflops"] == pytest.approx(flops / row["latency_s"] / 1e9, rel=0.02, abs=0.06)
        assert (row["dtype"] == "float32 (eager)") == (row["mode"] == "reference")
        if row["mode"] == "reference":
            assert row["check"] == ""
        else:
            assert ">=" in row["check"]  # the fast path it timed passed its check
            assert "ms at batch 1" in row["tried"] or "failed the check" in row["tried"]
    assert {line["model"] for line in result["card"]} == {str(tiny_teacher_dir), str(tiny_student_dir)}


def test_the_plan_estimates_time_before_anything_runs():
    plan = bench.make_plan(bench.BenchConfig())  # the card reproduction
    assert [(j.model, j.mode, j.batch_size) for j in plan.jobs][:2] == [(TEACHER_ARCH, "reference", 1),
                                                                         (TEACHER_ARCH, "reference", 16)]
    assert len(plan.jobs) == 8 and 10 < plan.estimate_s < 3600
    teacher16 = next(j for j in plan.jobs if j.model == TEACHER_ARCH and j.batch_size == 16 and j.mode == "reference")
    student16 = next(j for j in plan.jobs if j.model == STUDENT_ARCH and j.batch_size == 16 and j.mode == "reference")
    assert teacher16.run_s == pytest.approx(2 * student16.run_s, rel=0.01)  # twice the FLOPs
    assert "estimated time" in plan.describe()


def stand_in_peaks(monkeypatch) -> None:
    """The machine's matmul limit, which neither progress nor peak memory uses, as a stand-in: a second spared."""
    monkeypatch.setattr(engine, "measure_peaks", lambda device, dtypes: bench.Peaks(
        {dtype: (1e12, None) for dtype in dtypes}, {str(dtype): "stand-in" for dtype in dtypes}))


def test_a_measurement_names_its_first_pass_before_that_pass_runs(monkeypatch):
    """A real-size model's first (warm-up) pass can take a minute; the line names it as it starts, not once it has
    ended, and counts the warm-up passes as it counts the timed ones."""
    stand_in_peaks(monkeypatch)
    said = []
    forward_times = engine.iter_forward_times

    def passes_told(*args, **kwargs):
        for seconds in forward_times(*args, **kwargs):
            said.append("(a pass ended)")
            yield seconds

    monkeypatch.setattr(engine, "iter_forward_times", passes_told)
    cfg = config(models=[TINY_ARCH], batch_sizes=[1, 2], seq_len=16, modes=["reference"], runs=2, warmup=2)
    for event in bench.iter_benchmark(cfg):
        if isinstance(event, bench.Progress) and " batch " in event.message:
            said.append(event.message.removeprefix(f"{TINY_ARCH} reference "))
    one = ["warm-up 1/2 ...", "(a pass ended)", "warm-up 1/2", "(a pass ended)", "warm-up 2/2", "(a pass ended)",
           "run 1/2", "(a pass ended)", "run 2/2"]
    assert said == [f"batch 1: {line}" if "pass" not in line else line for line in one] + \
        [f"batch 2: {line}" if "pass" not in line else line for line in one]


@pytest.mark.parametrize("warmup, extra_s, first", [(2, 0.0, "warm-up 1/2"), (0, 0.0, "run 1/5"),
                                                    (1, 30.0, "warm-up 1/1, compiling")])
def test_the_first_pass_is_named_as_the_others_are(warmup, extra_s, first):
    assert engine.first_pass(bench_plan.Job(TINY_ARCH, "fast", 1, 5, warmup, 0.1, extra_s)) == first


@pytest.mark.parametrize("message, line", [
    ("Loaded arch:x.", "Loaded arch:x."),
    (f"{STUDENT_ARCH} reference batch 16: warm-up 1/2 ...",
     "arch:distilrubert-base-… reference batch 16: warm-up 1/2 ..."),
    ("arch:distilrubert-tiny-cased-conversational-v1 reference batch 1: run 3/5",
     "arch:distilrubert-tiny-…tional-v1 reference batch 1: run 3/5"),
])
def test_the_progress_line_keeps_what_is_under_way_in_view(message, line):
    """A real model's name, mode and batch size fill the 60 characters before the bar: the line is cut in its middle,
    so the pass under way stays in view."""
    assert bench_cli.bar_text(message) == line and len(line) <= bench_cli.BAR_TEXT


def test_the_command_line_shows_the_warm_up_under_way(monkeypatch, capsys):
    stand_in_peaks(monkeypatch)
    assert bench_cli.main(["--models", TINY_ARCH, "--batch-sizes", "1", "--seq-len", "16", "--modes", "reference",
                           "--runs", "1", "--warmup", "1"]) == 0
    shown = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any(line.startswith("arch:distilrubert-tiny-…1 reference batch 1: warm-up 1/1 ...") for line in shown)


@pytest.mark.parametrize("given, measured, note", [
    ([1, 1, 1], [1], "batch size 1 was given three times; it is measured once."),
    ([16, 1, 16], [16, 1], "batch size 16 was given twice; it is measured once."),
    ([4] * 5, [4], "batch size 4 was given 5 times; it is measured once."),
    ([1, 8, 1, 16, 8, 8], [1, 8, 16], "batch sizes 1 and 8 were given more than once; each is measured once."),
    ([1, 16], [1, 16], None),
])
def test_a_batch_size_given_more_than_once_is_measured_once_and_said_so(given, measured, note):
    plan = bench.make_plan(config(batch_sizes=given, modes=["reference"]))
    assert plan.config.batch_sizes == measured and [j.batch_size for j in plan.jobs] == measured
    assert plan.skip_lines() == ([note] if note else [])


def test_the_estimate_and_the_command_line_tell_of_a_repeated_batch_size(runs_dir, monkeypatch, capsys):
    from ui import bench_estimate
    from ui.context import AppContext

    note = "batch size 1 was given three times; it is measured once."
    line = bench_estimate.estimate_benchmark(AppContext("bundled-teacher", "bundled-student"), [STUDENT_ARCH], "cpu",
                                             "1,1,1", 32, ["reference"], 1, False)
    assert line.startswith("**Before you run:** 1 measurement of 1 model;") and f"*Note: {note}*" in line

    def stop_before_measuring(*args, **kwargs):
        raise ValueError("Stopped before measuring.")

    monkeypatch.setattr(bench_cli, "run_benchmark", stop_before_measuring)
    bench_cli.main(["--models", STUDENT_ARCH, "--batch-sizes", "1,1,1", "--seq-len", "32", "--modes", "reference"])
    assert f"note: {note}" in capsys.readouterr().err.splitlines()


# ---- peak memory: what the measured model needs, not what the process holds ------------------------------------

@pytest.fixture(scope="module")
def sized_models(tmp_path_factory, tiny_tokenizer) -> dict[str, Path]:
    """Two random BERTs saved as model folders: "big" (4 layers, 256 wide, about 9 MB) and "small" (2 x 32)."""
    dirs = {}
    for name, layers, hidden in (("big", 4, 256), ("small", 2, 32)):
        dirs[name] = tmp_path_factory.mktemp(f"sized-{name}")
        tiny_bert(len(tiny_tokenizer), layers=layers, hidden=hidden).save_pretrained(dirs[name])
        tiny_tokenizer.save_pretrained(dirs[name])
    return dirs


def memory_rows(model_dirs: list[Path], monkeypatch, load=None, modes=("reference",)) -> list[dict]:
    """Rows of a real CPU benchmark (batch 8 x 64 tokens, 1 warm-up, 2 runs); the machine's matmul limit, which
    peak memory does not use, is a stand-in to spare a second of measuring per call."""
    monkeypatch.setattr(engine, "measure_peaks", lambda device, dtypes: bench.Peaks(
        {dtype: (1e12, None) for dtype in dtypes}, {str(dtype): "stand-in" for dtype in dtypes}))
    cfg = config(models=[str(d) for d in model_dirs], batch_sizes=[8], seq_len=64, modes=list(modes), runs=2,
                 warmup=1)
    return bench.run_benchmark(cfg, load or bench_plan.default_loader)["rows"]


def plain_weights_mb(model: torch.nn.Module, dtype: torch.dtype = torch.float32) -> float:
    """Parameters (a tied pair yielded once by parameters()) at `dtype` plus buffers at their own, in MiB."""
    params = sum(p.numel() for p in model.parameters()) * torch.tensor([], dtype=dtype).element_size()
    return (params + sum(b.numel() * b.element_size() for b in model.buffers())) / 2**20


@pytest.mark.slow
def test_peak_memory_ignores_what_else_the_process_holds(sized_models, monkeypatch):
    """The old figure, the process's resident set, grew by all 300 MB held elsewhere; the new one stays put."""
    before, = memory_rows([sized_models["small"]], monkeypatch)
    held = torch.ones(300 * 2**20 // 4)  # 300 MiB, written, so resident and allocated
    with_held, = memory_rows([sized_models["small"]], monkeypatch)
    assert held.sum() == held.numel()  # kept alive through the second measurement
    assert with_held["peak_mem_mb"] == pytest.approx(before["peak_mem_mb"], abs=30)


@pytest.mark.slow
def test_a_bigger_model_shows_more_memory_than_a_smaller_one_measured_after_it(sized_models, monkeypatch):
    """As in the app, the big model stays loaded (its cache) while the small one is measured after it."""
    loaded: dict[str, zoo.LoadedModel] = {}

    def cached(name: str, attentions: bool) -> zoo.LoadedModel:
        return loaded.setdefault(name, zoo.load(name, attentions=attentions))

    big, small = memory_rows([sized_models["big"], sized_models["small"]], monkeypatch, load=cached)
    big_weights, small_weights = (plain_weights_mb(loaded[str(sized_models[n])].model) for n in ("big", "small"))
    assert big_weights - small_weights > 8  # the two really differ by several MB of weights
    assert big["peak_mem_mb"] - small["peak_mem_mb"] > 0.9 * (big_weights - small_weights)


@pytest.mark.slow
def test_peak_memory_is_at_least_the_weights(sized_models, monkeypatch):
    rows = memory_rows([sized_models["big"]], monkeypatch, modes=("reference", "fast"))
    model = zoo.load(str(sized_models["big"])).model
    for row in rows:
        dtype = torch.bfloat16 if "bfloat16 weights" in row["dtype"] else torch.float16 if "float16 weights" in \
            row["dtype"] else torch.float32
        assert row["peak_mem_mb"] >= plain_weights_mb(model, dtype) - 0.05, row  # rows round to 0.1 MB
        assert row["peak_mem_mb"] < plain_weights_mb(model, dtype) + 200, row  # no process-wide figure


def test_weights_bytes_counts_the_tied_embeddings_once(tiny_bert_reference):
    _, reference = tiny_bert_reference
    model = reference.model
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight  # tied
    assert engine.weights_bytes(reference) == plain_weights_mb(model) * 2**20
    as_runtime = Variant("onnxruntime", "fp32", model, torch.float32, runtime=True, size_mb=12.5)
    assert engine.weights_bytes(as_runtime) == 12.5 * 2**20  # a runtime's own files, as the row's size_mb


@pytest.mark.skipif(engine.MALLOC_IN_USE is None, reason="no glibc mallinfo2 here")
def test_peak_memory_sees_blocks_that_reuse_resident_pages():
    """Activations that reuse pages freed earlier and still resident leave the resident set (the old figure) where
    it was; glibc's count of allocated bytes sees them, and the growth follows that count."""
    size = 100 * 2**10 // 4  # 100 KiB, below glibc's mmap threshold: served from its heap
    # torch takes its memory through posix_memalign (64-byte alignment), which asks glibc for a chunk larger than the
    # block: holes of the block's own size were often too small, and the blocks went to fresh pages instead
    holes = [torch.ones(120 * 2**10 // 4) for _ in range(160)]
    kept = holes[1::2]  # every other one stays, so the freed ones neither merge nor reach the heap's top
    holes.clear()  # 80 holes of 120 KiB inside the heap, still resident
    with PeakMemory("cpu") as memory:
        blocks = [torch.ones(size) for _ in range(80)]
        # held until the sampler has read the counters meanwhile, not for a set time: on a busy machine its thread
        # can wait for a CPU far longer than its 5 ms, and the reading at the end comes after the blocks are freed
        read, deadline = memory.samples, time.monotonic() + 60
        while memory.samples < read + 2 and time.monotonic() < deadline:
            time.sleep(0.005)
        blocks.clear()
    assert len(kept) == 80 and memory.rss_growth_bytes < 2**20
    assert memory.basis == "malloc" and 7.5 * 2**20 < memory.growth_bytes < 9 * 2**20  # 80 x 100 KiB = 7.8 MiB
    assert memory.peak_bytes == memory.growth_bytes  # no weights given


# ---- correctness of fast mode ---------------------------------------------------------------------------------

TINY_ARCH = "arch:distilrubert-tiny-cased-conversational-v1"  # the real tiny-v1 architecture, random weights


@pytest.fixture(scope="module")
def tiny_bert_reference(tiny_teacher_dir):
    """The conftest's 4-layer, 32-wide random BERT teacher (a trained-model folder) and its reference variant."""
    loaded = zoo.load(str(tiny_teacher_dir), attentions=True)
    return loaded, reference_variant(loaded.model, "cpu")


@pytest.fixture(scope="module")
def tiny_v1_arch_reference():
    """DistilRuBERT-tiny-v1's architecture with random weights, and its reference variant."""
    loaded = zoo.load(TINY_ARCH, attentions=True)
    return loaded, reference_variant(loaded.model, "cpu")


def plain_mean_cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double(), b.double()
    return float(((a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1))).mean())


def test_fast_candidates_pass_the_cosine_check_on_random_weights(tiny_v1_arch_reference):
    loaded, reference = tiny_v1_arch_reference
    candidates = fast_candidates(loaded.model, "cpu")
    assert candidates and all(c.model is not loaded.model for c in candidates)
    assert loaded.model.config._attn_implementation == "eager"  # the shared model is left as it was
    for candidate in candidates:
        check = check_variant(reference, candidate, trained=False)
        assert check.passed and check.metric == "hidden-state cosine" and check.value >= 0.999
        inputs = random_tokens(loaded.model.config.vocab_size, 2, 128, "cpu", seed=1)
        with torch.inference_mode():
            want = reference.model.base_model(**inputs).last_hidden_state
            with candidate.context():
                got = candidate.encoder(**inputs).last_hidden_state
        assert check.value == pytest.approx(plain_mean_cosine(want, got), abs=1e-6)


def corrupted(variant: Variant) -> Variant:
    """The same path with the first layer's query, value and feed-forward weights scrambled: a wrong fast path."""
    broken = copy.deepcopy(variant)
    encoder = broken.model.base_model
    if encoder.config.model_type == "bert":
        layer = encoder.encoder.layer[0]
        linears = (layer.attention.self.query, layer.attention.self.value, layer.intermediate.dense)
    else:
        layer = encoder.transformer.layer[0]
        linears = (layer.attention.q_lin, layer.attention.v_lin, layer.ffn.lin1)
    generator = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for linear in linears:
            scrambled = torch.randn(linear.weight.shape, generator=generator) * linear.weight.float().std() * 3
            linear.weight.copy_(scrambled.to(linear.weight.dtype))
    return broken


def test_the_check_fails_for_a_wrong_fast_path(tiny_v1_arch_reference):
    loaded, reference = tiny_v1_arch_reference
    for candidate in fast_candidates(loaded.model, "cpu"):
        check = check_variant(reference, corrupted(candidate), trained=False)
        assert not check.passed and check.value < 0.99


def test_top1_agreement_check_for_trained_models(tiny_bert_reference):
    loaded, reference = tiny_bert_reference
    sdpa = copy.deepcopy(loaded.model)
    sdpa.set_attn_implementation("sdpa")
    exact = Variant("fast", "float32 (sdpa)", sdpa, torch.float32)
    check = check_variant(reference, exact, trained=True, tokenizer=loaded.tokenizer)
    assert check.metric == "top-1 agreement" and check.positions >= 50 and check.passed
    wrong = check_variant(reference, corrupted(exact), trained=True, tokenizer=loaded.tokenizer)
    assert not wrong.passed and wrong.value < 0.99


# ---- FLOPs, published figures and ratios ----------------------------------------------------------------------

def counted_flops(arch: str, seq_len: int) -> float:
    """FLOPs of the encoder as torch's own counter sees them, on meta tensors (nothing allocated)."""
    with torch.device("meta"):
        model = AutoModelForMaskedLM.from_config(zoo.arch_config(arch), attn_implementation="eager")
        with FlopCounterMode(display=False) as counter:
            model.base_model(input_ids=torch.zeros(1, seq_len, dtype=torch.long))
    return counter.get_total_flops()


@pytest.mark.parametrize("name, reference_gflop", [(TEACHER_ARCH, 96.6), (STUDENT_ARCH, 48.3)])
def test_flops_match_the_reference_and_torchs_counter(name, reference_gflop):
    flops = model_shape(name).flops_per_sample(512)
    assert flops / 1e9 == pytest.approx(reference_gflop, rel=0.01)
    assert flops == pytest.approx(counted_flops(name[5:], 512), rel=1e-3)
    assert model_shape(name).flops_per_sample(128) == pytest.approx(counted_flops(name[5:], 128), rel=1e-3)


def test_published_figures_and_speedups():
    assert bench.published(TEACHER_ARCH)["cpu_latency_s"] == 0.655
    assert bench.published("DeepPavlov/distilrubert-base-cased-conversational")["size_mb"] == 517
    rows = measured((STUDENT_ARCH, "reference", 1, 0.2), (TEACHER_ARCH, "reference", 1, 0.5),
                    (TEACHER_ARCH, "reference", 16, 6.0), (STUDENT_ARCH, "reference", 16, 3.2),
                    (STUDENT_ARCH, "fast", 1, 0.05))
    batch1, batch16, *per_model = bench.speedups(rows, "cpu")
    assert batch1["pair"].startswith(TEACHER_ARCH)  # the teacher is found by its role, not by order
    assert (batch1["batch_size"], batch16["batch_size"]) == (1, 16)
    assert batch1["card_latency_ratio"] == round(0.655 / 0.3285, 2) and batch1["card_throughput_ratio"] is None
    assert batch16["card_throughput_ratio"] == round(0.5803 / 0.3754, 2) and batch16["card_latency_ratio"] is None
    assert batch1["reference_latency_ratio"] == 2.5
    assert batch16["reference_throughput_ratio"] == round((16 / 3.2) / (16 / 6.0), 2)
    assert batch1["fast_latency_ratio"] is None
    assert per_model == [{"pair": f"{STUDENT_ARCH}: fast / reference at batch 1", "model": STUDENT_ARCH,
                          "batch_size": 1, "fast_speedup": 4.0}]
    card = {line["model"]: line for line in bench.card_comparison(rows, "cpu")}
    assert card[STUDENT_ARCH]["card_latency_s"] == 0.3285 and card[STUDENT_ARCH]["fast_latency_s"] == 0.05
    assert card[TEACHER_ARCH]["reference_throughput"] == pytest.approx(16 / 6.0)


def measured(*rows: tuple, seq_len: int = CARD_SEQ_LEN) -> list[dict]:
    """Report rows from (model, mode, batch size, latency s)."""
    return [dict(model=m, mode=mode, batch_size=b, seq_len=seq_len, latency_s=lat, throughput_samples_s=b / lat,
                 size_mb=1.0) for m, mode, b, lat in rows]


def test_ratios_at_a_batch_size_the_card_did_not_use():
    """The README's `--seq-len 128 --batch-sizes 32` example: ratios at batch 32 rather than none."""
    rows = measured((TEACHER_ARCH, "reference", 32, 4.8), (STUDENT_ARCH, "reference", 32, 2.0),
                    (TEACHER_ARCH, "fast", 32, 1.5), (STUDENT_ARCH, "fast", 32, 0.5), seq_len=128)
    pair, *fast_lines = bench.speedups(rows, "cpu")
    assert pair == {"pair": f"{TEACHER_ARCH} / {STUDENT_ARCH}", "batch_size": 32, "card_latency_ratio": None,
                    "card_throughput_ratio": None, "reference_latency_ratio": 2.4, "reference_throughput_ratio": 2.4,
                    "fast_latency_ratio": 3.0, "fast_throughput_ratio": 3.0}
    assert [line["fast_speedup"] for line in fast_lines] == [3.2, 4.0]


def test_figures_at_another_length_never_stand_beside_the_cards():
    """The card measured 512-token sequences: 128-token figures keep their own columns, the card's stay empty."""
    rows = measured((TEACHER_ARCH, "reference", 1, 0.4), (STUDENT_ARCH, "reference", 1, 0.18),
                    (TEACHER_ARCH, "reference", 16, 6.0), (STUDENT_ARCH, "reference", 16, 3.0), seq_len=128)
    card = {line["model"]: line for line in bench.card_comparison(rows, "cpu")}
    assert card[TEACHER_ARCH]["card_latency_s"] is None and card[TEACHER_ARCH]["card_throughput"] is None
    assert card[TEACHER_ARCH]["reference_latency_s"] == 0.4 and card[TEACHER_ARCH]["card_size_mb"] is not None
    batch1, batch16, *_ = bench.speedups(rows, "cpu")
    assert batch1["card_latency_ratio"] is None and batch16["card_throughput_ratio"] is None
    assert batch1["reference_latency_ratio"] == round(0.4 / 0.18, 2)
    both = rows + measured((TEACHER_ARCH, "reference", 1, 0.7), (STUDENT_ARCH, "reference", 1, 0.35))  # and at 512
    card = {line["model"]: line for line in bench.card_comparison(both, "cpu")}
    assert (card[TEACHER_ARCH]["card_latency_s"], card[TEACHER_ARCH]["reference_latency_s"]) == (0.655, 0.7)


def test_card_figures_on_a_gpu_come_from_the_cards_gpu_column():
    assert bench.card_figure(TEACHER_ARCH, "cuda", "latency") == 0.031
    assert bench.card_figure(STUDENT_ARCH, "cuda", "throughput") == 52.2495
    assert bench.card_figure(STUDENT_ARCH, "cpu", "throughput") == 0.5803
    line, = bench.card_comparison(measured((TEACHER_ARCH, "reference", 1, 0.02)), "cuda")
    assert (line["card_latency_s"], line["card_throughput"]) == (0.031, 36.4902)


@pytest.mark.parametrize("rows, reason", [
    (measured((TEACHER_ARCH, "reference", 1, 0.4)), ""),
    (measured((TEACHER_ARCH, "reference", 16, 6.0), (TEACHER_ARCH, "reference", 4, 1.5)), ""),
    (measured(("bundled-teacher", "reference", 32, 0.1), ("bundled-student", "reference", 32, 0.05)),
     "the card has CPU figures only for DeepPavlov's teacher"),
    (measured((TEACHER_ARCH, "reference", 1, 0.4), seq_len=128),
     "the card measured 512-token sequences and this run measured 128-token ones."),
    (measured((TEACHER_ARCH, "reference", 32, 0.4), (TEACHER_ARCH, "reference", 4, 0.1)),
     "this run measured batch 4, 32 only; add 1 and 16 to the batch sizes."),
])
def test_card_gap_says_why_nothing_can_be_compared(rows, reason):
    gap = bench.card_gap(rows, "cpu")
    assert gap == reason if not reason else (reason in gap and gap.endswith("."))


def test_library_errors_are_quoted_as_whole_sentences(tmp_path):
    cut_at_colon = OSError("Can't load the configuration of 'x':\n  config.json is missing")
    assert error_sentence(cut_at_colon) == "Can't load the configuration of 'x': config.json is missing."
    long = error_sentence(OSError("This sentence is complete. " * 30))
    assert long.endswith("complete.") and len(long) <= 300
    (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError) as refused:
        validate(config(models=[str(tmp_path)]))
    assert str(refused.value).startswith("Could not read the configuration of") and str(refused.value).endswith(".")


def test_percentile_matches_numpy():
    import numpy as np
    values = [0.3, 0.1, 0.7, 0.2, 0.5, 0.9, 0.4]
    assert percentile(values, 0.9) == pytest.approx(float(np.percentile(values, 90)))
    assert percentile([2.0], 0.9) == 2.0


# ---- the Benchmark tab: its charts, and the tab driven through its API ----------------------------------------

def chart_rows(batch_sizes=(1, 16), seq_len=CARD_SEQ_LEN, models=(TEACHER_ARCH, STUDENT_ARCH)) -> list[dict]:
    """Rows where the student is twice as fast and fast mode four times reference, at every batch size."""
    return measured(*[(model, mode, b, b * 0.4 / (i + 1) / (4 if mode == "fast" else 1))
                      for i, model in enumerate(models) for mode in ("reference", "fast") for b in batch_sizes],
                    seq_len=seq_len)


def test_charts_label_every_bar_and_leave_room_above_the_tallest():
    from ui import bench_plots

    for figure in (bench_plots.latency_figure(chart_rows(), "cpu"), bench_plots.throughput_figure(chart_rows(), "cpu")):
        assert [trace.name for trace in figure.data] == ["card: Xeon E5-2698 v4", "reference (here)", "fast (here)"]
        tallest = max(y for trace in figure.data for y in trace.y)
        assert figure.layout.yaxis.range[1] >= 1.15 * tallest  # the label above the tallest bar fits in the plot
        for trace in figure.data:
            assert trace.texttemplate == "%{text}" and trace.textposition == "outside" and trace.cliponaxis is False
            assert list(trace.text) == [bench_plots.value_label(y) for y in trace.y]
    throughput = bench_plots.throughput_figure(chart_rows(), "cpu")
    assert [round(y, 4) for y in throughput.data[0].y] == [0.3754, 0.5803]  # the card's own figures
    assert list(throughput.data[2].y) == pytest.approx([10.0, 20.0])  # 16 / (16 * 0.4 / 4), 16 / (16 * 0.2 / 4)


def test_the_latency_chart_is_in_milliseconds_as_the_tables_are():
    from ui import bench_plots

    figure = bench_plots.latency_figure(chart_rows(), "cpu")
    assert bench_plots.title_lines(figure)[1] == "milliseconds, lower is better"
    card, reference, fast = figure.data
    assert list(card.y) == pytest.approx([655.0, 328.5])  # the card's 0.655 s and 0.3285 s
    assert list(reference.y) == pytest.approx([400.0, 200.0]) and list(fast.y) == pytest.approx([100.0, 50.0])


def test_a_bar_without_a_value_is_left_out_rather_than_drawn_blank():
    """Plotly hides the label of a blank (None) bar and, once the streamed figure gives it a value, draws that bar
    without its label; a model not measured yet in a mode, or without a card figure, has no bar in that trace."""
    from ui import bench_plots

    streamed = chart_rows(batch_sizes=(1,), models=("bundled-teacher", "bundled-student"))[:3]  # student fast to come
    card = chart_rows(batch_sizes=(1,), models=(TEACHER_ARCH, "bundled-student"))  # the card knows the teacher only
    bundled, card_pair = ["bundled-teacher", "bundled-student"], ["rubert-base", "bundled-student"]
    for rows, models, traces in ((streamed, bundled, [("reference (here)", bundled), ("fast (here)", bundled[:1])]),
                                 (card, card_pair, [("card: Xeon E5-2698 v4", card_pair[:1]),
                                                    ("reference (here)", card_pair), ("fast (here)", card_pair)])):
        figure = bench_plots.latency_figure(rows, "cpu")
        assert [(trace.name, list(trace.x)) for trace in figure.data] == traces
        assert all(y is not None for trace in figure.data for y in trace.y)
        assert list(figure.layout.xaxis.categoryarray) == models  # in the order measured, whichever trace is first


@pytest.mark.parametrize("rows, kind, note", [
    (chart_rows(batch_sizes=(1,)), "throughput", "no card bars: the card's batch 16 was not measured"),
    (chart_rows(batch_sizes=(16,)), "latency", "no card bars: the card's batch 1 was not measured"),
    (chart_rows(seq_len=128), "throughput", "no card bars: seq_len 128, the card's is 512"),
    (chart_rows(models=("bundled-teacher", "bundled-student")), "latency",
     "no card bars: the card has no figures for these models"),
    (chart_rows(), "throughput", None),
])
def test_chart_subtitle_gives_the_real_reason_card_bars_are_missing(rows, kind, note):
    from ui import bench_plots

    figure = bench_plots.bar_figure(rows, "cpu", kind)
    lines = bench_plots.title_lines(figure)
    assert lines[0] == f"{kind.capitalize()} at batch {bench_plots.chart_batch(rows, kind)}"
    assert (lines[2] if len(lines) > 2 else None) == note
    assert ("card: Xeon E5-2698 v4" in [t.name for t in figure.data]) == (note is None)
    # plotly does not wrap titles: at ~0.55 em a character, 17 px for the title and 70% of it for a subtitle
    # line, each line fits the 430 px that half a 1000-pixel page leaves after the title's 5% inset and margins
    widths = [len(line) * 0.55 * 17 * (1 if i == 0 else 0.7) for i, line in enumerate(lines)]
    assert max(widths) < 430, lines


def test_the_run_handlers_view_sends_what_changed_and_skips_the_rest():
    import gradio as gr

    from ui import bench_run

    view = bench_run.BenchView(progress="half way", notes="notes")
    only = view.outputs("progress", "notes")
    assert len(only) == 9 and only[0] == "half way" and only[6] == "notes"
    assert all(isinstance(out, type(gr.skip())) for i, out in enumerate(only) if i not in (0, 6))
    assert view.outputs()[0] == "half way" and view.outputs()[7] is None  # everything, nothing skipped



@pytest.mark.app
def test_benchmark_tab_streams_results_and_files(tiny_teacher_dir, tiny_student_dir, runs_dir):
    import gradio as gr
    from gradio_client import Client

    from ui import bench_tab, bench_tables
    from ui.context import AppContext

    with gr.Blocks() as demo:
        for state in bench_tab.build(AppContext.create())["kept"]:  # as the app renders them, outside the tab
            state.render()
    demo.queue().launch(prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        assert set(endpoints) == {"/estimate_benchmark", "/run_benchmark", "/stop_benchmark"}
        for name in ("/estimate_benchmark", "/run_benchmark"):  # gradio_client users call them by keyword
            assert [p["parameter_name"] for p in endpoints[name]["parameters"]] == [
                "models", "device", "batch_sizes", "seq_len", "modes", "runs", "compile"]
        models = [str(tiny_teacher_dir), str(tiny_student_dir)]
        text = client.predict(models, "cpu", "1,2", 16, ["reference", "fast"], 1, False, api_name="/estimate_benchmark")
        assert text.startswith("**Before you run:** 8 measurements of 2 models; estimated time")
        refused = client.predict(models, "cpu", "1,2", 999, ["reference"], 1, False, api_name="/estimate_benchmark")
        assert "longer than" in refused
        with pytest.raises(Exception, match="Batch size must be at least 1"):
            client.predict(models, "cpu", "0", 16, ["reference"], 1, False, api_name="/run_benchmark")
        job = client.submit(models, "cpu", "1,2", 16, ["reference", "fast"], 1, False, api_name="/run_benchmark")
        progress, table, latency, throughput, card, ratios, notes, csv_path, json_path = job.result()
        assert "done: 8 measurements" in progress and len(job.outputs()) > 8  # streamed, not one final answer
        assert len(table["data"]) == 8 and "float32: measured matrix product" in notes
        assert json.loads(latency["plot"])["data"] and json.loads(throughput["plot"])["data"]
        saved = json.loads(Path(json_path).read_text(encoding="utf-8"))
        # the page shows each latency in milliseconds, three significant digits; the file keeps it in seconds
        assert [bench_tables.figure_cell(r["latency_s"], 1000) for r in saved["rows"]] == [
            row[table["headers"].index("ms")] for row in table["data"]]
        assert Path(csv_path).read_text(encoding="utf-8").startswith("model,mode,device,dtype,batch_size")
    finally:
        demo.close()


def test_timed_passes_hold_no_grad_mode_across_threads(tiny_teacher_dir):
    """Gradio resumes a streaming handler in whichever worker thread is free, and grad mode belongs to the thread: a
    model whose weights were made in inference mode (as the app's cache may hold them) must still be timed when
    every pass runs in a new thread."""
    import threading

    from core.bench.variants import iter_forward_times

    loaded = zoo.load(str(tiny_teacher_dir), attentions=True)  # eager attention in fp32: the reference variant as is
    with torch.inference_mode():
        model = copy.deepcopy(loaded.model)
    variant = reference_variant(model, "cpu")
    assert variant.model.base_model.embeddings.word_embeddings.weight.is_inference()
    passes = iter_forward_times(variant, 2, 16, runs=2, warmup=1)
    results, errors = [], []

    def one_pass():
        try:
            results.append(next(passes))
        except Exception as error:  # noqa: BLE001 - reported below with its message
            errors.append(error)

    for _ in range(3):
        thread = threading.Thread(target=one_pass)
        thread.start()
        thread.join()
    assert not errors, errors
    assert results[0] is None and all(t > 0 for t in results[1:])


def test_the_quick_rate_keeps_its_highest_reading_and_measures_again_after_five_minutes(monkeypatch):
    """Load only lowers a reading: one taken while a run trains must not slow every estimate after it."""
    from core.bench import machine

    readings, clock = iter([100e9, 30e9, 140e9]), [1000.0]
    monkeypatch.setattr(machine, "_QUICK_RATES", {})
    monkeypatch.setattr(machine, "matmul_rate", lambda dtype, device, size, seconds: next(readings))
    monkeypatch.setattr(machine.time, "monotonic", lambda: clock[0])
    assert machine.quick_rate(torch.float32) == 100e9
    clock[0] += machine.QUICK_RATE_TTL_S - 1
    assert machine.quick_rate(torch.float32) == 100e9  # reused: no new reading
    clock[0] += 2
    assert machine.quick_rate(torch.float32) == 100e9  # read again under load (30): the higher reading stands
    clock[0] += machine.QUICK_RATE_TTL_S + 1
    assert machine.quick_rate(torch.float32) == 140e9


def test_a_product_too_slow_for_its_time_is_measured_smaller(monkeypatch):
    """bf16 on a CPU without bf16 units multiplies at about 1 GFLOP/s: one 2048^3 product would take 17 s of a
    1-second calibration. The calibration then measures the largest product that takes about its time."""
    from core.bench import machine

    monkeypatch.setattr(machine, "_small_product_rate", lambda dtype, device: 1e9)
    assert machine.product_size(torch.bfloat16, "cpu", 2048, 1.0) == 768  # 2 x 768^3 = 0.9 GFLOP, 0.9 s
    assert machine.product_size(torch.bfloat16, "cpu", 2048, 0.001) == 256  # never below 256
    monkeypatch.setattr(machine, "_small_product_rate", lambda dtype, device: 20e9)
    assert machine.product_size(torch.float32, "cpu", 2048, 1.0) == 2048  # 0.86 s: as asked
    assert machine.matmul_rate(torch.float32, "cpu", size=256, seconds=0.01) > 0

"""Benchmark modes run by ONNX Runtime and OpenVINO: which can run, their check, their rows, the skip lines.

Each test that needs a runtime skips with the reason when its package is not installed."""
from __future__ import annotations

import importlib.util

import pytest
import torch

from core import bench
from core.bench import cli as bench_cli
from core.bench.runtimes import RUNTIME_MODES, available, why_not
from core.bench.runtimes.variant import runtime_variant
from core.bench.variants import reference_variant
from core.models import zoo
from tests.support.runtimes import needs

pytestmark = pytest.mark.slow

TINY_ARCH = "arch:distilrubert-tiny-cased-conversational-v1"


def test_a_missing_package_skips_its_mode_with_one_line(monkeypatch, capsys):
    real = importlib.util.find_spec
    monkeypatch.setattr(available.importlib.util, "find_spec",
                        lambda name, *a: None if name == "openvino" else real(name, *a))
    assert why_not("openvino") == "openvino is not installed (pip install openvino)"
    assert why_not("openvino-int8").startswith("openvino is not installed")
    assert why_not("reference") == "" and why_not("fast") == ""
    assert "openvino" not in available.available_modes(bench.MODES)
    config = bench.BenchConfig(models=[TINY_ARCH], batch_sizes=[1], seq_len=16, modes=["reference", "openvino"])
    plan = bench.make_plan(config)
    assert plan.config.modes == ["reference"] and plan.skip_lines() == [
        "openvino skipped: openvino is not installed (pip install openvino)."]
    only = bench.BenchConfig(models=[TINY_ARCH], batch_sizes=[1], seq_len=16, modes=["openvino"])
    with pytest.raises(ValueError, match="None of the modes asked for can run here: openvino: openvino is not"):
        bench.make_plan(only)
    assert bench_cli.main(["--models", TINY_ARCH, "--modes", "openvino", "--seq-len", "16"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "error: None of the modes asked for can run here: openvino: openvino is not installed (pip install "
        "openvino)."]


def test_runtime_modes_run_on_the_cpu_only():
    assert all(why_not(m, "cuda") == "it runs on the CPU only in this lab" for m in RUNTIME_MODES)


def test_the_card_reproduction_stays_reference_and_fast_with_an_estimate_for_more():
    assert bench.BenchConfig().modes == ["reference", "fast"]
    modes = ["reference", "fast", *available.available_modes(RUNTIME_MODES)]
    plan = bench.make_plan(bench.BenchConfig(modes=modes))
    assert len(plan.jobs) == 4 * len(modes) and "estimated time" in plan.describe()
    for mode in modes[2:]:  # export and compilation are estimated apart from the timed runs
        assert plan.setup_s[f"{mode}:{bench.CARD_MODELS[1]}"] > 0


@pytest.fixture(scope="module")
def tiny_arch():
    loaded = zoo.load(TINY_ARCH)
    return loaded, reference_variant(loaded.model, "cpu")


@pytest.mark.parametrize("mode", RUNTIME_MODES)
def test_each_runtime_mode_computes_what_reference_does(mode, tiny_arch):
    needs(mode)
    loaded, reference = tiny_arch
    variant, notes = runtime_variant(mode, reference, loaded)
    assert variant.check.metric == "hidden-state cosine" and variant.check.passed, variant.check.text()
    assert variant.setup_s > 0 and variant.size_mb > 0 and variant.runtime
    fp32_mb = zoo.model_summary(loaded.model)["size_mb"]
    if mode.endswith("int8"):  # int8 weights: at most 30% of the fp32 size on disk
        assert variant.size_mb <= 0.3 * fp32_mb, (variant.size_mb, fp32_mb)
    else:
        assert variant.size_mb == pytest.approx(fp32_mb, rel=0.05)
    inputs = {"input_ids": torch.randint(5, 1000, (2, 40)), "attention_mask": torch.ones(2, 40, dtype=torch.long)}
    inputs["attention_mask"][1, 30:] = 0  # padding: the runtime honours the mask as PyTorch does
    with torch.inference_mode():
        want = reference.encoder(**inputs).last_hidden_state
    got = variant.encoder(**inputs).last_hidden_state
    cosine = torch.nn.functional.cosine_similarity(want[1, :30], got[1, :30], dim=-1)
    assert float(cosine.mean()) > 0.999


def test_a_trained_model_is_checked_by_top1_agreement(bundled_teacher):
    needs("onnxruntime-int8")
    reference = reference_variant(bundled_teacher.model, "cpu")
    variant, _ = runtime_variant("onnxruntime-int8", reference, bundled_teacher)
    assert variant.check.metric == "top-1 agreement" and variant.check.positions > 50
    assert variant.check.value > 0.8
    assert variant.check.passed or variant.check.text().endswith("(BELOW THE THRESHOLD)")


def test_a_benchmark_with_every_mode_gives_the_same_rows(tiny_student_dir, tmp_path, capsys):
    modes = ["reference", "fast", *available.available_modes(RUNTIME_MODES)]
    if len(modes) == 2:
        pytest.skip("neither onnxruntime nor openvino is installed")
    path = tmp_path / "bench.json"
    assert bench_cli.main(["--models", str(tiny_student_dir), "--batch-sizes", "1", "--seq-len", "32", "--runs", "2",
                           "--warmup", "1", "--modes", ",".join(modes), "--json", str(path)]) == 0
    out = capsys.readouterr().out
    import json
    result = json.loads(path.read_text(encoding="utf-8"))
    rows = {r["mode"]: r for r in result["rows"]}
    assert list(rows) == modes
    for mode in modes[2:]:
        row = rows[mode]
        assert row["latency_s"] > 0 and row["latency_p90_s"] >= row["latency_s"] and row["throughput_samples_s"] > 0
        assert row["peak_mem_mb"] > 0 and row["size_mb"] > 0 and row["setup_s"] > 0 and row["check"]
        assert f"check {tiny_student_dir} {mode}: " in out
    assert {line["mode"] for line in result["speedups"] if "runtime_speedup" in line} == set(modes[2:])
    assert all(rows[m]["share_of_peak"] is None for m in modes if m == "onnxruntime-int8")

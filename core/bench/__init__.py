"""Speed of teacher and students, measured the way the DeepPavlov model card did: python -m core.bench --help

    from core.bench import BenchConfig, run_benchmark
    result = run_benchmark(BenchConfig(models=["bundled-teacher", "bundled-student"], seq_len=128))

What a notebook or the Benchmark tab calls is imported here; everything else from its own module: plan (settings,
validation, estimates), variants (reference and fast paths, their check, timing), engine (the measurement loop),
records (what a run yields), report (the card comparison and result files), profile (where the time goes),
machine (what hardware this is) and cli (the command line).
"""
from core.bench.engine import iter_benchmark, run_benchmark
from core.bench.plan import (
    CARD_BATCH,
    CARD_BATCH_SIZES,
    CARD_MODELS,
    CARD_SEQ_LEN,
    DEVICES,
    MODES,
    BenchConfig,
    Plan,
    make_plan,
)
from core.bench.records import Peaks, Progress, Row
from core.bench.report import card_comparison, card_figure, card_gap, published, report, speedups, write_json

__all__ = [
    "CARD_BATCH", "CARD_BATCH_SIZES", "CARD_MODELS", "CARD_SEQ_LEN", "DEVICES", "MODES", "BenchConfig", "Peaks", "Plan",
    "Progress", "Row", "card_comparison", "card_figure", "card_gap", "iter_benchmark", "make_plan", "published",
    "report", "run_benchmark", "speedups", "write_json",
]

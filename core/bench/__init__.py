"""Speed of teacher and students, measured the way the DeepPavlov model card did: python -m core.bench --help

    from core.bench import BenchConfig, run_benchmark
    result = run_benchmark(BenchConfig(models=["bundled-teacher", "bundled-student"], seq_len=128))

What a notebook or the Benchmark tab calls can be imported from here; everything else from its own module: limits
(the card's settings, the caps on a request), plan (settings, validation, estimates), variants (reference and fast
paths, their check, timing), engine (the measurement loop), records (what a run yields), report (the card comparison
and result files), profile (where the time goes), machine (what hardware this is), flags and cli (the command line).
"""
import importlib

# name -> the module that defines it; imported when first read (PEP 562), so `python -m core.bench --help`, which
# imports this package first, answers without loading torch
_HOMES = {
    "iter_benchmark": "engine", "run_benchmark": "engine",
    "CARD_BATCH": "limits", "CARD_BATCH_SIZES": "limits", "CARD_MODELS": "limits", "CARD_SEQ_LEN": "limits",
    "DEVICES": "plan", "MODES": "plan", "BenchConfig": "plan", "Plan": "plan", "make_plan": "plan",
    "Peaks": "records", "Progress": "records", "Row": "records",
    "card_comparison": "report", "card_figure": "report", "card_gap": "report", "published": "report",
    "result_record": "report", "speedups": "report", "write_json": "report",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'core.bench' has no attribute {name!r}")
    return getattr(importlib.import_module(f"core.bench.{_HOMES[name]}"), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])

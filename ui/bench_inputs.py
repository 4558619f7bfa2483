"""The Benchmark form's inputs, each checked by type and range, as a core.bench.BenchConfig."""
from __future__ import annotations

from core import bench
from core.bench.plan import MAX_BATCH_SIZE, MAX_RUNS, MAX_SEQ_LEN
from core.formatting import parse_int_list
from ui.input_checks import flag, model_name, one_of, shown, some_of, whole_number


def model_list_input(models) -> list[str]:
    """The Models input as names: a list (one name alone counts), blanks left out; ValueError for anything else."""
    if isinstance(models, str) or models is None:
        models = [models]
    if not isinstance(models, (list, tuple)):
        raise ValueError(f"Models must be a list of model names; got {shown(models)}.")
    return [n for n in (model_name(m) for m in models) if n]


def batch_size_input(batch_sizes) -> list[int]:
    """Batch sizes typed as "1,16" (or sent as a list of whole numbers); ValueError otherwise."""
    if isinstance(batch_sizes, (list, tuple)):
        return [whole_number(b, "Each batch size", 1, MAX_BATCH_SIZE) for b in batch_sizes]
    if not isinstance(batch_sizes, str):
        raise ValueError(f"Batch sizes must be whole numbers separated by commas, such as 1,16; got "
                         f"{shown(batch_sizes)}.")
    return parse_int_list(batch_sizes, "Batch sizes")


def runs_input(runs) -> int | None:
    """Timed runs: None or 0 for the automatic count, else a whole number up to MAX_RUNS."""
    return None if runs is None else whole_number(runs, "Timed runs", 0, MAX_RUNS) or None


def config_from_inputs(models, device, batch_sizes, seq_len, modes, runs, compile_fast) -> bench.BenchConfig:
    """The form's inputs, each checked by type and range, as a BenchConfig; ValueError with a sentence naming the
    input. Runs of 0 (or none) mean the automatic count."""
    return bench.BenchConfig(models=model_list_input(models),
                             device=one_of("cpu" if device is None else device, "Device", bench.DEVICES),
                             batch_sizes=batch_size_input(batch_sizes),
                             seq_len=whole_number(seq_len, "Sequence length", 1, MAX_SEQ_LEN),
                             modes=some_of(modes, "Modes", bench.MODES),
                             runs=runs_input(runs),
                             compile=flag(compile_fast, "torch.compile"))

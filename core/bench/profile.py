"""Where one forward pass of the encoder spends its time, by kind of operator (torch.profiler)."""
from __future__ import annotations

import contextlib
import os
import sys

import torch

from core.bench.variants import Variant, random_tokens, time_forward

PROFILE_GROUPS = (  # operator name fragments -> what a reader calls them; the first match wins
    ("matrix products", ("addmm", "aten::mm", "bmm", "matmul", "linear")),
    ("attention kernel", ("scaled_dot_product", "flash_attention", "efficient_attention")),
    ("softmax", ("softmax",)),
    ("layer norm", ("layer_norm",)),
    ("gelu", ("gelu",)),
    ("embedding", ("embedding", "index_select")),
    ("elementwise and copies", ("aten::add", "aten::mul", "aten::div", "aten::copy_", "aten::to", "masked_fill",
                                "aten::where", "contiguous", "clone", "aten::fill_")),
)


def profile_group(op_name: str) -> str:
    return next((group for group, fragments in PROFILE_GROUPS if any(f in op_name for f in fragments)), "other")


@contextlib.contextmanager
def native_stderr_hidden():
    """The profiler's C++ side writes start/stop lines straight to file descriptor 2; keep them off the console."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def profile_breakdown(variant: Variant, batch_size: int, seq_len: int, runs: int = 3) -> dict[str, float]:
    """Where one forward pass spends its time: seconds per pass by kind of operator (torch.profiler, self time)."""
    from torch.profiler import ProfilerActivity, profile
    on_gpu = variant.model.device.type == "cuda"
    time_forward(variant, batch_size, seq_len, runs=1, warmup=1)
    inputs = random_tokens(variant.model.config.vocab_size, batch_size, seq_len, str(variant.model.device))
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with native_stderr_hidden(), profile(activities=activities) as prof, torch.inference_mode(), variant.context():
        for _ in range(runs):
            variant.encoder(**inputs)
    totals: dict[str, float] = {}
    for event in prof.key_averages():
        micros = event.self_device_time_total if on_gpu else event.self_cpu_time_total
        group = profile_group(event.key)
        totals[group] = totals.get(group, 0.0) + micros / 1e6 / runs
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))

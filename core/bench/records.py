"""What a benchmark yields as it runs and keeps as results: progress, the machine's limits, one row per measurement."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from core.bench import machine


@dataclass
class Progress:
    fraction: float  # 0..1 of the estimated work
    message: str


@dataclass
class Row:
    model: str
    mode: str
    device: str
    dtype: str
    batch_size: int
    seq_len: int
    params: int
    size_mb: float
    latency_s: float  # median seconds of one forward pass of the whole batch
    latency_p90_s: float
    throughput_samples_s: float
    # MiB the measured model needs: on CPU its weights plus the most memory the warm-up and timed passes add to what
    # the process had allocated when they began; on a GPU the allocator's peak (engine.PeakMemory)
    peak_mem_mb: float
    gflops: float  # achieved GFLOP/s of the encoder's matrix products
    flops_per_sample_g: float
    share_of_peak: float | None  # of the measured matmul limit for this dtype (None: int8, no limit measured)
    share_of_theoretical: float | None
    runs: int
    check: str  # the correctness check fast mode passed ("" for reference)
    tried: str  # fast mode: the candidates timed at batch 1 before the fastest correct one was chosen
    setup_s: float | None = None  # runtime modes: seconds of export, conversion and compilation, not in any run


@dataclass
class Peaks:
    """The arithmetic limits of this machine per dtype: measured matmul rate and theoretical figure (FLOP/s)."""
    by_dtype: dict[torch.dtype, tuple[float, float | None]]
    basis: dict[str, str]

    def as_dict(self) -> dict:
        return {machine.dtype_name(dtype): {"measured_gflops": round(practical / 1e9, 1),
                                            "theoretical_gflops": round(theory / 1e9, 1) if theory else None,
                                            "theoretical_basis": self.basis[str(dtype)]}
                for dtype, (practical, theory) in self.by_dtype.items()}

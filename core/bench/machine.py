"""The machine a benchmark ran on: what it is, and how many FLOP/s it can do at most.

Two limits are reported side by side. The theoretical one is cores x clock x FLOPs per cycle of the widest matrix
unit the CPU has (or the vendor's dense tensor figure for a GPU). The practical one is what a large matrix product
actually reaches here; it is the limit a transformer can hope to approach, since its time is mostly matrix products.
"""
from __future__ import annotations

import math
import os
import platform
import time
from dataclasses import asdict, dataclass

import psutil
import torch

# Dense (no sparsity) vendor figures in TFLOP/s: (16-bit tensor cores, fp32). Matched by substring of the GPU name.
GPU_PEAK_TFLOPS: dict[str, tuple[float, float]] = {
    "H200": (989.0, 67.0),
    "H100 PCIe": (756.0, 51.0),
    "H100": (989.0, 67.0),
    "A100": (312.0, 19.5),
    "L40S": (362.0, 91.6),
    "L4": (121.0, 30.3),
    "A10G": (70.0, 31.2),
    "A10": (125.0, 31.2),
    "T4": (65.0, 8.1),
    "V100": (125.0, 15.7),
    "P100": (21.2, 10.6),  # the card's Tesla P100-SXM2: no tensor cores, fp16 at twice the fp32 rate
}


@dataclass
class MachineRecord:
    cpu_model: str
    physical_cores: int
    logical_cpus: int
    torch_threads: int
    cpu_mhz: float | None
    avx512: bool
    avx512_bf16: bool
    amx_bf16: bool
    memory_gb: float
    load_avg_1min: float  # above ~0.5 other programs share the cores and timings are slower than the machine can do
    gpu: str | None
    gpu_memory_gb: float | None
    python: str
    torch: str
    transformers: str
    platform: str


def _cpuinfo_field(name: str) -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith(name):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags() -> set[str]:
    return set((_cpuinfo_field("flags") or "").split())


def cpu_model() -> str:
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_mhz() -> float | None:
    """The nominal clock: /proc/cpuinfo's figure (a VM reports the host's base clock), else psutil's."""
    value = _cpuinfo_field("cpu MHz")
    if value:
        return float(value)
    freq = psutil.cpu_freq()
    return float(freq.max or freq.current) if freq else None


def cpu_has_fast_bf16() -> bool:
    """bf16 is only faster than fp32 where the CPU multiplies bf16 in hardware (AVX-512 BF16 or AMX)."""
    flags = cpu_flags()
    if flags:
        return bool({"avx512_bf16", "amx_bf16"} & flags)
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


def gpu_fast_dtype() -> torch.dtype:
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def fast_dtype(device: str) -> torch.dtype:
    """The 16-bit type `device` computes fastest, or float32 where 16-bit arithmetic is not done in hardware."""
    if device == "cuda":
        return gpu_fast_dtype()
    return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def machine_record(device: str = "cpu") -> MachineRecord:
    import transformers
    flags = cpu_flags()
    gpu = gpu_memory = None
    if device == "cuda" and torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        gpu, gpu_memory = props.name, round(props.total_memory / 2**30, 1)
    return MachineRecord(
        cpu_model=cpu_model(), physical_cores=psutil.cpu_count(logical=False) or os.cpu_count() or 1,
        logical_cpus=os.cpu_count() or 1, torch_threads=torch.get_num_threads(), cpu_mhz=cpu_mhz(),
        avx512="avx512f" in flags, avx512_bf16="avx512_bf16" in flags, amx_bf16="amx_bf16" in flags,
        memory_gb=round(psutil.virtual_memory().total / 2**30, 1), load_avg_1min=round(os.getloadavg()[0], 2),
        gpu=gpu, gpu_memory_gb=gpu_memory, python=platform.python_version(), torch=torch.__version__,
        transformers=transformers.__version__, platform=platform.platform())


def machine_dict(device: str = "cpu") -> dict:
    return asdict(machine_record(device))


def busy_note() -> str:
    """A warning when other programs keep the CPU busy: every parallel operation then waits for a shared core."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load < 0.5:
        return ""
    return (f"the load average is {load:.1f} on {cores} cores: other programs are using the CPU, so timings will be "
            "slower and noisier than this machine can do.")


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_rate(dtype: torch.dtype, device: str = "cpu", size: int = 2048, seconds: float = 1.0) -> float:
    """FLOP/s of a square matrix product of `size`, best of repeated timings within about `seconds`.

    When one product of `size` would take over four times `seconds` (bf16 on a CPU without bf16 units runs at about
    1 GFLOP/s: 17 s for one 2048^3 product), the largest size whose product takes about `seconds` is measured instead,
    at least 256."""
    generator = torch.Generator().manual_seed(0)
    size = product_size(dtype, device, size, seconds)
    a = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=generator).to(device=device, dtype=dtype)
    return 2 * size**3 / _best_product_time(a, b, device, seconds, repeats=1)


def _best_product_time(a: torch.Tensor, b: torch.Tensor, device: str, seconds: float, repeats: int) -> float:
    """Seconds of the fastest a @ b among those timed within `seconds`, at least `repeats` of them, after one
    untimed product (it allocates and picks the kernel)."""
    with torch.inference_mode():
        a @ b
        _sync(device)
        best, timed, deadline = float("inf"), 0, time.perf_counter() + seconds
        while time.perf_counter() < deadline or timed < repeats:
            start = time.perf_counter()
            a @ b
            _sync(device)
            best, timed = min(best, time.perf_counter() - start), timed + 1
    return max(best, 1e-9)


SMALLEST_PRODUCT = 256


def product_size(dtype: torch.dtype, device: str, size: int, seconds: float) -> int:
    """`size`, or when one size^3 product would take over 4 x `seconds` at the rate of small products, the largest
    multiple of 256 (at least 256) whose product takes about `seconds`."""
    rate = _small_product_rate(dtype, device)
    if 2 * size**3 / rate <= 4 * seconds:
        return size
    return max(SMALLEST_PRODUCT, int((rate * seconds / 2) ** (1 / 3)) // SMALLEST_PRODUCT * SMALLEST_PRODUCT)


def _small_product_rate(dtype: torch.dtype, device: str) -> float:
    """FLOP/s of the best of three 256^3 products: a floor for larger products' rate, found in a
    fraction of a second."""
    a = torch.ones(SMALLEST_PRODUCT, SMALLEST_PRODUCT, dtype=dtype, device=device)
    return 2 * SMALLEST_PRODUCT**3 / _best_product_time(a, a, device, seconds=0.0, repeats=3)


def practical_peak(dtype: torch.dtype, device: str = "cpu") -> float:
    """The practical arithmetic limit: a large product, the most favourable shape there is. Measured afresh each
    time (a second or two), since other programs sharing the machine change it."""
    return matmul_rate(dtype, device, size=8192 if device == "cuda" else 2048, seconds=2.0 if device == "cuda" else 1.0)


_QUICK_RATES: dict[tuple[torch.dtype, str], tuple[float, float]] = {}  # (dtype, device) -> (when, FLOP/s)
QUICK_RATE_TTL_S = 300.0  # measured again after this long: a reading taken under load is raised by a later one


def quick_rate(dtype: torch.dtype, device: str = "cpu") -> float:
    """A fast calibration (a quarter of a second) for time estimates made before a benchmark or a run starts, in
    FLOP/s: the highest reading of this process so far, measured again every five minutes, so an estimate that
    follows every change of a form stays instant.

    The highest, not the latest: load only ever lowers a reading (one taken while the app's own run trains read a
    fifth of the machine's speed on 2 cores), and what is estimated runs with the machine to itself, as the app runs
    one thing at a time."""
    when, rate = _QUICK_RATES.get((dtype, device), (-math.inf, 0.0))
    if time.monotonic() - when > QUICK_RATE_TTL_S:
        rate = max(rate, matmul_rate(dtype, device, size=1024, seconds=0.25))
        _QUICK_RATES[dtype, device] = (time.monotonic(), rate)
    return rate


def cpu_flops_per_cycle(dtype: torch.dtype) -> tuple[int, str]:
    """FLOPs one core can do per cycle with its widest unit for `dtype`, and that unit's name.

    Assumes a server core with two 512-bit FMA ports (Xeon Gold/Platinum); an AMX tile unit does
    1024 bf16 FLOPs per cycle (Intel's figure for Sapphire Rapids and later).
    """
    flags = cpu_flags()
    if dtype == torch.bfloat16:
        if "amx_bf16" in flags:
            return 1024, "AMX-BF16 tiles"
        if "avx512_bf16" in flags:
            return 128, "AVX-512 BF16, two FMA ports"
    if "avx512f" in flags:
        return 64, "AVX-512 FMA, two ports"
    if "fma" in flags:
        return 32, "AVX2 FMA, two ports"
    return 8, "SSE"


def theoretical_peak(dtype: torch.dtype, device: str = "cpu") -> tuple[float | None, str]:
    """The vendor-style peak in FLOP/s and a sentence saying how it was computed (None when unknown)."""
    if device == "cuda":
        name = torch.cuda.get_device_properties(0).name
        for key, (tensor_tflops, fp32_tflops) in GPU_PEAK_TFLOPS.items():
            if key in name:
                tflops = fp32_tflops if dtype == torch.float32 else tensor_tflops
                return tflops * 1e12, f"{name}: {tflops:g} TFLOP/s dense {dtype_name(dtype)} (vendor figure)"
        return None, f"{name}: no vendor figure on record; shares are of the measured matmul peak"
    per_cycle, unit = cpu_flops_per_cycle(dtype)
    # torch runs one thread per core by default; fewer threads can only use that many cores
    cores = min(psutil.cpu_count(logical=False) or os.cpu_count() or 1, torch.get_num_threads())
    mhz = cpu_mhz()
    if not mhz:
        return None, "the CPU clock is unknown"
    peak = cores * mhz * 1e6 * per_cycle
    return peak, (f"{cores} cores x {mhz / 1000:.2f} GHz x {per_cycle} FLOP/cycle ({unit}) = "
                  f"{peak / 1e9:,.0f} GFLOP/s {dtype_name(dtype)} (nominal clock; turbo raises it)")


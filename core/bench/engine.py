"""Speed of teacher and students, measured the way the DeepPavlov model card did, beside the card's own figures.

Random token sequences of `seq_len` go through the encoder only (`model.base_model`, no MLM head), as the card's
table did. The method follows optimum-benchmark: warm-up runs, then timed runs (CUDA events on a GPU), median and
p90 latency, throughput in samples per second, and peak memory: on CPU the bytes of the variant's weights plus the
most memory the warm-up and timed passes add to what the process had when they began (the larger growth of glibc's
malloc counters and of the resident set); on a GPU the allocator's peak. So a CPU figure does not depend on what
else the process holds (the app keeps other models, Gradio and earlier results), and a smaller model shows less
than a bigger one measured before it.

Modes:
  reference  fp32 weights, eager attention: what the card measured.
  fast       the fastest correct path on this hardware: bf16 (weights or autocast, whichever is faster) with
             SDPA attention where the CPU multiplies bf16 in hardware, fp16/bf16 with SDPA on a GPU, optionally
             torch.compile. Each candidate is checked against reference before it is timed.
  onnxruntime, onnxruntime-int8, openvino, openvino-int8
             the encoder exported and run by ONNX Runtime (fp32 with its transformer fusions, or dynamic int8) or
             OpenVINO (bf16 where the CPU has it, else f32; or NNCF int8 weights), CPU only, checked as fast is
             (core.bench.runtimes). Their export and compile time is reported apart (setup_s), never timed.

This module runs the measurements. The parts live beside it: plan (settings, validation, estimates), variants
(reference and fast paths, their check, timing), records (what a run yields), report (the card comparison and
result files), profile (where the time goes) and cli (the command line).

python -m core.bench --help
"""
from __future__ import annotations

import ctypes
import gc
import math
import statistics
import threading
import time
from collections.abc import Callable, Iterator

import psutil
import torch

from core.bench import machine
from core.bench.plan import BenchConfig, Job, Loader, ModelShape, Plan, default_loader, make_plan
from core.bench.records import Peaks, Progress, Row
from core.bench.report import result_record
from core.bench.runtimes.available import RUNTIME_MODES, compute_dtype
from core.bench.runtimes.variant import runtime_variant
from core.bench.variants import Variant, choose_fast, iter_forward_times, reference_variant
from core.models import zoo


def measure_peaks(device: str, dtypes: list[torch.dtype]) -> Peaks:
    by_dtype, basis = {}, {}
    for dtype in dict.fromkeys(dtypes):
        theory, why = machine.theoretical_peak(dtype, device)
        by_dtype[dtype] = (machine.practical_peak(dtype, device), theory)
        basis[str(dtype)] = why
    return Peaks(by_dtype, basis)


class _Mallinfo2(ctypes.Structure):
    """glibc's struct mallinfo2 (glibc 2.33 and later): the allocator's counters, each in bytes (size_t)."""
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                       "fsmblks", "uordblks", "fordblks", "keepcost")]


def _malloc_in_use() -> Callable[[], int] | None:
    """A function giving the bytes malloc has handed out and not yet had back, or None where the C library has no
    mallinfo2 (musl, macOS, Windows, glibc before 2.33)."""
    try:
        mallinfo2 = ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError, TypeError):  # TypeError: Windows cannot open the running program by None
        return None
    mallinfo2.argtypes, mallinfo2.restype = [], _Mallinfo2

    def in_use() -> int:
        info = mallinfo2()  # glibc sums these over every arena (each torch thread may have its own)
        return info.uordblks + info.hblkhd  # chunks in use inside the arenas + large chunks mapped on their own

    return in_use


MALLOC_IN_USE = _malloc_in_use()


def weights_bytes(variant: Variant) -> float:
    """Bytes a variant's weights occupy: for ONNX Runtime or OpenVINO the files the runtime loaded (Variant.size_mb,
    as the row's size_mb), else the model's parameters and buffers at their own dtype, a storage shared by two of
    them (the tied word embeddings and MLM decoder) counted once."""
    if variant.size_mb is not None:
        return variant.size_mb * 2**20
    storages = {}
    for tensor in [*variant.model.parameters(), *variant.model.buffers()]:
        storage = tensor.untyped_storage()
        storages[storage.data_ptr()] = storage.nbytes()
    return float(sum(storages.values()))


class PeakMemory:
    """The memory a block of forward passes needs, in bytes (`peak_bytes`, read after the block).

    GPU: torch.cuda.max_memory_allocated() over the block, which counts the weights already on the GPU.
    CPU: `weights_bytes` (allocated before the block, so unseen by it) plus the growth of the process's memory over
    what it had when the block began, the largest of samples taken every 5 ms and at both ends. Growth is the larger
    of two counters: glibc's mallinfo2() (uordblks + hblkhd, over every arena), which sees activations that reuse
    pages freed earlier and still resident, and the resident set size, which sees memory a runtime maps without
    malloc (or a malloc that replaces glibc's) but misses such reuse. Without mallinfo2 (musl, macOS, Windows, glibc
    before 2.33) the resident set alone can read low. The growth counts what other threads allocate meanwhile.

    A peak between two samples goes unseen: the sample at the end comes after the block has freed its passes'
    activations, and a pass shorter than the wait between samples can peak within it (its activations are then small
    beside its weights). That wait is 5 ms on an idle machine, but many times longer on a busy one, where the sampler
    thread waits for a CPU (more so in a process at low priority beside busy ones). `samples` counts the readings
    taken: memory held until `samples` has grown by two was read while held (the first may have begun before).
    """

    def __init__(self, device: str, weights_bytes: float = 0.0):
        self.device, self.weights_bytes, self.peak_bytes = device, weights_bytes, 0.0
        self.malloc_growth_bytes = 0 if MALLOC_IN_USE else None  # CPU: the largest growth each counter showed
        self.rss_growth_bytes = 0
        self.samples = 0  # CPU: readings of the counters taken so far
        self._stop = threading.Event()

    @property
    def growth_bytes(self) -> int:
        return max(self.malloc_growth_bytes or 0, self.rss_growth_bytes)

    @property
    def basis(self) -> str:
        """Which counter the figure came from: "cuda allocator", "malloc" or "resident set"."""
        if self.device == "cuda":
            return "cuda allocator"
        return "malloc" if self.malloc_growth_bytes is not None and self.growth_bytes == self.malloc_growth_bytes \
            else "resident set"

    def _take_sample(self) -> None:
        if MALLOC_IN_USE:
            self.malloc_growth_bytes = max(self.malloc_growth_bytes, MALLOC_IN_USE() - self._malloc_start)
        self.rss_growth_bytes = max(self.rss_growth_bytes, self._process.memory_info().rss - self._rss_start)
        self.samples += 1  # after the reading: a count that has moved by two includes one begun after it was read

    def __enter__(self) -> PeakMemory:
        if self.device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        else:
            self._process = psutil.Process()
            gc.collect()  # garbage freed during the passes would lower the counts and hide growth
            self._malloc_start = MALLOC_IN_USE() if MALLOC_IN_USE else 0
            self._rss_start = self._process.memory_info().rss
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._take_sample()

    def __exit__(self, *exc) -> None:
        if self.device == "cuda":
            self.peak_bytes = torch.cuda.max_memory_allocated()
        else:
            self._stop.set()
            self._thread.join()
            self._take_sample()
            self.peak_bytes = self.weights_bytes + self.growth_bytes


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default), without needing numpy for a handful of numbers."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _significant(value: float, digits: int = 5) -> float:
    return float(f"{value:.{digits}g}")


def make_row(variant: Variant, loaded: zoo.LoadedModel, shape: ModelShape, batch_size: int, seq_len: int,
             timings: list[float], peak_bytes: float, peaks: dict[torch.dtype, tuple[float, float | None]]) -> Row:
    latency = statistics.median(timings)
    flops = shape.flops_per_sample(seq_len) * batch_size
    practical, theoretical = peaks.get(variant.compute_dtype, (None, None))  # no int8 limit is measured
    summary = zoo.model_summary(variant.model)
    size_mb = variant.size_mb if variant.size_mb is not None else summary["size_mb"]
    return Row(model=loaded.name, mode=variant.mode, device=variant.model.device.type, dtype=variant.label,
               batch_size=batch_size, seq_len=seq_len, params=summary["params"], size_mb=size_mb,
               latency_s=_significant(latency), latency_p90_s=_significant(percentile(timings, 0.9)),
               throughput_samples_s=_significant(batch_size / latency), peak_mem_mb=round(peak_bytes / 2**20, 1),
               gflops=round(flops / latency / 1e9, 1),
               flops_per_sample_g=round(shape.flops_per_sample(seq_len) / 1e9, 2),
               share_of_peak=round(flops / latency / practical, 3) if practical else None,
               share_of_theoretical=round(flops / latency / theoretical, 3) if theoretical else None,
               runs=len(timings), check=variant.check.text() if variant.check else "", tried=variant.tried,
               setup_s=variant.setup_s)


def first_pass(job: Job) -> str:
    """What a measurement's first forward pass is, as its progress line names it: "warm-up 1/2", or "run 1/5"
    without warm-up; torch.compile's compiling on that pass is said too."""
    phase = f"warm-up 1/{job.warmup}" if job.warmup else f"run 1/{job.runs}"
    return f"{phase}, compiling" if job.first_pass_extra_s else phase


def iter_benchmark(config: BenchConfig, load: Loader = default_loader, plan: Plan | None = None,
                   stop: threading.Event | None = None) -> Iterator[Progress | Peaks | Row]:
    """Measure every model x mode x batch size. Yields Progress as work proceeds (for a measurement: before its first
    forward pass, "warm-up 1/2 ...", and after each pass, "warm-up 1/2", "run 3/5"), the machine's Peaks once before
    the first measurement, and a Row as each result is ready.

    Setting `stop` (from any thread), or closing the generator, ends the benchmark between two forward passes; a
    measurement cut short yields no Row.
    """
    plan = plan or make_plan(config, load)
    work_done, total = 0.0, max(plan.estimate_s, 1e-6)

    def stopped() -> bool:
        return stop is not None and stop.is_set()

    def progress(message: str, step_s: float = 0.0) -> Progress:
        nonlocal work_done
        work_done += step_s
        return Progress(min(work_done / total, 0.99), message)

    yield progress("Measuring this machine's arithmetic limit (a large matrix product) ...")
    dtypes = [torch.float32] + ([machine.fast_dtype(config.device)] if "fast" in config.modes else [])
    dtypes += [compute_dtype(m) for m in config.modes if m in RUNTIME_MODES and compute_dtype(m) != torch.int8]
    peaks = measure_peaks(config.device, dtypes)
    yield peaks
    yield progress("Measured the arithmetic limit.", plan.setup_s["peaks"])
    for name, shape in plan.shapes.items():
        if stopped():
            return
        yield progress(f"Loading {name} ...")
        loaded = load(name, True)
        reference = reference_variant(loaded.model, config.device)
        yield progress(f"Loaded {name}.", plan.setup_s[f"load:{name}"])
        for mode in config.modes:
            if stopped():
                return
            variant = reference
            if mode == "fast":
                yield progress(f"{name}: choosing and checking the fast path ...")
                variant, notes = choose_fast(reference, loaded, config.device, config.seq_len, config.compile)
                yield progress(f"{name}: fast path is {variant.label} ({'; '.join(notes)})",
                               plan.setup_s[f"fast:{name}"])
            elif mode in RUNTIME_MODES:
                yield progress(f"{name}: exporting and compiling for {mode} ...")
                variant, notes = runtime_variant(mode, reference, loaded)
                yield progress(f"{name}: {variant.label} ready ({'; '.join(notes)})", plan.setup_s[f"{mode}:{name}"])
            for job in (j for j in plan.jobs if j.model == name and j.mode == mode):
                timings: list[float] = []
                where = f"{name} {mode} batch {job.batch_size}"
                # Said before the first pass, outside the measured block: that pass of a real-size model can take a
                # minute (compiling, longer), and each pass is otherwise told only once it has ended.
                yield progress(f"{where}: {first_pass(job)} ...")
                if stopped():
                    return
                passes = iter_forward_times(variant, job.batch_size, config.seq_len, job.runs, job.warmup)
                with PeakMemory(config.device, weights_bytes(variant)) as memory:
                    for i, seconds in enumerate(passes):
                        if seconds is not None:
                            timings.append(seconds)
                        phase = f"warm-up {i + 1}/{job.warmup}" if seconds is None else \
                            f"run {len(timings)}/{job.runs}"
                        step = job.run_s + (job.first_pass_extra_s if i == 0 else 0.0)
                        yield progress(f"{where}: {phase}", step)
                        if stopped():
                            passes.close()
                            break
                if stopped():
                    return
                yield make_row(variant, loaded, shape, job.batch_size, config.seq_len, timings,
                               memory.peak_bytes, peaks.by_dtype)
            variant = None  # frees the fast copies before the next mode or model


def run_benchmark(config: BenchConfig, load: Loader = default_loader, plan: Plan | None = None,
                  on_event: Callable[[Progress | Peaks | Row], None] | None = None,
                  stop: threading.Event | None = None) -> dict:
    """Run a whole benchmark and return its report (the same dict `--json` writes); setting `stop` ends it between
    two forward passes, with the rows measured so far."""
    plan = plan or make_plan(config, load)
    start, rows, peaks, machine_info = time.perf_counter(), [], None, machine.machine_dict(config.device)
    for event in iter_benchmark(config, load, plan, stop):
        if isinstance(event, Row):
            rows.append(event)
        elif isinstance(event, Peaks):
            peaks = event
        if on_event:
            on_event(event)
    return result_record(config, rows, plan, time.perf_counter() - start, peaks, machine_info)


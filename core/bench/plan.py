"""A benchmark request before anything runs: its settings, the models' shapes, validation, and the estimates of
memory and time made from the models' FLOPs and a quick matmul calibration of this machine."""
from __future__ import annotations

import math
import numbers
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import torch
from transformers import AutoConfig, AutoModelForMaskedLM

from core.bench import machine
from core.bench.limits import (  # noqa: F401 (the card's settings and the caps, read from here as well)
    CARD_BATCH,
    CARD_BATCH_SIZES,
    CARD_MODELS,
    CARD_SEQ_LEN,
    MAX_BATCH_SIZE,
    MAX_MODELS,
    MAX_NAME_CHARS,
    MAX_RUNS,
    MAX_SEQ_LEN,
    MAX_WARMUP,
)
from core.bench.runtimes.available import RUNTIME_MODES, compute_dtype, why_not
from core.formatting import count, error_sentence, format_seconds, shown
from core.models import zoo
from core.models.student import dims, num_layers

CARD_MODES = ("reference", "fast")  # what the card reproduction measures unless asked for more
MODES = (*CARD_MODES, *RUNTIME_MODES)
DEVICES = ("cpu", "cuda")
MEMORY_HEADROOM = 0.85  # refuse a run whose estimate exceeds this share of the free memory
TARGET_TIMED_SECONDS = 3.0  # auto run count: enough runs for ~3 s of timing, at least 3, at most 10
ROBERTA_LIKE = ("roberta", "xlm-roberta", "camembert")  # position ids start after the padding index

# Share of the quick (1024^3) matmul calibration that a whole encoder reaches, by (device, mode). CPU figures fitted
# on the card reproduction on 2 Xeon cores with AMX (reference 0.55-0.75, fast 0.74-0.89 of the quick rate, which
# itself is below the 2048^3 peak); GPU figures are typical eager values, not fitted here.
ENCODER_EFFICIENCY = {("cpu", "reference"): 0.55, ("cpu", "fast"): 0.75,
                      ("cuda", "reference"): 0.5, ("cuda", "fast"): 0.4,
                      # runtime modes, of the quick rate of the dtype they multiply in (int8: of float32's),
                      # from the figures for the base student on a 2-core Zen 5 (ORT 153 ms, int8 103 ms,
                      # OpenVINO bf16 69 ms, against reference 273 ms and fast 97 ms)
                      ("cpu", "onnxruntime"): 0.9, ("cpu", "onnxruntime-int8"): 1.3,
                      ("cpu", "openvino"): 0.95, ("cpu", "openvino-int8"): 0.85}
RANDOM_INIT_PARAMS_PER_S = 40e6  # arch: models draw their random weights at about this rate on one CPU core
RUNTIME_SETUP_S = 3.0  # a runtime mode's export, fusion, quantisation and compilation: this much, plus
RUNTIME_SETUP_S_PER_MPARAM = 0.12  # this many seconds per million parameters (about 8 s for the tiny v1's 10 M)
COMPILE_SECONDS = 30.0  # torch.compile (with freezing) of one encoder for one input shape, on 2 CPU cores

Loader = Callable[[str, bool], zoo.LoadedModel]  # (name, attentions) -> loaded model on the CPU


def default_loader(name: str, attentions: bool) -> zoo.LoadedModel:
    """The model `name` through zoo.load (its errors are ValueErrors that say what to fix); `attentions`: loaded so
    that it can return its attention maps (eager attention)."""
    return zoo.load(name, attentions=attentions)


@dataclass
class BenchConfig:
    """What to measure: by default the model card's table (its models and modes, batches 1 and 16, seq_len 512)."""
    models: list[str] = field(default_factory=lambda: list(CARD_MODELS))
    device: str = "cpu"
    batch_sizes: list[int] = field(default_factory=lambda: list(CARD_BATCH_SIZES))
    seq_len: int = CARD_SEQ_LEN
    modes: list[str] = field(default_factory=lambda: list(CARD_MODES))
    runs: int | None = None  # timed runs per measurement; None: about TARGET_TIMED_SECONDS of runs, 3 to 10
    warmup: int | None = None  # None: 2 runs, or 1 when one run takes over a second
    compile: bool = False  # torch.compile the fast path (adds ~30 s of compiling per model and batch size)


@dataclass
class ModelShape:
    """What the estimates need from a model's configuration, without loading its weights."""
    name: str
    source: str
    layers: int
    hidden: int
    heads: int
    ffn: int
    max_seq_len: int
    params: int
    vocab: int = 0

    def flops_per_sample(self, seq_len: int) -> float:
        """FLOPs of one sample of `seq_len` tokens through the encoder alone (encoder_flops)."""
        return encoder_flops(self.layers, self.hidden, self.ffn, seq_len)

    def masked_lm_flops_per_sample(self, seq_len: int, head_share: float = 1.0) -> float:
        """Encoder and MLM head over one sample: the head's transform (h x h) at every position, its decoder
        (h x vocab) at `head_share` of them (1: all; the share whose logits are computed, as with
        core.models.masked_lm.logits_only_at)."""
        return self.flops_per_sample(seq_len) + 2 * seq_len * (self.hidden * self.hidden +
                                                               head_share * self.hidden * self.vocab)


@dataclass
class Job:
    """One measurement the plan holds: a model in one mode at one batch size, with its run counts and estimates."""
    model: str
    mode: str
    batch_size: int
    runs: int
    warmup: int
    run_s: float  # estimated seconds of one forward pass
    first_pass_extra_s: float = 0.0  # torch.compile compiles on the first pass at a new input shape


@dataclass
class Plan:
    """A validated request (make_plan) with its measurements in order and its estimated seconds."""
    config: BenchConfig
    shapes: dict[str, ModelShape]
    jobs: list[Job]
    setup_s: dict[str, float]  # estimated seconds of the steps around the timed runs: "peaks", "load:<m>", "fast:<m>"
    estimate_s: float
    calibration: dict  # quick matmul rates the estimate used, GFLOP/s by dtype
    skipped: dict[str, str] = field(default_factory=dict)  # mode -> why it cannot run here
    repeated: dict[int, int] = field(default_factory=dict)  # batch size given more than once -> times given

    def describe(self) -> str:
        """The plan in one sentence for the page and the command line: how many measurements of how many models,
        the estimated time and the matrix-product rates it was estimated from."""
        rates = ", ".join(f"{k} {v:,.0f} GFLOP/s" for k, v in self.calibration.items())
        return (f"{count(len(self.jobs), 'measurement')} of {count(len(self.shapes), 'model')}; estimated time "
                f"{format_seconds(self.estimate_s)} (from the models' FLOPs and a quick 1024 x 1024 matrix product "
                f"timed for the estimate only: {rates}; the run measures its own, larger limit).")

    def skip_lines(self) -> list[str]:
        """One line per mode asked for that cannot run here, saying why; then one line for the batch sizes given
        more than once, whose repeats are not measured."""
        line = repeat_line(self.repeated)
        return [f"{mode} skipped: {why}." for mode, why in self.skipped.items()] + ([line] if line else [])


TIMES = {2: "twice", 3: "three times"}


def repeat_line(repeated: dict[int, int]) -> str:
    """What happens to batch sizes given more than once (batch size -> times given), in one sentence; "" for none.

    A repeat would time the same shape again and add nothing the first measurement did not show."""
    if not repeated:
        return ""
    if len(repeated) == 1:
        (batch_size, times), = repeated.items()
        return f"batch size {batch_size} was given {TIMES.get(times, f'{times} times')}; it is measured once."
    *first, last = map(str, repeated)
    return f"batch sizes {', '.join(first)} and {last} were given more than once; each is measured once."


# ---- arithmetic ---------------------------------------------------------------------------------------------------

def encoder_flops(layers: int, hidden: int, ffn: int, seq_len: int) -> float:
    """FLOPs of one sample through the encoder: every matrix product, counting a multiply-add as two.

    Per layer: Q, K, V and output projections 4 * 2*s*h*h; feed-forward 2 * 2*s*h*f; attention scores Q K^T and
    their product with V 2 * 2*s*s*h. Embedding lookups, softmax, layer norms and GELU add well under 1%.
    """
    s, h, f = seq_len, hidden, ffn
    return layers * (2 * s * (4 * h * h + 2 * h * f) + 4 * s * s * h)


def distill_step_flops(teacher: ModelShape, student: ModelShape, batch_size: int, seq_len: int,
                       head_share: float = 1.0) -> dict[str, float]:
    """Model FLOPs of one distillation step over a (batch_size, seq_len) batch: the teacher's forward and the
    student's forward and backward (backward counted as twice the forward, as in Kaplan et al., 2020 and the PaLM
    paper's MFU), both with their MLM decoders over `head_share` of the positions (1: every position; with the KL
    term at masked positions only, the masking probability: core.distill.losses.logit_share). The losses'
    softmaxes are not counted."""
    teacher_forward = teacher.masked_lm_flops_per_sample(seq_len, head_share) * batch_size
    student_forward = student.masked_lm_flops_per_sample(seq_len, head_share) * batch_size
    return {"teacher_forward": teacher_forward, "student_forward_backward": 3 * student_forward,
            "total": teacher_forward + 3 * student_forward}


def forward_memory_bytes(shape: ModelShape, batch_size: int, seq_len: int, mode: str, element_bytes: int) -> float:
    """Activation memory of one inference forward pass; one layer's tensors are alive at a time.

    Hidden-size tensors (input, Q, K, V, context, output, residuals) ~8 of (b, s, h); the feed-forward ~2 of (b, s, f);
    eager attention keeps scores, softmax and its copy (b, heads, s, s) in fp32, SDPA works on tiles instead.
    """
    tokens = batch_size * seq_len
    dense = tokens * (8 * shape.hidden + 2 * shape.ffn) * element_bytes
    attention_maps = 3 * batch_size * shape.heads * seq_len * seq_len * 4 if mode == "reference" else 0
    return dense + attention_maps


def memory_needed_bytes(shape: ModelShape, batch_size: int, seq_len: int, mode: str) -> float:
    """Weights held while measuring (reference keeps fp32; fast adds its copies) plus one forward pass."""
    weights = shape.params * 4
    if mode == "fast":
        weights += shape.params * (4 + 2)  # an fp32 SDPA copy for autocast and a 16-bit copy
    elif mode in RUNTIME_MODES:
        weights += shape.params * (4 + 4)  # the exporter's copy and the runtime's own
    return weights + forward_memory_bytes(shape, batch_size, seq_len, mode, 4)


def free_memory_bytes(device: str) -> float:
    """Bytes free now: on "cuda" the first GPU's free memory (CUDA must be usable), else the memory the system can
    give without swapping (psutil's available)."""
    if device == "cuda":
        return float(torch.cuda.mem_get_info()[0])
    return float(psutil.virtual_memory().available)


def _format_bytes(n: float) -> str:
    """Bytes for a message in the binary units they are counted in, as train/memory.py writes them: '15.5 GiB'
    (2^30 bytes) from 1 GiB up, '525 MiB' (2^20 bytes) below. The tables' "MB" and `peak_mem_mb` are MiB too."""
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


# ---- models and validation ----------------------------------------------------------------------------------------

def model_config(name: str, load: Loader = default_loader):
    """A model's configuration, read without loading its weights where that is possible."""
    source, location = zoo.resolve(name)  # unknown names raise ValueError here
    if source == "arch":
        return zoo.arch_config(location)
    if source == "run":
        return load(name, True).model.config  # the run decides whether its final model or a checkpoint is newest
    if source in ("bundled", "local") and not (Path(location) / "config.json").is_file():
        if source == "bundled":
            raise ValueError(f"The bundled model '{name}' is not built yet ({location} has no config.json); "
                             "benchmark an arch: model meanwhile.")
        raise ValueError(f"'{name}' is not a Hugging Face model folder (it has no config.json).")
    if source == "hub" and not zoo.is_cached(location) and not zoo.hub_reachable():
        raise ValueError(f"The model '{location}' is not in this machine's Hugging Face cache and the Hub cannot be "
                         "reached; benchmark its architecture instead (arch:<name>) or a local copy.")
    try:
        return AutoConfig.from_pretrained(location)
    except (OSError, ValueError) as error:
        raise ValueError(f"Could not read the configuration of '{name}': {error_sentence(error)}") from None


def model_shape(name: str, load: Loader = default_loader) -> ModelShape:
    """The shape of the model `name` from its configuration (config_shape), its weights not loaded where they need
    not be; ValueError when the name is unknown, its configuration cannot be read, or it is not BERT-like."""
    return config_shape(name, zoo.resolve(name)[0], model_config(name, load))


def config_shape(name: str, source: str, config) -> ModelShape:
    """The shape of a model from its transformers config; ValueError for an architecture that is not BERT-like."""
    try:
        d, layers = dims(config), num_layers(config)
    except AttributeError:
        raise ValueError(f"'{name}' is a {config.model_type} model; the benchmark counts FLOPs of BERT-like encoders "
                         "only (BERT, DistilBERT, RoBERTa).") from None
    max_seq_len = d["max_positions"]
    if config.model_type in ROBERTA_LIKE:
        max_seq_len -= (config.pad_token_id or 0) + 1
    with torch.device("meta"):  # counts parameters without allocating them
        meta = AutoModelForMaskedLM.from_config(config)
    return ModelShape(name=name, source=source, layers=layers, hidden=d["hidden"], heads=d["heads"],
                      ffn=d["ffn"], max_seq_len=max_seq_len, params=sum(p.numel() for p in meta.parameters()),
                      vocab=d["vocab"])


def _in_range(value, what: str, low: int, high: int, unit: str = "") -> None:
    """ValueError naming `what` and the limit it passes, unless `value` is a whole number from `low` to `high`."""
    if not isinstance(value, numbers.Integral) or isinstance(value, bool):
        raise ValueError(f"{what} must be a whole number{unit}, not {shown(value)}.")
    if value < low:
        raise ValueError(f"{what} must be at least {low}{unit.rstrip('s') if low == 1 else unit}, not {shown(value)}.")
    if value > high:
        raise ValueError(f"{what} must be at most {high:,}{unit} here, not {shown(value)}.")


def check_limits(config: BenchConfig) -> None:
    """The request's sizes within the caps (MAX_RUNS, MAX_BATCH_SIZE, MAX_SEQ_LEN, ...), each a whole number;
    ValueError with one sentence that names the limit. Nothing is loaded."""
    if len(config.models) > MAX_MODELS:
        raise ValueError(f"Benchmark at most {MAX_MODELS} models at a time, not {len(config.models):,}.")
    for name in config.models:
        if not isinstance(name, str):
            raise ValueError(f"A model is named by text (such as arch:rubert-base-cased-conversational), not a "
                             f"{type(name).__name__}.")
        if len(name) > MAX_NAME_CHARS:
            raise ValueError(f"Model names have at most {MAX_NAME_CHARS} characters; one has {len(name):,}.")
    for batch_size in config.batch_sizes:
        _in_range(batch_size, "Batch size", 1, MAX_BATCH_SIZE)
    _in_range(config.seq_len, "Sequence length", 1, MAX_SEQ_LEN, " tokens")
    if config.runs is not None:
        _in_range(config.runs, "The number of timed runs", 1, MAX_RUNS)
    if config.warmup is not None:
        _in_range(config.warmup, "The number of warm-up runs", 0, MAX_WARMUP)


def check_estimate(plan: Plan, limit_s: float | None) -> None:
    """Refuse a plan estimated to take longer than `limit_s` seconds (None: no limit); ValueError saying both."""
    if limit_s is not None and plan.estimate_s > limit_s:
        raise ValueError(f"This measurement would take about {format_seconds(plan.estimate_s)}, more than the "
                         f"{format_seconds(limit_s)} one benchmark may take here; choose fewer models, batch sizes, "
                         "modes or timed runs, or a shorter sequence length.")


def validate(config: BenchConfig, load: Loader = default_loader) -> dict[str, ModelShape]:
    """Check everything a run needs before it starts; raise ValueError with one sentence a person can act on.
    Modes that cannot run here (see core.bench.runtimes.available) are taken out of config.modes; make_plan says
    which and why."""
    if not config.models:
        raise ValueError("Choose at least one model to benchmark.")
    if config.device not in DEVICES:
        raise ValueError(f"Device must be 'cpu' or 'cuda', not '{config.device}'.")
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("CUDA was asked for, but this machine has no usable NVIDIA GPU; measure on the CPU.")
    unknown_modes = [m for m in config.modes if m not in MODES]
    if not config.modes or unknown_modes:
        raise ValueError(f"Modes must be among {', '.join(MODES)}; got '{', '.join(config.modes)}'.")
    skipped = {m: why_not(m, config.device) for m in dict.fromkeys(config.modes) if why_not(m, config.device)}
    if len(skipped) == len(set(config.modes)):
        raise ValueError("None of the modes asked for can run here: " +
                         "; ".join(f"{m}: {why}" for m, why in skipped.items()) + ".")
    config.modes = [m for m in config.modes if m not in skipped]
    if not config.batch_sizes:
        raise ValueError("Give at least one batch size.")
    config.batch_sizes, config.modes = list(dict.fromkeys(config.batch_sizes)), list(dict.fromkeys(config.modes))
    check_limits(config)
    shapes = {}
    for name in dict.fromkeys(config.models):
        shape = shapes[name] = model_shape(name, load)
        if config.seq_len > shape.max_seq_len:
            raise ValueError(f"Sequence length {config.seq_len:,} is longer than {name} accepts "
                             f"({shape.max_seq_len:,} tokens); choose a seq_len up to {shape.max_seq_len:,}.")
    free = free_memory_bytes(config.device)
    for shape in shapes.values():
        for mode in config.modes:
            need = memory_needed_bytes(shape, max(config.batch_sizes), config.seq_len, mode)
            if need > MEMORY_HEADROOM * free:
                raise ValueError(f"Batch {max(config.batch_sizes):,} at seq_len {config.seq_len:,} needs about "
                                 f"{_format_bytes(need)} for {shape.name} in {mode} mode, but only "
                                 f"{_format_bytes(free)} of {config.device.upper()} memory is free; choose a smaller "
                                 "batch size or seq_len.")
    return shapes


# ---- planning and estimates ---------------------------------------------------------------------------------------

def auto_runs(run_s: float) -> int:
    """Timed runs for a forward pass estimated at `run_s` seconds: about TARGET_TIMED_SECONDS of them, 3 to 10."""
    return int(min(10, max(3, math.ceil(TARGET_TIMED_SECONDS / max(run_s, 1e-3)))))


def make_plan(config: BenchConfig, load: Loader = default_loader) -> Plan:
    """Validate the request and estimate how long it will take, before anything is loaded or measured."""
    asked = list(dict.fromkeys(config.modes))
    given = list(config.batch_sizes) if isinstance(config.batch_sizes, (list, tuple)) else []
    shapes = validate(config, load)  # measures each batch size once: config.batch_sizes loses its repeats
    skipped = {m: why_not(m, config.device) for m in asked if m not in config.modes}
    repeated = {b: times for b, times in Counter(given).items() if times > 1}
    dtypes = {"reference": torch.float32, "fast": machine.fast_dtype(config.device),
              **{m: compute_dtype(m) for m in RUNTIME_MODES}}
    rate_dtypes = {m: torch.float32 if dtypes[m] == torch.int8 else dtypes[m] for m in dtypes}
    rates = {mode: machine.quick_rate(rate_dtypes[mode], config.device) for mode in config.modes}
    peak_dtypes = {rate_dtypes[m] for m in config.modes} | {torch.float32}
    jobs, setup = [], {"peaks": 1.1 * len(peak_dtypes)}
    for name, shape in shapes.items():
        if shape.source == "arch":
            setup[f"load:{name}"] = 0.5 + shape.params / RANDOM_INIT_PARAMS_PER_S
        else:
            setup[f"load:{name}"] = 1.0 + shape.params * 4 / 500e6  # reading weights from disk
        per_sample = {mode: shape.flops_per_sample(config.seq_len) / (rates[mode] *
                                                                      ENCODER_EFFICIENCY[config.device, mode])
                      for mode in config.modes}
        if "fast" in config.modes:
            # copies of the weights, the correctness check on 256 tokens, and timing two candidates at batch 1
            check_s = 256 / config.seq_len * per_sample.get("reference", 3 * per_sample["fast"])
            setup[f"fast:{name}"] = (shape.params * 10 / 1e9 + 3 * check_s + 8 * per_sample["fast"] +
                                     (COMPILE_SECONDS if config.compile else 0.0))
        for mode in (m for m in config.modes if m in RUNTIME_MODES):
            # export, fusion or quantisation, compilation, and the check on 256 tokens in reference and this mode
            check_s = 256 / config.seq_len * (per_sample.get("reference", 3 * per_sample[mode]) + per_sample[mode])
            setup[f"{mode}:{name}"] = RUNTIME_SETUP_S + shape.params / 1e6 * RUNTIME_SETUP_S_PER_MPARAM + check_s
        for mode in config.modes:
            for batch_size in config.batch_sizes:
                run_s = 0.002 + per_sample[mode] * batch_size
                runs = config.runs or auto_runs(run_s)
                warmup = config.warmup if config.warmup is not None else (1 if run_s > 1.0 else 2)
                extra = COMPILE_SECONDS if mode == "fast" and config.compile else 0.0
                jobs.append(Job(name, mode, batch_size, runs, max(warmup, 1 if extra else 0), run_s, extra))
    total = sum(setup.values()) + sum(job.run_s * (job.runs + job.warmup) + job.first_pass_extra_s for job in jobs)
    calibration = {machine.dtype_name(rate_dtypes[m]): rates[m] / 1e9 for m in config.modes}
    return Plan(config, shapes, jobs, setup, total, calibration, skipped, repeated)

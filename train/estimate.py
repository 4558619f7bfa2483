"""How much memory and time a run will take, estimated before it is queued from its teacher's and student's configs.

Memory: train.memory's estimate of one step's peak (the check the run itself makes once loaded). Time: the model
FLOPs of a step (core.bench.plan.distill_step_flops: the teacher's forward, the student's forward and backward, MLM
decoders where the losses read logits) at STEP_EFFICIENCY of this machine's quick matrix-product rate
(core.bench.machine.quick_rate), on lines of the corpus's typical length, plus the held-out evaluations and a fixed
start. An estimate to a factor of about two, said as "about"; the rates are assumed, not measured for this run.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import PretrainedConfig

from core.bench import machine
from core.bench.plan import config_shape, distill_step_flops
from core.distill.evaluate import HELDOUT_MLM_PROBABILITY
from core.formatting import count, format_seconds
from train.config import DistillConfig
from train.memory import ModelShape, StepMemory, estimate_step_memory, free_memory, gib, head_share, memory_verdict

# Share of quick_rate (a 1024^3 fp32 product on CPU, 16-bit on a GPU) one whole training step reaches: on a GPU the
# real-size step measured 20% of the bf16 peak (README); on CPU small models spend much of a step outside products
# (the Distill tab's default run of 200 steps on 2 cores: estimated 168 s, took 162 s).
STEP_EFFICIENCY = {"cpu": 0.2, "cuda": 0.15}
START_S = 15.0  # the child's imports, reading and tokenising the corpus, writing the untrained student
CHARS_PER_TOKEN = 4.0  # characters of Russian text a WordPiece token covers, about
SAMPLE_LINES = 2000  # lines of the corpus read to find its typical length


@dataclass(frozen=True)
class RunEstimate:
    """A run's step memory (bytes), the free memory it is compared with (bytes), its trainable parameters, and its
    time (seconds)."""
    memory: StepMemory
    free: int
    device_name: str
    student_params: int
    steps: int
    step_s: float
    total_s: float

    def describe(self) -> str:
        """"about 4 min 10 s, peak memory about 1.2 GiB"."""
        return f"about {format_seconds(self.total_s)}, peak memory about {gib(self.memory.total)}"


def run_device(cfg: DistillConfig) -> torch.device:
    """The device the run's process will use: the GPU when there is one, unless the config asks for the CPU."""
    return torch.device("cuda" if cfg.device != "cpu" and torch.cuda.is_available() else "cpu")


def typical_tokens(lines: list[str], max_length: int) -> float:
    """The mean tokens of a line, [CLS] and [SEP] included and cut at max_length, guessed from its characters."""
    sample = lines[:SAMPLE_LINES] or [""]
    return sum(min(max_length, len(line) / CHARS_PER_TOKEN + 2) for line in sample) / len(sample)


def estimate_run(cfg: DistillConfig, teacher: PretrainedConfig, student: PretrainedConfig, lines: list[str],
                 evaluations: int, steps_done: int = 0, reclaimable: int = 0) -> RunEstimate:
    """The estimate for a run of `cfg` from `teacher` to `student` (configs, as train.preflight gives them) over
    corpus `lines`, with `evaluations` held-out evaluations, continuing from step `steps_done`; reclaimable: bytes
    of CPU memory held now by runs that end before this one starts (counted as free on CPU)."""
    device = run_device(cfg)
    gpu, share = device.type == "cuda", head_share(cfg)
    half = cfg.mixed_precision in ("bf16", "fp16") or (gpu and cfg.mixed_precision == "auto")
    teacher_shape, student_shape = config_shape(cfg.teacher, "", teacher), config_shape("student", "", student)
    params = student_shape.params
    if cfg.reduced_vocab:  # the projection onto the teacher's width trains with the student
        params += (student_shape.hidden + 1) * teacher_shape.hidden
    memory = estimate_step_memory(
        ModelShape(params, student_shape.layers, student_shape.hidden, student_shape.ffn, student_shape.heads,
                   student_shape.vocab),
        ModelShape(teacher_shape.params, teacher_shape.layers, teacher_shape.hidden, teacher_shape.ffn,
                   teacher_shape.heads, teacher_shape.vocab),
        cfg.batch_size, cfg.max_length, gpu=gpu, half=half, gradient_checkpointing=cfg.gradient_checkpointing,
        teacher_hidden=cfg.losses.alpha_cos > 0 or cfg.losses.alpha_hidden_mse > 0, head_share=share)
    rate = machine.quick_rate(torch.bfloat16 if gpu else torch.float32, device.type) * STEP_EFFICIENCY[device.type]
    seq = max(3, round(typical_tokens(lines, cfg.max_length)))
    step_s = distill_step_flops(teacher_shape, student_shape, cfg.batch_size, seq, share)["total"] * cfg.grad_accum \
        / rate
    # evaluations run the heads at the masked positions only (core.models.masked_lm.masked_lm_logits)
    evaluation_s = cfg.eval_lines * (teacher_shape.masked_lm_flops_per_sample(seq, HELDOUT_MLM_PROBABILITY) +
                                     student_shape.masked_lm_flops_per_sample(seq, HELDOUT_MLM_PROBABILITY)) / rate
    load_s = (teacher_shape.params + params) * 4 / 500e6  # reading the teacher, writing the student's copies
    steps = max(0, cfg.max_steps - steps_done)
    total = START_S + load_s + steps * step_s + (evaluations + 1) * evaluation_s
    free = free_memory(device) + (0 if gpu else reclaimable)
    return RunEstimate(memory, free, "GPU" if gpu else "CPU", params, steps, step_s, total)


def check_estimate(estimate: RunEstimate, max_s: float | None) -> None:
    """ValueError, one sentence naming what to lower, when the run's step would not fit in the free memory or the
    run would take longer than `max_s` seconds (None: no time limit)."""
    _, refusal = memory_verdict(estimate.memory, estimate.free, estimate.device_name,
                                levers="lower the batch size or the max length")
    if refusal:
        raise ValueError(refusal)
    if max_s is not None and estimate.total_s > max_s:
        step = format_seconds(estimate.step_s) if estimate.step_s >= 1 else f"{estimate.step_s:.2f} s"
        raise ValueError(f"This run would take about {format_seconds(estimate.total_s)} "
                         f"({count(estimate.steps, 'step')} of about {step} each, estimated from the FLOPs of a "
                         f"step and this machine's speed), more than the {format_seconds(max_s)} one run may take "
                         "on this app; choose fewer steps, a smaller batch size or max length, or run "
                         "python -m train.distill on your own machine.")

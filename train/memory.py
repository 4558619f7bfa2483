"""The peak memory of one training step, estimated before a run starts, and the check that refuses a run that would
not fit.

Units: bytes everywhere (messages print GiB, 2^30 bytes, or MiB below one GiB). Shapes: b = batch size per process
(one micro-batch), s = max length (tokens per sample; batches are padded to their longest line, so this is the worst
case), h = width, f = feed-forward width, a = attention heads, L = layers, V = vocabulary (rounded up to 64 on a GPU,
where core.models.aligned_head pads the vocabulary product), P = parameters.

What `estimate_step_memory` counts (its parts are the fields of StepMemory):

- student_states: the student's fp32 weights, gradients and AdamW's two moments, 4 + 4 + 8 = 16 bytes a parameter,
  plus, under 16-bit autocast, the 2-byte copies of the weights autocast keeps for the step. Sharded over N
  processes (--fsdp), 1/N of that, plus the fp32 weights gathered whole while they run: the root unit (embeddings
  and MLM head, P minus the layers' parameters) and two layers (the one running and the next, prefetched).
- teacher_weights: 2 bytes a parameter on a GPU in mixed precision (train.distill.place_teacher), 4 otherwise.
- activations: what the student's forward keeps for backward. Per layer s*b*(18h + 4f + 5as) bytes in 16-bit, which
  is s*b*h*(34 + 5as/h) for f = 4h (Korthikanti et al. 2022, "Reducing Activation Recomputation in Large Transformer
  Models", section 4.1, counting the 1-byte dropout masks); twice that in fp32. With gradient checkpointing only each
  layer's input (2 or 4 bytes * s*b*h per layer) is kept, plus one layer's full activations while it is recomputed.
  Also the teacher's hidden states (L + 1 of s*b*h, in the teacher's dtype) when the cosine loss reads them.
- logits: the teacher's and the student's logits (b*s*V each, in their dtypes: 16-bit under autocast on a GPU, fp32
  on CPU; b*s is scaled by the share of positions whose logits are computed, the masking probability when the KL
  term reads masked positions only); the gradient core.distill.losses.kl_loss writes in forward (b*s*V in the
  student logits' dtype); and the blocks kl_loss works in, fp32 copies of at most KL_CHUNK_ELEMENTS (2^25, CPU) or
  KL_CHUNK_ELEMENTS_GPU (2^27) logits of each model: KL_BLOCKS_CPU of them alive at once on CPU
  (core.distill.losses._kl_block's two log-softmaxes, p_t and a product), one on a GPU (the compiled kernel keeps no
  fp32 copy; one block covers the teacher's fp32 read).

Not counted: the MLM cross-entropy's fp32 rows (about 2 * 0.15 * b*s*V * 4 bytes), the gradient of the logits in
backward (by then the forward's activations are being freed), the allocator's fragmentation and the CUDA context. Not
everything counted is alive at the same moment either (the gradients are None until backward), so these omissions
and that overlap roughly cancel.

How it compares with measurements:

- H200, RuBERT-base teacher (12 x 768, 12 heads, f 3072, V 119,547, 178.0 M parameters) to a 6-layer DistilBERT
  student (135.4 M parameters), batch 32 x 256, bf16, measured with scripts.bench_distill_step (the loop's own step;
  torch.cuda.max_memory_allocated): the estimate is 10.6 GiB (student states 2.27, teacher 0.33, activations 2.05,
  logits 5.97) against a measured 10.8 GiB, 0.98x; with gradient checkpointing 9.1 GiB against 9.3 GiB, 0.98x.
- CPU, the bundled pair (4 x 256 teacher, V 6,000, its 2-layer student), fp32, the RSS growth of one real step
  (sampled every millisecond) against the estimate less the weights already loaded: batch 32 x 128 0.91x (with
  gradient checkpointing 1.05x), 16 x 256 0.97x, 64 x 128 0.98x, 8 x 512 0.91x, 8 x 64 1.30x (a 0.1 GiB step, where
  the allocator's own caching weighs more). tests/test_memory.py holds 32 x 128 within 0.5x to 2x.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, fields

import psutil
import torch

from core.distill.losses import KL_CHUNK_ELEMENTS, KL_CHUNK_ELEMENTS_GPU, logit_share
from core.models.aligned_head import PAD_TO
from core.models.student import dims, num_layers

GIB = 2**30
KL_BLOCKS_CPU = 4  # fp32 blocks of kl_loss alive at once on CPU (the two log-softmaxes, p_t and a product)
FREE_SHARE = 0.9  # a run may plan to use this share of the free memory; the rest is headroom the estimate lacks


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs of one model: parameters (tied weights counted once), depth, widths, vocabulary."""
    params: int
    layers: int
    hidden: int
    ffn: int
    heads: int
    vocab: int

    @classmethod
    def of(cls, model: torch.nn.Module) -> ModelShape:
        """The shape of a BERT or DistilBERT masked LM (a Hugging Face model with a config)."""
        d = dims(model.config)
        return cls(sum(p.numel() for p in model.parameters()), num_layers(model.config), d["hidden"], d["ffn"],
                   d["heads"], d["vocab"])


@dataclass(frozen=True)
class StepMemory:
    """Bytes of each part of a training step's peak (see the module docstring)."""
    student_states: int
    teacher_weights: int
    activations: int
    logits: int

    @property
    def total(self) -> int:
        return sum(getattr(self, f.name) for f in fields(self))

    def describe(self) -> str:
        return ", ".join(f"{f.name.replace('_', ' ')} {getattr(self, f.name) / GIB:.2f}" for f in fields(self))


def layer_activation_bytes(batch: int, seq: int, shape: ModelShape, element_bytes: int) -> int:
    """Bytes one transformer layer keeps for backward: s*b*(18h + 4f + 5as) in 16-bit (Korthikanti et al. 2022,
    = s*b*h*(34 + 5as/h) for f = 4h), scaled by element_bytes / 2."""
    per_token = 18 * shape.hidden + 4 * shape.ffn + 5 * shape.heads * seq
    return batch * seq * per_token * element_bytes // 2


def layer_params(shape: ModelShape) -> int:
    """Parameters of one transformer layer: Q, K, V and output projections (4h^2 + 4h), the feed-forward pair
    (2hf + f + h) and two LayerNorms (4h)."""
    h, f = shape.hidden, shape.ffn
    return 4 * h * h + 2 * h * f + f + 9 * h


def estimate_step_memory(student: ModelShape, teacher: ModelShape, batch: int, seq: int, *, gpu: bool,
                         half: bool, gradient_checkpointing: bool = False, teacher_hidden: bool = True,
                         shards: int = 1, head_share: float = 1.0) -> StepMemory:
    """The peak bytes of one training step of `student` distilled from `teacher` on batches of batch x seq tokens.

    gpu: the step runs on a GPU (vocabulary padded to 64, larger KL blocks); half: under 16-bit autocast (bf16 or
    fp16; the teacher's weights are then 16-bit too); teacher_hidden: the cosine loss reads the teacher's hidden
    states; shards: processes the student is sharded over (1: not sharded); head_share: the share of the positions
    whose logits are computed (core.distill.losses.logit_share). Pure arithmetic: see the module docstring for what
    is counted and the sources."""
    act = 2 if half else 4  # bytes of an activation or a logit
    teacher_bytes = 2 if gpu and half else 4  # place_teacher keeps the teacher in fp32 on CPU
    tokens = batch * seq

    def vocab(shape: ModelShape) -> int:
        return -(-shape.vocab // PAD_TO) * PAD_TO if gpu else shape.vocab

    student_states = student.params * (16 + (2 if half else 0))
    if shards > 1:
        gathered = max(0, student.params - student.layers * layer_params(student)) + 2 * layer_params(student)
        student_states = -(-student_states // shards) + 4 * gathered
    teacher_weights = teacher.params * teacher_bytes
    if gradient_checkpointing:
        activations = student.layers * tokens * student.hidden * act + layer_activation_bytes(batch, seq, student, act)
    else:
        activations = student.layers * layer_activation_bytes(batch, seq, student, act)
    if teacher_hidden:
        activations += (teacher.layers + 1) * tokens * teacher.hidden * teacher_bytes
    chunk, blocks = (KL_CHUNK_ELEMENTS_GPU, 1) if gpu else (KL_CHUNK_ELEMENTS, KL_BLOCKS_CPU)
    rows = tokens * head_share  # positions with logits
    logits = round(rows * vocab(teacher) * act + 2 * rows * vocab(student) * act
                   + blocks * min(chunk, rows * vocab(student)) * 4)
    return StepMemory(student_states, teacher_weights, activations, logits)


def free_memory(device: torch.device) -> int:
    """Bytes free now: torch.cuda.mem_get_info on a GPU, psutil's available memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    return psutil.virtual_memory().available


def processes_sharing(device: torch.device) -> int:
    """Processes of this run whose memory comes from the same pool as this one's: on CPU all the machine's
    (LOCAL_WORLD_SIZE, set by accelerate launch / torchrun), on a GPU one."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1")) if device.type != "cuda" else 1


def memory_verdict(estimate: StepMemory, free: int, device_name: str, already_loaded: int = 0, processes: int = 1,
                   levers: str = "lower --batch-size or --max-length") -> tuple[str, str | None]:
    """(the line to print, the refusal or None). free: bytes free on the device; already_loaded: bytes of the
    estimate that are allocated already (on CPU, the weights loaded before the check); processes: processes drawing
    on the same free memory; levers: what the refusal tells the person to do."""
    needed = max(0, estimate.total - already_loaded) * processes
    line = f"estimated peak memory: {gib(estimate.total)} of {gib(free)} free ({device_name})"
    if already_loaded:
        line += f"; {gib(needed)} of it still to allocate"
    if processes > 1:
        line += f", for {processes} processes"
    if needed <= FREE_SHARE * free:
        return line, None
    return line, (f"A training step would need about {gib(needed)} ({estimate.describe()} GiB"
                  f"{f', x {processes} processes' if processes > 1 else ''}), more than {FREE_SHARE:.0%} of the "
                  f"{gib(free)} free on the {device_name}: {levers}.")


def gib(size: float) -> str:
    """Bytes for a message: '10.6 GiB' from 1 GiB up, '85 MiB' below."""
    return f"{size / GIB:.1f} GiB" if size >= GIB else f"{size / 2**20:.0f} MiB"


def run_levers(gradient_checkpointing: bool, resume: bool, device_name: str) -> str:
    """What a person can change to make a refused run fit (a resumed run keeps its batch size and length)."""
    if resume:
        return ("resume with --gradient-checkpointing, or free memory on the " + device_name) \
            if not gradient_checkpointing else \
            f"free memory on the {device_name}, or start a new run with a lower --batch-size or --max-length"
    return "lower --batch-size (a higher --grad-accum keeps the batch of a step) or --max-length" + \
        ("" if gradient_checkpointing else ", or add --gradient-checkpointing")


def head_share(cfg) -> float:
    """The share of positions whose logits a step of a run of `cfg` (train.config.DistillConfig) computes: the
    same-vocabulary recipe computes them only where its losses read them (core.distill.recipes), unless compiled."""
    if cfg.reduced_vocab or cfg.compile:
        return 1.0
    return logit_share(cfg.losses, cfg.mlm_probability)


def check_step_memory(cfg, recipe, device: torch.device, mixed_precision: str, resume: bool = False,
                      shards: int = 1) -> str:
    """The estimate for a run's config (train.config.DistillConfig) and loaded recipe on `device`, with the student
    sharded over `shards` processes (1: not sharded), as one line to print. Raises ValueError, one sentence naming
    what to lower, when it needs more than FREE_SHARE of the free memory. On CPU the weights prepare() already loaded
    count as allocated."""
    gpu = device.type == "cuda"
    student, teacher = ModelShape.of(recipe.student), ModelShape.of(recipe.teacher)
    trainable = sum(p.numel() for p in recipe.trainable().parameters())  # with a reduced student's projection
    student = ModelShape(trainable, student.layers, student.hidden, student.ffn, student.heads, student.vocab)
    half = mixed_precision in ("bf16", "fp16")
    weights = cfg.losses
    estimate = estimate_step_memory(student, teacher, cfg.batch_size, cfg.max_length, gpu=gpu, half=half,
                                    gradient_checkpointing=cfg.gradient_checkpointing,
                                    teacher_hidden=weights.alpha_cos > 0 or weights.alpha_hidden_mse > 0,
                                    shards=shards, head_share=head_share(cfg))
    loaded = 0 if gpu else estimate.teacher_weights + 4 * student.params
    device_name = torch.cuda.get_device_name(device) if gpu else "CPU"
    line, refusal = memory_verdict(estimate, free_memory(device), device_name, loaded, processes_sharing(device),
                                   run_levers(cfg.gradient_checkpointing, resume, device_name))
    if refusal:
        raise ValueError(refusal)
    return line

"""train.memory: the estimate of a step's peak memory against a measured CPU step and plain arithmetic, and the
refusal of a run that would not fit."""
import ctypes
import gc
import sys
import threading

import psutil
import pytest
import torch

from core.distill.data import TokenizedCorpus
from core.distill.losses import LossWeights
from core.distill.recipes import SameVocabRecipe
from core.models import zoo
from core.models.student import StudentSpec, layer_groups, make_student, num_layers
from train import distill, memory
from train.config import DistillConfig
from train.distill import main, optimizer_for
from train.memory import (
    GIB,
    ModelShape,
    StepMemory,
    estimate_step_memory,
    layer_params,
    memory_verdict,
    run_levers,
)

TEACHER = ModelShape(params=178_000_000, layers=12, hidden=768, ffn=3072, heads=12, vocab=119_547)
STUDENT = ModelShape(params=135_000_000, layers=6, hidden=768, ffn=3072, heads=12, vocab=119_547)


class PeakRSS:
    """The process's resident memory sampled every millisecond while a block runs: start and peak, in bytes."""

    def __enter__(self):
        self.process = psutil.Process()
        self.start = self.peak = self.process.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.001):
            self.peak = max(self.peak, self.process.memory_info().rss)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.process.memory_info().rss)


@pytest.mark.slow
@pytest.mark.parametrize("kl_masked_only", [False, True])
def test_the_estimate_is_within_a_factor_2_of_a_measured_cpu_step(kl_masked_only):
    """One real training step of the bundled pair (forward, losses, backward, clipping, AdamW's first step, which
    allocates its moments) on full-length rows, batch 32 x 128, fp32: the RSS it adds, against the estimate less the
    weights already loaded (measured here: 0.91x), with the card's losses (logits everywhere) and with the KL term
    at masked positions only (logits there only)."""
    batch, seq = 32, 128
    loaded = zoo.load("bundled-teacher")
    teacher = loaded.model
    student = make_student(teacher, StudentSpec(2, None, "distilbert")).train()
    body = torch.randint(5, teacher.config.vocab_size, (batch, seq - 2), generator=torch.Generator().manual_seed(0))
    corpus = TokenizedCorpus([[2, *row, 3] for row in body.tolist()], 0)
    weights = LossWeights(kl_masked_only=kl_masked_only)
    recipe = SameVocabRecipe(teacher, loaded.tokenizer, student, weights,
                             layer_groups(num_layers(teacher.config), 2), corpus)
    optimizer = optimizer_for(DistillConfig(), list(student.named_parameters()))
    step_batch = recipe.build_batch(list(range(batch)), torch.Generator().manual_seed(1))
    with torch.no_grad():  # the first call of each kernel allocates its own buffers: not the step's memory
        recipe.losses(student, teacher, recipe.build_batch([0], torch.Generator().manual_seed(2)))
    gc.collect()
    if sys.platform == "linux":  # hand freed heap back, so memory earlier tests freed is not reused unseen
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    with PeakRSS() as rss:
        recipe.losses(student, teacher, step_batch)["loss"].backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 5.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    share = memory.head_share(DistillConfig(losses=weights))
    assert share == (0.15 if kl_masked_only else 1.0)
    estimate = estimate_step_memory(ModelShape.of(student), ModelShape.of(teacher), batch, seq, gpu=False, half=False,
                                    head_share=share)
    beyond_loaded = estimate.total - estimate.teacher_weights - 4 * ModelShape.of(student).params
    measured = rss.peak - rss.start
    assert 0.5 <= beyond_loaded / measured <= 2.0, (beyond_loaded / 2**20, measured / 2**20, estimate.describe())


def test_the_parts_are_the_documented_arithmetic():
    s = ModelShape(params=1000, layers=2, hidden=8, ffn=32, heads=2, vocab=100)
    t = ModelShape(params=3000, layers=4, hidden=8, ffn=32, heads=2, vocab=100)
    cpu = estimate_step_memory(s, t, batch=3, seq=5, gpu=False, half=False)
    assert cpu.student_states == 16 * 1000 and cpu.teacher_weights == 4 * 3000
    per_layer_16bit = 3 * 5 * (18 * 8 + 4 * 32 + 5 * 2 * 5)  # = s*b*h*(34 + 5as/h) for f = 4h
    assert per_layer_16bit == 3 * 5 * 8 * (34 + 5 * 2 * 5 / 8)
    assert cpu.activations == 2 * per_layer_16bit * 2 + 5 * 3 * 5 * 8 * 4  # fp32: twice; teacher hidden states
    assert cpu.logits == 3 * 15 * 100 * 4 + memory.KL_BLOCKS_CPU * 15 * 100 * 4  # logits, KL gradient, KL blocks
    gpu = estimate_step_memory(s, t, batch=3, seq=5, gpu=True, half=True, teacher_hidden=False)
    assert gpu.student_states == 18 * 1000 and gpu.teacher_weights == 2 * 3000  # autocast's 16-bit weight copies
    assert gpu.activations == 2 * per_layer_16bit
    assert gpu.logits == 3 * 15 * 128 * 2 + 15 * 128 * 4  # vocabulary padded to 128; one fp32 block
    assert cpu.total == cpu.student_states + cpu.teacher_weights + cpu.activations + cpu.logits


def test_logits_only_where_read_scale_the_logits_and_nothing_else():
    s = ModelShape(params=1000, layers=2, hidden=8, ffn=32, heads=2, vocab=100)
    t = ModelShape(params=3000, layers=4, hidden=8, ffn=32, heads=2, vocab=100)
    whole = estimate_step_memory(s, t, batch=3, seq=5, gpu=False, half=False)
    read = estimate_step_memory(s, t, batch=3, seq=5, gpu=False, half=False, head_share=0.2)  # 3 of 15 positions
    assert read.logits == 3 * 3 * 100 * 4 + memory.KL_BLOCKS_CPU * 3 * 100 * 4  # logits, KL gradient, KL blocks
    assert (read.student_states, read.teacher_weights, read.activations) == \
        (whole.student_states, whole.teacher_weights, whole.activations)
    assert memory.head_share(DistillConfig(losses=LossWeights(kl_masked_only=True), compile=True)) == 1.0
    assert memory.head_share(DistillConfig(losses=LossWeights(alpha_kl=0, alpha_mlm=1), mlm_probability=0.2)) == 0.2


def test_the_real_size_estimate_is_near_the_h200_measurement():
    estimate = estimate_step_memory(STUDENT, TEACHER, 32, 256, gpu=True, half=True)
    assert 0.8 < estimate.total / (10.8 * GIB) < 1.25  # the measured peak at this size (train/memory.py)


@pytest.mark.parametrize("gpu, half", [(True, True), (False, False)])
def test_gradient_checkpointing_lowers_the_estimate(gpu, half):
    plain = estimate_step_memory(STUDENT, TEACHER, 32, 256, gpu=gpu, half=half)
    checkpointed = estimate_step_memory(STUDENT, TEACHER, 32, 256, gpu=gpu, half=half, gradient_checkpointing=True)
    assert checkpointed.activations < plain.activations / 3
    assert checkpointed.total < plain.total
    assert (checkpointed.student_states, checkpointed.logits) == (plain.student_states, plain.logits)


def test_a_bigger_batch_or_length_needs_more():
    base = estimate_step_memory(STUDENT, TEACHER, 16, 128, gpu=True, half=True).total
    assert estimate_step_memory(STUDENT, TEACHER, 32, 128, gpu=True, half=True).total > base
    assert estimate_step_memory(STUDENT, TEACHER, 16, 256, gpu=True, half=True).total > base


def test_the_verdict_counts_loaded_weights_processes_and_the_headroom():
    estimate = StepMemory(student_states=4 * GIB, teacher_weights=2 * GIB, activations=2 * GIB, logits=2 * GIB)
    line, refusal = memory_verdict(estimate, 20 * GIB, "CPU")
    assert line == "estimated peak memory: 10.0 GiB of 20.0 GiB free (CPU)" and refusal is None
    assert memory_verdict(estimate, 11.2 * GIB, "CPU")[1] is None  # 10 of 11.2: within 90%
    assert memory_verdict(estimate, 11 * GIB, "CPU")[1] is not None  # 10 of 11: over 90%
    assert memory_verdict(estimate, 5 * GIB, "CPU", already_loaded=6 * GIB)[1] is None  # 4 GiB still to allocate
    line, refusal = memory_verdict(estimate, 15 * GIB, "CPU", processes=2)
    assert "for 2 processes" in line and "x 2 processes" in refusal


def test_the_refusal_names_what_a_person_can_change():
    assert "--batch-size" in run_levers(False, False, "CPU") and "--gradient-checkpointing" in \
        run_levers(False, False, "CPU")
    assert "--gradient-checkpointing" not in run_levers(True, False, "CPU")
    # a resumed run keeps its batch size and length: only checkpointing or free memory helps it
    assert run_levers(False, True, "NVIDIA H200") == "resume with --gradient-checkpointing, or free memory on the " \
                                                     "NVIDIA H200"


def test_a_run_far_beyond_the_free_memory_is_refused_with_one_line(tmp_path, tiny_teacher_dir, tiny_corpus, capsys,
                                                                    monkeypatch):
    monkeypatch.setattr(memory, "free_memory", lambda device: 2**20)  # 1 MiB free
    out = tmp_path / "run"
    code = main(["--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus), "--output-dir", str(out),
                 "--batch-size", "64", "--max-length", "128"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: A training step would need about "), err
    assert "more than 90% of the 1 MiB free on the CPU" in err[0]
    assert err[0].endswith("lower --batch-size (a higher --grad-accum keeps the batch of a step) or --max-length, "
                           "or add --gradient-checkpointing.")
    assert not out.exists()


def test_the_estimate_is_printed_before_training_starts(tmp_path, tiny_teacher_dir, tiny_corpus, capsys,
                                                        monkeypatch):
    said_before_training = []
    monkeypatch.setattr(distill, "train", lambda *args: said_before_training.append(capsys.readouterr().err) or 0)
    assert main(["--teacher", str(tiny_teacher_dir), "--corpus", str(tiny_corpus),
                 "--output-dir", str(tmp_path / "run")]) == 0
    lines = [line for line in said_before_training[0].splitlines() if line.startswith("estimated peak memory:")]
    assert len(lines) == 1 and lines[0].endswith("still to allocate") and "free (CPU)" in lines[0]


def test_sharding_divides_the_student_states_and_adds_the_gathered_weights():
    whole = estimate_step_memory(STUDENT, TEACHER, 32, 256, gpu=True, half=True)
    sharded = estimate_step_memory(STUDENT, TEACHER, 32, 256, gpu=True, half=True, shards=8)
    layer = layer_params(STUDENT)
    assert layer == 7_087_872  # a BERT-base layer's parameters, as transformers' BertLayer counts them
    gathered = STUDENT.params - 6 * layer + 2 * layer  # the root unit and two layers, whole in fp32
    assert sharded.student_states == -(-whole.student_states // 8) + 4 * gathered
    assert sharded.student_states < whole.student_states / 2
    assert (sharded.activations, sharded.logits, sharded.teacher_weights) == \
        (whole.activations, whole.logits, whole.teacher_weights)

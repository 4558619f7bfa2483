"""Ways of running a model (reference and the fast candidates), the check that a fast one computes what reference
does, and timing forward passes of the encoder."""
from __future__ import annotations

import contextlib
import copy
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from core.bench import machine
from core.models import zoo
from core.models.masked_lm import apply_mlm_head

COSINE_THRESHOLD = 0.999  # random weights: hidden states of fast against reference
AGREEMENT_THRESHOLD = 0.99  # trained models: top-1 masked predictions of fast against reference


@dataclass
class Check:
    passed: bool
    metric: str  # "hidden-state cosine" or "top-1 agreement"
    value: float
    threshold: float
    positions: int

    def text(self) -> str:
        sign = ">=" if self.passed else "<"
        text = f"{self.metric} {self.value:.5f} {sign} {self.threshold} over {self.positions:,} positions"
        return text if self.passed else text + " (BELOW THE THRESHOLD)"


@dataclass
class Variant:
    """One way of running a model: its weights, attention kernel, autocast and compilation, or another runtime."""
    mode: str
    label: str  # goes into the row's dtype field
    model: PreTrainedModel  # the full masked LM, on the device
    compute_dtype: torch.dtype
    autocast: torch.dtype | None = None
    compiled: Callable | None = None  # a compiled encoder, or a runtime's session called as the encoder is
    check: Check | None = None
    tried: str = ""  # what choose_fast timed or refused before settling on this variant
    runtime: bool = False  # `compiled` is ONNX Runtime or OpenVINO; `model` is the reference it was exported from
    size_mb: float | None = None  # size on disk of what a runtime loads (None: the weights in fp32, as the card)
    setup_s: float | None = None  # seconds of export, conversion and compilation before the first run

    @property
    def encoder(self) -> Callable:
        return self.compiled if self.compiled is not None else self.model.base_model

    def context(self):
        if self.autocast is None:
            return contextlib.nullcontext()
        return torch.autocast(self.model.device.type, dtype=self.autocast)


# ---- variants -----------------------------------------------------------------------------------------------------

def reference_variant(model: PreTrainedModel, device: str) -> Variant:
    """fp32 weights and eager attention, as the card measured; the caller's model is never changed."""
    if model.config._attn_implementation != "eager" or model.dtype != torch.float32:
        model = copy.deepcopy(model).float()
        model.set_attn_implementation("eager")
    if device != "cpu":
        model = copy.deepcopy(model).to(device)
    return Variant("reference", "float32 (eager)", model.eval(), torch.float32)


def sdpa_copy(model: PreTrainedModel, device: str) -> tuple[PreTrainedModel, str]:
    """A copy of `model` on `device` with SDPA attention, and the name of the attention it ended up with."""
    copied = copy.deepcopy(model).to(device).eval()
    with contextlib.suppress(ValueError, ImportError):  # an architecture without an SDPA kernel keeps eager
        copied.set_attn_implementation("sdpa")
    return copied, copied.config._attn_implementation


def fast_candidates(model: PreTrainedModel, device: str) -> list[Variant]:
    """The ways to run `model` faster on `device`: SDPA attention with 16-bit weights or 16-bit autocast."""
    sdpa, attention = sdpa_copy(model, device)
    dtype = machine.fast_dtype(device)
    if dtype == torch.float32:  # no 16-bit arithmetic in hardware: a better attention kernel is all there is
        return [Variant("fast", f"float32 ({attention})", sdpa, torch.float32)]
    name = machine.dtype_name(dtype)
    weights = copy.deepcopy(sdpa).to(dtype)
    return [Variant("fast", f"{name} weights ({attention})", weights, dtype),
            Variant("fast", f"{name} autocast ({attention})", sdpa, dtype, autocast=dtype)]


def choose_fast(reference: Variant, loaded: zoo.LoadedModel, device: str, seq_len: int,
                compile_model: bool = False) -> tuple[Variant, list[str]]:
    """The fastest candidate that passes the check, timed at batch 1; notes say what was tried and why."""
    trained = loaded.source != "arch"
    notes, passing = [], []
    for candidate in fast_candidates(reference.model, device):
        candidate.check = check_variant(reference, candidate, trained, loaded.tokenizer)
        if not candidate.check.passed:
            notes.append(f"{candidate.label}: failed the check ({candidate.check.text()}), not used")
            continue
        timings = time_forward(candidate, 1, seq_len, runs=3, warmup=1)
        passing.append((statistics.median(timings), candidate))
        notes.append(f"{candidate.label}: {statistics.median(timings) * 1e3:.1f} ms at batch 1")
    if not passing:  # every 16-bit path is wrong for this model: SDPA in fp32 is exact up to rounding order
        sdpa, attention = sdpa_copy(reference.model, device)
        chosen = Variant("fast", f"float32 ({attention})", sdpa, torch.float32)
        chosen.check = check_variant(reference, chosen, trained, loaded.tokenizer)
    else:
        chosen = min(passing, key=lambda pair: pair[0])[1]
    chosen.tried = "; ".join(notes)
    if compile_model:
        options = {"freezing": True} if device == "cpu" else None  # freezing prepacks weights for oneDNN/AMX
        chosen.compiled = torch.compile(chosen.model.base_model, dynamic=False, options=options)
        chosen.label += " + compile"
        chosen.check = check_variant(reference, chosen, False)  # the compiled encoder against reference
        if not chosen.check.passed:
            raise ValueError(f"torch.compile changed the results of {loaded.name} ({chosen.check.text()}); "
                             "run without --compile.")
    return chosen, notes


# ---- inputs and the correctness check -----------------------------------------------------------------------------

def random_tokens(vocab: int, batch_size: int, seq_len: int, device: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random token ids (the card measured random sequences), avoiding the first ids where special tokens live."""
    generator = torch.Generator().manual_seed(seed)
    low = 5 if vocab > 10 else 0
    ids = torch.randint(low, vocab, (batch_size, seq_len), generator=generator)  # (bs, seq_len)
    return {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}


def probe_batches(tokenizer, max_sentences: int = 96, batch_size: int = 16,
                  max_length: int = 128) -> Iterator[dict[str, torch.Tensor]]:
    """The probe sentences with one [MASK] each: the fill-mask set when present, else the topic sentences
    with their middle token masked."""
    from core.compare import probes
    try:
        texts = [p.sentence.replace("[MASK]", tokenizer.mask_token) for p in probes.fill_mask_probes()]
    except (OSError, KeyError):
        texts = []
    masked_middle = not texts
    if masked_middle:
        texts = [sentence for _, sentence in probes.topic_sentences()]
    texts = texts[:max_sentences]
    for start in range(0, len(texts), batch_size):
        batch = tokenizer(texts[start:start + batch_size], padding=True, truncation=True, max_length=max_length,
                          return_tensors="pt", return_token_type_ids=False)
        if masked_middle:
            lengths = batch["attention_mask"].sum(dim=1)  # (bs,)
            rows = torch.arange(len(lengths))
            batch["input_ids"][rows, lengths // 2] = tokenizer.mask_token_id
        yield dict(batch)


def check_variant(reference: Variant, candidate: Variant, trained: bool, tokenizer=None) -> Check:
    """Whether `candidate` computes what `reference` does.

    A trained model: top-1 predictions at the masked positions of the probe sentences agree on at least 99%.
    Random weights (whose predictions are meaningless near-ties): the last hidden states have a mean cosine of at
    least 0.999. (The random encoders of the real architectures change their input a lot, cosine 0.4-0.7 between
    embeddings and output, so a wrong layer shows; one wrong layer of the tiny-v1 architecture gives about 0.94.)
    """
    device = reference.model.device
    # a runtime gives the encoder's output alone: the reference's own head turns it into logits (BERT, DistilBERT)
    head_known = not candidate.runtime or reference.model.config.model_type in ("bert", "distilbert")
    if trained and head_known and tokenizer is not None and tokenizer.mask_token is not None:
        agree = total = 0
        with torch.inference_mode():
            for batch in probe_batches(tokenizer, max_length=min(128, reference.model.config.max_position_embeddings)):
                batch = {k: v.to(device) for k, v in batch.items()}
                masked = batch["input_ids"] == tokenizer.mask_token_id  # (bs, seq_len)
                want = reference.model(**batch).logits[masked].argmax(-1)  # (n_masked,)
                with candidate.context():
                    if candidate.runtime:
                        hidden = candidate.encoder(**batch).last_hidden_state[masked]  # (n_masked, hidden)
                        got = apply_mlm_head(reference.model, hidden).argmax(-1)
                    else:
                        got = candidate.model(**batch).logits[masked].argmax(-1)
                agree += int((want == got).sum())
                total += int(masked.sum())
        value = agree / max(total, 1)
        return Check(value >= AGREEMENT_THRESHOLD, "top-1 agreement", value, AGREEMENT_THRESHOLD, total)
    max_len = reference.model.config.max_position_embeddings
    inputs = random_tokens(reference.model.config.vocab_size, 2, min(128, max_len - 2), str(device), seed=1)
    with torch.inference_mode():
        want = reference.encoder(**inputs).last_hidden_state.float()  # (2, seq_len, hidden)
        with candidate.context():
            got = candidate.encoder(**inputs).last_hidden_state.float()
    cosine = torch.nn.functional.cosine_similarity(want, got, dim=-1)  # (2, seq_len)
    value = float(cosine.mean())
    return Check(value >= COSINE_THRESHOLD, "hidden-state cosine", value, COSINE_THRESHOLD, cosine.numel())


# ---- timing -------------------------------------------------------------------------------------------------------

def _timed(fn: Callable[[], object], device: str) -> float:
    if device == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def iter_forward_times(variant: Variant, batch_size: int, seq_len: int, runs: int,
                       warmup: int) -> Iterator[float | None]:
    """Run warm-up passes (yielding None after each) and timed passes (yielding their seconds), one at a time,
    so a caller can show progress and stop between passes.

    Inference mode and autocast are entered for each pass, never held across a yield: they belong to the thread,
    and a caller such as Gradio resumes the generator in whichever worker thread is free."""
    device = variant.model.device.type
    inputs = random_tokens(variant.model.config.vocab_size, batch_size, seq_len, str(variant.model.device))

    def forward():
        with torch.inference_mode(), variant.context():
            variant.encoder(**inputs)

    for _ in range(warmup):
        forward()
        if device == "cuda":
            torch.cuda.synchronize()
        yield None
    for _ in range(runs):
        yield _timed(forward, device)


def time_forward(variant: Variant, batch_size: int, seq_len: int, runs: int, warmup: int) -> list[float]:
    return [t for t in iter_forward_times(variant, batch_size, seq_len, runs, warmup) if t is not None]

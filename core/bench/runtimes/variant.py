"""A runtime mode as a benchmark Variant: the reference model exported into a temporary folder, opened by its
runtime, checked against reference the way fast mode is; the export and compile time kept apart from timed runs."""
from __future__ import annotations

import tempfile
from pathlib import Path

import torch
from transformers.modeling_outputs import BaseModelOutput

from core.bench.machine import dtype_name
from core.bench.runtimes.available import INT8_MODES, compute_dtype
from core.bench.runtimes.convert import build
from core.bench.runtimes.session import RuntimeSession
from core.bench.variants import Variant, check_variant
from core.models import zoo


class RuntimeEncoder:
    """The encoder's call as the benchmark makes it (input_ids, attention_mask tensors -> .last_hidden_state),
    answered by a runtime session; it keeps the temporary folder its files live in for as long as it lives."""

    def __init__(self, session: RuntimeSession, folder: tempfile.TemporaryDirectory):
        self.session, self._folder = session, folder

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **_) -> BaseModelOutput:
        hidden = self.session(input_ids.cpu().numpy(), attention_mask.cpu().numpy())  # (bs, seq_len, hidden)
        return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden))


def runtime_label(mode: str) -> str:
    """What goes into a row's dtype field, e.g. "onnxruntime int8 dynamic" or "openvino bfloat16"."""
    if mode == "onnxruntime-int8":
        return "onnxruntime int8 dynamic (fused)"
    if mode == "onnxruntime":
        return "onnxruntime float32 (fused)"
    precision = dtype_name(compute_dtype(mode))
    return f"openvino int8 weights, {precision}" if mode == "openvino-int8" else f"openvino {precision}"


def runtime_variant(mode: str, reference: Variant, loaded: zoo.LoadedModel) -> tuple[Variant, list[str]]:
    """`mode`'s variant of the reference model, exported, loaded and checked; notes say how it was made.

    Variant.setup_s holds the seconds of export, conversion and compilation; size_mb the size on disk of the files
    the runtime loads. An fp32 or bf16 mode that fails the check raises ValueError (its export is wrong); an int8
    mode is kept, its check saying how far it agrees. ValueError also when an exporter fails."""
    folder = tempfile.TemporaryDirectory(prefix=f"rudistil-{mode}-")
    built = build(mode, reference.model, Path(folder.name), whole_model=False)
    precision = compute_dtype(mode)
    session = RuntimeSession(built.main, precision=torch.float32 if precision == torch.int8 else precision)
    variant = Variant(mode, runtime_label(mode), reference.model, precision, compiled=RuntimeEncoder(session, folder),
                      runtime=True, size_mb=round(built.size_bytes / 2**20, 1),
                      setup_s=round(built.seconds + session.load_s, 2))
    variant.check = check_variant(reference, variant, loaded.source != "arch", loaded.tokenizer)
    notes = built.notes + [f"exported in {built.seconds:.1f} s, loaded in {session.load_s:.1f} s",
                           f"{variant.size_mb:,.1f} MB on disk"]
    if not variant.check.passed and mode not in INT8_MODES:
        raise ValueError(f"{mode} computes something else than reference for {loaded.name} "
                         f"({variant.check.text()}); this export cannot be benchmarked.")
    variant.tried = "; ".join(notes)
    return variant, notes

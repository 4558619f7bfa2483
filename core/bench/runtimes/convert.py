"""Exporting a PyTorch model to ONNX Runtime or OpenVINO with the field's own tools, and making its int8 version.

ONNX: torch.onnx.export with the TorchScript exporter (dynamo=False), whose attention pattern ONNX Runtime's
transformer optimizer recognises (its dynamo graphs get no fused Attention at onnxruntime 1.32), then that optimizer's
BERT fusions (Attention, SkipLayerNormalization, BiasGelu, EmbedLayerNormalization); int8 by dynamic quantisation
(int8 weights, activations quantised per batch); in both, the tied MLM output layer is stored once. OpenVINO:
openvino.convert_model straight from the module with SDPA attention; int8 by NNCF's weight compression (int8 weights,
products in the inference precision). Weights are saved in fp32 (not OpenVINO's default fp16), so fp32 and int8
sizes compare.
"""
from __future__ import annotations

import contextlib
import copy
import io
import logging
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import PreTrainedModel

from core.models.student import dims

OPSET = 17
ONNX_NAME = "model.onnx"  # the names optimum uses, so its ORTModel / OVModel classes find them too
OPENVINO_NAME = "openvino_model.xml"
INPUT_NAMES = ["input_ids", "attention_mask"]


class EncoderHidden(torch.nn.Module):
    """(input_ids, attention_mask) (bs, seq_len) int64 -> last hidden state (bs, seq_len, hidden) of the encoder."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.encoder = model.base_model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


class MaskedLMLogits(torch.nn.Module):
    """(input_ids, attention_mask) (bs, seq_len) int64 -> logits (bs, seq_len, vocab) of the whole masked LM."""

    def __init__(self, model: PreTrainedModel):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def with_attention(model: PreTrainedModel, attention: str) -> PreTrainedModel:
    """`model` itself when it already uses `attention` ("eager" or "sdpa") in fp32, else an fp32 copy that does."""
    if model.config._attn_implementation == attention and model.dtype == torch.float32:
        return model
    copied = copy.deepcopy(model).float().eval()
    with contextlib.suppress(ValueError, ImportError):
        copied.set_attn_implementation(attention)
    return copied


def example_inputs(model: PreTrainedModel, seq_len: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.randint(5, max(6, model.config.vocab_size), (1, min(seq_len, model.config.max_position_embeddings)))
    return ids, torch.ones_like(ids)


@contextlib.contextmanager
def quiet():
    """The exporters' deprecation warnings, log lines and progress bars kept off the console."""
    loggers = [logging.getLogger(name) for name in (None, "nncf", "transformers")]
    levels = [lg.level for lg in loggers]
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        for lg in loggers:
            lg.setLevel(logging.ERROR)
        try:
            yield
        finally:
            for lg, level in zip(loggers, levels):
                lg.setLevel(level)


def export_onnx(module: torch.nn.Module, model: PreTrainedModel, path: Path, output: str) -> Path:
    """`module` as an ONNX graph at `path`, batch and sequence length dynamic, one output named `output`."""
    axes = {name: {0: "batch", 1: "sequence"} for name in [*INPUT_NAMES, output]}
    with quiet(), torch.inference_mode(False), torch.no_grad():
        torch.onnx.export(module.eval(), example_inputs(model), str(path), input_names=INPUT_NAMES,
                          output_names=[output], dynamic_axes=axes, opset_version=OPSET, dynamo=False)
    return path


def fuse_onnx(source: Path, target: Path, model: PreTrainedModel) -> dict[str, int]:
    """ONNX Runtime's BERT fusions applied to `source`, saved at `target`; the fused operators and their counts."""
    from onnxruntime.transformers import optimizer
    shape = dims(model.config)
    with quiet():
        fused = optimizer.optimize_model(str(source), model_type="bert", num_heads=shape["heads"],
                                         hidden_size=shape["hidden"])
        fused.save_model_to_file(str(target))
    return {k: v for k, v in fused.get_fused_operator_statistics().items() if v}


def transposed_copies(model) -> dict[str, str]:
    """{copy: original} for the 2-D initializers of the ONNX `model` (a ModelProto) that hold exactly the transpose
    of another: the tied MLM output layer, which the TorchScript exporter writes as a second, transposed copy of the
    token embeddings ((hidden, vocab) beside (vocab, hidden) floats: most of a small student)."""
    import numpy as np
    from onnx import numpy_helper
    weights = {w.name: w for w in model.graph.initializer if len(w.dims) == 2 and min(w.dims) > 1}
    by_shape: dict[tuple[int, ...], list[str]] = {}
    for name, w in weights.items():
        by_shape.setdefault(tuple(w.dims), []).append(name)
    copies: dict[str, str] = {}
    for name, w in weights.items():
        if name in copies.values():
            continue
        for other in by_shape.get(tuple(reversed(w.dims)), []):
            if other != name and other not in copies and \
                    np.array_equal(numpy_helper.to_array(weights[other]).T, numpy_helper.to_array(w)):
                copies[name] = other
                break
    return copies


def share_transposed_weights(path: Path) -> int:
    """Rewrite the ONNX graph at `path` so that a weight stored twice, once as is and once transposed
    (transposed_copies), is stored once: the copy becomes a Transpose node on the original, which ONNX Runtime folds
    again in memory when a session loads. The graph computes the same values. Returns the bytes saved on disk."""
    import onnx
    from onnx import helper
    graph = onnx.load(str(path))
    copies = transposed_copies(graph)
    if not copies:
        return 0
    initializers = {w.name: w for w in graph.graph.initializer}
    saved = 0
    for copy_name, original in copies.items():
        graph.graph.node.insert(0, helper.make_node("Transpose", [original], [copy_name], name=f"{copy_name}/shared",
                                                    perm=[1, 0]))  # before every node: its input is an initializer
        saved += initializers[copy_name].ByteSize()
        graph.graph.initializer.remove(initializers[copy_name])
    onnx.save(graph, str(path))
    return saved


# the names ONNX Runtime's quantizer gives the int8 form of an initializer W, its scale and its zero point
QUANTIZED, SCALE, ZERO_POINT = "_quantized", "_scale", "_zero_point"


def share_quantized_copies(path: Path, copies: dict[str, str]) -> int:
    """Rewrite the dynamically quantised ONNX graph at `path` so that the int8 form of a transposed copy (the tied MLM
    output layer, `copies` as transposed_copies found them before quantisation) is read from its original's int8 form
    through a Transpose node, with the original's scale and zero point: the token embeddings are then stored once.

    The quantizer stores the embeddings (EmbedLayerNormalization's table) as uint8 with a zero point and the output
    layer's MatMul weight as int8 without one: two quantisations of the same matrix, each within half a step of its
    floats. The output layer's MatMulInteger takes uint8 weights as well, so it reads the embeddings' form instead.
    A copy whose int8 form is read by anything but a MatMulInteger's weight input, or whose original was left in
    floats, is left as it is. Returns the bytes saved on disk."""
    import onnx
    from onnx import helper
    graph = onnx.load(str(path))
    initializers = {w.name: w for w in graph.graph.initializer}
    users: dict[str, list[tuple[onnx.NodeProto, int]]] = {}
    for node in graph.graph.node:
        for index, name in enumerate(node.input):
            users.setdefault(name, []).append((node, index))

    def read_as_weight(name: str) -> bool:  # only ever the weight input of a MatMulInteger
        found = users.get(name + QUANTIZED, [])
        return bool(found) and all(node.op_type == "MatMulInteger" and index == 1 for node, index in found)

    saved = 0
    for copy_name, original in copies.items():
        if not read_as_weight(copy_name):  # transposed_copies may name either of the two the copy
            copy_name, original = original, copy_name
        copy_names = [copy_name + suffix for suffix in (QUANTIZED, SCALE, ZERO_POINT)]
        original_names = [original + suffix for suffix in (QUANTIZED, SCALE, ZERO_POINT)]
        if not read_as_weight(copy_name) or not all(name in initializers for name in copy_names + original_names):
            continue
        shared = f"{original_names[0]}/transposed"
        for copy_part, original_part in zip(copy_names, original_names):
            for node, index in users.get(copy_part, []):
                node.input[index] = shared if copy_part == copy_names[0] else original_part
            saved += initializers[copy_part].ByteSize()
            graph.graph.initializer.remove(initializers[copy_part])
        graph.graph.node.insert(0, helper.make_node("Transpose", [original_names[0]], [shared], name=shared,
                                                    perm=[1, 0]))
    if saved:
        onnx.save(graph, str(path))
    return saved


def quantize_onnx(source: Path, target: Path) -> Path:
    """Dynamic int8 quantisation of `source` (weights int8 per tensor, activations per batch), saved at `target`; a
    weight that `source` holds twice, once transposed (the tied MLM output layer), stays one copy in int8 as well:
    the output layer reads the embeddings' uint8 table (share_quantized_copies)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    copies = transposed_copies(onnx.load(str(source)))
    with quiet():  # the fused graph's contrib operators have no inferred types: float32 is theirs
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    if copies:
        share_quantized_copies(target, copies)
    return target


def convert_openvino(module: torch.nn.Module, model: PreTrainedModel, path: Path, int8: bool) -> Path:
    """`module` as OpenVINO IR (xml + bin) at `path`, shapes dynamic; int8 weights by NNCF when `int8`."""
    import openvino as ov
    ids, mask = example_inputs(model)
    with quiet(), torch.inference_mode(False), torch.no_grad():
        converted = ov.convert_model(module.eval(), example_input={"input_ids": ids, "attention_mask": mask})
        if int8:
            import nncf
            converted = nncf.compress_weights(converted)  # int8 asymmetric, per output channel
        ov.save_model(converted, str(path), compress_to_fp16=False)
    return path


@dataclass
class Built:
    """What an export left: the file the runtime opens, every file it reads, and how long it took."""
    main: Path
    files: list[Path]
    seconds: float
    notes: list[str] = field(default_factory=list)

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)


def build(mode: str, model: PreTrainedModel, folder: Path, whole_model: bool) -> Built:
    """Export `model` for a runtime mode ("onnxruntime", "onnxruntime-int8", "openvino", "openvino-int8") into
    `folder`: its encoder (output "last_hidden_state") or, with `whole_model`, the masked LM (output "logits").
    Raises ValueError with a sentence when an exporter fails."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    output = "logits" if whole_model else "last_hidden_state"
    wrap = MaskedLMLogits if whole_model else EncoderHidden
    start = time.perf_counter()
    try:
        if mode.startswith("onnxruntime"):
            raw = export_onnx(wrap(with_attention(model, "eager")), model, folder / "exported.onnx", output)
            target = folder / ONNX_NAME
            fused_path = folder / "fused.onnx" if mode.endswith("int8") else target
            fused = fuse_onnx(raw, fused_path, model)
            raw.unlink()
            notes = ["fused: " + ", ".join(f"{k} {v}" for k, v in fused.items())]
            # only the masked LM has a tied output layer; the benchmark's encoder graphs are not read again
            if whole_model and not mode.endswith("int8") and share_transposed_weights(target):
                notes.append("tied output layer stored once")
            if mode.endswith("int8"):
                quantize_onnx(fused_path, target)
                fused_path.unlink()
                notes.append("dynamic int8 quantisation, a tied output layer stored once")
            files = [target]
        elif mode.startswith("openvino"):
            target = convert_openvino(wrap(with_attention(model, "sdpa")), model, folder / OPENVINO_NAME,
                                      mode.endswith("int8"))
            files = [target, target.with_suffix(".bin")]
            notes = ["NNCF int8 weight compression"] if mode.endswith("int8") else []
        else:
            raise ValueError(f"'{mode}' is not a runtime mode; choose one of onnxruntime, onnxruntime-int8, openvino, "
                             "openvino-int8.")
    except (RuntimeError, TypeError, OSError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise ValueError(f"Exporting {model.config.model_type} for {mode} failed: {first}") from None
    return Built(target, files, time.perf_counter() - start, notes)

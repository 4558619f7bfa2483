"""ONNX Runtime and OpenVINO beside PyTorch: which of them can run here, exporting a model to them, running it.

available (which runtime modes can run on this machine, and why not), convert (export through torch.onnx and
openvino.convert_model, ONNX Runtime's transformer fusions, int8 by ONNX Runtime's dynamic quantisation or NNCF's
weight compression), session (a saved model loaded by its runtime), variant (a runtime mode as a benchmark Variant)
and exported (an exported masked LM folder: its files, metadata and a model the Predictions tab can run).
"""
from core.bench.runtimes.available import RUNTIME_MODES, available_modes, why_not

__all__ = ["RUNTIME_MODES", "available_modes", "why_not"]

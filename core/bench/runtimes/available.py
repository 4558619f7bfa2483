"""Which runtime modes can run on this machine: each needs its package, and runs on the CPU only."""
from __future__ import annotations

import importlib.util

import torch

from core.bench import machine

RUNTIME_MODES = ("onnxruntime", "onnxruntime-int8", "openvino", "openvino-int8")
INT8_MODES = ("onnxruntime-int8", "openvino-int8")
PACKAGES = {  # mode -> the import names it needs
    "onnxruntime": ("onnx", "onnxruntime"),
    "onnxruntime-int8": ("onnx", "onnxruntime"),
    "openvino": ("openvino",),
    "openvino-int8": ("openvino", "nncf"),
}


def missing_packages(mode: str) -> list[str]:
    return [name for name in PACKAGES[mode] if importlib.util.find_spec(name) is None]


def why_not(mode: str, device: str = "cpu") -> str:
    """Why `mode` cannot run here, as the end of a sentence; "" when it can (reference and fast always can)."""
    if mode not in RUNTIME_MODES:
        return ""
    if device != "cpu":
        return "it runs on the CPU only in this lab"
    missing = missing_packages(mode)
    if missing:
        verb = "is" if len(missing) == 1 else "are"
        return f"{' and '.join(missing)} {verb} not installed (pip install {' '.join(missing)})"
    return ""


def available_modes(modes: tuple[str, ...], device: str = "cpu") -> list[str]:
    """The modes of `modes` that can run on `device` here."""
    return [m for m in modes if not why_not(m, device)]


def openvino_dtype() -> torch.dtype:
    """bf16 where the CPU multiplies it in hardware (AVX-512 BF16 or AMX), else float32."""
    return torch.bfloat16 if machine.cpu_has_fast_bf16() else torch.float32


def compute_dtype(mode: str) -> torch.dtype:
    """The arithmetic a runtime mode's matrix products use: int8 for the quantised ONNX graph, bf16 or float32 for
    OpenVINO (its int8 mode stores int8 weights and multiplies in its inference precision)."""
    if mode == "onnxruntime-int8":
        return torch.int8
    if mode.startswith("openvino"):
        return openvino_dtype()
    return torch.float32

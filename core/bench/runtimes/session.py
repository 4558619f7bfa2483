"""A saved model loaded by its runtime, called with int64 arrays: ONNX Runtime or OpenVINO on the CPU."""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from core.bench.machine import dtype_name


class RuntimeSession:
    """One model file opened by ONNX Runtime (.onnx) or compiled by OpenVINO (.xml) for the CPU.

    threads: the intra-op threads, torch's own count by default, so every mode uses the same cores.
    precision: OpenVINO's inference precision, torch.float32 or torch.bfloat16 (ignored by ONNX Runtime).
    Calling it with input_ids and attention_mask (bs, seq_len) returns its one output as a float32 array.
    load_s: seconds to open or compile the model (not part of any timed run).
    """

    def __init__(self, path: Path, threads: int | None = None, precision: torch.dtype = torch.float32):
        self.path, threads = Path(path), threads or torch.get_num_threads()
        start = time.perf_counter()
        if self.path.suffix == ".onnx":
            import onnxruntime as ort
            options = ort.SessionOptions()
            options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
            self._session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
            self.runtime, self.precision = "onnxruntime", "float32"
        elif self.path.suffix == ".xml":
            import openvino as ov
            hint = "bf16" if precision == torch.bfloat16 else "f32"
            self._compiled = ov.Core().compile_model(str(self.path), "CPU", {
                "INFERENCE_PRECISION_HINT": hint, "INFERENCE_NUM_THREADS": threads, "PERFORMANCE_HINT": "LATENCY"})
            self._request = self._compiled.create_infer_request()
            self.runtime, self.precision = "openvino", dtype_name(precision)
        else:
            raise ValueError(f"{self.path.name} is neither an ONNX model (.onnx) nor OpenVINO IR (.xml).")
        self.load_s = time.perf_counter() - start

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feed = {"input_ids": np.asarray(input_ids, dtype=np.int64),
                "attention_mask": np.asarray(attention_mask, dtype=np.int64)}
        if self.runtime == "onnxruntime":
            return self._session.run(None, feed)[0]
        result = self._request.infer(feed)
        return np.array(result[self._compiled.output(0)], dtype=np.float32)  # the request reuses its buffer

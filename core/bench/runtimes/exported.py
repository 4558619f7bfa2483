"""An exported masked LM folder (what `python -m train.export` writes): where a run keeps its exports, the record of
how one was made, and the folder loaded as a model the comparison code runs like a PyTorch one."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from transformers import AutoTokenizer
from transformers.modeling_outputs import MaskedLMOutput

from core.bench.runtimes.available import openvino_dtype
from core.bench.runtimes.convert import ONNX_NAME, OPENVINO_NAME
from core.bench.runtimes.session import RuntimeSession
from core.formatting import error_sentence
from core.models import zoo

EXPORT_INFO = "export.json"  # how the folder was made, and what was measured on it
RUN_EXPORTS = "exports"  # a run's exports: <run dir>/exports/<format>[-int8]/


def export_name(fmt: str, int8: bool) -> str:
    """The folder name of one export of a run: "onnx", "onnx-int8", "openvino" or "openvino-int8"."""
    return f"{fmt}-int8" if int8 else fmt


def run_exports(run_dir: Path) -> Path:
    return Path(run_dir) / RUN_EXPORTS


def exported_folders(run_dir: Path) -> list[Path]:
    """The finished exports of a run, by name (an export is finished once its export.json is written)."""
    root = run_exports(run_dir)
    return sorted(p for p in root.iterdir() if (p / EXPORT_INFO).is_file()) if root.is_dir() else []


def read_export_info(folder: Path) -> dict:
    """The folder's export.json; ValueError when the folder is not a finished export."""
    path = Path(folder) / EXPORT_INFO
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ValueError(f"{Path(folder).name} is not a finished export (its {EXPORT_INFO} is missing or "
                         "damaged); export the model again.") from None
    if not isinstance(info, dict) or info.get("format") not in ("onnx", "openvino"):
        raise ValueError(f"{Path(folder).name}/{EXPORT_INFO} does not say which format the export is in.")
    return info


class ExportedMaskedLM(torch.nn.Module):
    """An exported masked LM called as a transformers one: (input_ids, attention_mask) (bs, seq_len) ->
    MaskedLMOutput with logits (bs, seq_len, vocab) float32, computed by ONNX Runtime or OpenVINO on the CPU."""

    def __init__(self, folder: Path, info: dict):
        super().__init__()
        folder = Path(folder)
        main = folder / (ONNX_NAME if info["format"] == "onnx" else OPENVINO_NAME)
        if not main.is_file():
            raise ValueError(f"{folder.name} has no {main.name}; export the model again.")
        precision = openvino_dtype() if info["format"] == "openvino" else torch.float32
        self.session = RuntimeSession(main, precision=precision)
        self.config = SimpleNamespace(model_type=f"exported-{info['format']}",  # not BERT: the whole graph is run
                                      max_position_embeddings=int(info["max_position_embeddings"]),
                                      vocab_size=int(info["vocab_size"]))
        self._device = torch.nn.Parameter(torch.empty(0), requires_grad=False)  # tells callers it lives on the CPU

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **_) -> MaskedLMOutput:
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        return MaskedLMOutput(logits=torch.from_numpy(self.session(input_ids.cpu().numpy(), mask.cpu().numpy())))


def load_exported(folder: Path, name: str | None = None) -> zoo.LoadedModel:
    """An exported folder with its tokenizer, as the Predictions tab's comparisons take models; ValueError when the
    folder is not a finished export, its runtime is not installed here, or its files are damaged (the runtime's or
    the tokenizer's own error, of any type, as one sentence)."""
    folder = Path(folder)
    info = read_export_info(folder)
    try:
        model = ExportedMaskedLM(folder, info)
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except ImportError as error:
        raise ValueError(f"{folder.name} needs {error.name or 'its runtime'}, which is not installed here.") from None
    except ValueError:
        raise
    except Exception as error:  # ONNX Runtime and OpenVINO raise types of their own for a damaged file
        why = error_sentence(error).replace(str(folder), folder.name)  # this server's folders are its own business
        raise ValueError(f"The export {name or folder.name} cannot be loaded ({why}); export the model again.") \
            from None
    return zoo.LoadedModel(name or f"{info.get('source', folder.name)} [{folder.name}]", model, tokenizer, "local")

"""Export a run's student (or any masked LM the lab loads) to run in ONNX Runtime or OpenVINO without the lab:

    python -m train.export run:RUN_ID --format onnx --int8 --output student-onnx-int8

The folder holds the model (model.onnx, or openvino_model.xml + .bin), the tokenizer, the model's config.json,
export.json (how it was made, what was measured) and a README saying how to run it and how its size, speed and
top-1 agreement compare with the PyTorch student. Exit code 2 with one line on stderr for anything a person can fix.
"""
from __future__ import annotations

if __name__ == "__main__":  # read the flags (train.cli) before the imports below load torch: see run_command
    from core.formatting import run_command

    run_command("train.cli:export_parser", "train.export:run")

import argparse
import copy
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from core.bench.runtimes.available import openvino_dtype, why_not
from core.bench.runtimes.convert import ONNX_NAME, OPENVINO_NAME, build
from core.bench.runtimes.exported import EXPORT_INFO
from core.bench.runtimes.session import RuntimeSession
from core.bench.variants import probe_batches, random_tokens
from core.models import zoo
from core.paths import check_output_folder
from core.saving import save_tokenizer
from train.cli import EXPORT_FORMATS as FORMATS
from train.cli import export_parser

SPEED_SEQ_LEN = 128  # tokens of the sequence the README's latency is measured on, at batch 1
SPEED_RUNS = 5


@dataclass
class ExportReport:
    """What an export wrote and measured: sizes in MB on disk, latencies in ms at batch 1 and `seq_len` tokens,
    top-1 agreement with the PyTorch model at `positions` masked positions of the probe sentences."""
    source: str
    format: str
    int8: bool
    runtime: str
    precision: str
    folder: str  # the export folder's name
    size_mb: float
    pytorch_size_mb: float
    seq_len: int
    latency_ms: float
    pytorch_latency_ms: float
    agreement: float
    positions: int
    export_s: float
    vocab_size: int
    max_position_embeddings: int


def mode_of(fmt: str, int8: bool) -> str:
    """The benchmark mode that runs what this export makes."""
    return ("onnxruntime" if fmt == "onnx" else "openvino") + ("-int8" if int8 else "")


def precision_label(fmt: str, int8: bool, runtime_precision: str) -> str:
    """How the export computes: "float32", "bfloat16", "int8 dynamic" or "int8 weights, bfloat16"."""
    if not int8:
        return runtime_precision
    return "int8 dynamic" if fmt == "onnx" else f"int8 weights, {runtime_precision}"


def check_output(output: Path) -> None:
    """The output is a new or empty folder, or an earlier export (which is replaced); ValueError otherwise."""
    check_output_folder(output, f"--output '{output}'", "an earlier export", "replace it", marks=(EXPORT_INFO,))


def _median_ms(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up: the first pass allocates and picks kernels
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1e3, 2)


def top1_agreement(loaded: zoo.LoadedModel, session: RuntimeSession) -> tuple[float, int]:
    """Share of the probe sentences' masked positions where the export's best guess is the PyTorch model's."""
    agree = total = 0
    limit = min(128, loaded.model.config.max_position_embeddings)
    with torch.inference_mode():
        for batch in probe_batches(loaded.tokenizer, max_length=limit):
            masked = batch["input_ids"] == loaded.tokenizer.mask_token_id  # (bs, seq_len)
            want = loaded.model(**batch).logits[masked].argmax(-1)  # (n_masked,)
            got = torch.from_numpy(session(batch["input_ids"].numpy(), batch["attention_mask"].numpy()))
            agree += int((got[masked].argmax(-1) == want).sum())
            total += int(masked.sum())
    return (agree / total if total else float("nan")), total


def readme(report: ExportReport) -> str:
    model_file = ONNX_NAME if report.format == "onnx" else OPENVINO_NAME
    if report.format == "onnx":
        run = (f"import onnxruntime as ort\nsession = ort.InferenceSession(\"{model_file}\")\n"
               "logits = session.run(None, {\"input_ids\": batch[\"input_ids\"], "
               "\"attention_mask\": batch[\"attention_mask\"]})[0]")
        install = "pip install onnxruntime transformers"
    else:
        hint = "bf16" if "bfloat16" in report.precision else "f32"
        run = (f"import openvino as ov\ncompiled = ov.Core().compile_model(\"{model_file}\", \"CPU\", "
               f"{{\"INFERENCE_PRECISION_HINT\": \"{hint}\"}})\nlogits = compiled(dict(batch))[0]")
        install = "pip install openvino transformers"
    what = "int8 weights" if report.int8 else "fp32 weights"
    return f"""# {report.source}, exported for {report.runtime} ({what})

A masked language model: (input_ids, attention_mask) int64 (batch, tokens) -> logits float32 (batch, tokens,
{report.vocab_size}). The tokenizer is in this folder; sequences up to {report.max_position_embeddings} tokens.

## Run it

```bash
{install}
```

```python
from transformers import AutoTokenizer
tokenizer = AutoTokenizer.from_pretrained(".")
batch = tokenizer(["Я люблю пить [MASK] с лимоном."], return_tensors="np", return_token_type_ids=False)
{run}
mask = batch["input_ids"][0] == tokenizer.mask_token_id
print(tokenizer.convert_ids_to_tokens(logits[0][mask].argmax(-1)))
```

## Measured when exported (on the exporting machine)

| | this export ({report.runtime}, {report.precision}) | PyTorch fp32 |
|---|---|---|
| size on disk | {report.size_mb:,.1f} MB | {report.pytorch_size_mb:,.1f} MB |
| latency, batch 1, {report.seq_len} tokens | {report.latency_ms:.1f} ms | {report.pytorch_latency_ms:.1f} ms |

Top-1 agreement with the PyTorch model on the lab's probe sentences: {report.agreement:.1%} of {report.positions}
masked positions. Export and compilation took {report.export_s:.1f} s.
"""


def export_model(target: str, fmt: str, int8: bool, output: str | Path,
                 load: Callable[[str], zoo.LoadedModel] = zoo.load, label: str | None = None) -> ExportReport:
    """Export `target` (any name the lab loads, or a run folder) to `output`; measure and describe it there.
    `label`: the model's name in the README and export.json (default `target`; a folder by its own name, never this
    machine's path).

    Raises ValueError with a sentence: an unknown format, a runtime not installed, an output folder holding other
    files, a model that cannot be loaded or exported."""
    if fmt not in FORMATS:
        raise ValueError(f"--format must be onnx or openvino, not {fmt!r}.")
    mode = mode_of(fmt, int8)
    why = why_not(mode)
    if why:
        raise ValueError(f"Cannot export for {mode}: {why}.")
    output = Path(output).expanduser()
    check_output(output)
    loaded = load(target)  # a run folder given by path loads its student
    if loaded.tokenizer.mask_token is None:
        raise ValueError(f"'{target}' has a tokenizer without a mask token; only masked LMs are exported here.")
    model = loaded.model if loaded.model.dtype == torch.float32 else copy.deepcopy(loaded.model).float()
    if output.exists():
        shutil.rmtree(output)
    built = build(mode, model, output, whole_model=True)
    precision = openvino_dtype() if fmt == "openvino" else torch.float32
    session = RuntimeSession(built.main, precision=precision)
    save_tokenizer(loaded.tokenizer, output)
    model.config.save_pretrained(output)
    seq_len = min(SPEED_SEQ_LEN, model.config.max_position_embeddings)
    inputs = random_tokens(model.config.vocab_size, 1, seq_len, "cpu")
    arrays = {k: v.numpy() for k, v in inputs.items()}
    with torch.inference_mode():
        pytorch_ms = _median_ms(lambda: model(**inputs), SPEED_RUNS)
    agreement, positions = top1_agreement(loaded, session)
    report = ExportReport(
        source=label or (Path(target).expanduser().resolve().name if Path(target).expanduser().is_dir() else target),
        format=fmt, int8=int8, runtime=session.runtime,
        precision=precision_label(fmt, int8, session.precision), folder=output.name,
        size_mb=round(built.size_bytes / 2**20, 1),
        pytorch_size_mb=zoo.model_summary(model)["size_mb"], seq_len=seq_len,
        latency_ms=_median_ms(lambda: session(arrays["input_ids"], arrays["attention_mask"]), SPEED_RUNS),
        pytorch_latency_ms=pytorch_ms, agreement=round(agreement, 4), positions=positions,
        export_s=round(built.seconds + session.load_s, 1), vocab_size=model.config.vocab_size,
        max_position_embeddings=model.config.max_position_embeddings)
    (output / "README.md").write_text(readme(report), encoding="utf-8")
    (output / EXPORT_INFO).write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")  # written last: it marks the export finished
    return report


def summary(report: ExportReport) -> str:
    """One line: where, how big, how fast, how much it agrees."""
    return (f"{report.runtime} ({report.precision}): {report.size_mb:,.1f} MB "
            f"(PyTorch fp32 {report.pytorch_size_mb:,.1f} MB), {report.latency_ms:.1f} ms at batch 1 and "
            f"{report.seq_len} tokens (PyTorch {report.pytorch_latency_ms:.1f} ms), top-1 agreement "
            f"{report.agreement:.1%} over {report.positions} masked positions")


def main(argv: list[str] | None = None) -> int:
    """The command line in this process: argparse exits 2 on a malformed flag, then run() returns the exit code."""
    return run(export_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Export as the flags say; exit code 2 and one line for what a person can fix."""
    try:
        report = export_model(args.model, args.format, args.int8, args.output)
    except ValueError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    print(f"Exported {args.model} to {args.output}: {summary(report)}.")
    return 0

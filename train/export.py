"""Export a finished run's student (or any masked LM the lab loads) to run in ONNX Runtime or OpenVINO without the lab:

    python -m train.export run:RUN_ID --format onnx --int8 --output student-onnx-int8

The folder holds the model (model.onnx, or openvino_model.xml + .bin), the tokenizer, the model's config.json,
export.json (how it was made, what was measured) and a README saying how to run it and how its size, speed and
top-1 agreement compare with the PyTorch student; an agreement below AGREEMENT_FLAG is flagged in all three places
where it is reported. A run that has not finished is refused, as the Distill tab's export refuses it: its newest
checkpoint is not the student the run was asked for. Exit code 2 with one line on stderr for anything a person can fix.
"""
from __future__ import annotations

if __name__ == "__main__":  # read the flags (train.cli) before the imports below load torch: see run_command
    from train.cli import export_command

    export_command()

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
from core.bench.variants import AGREEMENT_THRESHOLD, probe_batches, random_tokens
from core.models import zoo
from core.paths import check_output_folder
from core.runs.store import RunPaths, checkpoint_step, read_status
from core.saving import save_tokenizer
from train.cli import EXPORT_FORMATS as FORMATS
from train.cli import export_parser

SPEED_SEQ_LEN = 128  # tokens of the sequence the README's latency is measured on, at batch 1
SPEED_RUNS = 5
# Top-1 agreement with the PyTorch model below which an export is flagged, the benchmark's for trained models: an fp32
# export agrees at about 100% (only near-ties flip), an int8 one a few points lower, often enough to change the words
AGREEMENT_FLAG = AGREEMENT_THRESHOLD


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
    agreement_note: str = ""  # agreement_note(): what an agreement below AGREEMENT_FLAG means; empty above it


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
    check_output_folder(output, "--output", "an earlier export", "replace it", marks=(EXPORT_INFO,))


def check_finished(target: str) -> None:
    """Refuse `target` when it names a run (run:RUN_ID or a run's folder) that has not finished; any other model,
    and a run's student before training (run:RUN_ID@init), passes. ValueError from zoo.resolve for an unknown run,
    from check_finished_run for an unfinished one."""
    source, location = zoo.resolve(target)
    if source != "run" or (target.strip().startswith("run:") and zoo.run_name_parts(target)[1] == "init"):
        return
    check_finished_run(Path(location), target.strip())


def check_finished_run(run_dir: Path, named: str) -> None:
    """ValueError unless the run in `run_dir` has finished (its final/ student is saved), in one sentence that says
    what to do: wait for a run still queued or training, else finish it with `train.distill --resume` (`named`: the
    run as the person named it, which --resume takes as it is), or finish it where its newest checkpoint stands with
    --max-steps at that checkpoint's step, which trains no further."""
    if (RunPaths(run_dir).final / "config.json").is_file():
        return
    state = read_status(run_dir).get("state")
    if state in ("queued", "running"):
        raise ValueError(f"Run '{run_dir.name}' is still {'queued' if state == 'queued' else 'training'}: only a "
                         "finished run's student is exported; wait for it to finish, then export it.")
    step = checkpoint_step(run_dir)
    where = (f" (or with --max-steps {step} to finish it at its checkpoint of step {step:,}, training no further)"
             if step else "")
    raise ValueError(f"Run '{run_dir.name}' has no finished student (final/): only a finished run's student is "
                     f"exported; finish it with python -m train.distill --resume {named}{where}, then export it.")


def agreement_note(agreement: float, positions: int, fmt: str, int8: bool) -> str:
    """A sentence on an agreement below AGREEMENT_FLAG (a share, 0 to 1, over `positions` masked positions): how
    often the export's top word differs from the PyTorch model's, and which export comes closer: fp32 weights for an
    int8 one, or for ONNX Runtime's the other runtime, whose int8 leaves the activations in floats; ONNX Runtime for
    an fp32 OpenVINO export that computes in bfloat16, OpenVINO for an fp32 ONNX one. "" at or above the flag, or
    without positions to judge by."""
    if not positions or agreement >= AGREEMENT_FLAG:
        return ""
    closer = {("onnx", True): "fp32 weights instead of int8, or OpenVINO (its int8 compresses the weights only)",
              ("openvino", True): "fp32 weights instead of int8",
              ("openvino", False): "ONNX Runtime (it computes in float32 on every CPU)",
              ("onnx", False): "OpenVINO"}[fmt, int8]
    return (f"Low agreement (below {AGREEMENT_FLAG:.0%}): this export predicts a different top word than the PyTorch "
            f"model at {1 - agreement:.1%} of the {positions:,} masked positions; for a closer export, use {closer}.")


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
    note = f"\n**{report.agreement_note}**\n" if report.agreement_note else ""
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
{note}"""


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
    check_finished(target)
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
    agreement = round(agreement, 4)  # as export.json and the README hold it, so the flag follows what they show
    report = ExportReport(
        source=label or (Path(target).expanduser().resolve().name if Path(target).expanduser().is_dir() else target),
        format=fmt, int8=int8, runtime=session.runtime,
        precision=precision_label(fmt, int8, session.precision), folder=output.name,
        size_mb=round(built.size_bytes / 2**20, 1),
        pytorch_size_mb=zoo.model_summary(model)["size_mb"], seq_len=seq_len,
        latency_ms=_median_ms(lambda: session(arrays["input_ids"], arrays["attention_mask"]), SPEED_RUNS),
        pytorch_latency_ms=pytorch_ms, agreement=agreement, positions=positions,
        export_s=round(built.seconds + session.load_s, 1), vocab_size=model.config.vocab_size,
        max_position_embeddings=model.config.max_position_embeddings,
        agreement_note=agreement_note(agreement, positions, fmt, int8))
    (output / "README.md").write_text(readme(report), encoding="utf-8")
    (output / EXPORT_INFO).write_text(json.dumps(asdict(report), indent=2, ensure_ascii=False) + "\n",
                                      encoding="utf-8")  # written last: it marks the export finished
    return report


def summary(report: ExportReport) -> str:
    """One line: how big, how fast, how much it agrees, and the sentence on a low agreement (agreement_note). Without
    its final full stop, which the caller's line adds."""
    line = (f"{report.runtime} ({report.precision}): {report.size_mb:,.1f} MB "
            f"(PyTorch fp32 {report.pytorch_size_mb:,.1f} MB), {report.latency_ms:.1f} ms at batch 1 and "
            f"{report.seq_len:,} tokens (PyTorch {report.pytorch_latency_ms:.1f} ms), top-1 agreement "
            f"{report.agreement:.1%} over {report.positions:,} masked positions")
    return f"{line}. {report.agreement_note.removesuffix('.')}" if report.agreement_note else line


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

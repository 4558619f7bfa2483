"""The speed benchmark's flags (python -m core.bench --help), in a module without torch: --help and a mistyped flag
answer at once, and core.bench.cli loads the benchmark only once they are read."""
from __future__ import annotations

import argparse

from core.bench.limits import CARD_MODELS, CARD_SEQ_LEN, MAX_BATCH_SIZE, MAX_RUNS, MAX_SEQ_LEN, MAX_WARMUP
from core.formatting import OneLineParser, run_command


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="python -m core.bench", description="Measure encoder latency and throughput of teacher and "
                "students as the DeepPavlov model card did, beside the card's figures.")
    p.add_argument("--models", default=",".join(CARD_MODELS),
                   help="comma-separated model names: arch:<name>, a known name, run:<id>, a folder or a Hub id "
                        "(default: the card's teacher and base student as random-weight architectures)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--batch-sizes", default="1,16", help=f"comma-separated batch sizes, each 1 to {MAX_BATCH_SIZE} "
                   "(default 1,16)")
    p.add_argument("--seq-len", type=int, default=CARD_SEQ_LEN, help=f"tokens per sequence, at most {MAX_SEQ_LEN} "
                   "and the models' own limit (default 512)")
    p.add_argument("--modes", default="reference,fast",
                   help="comma-separated: reference (fp32 eager), fast (16-bit SDPA), onnxruntime (fp32, fused), "
                        "onnxruntime-int8 (dynamic), openvino (bf16 where the CPU has it, else f32), openvino-int8 "
                        "(NNCF weights); a runtime mode that cannot run here is skipped with a line saying why "
                        "(default reference,fast)")
    p.add_argument("--runs", type=int, default=None, help=f"timed runs per measurement, 1 to {MAX_RUNS}, or 0 for "
                   "about 3 s of runs, 3 to 10 (the default, as the Benchmark tab's 0)")
    p.add_argument("--warmup", type=int, default=None, help=f"warm-up runs, 0 to {MAX_WARMUP} (default 2, or 1 for "
                   "runs over a second)")
    p.add_argument("--compile", action="store_true", help="torch.compile the fast path (slow to start)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch, at most the CPU count "
                   "(default: torch's own choice, one per core)")
    p.add_argument("--profile", action="store_true", help="also print where the fast path spends its time, "
                   "at batch 1, for each model")
    p.add_argument("--json", dest="json_path", default=None, help="write rows, machine and limits to this JSON file; "
                   "an earlier result of this command there is replaced, any other existing file is refused (exit 2)")
    return p


def command() -> None:
    """python -m core.bench; rudistil-bench."""
    run_command("core.bench.flags:build_parser", "core.bench.cli:run")

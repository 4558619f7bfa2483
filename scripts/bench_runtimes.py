"""Every benchmark mode on one model in one run: PyTorch reference and fast, ONNX Runtime and OpenVINO (fp32/bf16
and int8), with each mode's speed-up over fast and its distance from this CPU's arithmetic limit.

    python -m scripts.bench_runtimes                      # the base student's architecture, batch 1, seq_len 512
    python -m scripts.bench_runtimes --model arch:distilrubert-tiny-cased-conversational-v1 --seq-len 64

Modes that cannot run here are skipped with a line saying why. The limit is the one core.bench reports: FLOPs of the
encoder's matrix products (core.bench.plan.encoder_flops) over the measured large-matmul rate of the dtype the mode
multiplies in, and beside it the theoretical peak (cores x clock x FLOPs per cycle).
"""
from __future__ import annotations

import argparse
import sys

from core.bench import BenchConfig, make_plan, run_benchmark
from core.bench.plan import MODES
from core.formatting import format_seconds


def table(result: dict) -> list[dict]:
    """One line per mode: latency, ratio to fast, share of the limits, size, setup and check."""
    rows = result["rows"]
    fast = next((r for r in rows if r["mode"] == "fast"), None)
    lines = []
    for r in rows:
        limit_s = r["latency_s"] * r["share_of_peak"] if r["share_of_peak"] else None
        lines.append({"mode": r["mode"], "dtype": r["dtype"], "latency_ms": round(r["latency_s"] * 1e3, 1),
                      "p90_ms": round(r["latency_p90_s"] * 1e3, 1),
                      "x_fast": round(fast["latency_s"] / r["latency_s"], 2) if fast else None,
                      "x_limit": round(r["latency_s"] / limit_s, 2) if limit_s else None,
                      "share_theoretical": r["share_of_theoretical"], "size_mb": r["size_mb"],
                      "peak_mem_mb": r["peak_mem_mb"], "setup_s": r["setup_s"], "check": r["check"]})
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="arch:distilrubert-base-cased-conversational")
    p.add_argument("--seq-len", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=1)
    p.add_argument("--runs", type=int, default=None, help="timed runs per mode (default: about 3 s, 3 to 10)")
    args = p.parse_args(argv)
    config = BenchConfig(models=[args.model], batch_sizes=[args.batch_size], seq_len=args.seq_len,
                         modes=list(MODES), runs=args.runs)
    try:
        plan = make_plan(config)
    except ValueError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    print(plan.describe())
    for line in plan.skip_lines():
        print(f"note: {line}")
    try:
        result = run_benchmark(config, plan=plan)
    except ValueError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    import pandas as pd
    m, rows = result["machine"], result["rows"]
    print(f"\n{args.model}, batch {args.batch_size:,}, seq_len {args.seq_len:,}: {rows[0]['flops_per_sample_g']} GFLOP "
          f"per sample (matrix products of the encoder, a multiply-add counted as two)")
    print(f"Machine: {m['cpu_model']}, {m['torch_threads']} threads, AVX-512 BF16 {m['avx512_bf16']}, AMX "
          f"{m['amx_bf16']}, load average {m['load_avg_1min']}")
    for dtype, peak in result["peak"].items():
        print(f"Limit {dtype}: measured matmul {peak['measured_gflops']:,.0f} GFLOP/s; theoretical "
              f"{peak['theoretical_basis']}")
    print()
    print(pd.DataFrame(table(result)).to_string(index=False, na_rep="-"))
    correct = [line for line in table(result) if "BELOW" not in line["check"]]
    for what, pool in (("Fastest correct mode", correct),
                       ("Fastest correct mode with a measured limit", [c for c in correct if c["x_limit"]])):
        if pool:
            best = min(pool, key=lambda line: line["latency_ms"])
            limit = f"{best['x_limit']}x" if best["x_limit"] else "- (int8: no limit measured)"
            print(f"{what}: {best['mode']} ({best['dtype']}), {best['latency_ms']} ms, {best['x_fast']}x fast, "
                  f"time / time at the measured limit {limit}.")
    print("x_fast: fast latency / this latency; x_limit: this latency / (FLOPs / measured matmul rate of its dtype).")
    print(f"Total wall time {format_seconds(result['wall_s'])} (estimated {format_seconds(plan.estimate_s)}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())

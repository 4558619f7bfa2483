"""A benchmark's results beside the DeepPavlov model card: the card's figures, speed-up ratios, and the report
that `python -m core.bench --json` and the Benchmark tab write."""
from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from core.bench import machine
from core.bench.plan import MODES, BenchConfig, Plan
from core.models import zoo

if TYPE_CHECKING:  # core.bench imports this module to build its report
    from core.bench.engine import Peaks, Row


def known_model(name: str) -> zoo.KnownModel | None:
    """The known model behind "arch:x", "x" or x's Hub id."""
    key = name.removeprefix("arch:")
    return zoo.KNOWN_MODELS.get(key) or next((m for m in zoo.KNOWN_MODELS.values() if m.hub_id == key), None)


def published(name: str) -> dict:
    """The model card's figures for a model name; {} when the card has none."""
    known = known_model(name)
    return dict(known.published) if known else {}


def _pick(rows: list[dict], model: str, mode: str, batch_size: int) -> dict | None:
    return next((r for r in rows if r["model"] == model and r["mode"] == mode and r["batch_size"] == batch_size), None)


def card_comparison(rows: list[dict], device: str = "cpu") -> list[dict]:
    """One line per model: the card's latency (batch 1) and throughput (batch 16) beside the measured ones."""
    table = []
    for model in dict.fromkeys(r["model"] for r in rows):
        card = published(model)
        line = {"model": model, "size_mb": next(r["size_mb"] for r in rows if r["model"] == model),
                "card_size_mb": card.get("size_mb"), "card_latency_s": card.get(f"{device}_latency_s"),
                "card_throughput": card.get(f"{device}_throughput")}
        for mode in MODES:
            one, sixteen = _pick(rows, model, mode, 1), _pick(rows, model, mode, 16)
            line[f"{mode}_latency_s"] = one["latency_s"] if one else None
            line[f"{mode}_throughput"] = sixteen["throughput_samples_s"] if sixteen else None
        table.append(line)
    return table


def speedups(rows: list[dict], device: str = "cpu") -> list[dict]:
    """Teacher/student speed-up ratios, published and measured, plus fast against reference for each model.

    The teacher is the model the lab knows as a teacher, else the one with the most FLOPs; latency ratios are
    teacher over student at batch 1, throughput ratios student over teacher at batch 16.
    """
    models = list(dict.fromkeys(r["model"] for r in rows))
    if not models:
        return []
    flops = {r["model"]: r.get("flops_per_sample_g", 0.0) for r in rows}
    teacher = next((m for m in models if getattr(known_model(m), "role", None) == "teacher"),
                   max(models, key=lambda m: flops[m]))
    out = []
    for student in (m for m in models if m != teacher):
        card_t, card_s = published(teacher), published(student)
        line = {"pair": f"{teacher} / {student}"}
        key = f"{device}_latency_s"
        line["card_latency_ratio"] = round(card_t[key] / card_s[key], 2) if key in card_t and key in card_s else None
        key = f"{device}_throughput"
        line["card_throughput_ratio"] = round(card_s[key] / card_t[key], 2) if key in card_t and key in card_s else None
        for mode in MODES:
            t1, s1 = _pick(rows, teacher, mode, 1), _pick(rows, student, mode, 1)
            t16, s16 = _pick(rows, teacher, mode, 16), _pick(rows, student, mode, 16)
            line[f"{mode}_latency_ratio"] = round(t1["latency_s"] / s1["latency_s"], 2) if t1 and s1 else None
            line[f"{mode}_throughput_ratio"] = (round(s16["throughput_samples_s"] / t16["throughput_samples_s"], 2)
                                                if t16 and s16 else None)
        out.append(line)
    for model in models:
        for batch_size in sorted({r["batch_size"] for r in rows if r["model"] == model}):
            ref, fast = _pick(rows, model, "reference", batch_size), _pick(rows, model, "fast", batch_size)
            if ref and fast:
                out.append({"pair": f"{model}: fast / reference at batch {batch_size}", "model": model,
                            "batch_size": batch_size, "fast_speedup": round(ref["latency_s"] / fast["latency_s"], 2)})
    return out


def report(config: BenchConfig, rows: list[Row], plan: Plan, wall_s: float, peaks: Peaks | None,
           machine_info: dict | None = None) -> dict:
    """Everything a result file holds: the machine, the limits assumed, the rows and their comparison with the card.

    machine_info: the record taken before the run started (its load average is then other programs' alone).
    """
    row_dicts = [asdict(r) for r in rows]
    return {"machine": machine_info or machine.machine_dict(config.device), "config": asdict(config),
            "peak": peaks.as_dict() if peaks else {}, "estimate_s": round(plan.estimate_s, 1),
            "estimate_calibration_gflops": {k: round(v, 1) for k, v in plan.calibration.items()},
            "wall_s": round(wall_s, 1), "rows": row_dicts, "card": card_comparison(row_dicts, config.device),
            "speedups": speedups(row_dicts, config.device)}


def write_json(data: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path

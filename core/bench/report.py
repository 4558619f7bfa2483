"""A benchmark's results beside the DeepPavlov model card: the card's figures, speed-up ratios, and the report
that `python -m core.bench --json` and the Benchmark tab write."""
from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from core.bench import machine
from core.bench.plan import CARD_BATCH, CARD_MODES, CARD_SEQ_LEN, BenchConfig, Plan
from core.bench.records import Peaks, Row
from core.bench.runtimes.available import RUNTIME_MODES
from core.models import zoo

CARD_DEVICE = {"cpu": "cpu", "cuda": "gpu"}  # the card's figures are keyed cpu_* and gpu_*
CARD_KEY = {"latency": "latency_s", "throughput": "throughput"}


def known_model(name: str) -> zoo.KnownModel | None:
    """The known model behind "arch:x", "x" or x's Hub id."""
    key = name.removeprefix("arch:")
    return zoo.KNOWN_MODELS.get(key) or next((m for m in zoo.KNOWN_MODELS.values() if m.hub_id == key), None)


def published(name: str) -> dict:
    """The model card's figures for a model name; {} when the card has none."""
    known = known_model(name)
    return dict(known.published) if known else {}


def card_figure(name: str, device: str, kind: str) -> float | None:
    """The card's latency (s, batch 1) or throughput (samples/s, batch 16) of a model on "cpu" or "cuda"; None
    when the card has none."""
    return published(name).get(f"{CARD_DEVICE.get(device, device)}_{CARD_KEY[kind]}")


def card_gap(rows: list[dict], device: str, kinds: tuple[str, ...] = tuple(CARD_BATCH)) -> str:
    """Why none of `rows` can stand beside the card's figures of `kinds` ("latency", "throughput"), as the end of a
    sentence; "" when at least one measurement can."""
    if not rows:
        return "nothing has been measured yet."
    models = list(dict.fromkeys(r["model"] for r in rows))
    with_card = [m for m in models if any(card_figure(m, device, kind) is not None for kind in kinds)]
    if not with_card:
        return (f"the card has {device.upper()} figures only for DeepPavlov's teacher and its base and small students "
                "(arch:<name> or their Hub ids), and none of them was measured.")
    lengths = sorted({r["seq_len"] for r in rows if r["model"] in with_card})
    if CARD_SEQ_LEN not in lengths:
        return (f"the card measured {CARD_SEQ_LEN}-token sequences and this run measured "
                f"{', '.join(f'{n:,}' for n in lengths)}-token ones.")
    measured = {r["batch_size"] for r in rows if r["model"] in with_card and r["seq_len"] == CARD_SEQ_LEN}
    wanted = {kind: CARD_BATCH[kind] for kind in kinds}
    if measured & set(wanted.values()):
        return ""
    card = " and ".join(f"its {kind} at batch {batch}" for kind, batch in wanted.items())
    return (f"the card gives {card}, and this run measured batch {', '.join(map(str, sorted(measured)))} only; "
            f"add {' and '.join(str(b) for b in sorted(set(wanted.values())))} to the batch sizes.")


def measured_modes(rows: list[dict]) -> list[str]:
    """reference and fast (always reported, measured or not), then each runtime mode that was measured."""
    return [*CARD_MODES, *(m for m in RUNTIME_MODES if any(r["mode"] == m for r in rows))]


def _pick(rows: list[dict], model: str, mode: str, batch_size: int) -> dict | None:
    return next((r for r in rows if r["model"] == model and r["mode"] == mode and r["batch_size"] == batch_size), None)


def card_comparison(rows: list[dict], device: str = "cpu") -> list[dict]:
    """One line per model: the card's latency (s, batch 1) and throughput (samples/s, batch 16) beside the measured
    ones. The card measured CARD_SEQ_LEN-token sequences: a model measured at other lengths only shows its own
    figures, with the card's left empty (card_gap says why), never two lengths side by side."""
    table = []
    for model in dict.fromkeys(r["model"] for r in rows):
        own = [r for r in rows if r["model"] == model]
        at_card = [r for r in own if r.get("seq_len") == CARD_SEQ_LEN]
        line = {"model": model, "size_mb": own[0]["size_mb"], "card_size_mb": published(model).get("size_mb"),
                "card_latency_s": card_figure(model, device, "latency") if at_card else None,
                "card_throughput": card_figure(model, device, "throughput") if at_card else None}
        for mode in measured_modes(rows):
            one = _pick(at_card or own, model, mode, CARD_BATCH["latency"])
            sixteen = _pick(at_card or own, model, mode, CARD_BATCH["throughput"])
            line[f"{mode}_latency_s"] = one["latency_s"] if one else None
            line[f"{mode}_throughput"] = sixteen["throughput_samples_s"] if sixteen else None
        table.append(line)
    return table


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return round(numerator / denominator, 2) if numerator and denominator else None


def speedups(rows: list[dict], device: str = "cpu") -> list[dict]:
    """Teacher/student speed-up ratios, published and measured, plus fast against reference for each model, and
    each runtime mode against fast (runtime_speedup: fast latency / that mode's latency).

    The teacher is the model the lab knows as a teacher, else the one with the most FLOPs. One line per student and
    batch size measured for both: the latency ratio is teacher over student, the throughput ratio student over
    teacher (at one batch size the two agree up to rounding). The card's latency ratio sits on the batch-1 line,
    its throughput ratio on the batch-16 line, where the card measured them, and only when those lines were measured
    at the card's sequence length.
    """
    models = list(dict.fromkeys(r["model"] for r in rows))
    if not models:
        return []
    flops = {r["model"]: r.get("flops_per_sample_g", 0.0) for r in rows}
    teacher = next((m for m in models if getattr(known_model(m), "role", None) == "teacher"),
                   max(models, key=lambda m: flops[m]))
    out = []
    for student in (m for m in models if m != teacher):
        card = {"latency": _ratio(card_figure(teacher, device, "latency"), card_figure(student, device, "latency")),
                "throughput": _ratio(card_figure(student, device, "throughput"),
                                     card_figure(teacher, device, "throughput"))}
        shared = ({r["batch_size"] for r in rows if r["model"] == teacher} &
                  {r["batch_size"] for r in rows if r["model"] == student})
        for batch_size in sorted(shared):
            line = {"pair": f"{teacher} / {student}", "batch_size": batch_size}
            pair_rows = [_pick(rows, m, mode, batch_size) for m in (teacher, student) for mode in measured_modes(rows)]
            at_card = all(r.get("seq_len") == CARD_SEQ_LEN for r in pair_rows if r)  # the card's length, or no ratio
            for kind in CARD_BATCH:
                line[f"card_{kind}_ratio"] = card[kind] if batch_size == CARD_BATCH[kind] and at_card else None
            for mode in measured_modes(rows):
                t, s = _pick(rows, teacher, mode, batch_size), _pick(rows, student, mode, batch_size)
                line[f"{mode}_latency_ratio"] = _ratio(t["latency_s"], s["latency_s"]) if t and s else None
                line[f"{mode}_throughput_ratio"] = (_ratio(s["throughput_samples_s"], t["throughput_samples_s"])
                                                    if t and s else None)
            out.append(line)
    for model in models:
        for batch_size in sorted({r["batch_size"] for r in rows if r["model"] == model}):
            ref, fast = _pick(rows, model, "reference", batch_size), _pick(rows, model, "fast", batch_size)
            if ref and fast:
                out.append({"pair": f"{model}: fast / reference at batch {batch_size}", "model": model,
                            "batch_size": batch_size, "fast_speedup": round(ref["latency_s"] / fast["latency_s"], 2)})
            for mode in RUNTIME_MODES:
                other = _pick(rows, model, mode, batch_size)
                if fast and other:
                    out.append({"pair": f"{model}: {mode} / fast at batch {batch_size}", "model": model,
                                "mode": mode, "batch_size": batch_size,
                                "runtime_speedup": round(fast["latency_s"] / other["latency_s"], 2)})
    return out


def result_record(config: BenchConfig, rows: list[Row], plan: Plan, wall_s: float, peaks: Peaks | None,
                  machine_info: dict | None = None) -> dict:
    """Everything a result file holds: the machine, the limits assumed, the rows and their comparison with the card.

    machine_info: the record taken before the run started (its load average is then other programs' alone).
    `planned_measurements` is the plan's count, so a record written while the run goes (or after a Stop) says how
    much of it is done; `time_utc` is when the record was made, to the second.
    """
    row_dicts = [asdict(r) for r in rows]
    return {"machine": machine_info or machine.machine_dict(config.device), "config": asdict(config),
            "peak": peaks.as_dict() if peaks else {}, "estimate_s": round(plan.estimate_s, 1),
            "estimate_calibration_gflops": {k: round(v, 1) for k, v in plan.calibration.items()},
            "wall_s": round(wall_s, 1), "planned_measurements": len(plan.jobs),
            "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"), "rows": row_dicts,
            "card": card_comparison(row_dicts, config.device), "speedups": speedups(row_dicts, config.device)}


# What marks a file as a result this lab wrote (result_record() adds more, and earlier versions wrote fewer of the rest)
RESULT_KEYS = ("machine", "config", "rows", "card", "speedups")
RESULT_MAX_BYTES = 16 * 2**20  # far above any result (a few hundred rows); a larger file is something else


def is_result_file(path: str | Path) -> bool:
    """Whether `path` holds a benchmark result as result_record() makes it and write_json() writes it: a JSON object
    with RESULT_KEYS, its rows a list. Anything else (another JSON file, text, a large file) is not; OSError when the
    file cannot be read."""
    return read_result_file(path) is not None


def read_result_file(path: str | Path) -> dict | None:
    """The benchmark result `path` holds (is_result_file), or None when it holds anything else; OSError when the
    file cannot be read."""
    path = Path(path)
    if path.stat().st_size > RESULT_MAX_BYTES:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if is_result(data) else None


def is_result(data) -> bool:
    """Whether `data` has a result record's shape (result_record): a dict with RESULT_KEYS, its rows a list."""
    return (isinstance(data, dict) and all(key in data for key in RESULT_KEYS) and isinstance(data["rows"], list)
            and isinstance(data["config"], dict))


def write_json(data: dict, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path

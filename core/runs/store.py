"""Reading and writing a run directory's files (layout in core/runs/__init__.py): status, metrics, listings, the student."""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from pathlib import Path

from core.paths import runs_root
from core.runs.checkpoints import atomic_write_text, latest_checkpoint, load_checkpoint

ACTIVE_STATES = ("queued", "running")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def run_dir_of(run_id: str, root: Path | None = None) -> Path:
    """The directory of a run id, refusing ids that could point outside the runs folder."""
    if not RUN_ID_PATTERN.match(run_id or "") or ".." in run_id:
        raise ValueError(f"'{run_id}' is not a valid run id (letters, digits, '.', '_' and '-' only).")
    return (root or runs_root()) / run_id


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def read_json(path: Path, default=None):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def write_status(run_dir: Path, **fields) -> dict:
    """Merge fields into status.json (atomically) and return the new status."""
    status = read_json(Path(run_dir) / "status.json", {}) or {}
    status.update(fields, updated=time.time())
    atomic_write_text(Path(run_dir) / "status.json", json.dumps(status, ensure_ascii=False, indent=1))
    return status


def read_status(run_dir: Path) -> dict:
    """status.json, corrected for a process that died without saying so (kill -9, power loss, app restart)."""
    status = read_json(Path(run_dir) / "status.json", {}) or {}
    if status.get("state") == "running" and not pid_alive(status.get("pid")):
        status["state"] = "stopped"
        status["message"] = "The process ended unexpectedly; resume continues from the last checkpoint."
    return status


def read_metrics(run_dir: Path, name: str = "metrics.jsonl") -> list[dict]:
    """Every complete record of a run's metrics file; a line cut short by a crash is skipped."""
    path = Path(run_dir) / name
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """Keep only records up to last_step: a resumed run logs the later steps again."""
    kept = [r for r in read_metrics(run_dir) if r.get("step", 0) <= last_step]
    atomic_write_text(Path(run_dir) / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept))


def run_info(run_dir: Path) -> dict:
    """One row about a run for listings: id, state, progress, teacher, student, newest checkpoint."""
    run_dir = Path(run_dir)
    config = read_json(run_dir / "config.json", {}) or {}
    status = read_status(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    return {
        "id": run_dir.name,
        "state": status.get("state", "unknown"),
        "message": status.get("message", ""),
        "step": status.get("step", 0),
        "max_steps": config.get("max_steps", status.get("max_steps")),
        "teacher": config.get("teacher", ""),
        "student_layers": config.get("student_layers"),
        "created": status.get("created", run_dir.stat().st_mtime),
        "queued_at": status.get("queued_at", status.get("created", 0)),
        "checkpoint": checkpoint.name if checkpoint else None,
        "final": (run_dir / "final" / "config.json").is_file(),
        "owner": status.get("owner"),
        "public": bool(status.get("public", False)),
    }


def list_runs(root: Path | None = None) -> list[dict]:
    """Every run under the runs folder, newest first."""
    root = root or runs_root()
    if not root.is_dir():
        return []
    runs = [run_info(p) for p in root.iterdir() if p.is_dir() and RUN_ID_PATTERN.match(p.name)
            and ((p / "status.json").is_file() or (p / "config.json").is_file())]
    return sorted(runs, key=lambda r: r["created"], reverse=True)


def run_model_dir(run_dir: Path) -> Path:
    """A loadable model directory for the run's student: final/ when finished, else its newest checkpoint exported."""
    run_dir = Path(run_dir)
    if (run_dir / "final" / "config.json").is_file():
        return run_dir / "final"
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None or not (run_dir / "student" / "config.json").is_file():
        raise ValueError(f"Run '{run_dir.name}' has no saved student yet: wait for its first checkpoint.")
    snapshot = run_dir / "snapshot"
    if read_json(snapshot / "source.json", {}).get("checkpoint") == checkpoint.name:
        return snapshot
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer
    state = {key.removeprefix("student."): value for key, value in load_checkpoint(checkpoint)["model"].items()
             if not key.startswith("projection.")}  # reduced-vocabulary runs train a projection beside the student
    model = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(run_dir / "student"))
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    tmp = run_dir / f".snapshot-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(run_dir / "student").save_pretrained(tmp)
    (tmp / "source.json").write_text(json.dumps({"checkpoint": checkpoint.name}))
    shutil.rmtree(snapshot, ignore_errors=True)
    os.replace(tmp, snapshot)
    return snapshot


def run_version(run_dir: Path) -> str | None:
    """What a loaded copy of the run's student is a copy of: "final", the newest checkpoint's name, or None."""
    run_dir = Path(run_dir)
    if (run_dir / "final" / "config.json").is_file():
        return "final"
    checkpoint = latest_checkpoint(run_dir)
    return checkpoint.name if checkpoint else None


def delete_run(run_dir: Path) -> None:
    status = read_status(run_dir)
    if status.get("state") == "running":
        raise ValueError("Stop the run before deleting it.")
    shutil.rmtree(run_dir)


def checkpoint_step(run_dir: Path) -> int:
    checkpoint = latest_checkpoint(run_dir)
    return int(checkpoint.stem.split("-")[1]) if checkpoint else 0


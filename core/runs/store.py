"""Reading and writing a run directory's files (layout in core/runs/__init__.py): status, metrics, the student."""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from core.paths import REPO_ROOT, runs_root
from core.runs.checkpoints import atomic_write_text, latest_checkpoint, load_checkpoint

ACTIVE_STATES = ("queued", "running")
RUN_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


@dataclass(frozen=True)
class RunPaths:
    """Where each file of one run directory lives; nothing else in the lab spells these names."""

    root: Path

    def __post_init__(self):
        object.__setattr__(self, "root", Path(self.root))

    @property
    def config(self) -> Path:  # the full configuration, written by the run when it starts
        return self.root / "config.json"

    @property
    def request(self) -> Path:  # the configuration asked for, written when the run is put in line
        return self.root / "request.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def console(self) -> Path:
        return self.root / "console.log"

    @property
    def corpus(self) -> Path:  # the run's own copy of an uploaded corpus, so that resuming finds it
        return self.root / "corpus.txt"

    @property
    def student(self) -> Path:
        return self.root / "student"

    @property
    def init(self) -> Path:  # the student before its first step, a Hugging Face model folder with its tokenizer
        return self.root / "init"

    @property
    def guesses(self) -> Path:  # the probe sentences' top guesses at each evaluation (core.runs.guesses)
        return self.root / "guesses.jsonl"

    @property
    def final(self) -> Path:
        return self.root / "final"

    @property
    def snapshot(self) -> Path:
        return self.root / "snapshot"

    @property
    def trace(self) -> Path:  # each process's sample indices and weight checksum, with --trace
        return self.root / "trace"


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
    path = RunPaths(run_dir).status
    status = read_json(path, {}) or {}
    status.update(fields, updated=time.time())
    atomic_write_text(path, json.dumps(status, ensure_ascii=False, indent=1))
    return status


def read_status(run_dir: Path) -> dict:
    """status.json, corrected for a process that died without saying so (kill -9, power loss, app restart)."""
    status = read_json(RunPaths(run_dir).status, {}) or {}
    if status.get("state") == "running" and not pid_alive(status.get("pid")):
        status["state"] = "stopped"
        status["message"] = stopped_message(run_dir, asked=bool(status.get("stop_requested")))
    return status


def stopped_message(run_dir: Path, asked: bool) -> str:
    """Why a run whose process ended without recording it is stopped, and where resume continues: `asked`, it was
    stopped on request before it could save a checkpoint; else its process ended unexpectedly."""
    step = checkpoint_step(run_dir)
    where = f"resume continues from step {step}" if step else "resume starts again from step 0"
    if asked:
        return (f"Stopped as asked, before its next checkpoint; {where}." if step else
                f"Stopped as asked, before its first checkpoint; {where}.")
    return f"The process ended unexpectedly; {where}."


def read_metrics(run_dir: Path, name: str | None = None) -> list[dict]:
    """Every complete record of a run's metrics file (`name`: another JSON-lines file of the run); a line cut short
    by a crash is skipped."""
    path = Path(run_dir) / name if name else RunPaths(run_dir).metrics
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def truncate_metrics(run_dir: Path, last_step: int, name: str | None = None) -> None:
    """Keep only records up to last_step (`name`: another JSON-lines file of the run, left alone when absent): a
    resumed run logs the later steps again."""
    path = Path(run_dir) / name if name else RunPaths(run_dir).metrics
    if name and not path.is_file():
        return
    kept = [r for r in read_metrics(run_dir, name) if r.get("step", 0) <= last_step]
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))


def read_config(run_dir: Path) -> dict:
    """The run's configuration: config.json once the run has started, before that the request it was queued with."""
    paths = RunPaths(run_dir)
    return read_json(paths.config) or read_json(paths.request) or {}


def write_request(run_dir: Path, request: dict) -> Path:
    """Write the configuration a queued run will be started with; returns the file's path."""
    path = RunPaths(run_dir).request
    atomic_write_text(path, json.dumps(request, indent=1, ensure_ascii=False))
    return path


def without_server_paths(run_dir: Path, text: str) -> str:
    """`text` with the runs folder's absolute path written as "runs" and the lab's own folder left out (paths in
    tracebacks become relative): what a page shows must not reveal where the server keeps its files."""
    root = Path(run_dir).parent
    for folder in {str(root), str(root.resolve())}:
        text = text.replace(folder + os.sep, "runs" + os.sep)
    return text.replace(str(REPO_ROOT) + os.sep, "")


def read_console(run_dir: Path, max_lines: int = 40, max_chars: int = 20_000) -> str:
    """The last `max_lines` lines of the run's console output (at most `max_chars` characters); "" when there is none.

    Progress bars rewrite their line with carriage returns; each rewrite is shown as a line of its own. The runs
    folder's absolute path is written as "runs"."""
    path = RunPaths(run_dir).console
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4 * max_chars))  # UTF-8: at most 4 bytes a character
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    tail = "\n".join(text.replace("\r", "\n").splitlines()[-max_lines:])[-max_chars:]
    return without_server_paths(run_dir, tail)


PROGRESS_BAR = re.compile(r"\d+%\||\|\s*\d+/\d+\s*\[")  # tqdm: "distilling:  16%|█▌   | 16/100 [00:03<...]"


def console_error(run_dir: Path) -> str:
    """Why a run failed, from its console: the last 'error: ...' line, else the last unindented line that is not a
    progress bar, a warning or the run's own bookkeeping; "" if none."""
    lines = read_console(run_dir, max_lines=200, max_chars=60_000).splitlines()
    for line in reversed(lines):
        if line.startswith("error: "):
            return line[len("error: "):]
    for line in reversed(lines):
        if line.strip() and not line.startswith((" ", "\t", "$", "warning: ", "run directory: ")) \
                and not PROGRESS_BAR.search(line):
            return line.strip()[:300]
    return ""


def model_source(run_dir: Path) -> tuple[str, Path] | None:
    """Where the run's student is saved: ("final", final/) when finished, else (name, path) of its newest
    checkpoint, else None. The one rule for which copy of a run's student is current."""
    paths = RunPaths(run_dir)
    if (paths.final / "config.json").is_file():
        return "final", paths.final
    checkpoint = latest_checkpoint(paths.root)
    return (checkpoint.name, checkpoint) if checkpoint else None


def has_init(run_dir: Path) -> bool:
    """Whether the run kept its student as it was before training (init/, loadable as "run:<id>@init")."""
    return (RunPaths(run_dir).init / "config.json").is_file()


def has_model(info: dict) -> bool:
    """Whether a run_info() row has a student to load (finished, or at least one checkpoint)."""
    return bool(info.get("final") or info.get("checkpoint"))


def run_info(run_dir: Path) -> dict:
    """One row about a run for listings: id, state, progress, teacher, student, newest checkpoint.

    The teacher and the student's shape come from the request until the run has written its own config.json, so a
    queued run shows what was asked for."""
    run_dir = Path(run_dir)
    config = read_config(run_dir)
    status = read_status(run_dir)
    checkpoint = latest_checkpoint(run_dir)
    source = model_source(run_dir)
    return {
        "id": run_dir.name,
        "state": status.get("state", "unknown"),
        "message": without_server_paths(run_dir, status.get("message", "")),
        "step": status.get("step", 0),
        "max_steps": config.get("max_steps", status.get("max_steps")),
        "teacher": config.get("teacher", ""),
        "student_layers": config.get("student_layers"),
        "student_vocab_size": config.get("student_vocab_size"),
        "student_hidden": config.get("student_hidden"),
        "align": config.get("align") if config.get("student_vocab_size") else None,
        "created": status.get("created", run_dir.stat().st_mtime),
        "queued_at": status.get("queued_at", status.get("created", 0)),
        "checkpoint": checkpoint.name if checkpoint else None,
        "final": bool(source and source[0] == "final"),
        "init": has_init(run_dir),
        "owner": status.get("owner"),
        "public": bool(status.get("public", False)),
    }


def list_runs(root: Path | None = None) -> list[dict]:
    """Every run under the runs folder, newest first."""
    root = root or runs_root()
    if not root.is_dir():
        return []
    runs = [run_info(p) for p in root.iterdir() if p.is_dir() and RUN_ID_PATTERN.match(p.name)
            and (RunPaths(p).status.is_file() or RunPaths(p).config.is_file())]
    return sorted(runs, key=lambda r: r["created"], reverse=True)


def run_model_dir(run_dir: Path) -> Path:
    """A loadable model directory for the run's student: final/ when finished, else its newest checkpoint exported."""
    paths = RunPaths(run_dir)
    source = model_source(paths.root)
    if source and source[0] == "final":
        return source[1]
    if source is None or not (paths.student / "config.json").is_file():
        raise ValueError(f"Run '{paths.root.name}' has no saved student yet: wait for its first checkpoint.")
    checkpoint, run_dir = source[1], paths.root
    snapshot = paths.snapshot
    if (read_json(snapshot / "source.json", {}) or {}).get("checkpoint") == checkpoint.name:
        return snapshot
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer
    state = {key.removeprefix("student."): value for key, value in load_checkpoint(checkpoint)["model"].items()
             if not key.startswith("projection.")}  # reduced-vocabulary runs train a projection beside the student
    model = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(paths.student))
    model.load_state_dict(state, strict=False)
    model.tie_weights()
    tmp = run_dir / f".snapshot-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    AutoTokenizer.from_pretrained(paths.student).save_pretrained(tmp)
    (tmp / "source.json").write_text(json.dumps({"checkpoint": checkpoint.name}))
    shutil.rmtree(snapshot, ignore_errors=True)
    os.replace(tmp, snapshot)
    return snapshot


def run_version(run_dir: Path) -> str | None:
    """What a loaded copy of the run's student is a copy of: "final", the newest checkpoint's name, or None."""
    source = model_source(run_dir)
    return source[0] if source else None


def delete_run(run_dir: Path) -> None:
    """Remove a run directory and everything in it. Raises ValueError while its process is still running."""
    status = read_status(run_dir)
    if status.get("state") == "running":
        raise ValueError("Stop the run before deleting it.")
    shutil.rmtree(run_dir)


def checkpoint_step(run_dir: Path) -> int:
    checkpoint = latest_checkpoint(run_dir)
    return int(checkpoint.stem.split("-")[1]) if checkpoint else 0


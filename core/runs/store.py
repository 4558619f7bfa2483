"""Reading and writing a run directory's files (layout in core/runs/__init__.py): status, metrics, the student.

Every file read from a run folder is checked: a damaged status.json, config.json or request.json makes the run
"damaged" with a sentence naming the file (the other runs are untouched), and a metrics line that is not a record
is skipped and counted."""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from core.paths import REPO_ROOT, runs_root
from core.runs.checkpoints import MODEL_KEYS, TEMP_NAME, atomic_write_text, newest_readable_checkpoint

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


def quoted_id(run_id) -> str:
    """A run id as a sentence quotes it: in quotes, cut at 40 characters (an id typed or sent may be any length)."""
    text = str(run_id)
    return f"'{text if len(text) <= 40 else text[:40] + '…'}'"


def run_dir_of(run_id: str, root: Path | None = None) -> Path:
    """The directory of a run id, refusing ids that could point outside the runs folder."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id) or ".." in run_id:
        raise ValueError(f"{quoted_id(run_id)} is not a valid run id (letters, digits, '.', '_' and '-' only, at "
                         "most 128 characters).")
    return (root or runs_root()) / run_id


def find_run_dir(run: str | Path) -> Path:
    """The directory of the run named by `run`: a run's folder by its path, else a run id (or run:RUN_ID, as models
    are named) under the runs folder.

    Raises ValueError, one sentence in the same words for every tool, when neither exists, when the path is a file,
    or when the folder is not a distillation run's (it has no config.json, which a run writes when it starts).
    """
    text = str(run).strip()
    if text.startswith("run:") and not _exists(Path(text)):  # the name models take everywhere else: run:RUN_ID
        text = text[4:]
    path = Path(text).expanduser()
    give = "give a run's folder (runs/<id>) or a run id"
    if not _exists(path) and RUN_ID_PATTERN.match(text) and ".." not in text:
        path = runs_root() / text
        if not path.exists():  # the id alone: where the runs folder lies is the server's business
            raise ValueError(f"There is no run '{text}' in this lab's runs folder and no folder of that name here; "
                             f"{give}.")
    shown = f"'{text}'" if len(text) <= 200 else quoted_id(text)  # a path in full, unless it cannot be one
    if not _exists(path):
        raise ValueError(f"{shown} does not exist; {give}.")
    if not path.is_dir():
        raise ValueError(f"{shown} is a file, not a folder; {give}.")
    if not RunPaths(path).config.is_file():
        raise ValueError(f"{shown} is not a distillation run's folder (it has no config.json); {give}.")
    return path


def _exists(path: Path) -> bool:
    """Whether `path` exists; a name the system refuses as a path (too long) names nothing here."""
    try:
        return path.exists()
    except OSError:
        return False


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


class DamagedRunFile(ValueError):
    """A file of a run directory that cannot be used: unreadable, empty, not JSON, or JSON of the wrong shape.

    str() is one sentence naming the file (as <run id>/<name>, never the server's folders) and what to do; `path`
    is the file."""

    def __init__(self, path: Path, problem: str):
        self.path = Path(path)
        super().__init__(f"The file {self.path.parent.name}/{self.path.name} is damaged ({problem}); delete the run, "
                         "or repair the file by hand.")


def json_kind(value) -> str:
    """What a JSON value is, in words: "a list", "a number", "null" ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    return {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number"}.get(
        type(value), type(value).__name__)


def _whole(value, least: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= least


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _text_or_none(value) -> bool:
    return value is None or isinstance(value, str)


# The fields a reader of status.json relies on: name -> (check, what it must be). Other fields are left alone.
STATES = ("queued", "running", "finished", "stopped", "failed")
# What a running run's process does before its first step (its `phase`, None once its steps begin): loading the
# teacher and reading the corpus, preparing the models (placed, restored from a checkpoint), evaluating the
# untrained student (step 0's metrics row).
PHASES = ("loading", "preparing", "evaluating")
STATUS_FIELDS = {
    "state": (lambda v: v in STATES, "one of " + ", ".join(STATES)),
    "pid": (lambda v: v is None or _whole(v, 2), "a process id"),
    "step": (_whole, "a whole number"),
    "max_steps": (lambda v: v is None or _whole(v, 1), "a whole number above 0"),
    "message": (lambda v: isinstance(v, str), "a text"),
    "created": (_number, "a time in seconds"),
    "queued_at": (_number, "a time in seconds"),
    "updated": (_number, "a time in seconds"),
    "owner": (_text_or_none, "a text"),
    "public": (lambda v: isinstance(v, bool), "true or false"),
    "stop_requested": (lambda v: isinstance(v, bool), "true or false"),
    "launch_args": (lambda v: v is None or (isinstance(v, list) and all(isinstance(a, str) for a in v)),
                    "a list of texts"),
    "disk_needed": (_whole, "a number of bytes"),
    "session": (_text_or_none, "a text"),
    "estimated_s": (lambda v: v is None or _number(v), "a number of seconds"),
    "phase": (lambda v: v is None or v in PHASES, "null or one of " + ", ".join(PHASES)),
}
# The fields of config.json and request.json that listings and the launcher read.
CONFIG_FIELDS = {
    "teacher": (lambda v: isinstance(v, str), "a text"),
    "max_steps": (lambda v: _whole(v, 1), "a whole number above 0"),
    "student_layers": (lambda v: v is None or _whole(v, 1), "a whole number above 0"),
    "student_vocab_size": (lambda v: v is None or _whole(v, 1), "a whole number above 0"),
    "student_hidden": (lambda v: v is None or _whole(v, 1), "a whole number above 0"),
    "align": (_text_or_none, "a text"),
}


def json_object(path: Path, fields: dict | None = None) -> dict | None:
    """The JSON object in the file `path`, or None when there is no such file.

    fields: name -> (check, description) for fields that, when present, must pass `check`. Raises DamagedRunFile
    when the file cannot be read, is empty, is not UTF-8 JSON, holds JSON that is not an object (a list, a number,
    null), or a field fails its check."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except UnicodeDecodeError:
        raise DamagedRunFile(path, "it is not UTF-8 text") from None
    except OSError as error:
        raise DamagedRunFile(path, f"it cannot be read: {error.strerror or error}") from None
    if not text.strip():
        raise DamagedRunFile(path, "it is empty")
    try:
        value = json.loads(text)
    except ValueError as error:
        where = f" at line {error.lineno}, column {error.colno}" if isinstance(error, json.JSONDecodeError) else ""
        raise DamagedRunFile(path, f"it is not valid JSON{where}") from None
    if not isinstance(value, dict):
        raise DamagedRunFile(path, f"it holds {json_kind(value)}, not a JSON object")
    for name, (check, description) in (fields or {}).items():
        if name in value and not check(value[name]):
            shown = json.dumps(value[name], ensure_ascii=False)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            raise DamagedRunFile(path, f"its '{name}' is {shown}, not {description}")
    return value


def read_json(path: Path, default=None):
    """The JSON object in `path`, or `default` when the file is missing or damaged (for files a reader can do
    without, such as a snapshot's source.json); a file that holds another JSON value counts as damaged."""
    try:
        value = json_object(path)
    except DamagedRunFile:
        return default
    return default if value is None else value


@contextlib.contextmanager
def _status_lock(run_dir: Path):
    """Hold the run's status lock: a read-merge-write of status.json by the app and one by the run's process (or
    two of the app's threads) take turns, so neither loses the other's fields (a Stop's stop_requested above all)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    with open(run_dir / ".status.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def write_status(run_dir: Path, **fields) -> dict:
    """Merge fields into status.json (atomically, under the run's status lock) and return the new status. A damaged
    status.json is replaced by the fields given."""
    return update_status(run_dir, lambda status: fields)


def update_status(run_dir: Path, change) -> dict | None:
    """Merge change(status) into status.json, where `status` is the file as written now ({} when missing or
    damaged) and change returns the fields to merge, or None to leave the file alone. Returns the new status, or
    None when change refused.

    Read, decided and written under the run's status lock (an flock that every process writing the status takes):
    a decision such as "still queued, so start it" or "still this process, so ask it to stop" cannot be undone by
    another process or launcher writing in between."""
    run_dir = Path(run_dir)
    path = RunPaths(run_dir).status
    with _status_lock(run_dir):
        try:
            status = json_object(path, STATUS_FIELDS) or {}
        except DamagedRunFile:
            status = {}
        fields = change(dict(status))
        if fields is None:
            return None
        status.update(fields, updated=time.time())
        atomic_write_text(path, json.dumps(status, ensure_ascii=False, indent=1))
    return status


def write_phase(run_dir: Path, phase: str | None) -> None:
    """Record what the run's process does while it starts (one of PHASES), or None once its steps begin, in
    status.json (write_status). A run with no status.json yet (a command-line run still loading) gets none: the file
    would make a folder that a refused run leaves behind look like a run. ValueError for a phase not in PHASES."""
    if phase is not None and phase not in PHASES:
        raise ValueError(f"A run's phase is one of {', '.join(PHASES)}, or None; got {phase!r}.")
    if RunPaths(run_dir).status.is_file():
        write_status(run_dir, phase=phase)


def read_status(run_dir: Path) -> dict:
    """status.json, corrected for a process that died without saying so (kill -9, power loss, app restart): such a
    run is stopped at its newest readable checkpoint, and `step` says which. {} when the run has no status yet.

    A damaged status.json gives {"state": "damaged", "message": <one sentence naming the file>, "damaged": name}."""
    path = RunPaths(run_dir).status
    try:
        status = json_object(path, STATUS_FIELDS) or {}
    except DamagedRunFile as error:
        return {"state": "damaged", "message": str(error), "damaged": path.name}
    if status.get("state") == "running" and not pid_alive(status.get("pid")):
        status["state"] = "stopped"
        status["message"] = stopped_message(run_dir, asked=bool(status.get("stop_requested")))
        status["step"] = checkpoint_step(run_dir)
    return status


def stop_requested(run_dir: Path, pid: int) -> bool:
    """Whether the run's status asks process `pid` to stop (the launcher wrote stop_requested for that pid). A run's
    process checks this once its SIGTERM handler is in place, before it writes its own status, so that a Stop that
    came while it was starting is not lost; a stop meant for an earlier process of the run does not count."""
    status = read_status(run_dir)
    return status.get("state") == "running" and status.get("pid") == pid and status.get("stop_requested") is True


def stopped_message(run_dir: Path, asked: bool) -> str:
    """Why a run whose process ended without recording it is stopped, and where resume continues: `asked`, it was
    stopped on request before it could save a checkpoint; else its process ended without saying why (kill -9, the
    machine's memory killer, a power cut). Unreadable checkpoints newer than the one resume uses are named."""
    found = newest_readable_checkpoint(run_dir, keys=None)
    step = found.step
    if asked:
        where = f"resume continues from step {step:,}" if step else "resume starts again from step 0"
        message = (f"Stopped as asked, before its next checkpoint; {where}." if step else
                   f"Stopped as asked, before its first checkpoint; {where}.")
    elif step:
        message = (f"Stopped at step {step:,} (the process ended without saying why); resume continues from the "
                   f"checkpoint of step {step:,}.")
    else:
        message = ("Stopped before its first checkpoint (the process ended without saying why); resume starts again "
                   "from step 0.")
    return f"{message} {found.note}" if found.note else message


def _guess_ok(value) -> bool:
    return isinstance(value, dict) and isinstance(value.get("words", []), list) \
        and all(isinstance(w, str) for w in value.get("words", [])) and isinstance(value.get("probs", []), list) \
        and all(_number(p) for p in value.get("probs", []))


def _metrics_record_ok(record: dict) -> bool:
    """A metrics row: its figures (loss*, eval_*, lr, speeds, epoch, elapsed_s) are numbers."""
    return all(_number(value) for key, value in record.items()
               if key.startswith(("loss", "eval_")) or key in METRIC_NUMBERS)


def _guesses_record_ok(record: dict) -> bool:
    """A guesses.jsonl row: lists of guesses, and of probe sentences with their expected words."""
    probes = record.get("probes", [])
    return all(isinstance(record.get(key, []), list) and all(_guess_ok(g) for g in record.get(key, []))
               for key in ("student", "teacher")) and isinstance(probes, list) and all(
        isinstance(p, dict) and all(isinstance(p.get(k, ""), str) for k in ("sentence", "expected")) for p in probes)


METRIC_NUMBERS = {"step", "lr", "tokens_per_s", "steps_per_s", "epoch", "elapsed_s"}
GUESSES_NAME = "guesses.jsonl"


class Records(list):
    """The records of a run's JSON-lines file (each a dict with a whole-number "step"), and how many complete lines
    were skipped as not such a record (not JSON, or JSON that is not an object: 5, [1, 2], null)."""

    def __init__(self, records=(), skipped: int = 0, name: str = "metrics.jsonl"):
        super().__init__(records)
        self.skipped, self.name = skipped, name

    @property
    def note(self) -> str:
        """One sentence counting the skipped lines; "" when none was skipped."""
        if not self.skipped:
            return ""
        if self.skipped == 1:
            return f"1 line of {self.name} is not a record (a JSON object with a step) and was skipped."
        return f"{self.skipped:,} lines of {self.name} are not records (JSON objects with a step) and were skipped."


def read_metrics(run_dir: Path, name: str | None = None) -> Records:
    """Every record of a run's metrics file (`name`: another JSON-lines file of the run, such as guesses.jsonl).

    A record is a JSON object with a whole-number "step" whose figures have the right types; a complete line that
    is not one is skipped and counted (Records.skipped, Records.note); a last line without its newline (being
    written, or cut short by a crash) is skipped without being counted. Never raises for a bad line."""
    path = Path(run_dir) / name if name else RunPaths(run_dir).metrics
    file_name = path.name
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return Records(name=file_name)
    check = _guesses_record_ok if file_name == GUESSES_NAME else _metrics_record_ok
    lines = text.split("\n")
    unfinished = lines.pop()  # "" when the file ends with its newline
    records, skipped = [], 0
    for line, complete in [(line, True) for line in lines] + [(unfinished, False)]:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict) and _whole(record.get("step")) and check(record):
            records.append(record)
        elif complete:
            skipped += 1
    return Records(records, skipped, file_name)


def truncate_metrics(run_dir: Path, last_step: int, name: str | None = None) -> None:
    """Keep only records up to last_step (`name`: another JSON-lines file of the run, left alone when absent): a
    resumed run logs the later steps again. Lines that are not records are dropped."""
    path = Path(run_dir) / name if name else RunPaths(run_dir).metrics
    if name and not path.is_file():
        return
    kept = [r for r in read_metrics(run_dir, name) if r["step"] <= last_step]
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))


def read_config(run_dir: Path) -> dict:
    """The run's configuration: config.json once the run has started, before that the request it was queued with;
    {} when it has neither. Raises DamagedRunFile (a ValueError naming the file) when the one it reads is damaged."""
    paths = RunPaths(run_dir)
    config = json_object(paths.config, CONFIG_FIELDS)
    if config is None:
        config = json_object(paths.request, CONFIG_FIELDS)
    return config or {}


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
    """Where the run's student is saved: ("final", final/) when finished, else (name, path) of its newest checkpoint
    that is not found unreadable, else None. The one rule for which copy of a run's student is current."""
    paths = RunPaths(run_dir)
    if (paths.final / "config.json").is_file():
        return "final", paths.final
    checkpoint = newest_readable_checkpoint(paths.root, keys=None).path
    return (checkpoint.name, checkpoint) if checkpoint else None


def has_init(run_dir: Path) -> bool:
    """Whether the run kept its student as it was before training (init/, loadable as "run:<id>@init")."""
    return (RunPaths(run_dir).init / "config.json").is_file()


def has_model(info: dict) -> bool:
    """Whether a run_info() row has a student to load (finished, or at least one readable checkpoint)."""
    return bool(info.get("final") or info.get("checkpoint"))


def run_info(run_dir: Path) -> dict:
    """One row about a run for listings: id, state, progress, teacher, student, newest readable checkpoint.

    The teacher and the student's shape come from the request until the run has written its own config.json, so a
    queued run shows what was asked for. A run whose status.json, config.json or request.json is damaged has the
    state "damaged" and a message naming the file (a run still running keeps its state, the message says it)."""
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    problems = [status["message"]] if status.get("state") == "damaged" else []
    try:
        config = read_config(run_dir)
    except DamagedRunFile as error:
        config = {}
        problems.append(str(error))
    state, message = status.get("state", "unknown"), status.get("message", "")
    if problems:
        state, message = ("running", f"{message} {' '.join(problems)}".strip()) if state == "running" else \
            ("damaged", " ".join(problems))
    checkpoint = newest_readable_checkpoint(run_dir, keys=None).path
    final = (RunPaths(run_dir).final / "config.json").is_file()
    created = status.get("created", run_dir.stat().st_mtime)
    return {
        "id": run_dir.name,
        "state": state,
        "message": without_server_paths(run_dir, message),
        "step": status.get("step", 0),
        # a run queued or running is headed for its status's target (a resume's, before its config.json is rewritten)
        "max_steps": status["max_steps"] if state in ACTIVE_STATES and status.get("max_steps") else config.get(
            "max_steps", status.get("max_steps")),
        "teacher": config.get("teacher", ""),
        "student_layers": config.get("student_layers"),
        "student_vocab_size": config.get("student_vocab_size"),
        "student_hidden": config.get("student_hidden"),
        "align": config.get("align") if config.get("student_vocab_size") else None,
        "created": created,
        "queued_at": status.get("queued_at", status.get("created", 0)),
        "checkpoint": checkpoint.name if checkpoint else None,
        "final": final,
        "init": has_init(run_dir),
        "owner": status.get("owner"),
        "session": status.get("session"),  # the app's connection that queued it (a browser tab, an API client)
        "public": bool(status.get("public", False)),
        "phase": status.get("phase") if state == "running" else None,  # what a starting run does (PHASES)
    }


def list_runs(root: Path | None = None) -> list[dict]:
    """Every run under the runs folder, newest first; a run deleted while the folder is read is left out, a damaged
    one is listed with the state "damaged"."""
    root = root or runs_root()
    if not root.is_dir():
        return []
    runs = []
    for path in root.iterdir():
        if not (path.is_dir() and RUN_ID_PATTERN.match(path.name)
                and (RunPaths(path).status.is_file() or RunPaths(path).config.is_file())):
            continue
        try:
            runs.append(run_info(path))
        except FileNotFoundError:  # deleted meanwhile
            continue
        except OSError as error:  # a folder this process may not read: listed, so that it can be seen and removed
            runs.append(unreadable_run_info(path, f"The folder {path.name} cannot be read "
                                                  f"({error.strerror or error}); delete the run, or fix its "
                                                  "permissions."))
    return sorted(runs, key=lambda r: r["created"], reverse=True)


def unreadable_run_info(run_dir: Path, message: str) -> dict:
    """A run_info() row for a run none of whose files can be read: state "damaged", `message` saying why."""
    return {"id": Path(run_dir).name, "state": "damaged", "message": message, "step": 0, "max_steps": None,
            "teacher": "", "student_layers": None, "student_vocab_size": None, "student_hidden": None, "align": None,
            "created": 0.0, "queued_at": 0.0, "checkpoint": None, "final": False, "init": False, "owner": None,
            "public": False, "phase": None}


@dataclass(frozen=True)
class RunModel:
    """A loadable model folder for a run's student, and what a person should know about it ("" or sentences naming
    the checkpoints that could not be read)."""
    path: Path
    notice: str = ""


def run_model(run_dir: Path) -> RunModel:
    """The run's student as a model folder: final/ when finished, else its newest checkpoint that loads, exported to
    snapshot/ (a newer unreadable checkpoint is passed over and named in the notice).

    Raises ValueError when the run has no student (no_student_message: wait for it, or resume or start again), or
    none of its checkpoints can be read (each named)."""
    paths = RunPaths(run_dir)
    name = paths.root.name
    source = model_source(paths.root)
    if source and source[0] == "final":
        return RunModel(source[1])
    checked = newest_readable_checkpoint(paths.root, keys=None)
    if source is None and checked.unreadable:
        raise ValueError(f"Run '{name}' has no checkpoint that can be read: {checked.note}")
    if source is None or not (paths.student / "config.json").is_file():
        raise ValueError(no_student_message(paths.root))
    snapshot = paths.snapshot
    if (read_json(snapshot / "source.json", {}) or {}).get("checkpoint") == source[0]:
        return RunModel(snapshot, _run_notice(name, checked.note))
    found = newest_readable_checkpoint(paths.root, MODEL_KEYS)
    if found.path is None:
        raise ValueError(f"Run '{name}' has no checkpoint that can be read: {found.note}")
    if (read_json(snapshot / "source.json", {}) or {}).get("checkpoint") == found.path.name:
        return RunModel(snapshot, _run_notice(name, found.note))
    _export_snapshot(paths, found.path.name, found.state)
    return RunModel(snapshot, _run_notice(name, found.note))


# What a run lacks, said by its state (missing_message): {name}, {ended} ("was stopped", "failed") and {reason} (a
# damaged file's sentence) are filled in.
NO_STUDENT = {
    "waiting": "Run '{name}' has no saved student yet: wait for its first checkpoint.",
    "damaged": "Run '{name}' has no saved student: {reason}",
    "unstarted": "Run '{name}' {ended} before it started, so it has no student; start a new run.",
    "ended": "Run '{name}' {ended} before saving its first checkpoint, so it has no student; resume it (it starts "
             "again from step 0) or start a new run.",
}


def missing_message(run_dir: Path, words: dict[str, str]) -> str:
    """Why a run lacks something (`words`: NO_STUDENT, core.runs.export.NO_METRICS), and what to do, by its state:
    a queued or running run (or one without a status yet) will make it, so wait; a stopped or failed one never will
    unless resumed, or, when it never started (no config.json, which resume needs), started again; a damaged one
    names its damaged file."""
    run_dir = Path(run_dir)
    status = read_status(run_dir)
    state = status.get("state")
    if state in (None, *ACTIVE_STATES):
        case = "waiting"
    elif state == "damaged":
        case = "damaged"
    else:
        case = "ended" if RunPaths(run_dir).config.is_file() else "unstarted"
    reason = status.get("message", "")
    return words[case].format(name=run_dir.name, reason=reason[:1].lower() + reason[1:],
                              ended={"stopped": "was stopped", "failed": "failed"}.get(state, "ended"))


def no_student_message(run_dir: Path) -> str:
    """Why a run that has saved no student (no final/, no readable checkpoint) has none, and what to do
    (missing_message)."""
    return missing_message(run_dir, NO_STUDENT)


def _run_notice(name: str, note: str) -> str:
    return f"Run '{name}': {note}" if note else ""


def _export_snapshot(paths: RunPaths, checkpoint_name: str, state: dict) -> None:
    """Write the student of a loaded checkpoint as snapshot/, a model folder with its tokenizer (atomically)."""
    from transformers import AutoConfig, AutoModelForMaskedLM, AutoTokenizer

    from core.saving import save_model, save_tokenizer
    weights = {key.removeprefix("student."): value for key, value in state["model"].items()
               if not key.startswith("projection.")}  # reduced-vocabulary runs train a projection beside the student
    model = AutoModelForMaskedLM.from_config(AutoConfig.from_pretrained(paths.student))
    model.load_state_dict(weights, strict=False)
    model.tie_weights()
    tmp = paths.root / f".snapshot-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    save_model(model, tmp)
    save_tokenizer(AutoTokenizer.from_pretrained(paths.student), tmp)
    (tmp / "source.json").write_text(json.dumps({"checkpoint": checkpoint_name}))
    shutil.rmtree(paths.snapshot, ignore_errors=True)
    os.replace(tmp, paths.snapshot)


def run_model_dir(run_dir: Path) -> Path:
    """A loadable model directory for the run's student (run_model's folder, without its notice)."""
    return run_model(run_dir).path


def run_version(run_dir: Path) -> str | None:
    """What a loaded copy of the run's student is a copy of: "final", the newest readable checkpoint's name, or
    None."""
    source = model_source(run_dir)
    return source[0] if source else None


def delete_run(run_dir: Path) -> None:
    """Remove a run directory and everything in it. Raises ValueError while its process is still running."""
    status = read_status(run_dir)
    if status.get("state") == "running":
        raise ValueError("Stop the run before deleting it.")
    shutil.rmtree(run_dir)


def checkpoint_step(run_dir: Path) -> int:
    """The step of the run's newest checkpoint that is not found unreadable (0 without one): where a resume
    continues."""
    return newest_readable_checkpoint(run_dir, keys=None).step


SNAPSHOT_TEMP = re.compile(r"^\.snapshot-(\d+)$")  # run_model's folder being written, by the process of that id


def remove_stale_temp_files(run_dir: Path) -> list[Path]:
    """Remove what a killed process left half-written in the run: atomic_write's .<name>.tmp-<pid> files (in the
    run's folder and checkpoints/) and .snapshot-<pid> folders, whose process is no longer alive. Files of this
    process or of another live one are left alone. Returns what was removed."""
    run_dir = Path(run_dir)
    removed = []
    for folder in (run_dir, run_dir / "checkpoints"):
        if not folder.is_dir():
            continue
        for item in folder.iterdir():
            match = TEMP_NAME.match(item.name) or SNAPSHOT_TEMP.match(item.name)
            if not match:
                continue
            pid = int(match.groups()[-1])
            if pid == os.getpid() or pid_alive(pid):
                continue
            if item.is_dir() and not item.is_symlink():
                shutil.rmtree(item, ignore_errors=True)
            else:
                item.unlink(missing_ok=True)
            removed.append(item)
    return removed

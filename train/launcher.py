"""Runs started on behalf of others (the app): a queue on disk and one child process at a time.

Each run is `python -m train.distill --config runs/<id>/request.json --output-dir runs/<id>`, the same command a
person types, so the app and the command line make identical runs. A queued run is a directory whose status says
"queued"; a watcher thread starts the oldest one when nothing else runs. Children receive SIGTERM when the app dies
(Linux), which makes them save a checkpoint and stop cleanly: killing the app loses nothing.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from core.distill.data import read_corpus
from core.paths import REPO_ROOT, runs_root
from core.runs.store import (
    ACTIVE_STATES,
    RunPaths,
    checkpoint_step,
    console_error,
    delete_run,
    list_runs,
    new_run_id,
    read_json,
    read_status,
    run_dir_of,
    stopped_message,
    write_request,
    write_status,
)
from train.config import BUNDLED_CORPUS, DistillConfig

EVALUATIONS_PER_RUN = 6  # held-out evaluations over an app run: enough points for a curve, little time spent
STOP_WAIT_S = 10.0  # how long delete waits for a run it was asked to stop (the run saves a checkpoint first)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the app's process goes away."""
    try:
        import ctypes
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def can_control(info: dict, requester: str | None, shared: bool) -> bool:
    """Who may stop, resume or delete a run: anyone on a private app; on a shared app only the run's owner."""
    if not shared:
        return True
    return bool(info.get("owner")) and info["owner"] == requester


def can_see(info: dict, requester: str | None, shared: bool) -> bool:
    return not shared or info.get("public") or (info.get("owner") and info["owner"] == requester)


class RunLauncher:
    """Submit, stop, resume and delete runs; at most `max_running` child processes at once."""

    def __init__(self, root: Path | None = None, max_running: int = 1, poll_s: float = 1.0, shared: bool = False,
                 evaluations_per_run: int | None = EVALUATIONS_PER_RUN, stop_wait_s: float = STOP_WAIT_S):
        """root: the runs folder (default runs_root()); poll_s: seconds between the watcher's looks at the queue;
        shared: a public app, where only a run's owner controls it; evaluations_per_run: how many held-out
        evaluations a submitted run makes (None keeps the config's eval_every); stop_wait_s: the longest delete
        waits for a run that is stopping."""
        self.root = Path(root) if root else runs_root()
        self.max_running, self.poll_s, self.shared = max_running, poll_s, shared
        self.evaluations_per_run, self.stop_wait_s = evaluations_per_run, stop_wait_s
        self._children: dict[str, subprocess.Popen] = {}
        self._stopping: set[str] = set()  # runs sent SIGTERM by this launcher, not yet ended
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    # -- the watcher: the only thread that starts processes, so PDEATHSIG is tied to a thread that lives as long
    #    as the app (it is sent when the *thread* that forked exits).
    def start(self) -> RunLauncher:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="run-launcher", daemon=True)
            self._thread.start()
        return self

    def _watch(self) -> None:
        while True:
            waiting = False
            try:
                waiting = self.pump()
            except Exception as error:  # the watcher must outlive any one bad run directory
                print(f"run launcher: {error}", file=sys.stderr)
            # a queued run whose previous process is still exiting starts as soon as that process is reaped
            self._wake.wait(min(self.poll_s, 0.2) if waiting else self.poll_s)
            self._wake.clear()

    def pump(self) -> bool:
        """Reap finished children, record why they failed, start queued runs while there is room; True when a queued
        run waits for its previous process to exit.

        Every change of a run's state made here or by an action happens under the lock, and a run whose previous
        process is still exiting is not started again until that process is reaped: an exit never overwrites what a
        later Resume or Stop wrote."""
        with self._lock:
            for run_id, child in list(self._children.items()):
                if child.poll() is not None:
                    del self._children[run_id]
                    self._record_exit(run_id, child)
            runs = list_runs(self.root)
            running = len({r["id"] for r in runs if r["state"] == "running"} | set(self._children))
            waiting = False
            for info in sorted((r for r in runs if r["state"] == "queued"), key=lambda r: r["queued_at"]):
                if info["id"] in self._children:  # its last process wrote "stopped" and is still exiting
                    waiting = True
                    continue
                if running >= self.max_running:
                    break
                self._spawn(info["id"])
                running += 1
            return waiting

    def _spawn(self, run_id: str) -> None:
        paths = RunPaths(self.root / run_id)
        arguments = read_status(paths.root).get("launch_args") or ["--config", str(paths.request),
                                                                   "--output-dir", str(paths.root)]
        command = [sys.executable, "-m", "train.distill", *arguments]
        log = open(paths.console, "a", encoding="utf-8")
        # the command as a person would type it in the repository: no server paths in what the page shows
        shown = " ".join(a.replace(str(self.root), "runs") for a in ["python", *command[1:]])
        log.write(f"$ {shown}\n")
        log.flush()
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "RUDISTIL_RUNS_DIR": str(self.root)}
        child = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                                 start_new_session=True, preexec_fn=_die_with_parent)
        log.close()
        self._children[run_id] = child
        self._stopping.discard(run_id)
        write_status(paths.root, state="running", pid=child.pid, stop_requested=False, message="Starting ...")

    def _record_exit(self, run_id: str, child: subprocess.Popen) -> None:
        """Finish the status of a run whose process `child` has ended, when the run itself did not (killed, crashed).
        Only the status of that very process is touched: one queued again or stopped meanwhile is left as it is."""
        paths = RunPaths(self.root / run_id)
        asked_to_stop = run_id in self._stopping
        self._stopping.discard(run_id)
        if not paths.root.is_dir():  # deleted meanwhile: writing a status would bring the folder back
            return
        status = read_json(paths.status, {}) or {}  # as written, not as inferred from a dead pid
        if status.get("state") != "running" or status.get("pid") != child.pid:
            return  # the run recorded its own end, or was queued, taken out or restarted since
        code = child.returncode
        if asked_to_stop or status.get("stop_requested"):  # stopped before it could catch the signal
            write_status(paths.root, state="stopped", message=stopped_message(paths.root, asked=True))
        elif code:
            reason = console_error(paths.root) or f"The process ended with exit code {code}."
            write_status(paths.root, state="failed", message=reason)
        else:
            write_status(paths.root, state="stopped", message=stopped_message(paths.root, asked=False))

    # -- actions
    def submit(self, cfg: DistillConfig, owner: str | None = None, public: bool = False,
               uploaded_corpus: str | None = None, uploaded_name: str | None = None) -> str:
        """Check a configuration, put the run in line, and return its id.

        uploaded_corpus: a text file to copy into the run (the app's upload); uploaded_name: the name its owner gave
        it, used in messages instead of the server's temporary path (default: the file's own name).
        Raises ValueError for bad input, before anything is written."""
        run_id = new_run_id()
        paths = RunPaths(run_dir_of(run_id, self.root))
        cfg.output_dir = str(paths.root)
        if self.evaluations_per_run:
            cfg.eval_every = evaluation_interval(cfg.max_steps, cfg.log_every, self.evaluations_per_run)
        cfg.check()
        if uploaded_corpus:  # refuse a bad upload now, with its reason, rather than in a failed run
            check_uploaded_corpus(uploaded_corpus, uploaded_name or Path(uploaded_corpus).name)
        elif cfg.corpus != BUNDLED_CORPUS:
            read_corpus(cfg.corpus)
        paths.root.mkdir(parents=True)
        if uploaded_corpus:
            shutil.copyfile(uploaded_corpus, paths.corpus)  # the run keeps its own copy for resuming
            cfg.corpus = str(paths.corpus)
        write_request(paths.root, {k: v for k, v in cfg.to_dict().items() if k != "output_dir"})
        write_status(paths.root, state="queued", owner=owner, public=public, created=time.time(), queued_at=time.time(),
                     max_steps=cfg.max_steps, message="Waiting for its turn.")
        self._wake.set()
        return run_id

    def _controlled(self, run_id: str, requester: str | None) -> tuple[Path, dict]:
        run_dir = run_dir_of(run_id, self.root)
        if not RunPaths(run_dir).status.is_file():
            raise ValueError(f"There is no run '{run_id}'.")
        info = {**read_status(run_dir), "id": run_id}
        if not can_control(info, requester, self.shared):
            raise ValueError("This run belongs to another session: only the person who started it can change it.")
        return run_dir, info

    def stop(self, run_id: str, requester: str | None = None) -> str:
        with self._lock:
            run_dir, info = self._controlled(run_id, requester)
            if info.get("state") == "queued":
                write_status(run_dir, state="stopped", message="Taken out of the queue before it started.")
                return "Taken out of the queue."
            if info.get("state") != "running":
                raise ValueError(f"The run is not running (it is {info.get('state')}).")
            # recorded first, so that whoever sees the process gone (the watcher, read_status) knows it was asked to
            write_status(run_dir, stop_requested=True, message="Stopping: the run saves a checkpoint and ends.")
            self._stopping.add(run_id)
            with contextlib.suppress(ProcessLookupError):
                os.kill(info["pid"], signal.SIGTERM)  # the run saves a checkpoint and ends; see train.distill
        return "Stopping: the run saves a checkpoint and ends."

    def resume(self, run_id: str, requester: str | None = None, max_steps: int | None = None) -> str:
        with self._lock:
            run_dir, info = self._controlled(run_id, requester)
            if info.get("state") in ACTIVE_STATES:
                raise ValueError(f"The run is already {info.get('state')}.")
            config = read_json(RunPaths(run_dir).config)
            if not config:
                raise ValueError("This run never started, so there is nothing to resume; start a new run instead.")
            steps = max_steps or config["max_steps"]
            step = checkpoint_step(run_dir)
            if step >= steps:
                raise ValueError("The run has finished all its steps; raise the number of steps to continue it.")
            arguments = ["--resume", str(run_dir), "--max-steps", str(steps)]
            self._stopping.discard(run_id)
            where = f"from step {step}" if step else "from step 0 (it saved no checkpoint)"
            write_status(run_dir, state="queued", message=f"Waiting to resume {where}.", launch_args=arguments,
                         stop_requested=False, queued_at=time.time())
        self._wake.set()
        return f"Resuming from step {step}."

    def delete(self, run_id: str, requester: str | None = None) -> str:
        """Remove a run and its files. A run this launcher was asked to stop is waited for, at most stop_wait_s
        seconds, so that Stop then Delete works; raises ValueError for a run that is queued, running and not asked
        to stop, or still stopping after the wait."""
        run_dir, info = self._controlled(run_id, requester)
        if info.get("state") == "running" and run_id in self._stopping:
            deadline = time.monotonic() + self.stop_wait_s
            while read_status(run_dir).get("state") == "running" and time.monotonic() < deadline:
                time.sleep(0.1)
            info = read_status(run_dir)
            if info.get("state") == "running":
                raise ValueError("The run is still saving its checkpoint before it stops; press Delete again in a "
                                 "few seconds.")
        if info.get("state") in ACTIVE_STATES:
            raise ValueError("Stop the run before deleting it.")
        with self._lock:  # the watcher must not record the exit of a run whose folder is going away
            child = self._children.get(run_id)
            if child is not None:  # its status says it ended; the process may still be exiting
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=self.stop_wait_s)
            delete_run(run_dir)  # the watcher reaps the child later and, the folder gone, writes nothing
        return f"Deleted run {run_id}."

    def set_public(self, run_id: str, requester: str | None, public: bool) -> None:
        run_dir, _ = self._controlled(run_id, requester)
        write_status(run_dir, public=bool(public))

    def queue_position(self, run_id: str, runs: list[dict] | None = None) -> int:
        """1 for the next run to start; 0 when the run is not waiting. `runs`: list_runs() already read, if any."""
        runs = list_runs(self.root) if runs is None else runs
        queued = sorted((r for r in runs if r["state"] == "queued"), key=lambda r: r["queued_at"])
        ids = [r["id"] for r in queued]
        return ids.index(run_id) + 1 if run_id in ids else 0


def evaluation_interval(max_steps: int, log_every: int, evaluations: int = EVALUATIONS_PER_RUN) -> int:
    """Steps between held-out evaluations: about `evaluations` of them over `max_steps`, on logged steps (a multiple
    of `log_every`, at least one log interval)."""
    return max(log_every, (max_steps // evaluations) // log_every * log_every)


def check_uploaded_corpus(path: str | Path, name: str) -> list[str]:
    """The lines of an uploaded corpus, or ValueError naming the file as its owner named it (`name`), never by the
    server's temporary path; a UTF-16 or UTF-32 file is told apart from a binary one and its encoding named."""
    try:
        return read_corpus(path, name)
    except OSError:
        raise ValueError(f"The uploaded file '{name}' could not be read; upload it again.") from None

"""Runs started on behalf of others (the app): a queue on disk and one child process at a time.

Each run is `python -m train.distill --config runs/<id>/request.json --output-dir runs/<id>`, the same command a
person types, so the app and the command line make identical runs. A queued run is a directory whose status says
"queued"; a watcher thread starts the oldest one when nothing else runs. Children receive SIGTERM when the app dies
(Linux), which makes them save a checkpoint and stop cleanly: killing the app loses nothing.

A run whose files are damaged is listed as "damaged" and never started; the others keep running and starting. A
child that ends by a signal (SIGTERM before it could catch it, kill -9) is stopped at its last checkpoint, not failed.
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
from functools import partial
from pathlib import Path

import psutil

from core.distill.data import read_corpus
from core.paths import REPO_ROOT, runs_root
from core.runs.checkpoints import newest_readable_checkpoint
from core.runs.store import (
    ACTIVE_STATES,
    CONFIG_FIELDS,
    DamagedRunFile,
    RunPaths,
    checkpoint_step,
    console_error,
    delete_run,
    json_object,
    list_runs,
    new_run_id,
    read_status,
    remove_stale_temp_files,
    run_dir_of,
    stopped_message,
    update_status,
    write_request,
    write_status,
)
from train.admission import RunLimits, admit, check_corpus_lines, check_free_disk, folder_bytes
from train.config import BUNDLED_CORPUS, DistillConfig

EVALUATIONS_PER_RUN = 6  # held-out evaluations over an app run: enough points for a curve, little time spent
STOP_WAIT_S = 10.0  # how long delete waits for a run it was asked to stop (the run saves a checkpoint first)
STOPPING = "Stopping: the run saves a checkpoint and ends."
ALREADY_STOPPING = "The run is already stopping: it saves a checkpoint and ends."
ALREADY_STOPPED = "The run has already stopped; Resume continues it from its last checkpoint."


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the app's process goes away, and give SIGTERM its
    default action (an app started with SIGTERM ignored would pass that on, and a Stop sent before the run can catch
    the signal would be lost instead of ending it)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.signal(signal.SIGTERM, 0)  # 0 = SIG_DFL
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def can_control(info: dict, requester: str | None, shared: bool) -> bool:
    """Who may stop, resume or delete a run: anyone on a private app; on a shared app only the run's owner."""
    if not shared:
        return True
    return bool(info.get("owner")) and info["owner"] == requester


def can_see(info: dict, requester: str | None, shared: bool) -> bool:
    return not shared or info.get("public") or (info.get("owner") and info["owner"] == requester)


def deletion_refusal(run_id: str, status: dict) -> str | None:
    """The sentence refusing to delete run `run_id` with this status now, saying what to do: it is queued, or it is
    running and was not asked to stop (a run stopping is waited for, RunLauncher.delete); None when it may go."""
    if status.get("state") == "queued":
        return f"Run {run_id} is waiting in line: press Stop to take it out of the line, then Delete."
    if status.get("state") == "running" and not status.get("stop_requested"):
        return f"Run {run_id} is running: press Stop first (it saves a checkpoint and ends), then Delete."
    return None


def take_out_of_queue(status: dict) -> dict | None:
    """An update_status change: a run still queued is stopped before it started; any other is left alone."""
    if status.get("state") != "queued":
        return None
    return dict(state="stopped", message="Taken out of the queue before it started." if not status.get("step") else
                f"Taken out of the queue before it resumed; it stays at step {status['step']:,}.")


def stop_request(status: dict, pid: int, checked: bool) -> dict | None:
    """An update_status change: record that process `pid` of the run is asked to stop. checked: only while the
    status still names that process as running (not when it ended or was restarted since it was read); False for a
    run whose status was damaged, whose process this launcher knows."""
    if checked and (status.get("state") != "running" or status.get("pid") != pid):
        return None
    # written before the signal is sent, so that whoever sees the process gone (the watcher, read_status) knows
    return dict(state="running", pid=pid, stop_requested=True, message=STOPPING)


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
                    try:
                        self._record_exit(run_id, child)
                    except OSError as error:  # its folder cannot be written; the other runs go on
                        print(f"run launcher: the end of run {run_id} could not be recorded: {error}",
                              file=sys.stderr)
            runs = list_runs(self.root)
            running = len({r["id"] for r in runs if r["state"] == "running"} | set(self._children))
            waiting = False
            for info in sorted((r for r in runs if r["state"] == "queued"), key=lambda r: r["queued_at"]):
                if info["id"] in self._children:  # its last process wrote "stopped" and is still exiting
                    waiting = True
                    continue
                if running >= self.max_running:
                    break
                try:
                    started = self._spawn(info["id"])
                except OSError as error:  # this run cannot start (its folder unwritable, say); the next ones can
                    with contextlib.suppress(OSError):
                        write_status(self.root / info["id"], state="failed",
                                     message=f"The run could not be started: {error.strerror or error}.")
                    continue
                running += started
            return waiting

    def children_memory(self) -> int:
        """Bytes of memory (resident) the runs this launcher started hold now; they end before a queued run starts."""
        total = 0
        for child in list(self._children.values()):
            with contextlib.suppress(psutil.Error):
                total += psutil.Process(child.pid).memory_info().rss
        return total

    def _spawn(self, run_id: str) -> bool:
        """Start the queued run's process; False when its status no longer says queued (taken out of the line, or
        started by another launcher on the same folder since the listing), or when the disk has no longer room for
        what the run was estimated to write (the run then fails, saying so). The check, the start and the status
        that names the new process happen under the run's status lock (core.runs.update_status)."""
        paths = RunPaths(self.root / run_id)
        remove_stale_temp_files(paths.root)  # what a process killed while writing left behind
        try:
            check_free_disk(self.root, read_status(paths.root).get("disk_needed", 0) - folder_bytes(paths.root),
                            "The run")
        except ValueError as error:
            refusal = str(error)
            update_status(paths.root, lambda s: dict(state="failed", message=refusal) if s.get("state") == "queued"
                          else None)
            return False

        def start(status: dict) -> dict | None:
            if status.get("state") != "queued":
                return None
            arguments = status.get("launch_args") or ["--config", str(paths.request), "--output-dir", str(paths.root)]
            command = [sys.executable, "-m", "train.distill", *arguments]
            with open(paths.console, "a", encoding="utf-8") as log:
                # the command as a person would type it in the repository: no server paths in what the page shows
                shown = " ".join(a.replace(str(self.root), "runs") for a in ["python", *command[1:]])
                log.write(f"$ {shown}\n")
                log.flush()
                env = {**os.environ, "PYTHONUNBUFFERED": "1", "RUDISTIL_RUNS_DIR": str(self.root)}
                child = subprocess.Popen(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True, preexec_fn=_die_with_parent)
            self._children[run_id] = child
            self._stopping.discard(run_id)
            # the process begins by loading (train.distill then writes each phase it enters)
            return dict(state="running", pid=child.pid, stop_requested=False, message="Starting ...", phase="loading")

        return update_status(paths.root, start) is not None

    def _record_exit(self, run_id: str, child: subprocess.Popen) -> None:
        """Finish the status of a run whose process `child` has ended, when the run itself did not (killed, crashed).
        Only the status of that very process is touched: one queued again or stopped meanwhile is left as it is.

        Asked to stop, or ended by a signal (SIGTERM before its handler was in place, kill -9, the memory killer):
        stopped at its newest readable checkpoint. Ended with an exit code: failed, with the reason from its console.
        Ended with 0 without saying so: stopped."""
        paths = RunPaths(self.root / run_id)
        asked_to_stop = run_id in self._stopping
        self._stopping.discard(run_id)
        if not paths.root.is_dir():  # deleted meanwhile: writing a status would bring the folder back
            return
        try:
            status = json_object(paths.status) or {}  # as written, not as inferred from a dead pid
        except DamagedRunFile:
            return  # listed as damaged, with the file named; guessing its state would hide that
        if status.get("state") != "running" or status.get("pid") != child.pid:
            return  # the run recorded its own end, or was queued, taken out or restarted since
        code = child.returncode
        asked = asked_to_stop or status.get("stop_requested") is True
        if asked or code <= 0:
            write_status(paths.root, state="stopped", step=checkpoint_step(paths.root),
                         message=stopped_message(paths.root, asked=asked), phase=None)
        else:
            reason = console_error(paths.root) or f"The process ended with exit code {code}."
            write_status(paths.root, state="failed", message=reason, phase=None)

    # -- actions
    def submit(self, cfg: DistillConfig, owner: str | None = None, public: bool = False,
               uploaded_corpus: str | None = None, uploaded_name: str | None = None,
               limits: RunLimits | None = None, session: str | None = None) -> str:
        """Check a configuration, put the run in line, and return its id.

        uploaded_corpus: a text file to copy into the run (the app's upload); uploaded_name: the name its owner gave
        it, used in messages instead of the server's temporary path and kept as the run's corpus_name for pages and
        the model card (default: the file's own name); limits: what one run and one session may take
        (train.admission; default none but the free memory and disk); session: the app's connection that asks,
        counted with the owner's runs.
        Raises ValueError for bad input, or a run that would not fit or finish within the limits (the settings
        checked against the teacher's config as the run checks them), before anything is written."""
        run_id = new_run_id()
        paths = RunPaths(run_dir_of(run_id, self.root))
        cfg.output_dir = str(paths.root)
        if self.evaluations_per_run:
            cfg.eval_every = evaluation_interval(cfg.max_steps, cfg.log_every, self.evaluations_per_run)
        cfg.check()
        if uploaded_corpus:  # refuse a bad upload now, with its reason, rather than in a failed run
            lines = check_uploaded_corpus(uploaded_corpus, uploaded_name or Path(uploaded_corpus).name)
        else:
            lines = read_corpus(cfg.corpus_paths()[0], None if cfg.corpus != BUNDLED_CORPUS else "bundled")
        estimate, needed = admit(cfg, lines, cfg.max_steps // cfg.eval_every, list_runs(self.root), self.root, owner,
                                 limits or RunLimits(), Path(uploaded_corpus).stat().st_size if uploaded_corpus else 0,
                                 self.children_memory(), session=session)
        # too few lines would fail the run at its start (train.setup.check_batches), after its place in line
        corpus_name = (uploaded_name or Path(uploaded_corpus).name) if uploaded_corpus else \
            ("bundled" if cfg.corpus == BUNDLED_CORPUS else cfg.corpus)
        check_corpus_lines(len(lines), cfg.batch_size, corpus_name,
                           held_out=(bool(uploaded_corpus) or cfg.corpus != BUNDLED_CORPUS) and not cfg.valid_corpus)
        paths.root.mkdir(parents=True)
        if uploaded_corpus:
            shutil.copyfile(uploaded_corpus, paths.corpus)  # the run keeps its own copy for resuming
            cfg.corpus, cfg.corpus_name = str(paths.corpus), corpus_name  # the copy's name is the run's, not theirs
        write_request(paths.root, {k: v for k, v in cfg.to_dict().items() if k != "output_dir"})
        write_status(paths.root, state="queued", owner=owner, public=public, created=time.time(), queued_at=time.time(),
                     max_steps=cfg.max_steps, message="Waiting for its turn.", disk_needed=needed,
                     estimated_s=estimate.total_s if estimate else None, session=session)
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
        """Take a queued run out of the line, or ask a running one to save a checkpoint and end (SIGTERM).

        Each decision is checked and written under the launcher's lock and the run's status lock
        (core.runs.update_status): a run this or another launcher starts meanwhile is stopped as a running one, and
        one that ends meanwhile is left as it ended. The stop is written to the run's status before the signal is
        sent: a process still starting reads it once it can catch the signal (core.runs.stop_requested), and one
        that the signal ends is recorded as stopped. A run already stopped is left so, and said to be (a second
        press). Raises ValueError for a run that is neither queued, running nor stopped, or that belongs to another
        session."""
        with self._lock:
            run_dir, info = self._controlled(run_id, requester)
            for _ in range(3):  # each turn sees a newer state: queued -> running -> ended at most
                child = self._children.get(run_id)
                live_child = child is not None and child.poll() is None
                state = info.get("state")
                if state == "queued":
                    if update_status(run_dir, take_out_of_queue) is not None:
                        return "Taken out of the queue."
                elif state == "running" and info.get("stop_requested"):
                    return ALREADY_STOPPING  # a second signal could cut short the checkpoint the first one asked for
                elif state == "running" or (live_child and state in ("damaged", None)):
                    pid = info["pid"] if state == "running" else child.pid  # damaged: its process is ours
                    if update_status(run_dir, partial(stop_request, pid=pid, checked=state == "running")) is not None:
                        self._stopping.add(run_id)
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(pid, signal.SIGTERM)  # the run saves a checkpoint and ends; see train.distill
                        return STOPPING
                elif state == "stopped":
                    return ALREADY_STOPPED  # a second press of Stop, answered after the first one's run had ended
                else:
                    break
                info = read_status(run_dir)
            raise ValueError(f"The run is not running (it is {info.get('state') or 'unknown'}).")

    def resume(self, run_id: str, requester: str | None = None, max_steps: int | None = None,
               limits: RunLimits | None = None, session: str | None = None) -> str:
        """Put a stopped, failed, finished or damaged-status run back in line, to continue from its newest readable
        checkpoint up to `max_steps` (None: its own); a run already queued or running is left so, and said to be (a
        second press). Raises ValueError (a DamagedRunFile naming the file when its
        config.json cannot be used) when it cannot be resumed, or, with `limits`, when the steps left would take
        longer than one run may or the session has its most runs in line (train.admission)."""
        with self._lock:
            run_dir, info = self._controlled(run_id, requester)
            if info.get("state") in ACTIVE_STATES:  # a second press of Resume: what was asked is under way
                return f"The run is already {info.get('state')}."
            child = self._children.get(run_id)
            if info.get("state") == "damaged" and child is not None and child.poll() is None:
                raise ValueError("The run's process is still running; stop it, then resume it.")
            config_path = RunPaths(run_dir).config
            config = json_object(config_path, CONFIG_FIELDS)
            if not config:
                raise ValueError("This run never started, so there is nothing to resume; start a new run instead.")
            if "max_steps" not in config:
                raise DamagedRunFile(config_path, "it has no 'max_steps'")
            steps = max_steps or config["max_steps"]
            found = newest_readable_checkpoint(run_dir, keys=None)
            step = found.step
            if step >= steps and max_steps and step > 0:
                raise ValueError(f"The run is already at step {step:,}; resume it up to a later step than that (0 "
                                 "keeps its own number of steps).")
            if step >= steps:
                # the page's Steps box is for new runs: the box to raise is Resume up to step
                raise ValueError(f"The run has finished all its {step:,} steps; to train it further, resume it up to "
                                 f"a later step (Resume up to step), such as {2 * step:,}.")
            if limits is not None:
                self._admit_resume(run_dir, config, steps, step, requester, session, limits)
            arguments = ["--resume", str(run_dir), "--max-steps", str(steps)]
            self._stopping.discard(run_id)
            where = f"from step {step:,}" if step else "from step 0 (it saved no checkpoint)"
            note = f" {found.note}" if found.note else ""
            # max_steps: the target the page shows while queued (config.json gets it only when the process starts)
            write_status(run_dir, state="queued", message=f"Waiting to resume {where}.{note}", launch_args=arguments,
                         max_steps=steps, stop_requested=False, queued_at=time.time())
        self._wake.set()
        return f"Resuming from step {step:,}.{note}"

    def _admit_resume(self, run_dir: Path, config: dict, steps: int, step: int, requester: str | None,
                      session: str | None, limits: RunLimits) -> None:
        """The checks of admit() for a run resumed at `step` up to `steps`; ValueError with the first refusal."""
        try:
            cfg = DistillConfig.from_dict({**{k: v for k, v in config.items() if k != "output_dir"},
                                           "max_steps": steps})
        except TypeError as error:
            raise DamagedRunFile(RunPaths(run_dir).config, f"it holds options this lab does not know ({error})") \
                from None
        cfg.check()
        lines = read_corpus(cfg.corpus_paths()[0], "the run's corpus")
        admit(cfg, lines, max(1, (steps - step) // cfg.eval_every), list_runs(self.root), self.root, requester,
              limits, reclaimable=self.children_memory(), steps_done=step, resumed=True, session=session)

    def delete(self, run_id: str, requester: str | None = None) -> str:
        """Remove a run and its files. A run this launcher was asked to stop is waited for, at most stop_wait_s
        seconds, so that Stop then Delete works; raises ValueError for a run that is queued, running and not asked
        to stop, or still stopping after the wait."""
        run_dir, info = self._controlled(run_id, requester)
        if info.get("state") == "running" and (run_id in self._stopping or info.get("stop_requested")):
            deadline = time.monotonic() + self.stop_wait_s
            while read_status(run_dir).get("state") == "running" and time.monotonic() < deadline:
                time.sleep(0.1)
            info = read_status(run_dir)
            if info.get("state") == "running":
                raise ValueError("The run is still saving its checkpoint before it stops; press Delete again in a "
                                 "few seconds.")
        refusal = deletion_refusal(run_id, info)
        if refusal:
            raise ValueError(refusal)
        with self._lock:  # the watcher must not record the exit of a run whose folder is going away
            child = self._children.get(run_id)
            if child is not None:  # its status says it ended; the process may still be exiting
                with contextlib.suppress(subprocess.TimeoutExpired):
                    child.wait(timeout=self.stop_wait_s)
                if child.poll() is None and info.get("state") in ("damaged", None):  # its end was never recorded
                    raise ValueError("The run's process is still running; stop it, then delete it.")
            delete_run(run_dir)  # the watcher reaps the child later and, the folder gone, writes nothing
        return f"Deleted run {run_id}."

    def set_public(self, run_id: str, requester: str | None, public: bool) -> None:
        with self._lock:
            run_dir, info = self._controlled(run_id, requester)
            if info.get("state") == "damaged":  # a new status.json would hide what is wrong and lose the rest
                raise ValueError(info["message"])
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

"""Run directories: the one place that knows what a distillation run leaves on disk.

runs/<run id>/
  request.json       the configuration asked for, written when the run is put in line
  config.json        the full configuration, written by the run when it starts
  status.json        state (queued, running, finished, stopped, failed), pid, message, last step
  metrics.jsonl      one JSON object a logged step; step 0 holds the held-out figures of the untrained student
  guesses.jsonl      the probe sentences' top guesses at each evaluation (see core.runs.guesses)
  student/           the student's config and tokenizer, written at the start
  init/              the student before its first step, with its tokenizer ("run:<id>@init" loads it)
  checkpoints/       step-000100.pt ... (see core.runs.checkpoints)
  final/             the finished student, a Hugging Face model directory with its tokenizer
  snapshot/          the newest checkpoint exported as a model directory, made when an unfinished run is loaded
  corpus.txt         the run's own copy of an uploaded corpus
  console.log        the process's output, when the app started it

RunPaths(run_dir) names each of these; code elsewhere asks it rather than spelling the names.
"""
from core.runs.checkpoints import (
    atomic_write,
    atomic_write_text,
    checkpoint_paths,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from core.runs.store import (
    ACTIVE_STATES,
    RUN_ID_PATTERN,
    RunPaths,
    checkpoint_step,
    console_error,
    delete_run,
    has_init,
    has_model,
    list_runs,
    model_source,
    new_run_id,
    pid_alive,
    read_config,
    read_console,
    read_json,
    read_metrics,
    read_status,
    run_dir_of,
    run_info,
    run_model_dir,
    run_version,
    stopped_message,
    truncate_metrics,
    without_server_paths,
    write_request,
    write_status,
)

__all__ = ["ACTIVE_STATES", "RUN_ID_PATTERN", "RunPaths", "atomic_write", "atomic_write_text", "checkpoint_paths",
           "checkpoint_step", "console_error", "delete_run", "has_init", "has_model", "latest_checkpoint", "list_runs",
           "load_checkpoint", "model_source", "new_run_id", "pid_alive", "read_config", "read_console", "read_json",
           "read_metrics", "read_status", "rng_state", "run_dir_of", "run_info", "run_model_dir", "run_version",
           "save_checkpoint", "set_rng_state", "stopped_message", "truncate_metrics", "without_server_paths",
           "write_request", "write_status"]

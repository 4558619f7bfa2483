"""Run directories: the one place that knows what a distillation run leaves on disk.

runs/<run id>/
  request.json       the configuration asked for, written when the run is put in line
  config.json        the full configuration, written by the run when it starts
  status.json        state (queued, running, finished, stopped, failed), pid, message, last step; while a run
                     starts, its phase (loading, preparing, evaluating; null once its steps begin)
  metrics.jsonl      one JSON object a logged step; step 0 holds the held-out figures of the untrained student
  guesses.jsonl      the probe sentences' top guesses at each evaluation (see core.runs.guesses)
  student/           the student's config and tokenizer, written at the start
  init/              the student before its first step, with its tokenizer ("run:<id>@init" loads it)
  checkpoints/       step-000100.pt ... (see core.runs.checkpoints); step-000120.pt.unreadable: one a resume passed over
  final/             the finished student, a Hugging Face model directory with its tokenizer
  snapshot/          the newest checkpoint exported as a model directory, made when an unfinished run is loaded
  corpus.txt         the run's own copy of an uploaded corpus
  console.log        the process's output, when the app started it
  .status.lock       taken while status.json is read, merged and written

RunPaths(run_dir) names each of these; code elsewhere asks it rather than spelling the names. Listings show a run
whose status.json, config.json or request.json cannot be used as "damaged", with a sentence naming the file.
"""
from core.runs.checkpoints import (
    MODEL_KEYS,
    RESUME_KEYS,
    DiskFullError,
    ReadableCheckpoint,
    Unreadable,
    atomic_write,
    atomic_write_text,
    checkpoint_paths,
    checkpoint_problem,
    checkpoint_to_resume,
    latest_checkpoint,
    load_checkpoint,
    newest_readable_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from core.runs.store import (
    ACTIVE_STATES,
    PHASES,
    RUN_ID_PATTERN,
    DamagedRunFile,
    Records,
    RunModel,
    RunPaths,
    checkpoint_step,
    console_error,
    delete_run,
    has_init,
    has_model,
    json_object,
    list_runs,
    model_source,
    new_run_id,
    pid_alive,
    read_config,
    read_console,
    read_json,
    read_metrics,
    read_status,
    remove_stale_temp_files,
    run_dir_of,
    run_info,
    run_model,
    run_model_dir,
    run_version,
    stop_requested,
    stopped_message,
    truncate_metrics,
    update_status,
    without_server_paths,
    write_phase,
    write_request,
    write_status,
)

__all__ = ["ACTIVE_STATES", "MODEL_KEYS", "PHASES", "RESUME_KEYS", "RUN_ID_PATTERN", "DamagedRunFile", "DiskFullError",
           "ReadableCheckpoint", "Records", "RunModel", "RunPaths", "Unreadable", "atomic_write", "atomic_write_text",
           "checkpoint_paths", "checkpoint_problem", "checkpoint_step", "checkpoint_to_resume", "console_error",
           "delete_run", "has_init", "has_model", "json_object", "latest_checkpoint", "list_runs", "load_checkpoint",
           "model_source", "new_run_id", "newest_readable_checkpoint", "pid_alive", "read_config", "read_console",
           "read_json", "read_metrics", "read_status", "remove_stale_temp_files", "rng_state", "run_dir_of",
           "run_info", "run_model", "run_model_dir", "run_version", "save_checkpoint", "set_rng_state",
           "stop_requested", "stopped_message", "truncate_metrics", "update_status", "without_server_paths",
           "write_phase", "write_request", "write_status"]

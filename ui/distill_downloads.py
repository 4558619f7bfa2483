"""What the Distill tab hands out of the chosen run: its metrics (CSV) and student (zip), the student exported for
ONNX Runtime or OpenVINO, and the student published to the Hub."""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import gradio as gr

from core.bench.runtimes.available import why_not
from core.bench.runtimes.exported import export_name, run_exports
from core.runs.export import write_metrics_csv, write_student_zip
from core.runs.store import ACTIVE_STATES, RunPaths, run_info, without_server_paths
from train.export import export_model, mode_of
from train.export import summary as export_summary
from train.publish import publish
from ui.components import CheckedRadio
from ui.context import AppContext
from ui.distill_runs import visible_run_dir
from ui.errors import ErrorLines
from ui.input_checks import shown
from ui.page_text import markdown_text

PUBLISH_HELP = ("Push the chosen run's student (a run that has not finished: its newest readable checkpoint's) to a "
                "Hugging Face model repository with the app's token (HF_TOKEN): the weights in safetensors, the "
                "tokenizer and a model card with the recipe, the data and the held-out figures; the same as "
                "`python -m train.publish RUN --repo-id owner/name`.")


def download_folder() -> Path:
    """A fresh folder under the system's temporary folder, which Gradio serves files from."""
    return Path(tempfile.mkdtemp(prefix="rudistil-run-"))


def metrics_csv(ctx: AppContext, run_id: str | None, owner: str | None) -> str:
    """/run_metrics_csv: the chosen run's metrics, one row a logged step and one column a field, as a CSV file."""
    return str(write_metrics_csv(visible_run_dir(ctx, run_id, owner), download_folder()))


def student_zip(ctx: AppContext, run_id: str | None, owner: str | None) -> str:
    """/run_student_zip: the chosen run's student (final when finished, else its newest checkpoint) as a zip of a
    Hugging Face model folder with its tokenizer."""
    return str(write_student_zip(visible_run_dir(ctx, run_id, owner), download_folder()))


EXPORT_FORMATS = {"onnx": "ONNX Runtime", "openvino": "OpenVINO"}


def export_formats() -> list[str]:
    """The export formats whose runtime is installed here."""
    return [f for f in EXPORT_FORMATS if not why_not(mode_of(f, False))]


def export_run(ctx: AppContext, run_id: str | None, owner: str | None, fmt: str | None = "onnx",
               int8: bool | None = False) -> tuple[str, str]:
    """/export_run: export the chosen finished run's student for ONNX Runtime or OpenVINO (as `python -m
    train.export`) into the run's exports; returns the line of its measured size, speed and agreement, and the
    folder as a zip. ValueError: no run chosen, a run not finished, a format not installed here."""
    run_dir = visible_run_dir(ctx, run_id, owner)
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"Choose the format to export to: onnx or openvino, not {shown(fmt)}.")
    if not (RunPaths(run_dir).final / "config.json").is_file():
        raise ValueError(not_finished_message(run_info(run_dir)))
    folder = run_exports(run_dir) / export_name(fmt, bool(int8))
    try:
        report = export_model(str(run_dir), fmt, bool(int8), folder, label=f"run:{run_id}")
    except ValueError as error:  # the page names runs by id, never by the server's folders
        raise ValueError(without_server_paths(run_dir, str(error))) from None
    archive = shutil.make_archive(str(download_folder() / f"{run_id}-{folder.name}"), "zip", folder.parent, folder.name)
    line = (f"Exported run {run_id} for {EXPORT_FORMATS[fmt]}: {export_summary(report)}. The Predictions tab can run "
            "it beside the PyTorch student.")
    return markdown_text(line), archive


def not_finished_message(info: dict) -> str:
    """Why a run_info() row's student is not exported (only a finished run's is), and what to do by its state: a
    queued or running run will finish, so wait; a stopped, failed or damaged one finishes only if resumed. The
    newest checkpoint is offered as a zip only when there is one."""
    zip_offer = ", or download its newest checkpoint as a zip" if info.get("checkpoint") else ""
    if info["state"] in ACTIVE_STATES:
        return (f"Run {info['id']} has not finished: only a finished run's student is exported; wait for it to "
                f"finish{zip_offer}.")
    return (f"Run {info['id']} is {info['state']}, not finished: only a finished run's student is exported; resume "
            f"it to its last step{zip_offer}.")


def export_started(run_id: str | None, fmt: str | None, int8: bool | None) -> str:
    """The line under Export while it works: what is exported, and what takes the time. Empty when there is nothing
    to export; the export's own sentence then says why."""
    if not run_id or fmt not in EXPORT_FORMATS:
        return ""
    weights = " with int8 weights" if int8 else ""
    return markdown_text(f"Exporting run {run_id} for {EXPORT_FORMATS[fmt]}{weights}: converting its student, then "
                         "measuring its size, speed and agreement …")


def export_controls() -> dict:
    """Export for ONNX Runtime / OpenVINO: format, int8, the button and the line reporting what was measured."""
    formats = export_formats()
    with gr.Accordion("Export for ONNX Runtime / OpenVINO", open=False, elem_id="distill-export-group"):
        gr.Markdown("Export the chosen finished run's student to a folder that ONNX Runtime or OpenVINO runs without "
                    "the lab (tokenizer and a README with its measured size, speed and agreement inside); the same as "
                    "`python -m train.export run:RUN_ID --format onnx --output DIR`.")
        with gr.Row():
            fmt = CheckedRadio(formats, value=formats[0] if formats else None, label="Format",
                           elem_id="distill-export-format",
                           info="only runtimes installed here" if formats else "neither runtime is installed here")
            int8 = gr.Checkbox(False, label="int8 weights", info="ONNX Runtime dynamic quantisation, or NNCF weight "
                                                                 "compression for OpenVINO")
        button = gr.Button("Export student", elem_id="distill-export", interactive=bool(formats))
        result = gr.Markdown(label="export message", show_label=False, elem_id="distill-exported")
        file = gr.File(label="Exported student (zip)", interactive=False, elem_id="distill-export-file")
    return {"format": fmt, "int8": int8, "button": button, "result": result, "file": file}


def publish_token() -> str | None:
    """The token the app publishes with: HF_TOKEN of its environment. Without one the tab has no Publish control."""
    return os.environ.get("HF_TOKEN", "").strip() or None


def publish_run(ctx: AppContext, run_id: str | None, owner: str | None, repo_id: str | None,
                private: bool | None = False) -> str:
    """/publish_run: push the chosen run's student (a run that has not finished: its newest readable checkpoint's),
    its tokenizer and its model card to the Hub repository `repo_id` (owner/name) with the app's token, through
    train.publish.publish; returns the line saying where, and which checkpoint for an unfinished run.

    ValueError: a shared app (its token would write to any repository for every visitor), no run chosen, a run
    without a readable student, a malformed repository id, no token, or a Hub that cannot be reached or refuses."""
    if ctx.launcher.shared:
        raise ValueError("Publishing is turned off on a shared app, where the app's token would write for every "
                         "visitor; download the student (zip) and publish it with python -m train.publish.")
    run_dir = visible_run_dir(ctx, run_id, owner)
    token = publish_token()
    if not token:
        raise ValueError("Publishing needs a Hugging Face token with write access: set HF_TOKEN where the app runs "
                         "and restart it.")
    try:
        result = publish(run_dir, repo_id or "", token=token, private=bool(private))
    except ValueError as error:  # the page names runs by id, never by the server's folders
        raise ValueError(without_server_paths(run_dir, str(error))) from None
    return markdown_text(f"Published run {run_id} to {result.url}" + (f". {result.note}" if result.note else ""))


def refused_file(errors: ErrorLines, what: str, action: str):
    """The listener for the .failure() of an action that makes a file (a download, an export): given the action's
    inputs, the line saying `what` failed and why (ErrorLines.failure), and its file box emptied, so that no file of
    an earlier press is offered as this one's."""
    line = errors.failure(what, action)

    def refused(*inputs):
        return line(*inputs), None
    return refused


def publish_controls() -> dict:
    """The Publish to the Hub controls: repository id, private, the button and the line reporting the result."""
    with gr.Accordion("Publish to the Hub", open=False, elem_id="distill-publish-group"):
        gr.Markdown(PUBLISH_HELP)
        with gr.Row():
            repo_id = gr.Textbox(label="Repository id", placeholder="your-name/distilrubert-tiny", scale=3,
                                 elem_id="distill-publish-repo", info="owner/name on huggingface.co; created if new.")
            private = gr.Checkbox(False, label="Private", info="A new repository is private.", scale=1)
        button = gr.Button("Publish to the Hub", elem_id="distill-publish")
        result = gr.Markdown(elem_id="distill-published")
    return {"repo_id": repo_id, "private": private, "button": button, "result": result}

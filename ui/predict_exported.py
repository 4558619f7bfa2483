"""The exported student beside PyTorch: the exports offered, and both filling in the same sentence."""
from __future__ import annotations

import gradio as gr
import plotly.graph_objects as go

from core.bench.runtimes.exported import exported_folders, load_exported, run_exports
from core.compare import predict
from core.runs.store import run_dir_of
from ui.context import AppContext
from ui.input_checks import text_input
from ui.predict_figures import prediction_figure
from ui.predict_inputs import checked_top_k
from ui.predict_notes import language_note, model_notes
from ui.predict_tables import agreement_markdown

EXPORTED_HELP = ("A run's student exported in the Distill tab (ONNX Runtime or OpenVINO, int8 or not) fills in the "
                 "sentence above beside the same student in PyTorch: the same words, and how far the two agree.")
NO_EXPORTS = "Export a finished run's student in the Distill tab first; its exports are listed here."


def exported_choices(ctx: AppContext) -> list[tuple[str, str]]:
    """(label, value) of every export of the runs this app offers: value "run:RUN_ID:EXPORT" (EXPORT such as
    "onnx-int8"); read from the runs folder on every call."""
    choices = []
    for name in ctx.model_choices():
        if name.startswith("run:") and "@" not in name:
            for folder in exported_folders(run_dir_of(name.removeprefix("run:"), ctx.launcher.root)):
                choices.append((f"{name} · {folder.name}", f"{name}:{folder.name}"))
    return choices


def exported_list(ctx: AppContext) -> gr.Dropdown:
    """The exports offered now (one made since the page opened is among them)."""
    return gr.Dropdown(choices=exported_choices(ctx))


def compare_exported(ctx: AppContext, exported=None, top_k=None, sentence=None,
                     progress=gr.Progress()) -> tuple[go.Figure, str]:
    """A run's student in PyTorch (model 1) and exported (model 2) fill in the sentence's [MASK]s:
    (bars figure, agreement Markdown). ValueError: an export not offered here, a bad top-k or sentence."""
    offered = [value for _, value in exported_choices(ctx)]
    if not offered:
        raise ValueError(NO_EXPORTS)
    if exported not in offered:
        raise ValueError(f"Choose an exported student from the list; {text_input(exported, 'The export')!r} is not "
                         "one of them.")
    k = checked_top_k(top_k)
    text = predict.check_text(text_input(sentence, "The sentence"), with_masks=True)
    name, export = exported.rsplit(":", 1)
    pytorch = ctx.load(name, progress=progress)
    progress(0.5, desc=f"Loading {name} [{export}] ...")
    folder = run_exports(run_dir_of(name.removeprefix("run:"), ctx.launcher.root)) / export
    result = predict.compare([pytorch, load_exported(folder, name=f"{name} [{export}]")], text, k)
    return prediction_figure(result), agreement_markdown(result, language_note(text)) + model_notes(ctx, [pytorch])

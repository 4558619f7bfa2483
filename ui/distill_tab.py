"""The Distill tab: configure a run, start it as a child process, watch its curves, stop and resume it."""
from __future__ import annotations

import secrets

import gradio as gr
import pandas as pd

from core.formatting import parse_int_list
from core.models.student import teacher_depth
from core.runs.store import list_runs, read_metrics, run_dir_of
from train.config import BUNDLED_CORPUS, DistillConfig
from train.launcher import can_see
from ui.context import AppContext, user_errors
from ui.distill_plots import eval_figure, loss_figure, progress_line

DEFAULTS = DistillConfig()
RUN_COLUMNS = ["run", "state", "step", "teacher", "student layers", "owner", "shared"]
ALIGN_HELP = """**match**: compare only positions whose teacher token is also one student token, and only the
vocabulary entries both models share. **reduce**: the student reads the teacher's tokens split into its own pieces;
its logits are summed (or averaged) over the pieces of each teacher token, so every teacher position gets one
student vector, compared on the shared vocabulary (Kolesnikova et al., 2022)."""


def owner_token(owner: str | None) -> str:
    """The browser's id in this app, made on first use and kept in the browser's local storage."""
    return owner or secrets.token_hex(12)


def runs_table(ctx: AppContext, owner: str | None, infos: list[dict] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """The runs this owner may see, as a table and their ids; `infos`: list_runs() already read, if any."""
    rows, ids = [], []
    for info in list_runs(ctx.launcher.root) if infos is None else infos:
        if not can_see(info, owner, ctx.launcher.shared):
            continue
        ids.append(info["id"])
        mine = "you" if info["owner"] and info["owner"] == owner else ("-" if not info["owner"] else "other")
        rows.append([info["id"], info["state"], f"{info['step']}/{info['max_steps']}", info["teacher"],
                     info["student_layers"] or "half", mine, "yes" if info["public"] else "no"])
    return pd.DataFrame(rows, columns=RUN_COLUMNS), ids


def parse_layers(text: str) -> list[int] | None:
    text = (text or "").strip()
    if not text:
        return None
    return parse_int_list(text, "Initialising layers", example="0,2,4")


def build(ctx: AppContext) -> dict:
    owner = gr.BrowserState(None, storage_key="rudistil-owner")
    gr.Markdown("Distil a smaller student from a teacher, live. The run is the same `python -m train.distill` command "
                "you can type in a terminal; it keeps going if you close the page, and stops cleanly when asked.")
    with gr.Row():
        with gr.Column(scale=2, min_width=320):
            teacher = gr.Dropdown(ctx.model_choices(), value=ctx.default_teacher, label="Teacher",
                                  allow_custom_value=True,
                                  info="The model to imitate: a known name, a run's student, or a Hub id.")
            depth = teacher_depth(ctx.default_teacher) or 12
            student_layers = gr.Slider(1, depth, value=max(1, depth // 2), step=1, label="Student layers",
                                       info="Depth of the student; half the teacher's is DistilBERT's choice.")
            init_layers = gr.Textbox(label="Initialising teacher layers", placeholder="every k-th, e.g. 0,2",
                                     info="Teacher layers copied into the student, one per student layer; empty "
                                          "takes every k-th.")
            student_type = gr.Radio(["same", "bert", "distilbert"], value="same", label="Student architecture",
                                    info="DeepPavlov's students are DistilBERT (no token types, no pooler).")
            with gr.Group():
                corpus_choice = gr.Radio(["bundled corpus", "upload a .txt"], value="bundled corpus", label="Corpus",
                                         info="One sample a line, UTF-8. The bundled corpus is the lab's own "
                                              "conversational Russian.")
                corpus_file = gr.File(label="Corpus file (.txt, UTF-8, one sample a line, at most 20 MB)",
                                      file_types=[".txt"], type="filepath", visible=False)
            with gr.Row():
                steps = gr.Number(DEFAULTS.max_steps, precision=0, minimum=1, label="Steps", elem_id="distill-steps",
                                  info="Optimizer steps.")
                batch_size = gr.Number(DEFAULTS.batch_size, precision=0, minimum=1, label="Batch size",
                                       elem_id="distill-batch-size",
                                       info="Lines per step.")
                lr = gr.Number(DEFAULTS.lr, label="Learning rate", info="Peak of AdamW, after 5% warm-up.")
            with gr.Row():
                temperature = gr.Number(DEFAULTS.temperature, label="Temperature T",
                                        info="Softens both distributions in the KL term.")
                alpha_kl = gr.Number(DEFAULTS.alpha_kl, label="α KL", info="Weight of KL(teacher‖student)·T².")
                alpha_mlm = gr.Number(DEFAULTS.alpha_mlm, label="α MLM", info="Weight of the student's own MLM loss.")
            with gr.Row():
                alpha_cos = gr.Number(DEFAULTS.alpha_cos, label="α cosine",
                                      info="Weight of 1−cos(student layer, mean of k teacher layers).")
                alpha_att = gr.Number(DEFAULTS.alpha_att, label="α attention",
                                      info="Weight of the attention-map MSE (the small model's recipe).")
                max_length = gr.Number(DEFAULTS.max_length, precision=0, minimum=8, label="Max length",
                                       elem_id="distill-max-length",
                                       info="Tokens per line; longer lines are cut.")
            with gr.Accordion("Smaller vocabulary and width (reduced students)", open=False):
                reduced = gr.Checkbox(False, label="Give the student its own smaller vocabulary",
                                      info="Trains a WordPiece vocabulary on the corpus; logits are aligned below.")
                with gr.Row():
                    vocab_size = gr.Number(2000, precision=0, minimum=100, label="Student vocabulary size",
                                           info="Entries of the new WordPiece vocabulary.")
                    hidden = gr.Number(None, precision=0, label="Student width",
                                       info="Hidden size; empty keeps the teacher's. Must divide by the heads.")
                align = gr.Radio(["reduce", "match"], value="reduce", label="Logit alignment",
                                 info="How teacher and student logits meet across vocabularies.")
                gr.Markdown(ALIGN_HELP)
            with gr.Row():
                save_every = gr.Number(DEFAULTS.save_every, precision=0, minimum=1, label="Checkpoint every",
                                       info="Steps between checkpoints (resume starts from the last one).")
                public = gr.Checkbox(False, label="Share this run", info="Let everyone on this app see it and "
                                                                         "use its student.")
            start = gr.Button("Start run", variant="primary", elem_id="distill-start")
        with gr.Column(scale=3, min_width=420):
            table, ids = runs_table(ctx, None)
            runs = gr.Dataframe(table, label="Runs", interactive=False, max_height=220)
            selected = gr.Dropdown(ids, value=ids[0] if ids else None, label="Run shown below", allow_custom_value=True,
                                   info="Pick a run to watch; new runs are selected when they start.")
            status = gr.Markdown("No run selected.", elem_id="run-status")
            with gr.Row():
                stop = gr.Button("Stop", variant="stop", elem_id="distill-stop")
                resume = gr.Button("Resume")
                more_steps = gr.Number(0, precision=0, minimum=0, label="Resume up to step", min_width=120,
                                       info="0 keeps the run's own number of steps.")
                delete = gr.Button("Delete")
                share_selected = gr.Checkbox(False, label="Shared", info="Everyone may see this run and use its "
                                                                           "student.")
            losses_plot = gr.Plot(loss_figure([]), label="Losses", elem_id="distill-losses")
            eval_plot = gr.Plot(eval_figure([]), label="Agreement and accuracy", elem_id="distill-eval")
            with gr.Accordion("Console output", open=False):
                console = gr.Code(label="console.log (last lines)", language=None, lines=12)
    timer = gr.Timer(2.0)

    corpus_choice.change(lambda c: gr.File(visible=c == "upload a .txt"), corpus_choice, corpus_file,
                         api_visibility="private")

    def on_teacher(name):
        layers = teacher_depth(name)
        line = ctx.offline_line(name)
        if line:
            gr.Warning(line)
        if layers is None:
            return gr.Slider()
        return gr.Slider(maximum=layers, value=max(1, layers // 2))

    teacher.change(on_teacher, teacher, student_layers, api_visibility="private")

    @user_errors
    # Defaults of None let gradio_client callers leave out what has no initial value in the page.
    def start_run(owner=None, teacher=None, student_layers=None, init_layers=None, student_type=None,
                  corpus_source=None, corpus_file=None, steps=None, batch_size=None, learning_rate=None,
                  temperature=None, alpha_kl=None, alpha_mlm=None, alpha_cos=None, alpha_att=None, max_length=None,
                  reduced_vocab=None, student_vocab_size=None, student_hidden=None, align=None, save_every=None,
                  share=None):
        owner_id = owner_token(owner)
        teacher = ctx.check_name(teacher)
        line = ctx.offline_line(teacher)
        if line:
            raise ValueError(line)
        if corpus_source == "upload a .txt" and not corpus_file:
            raise ValueError("Upload a .txt corpus first, or choose the bundled corpus.")
        cfg = DistillConfig(teacher=teacher, student_layers=int(student_layers), init_layers=parse_layers(init_layers),
                            student_type=student_type, corpus=BUNDLED_CORPUS, max_steps=int(steps or 0),
                            batch_size=int(batch_size or 0), lr=float(learning_rate or 0),
                            temperature=float(temperature or 0), alpha_kl=float(alpha_kl or 0),
                            alpha_mlm=float(alpha_mlm or 0), alpha_cos=float(alpha_cos or 0),
                            alpha_att=float(alpha_att or 0), max_length=int(max_length or 0),
                            save_every=int(save_every or 0),
                            student_vocab_size=(int(student_vocab_size) if reduced_vocab and student_vocab_size
                                                else None),
                            student_hidden=int(student_hidden) if reduced_vocab and student_hidden else None,
                            align=align)
        cfg.eval_every = max(cfg.log_every, (cfg.max_steps // 6) // cfg.log_every * cfg.log_every)
        ctx.launcher.start()
        run_id = ctx.launcher.submit(cfg, owner=owner_id, public=bool(share),
                                     uploaded_corpus=corpus_file if corpus_source == "upload a .txt" else None)
        position = ctx.launcher.queue_position(run_id)
        gr.Info(f"Run {run_id} is in line (place {position})." if position > 1 else f"Run {run_id} is starting.")
        table, ids = runs_table(ctx, owner_id)
        return owner_id, gr.Dropdown(choices=ids, value=run_id), table

    start.click(start_run, [owner, teacher, student_layers, init_layers, student_type, corpus_choice, corpus_file,
                            steps, batch_size, lr, temperature, alpha_kl, alpha_mlm, alpha_cos, alpha_att, max_length,
                            reduced, vocab_size, hidden, align, save_every, public],
                [owner, selected, runs], api_name="start_run", concurrency_limit=1)

    def show(run_id, owner):
        infos = list_runs(ctx.launcher.root)  # read once a tick: the table, the chosen run and the queue use it
        table, ids = runs_table(ctx, owner, infos)
        if not run_id or run_id not in ids:
            return table, gr.Dropdown(choices=ids), "No run selected.", loss_figure([]), eval_figure([]), "", False
        run_dir = run_dir_of(run_id, ctx.launcher.root)
        info, records = next(i for i in infos if i["id"] == run_id), read_metrics(run_dir)
        log = run_dir / "console.log"
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").replace("\r", "\n").splitlines()[-40:]) \
            if log.is_file() else ""
        line = progress_line(info, records, ctx.launcher.queue_position(run_id, infos))
        return table, gr.Dropdown(choices=ids), line, loss_figure(records), eval_figure(records), tail, info["public"]

    watch_outputs = [runs, selected, status, losses_plot, eval_plot, console, share_selected]
    timer.tick(show, [selected, owner], watch_outputs, show_progress="hidden", api_visibility="private")
    selected.change(show, [selected, owner], watch_outputs, api_name="run_status")

    NO_RUN_CHOSEN = "Choose a run in the 'Run shown below' list first (start one above if the list is empty)."

    def controlled(action):
        @user_errors
        def handler(run_id, owner, up_to_step=None):
            if not run_id:
                raise ValueError(NO_RUN_CHOSEN)
            gr.Info(action(run_id, owner, up_to_step))
            return show(run_id, owner)
        return handler

    def resume_run(run_id, owner, up_to_step):
        ctx.launcher.start()
        return ctx.launcher.resume(run_id, owner, int(up_to_step) if up_to_step else None)

    stop.click(controlled(lambda run_id, owner, _: ctx.launcher.stop(run_id, owner)), [selected, owner],
               watch_outputs, api_name="stop_run")
    resume.click(controlled(resume_run), [selected, owner, more_steps], watch_outputs, api_name="resume_run")
    delete.click(controlled(lambda run_id, owner, _: ctx.launcher.delete(run_id, owner)), [selected, owner],
                 watch_outputs, api_name="delete_run")

    @user_errors
    def share_run(run_id, owner, shared):
        if not run_id:
            raise ValueError(NO_RUN_CHOSEN)
        ctx.launcher.set_public(run_id, owner, bool(shared))
        return f"Run {run_id} is {'shared with everyone' if shared else 'private'}."

    share_selected.input(share_run, [selected, owner, share_selected], status, api_name="share_run")
    return {"start": start, "selected": selected, "status": status}

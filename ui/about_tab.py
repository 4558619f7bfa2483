"""The About tab: what distillation is, the losses, the model card's table, a 10-minute lesson, measured results,
and the download of the DeepPavlov models for a class without a network."""
from __future__ import annotations

import functools
import json
import math

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from core.models import hub, zoo
from core.models.zoo import KNOWN_MODELS
from core.paths import ASSETS
from ui import lesson
from ui.context import AppContext
from ui.errors import user_errors
from ui.tables import scroll_note

RESULTS = ASSETS / "results" / "vocab_experiment.json"

INTRO = r"""
## What is knowledge distillation?

A large **teacher** model already predicts words well. A smaller **student** is trained to imitate it: not only to
guess the right word, but to spread its probability over the alternatives the way the teacher does. Those
"dark knowledge" probabilities (that *кошка* is a likelier blank than *стол*, even when the answer is *кот*) carry
much more information per example than the single correct word, so a student with half the layers keeps most of
the teacher's quality while running about twice as fast.

DeepPavlov made **DistilRuBERT-base-cased-conversational** this way from **Conversational RuBERT**: 12 layers to 6,
trained for about 100 hours on 8 GPUs with three losses.

## The three losses

For a batch, let $z^t$ and $z^s$ be the teacher's and student's logits at one position, $T$ the temperature and
$p^t = \mathrm{softmax}(z^t / T)$, $p^s = \mathrm{softmax}(z^s / T)$.

1. **KL on softened logits**, averaged over the non-padding positions $\mathcal{P}$ (or masked ones only):
   $$\mathcal{L}_{KL} = \frac{T^2}{|\mathcal{P}|} \sum_{i \in \mathcal{P}} \sum_{w} p^t_{i,w}\,\log\frac{p^t_{i,w}}{p^s_{i,w}}$$
   The $T^2$ keeps gradients the same size whatever the temperature.
2. **Masked language modelling**: the student's own cross-entropy on the 15% masked tokens $\mathcal{M}$:
   $$\mathcal{L}_{MLM} = -\frac{1}{|\mathcal{M}|}\sum_{i \in \mathcal{M}} \log \mathrm{softmax}(z^s_i)_{y_i}$$
3. **Cosine between hidden states**: student layer $l$ imitates the mean of $k$ consecutive teacher layers
   ($k$ = teacher layers / student layers; layers 1–2 → 1, …, 11–12 → 6 for the base student):
   $$\mathcal{L}_{cos} = \frac{1}{L_s}\sum_{l=1}^{L_s} \frac{1}{|\mathcal{P}|}\sum_{i \in \mathcal{P}}
   \Big(1 - \cos\big(h^s_{l,i},\ \tfrac{1}{k}\textstyle\sum_{j=(l-1)k+1}^{lk} h^t_{j,i}\big)\Big)$$

The total is $\alpha_{KL}\mathcal{L}_{KL} + \alpha_{MLM}\mathcal{L}_{MLM} + \alpha_{cos}\mathcal{L}_{cos}$
(DistilBERT's weights 5, 2, 1 are the defaults here; DeepPavlov did not publish theirs). The 2-layer
DistilRuBERT-small adds an MSE between student attention maps and the mean of 6 consecutive teacher maps
(*α attention* in the Distill tab). The student starts from teacher layers, evenly spaced and keeping the first and the last by default (12 → 6:
layers 0, 2, 4, 7, 9, 11, as in DistilBERT).

**Smaller vocabularies.** Most of a Russian BERT's weight is its 119,547-word embedding table.
DistilRuBERT-tiny-v1 (Kolesnikova et al., 2022) keeps 3 layers, 264 wide and a 30K vocabulary: 10.4M parameters
against the teacher's 178M. Its logits cannot be compared with the teacher's directly, so they are aligned:
in the authors' *reduce* the student reads the teacher's tokens cut into its own pieces, and its logits, summed over
the pieces of each teacher token, are mapped onto the teacher's whole vocabulary; in *match* the student reads its
own tokens, and positions whose tokens are the same string in both are compared on the vocabulary both share. A
trainable projection lifts the narrower student's hidden states to the teacher's width for an MSE on them,
weighted by $\alpha_{hidden}$ in place of the cosine loss.
"""

def card_table() -> pd.DataFrame:
    rows = []
    for name in ("rubert-base-cased-conversational", "distilrubert-base-cased-conversational",
                 "distilrubert-small-cased-conversational"):
        p = KNOWN_MODELS[name].published
        # one number of decimals a column: the card's own figures mix 0.655 with 0.3285, 0.031 with 0.0212
        rows.append([name, p["size_mb"], f"{p['cpu_latency_s']:.4f}", f"{p['gpu_latency_s']:.4f}",
                     f"{p['cpu_throughput']:.4f}", f"{p['gpu_throughput']:.4f}"])
    return pd.DataFrame(rows, columns=["model", "size MB", "CPU latency s", "GPU latency s", "CPU samples/s",
                                       "GPU samples/s"])


def threads_of(machine: dict) -> str:
    """'1 thread', '2 threads', or 'the threads' when the run did not record them."""
    threads = machine.get("torch_threads")
    return "the threads" if not isinstance(threads, int) else f"{threads} thread" + ("s" if threads != 1 else "")


def experiment_results() -> tuple[pd.DataFrame | None, go.Figure | None, str]:
    """The reduced-vocabulary experiment as measured by scripts/vocab_experiment.py, when it has been run."""
    if not RESULTS.is_file():
        return None, None, "Run `python -m scripts.vocab_experiment` to measure the experiment on this machine."
    data = json.loads(RESULTS.read_text(encoding="utf-8"))
    rows = data["rows"]
    table = pd.DataFrame({
        "model": [r["student"] for r in rows],
        "vocabulary": [f"{r['vocab']:,}" for r in rows],
        "parameters": [f"{r['params'] / 1e6:.2f}M" for r in rows],
        "size MB (fp32)": [f"{r['size_mb']:.1f}" for r in rows],  # one number of decimals a column: 1.20, not 1.2
        "CPU latency ms": [f"{r['cpu_latency_ms']:.2f}" for r in rows],
        "MLM accuracy": [f"{r['mlm_acc']:.1%}" for r in rows],
        "top-1 agreement": [f"{r['agreement']:.1%}" + (" (itself)" if r["student"] == "teacher" else "")
                            for r in rows],  # the plot's reference point at 100%, named as such
    })
    fig = tradeoff_figure(rows)
    machine = data.get("machine", {})
    note = (f"{data['steps']:,} distillation steps each, student vocabulary {data['student_vocab_size']:,} and width "
            f"{data['student_hidden']}; latency of one 128-token sample on {threads_of(machine)} of "
            f"{machine.get('cpu_model', 'this CPU')}. Accuracy and agreement compare predicted words "
            "(strings) at held-out masked positions, so different vocabularies compare fairly.")
    same = next((r for r in rows if r["student"] == "same vocabulary"), None)
    reduced = [r for r in rows if r["student"].startswith("reduced")]
    if same and reduced:
        best = max(reduced, key=lambda r: r["agreement"])
        note = (f"**What it shows:** the smaller vocabulary and width buy {same['params'] / best['params']:.1f} times "
                f"fewer parameters and {same['cpu_latency_ms'] / best['cpu_latency_ms']:.1f} times the speed of the "
                f"same-vocabulary student, and cost {100 * (same['agreement'] - best['agreement']):.0f} points of "
                f"agreement with the teacher at these equal steps.\n\n" + note)
    return table, fig, note


LABEL_ROOM = 0.12  # of the y axis (agreement): the height a point's label takes above or below it
LABEL_X_ROOM = 0.12  # of the x span: half a label's width beside the rightmost point
# A phone (390 px wide) leaves the plot area about 240 px; a label's character takes about 6.5 px at Plotly's 12 px.
PHONE_PLOT_PX = 240
LABEL_CHAR_PX = 6.5
MARGIN = dict(l=60, r=20, b=60)  # px; Plotly's 80 at left and right took half a phone's plot area


def label_positions(xs: list[float], ys: list[float]) -> list[str]:
    """Where each point's label goes: above it, except that of two points at about the same size (within 5% of the
    x span) the lower one's label goes below, so their labels do not meet."""
    span = max(max(xs) - min(xs), 1e-9)
    positions = ["top center"] * len(xs)
    for i in range(len(xs)):
        for j in range(len(xs)):
            if i != j and abs(xs[i] - xs[j]) <= 0.05 * span and (ys[i], -i) < (ys[j], -j) \
                    and positions[j] == "top center":
                positions[i] = "bottom center"
    return positions


def x_range(xs: list[float], labels: list[str]) -> tuple[float, float]:
    """The x axis' (left, right) in the units of `xs`, wide enough that each label, centred on its point, stays
    inside the plot area on a phone (PHONE_PLOT_PX); the left end goes below 0 when the leftmost label needs it."""
    fractions = [min(len(label) * LABEL_CHAR_PX / 2 / PHONE_PLOT_PX, 0.45) for label in labels]  # of the width
    left, right = 0.0, max(xs) * (1 + LABEL_X_ROOM) + 1e-9
    for _ in range(50):  # each widening needs a little more room at the other end; converges as fractions < 0.5
        width = right - left
        left = min(left, *(x - f * width for x, f in zip(xs, fractions)))
        right = max(right, *(x + f * width for x, f in zip(xs, fractions)))
    return left, right


def zero_up_ticks(right: float) -> list[float]:
    """Tick values from 0 to `right` at a round step (1, 2 or 5 times a power of ten), five to twelve of them: a
    left end below 0 shows no negative number of parameters."""
    rough = max(right, 1e-9) / 6
    power = 10 ** math.floor(math.log10(rough))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= rough)
    return [round(i * step, 12) for i in range(int(right / step + 1e-9) + 1)]  # 0.6, not 0.6000000000000001


def tradeoff_figure(rows: list[dict]) -> go.Figure:
    """Agreement with the teacher against parameters, one labelled point a model; the axes leave room for every
    label (the teacher's at 100% was cut at the top, and on a phone the leftmost labels at the left)."""
    xs, ys = [r["params"] / 1e6 for r in rows], [r["agreement"] for r in rows]
    labels = [r["student"] for r in rows]
    positions = label_positions(xs, ys)
    low = min([0.0] + [y - LABEL_ROOM for y, p in zip(ys, positions) if p.startswith("bottom")])
    high = max([1.0] + [y + LABEL_ROOM for y, p in zip(ys, positions) if p.startswith("top")]) + 0.03
    left, right = x_range(xs, labels)
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="markers+text", text=labels,
                               marker=dict(size=14), textposition=positions, cliponaxis=True))
    fig.update_layout(title="compression against quality", xaxis_title="parameters (millions)",
                      yaxis_title="top-1 agreement with the teacher",
                      yaxis=dict(tickformat=".0%", range=[low, high]),
                      xaxis=dict(range=[left, right], tickvals=zero_up_ticks(right)), height=380, margin=MARGIN)
    return fig


AUTHORS_ALIGNMENTS = ("match", "reduce")  # Kolesnikova et al.; the lab adds match-pieces and reduce-shared


def experiment_teacher(rows: list[dict] | None) -> str:
    """Which teacher the results were measured on: the bundled one, or, when its vocabulary differs from the teacher
    bundled now, an earlier bundled teacher, named by its size."""
    teacher = next((r for r in rows or [] if r["student"] == "teacher"), None)
    config = zoo.BUNDLED_DIR / "teacher" / "config.json"
    if teacher is None or "vocab" not in teacher or not config.is_file():
        return "The bundled teacher"
    if json.loads(config.read_text(encoding="utf-8"))["vocab_size"] == teacher["vocab"]:
        return "The bundled teacher"
    return (f"An earlier bundled teacher ({teacher['params'] / 1e6:.1f}M parameters, a {teacher['vocab']:,}-entry "
            "vocabulary; the figures were measured on it)")


def experiment_heading(rows: list[dict] | None) -> str:
    """The experiment's heading and one line naming the students its results hold (not those it could hold)."""
    line = f"## Experiment: students with a smaller vocabulary\n{experiment_teacher(rows)} distilled at equal steps into 2-layer "
    if not rows:
        return line + "students: one with the same vocabulary, and students with a reduced vocabulary and width."
    names = [r["student"] for r in rows]
    aligned = [n.split(",", 1)[1].strip() for n in names if n.startswith("reduced") and "," in n]
    authors = [f"*{a}*" for a in aligned if a in AUTHORS_ALIGNMENTS]
    lab = [f"*{a}*" for a in aligned if a not in AUTHORS_ALIGNMENTS]
    kinds = (["the authors' " + " and ".join(authors)] if authors else []) + (
        ["the lab's " + " and ".join(lab)] if lab else [])
    parts = ["one with the same vocabulary"] if "same vocabulary" in names else []
    if kinds:
        parts.append(f"student{'s' if len(aligned) > 1 else ''} with a reduced vocabulary and width aligned by "
                     + " and by ".join(kinds))
    return line + ("students: " + ", and ".join(parts) + "." if parts else "students.")


def experiment_rows() -> list[dict] | None:
    return json.loads(RESULTS.read_text(encoding="utf-8"))["rows"] if RESULTS.is_file() else None


OFFLINE_PREP = """
## Before going offline: the DeepPavlov models

A class without a network can still use DeepPavlov's teacher and students when they are in this machine's Hugging
Face cache. `python -m core.models.hub` downloads them (only the files the lab loads: config, weights, vocabulary and
tokenizer settings), says first how much and where, and skips what is already cached; `--dry-run` only says it.
"""


def cache_status(on_space: bool = False) -> str:
    """Which of the lab's Hub models this machine's cache holds, one line each, read from disk on every call; on a
    Space without the cache's folder (a public page names no folder of the server)."""
    lines = ["Hugging Face cache of this Space:" if on_space else f"Hugging Face cache: `{hub.cache_folder()}`", ""]
    for name in hub.hub_models():
        known = KNOWN_MODELS[name]
        state = "cached" if zoo.is_cached(known.hub_id) else "not cached"
        lines.append(f"- {name} (about {known.published.get('size_mb', '?')} MB): **{state}**")
    return "\n".join(lines)


@user_errors
def download_models(progress=gr.Progress()):
    """Plan, then download the DeepPavlov models that are not cached; yields the plan, then what was downloaded.

    Raises gr.Error with one sentence when the Hub cannot be reached or the disk is too small."""
    plan = hub.plan_download()
    shown = f"```\n{plan.describe()}\n```"
    yield shown

    def on_progress(name: str, done_bytes: int, total_bytes: int) -> None:
        progress(done_bytes / total_bytes if total_bytes else 1.0,
                 desc=f"{name}: {hub.format_bytes(done_bytes)} of {hub.format_bytes(total_bytes)}")

    done = hub.download(plan, on_progress)
    yield f"{shown}\n\n{hub.report(done, plan)}"


def build_offline_prep(ctx: AppContext) -> gr.Markdown:
    """The download section: the cache's state, and the button only where the Hub is reachable and it is not a
    shared Space (a Space preloads the models). Returns the status Markdown, redrawn when the tab is opened."""
    gr.Markdown(OFFLINE_PREP)
    status = gr.Markdown(cache_status(ctx.on_space), elem_id="about-cache-status")
    if ctx.on_space:
        gr.Markdown("This Space downloads the DeepPavlov models when it starts.")
    elif not zoo.hub_reachable():
        gr.Markdown(hub.offline_sentence(), elem_id="about-download-offline")
    else:
        button = gr.Button("Download the DeepPavlov models", elem_id="about-download")
        result = gr.Markdown(elem_id="about-download-result")
        button.click(download_models, None, result, api_name="download_models", api_visibility="private",
                     concurrency_limit=1).then(cache_status, None, status, api_visibility="private")
    return status


def build(ctx: AppContext) -> dict:
    latex = [{"left": "$$", "right": "$$", "display": True}, {"left": "$", "right": "$", "display": False}]
    gr.Markdown(INTRO, latex_delimiters=latex)
    gr.Markdown("## The model card's speed table\nseq_len 512; latency at batch 1, throughput at batch 16; Intel Xeon "
                "E5-2698 v4 and Tesla P100. The **Benchmark** tab measures the same on your hardware.")
    scroll_note("about-card")
    gr.Dataframe(card_table(), interactive=False, elem_id="about-card")
    gr.Markdown(lesson.lesson_markdown(lesson.read_figures()))
    gr.Markdown(experiment_heading(experiment_rows()))
    table, fig, summary = experiment_results()
    if table is not None:
        scroll_note("about-experiment")
        gr.Dataframe(table, interactive=False, elem_id="about-experiment")
        gr.Plot(fig, elem_id="about-tradeoff")
    gr.Markdown(summary)
    status = build_offline_prep(ctx)
    return {"refresh": (functools.partial(cache_status, ctx.on_space), [status])}

"""The Predictions tab: two or three models fill in the same [MASK] side by side, with figures of how close they are."""
from __future__ import annotations

import math
from pathlib import Path

import gradio as gr
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from core.compare import predict
from core.compare.probes import fill_mask_probes
from ui.context import AppContext, user_errors

DEFAULT_TOP_K = 5
FALLBACK_EXAMPLES = [
    "Я сегодня приготовила овощной [MASK] с фрикадельками.",
    "Давай вечером сходим в [MASK], там новый фильм.",
    "Не забудь взять [MASK], на улице дождь.",
    "Мой [MASK] опять разрядился, дай зарядку.",
]
SHARED_PALETTE = qualitative.Plotly + qualitative.D3
UNSHARED = "#c9ced6"

INTRO = f"""Type a Russian sentence with `[MASK]` where a word is missing (up to {predict.MAX_MASKS} masks), or pick one
from the probe set. Each model's top-k guesses stand side by side; a word found in more than one model's list has
the same colour everywhere, words only one model guesses are grey.

- Each `[MASK]` is predicted **on its own**, all of them in one forward pass (as the `transformers` fill-mask pipeline
  does): the guesses at one mask do not know what fills another.
- A `[MASK]` is filled with **one vocabulary entry**; a word the vocabulary splits can show only as its first piece.
  Continuation pieces are drawn as `…ка` (the vocabulary's `##ка`).
- Models are compared by the **strings** they predict, so models with different vocabularies compare.
  KL is KL(model 1 ‖ other) over the entries whose string both vocabularies hold (the plain KL when they are equal).
- **Mask each word** takes a sentence without `[MASK]` and masks every word in turn (the whole word as one `[MASK]`).
"""


def example_sentences() -> list[str]:
    try:
        return [p.sentence for p in fill_mask_probes()] or FALLBACK_EXAMPLES
    except FileNotFoundError:
        return FALLBACK_EXAMPLES


def _models(ctx: AppContext, names: list[str | None], progress) -> list:
    chosen = [n.strip() for n in names if n and n.strip()]
    if len(chosen) < 2:
        raise ValueError("Choose at least two models to compare.")
    return [ctx.load(name, progress=progress) for name in chosen]


# ---------------------------------------------------------------------------------------------------------------------
# Figures and tables


def label(name: str) -> str:
    """A model name short enough for a plot title: a local folder shows as its last part."""
    return Path(name).name if "/" in name and Path(name).is_absolute() else name


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("*", "\\*").replace("_", "\\_").replace("`", "\\`")


def _shared_colours(token_lists: list[list[str]]) -> dict[str, str]:
    """One colour for each string in the top-k of two or more models."""
    seen: dict[str, int] = {}
    for tokens in token_lists:
        for token in set(tokens):
            seen[token] = seen.get(token, 0) + 1
    order = [t for tokens in token_lists for t in tokens]
    shared = sorted({t for t, n in seen.items() if n > 1}, key=order.index)
    return {t: SHARED_PALETTE[i % len(SHARED_PALETTE)] for i, t in enumerate(shared)}


def prediction_figure(result: predict.SentenceComparison) -> go.Figure:
    """Horizontal bars: one row of subplots per mask, one subplot per model, best guess on top."""
    masks, models = len(result.results[0].masks), len(result.results)
    titles = [label(r.model) + (f" · mask {m + 1}" if masks > 1 else "") for m in range(masks) for r in result.results]
    row_height = 50 + 24 * result.top_k  # pixels
    height = masks * row_height + 40
    fig = make_subplots(rows=masks, cols=models, subplot_titles=titles, horizontal_spacing=0.12,
                        vertical_spacing=45 / height if masks > 1 else 0.0)
    for m in range(masks):
        colours = _shared_colours([r.masks[m].tokens for r in result.results])
        for c, r in enumerate(result.results):
            guess = r.masks[m]
            fig.add_trace(go.Bar(
                x=guess.probs, y=list(range(len(guess.tokens))), orientation="h",
                marker_color=[colours.get(t, UNSHARED) for t in guess.tokens],
                text=[f"{p:.1%}" for p in guess.probs], textposition="auto",
                customdata=guess.words, hovertemplate="%{customdata}: %{x:.2%}<extra></extra>", showlegend=False,
            ), row=m + 1, col=c + 1)
            fig.update_yaxes(tickvals=list(range(len(guess.tokens))), ticktext=guess.words, autorange="reversed",
                             row=m + 1, col=c + 1)
            fig.update_xaxes(showticklabels=False, rangemode="tozero", row=m + 1, col=c + 1)
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=30, b=10), bargap=0.2)
    return fig


def agreement_markdown(result: predict.SentenceComparison) -> str:
    lines = [f"| mask | model | top-1 guesses | top-1 agreement | top-{result.top_k} overlap | KL (nats) |",
             "|---|---|---|---|---|---|"]
    reference = result.results[0]
    notes = set()
    for pair in result.pairs:
        other = result.results[pair.other_index]
        for m, item in enumerate(pair.items):
            words = f"{reference.masks[m].words[0]} / {other.masks[m].words[0]}"
            lines.append(f"| {m + 1} | {_cell(label(pair.other))} | {_cell(words)} | {'yes' if item.top1 else 'no'} | "
                         f"{item.overlap:.0%} | {_kl_text(item.kl)} |")
            if item.shared_vocab < reference.masks[m].log_probs.numel():
                notes.add(f"KL between {label(pair.reference)} and {label(pair.other)} is taken over the "
                          f"{item.shared_vocab:,} vocabulary entries whose string both vocabularies hold.")
    head = f"Agreement with model 1 (**{_cell(label(result.results[0].model))}**), KL(model 1 ‖ model)."
    return "\n".join([head, "", *lines, "", *sorted(notes)])


def _kl_text(kl: float) -> str:
    return "n/a (no shared strings)" if math.isnan(kl) else f"{kl:.3f}"


def word_strip_figure(strip: predict.WordStrip) -> go.Figure:
    """A heat strip: words on x; for each model against model 1 a row of top-1 agreement and a row of KL."""
    pairs = strip.pairs
    fig = make_subplots(rows=2 * len(pairs), cols=1, shared_xaxes=True, vertical_spacing=0.08)
    x = list(range(len(strip.words)))
    kl_max = max([a.kl for p in pairs for a in p.items if not math.isnan(a.kl)] + [1e-6])
    for i, pair in enumerate(pairs):
        reference, other = strip.results[0], strip.results[pair.other_index]
        hover = [f"{w}: {reference[j].words[0]} / {other[j].words[0]}" for j, w in enumerate(strip.words)]
        agree = [a.top1 for a in pair.items]
        fig.add_trace(go.Heatmap(
            z=[agree], x=x, y=[f"top-1 agrees · {label(pair.other)}"], zmin=0, zmax=1,
            colorscale=[[0, "#e4572e"], [1, "#4caf50"]], showscale=False,
            text=[["✓" if v else "✗" for v in agree]], texttemplate="%{text}", customdata=[hover],
            hovertemplate="%{customdata}<extra></extra>", xgap=2), row=2 * i + 1, col=1)
        kl = [a.kl for a in pair.items]
        domain = fig.layout[f"yaxis{2 * i + 2}"].domain
        fig.add_trace(go.Heatmap(
            z=[kl], x=x, y=[f"KL · {label(pair.other)}"], zmin=0, zmax=kl_max, colorscale="Blues",
            text=[[_kl_text(v) for v in kl]], texttemplate="%{text}", customdata=[hover],
            hovertemplate="%{customdata}<br>KL %{z:.3f}<extra></extra>", xgap=2, showscale=i == 0,
            colorbar=dict(title="KL", len=domain[1] - domain[0], y=sum(domain) / 2, thickness=12)),
            row=2 * i + 2, col=1)
    fig.update_xaxes(tickvals=x, ticktext=strip.words, tickangle=-30)
    fig.update_layout(height=120 + 120 * len(pairs), margin=dict(l=10, r=10, t=20, b=10))
    return fig


def word_strip_markdown(strip: predict.WordStrip, model_names: list[str]) -> str:
    header = "| word | " + " | ".join(_cell(label(n)) for n in model_names) + " |"
    lines = [header, "|---" * (len(model_names) + 1) + "|"]
    for j, word in enumerate(strip.words):
        cells = []
        for m in range(len(model_names)):
            mark = {True: " ✓", False: "", None: " (split)"}[strip.recovered[m][j]]
            cells.append(_cell(strip.results[m][j].words[0]) + mark)
        lines.append(f"| {_cell(word)} | " + " | ".join(cells) + " |")
    note = ("Best guess of each model for each masked word; ✓ marks the masked word itself, *(split)* a word that "
            "model's vocabulary cannot spell as one entry.")
    return note + "\n\n" + "\n".join(lines)


def summary_table(summary: predict.ProbeSummary) -> pd.DataFrame:
    rows = []
    for m, score in enumerate(summary.scores):
        pair = next((p for p in summary.pairs if p.other_index == m), None)
        rows.append({
            "model": f"{m + 1}. {label(score.model)}",
            "accuracy": _round(score.accuracy),
            "hits / scored": f"{score.hits} / {score.scored}",
            "split (left out)": score.split,
            "top-1 agreement with model 1": _round(pair.mean("top1")) if pair else None,
            f"top-{summary.top_k} overlap": _round(pair.mean("overlap")) if pair else None,
            "mean KL (nats)": _round(pair.mean("kl")) if pair else None,
        })
    return pd.DataFrame(rows)


def _round(value: float) -> float | None:
    return None if math.isnan(value) else round(value, 3)


def summary_figure(summary: predict.ProbeSummary) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, column_widths=[0.7, 0.3], horizontal_spacing=0.12,
                        subplot_titles=["accuracy and agreement with model 1", "mean KL from model 1 (nats)"])
    metrics = ["accuracy", "top-1 agreement", f"top-{summary.top_k} overlap"]
    for m, score in enumerate(summary.scores):
        pair = next((p for p in summary.pairs if p.other_index == m), None)
        values = [score.accuracy] + ([pair.mean("top1"), pair.mean("overlap")] if pair else [None, None])
        colour = SHARED_PALETTE[m]
        fig.add_trace(go.Bar(x=metrics, y=values, name=f"{m + 1}. {label(score.model)}", marker_color=colour,
                             text=[f"{v:.0%}" if v is not None and not math.isnan(v) else "" for v in values],
                             textposition="outside"), row=1, col=1)
        if pair:
            fig.add_trace(go.Bar(x=[f"{m + 1}. {label(score.model)}"], y=[pair.mean("kl")], marker_color=colour,
                                 showlegend=False, text=[_kl_text(pair.mean("kl"))], textposition="outside"),
                          row=1, col=2)
    fig.update_yaxes(range=[0, 1.1], tickformat=".0%", row=1, col=1)
    fig.update_layout(barmode="group", height=380, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.15))
    return fig


# ---------------------------------------------------------------------------------------------------------------------
# The tab


def build(ctx: AppContext) -> dict:
    choices = ctx.model_choices()
    gr.Markdown(INTRO)
    with gr.Row():
        first = gr.Dropdown(choices, value=ctx.default_teacher, label="Model 1 (reference)", allow_custom_value=True,
                            info="Usually the teacher; the others are compared with it.")
        second = gr.Dropdown(choices, value=ctx.default_student, label="Model 2", allow_custom_value=True,
                             info="Usually a student, or a run's student.")
        third = gr.Dropdown([""] + choices, value="", label="Model 3 (optional)", allow_custom_value=True,
                            info="A second student to compare, or empty.")
        top_k = gr.Slider(1, 20, value=DEFAULT_TOP_K, step=1, label="Top-k",
                          info="Guesses shown per model at each mask.")
    examples = example_sentences()
    sentence = gr.Textbox(value=examples[0], label="Sentence", lines=2, max_lines=8, elem_id="predict-sentence",
                          placeholder="Я люблю пить [MASK] с лимоном.",
                          info="[MASK] marks each missing word; pick a probe sentence below to fill it in.")
    # Picking an example only fills the textbox: no API endpoint for it.
    gr.Examples([[s] for s in examples], inputs=[sentence], label="Probe sentences", examples_per_page=8,
                api_visibility="private")
    with gr.Row():
        predict_button = gr.Button("Predict", variant="primary", elem_id="predict-run")
        each_button = gr.Button("Mask each word", elem_id="predict-each-word")
        summary_button = gr.Button("Probe summary", elem_id="predict-summary")

    gr.Markdown("### Predictions")
    bars = gr.Plot(label="Top-k guesses", elem_id="predict-bars")
    agreement = gr.Markdown(elem_id="predict-agreement")
    gr.Markdown("### Mask each word")
    strip = gr.Plot(label="Agreement per word", elem_id="predict-strip")
    strip_words = gr.Markdown()
    gr.Markdown("### Probe-set summary")
    summary = gr.Dataframe(label="Probe-set summary", interactive=False, elem_id="predict-summary-table")
    summary_plot = gr.Plot(label="Probe-set summary")
    with gr.Accordion("Every probe", open=False):
        probe_rows = gr.Dataframe(interactive=False, wrap=True)

    @user_errors
    def run_predict(model_1=None, model_2=None, model_3=None, top_k=None, sentence=None, progress=gr.Progress()):
        text = predict.check_text(sentence)  # before loading anything: a typo should not wait for a model
        result = predict.compare(_models(ctx, [model_1, model_2, model_3], progress), text, int(top_k))
        return prediction_figure(result), agreement_markdown(result)

    @user_errors
    def run_each_word(model_1=None, model_2=None, model_3=None, top_k=None, sentence=None, progress=gr.Progress()):
        text = predict.check_text(sentence, with_masks=False)
        models = _models(ctx, [model_1, model_2, model_3], progress)
        result = predict.mask_each_word(models, text, int(top_k))
        names = [m.name for m in models]
        return word_strip_figure(result), word_strip_markdown(result, names)

    @user_errors
    def run_summary(model_1=None, model_2=None, model_3=None, progress=gr.Progress()):
        models = _models(ctx, [model_1, model_2, model_3], progress)
        progress(0.5, desc="Predicting the probe set ...")
        result = predict.probe_summary(models)
        return summary_table(result), summary_figure(result), pd.DataFrame(result.rows)

    inputs = [first, second, third, top_k, sentence]
    predict_button.click(run_predict, inputs, [bars, agreement], api_name="fill_mask")
    sentence.submit(run_predict, inputs, [bars, agreement], api_visibility="private")
    each_button.click(run_each_word, inputs, [strip, strip_words], api_name="mask_each_word")
    summary_button.click(run_summary, [first, second, third], [summary, summary_plot, probe_rows],
                         api_name="probe_summary")
    return dict(first=first, second=second, third=third, top_k=top_k, sentence=sentence, bars=bars,
                agreement=agreement, strip=strip, summary=summary)

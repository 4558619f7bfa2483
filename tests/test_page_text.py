"""What the page shows of messages, typed text and figures: nothing read as HTML, no server paths, nothing cut off."""
import html
import re

import numpy as np
import pandas as pd
import pytest

HOSTILE = "Я <img src=x onerror=alert(1)> люблю <b>жирный</b> [MASK]"


def shown_as_html(message: str) -> str:
    """What a browser shows of a message it reads as HTML: tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]*>", "", message))


@pytest.fixture
def ctx(runs_dir):
    from ui.context import AppContext
    return AppContext(default_teacher="bundled-teacher", default_student="bundled-student")


def test_unknown_model_message_reaches_the_page_whole(ctx):
    import gradio as gr

    from core.models import zoo
    from ui import embed_maps

    with pytest.raises(ValueError) as raised:
        zoo.resolve("nonexistent")
    sentence = str(raised.value)
    assert "<" not in sentence and sentence.endswith("or a Hub id like owner/name.")
    assert "arch:NAME" in sentence and "run:RUN_ID" in sentence
    with pytest.raises(gr.Error) as raised:
        ctx.load("nonexistent")
    assert shown_as_html(raised.value.message) == sentence  # the toast shows the whole sentence
    with pytest.raises(gr.Error) as raised:  # Embeddings: no second wrapping, so no stray quote from gr.Error's repr
        embed_maps.draw_maps(ctx, "Probe set", None, "", "nonexistent", "bundled-student", "", -1, -1, -1, "mean",
                             "PCA", "2D")
    assert shown_as_html(raised.value.message) == sentence
    with pytest.raises(gr.Error) as raised:  # a name typed with markup shows as typed
        ctx.load("<b>bold</b>")
    assert shown_as_html(raised.value.message).startswith("Unknown model '<b>bold</b>'")


def test_wrong_or_leaking_model_messages(ctx, tmp_path):
    import gradio as gr

    from core.models import zoo
    from core.runs.store import runs_root

    with pytest.raises(ValueError, match="There is no run '20990101-000000-zzzz'") as raised:
        zoo.resolve("run:20990101-000000-zzzz")
    assert str(runs_root()) not in str(raised.value) and "/" not in str(raised.value).split("(")[0]
    with pytest.raises(gr.Error) as raised:
        ctx.load("run:20990101-000000-zzzz")
    assert str(runs_root()) not in raised.value.message
    with pytest.raises(ValueError, match="'/etc/passwd' is a file, not a model folder"):
        zoo.resolve("/etc/passwd")
    with pytest.raises(ValueError, match="The folder '/no/such/folder' does not exist"):
        zoo.resolve("/no/such/folder")


def test_typed_sentence_is_not_read_as_html(ctx):
    from ui import predict_actions
    from ui.errors import ErrorLines

    errors = ErrorLines()
    figure, markdown = predict_actions.fill_mask(ctx, errors, "bundled-teacher", "bundled-student", "", 3, HOSTILE)
    assert "<img" not in markdown and "<b>" not in markdown
    assert "**Sentence:** Я &lt;img src=x onerror=alert(1)&gt; люблю &lt;b&gt;жирный&lt;/b&gt; \\[MASK\\]" in markdown
    assert "<img" not in figure.layout.title.text and "<b>" not in figure.layout.title.text
    strip, words = predict_actions.mask_each_word(ctx, errors, "bundled-teacher", "bundled-student", "", 3,
                                                  HOSTILE.replace(" [MASK]", "."))
    assert "<img" not in words and "<b>" not in words and "&lt;b&gt;жирный" in words
    ticks = list(strip.layout.xaxis.ticktext)
    assert ticks and not any("<" in t for t in ticks)
    import gradio as gr
    with pytest.raises(gr.Error):
        predict_actions.fill_mask(ctx, errors, "bundled-teacher", "<i>x</i>", "", 3, "Я [MASK].")
    line = predict_actions.failure_status(errors, "fill_mask", "bundled-teacher", "<i>x</i>", "", 3, "Я [MASK].")
    assert "<i>" not in line and "&lt;i&gt;x&lt;/i&gt;" in line


def test_embeddings_notes_and_map_text_are_escaped():
    from ui import embed_plots
    from ui.page_text import markdown_text

    assert markdown_text("a <b>x</b> *y* _z_ | [w]") == "a &lt;b&gt;x&lt;/b&gt; \\*y\\* \\_z\\_ \\| \\[w\\]"
    assert embed_plots.short_text("<b>жирный</b>") == "&lt;b&gt;жирный&lt;/b&gt;"
    assert "<b>" not in embed_plots._hover("<b>x</b>", "<i>t</i>", 0).replace("<br>", "")


def test_map_labels_keep_a_long_first_word_and_3d_labels_are_plain_text():
    from ui import embed_plots

    assert embed_plots.short_text("<script>alert(2)</script>", 12) == "&lt;script&gt;ale…"
    assert embed_plots.short_text("<script>alert(2)</script>", 12, escaped=False) == "<script>ale…"
    assert embed_plots.short_text("Завтра обещают дождь и ветер.", 20) == "Завтра обещают…"
    assert embed_plots.short_text("  Кошка   спит.  ", 20) == "Кошка спит."


def test_embeddings_failures_show_in_a_status_line(ctx):
    import gradio as gr

    from ui import embed_tab

    with gr.Blocks() as demo:
        parts = embed_tab.build(ctx)
    dependencies = demo.config["dependencies"]
    named = {d["api_name"]: d["id"] for d in dependencies if d["api_visibility"] == "public"}
    assert set(named) == {"embedding_map", "neighbours", "layer_similarity"}
    lines = {"embedding_map": parts["failed"], "neighbours": parts["neighbours_failed"],
             "layer_similarity": parts["layers_failed"]}  # each action's failures on its own line
    for api_name, event in named.items():
        after = [d for d in dependencies if d["trigger_after"] == event and lines[api_name]._id in d["outputs"]]
        assert {(d["trigger_only_on_failure"], d["trigger_only_on_success"]) for d in after} == {(True, False),
                                                                                                 (False, True)}
    # the listener's function, as the page calls it: the same inputs give the message of the failure
    failure = next(d for d in dependencies if d["trigger_after"] == named["embedding_map"]
                   and d["trigger_only_on_failure"])
    draw = next(fn for fn in demo.fns.values() if fn.api_name == "embedding_map").fn
    listener = next(fn for fn in demo.fns.values() if fn._id == failure["id"]).fn
    inputs = ["Probe set", None, "", "nonexistent", "bundled-student", "", -1, -1, -1, "mean", "PCA", "2D", "debiased"]
    with pytest.raises(gr.Error):
        draw(*inputs)
    line = listener(*inputs)
    assert line.startswith("**Draw failed:** Unknown model 'nonexistent'.") and line.endswith("owner/name.")
    assert listener(*inputs) == ""  # shown once


def test_neighbour_headers_follow_the_models_drawn():
    from ui import embed_neighbours

    scores = pd.DataFrame({"space A": ["1. a (L4)", "1. a (L4)", "2. b (L2)"],
                           "space B": ["2. b (L2)", "3. c (L1)", "3. c (L1)"]})
    update = embed_neighbours.neighbours_for_maps(scores)
    assert list(update.value["headers"]) == ["rank", "1. a (L4)", "2. b (L2)", "3. c (L1)"]
    assert len(update.column_widths) == 4
    shown = pd.DataFrame({"rank": [1], "1. a (L4)": ["x"], "2. b (L2)": ["y"], "3. c (L1)": ["z"]})
    assert list(embed_neighbours.fit_neighbour_columns(shown).value["headers"]) == list(shown.columns)


def test_cka_note_gives_the_spread_and_warns_of_few_sentences():
    from ui import embed_tables

    scores = dict(estimator="debiased", cka_shuffled_sd=0.42, shuffles=20, knn_note="",
                  cka_note="With 5 sentences CKA is unreliable: it moves a lot.")
    note = embed_tables.scores_note([(0, 1, scores)])
    assert "mean CKA" in note and "20 fixed-seed shuffles" in note and "standard deviation 0.420" in note
    assert "With 5 sentences CKA is unreliable" in note


def test_kl_scale_of_the_word_strip_is_readable():
    from ui import predict_figures

    for pairs in (1, 2):
        height = predict_figures.strip_height(pairs)
        bar = predict_figures.KL_COLORBAR
        assert bar["lenmode"] == "fraction" and bar["len"] * (height - 60) >= 200  # pixels, margins taken off
        assert bar["nticks"] <= 5


def test_every_benchmark_bar_keeps_its_value_label():
    from ui import bench_plots

    student, teacher = "arch:distilrubert-base-cased-conversational", "arch:rubert-base-cased-conversational"
    rows = [dict(model=m, mode=mode, batch_size=b, seq_len=512, latency_s=lat, throughput_samples_s=b / lat)
            for m, mode, b, lat in [(teacher, "reference", 1, 0.5), (student, "reference", 1, 0.2),
                                    (student, "fast", 1, 0.004), (teacher, "fast", 1, 0.3),
                                    (teacher, "reference", 16, 6.0), (student, "reference", 16, 3.2),
                                    (teacher, "fast", 16, 4.0), (student, "fast", 16, 0.9)]]
    for kind in ("latency", "throughput"):
        figure = bench_plots.bar_figure(rows, "cpu", kind)
        assert figure.layout.uniformtext.mode == "show"  # never hidden for being small
        for trace in figure.data:
            assert trace.texttemplate == "%{text}" and trace.textposition == "outside"
            assert list(trace.text) == [bench_plots.value_label(y) for y in trace.y]  # one label a bar, its own value
            assert trace.constraintext == "none" and trace.cliponaxis is False  # not shrunk to the bar's width
        tallest = max(y for trace in figure.data for y in trace.y if y is not None)
        assert figure.layout.yaxis.range[1] >= tallest * 1.15  # room above the tallest bar for its label


@pytest.mark.parametrize("value, label", [(0.063, "0.0630"), (78.3, "78.3"), (3715.2, "3,715"), (123456.0, "123,456"),
                                          (0.00012345, "0.000123"), (1.0, "1.00"), (999.6, "1,000"), (99.96, "100"),
                                          (0.0, "0")])
def test_bar_value_labels_have_three_significant_digits_and_no_exponent(value, label):
    from ui import bench_plots

    assert bench_plots.value_label(value) == label


def test_about_plot_keeps_every_label_inside_and_text_follows_the_rows():
    from ui import about_tab

    rows = [dict(student="teacher", params=4.9e6, agreement=1.0), dict(student="same vocabulary", params=3.3e6,
                                                                       agreement=0.70),
            dict(student="reduced, match", params=7.4e5, agreement=0.339),
            dict(student="reduced, reduce", params=7.4e5, agreement=0.336)]
    figure = about_tab.tradeoff_figure(rows)
    (low, high), (left, right) = figure.layout.yaxis.range, figure.layout.xaxis.range
    trace = figure.data[0]
    for x, y, position in zip(trace.x, trace.y, trace.textposition):
        if position.startswith("top"):
            assert y + about_tab.LABEL_ROOM <= high - 0.02  # the teacher's label at 100% is not cut
        else:
            assert y - about_tab.LABEL_ROOM >= low
        assert left <= x and x * 1.1 <= right
    assert sorted(trace.textposition[2:]) == ["bottom center", "top center"]  # same size: labels apart
    heading = about_tab.experiment_heading(rows)
    assert "*match* and *reduce*" in heading and "match-pieces" not in heading and "reduce-shared" not in heading
    more = rows + [dict(student="reduced, match-pieces", params=7.4e5, agreement=0.3)]
    assert "the lab's *match-pieces*" in about_tab.experiment_heading(more)
    shipped = about_tab.experiment_rows()
    if shipped is not None:
        for name in ("match-pieces", "reduce-shared"):
            assert (name in about_tab.experiment_heading(shipped)) == any(name in r["student"] for r in shipped)


def test_map_labels_never_share_a_spot():
    from core.compare.embed import Space
    from core.compare.sentences import SentenceSet
    from ui import embed_plots

    xy = np.array([[0.0, 0.0], [0.0, 0.0], [0.001, 0.001], [0.002, 0.0], [5.0, 5.0], [10.0, 0.0]])
    texts = [f"Предложение номер {i}" for i in range(len(xy))]
    shown, positions = embed_plots.label_layout(xy, texts, (550, 460))
    assert shown[0] and not shown[1]  # a copy of a point: one label
    spots = {(tuple(xy[i]), positions[i]) for i in range(len(xy)) if shown[i]}
    assert len(spots) == sum(1 for s in shown if s)
    near = [i for i in range(4) if shown[i]]
    assert len({positions[i] for i in near}) == len(near)  # close points: labels on different sides
    assert shown[4] and shown[5]
    sentences = SentenceSet(tuple(texts), ("",) * len(texts), "typed")
    space = Space("m", 1, 2, "mean", np.zeros((len(texts), 4)), ("k",))
    figure = embed_plots.map_figure(sentences, [space], [xy], "PCA")
    drawn = [t for trace in figure.data for t in trace.text if t]
    assert len(drawn) == len(set(drawn)) == sum(1 for s in shown if s)


def test_the_experiment_table_gives_every_point_the_plot_draws():
    from ui import about_tab

    table, figure, _ = about_tab.experiment_results()  # assets/results/vocab_experiment.json ships
    trace = figure.data[0]
    assert list(table["model"]) == list(trace.text)
    for shown, agreement, name in zip(table["top-1 agreement"], trace.y, trace.text):
        assert shown.startswith(f"{agreement:.1%}"), (name, shown, agreement)
    assert table["top-1 agreement"][list(trace.text).index("teacher")] == "100.0% (itself)"


def test_the_experiment_table_gives_each_column_one_number_of_decimals_and_names_the_threads():
    """The latency column showed 1.2 beside 1.21, and the note said "2 thread(s)"."""
    import json

    from ui import about_tab

    table, _, note = about_tab.experiment_results()
    rows = json.loads(about_tab.RESULTS.read_text(encoding="utf-8"))["rows"]
    assert list(table["CPU latency ms"]) == [f"{r['cpu_latency_ms']:.2f}" for r in rows]
    assert {len(v.split(".")[1]) for v in table["CPU latency ms"]} == {2}
    assert {len(v.split(".")[1]) for v in table["size MB (fp32)"]} == {1}
    assert "thread(s)" not in note and about_tab.threads_of({"torch_threads": 2}) in note
    assert about_tab.threads_of({"torch_threads": 1}) == "1 thread" and about_tab.threads_of({}) == "the threads"


def test_the_experiment_names_the_teacher_its_figures_were_measured_on():
    import json

    from core.models import zoo
    from ui import about_tab

    bundled = json.loads((zoo.BUNDLED_DIR / "teacher" / "config.json").read_text())["vocab_size"]
    same = [dict(student="teacher", params=11.8e6, vocab=bundled), dict(student="same vocabulary", params=9e6)]
    other = [dict(student="teacher", params=4.9e6, vocab=bundled // 4), dict(student="same vocabulary", params=3e6)]
    assert about_tab.experiment_heading(same).splitlines()[1].startswith("The bundled teacher distilled")
    line = about_tab.experiment_heading(other).splitlines()[1]
    assert line.startswith("An earlier bundled teacher (4.9M parameters") and f"{bundled // 4:,}-entry" in line

"""The Embeddings tab with the input a new user gives it: sentences of emoji, too few or repeated sentences, settings
changed between Draw and Neighbours, a list made for other sentences, and the files the upload box takes."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from test_tab_downloads import Page, assert_embedding_downloads_are_the_page, boxes_by_name

from core.compare import embed
from core.compare.sentences import FILE_TYPES, typed_set
from core.models import zoo
from tests.support.downloads import read_csv
from tests.support.models import corpus_lines

EIGHT = ["Мы ходили в кино.", "Кошка спит на диване.", "Завтра обещают дождь.", "Я люблю читать книги.",
         "Поезд опаздывает на час.", "Мама готовит суп.", "Купи хлеба по дороге домой.", "Матч начнётся в семь."]
# three emoji the tokenizers have no piece for, and two sentences that differ only in one of them
WITH_EMOJI = ["🐱", EIGHT[1], "🚀", EIGHT[2], "🍕", EIGHT[0], "Кошка 🐱", "Кошка 🚀"]


@pytest.fixture(scope="module")
def names(tiny_teacher_dir, tiny_student_dir) -> tuple[str, str]:
    return str(tiny_teacher_dir), str(tiny_student_dir)


@pytest.fixture(scope="module")
def ctx(names):
    from ui.context import AppContext
    return AppContext(default_teacher=names[0], default_student=names[1])


def message_of(error) -> str:
    from ui.errors import error_message
    return error_message(error)


def typed(lines: list[str], **change) -> dict:
    """Draw's inputs by name for typed sentences, with the tests' models at their last layers."""
    return dict(dict(source="Typed sentences", file=None, sentences="\n".join(lines), model_1=change.pop("model_1"),
                     model_2=change.pop("model_2"), model_3="", layer_1=-1, layer_2=-1, layer_3=-1, pooling="mean",
                     method="PCA", dims="2D"), **change)


def plain_vector(loaded: zoo.LoadedModel, sentence: str, layer: int, pooling: str) -> np.ndarray:
    """One sentence through the model alone, no batching: the reference for a pooled vector."""
    ids = loaded.tokenizer(sentence, return_tensors="pt", return_token_type_ids=False)["input_ids"]
    with torch.no_grad():
        hidden = loaded.model.base_model(input_ids=ids, output_hidden_states=True).hidden_states[layer][0]
    return (hidden[0] if pooling == "cls" else hidden.mean(dim=0)).numpy()


# ---------------------------------------------------------------------------------------------------------------------
# Sentences a model reads as the same tokens


def test_sentences_of_unknown_characters_share_one_point_and_the_note_names_them(ctx, names):
    from ui import embed_maps
    from ui.page_text import markdown_text

    teacher = zoo.load(names[0])
    tokenizer = teacher.tokenizer
    ids = [tokenizer(s)["input_ids"] for s in WITH_EMOJI]
    only_unknown = [tokenizer.cls_token_id, tokenizer.unk_token_id, tokenizer.sep_token_id]
    assert [i for i, read in enumerate(ids) if read == only_unknown] == [0, 2, 4]  # what the tokenizer reads
    assert ids[6] == ids[7] and tokenizer.unk_token_id in ids[6] and len(set(map(tuple, ids))) == 5
    sentences = typed_set("\n".join(WITH_EMOJI))
    assert embed.same_tokens(teacher, sentences) == [embed.SameTokens((0, 2, 4), True, True, False),
                                                     embed.SameTokens((6, 7), False, True, False)]
    for pooling in ("mean", "cls"):
        for layer in (0, 2, -1):
            vectors = embed.embed_space(teacher, sentences, layer, pooling).vectors
            # one vector, to the bit, whatever batch each sentence fell in: one point on the map
            assert np.array_equal(vectors[0], vectors[2]) and np.array_equal(vectors[0], vectors[4])
            assert np.array_equal(vectors[6], vectors[7])
            np.testing.assert_allclose(vectors[2], plain_vector(teacher, "🚀", layer, pooling), rtol=1e-4, atol=1e-5)
    figure, _, note, _, _ = embed_maps.draw_maps(ctx, **typed(WITH_EMOJI, model_1=names[0], model_2=names[1]))
    both = f"{names[0]} and {names[1]}"  # one tokenizer: named together, once
    assert markdown_text(f" 3 sentences (#0, #2 and #4) are only unknown tokens ([UNK]) to {both}: none of their "
                         "characters is in the vocabulary; they share one point on those maps. 2 sentences (#6 and "
                         f"#7) differ only in characters unknown to {both}, read as [UNK]; they share one point on "
                         "those maps.") in note
    first_map = figure.data[0]
    points = np.column_stack([first_map.x, first_map.y])
    assert np.array_equal(points[0], points[2]) and np.array_equal(points[0], points[4])
    assert len(np.unique(points, axis=0)) == 5


def test_models_with_other_vocabularies_are_named_each_with_its_own_sentences(names):
    """The bundled student's vocabulary has 🙂, the tests' tiny teacher's does not: each is named with the sentences
    that share a point on its own maps (the tiny teacher is in two boxes: two maps, which the note said were one)."""
    from ui import embed_notes, page_text

    tiny, bundled = zoo.load(names[0]), zoo.load("bundled-student")
    lines = ["🙂", "🐱", "🚀"] + EIGHT[:4]
    assert [tiny.tokenizer.unk_token_id in tiny.tokenizer(s)["input_ids"] for s in lines[:3]] == [True] * 3
    assert [bundled.tokenizer.unk_token_id in bundled.tokenizer(s)["input_ids"] for s in lines[:3]] == [False, True,
                                                                                                          True]
    note = embed_notes.same_tokens_note([tiny, bundled, tiny], typed_set("\n".join(lines)))
    assert note == page_text.markdown_text(
        f" 3 sentences (#0, #1 and #2) are only unknown tokens ([UNK]) to {names[0]}: none of their characters is in "
        "the vocabulary; they share one point on its maps. 2 sentences (#1 and #2) are only unknown tokens ([UNK]) to "
        "bundled-student: none of their characters is in the vocabulary; they share one point on its map.")
    assert "share one point on its map." in embed_notes.same_tokens_note([tiny, bundled], typed_set("\n".join(lines)))
    assert embed_notes.same_tokens_note([tiny, bundled], typed_set("\n".join(EIGHT))) == ""


def test_one_model_in_two_boxes_has_two_maps_and_one_notice(ctx, names, monkeypatch):
    """The same model at its last layer and at layer 1: the note said they share one point on 'its map', and the
    model's notice came once a box."""
    import dataclasses

    from ui import embed_maps
    from ui.page_text import markdown_text

    loaded = ctx.load
    notice = "The tokenizer of this model was set to lowercase text, but its vocabulary is cased: it reads text cased."
    monkeypatch.setattr(ctx, "load", lambda name, **kwargs: dataclasses.replace(loaded(name, **kwargs), notice=notice))
    _, _, note, _, _ = embed_maps.draw_maps(ctx, **typed(WITH_EMOJI, model_1=names[0], model_2=names[0], layer_2=1))
    assert markdown_text(f" 3 sentences (#0, #2 and #4) are only unknown tokens ([UNK]) to {names[0]}: none of their "
                         "characters is in the vocabulary; they share one point on its maps.") in note
    assert note.count(markdown_text(notice)) == 1


def test_a_set_that_a_model_reads_as_one_point_is_refused(ctx, names):
    """Every sentence only unknown tokens: one point, CKA n/a, nothing to see; said before anything is embedded."""
    import gradio as gr

    from ui import embed_layers, embed_maps, embed_neighbours

    emoji = ["🐱", "🚀", "🍕", "🦊", "🐱"]
    said = (f"To {names[0]}, all 4 different sentences are only unknown tokens ([UNK]): its vocabulary has none of "
            "their characters; it would put them on one point, with nothing to map or compare. Use sentences with "
            "words it knows.")
    inputs = typed(emoji, model_1=names[0], model_2=names[1])
    for handler, extra in ((embed_maps.draw_maps, {}),
                           (embed_neighbours.find_neighbours, dict(highlight="1", neighbours=3))):
        with pytest.raises(gr.Error) as refused:
            handler(ctx, **inputs, **extra)
        assert message_of(refused.value) == said
    layer_inputs = {k: v for k, v in inputs.items() if not k.startswith("layer") and k not in ("method", "dims")}
    with pytest.raises(gr.Error) as refused:
        embed_layers.compare_layers(ctx, **layer_inputs)
    assert message_of(refused.value) == said


def test_a_set_that_a_model_reads_as_fewer_than_four_points_is_refused(ctx, names):
    """Five different sentences, three of them emoji it reads as one: three points, and a debiased CKA of -1.000."""
    import gradio as gr

    from ui import embed_layers, embed_maps

    lines = ["🐱", "🚀", EIGHT[0], "🍕", EIGHT[1]]
    said = (f"To {names[0]}, these 5 different sentences are only 3 different token sequences (#0, #1, #3 are only "
            "unknown tokens ([UNK])): the maps need at least 4 different points. Add 1 more sentence with words it "
            "knows.")
    inputs = typed(lines, model_1=names[0], model_2=names[1])
    with pytest.raises(gr.Error) as refused:
        embed_maps.draw_maps(ctx, **inputs)
    assert message_of(refused.value) == said
    layer_inputs = {k: v for k, v in inputs.items() if not k.startswith("layer") and k not in ("method", "dims")}
    with pytest.raises(gr.Error) as refused:  # it draws no map: it said "the maps need"
        embed_layers.compare_layers(ctx, **layer_inputs)
    assert message_of(refused.value) == said.replace("the maps need", "layer similarity needs")
    with pytest.raises(ValueError) as refused:
        embed.check_readable(zoo.load(names[0]), typed_set("\n".join(lines + ["🦊", "🐍"])))
    assert "these 7 different sentences are only 3 different token sequences (#0, #1, #3, #5, #6 are only unknown" \
           in str(refused.value) and "Add 1 more sentence with" in str(refused.value)
    embed.check_readable(zoo.load(names[0]), typed_set("\n".join(lines + [EIGHT[2]])))  # four points: drawn


@pytest.mark.parametrize("lines, method, said", [
    (["Кошка спит."], "PCA", "there is 1: add 3 more."),
    (["Кошка спит.", "Кошка спит."], "PCA", "there is 1 among 2 (copies of a sentence count once): add 3 more."),
    (EIGHT[:3], "UMAP", "there are 3: add 1 more."),
    (EIGHT[:3] * 3, "UMAP", "there are 3 among 9 (copies of a sentence count once): add 1 more."),
])
def test_too_few_different_sentences_are_refused_by_every_action(ctx, names, lines, method, said):
    """Layer similarity with the biased estimator took 2 or 3 sentences and showed a CKA of 1 for every pair of
    layers; four copies of one sentence drew one point. Layer similarity draws no map: it is refused in its own
    name, where it said "The maps need"."""
    import gradio as gr

    from ui import embed_layers, embed_maps, embed_neighbours

    inputs = typed(lines, model_1=names[0], model_2=names[1], method=method)
    layer_inputs = {k: v for k, v in inputs.items() if not k.startswith("layer") and k not in ("method", "dims")}
    for handler, extra, needs in (
            (embed_maps.draw_maps, {}, "The maps need"),
            (embed_neighbours.find_neighbours, dict(highlight="0", neighbours=3), "The maps need"),
            (embed_layers.compare_layers, dict(cka_estimator="biased"), "Layer similarity needs")):
        with pytest.raises(gr.Error) as refused:
            handler(ctx, **(layer_inputs if handler is embed_layers.compare_layers else inputs), **extra)
        assert message_of(refused.value) == f"{needs} at least 4 different sentences; {said}"


def test_too_few_sentences_are_refused_before_any_model_is_loaded(names, monkeypatch):
    """Three typed lines were refused only after every model had loaded (a Hub model is a download first): a model
    that cannot be loaded said so instead. Neighbours' check before it is queued refuses them too."""
    import gradio as gr

    from ui import embed_layers, embed_maps, embed_neighbours
    from ui.context import AppContext

    ctx = AppContext(default_teacher=names[0], default_student=names[1])

    def unreachable(name, **kwargs):
        raise gr.Error(f"{name} could not be downloaded: the Hub cannot be reached.")
    monkeypatch.setattr(ctx, "load", unreachable)
    inputs = typed(EIGHT[:3], model_1=names[0], model_2=names[1])
    layer_inputs = {k: v for k, v in inputs.items() if not k.startswith("layer") and k not in ("method", "dims")}
    maps = "The maps need at least 4 different sentences; there are 3: add 1 more."
    for handler, given, said in (
            (embed_maps.draw_maps, inputs, maps),
            (embed_neighbours.find_neighbours, dict(inputs, highlight="0", neighbours=3), maps),
            (embed_layers.compare_layers, layer_inputs, maps.replace("The maps need", "Layer similarity needs"))):
        with pytest.raises(gr.Error) as refused:
            handler(ctx, **given)
        assert message_of(refused.value) == said
    with pytest.raises(ValueError) as refused:
        embed_neighbours.chosen_sentence_check(*inputs.values(), "0")
    assert str(refused.value) == maps


def test_four_different_sentences_with_copies_draw(ctx, names):
    from ui import embed_maps

    lines = EIGHT[:4] + EIGHT[:2]
    figure, scores, _, choices, _ = embed_maps.draw_maps(ctx, **typed(lines, model_1=names[0], model_2=names[1]))
    assert len(scores) == 1 and len(figure.data[0].x) == 6
    assert len(np.unique(np.column_stack([figure.data[0].x, figure.data[0].y]), axis=0)) == 4


def test_sentence_numbers_in_a_note():
    from ui import embed_notes

    assert embed_notes.numbers_text((4,)) == "#4"
    assert embed_notes.numbers_text((0, 2, 4)) == "#0, #2 and #4"
    assert embed_notes.numbers_text(tuple(range(11))) == "#0, #1, #2, #3, #4, #5, #6, #7 and 3 more"


# ---------------------------------------------------------------------------------------------------------------------
# Every output beside the maps is of the maps' settings


@pytest.fixture
def embeddings_page(names):
    import gradio as gr

    from ui import embed_tab
    from ui.context import AppContext

    with gr.Blocks() as demo:
        parts = embed_tab.build(AppContext(default_teacher=names[0], default_student=names[1]))
    demo.queue()
    return Page(demo), parts


def page_inputs(names, lines, layer_1=-1, pooling="mean") -> list:
    """Draw's inputs as the page holds them, less the CKA estimator."""
    return ["Typed sentences", None, "\n".join(lines), names[0], names[1], "", layer_1, -1, -1, pooling, "PCA", "2D"]


def test_neighbours_with_other_settings_puts_their_own_scores_beside_the_maps(embeddings_page, names):
    """Draw, then Neighbours with another layer, sentence vector and CKA estimator: the how-alike table, its file and
    the note were Draw's, beside maps of the new settings."""
    page, parts = embeddings_page
    assert page.run("embedding_map", page_inputs(names, EIGHT) + ["debiased"])
    drawn_scores = page.table(parts["scores"])[1]
    assert drawn_scores[0][:2] == [f"1. {names[0]} (L4)", f"2. {names[1]} (L2)"]
    page.value[parts["estimator"]._id] = "biased"  # chosen on the page, Draw not pressed
    assert page.run("neighbours", page_inputs(names, EIGHT[:6], layer_1=2, pooling="CLS") + ["2", 3])
    sentences = typed_set("\n".join(EIGHT[:6]))
    a = embed.embed_space(zoo.load(names[0]), sentences, 2, "cls")
    b = embed.embed_space(zoo.load(names[1]), sentences, -1, "cls")
    direct = embed.compare(a, b, estimator="biased")
    headers, rows = page.table(parts["scores"])
    assert rows[0][:2] == [f"1. {names[0]} (L2)", f"2. {names[1]} (L2)"]
    assert float(rows[0][2]) == pytest.approx(direct["cka"], abs=1e-3)
    assert float(rows[0][3]) == pytest.approx(direct["cka_shuffled"], abs=1e-3)
    note = page.value[next(i for i, b in page.demo.blocks.items() if getattr(b, "elem_id", None) == "embed-note")]
    assert note.startswith("6 sentences: ") and "biased estimator" in note and "With 6 sentences" in note
    alike = read_csv(page.file(boxes_by_name(page)["how-alike.csv"]))
    assert alike["estimator"].tolist() == ["biased"]
    assert float(alike["linear CKA"][0]) == pytest.approx(direct["cka"], rel=1e-6)
    assert_embedding_downloads_are_the_page(page, parts)
    assert page.run("embedding_map", page_inputs(names, EIGHT) + ["debiased"])  # Draw again: its own, as before
    assert page.table(parts["scores"])[1] == drawn_scores
    assert_embedding_downloads_are_the_page(page, parts)


def arrays_in(kept) -> list[np.ndarray]:
    """Every numpy array a kept object reaches through dataclass fields, lists, tuples and dicts."""
    import dataclasses

    if isinstance(kept, np.ndarray):
        return [kept]
    if dataclasses.is_dataclass(kept) and not isinstance(kept, type):
        return arrays_in([getattr(kept, f.name) for f in dataclasses.fields(kept)])
    if isinstance(kept, dict):
        return arrays_in(list(kept.values()))
    if isinstance(kept, (list, tuple)):
        return [array for item in kept for array in arrays_in(item)]
    return []


def test_what_neighbours_keeps_for_the_page_holds_one_layer_a_model(ctx, names):
    """The session's state kept each space's vectors as views of the cached stack of every layer: with the
    DeepPavlov pair on the probe set, 43 MB a session for an hour after it closed, outside the cache's limit."""
    from ui import embed_neighbours

    _, _, shown = embed_neighbours.find_neighbours(ctx, **typed(EIGHT, model_1=names[0], model_2=names[1], layer_1=2),
                                                   highlight="1", neighbours=2)
    sentences = typed_set("\n".join(EIGHT))
    stacks = [embed.all_layers(zoo.load(name), sentences, "mean") for name in names]
    assert [stack.shape for stack in stacks] == [(5, 8, 32), (3, 8, 32)]  # layers + 1, sentences, width
    kept = arrays_in(shown)
    assert not any(np.shares_memory(array, stack) for array in kept for stack in stacks)
    vectors = [space.vectors for space in shown.drawn.spaces]
    np.testing.assert_array_equal(vectors[0], stacks[0][2])
    np.testing.assert_array_equal(vectors[1], stacks[1][-1])
    assert sum(v.nbytes for v in vectors) == 2 * len(EIGHT) * 32 * 4  # one (n, hidden) float32 layer a model
    # what the page needs is there
    assert embed_neighbours.show_beside(shown, "debiased")[1].startswith("8 sentences: ")


def test_the_sentence_list_follows_the_maps_neighbours_draws(ctx, names):
    import gradio as gr

    from ui import embed_inputs, embed_neighbours

    six = typed_set("\n".join(EIGHT[:6]))
    _, _, shown = embed_neighbours.find_neighbours(ctx, **typed(EIGHT[:6], model_1=names[0], model_2=names[1]),
                                                   highlight="1", neighbours=2)
    _, _, listed, _ = embed_neighbours.show_beside(shown, "debiased")
    assert [value for _, value in listed.choices] == embed_inputs.sentence_choices(six)
    assert embed_neighbours.show_beside(None) == (gr.skip(),) * 4  # nothing drawn yet: left as they are


def test_more_neighbours_than_other_sentences_says_how_many_each_list_has(ctx, names):
    from ui import embed_neighbours

    _, _, shown = embed_neighbours.find_neighbours(ctx, **typed(EIGHT[:6], model_1=names[0], model_2=names[1]),
                                                   highlight="1", neighbours=9)
    _, note, _, _ = embed_neighbours.show_beside(shown, "debiased")
    assert "The set has 5 other sentences, so each list of neighbours has 5, not the 9 asked for." in note
    assert len(shown.files["neighbours.csv"]) == 2 * 5  # one row a model and rank
    _, _, shown = embed_neighbours.find_neighbours(ctx, **typed(EIGHT[:6], model_1=names[0], model_2=names[1]),
                                                   highlight="1", neighbours=5)
    assert "asked for" not in embed_neighbours.show_beside(shown, "debiased")[1]


def test_a_sentence_picked_from_a_list_of_other_sentences_is_found_by_its_text_or_refused(ctx, names):
    """'3. Я люблю читать книги.' picked from the list of eight, with the first line since deleted: sentence 3 is
    now another one, which Neighbours marked without a word."""
    import gradio as gr

    from ui import embed_inputs, embed_neighbours

    shifted = typed_set("\n".join(EIGHT[1:]))
    assert embed_inputs.sentence_index(shifted, "3. Я люблю читать книги.") == 2
    assert embed_inputs.sentence_index(shifted, "2. Я люблю читать книги.") == 2
    assert embed_inputs.sentence_index(shifted, "3.") == 3 and embed_inputs.sentence_index(shifted, " 3 ") == 3
    without = typed_set("\n".join(EIGHT[4:]))
    with pytest.raises(ValueError) as refused:
        embed_inputs.sentence_index(without, "3. Я люблю читать книги.")
    assert str(refused.value) == ("'Я люблю читать книги.' is not among these 4 sentences (the list was made for "
                                  "other sentences); draw the maps again and pick one from the new list.")
    not_in_set = "That sentence is not in the current set; pick one from the list."
    for typed_digit in ("²", "٣", "١٢"):  # digits to str.isdigit, but no number the list shows
        with pytest.raises(ValueError) as refused:  # "²" raised "invalid literal for int()"; "٣" marked sentence 3
            embed_inputs.sentence_index(shifted, typed_digit)
        assert str(refused.value) == not_in_set
    with pytest.raises(gr.Error) as refused:
        embed_neighbours.find_neighbours(ctx, **typed(EIGHT[1:], model_1=names[0], model_2=names[1]), highlight="²",
                                         neighbours=2)
    assert message_of(refused.value) == not_in_set
    numbered = typed_set("1. Кошка спит.\nЗавтра дождь.\nМы ходили в кино.\nМама готовит суп.")
    assert embed_inputs.sentence_index(numbered, "1. Кошка спит.") == 0  # a sentence of the set, typed
    assert embed_inputs.sentence_index(numbered, "0. 1. Кошка спит.") == 0  # picked from the list
    _, _, shown = embed_neighbours.find_neighbours(ctx, **typed(EIGHT[1:], model_1=names[0], model_2=names[1]),
                                                   highlight="3. Я люблю читать книги.", neighbours=2)
    assert set(shown.files["neighbours.csv"]["sentence"]) == {"Я люблю читать книги."}


def test_the_layer_figure_names_its_sentence_vector_and_warns_of_few_sentences(ctx, names):
    """Left on the page beside maps of another sentence vector, the heat maps did not say theirs; nor that CKA of
    eight sentences is unreliable, nor why a cell is blank, which the maps' note says."""
    from ui import embed_layers

    layer_inputs = dict(source="Typed sentences", file=None, model_1=names[0], model_2=names[1], model_3="")
    figure, _ = embed_layers.compare_layers(ctx, **layer_inputs, sentences="\n".join(EIGHT), pooling="CLS")
    title = figure.layout.title.text
    assert title.startswith("8 sentences (the typed text), [CLS] vectors: ")
    assert "CKA is unreliable with fewer than 20 sentences" in title
    blank = np.isnan([t.z for t in figure.data if t.type == "heatmap"][0].astype(float))
    assert blank[0].all() and blank[:, 0].all() and not blank[1:, 1:].any()  # [CLS] at layer 0: one vector for all
    assert "A blank cell: every sentence has the same vector at one of its layers" in title
    many = "\n".join(corpus_lines(24)[:24])
    figure, _ = embed_layers.compare_layers(ctx, **layer_inputs, sentences=many, pooling="mean")
    title = figure.layout.title.text
    assert title.startswith("24 sentences (the typed text), mean of token vectors: ")
    assert "unreliable" not in title and "blank" not in title


# ---------------------------------------------------------------------------------------------------------------------
# What the upload box takes


def test_the_upload_box_says_what_it_takes(tmp_path, names):
    import gradio as gr

    from ui import components, embed_inputs, embed_tab
    from ui.context import AppContext

    with gr.Blocks() as demo:
        parts = embed_tab.build(AppContext(default_teacher=names[0], default_student=names[1]))
    label = parts["upload"].label
    assert "UTF-8" in label and all(suffix in label for suffix in FILE_TYPES)  # it said ".txt or .csv"
    # the size it says is the limit Gradio applies to MAX_UPLOAD, which the app launches with
    from gradio.utils import FileSize, _parse_file_size
    assert f"at most {components.MAX_UPLOAD_MB} MB" in label
    assert _parse_file_size(components.MAX_UPLOAD) == components.MAX_UPLOAD_MB * FileSize.MB
    assert parts["upload"].file_types == list(FILE_TYPES)
    assert all(f"`{suffix}`" in embed_tab.INTRO for suffix in FILE_TYPES)
    del demo
    tsv = tmp_path / "mine.tsv"
    tsv.write_text("sentence\tlabel\n" + "".join(f"{s}\tgroup {i % 2}\n" for i, s in enumerate(EIGHT[:4])),
                   encoding="utf-8")
    assert embed_inputs.upload_line(str(tsv)) == "mine.tsv: 4 sentences with labels."
    cp1251 = tmp_path / "windows.txt"
    cp1251.write_bytes("\n".join(EIGHT).encode("cp1251"))
    line = embed_inputs.upload_line(str(cp1251))
    assert "'windows.txt' is not UTF-8 text" in line and "as UTF-8" in line  # refused, saying what to save it as


def test_any_two_filled_model_boxes_compare_and_one_box_names_a_second_model():
    from ui import embed_inputs

    pair = ("bundled-teacher", "bundled-student")
    chosen = embed_inputs.chosen_models(["", "bundled-student", "bundled-teacher"], [None, 2, -1], pair)
    assert [(c.name, c.layer) for c in chosen] == [("bundled-student", 2), ("bundled-teacher", -1)]
    with pytest.raises(ValueError) as refused:
        embed_inputs.chosen_models(["bundled-student", "", ""], [None] * 3, pair)
    assert str(refused.value) == ("Choose a second model to compare with bundled-student, such as bundled-teacher as "
                                  "model 2.")


# ---------------------------------------------------------------------------------------------------------------------
# Layers and neighbours: a number is used as typed, or refused, never changed without a word


def test_a_layer_a_model_lacks_is_refused_with_its_range_counted_both_ways(ctx, names):
    """-6 and 5 of a 4-layer teacher were refused saying "layers 0 to 4 ... or -1 for the last", while -5 was taken
    as layer 0 without a word: the refusal names the range from both ends, for the model of that box."""
    import gradio as gr

    from ui import embed_maps, embed_neighbours

    teacher = ("The layer of model 1 must be from -5 to 4 for {}: 0 is its embeddings and 4 its last layer; negative "
               "layers count from the last, as in Python (-1 is layer 4, -5 is layer 0). Got {}.")
    student = ("The layer of model 2 must be from -3 to 2 for {}: 0 is its embeddings and 2 its last layer; negative "
               "layers count from the last, as in Python (-1 is layer 2, -3 is layer 0). Got {}.")
    cases = [(dict(layer_1=-6), teacher.format(names[0], -6)), (dict(layer_1=5), teacher.format(names[0], 5)),
             (dict(layer_2=-4), student.format(names[1], -4)), (dict(layer_2=3), student.format(names[1], 3))]
    actions = [(embed_maps.draw_maps, {}), (embed_neighbours.find_neighbours, dict(highlight="1", neighbours=3))]
    for change, said in cases:
        for handler, extra in actions:
            with pytest.raises(gr.Error) as refused:
                handler(ctx, **typed(EIGHT, model_1=names[0], model_2=names[1], **change), **extra)
            assert message_of(refused.value) == said


def test_a_negative_layer_says_in_the_note_which_layer_it_is(ctx, names):
    from ui import embed_maps, embed_neighbours
    from ui.page_text import markdown_text

    figure, _, note, _, _ = embed_maps.draw_maps(ctx, **typed(EIGHT, model_1=names[0], model_2=names[1], layer_1=-5,
                                                             layer_2=-2))
    assert [a.text.split(" · ")[1] for a in figure.layout.annotations[:2]] == ["layer 0/4", "layer 1/2"]
    assert markdown_text(f" Layer -5 of model 1 is layer 0 of {names[0]}: negative layers count from the last, as in "
                         f"Python (-1 is layer 4). Layer -2 of model 2 is layer 1 of {names[1]}: negative layers count "
                         "from the last, as in Python (-1 is layer 2).") in note
    _, _, note, _, _ = embed_maps.draw_maps(ctx, **typed(EIGHT, model_1=names[0], model_2=names[1]))  # -1 and -1
    assert "negative layers" not in note
    _, _, shown = embed_neighbours.find_neighbours(ctx, **typed(EIGHT, model_1=names[0], model_2=names[1], layer_1=-4),
                                                   highlight="1", neighbours=2)
    assert markdown_text(f"Layer -4 of model 1 is layer 1 of {names[0]}") in embed_neighbours.show_beside(shown)[1]


def test_neighbours_is_a_number_box_that_sends_what_was_typed(names):
    """The page's slider moved a typed 0 to 1 when it lost focus (Gradio's Slider clamps on blur), and the neighbours
    listed were not the number asked for: a number box sends 0 as typed, and the check refuses it."""
    import gradio as gr

    from ui import embed_neighbours, embed_tab
    from ui.context import AppContext
    from ui.errors import error_message

    ctx = AppContext(default_teacher=names[0], default_student=names[1])
    with gr.Blocks() as demo:
        embed_tab.build(ctx)
    k = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "embed-k")
    assert k.get_block_name() == "number" and (k.minimum, k.maximum) == (1, embed_neighbours.MAX_NEIGHBOURS)
    assert f"1 to {embed_neighbours.MAX_NEIGHBOURS}" in k.info
    for typed_k in (0, 21, -3, 2.5):
        sent = k.preprocess(typed_k)
        assert sent == typed_k
        said = f"Neighbours must be a whole number from 1 to 20; got {typed_k}."
        with pytest.raises(gr.Error) as refused:
            embed_neighbours.find_neighbours(ctx, **typed(EIGHT, model_1=names[0], model_2=names[1]), highlight="1",
                                             neighbours=sent)
        assert error_message(refused.value) == said
        # and by the page before it asks, so that the maps drawn stay on the page, not marked "Error"
        with pytest.raises(ValueError) as refused:
            embed_neighbours.page_neighbours_check(*typed(EIGHT, model_1=names[0], model_2=names[1]).values(), "1",
                                                   sent)
        assert str(refused.value) == said
    _, rows, _ = embed_neighbours.find_neighbours(ctx, **typed(EIGHT, model_1=names[0], model_2=names[1]),
                                                  highlight="1", neighbours=k.preprocess(1))
    assert len(rows) == 1


# ---------------------------------------------------------------------------------------------------------------------
# An upload is named as the person gave it


def stored_upload(folder, given: str, stored: str, content: bytes):
    """What the upload box hands the tab: Gradio's stored copy of a file the person named `given`."""
    import gradio as gr
    from gradio.data_classes import FileData

    from ui import embed_tab
    from ui.context import AppContext

    path = folder / stored
    path.write_bytes(content)
    with gr.Blocks():
        parts = embed_tab.build(AppContext(default_teacher="bundled-teacher", default_student="bundled-student"))
    return parts["upload"].preprocess(FileData(path=str(path), orig_name=given))


def test_an_upload_is_named_as_the_person_gave_it_in_every_message(tmp_path, ctx, names):
    """Gradio stores "nul.txt" (a name Windows reserves) as "_nul.txt": the line under the box, Draw's refusals and
    the maps' title named the stored copy."""
    import gradio as gr

    from ui import components, embed_inputs, embed_layers, embed_maps

    upload = stored_upload(tmp_path, "nul.txt", "_nul.txt", "\n".join(EIGHT).encode("utf-8"))
    assert str(upload).endswith("_nul.txt") and upload.given == "nul.txt"
    assert embed_inputs.upload_line(upload) == "nul.txt: 8 sentences."
    inputs = dict(typed(EIGHT, model_1=names[0], model_2=names[1]), source="Upload a file", file=upload)
    figure, *_ = embed_maps.draw_maps(ctx, **inputs)
    assert figure.layout.title.text == "PCA 2D of 8 sentences (nul.txt)"
    layers, _ = embed_layers.compare_layers(ctx, **{k: v for k, v in inputs.items()
                                                    if not k.startswith("layer") and k not in ("method", "dims")})
    assert layers.layout.title.text.startswith("8 sentences (nul.txt), mean of token vectors: ")
    windows = stored_upload(tmp_path, "con.txt", "_con.txt", "\n".join(EIGHT).encode("cp1251"))
    assert "'con.txt' is not UTF-8 text" in embed_inputs.upload_line(windows)
    with pytest.raises(gr.Error) as refused:
        embed_maps.draw_maps(ctx, **dict(inputs, file=windows))
    assert "'con.txt' is not UTF-8 text" in message_of(refused.value) and "_con" not in message_of(refused.value)
    # a name that cannot name the stored file (another suffix, a folder) is not taken: the stored name is said
    assert components.given_name(components.Upload(str(tmp_path / "_nul.txt"), "nul.csv")) == "_nul.txt"
    assert components.given_name(components.Upload(str(tmp_path / "_nul.txt"), "../nul.txt")) == "_nul.txt"


def test_an_upload_removed_from_the_server_is_said_in_a_sentence(tmp_path, ctx, names):
    """The app sweeps uploads older than an hour from Gradio's cache while the page still shows the file: Draw
    answered with FileNotFoundError, which the page shows as a bare "Error"."""
    import gradio as gr

    from ui import embed_inputs, embed_maps, page_text

    upload = stored_upload(tmp_path, "nul.txt", "_nul.txt", "\n".join(EIGHT).encode("utf-8"))
    (tmp_path / "_nul.txt").unlink()
    said = "The uploaded file 'nul.txt' is no longer on the server (uploads are removed after an hour or so); upload " \
           "it again."
    assert embed_inputs.upload_line(upload) == page_text.markdown_text(said)
    inputs = dict(typed(EIGHT, model_1=names[0], model_2=names[1]), source="Upload a file", file=upload)
    with pytest.raises(gr.Error) as refused:
        embed_maps.draw_maps(ctx, **inputs)
    assert message_of(refused.value) == said


# ---------------------------------------------------------------------------------------------------------------------
# Layer similarity names the sentences a model reads as the same tokens, as the maps' note does


def title_text(figure) -> str:
    """A figure's title as read: its lines joined by spaces, tags left out, entities read."""
    import html
    import re

    return html.unescape(re.sub(r"<[^>]+>", "", figure.layout.title.text.replace("<br>", " ")))


def test_layer_similarity_names_the_sentences_that_share_one_vector(ctx, names):
    from ui import embed_heatmaps, embed_layers

    layer_inputs = dict(source="Typed sentences", file=None, model_1=names[0], model_2=names[1], model_3="",
                        pooling="mean")
    figure, _ = embed_layers.compare_layers(ctx, **layer_inputs, sentences="\n".join(WITH_EMOJI))
    both = f"{names[0]} and {names[1]}"
    title = title_text(figure)
    assert (f"3 sentences (#0, #2 and #4) are only unknown tokens ([UNK]) to {both}: none of their characters is in "
            "the vocabulary; they share one vector at every layer.") in title
    assert (f"2 sentences (#6 and #7) differ only in characters unknown to {both}, read as [UNK]; they share one "
            "vector at every layer.") in title
    lines = figure.layout.title.text.split("<br>")
    assert all(len(line.removeprefix("<span style='font-size:12px'>").removesuffix("</span>"))
               <= embed_heatmaps.NOTE_CHARS for line in lines[1:])  # a narrow page shows each line whole
    figure, _ = embed_layers.compare_layers(ctx, **layer_inputs, sentences="\n".join(EIGHT))
    assert "share one vector" not in title_text(figure)


def test_layer_similarity_counts_groups_past_the_few_it_names(ctx, names):
    """Five groups of sentences read alike: three named, the rest counted, so the heat maps keep their room."""
    from ui import embed_layers, embed_maps

    lines = [f"{sentence} {emoji}" for sentence in EIGHT[:5] for emoji in ("🐱", "🚀")]
    figure, _ = embed_layers.compare_layers(ctx, source="Typed sentences", file=None, sentences="\n".join(lines),
                                            model_1=names[0], model_2=names[1], model_3="", pooling="mean")
    title = title_text(figure)
    assert title.count("they share one vector at every layer") == embed_layers.MAX_FIGURE_NOTES - 1
    assert "2 more groups of sentences are read as the same tokens; Draw's note names them all." in title
    _, _, note, _, _ = embed_maps.draw_maps(ctx, **typed(lines, model_1=names[0], model_2=names[1]))
    assert note.count("share one point") == 5


def test_an_empty_layer_box_is_the_last_layer_and_its_hint_says_so(tiny_teacher_dir):
    """An emptied layer box drew the last layer while its hint named only 0, -1 and -2."""
    from core.compare import embed
    from core.models import zoo
    from ui import embed_inputs, embed_tab

    tiny_teacher = zoo.load(str(tiny_teacher_dir))
    assert "(or empty) last" in embed_tab.LAYER_HINT and "an empty layer box is the last too" in embed_tab.INTRO
    for empty in (None, float("nan")):
        assert embed.resolve_layer(tiny_teacher, embed_inputs._layer(empty, 1)) == embed.layer_count(tiny_teacher)


# ---------------------------------------------------------------------------------------------------------------------
# Copies of a sentence, and what a refusal echoes and where it stays


def test_copies_are_named_in_the_note_and_never_listed_as_a_sentences_own_neighbours(ctx, names):
    """Sentence 3 typed three times: its copies led its own list at cosine 1.00, and the note said nothing of them."""
    from ui import embed_maps, embed_neighbours

    lines = EIGHT + [EIGHT[3], EIGHT[3]]  # #3, #8 and #9 are one text
    inputs = typed(lines, model_1=names[0], model_2=names[1])
    note = embed_maps.draw_maps(ctx, **inputs)[2]
    said = f"The set holds '{EIGHT[3]}' 3 times (#3, #8 and #9): copies share one point on each map"
    assert said in note
    sentences = typed_set("\n".join(lines))
    spaces = [embed.embed_space(zoo.load(name), sentences) for name in names]
    for chosen in ("3", "8"):  # the first copy, or a later one
        _, rows, shown = embed_neighbours.find_neighbours(ctx, **inputs, highlight=chosen, neighbours=20)
        for column, space in zip(list(rows.columns)[1:], spaces):
            listed = [int(cell.split("(#")[1].split(",")[0]) for cell in rows[column]]
            unit = space.vectors / np.linalg.norm(space.vectors, axis=1, keepdims=True)
            cosine = unit @ unit[int(chosen)]
            others = [i for i in range(8) if i != 3]  # one number a text: each text's first copy
            assert listed == sorted(others, key=lambda i: -cosine[i])
        _, beside, _, _ = embed_neighbours.show_beside(shown, "debiased")
        assert said in beside
        assert ("The set has 7 other sentences (copies counted once), so each list of neighbours has 7, not the 20 "
                "asked for.") in beside
    _, rows, _ = embed_neighbours.find_neighbours(ctx, **inputs, highlight="0", neighbours=20)
    assert all(sum(f"(#{i}," in cell for cell in rows[rows.columns[1]]) == (i == 3) for i in (3, 8, 9))
    note = embed_maps.draw_maps(ctx, **typed(EIGHT, model_1=names[0], model_2=names[1]))[2]
    assert "The set holds" not in note


def test_a_note_names_a_few_copied_sentences_and_counts_the_rest():
    from ui import embed_notes

    lines = EIGHT + EIGHT[:6] + EIGHT[:1]
    note = embed_notes.copies_note(typed_set("\n".join(lines)))
    assert f"'{EIGHT[0]}' 3 times (#0, #8 and #14), '{EIGHT[1]}' twice (#1 and #9)" in note
    assert note.count(" times (#") + note.count(" twice (#") == embed_notes.MAX_COPIED
    assert f"and {6 - embed_notes.MAX_COPIED} more sentences given more than once:" in note
    assert embed_notes.copies_note(typed_set("\n".join(["a_*b*", "a_*b*", "c", "d"]))).startswith(
        " The set holds 'a\\_\\*b\\*' twice")  # Markdown: shown as typed


@pytest.mark.parametrize("typed_k, read", [(10**9, "1,000,000,000"), (1e9, "1,000,000,000"), (-3000, "-3,000"),
                                           (0, "0"), (2.5, "2.5"), (" 1e9 ", "' 1e9 '")])
def test_a_refused_neighbours_count_is_echoed_as_a_person_reads_it(ctx, names, typed_k, read):
    """1e9 typed in the neighbours box came back as 1000000000."""
    import gradio as gr

    from ui import embed_neighbours
    from ui.errors import error_message

    said = f"Neighbours must be a whole number from 1 to 20; got {read}."
    inputs = typed(EIGHT, model_1=names[0], model_2=names[1])
    with pytest.raises(ValueError) as refused:
        embed_neighbours.page_neighbours_check(*inputs.values(), "1", typed_k)
    assert str(refused.value) == said
    with pytest.raises(gr.Error) as refused:
        embed_neighbours.find_neighbours(ctx, **inputs, highlight="1", neighbours=typed_k)
    assert error_message(refused.value) == said


def test_a_layer_a_model_lacks_is_echoed_as_a_person_reads_it(ctx, names):
    import gradio as gr

    from ui import embed_maps
    from ui.errors import error_message

    for layer in (10**9, 1e9):
        with pytest.raises(gr.Error) as refused:
            embed_maps.draw_maps(ctx, **typed(EIGHT, model_1=names[0], model_2=names[1], layer_2=layer))
        assert error_message(refused.value).endswith("(-1 is layer 2, -3 is layer 0). Got 1,000,000,000.")


def first_step(page, api_name: str) -> dict:
    """The page's own first step of an action (the visitor's places and the page's checks), which the event named
    `api_name` follows."""
    event = next(d for d in page.dependencies if d["api_name"] == api_name)
    return next(d for d in page.dependencies if d["id"] == event["trigger_after"])


def asked_on_the_page(page, api_name: str, inputs: list) -> None:
    """The action asked for as the page asks: its first step with `inputs`, then all that follows it."""
    import asyncio

    step = first_step(page, api_name)
    for block_id, value in zip(step["inputs"], inputs, strict=True):
        page.value[block_id] = value
    asyncio.run(page._run(step))


def test_neighbours_and_layer_similarity_say_a_refusal_under_their_buttons_until_they_succeed(embeddings_page, names):
    """A refused neighbours count was told by a toast and the status line above the maps, a screen or two up from the
    Neighbours button: once the toast faded, nothing in view said it. Layer similarity's button is further down. Each
    says it once, under its button; the status line above the maps keeps Draw's."""
    page, parts = embeddings_page
    status, under_neighbours, under_layers = parts["failed"], parts["neighbours_failed"], parts["layers_failed"]
    assert page.run("embedding_map", page_inputs(names, EIGHT) + ["debiased"])
    asked_on_the_page(page, "neighbours", page_inputs(names, EIGHT) + ["3", 10**9])
    said = "**Neighbours failed:** Neighbours must be a whole number from 1 to 20; got 1,000,000,000."
    assert page.value[under_neighbours._id] == said and page.value[status._id] == ""
    assert page.value[under_layers._id] == ""
    assert page.plot(parts["map_plot"])  # refused before it ran: the maps stay
    asked_on_the_page(page, "neighbours", page_inputs(names, EIGHT) + ["3", 2])
    assert page.value[under_neighbours._id] == ""
    layer_inputs = ["Typed sentences", None, "\n".join(EIGHT[:3]), names[0], names[1], "", "mean", "debiased"]
    asked_on_the_page(page, "layer_similarity", layer_inputs)
    said = ("**Layer similarity failed:** Layer similarity needs at least 4 different sentences; there are 3: add 1 "
            "more.")
    assert page.value[under_layers._id] == said and page.value[status._id] == ""
    assert page.value[under_neighbours._id] == ""
    asked_on_the_page(page, "layer_similarity", layer_inputs[:2] + ["\n".join(EIGHT)] + layer_inputs[3:])
    assert page.value[under_layers._id] == ""


# ---------------------------------------------------------------------------------------------------------------------
# A paste far over the limits


def hundred_thousand_lines() -> str:
    """100,000 typed lines: what a pasted data file looks like."""
    return "\n".join(f"Предложение номер {i}." for i in range(100_000))


def test_the_line_under_the_typed_box_refuses_a_paste_of_100_000_lines_for_their_number():
    from ui.embed_inputs import typed_line

    assert typed_line(hundred_thousand_lines()) == ("There are 100,000 sentences in the typed text, more than the "
                                                    "5,000 a map can take; keep fewer of them.")
    assert typed_line("") == "" and typed_line("\u200b\n ") == "" and typed_line("\n".join(EIGHT)) == ""


def test_draw_and_layer_similarity_refuse_100_000_typed_lines_for_their_number(ctx, names):
    from ui import embed_layers, embed_maps

    text = hundred_thousand_lines()
    said = "There are 100,000 sentences in the typed text, more than the 5,000 a map can take; keep fewer of them."
    with pytest.raises(Exception) as drawn:
        embed_maps.draw_maps(ctx, **typed([], model_1=names[0], model_2=names[1], sentences=text))
    assert message_of(drawn.value) == said
    with pytest.raises(Exception) as compared:
        embed_layers.compare_layers(ctx, source="Typed sentences", file=None, sentences=text, model_1=names[0],
                                    model_2=names[1], model_3="", pooling="mean")
    assert message_of(compared.value) == said

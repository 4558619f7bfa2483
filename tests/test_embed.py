"""Embedding spaces: sentence vectors, CKA and kNN overlap, maps, neighbours, uploads and the tab's endpoints."""
from __future__ import annotations

import contextlib
import csv
import json

import numpy as np
import pytest
import torch
from test_similarity import brute_knn, debiased_cka, hsic_cka, random_orthogonal
from transformers import DistilBertConfig, DistilBertForMaskedLM

from core.compare import embed, quality, similarity, tables
from core.compare.sentences import (
    MAX_SENTENCE_CHARS,
    MAX_SENTENCES,
    SentenceSet,
    probe_set,
    read_sentence_file,
    typed_set,
)
from core.models import zoo
from core.models.tokenizer import train_wordpiece
from tests.support.models import corpus_lines

RNG = np.random.default_rng(0)


@pytest.fixture(scope="module")
def sentences() -> SentenceSet:
    return typed_set("\n".join(corpus_lines(60)[:60]))


@pytest.fixture(scope="module")
def tiny_teacher(tiny_teacher_dir) -> zoo.LoadedModel:
    """The tests' random 4-layer BERT of width 32 (conftest), not the bundled teacher."""
    return zoo.load(str(tiny_teacher_dir))


@pytest.fixture(scope="module")
def tiny_student(tiny_student_dir) -> zoo.LoadedModel:
    """The tests' random 2-layer student of width 32 (conftest), sharing the tiny teacher's tokenizer."""
    return zoo.load(str(tiny_student_dir))


@pytest.fixture(scope="module")
def own_vocab_student() -> zoo.LoadedModel:
    """A DistilBERT with its own 300-word vocabulary and a width of 16: nothing shared with the tiny teacher."""
    tokenizer = train_wordpiece(corpus_lines(1500), vocab_size=300)
    torch.manual_seed(1)
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=16, n_layers=3, n_heads=2, hidden_dim=32,
                              max_position_embeddings=64)
    return zoo.LoadedModel("own-vocab", DistilBertForMaskedLM(config).eval(), tokenizer, "local")


# ---------------------------------------------------------------------------------------------------------------------
# Sentence vectors


def plain_vector(loaded: zoo.LoadedModel, sentence: str, layer: int, pooling: str) -> np.ndarray:
    """One sentence through the model alone, no padding or batching: the reference for pooled vectors."""
    ids = loaded.tokenizer(sentence, return_tensors="pt", return_token_type_ids=False)["input_ids"]
    with torch.no_grad():
        hidden = loaded.model.base_model(input_ids=ids, output_hidden_states=True).hidden_states[layer][0]
    return (hidden[0] if pooling == "cls" else hidden.mean(dim=0)).numpy()


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("layer", [0, 2, -1])
def test_pooled_vectors_match_one_sentence_at_a_time(tiny_teacher, tiny_student, sentences, pooling, layer):
    for loaded in (tiny_teacher, tiny_student):
        space = embed.embed_space(loaded, sentences, layer, pooling)
        assert space.vectors.shape == (len(sentences), 32)
        for i in (0, 17, len(sentences) - 1):  # sorted batching must put each vector back in its place
            expected = plain_vector(loaded, sentences.sentences[i], space.layer, pooling)
            np.testing.assert_allclose(space.vectors[i], expected, rtol=1e-4, atol=1e-5)


def test_layers_count_from_the_end(tiny_teacher, tiny_student):
    assert embed.resolve_layer(tiny_teacher, None) == 4 and embed.resolve_layer(tiny_teacher, -1) == 4
    assert embed.resolve_layer(tiny_student, -3) == 0 and embed.resolve_layer(tiny_student, 2) == 2
    for bad in (3, -4, 1.5):
        with pytest.raises(ValueError, match=r"The layer must be from -3 to 2 for .*\(-1 is layer 2, -3 is layer 0\)"):
            embed.resolve_layer(tiny_student, bad)
    with pytest.raises(ValueError, match="Pooling"):
        embed.embed_space(tiny_student, typed_set("a b"), pooling="max")


def test_models_with_their_own_vocabulary_and_width_compare(tiny_teacher, own_vocab_student, sentences):
    a = embed.embed_space(tiny_teacher, sentences)
    b = embed.embed_space(own_vocab_student, sentences)
    assert a.vectors.shape[1] == 32 and b.vectors.shape[1] == 16
    x, y = a.vectors.astype(float), b.vectors.astype(float)
    scores = embed.compare(a, b)
    assert scores["cka"] == pytest.approx(debiased_cka(x, y), rel=1e-6) and scores["estimator"] == "debiased"
    assert embed.compare(a, b, estimator="biased")["cka"] == pytest.approx(hsic_cka(x, y), rel=1e-6)
    expected = np.mean([len(p & q) / 10 for p, q in zip(brute_knn(a.vectors, 10), brute_knn(b.vectors, 10))])
    assert scores["knn_overlap"] == pytest.approx(expected) and scores["k"] == 10 and scores["knn_note"] == ""
    layers = embed.layer_similarity(tiny_teacher, own_vocab_student, sentences)
    assert layers["cka"].shape == (5, 4) and layers["knn_overlap"].shape == (5, 4)
    assert layers["cka"][4, 3] == pytest.approx(scores["cka"], rel=1e-6)
    assert list(layers["closest"]) == list(np.nanargmax(layers["cka"], axis=0))
    biased = embed.layer_similarity(tiny_teacher, own_vocab_student, sentences, estimator="biased")
    assert biased["cka"][4, 3] == pytest.approx(hsic_cka(x, y), rel=1e-6)


EIGHT = ("Мы ходили в кино.\nКошка спит на диване.\nЗавтра обещают дождь.\nЯ люблю читать книги.\n"
         "Поезд опаздывает на час.\nМама готовит суп.\nКупи хлеба по дороге домой.\nМатч начнётся в семь.")


@pytest.mark.slow
def test_eight_typed_sentences_against_noise_and_shuffled(bundled_teacher):
    """The sizes a class types: the biased CKA said 0.87 against noise and 0.78 with no sentence matched."""
    sentences = typed_set(EIGHT)
    a = embed.embed_space(bundled_teacher, sentences)
    noises = [embed.Space("noise", 0, 0, "mean", np.random.default_rng(seed).normal(size=a.vectors.shape), ("noise",))
              for seed in range(20)]
    noise = noises[0]
    turned = embed.Space("turned", 0, 0, "mean", 2.0 * a.vectors @ random_orthogonal(a.vectors.shape[1]), ("t",))
    # one draw of noise against 8 sentences moves the debiased CKA by about 0.25 (its standard deviation): near 0 is a
    # property of its mean, while the biased estimator is high for every draw
    assert abs(np.mean([embed.compare(a, n)["cka"] for n in noises])) < 0.2
    assert min(embed.compare(a, n, estimator="biased")["cka"] for n in noises) > 0.75
    same = embed.compare(a, turned)
    assert same["cka"] == pytest.approx(1.0)
    shuffled = [debiased_cka(a.vectors.astype(float), turned.vectors[similarity.derangement(8, seed)].astype(float))
                for seed in range(similarity.SHUFFLES)]  # the mean of 20 fixed shuffles, and their spread
    assert same["cka_shuffled"] == pytest.approx(np.mean(shuffled), rel=1e-6, abs=1e-9)
    assert same["cka_shuffled_sd"] == pytest.approx(np.std(shuffled), rel=1e-6)
    assert same["cka_shuffled"] < 0.3  # the baseline a class reads the 1.0 against
    assert "With 8 sentences CKA is unreliable" in same["cka_note"]
    assert np.isnan(same["knn_overlap"]) and "at least 12 sentences" in same["knn_note"]
    assert not np.isnan(embed.compare(a, noise, k=6)["knn_overlap"])  # k = 6 < 7 others: reported


def test_embeddings_are_cached_and_a_changed_model_is_not(tiny_student, sentences):
    first = embed.all_layers(tiny_student, sentences)
    assert embed.all_layers(tiny_student, sentences) is first
    assert not first.flags.writeable
    changed = zoo.LoadedModel(tiny_student.name, DistilBertForMaskedLM(tiny_student.model.config).eval(),
                              tiny_student.tokenizer, tiny_student.source)  # same name, other weights: trained further
    assert embed.model_version(changed) != embed.model_version(tiny_student)
    assert embed.all_layers(changed, sentences) is not first


def test_a_space_holds_its_own_layer_not_the_cached_stack(tiny_student, sentences):
    """A Space's vectors were a view of the cached (layers + 1, n, hidden) stack: whoever kept a Space kept every
    layer alive, after the cache had let the stack go."""
    stack = embed.all_layers(tiny_student, sentences)
    space = embed.embed_space(tiny_student, sentences, layer=1)
    np.testing.assert_array_equal(space.vectors, stack[1])
    assert not np.shares_memory(space.vectors, stack) and space.vectors.base is None
    assert space.vectors.nbytes == len(sentences) * 32 * 4 and not space.vectors.flags.writeable


def test_embedding_cache_is_bounded():
    store = embed._ArrayLRU(max_bytes=3 * 800)
    for i in range(5):
        store.put((i,), np.zeros(100))  # 800 bytes each
    assert store.get((0,)) is None and store.get((1,)) is None and store.get((4,)) is not None


# ---------------------------------------------------------------------------------------------------------------------
# Maps and neighbours


def test_pca_map_is_the_projection_on_the_top_principal_axes(tiny_teacher, sentences):
    space = embed.embed_space(tiny_teacher, sentences, layer=2)
    coords = embed.project(space, "pca", 3)
    centred = space.vectors - space.vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred.astype(float), full_matrices=False)
    expected = centred @ vt[:3].T
    for axis in range(3):  # each axis is defined up to its sign
        sign = np.sign(coords[:, axis] @ expected[:, axis])
        np.testing.assert_allclose(sign * coords[:, axis], expected[:, axis], rtol=1e-3, atol=1e-4)
    assert embed.project(space, "pca", 3) is coords  # cached


@pytest.mark.slow
def test_umap_warms_up_once_and_maps_reproducibly(tiny_teacher, sentences):
    thread = embed.warm_up_umap_in_background()
    assert embed.warm_up_umap_in_background() is thread and thread.daemon
    thread.join(timeout=600)  # numba compiles UMAP: half a minute idle, minutes on a busy machine
    assert not thread.is_alive()
    space = embed.embed_space(tiny_teacher, sentences)
    coords = embed.project(space, "umap", 2)
    assert coords.shape == (len(sentences), 2) and np.isfinite(coords).all()
    embed.PROJECTIONS.clear()
    np.testing.assert_allclose(embed.project(space, "umap", 2), coords, atol=1e-5)  # fixed seed, same map
    with pytest.raises(ValueError, match="at least 4"):
        embed.project(embed.embed_space(tiny_teacher, typed_set("один\nдва\nтри")), "umap", 2)
    four = embed.embed_space(tiny_teacher, typed_set("один\nдва\nтри\nчетыре"))
    assert embed.project(four, "umap", 3).shape == (4, 3)  # too few points for UMAP's spectral start


def test_align_undoes_a_rotation_and_reflection():
    reference = RNG.normal(size=(30, 2))
    turned = (reference - reference.mean(axis=0)) @ random_orthogonal(2) @ np.diag([1.0, -1.0]) + 4.0
    np.testing.assert_allclose(embed.align(reference, turned), reference - reference.mean(axis=0), atol=1e-9)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["umap", "pca"])
@pytest.mark.parametrize("dims", [2, 3])
def test_copies_of_a_sentence_share_one_point(tiny_teacher, method, dims):
    """Five copies each of two sentences: UMAP's random start spread the copies wider than the two sentences' gap."""
    two = typed_set("\n".join(["Кошка спит на диване."] * 5 + ["Завтра обещают дождь."] * 5))
    coords = embed.project(embed.embed_space(tiny_teacher, two), method, dims)
    assert coords.shape == (10, dims)
    np.testing.assert_array_equal(coords[:5], np.repeat(coords[:1], 5, axis=0))
    np.testing.assert_array_equal(coords[5:], np.repeat(coords[5:6], 5, axis=0))
    assert np.linalg.norm(coords[0] - coords[5]) > 0
    lines = corpus_lines(40)[:20]
    mixed = typed_set("\n".join(lines + lines[:3] * 4))  # 20 distinct sentences, three of them five times each
    space = embed.embed_space(tiny_teacher, mixed)
    coords = embed.project(space, method, dims)
    for first in range(3):
        copies = [first] + [20 + first + 3 * r for r in range(4)]
        np.testing.assert_array_equal(coords[copies], np.repeat(coords[[first]], 5, axis=0))
    assert len(np.unique(coords, axis=0)) == 20


def test_nearest_neighbours_by_cosine(tiny_student, sentences):
    space = embed.embed_space(tiny_student, sentences)
    found = embed.nearest(space, 3, k=4)
    unit = space.vectors / np.linalg.norm(space.vectors, axis=1, keepdims=True)
    cosine = unit @ unit[3]
    assert 3 not in [i for i, _ in found]
    assert [i for i, _ in found] == [int(j) for j in np.argsort(-cosine) if j != 3][:4]
    assert [c for _, c in found] == pytest.approx(sorted(cosine[[i for i, _ in found]], reverse=True), abs=1e-6)
    with pytest.raises(ValueError, match="outside"):
        embed.nearest(space, len(sentences))


def test_nearest_counts_copies_of_a_text_once_and_never_as_its_own(tiny_student, sentences):
    """Copies share one vector: without the texts, a sentence's own copies led its list at cosine 1.00."""
    texts = list(sentences.sentences[:10]) + [sentences.sentences[3]] * 2 + [sentences.sentences[5]]  # 10, 11, 12
    assert len(set(texts)) == 10
    space = embed.embed_space(tiny_student, typed_set("\n".join(texts)))
    unit = space.vectors / np.linalg.norm(space.vectors, axis=1, keepdims=True)
    for chosen in (3, 11):
        cosine = unit @ unit[chosen]
        expected = sorted((i for i in range(10) if i != 3), key=lambda i: -cosine[i])  # each text's first number
        found = embed.nearest(space, chosen, 20, texts)
        assert [i for i, _ in found] == expected
        assert [c for _, c in found] == pytest.approx(cosine[expected], abs=1e-6)
    assert {i for i, _ in embed.nearest(space, 3, 2)} == {10, 11}  # without the texts: vectors alone
    with pytest.raises(ValueError, match="13 sentences but 12 texts"):
        embed.nearest(space, 0, 5, texts[:12])


def test_cls_at_the_embedding_layer_has_nothing_to_map(tiny_student, sentences):
    space = embed.embed_space(tiny_student, sentences, layer=0, pooling="cls")  # [CLS] at position 0 in every sentence
    assert not embed.varies(space.vectors)
    assert not np.any(embed.project(space, "pca", 2))
    assert np.isnan(embed.compare(space, embed.embed_space(tiny_student, sentences))["cka"])


# ---------------------------------------------------------------------------------------------------------------------
# Inputs


def test_probe_set_is_labelled_by_topic():
    probes = probe_set()
    assert len(probes) >= 480 and len(set(probes.labels)) >= 12 and all(probes.labels)


def test_text_and_table_uploads(tmp_path):
    txt = tmp_path / "s.txt"
    txt.write_text("Первая строка.\n\n  Вторая   строка. \r\nТретья.\n", encoding="utf-8")
    assert read_sentence_file(txt).sentences == ("Первая строка.", "Вторая строка.", "Третья.")
    table_file = tmp_path / "s.csv"
    table_file.write_text('id;Text;Topic\n1;"Кот спит; тихо.";pets\n2;Идёт дождь.;weather\n', encoding="utf-8-sig")
    table = read_sentence_file(table_file)
    assert table.sentences == ("Кот спит; тихо.", "Идёт дождь.") and table.labels == ("pets", "weather")
    plain = tmp_path / "p.csv"
    plain.write_text("sentence\nОдин, два, три.\n", encoding="utf-8")
    assert read_sentence_file(plain).sentences == ("Один, два, три.",)
    assert typed_set("раз\n\nдва\n").sentences == ("раз", "два")


@pytest.mark.parametrize("name, content, message", [
    ("empty.txt", b"  \n\n", "is empty"),
    ("binary.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    ("latin.txt", "Привет".encode("cp1251"), "not UTF-8"),
    ("wide.txt", "Привет".encode("utf-16"), "UTF-16"),
    ("columns.csv", "id,words\n1,Привет\n".encode(), "no 'sentence' or 'text' column"),
    ("many.txt", "\n".join(f"Предложение {i}." for i in range(MAX_SENTENCES + 1)).encode(), "5,001 sentences"),
    ("long.txt", ("Короткая.\n" + "а" * (MAX_SENTENCE_CHARS + 1)).encode(), "Line 2 of long.txt has 1,001"),
    ("sheet.xlsx", b"PK\x03\x04", "not a .txt, .csv or .tsv file"),
    ("blank.csv", b"sentence,label\n,x\n", "no sentences in blank.csv"),
    ("huge.csv", ("sentence\n" + "б" * 200_000).encode(), "a cell of more than"),
])
def test_bad_uploads_say_what_to_do(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=message):
        read_sentence_file(path)


# ---------------------------------------------------------------------------------------------------------------------
# The tab, through its API


@contextlib.contextmanager
def embeddings_app(teacher_name: str, student_name: str):
    """The Embeddings tab alone, served on a free port: (its Blocks, a gradio_client Client of it); closed after."""
    import gradio as gr
    from gradio_client import Client

    from ui import embed_tab
    from ui.context import AppContext

    with gr.Blocks() as demo:
        embed_tab.build(AppContext(default_teacher=teacher_name, default_student=student_name))
    demo.queue().launch(prevent_thread_lock=True, quiet=True)
    try:
        yield demo, Client(demo.local_url, verbose=False)
    finally:
        demo.close()


@pytest.mark.app
def test_tab_endpoints(tiny_teacher_dir, tiny_student_dir, tmp_path):
    import httpx
    from gradio_client import handle_file

    teacher_name, student_name = str(tiny_teacher_dir), str(tiny_student_dir)
    with embeddings_app(teacher_name, student_name) as (demo, client):
        every_endpoint = httpx.get(client.src_prefixed + "info?all_endpoints=True").json()  # undocumented ones too
        assert set(every_endpoint["named_endpoints"]) == {"/embedding_map", "/neighbours", "/layer_similarity"}
        assert not every_endpoint["unnamed_endpoints"]
        upload = tmp_path / "mine.csv"
        with open(upload, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["text", "label"])
            writer.writerows([s, f"group {i % 3}"] for i, s in enumerate(corpus_lines(30)))
        common = ["Upload a file", handle_file(str(upload)), "", teacher_name, student_name, teacher_name, -1, -1, 1,
                  "mean", "PCA", "3D"]
        figure, scores, note, choices = client.predict(*common, api_name="/embedding_map")
        plot = json.loads(figure["plot"])
        assert "scene3" in plot["layout"] and {t["name"] for t in plot["data"]} == {"group 0", "group 1", "group 2"}
        assert [row[:2] for row in scores["data"]] == [[f"1. {teacher_name} (L4)", f"2. {student_name} (L2)"],
                                                        [f"1. {teacher_name} (L4)", f"3. {teacher_name} (L1)"],
                                                        [f"2. {student_name} (L2)", f"3. {teacher_name} (L1)"]]
        uploaded = read_sentence_file(upload)
        direct = embed.compare(embed.embed_space(zoo.load(teacher_name), uploaded),
                               embed.embed_space(zoo.load(student_name), uploaded))
        assert scores["headers"] == ["space A", "space B", "linear CKA", "CKA, rows shuffled", "kNN overlap@10"]
        assert float(scores["data"][0][2]) == pytest.approx(direct["cka"], abs=1e-3)
        assert float(scores["data"][0][3]) == pytest.approx(direct["cka_shuffled"], abs=1e-3)
        assert float(scores["data"][0][4]) == pytest.approx(direct["knn_overlap"], abs=1e-3)
        assert "debiased estimator" in note and "'Rows shuffled'" in note
        assert len(choices["choices"]) == len(uploaded)
        _, biased, note, _ = client.predict(*common, "biased", api_name="/embedding_map")
        direct = embed.compare(embed.embed_space(zoo.load(teacher_name), uploaded),
                               embed.embed_space(zoo.load(student_name), uploaded), estimator="biased")
        assert float(biased["data"][0][2]) == pytest.approx(direct["cka"], abs=1e-3) and "biased estimator" in note

        eight = dict(source="Typed sentences", sentences=EIGHT, model_1=teacher_name, model_2=student_name)
        _, scores, note, _ = client.predict(**eight, api_name="/embedding_map")  # called by keyword, as README shows
        assert scores["data"][0][4] == "n/a" and "needs at least 12 sentences" in note
        heatmaps = json.loads(client.predict(**eight, api_name="/layer_similarity")["plot"])
        assert len([t for t in heatmaps["data"] if t["type"] == "heatmap"]) == 1  # CKA only, kNN says why instead
        assert any("at least 12" in a["text"] for a in heatmaps["layout"]["annotations"])

        figure, rows = client.predict(*common, "2", 4, api_name="/neighbours")
        assert len(rows["data"]) == 4 and len(rows["headers"]) == 4
        assert {t["name"] for t in json.loads(figure["plot"])["data"]} >= {"chosen", "neighbours"}

        heatmaps = json.loads(client.predict(*common[:6], "CLS", api_name="/layer_similarity")["plot"])
        shapes = [t["z"]["shape"] for t in heatmaps["data"] if t["type"] == "heatmap"]  # numpy arrays travel as bdata
        assert shapes == ["5, 3", "5, 5", "5, 3", "5, 5"]  # teacher layers against student, then teacher, layers

        bad = tmp_path / "bad.csv"
        bad.write_text("a,b\n1,2\n", encoding="utf-8")
        with pytest.raises(Exception, match="no 'sentence' or 'text' column"):
            client.predict("Upload a file", handle_file(str(bad)), *common[2:], api_name="/embedding_map")


# ---------------------------------------------------------------------------------------------------------------------
# The tab's figures and lists


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a #rrggbb colour: 0 black, 1 white."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    return float(linear @ [0.2126, 0.7152, 0.0722])


def cielab(colour: str) -> np.ndarray:
    """CIE L*a*b* (D65) of a #rrggbb colour; Euclidean distance in it is the CIE76 colour difference."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]]) @ linear
    xyz = xyz / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def test_topic_colours_read_on_white_and_differ():
    from ui import embed_plots

    palette = embed_plots.LABEL_PALETTE
    colours = embed_plots.label_colours(probe_set().labels)
    assert len(colours) == 16 and len(set(colours.values())) == 16  # every topic its own colour
    assert max(relative_luminance(c) for c in palette) < 0.45  # "films" was #FBE426-like, 0.77: yellow on white
    closest = min(np.linalg.norm(cielab(a) - cielab(b)) for i, a in enumerate(palette) for b in palette[:i])
    assert closest > 30  # CIE76; about 2.3 is a just-noticeable difference


def test_map_labels_few_sentences_and_frames_the_3d_cube(tiny_teacher):
    from ui import embed_plots

    few = typed_set(EIGHT)
    space = embed.embed_space(tiny_teacher, few)
    for dims in (2, 3):
        figure = embed_plots.map_figure(few, [space, space], [embed.project(space, "pca", dims)] * 2, "PCA")
        texts = [t for trace in figure.data for t in (trace.text or ())]
        assert "Мы ходили в кино." in texts and "Купи хлеба по дороге…" in texts  # cut at a word
        assert all(len(t) <= embed_plots.TEXT_LABEL_CHARS for t in texts)
    assert figure.layout.scene.aspectmode == "cube" and figure.layout.scene2.aspectmode == "cube"
    assert figure.layout.scene.camera.eye.x > 1.25  # further than plotly's default, which cut the cube's bottom
    many = typed_set("\n".join(corpus_lines(40)[:40]))
    space = embed.embed_space(tiny_teacher, many)
    figure = embed_plots.map_figure(many, [space], [embed.project(space, "pca", 2)], "PCA")
    assert all(trace.mode == "markers" and not trace.text for trace in figure.data)


def axis_titles(layout: dict) -> dict[str, str]:
    """Each axis of a figure's layout (plotly's JSON: xaxis, yaxis2, scene.zaxis, ...) with its title's text ("" for
    none)."""
    def text(axis: dict) -> str:
        title = axis.get("title") or {}
        return title.get("text") or "" if isinstance(title, dict) else str(title)

    titles = {name: text(axis) for name, axis in layout.items() if name.startswith(("xaxis", "yaxis"))}
    for name, scene in layout.items():
        if name.startswith("scene"):
            titles.update({f"{name}.{a}axis": text(scene.get(f"{a}axis", {})) for a in "xyz"})
    return titles


@pytest.mark.slow
def test_every_map_axis_says_which_component_it_is(tiny_teacher_dir, tiny_student_dir):
    """The maps' axes carry no numbers (the later maps are turned): each is titled with the component it shows, on
    the page and in the downloaded page."""
    from tests.support.downloads import html_figure, paths
    from ui import embed_downloads, embed_maps, embed_plots
    from ui.context import AppContext

    teacher, student = str(tiny_teacher_dir), str(tiny_student_dir)
    ctx = AppContext(default_teacher=teacher, default_student=student)
    for dims in ("2D", "3D"):
        figure, *_, kept = embed_maps.draw_maps(ctx, "Typed sentences", None, EIGHT, teacher, student, teacher,
                                                -1, -1, 1, "mean", "PCA", dims)
        _, _, html_path = paths(embed_downloads.show_downloads("draw", kept)[:3])
        for layout in (json.loads(figure.to_json())["layout"], html_figure(html_path)[1]):
            titles = axis_titles(layout)
            if dims == "2D":
                assert titles == {f"{a}axis{n}": f"PCA component {1 if a == 'x' else 2}" for a in "xy"
                                  for n in ("", "2", "3")}
            else:
                assert titles == {f"scene{n}.{a}axis": f"component {i}" for n in ("", "2", "3")
                                  for i, a in enumerate("xyz", start=1)}
                assert layout["title"]["text"].startswith("PCA 3D")  # the method, which 3D titles leave out
    few = typed_set(EIGHT)
    space = embed.embed_space(zoo.load(teacher), few)
    umap = embed_plots.map_figure(few, [space], [embed.project(space, "pca", 2)], "UMAP")
    assert axis_titles(json.loads(umap.to_json())["layout"]) == {"xaxis": "UMAP component 1",
                                                                 "yaxis": "UMAP component 2"}


def test_layer_figure_outlines_the_closest_layer_and_keeps_the_numbers(tiny_teacher, tiny_student, sentences):
    from ui import embed_heatmaps

    result = embed.layer_similarity(tiny_teacher, tiny_student, sentences)
    figure = embed_heatmaps.layer_figure(["teacher", "student"], [result], "6 sentences (the typed text)")
    assert figure.layout.title.text.startswith("6 sentences (the typed text): ")  # a figure left from earlier says so
    heatmaps = [t for t in figure.data if t.type == "heatmap"]
    assert len(heatmaps) == 2 and all(t.texttemplate for t in heatmaps)
    assert not [t for t in figure.data if t.type == "scatter"]  # no marker covers a number
    titles = axis_titles(json.loads(figure.to_json())["layout"])
    assert titles == {"xaxis": "student layer", "yaxis": "teacher layer", "xaxis2": "student layer",
                      "yaxis2": "teacher layer"}
    assert heatmaps[0].colorbar.title.text == "linear CKA, kNN overlap"  # the one scale both rows share
    outlined = sorted((round((s.x0 + s.x1) / 2), round((s.y0 + s.y1) / 2)) for s in figure.layout.shapes)
    expected = [(column, int(row)) for column, row in enumerate(result["closest"])]
    assert outlined == sorted(expected * 2)  # the same cells on the CKA and kNN maps
    assert all(abs(s.x1 - s.x0) < 1 and s.fillcolor is None for s in figure.layout.shapes)


def test_neighbour_columns_fill_the_table_with_a_narrow_rank():
    from ui import embed_tables

    for spaces in (2, 3):
        widths = [float(w.rstrip("%")) for w in embed_tables.neighbour_column_widths(spaces)]
        assert sum(widths) == pytest.approx(100, abs=0.2) and widths[0] < min(widths[1:]) / 3


def test_model_lists_are_read_again_when_refreshed_or_opened(tiny_teacher_dir, tiny_student_dir):
    import gradio as gr

    from ui import embed_tab
    from ui.context import AppContext

    class Lab(AppContext):
        runs: list[str] = []

        def model_choices(self, include_arch: bool = False) -> list[str]:
            return ["bundled-teacher", "bundled-student"] + self.runs

    lab = Lab(default_teacher=str(tiny_teacher_dir), default_student=str(tiny_student_dir))
    with gr.Blocks() as demo:
        parts = embed_tab.build(lab)
    lists = [parts["first"], parts["second"], parts["third"]]
    lab.runs = ["run:finished-since"]  # a run that finished after the page was built
    function, outputs = parts["refresh"]
    assert outputs == lists
    assert [u.choices[-1] for u in function()] == [("run:finished-since", "run:finished-since")] * 3
    opened = [d for d in demo.fns.values() if any(event == "focus" for _, event in d.targets)]
    assert {t[0] for d in opened for t in d.targets} == {d._id for d in lists}


# ---------------------------------------------------------------------------------------------------------------------
# Downloads: each action's tables as CSV and figure as an HTML page, written from what the action showed


def labelled_upload(folder, lines: int = 30):
    path = folder / "labelled.csv"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "label"])
        writer.writerows([s, f"group {i % 3}"] for i, s in enumerate(corpus_lines(lines)))
    return path


def test_draw_downloads_hold_the_points_scores_and_maps(tiny_teacher_dir, tiny_student_dir, tmp_path):
    from tests.support.downloads import assert_offline_page_of, paths, read_csv
    from ui import embed_downloads, embed_maps
    from ui.context import AppContext

    teacher, student = str(tiny_teacher_dir), str(tiny_student_dir)
    ctx = AppContext(default_teacher=teacher, default_student=student)
    upload = labelled_upload(tmp_path)
    figure, scores, note, _, kept = embed_maps.draw_maps(ctx, "Upload a file", str(upload), "", teacher, student,
                                                         teacher, -1, -1, 1, "mean", "PCA", "2D")
    *shown, neighbours = embed_downloads.show_downloads("draw", kept)
    map_path, scores_path, html_path = paths(tuple(shown))
    assert neighbours.visible is False and neighbours.value is None  # no neighbours listed under new maps
    assert [p.name for p in (map_path, scores_path, html_path)] == ["embedding-map.csv", "how-alike.csv",
                                                                    "embedding-map.html"]
    points = read_csv(map_path)
    assert list(points.columns) == ["sentence number", "sentence", "label", "map", "model", "layer", "x", "y"]
    uploaded = read_sentence_file(upload)
    assert len(points) == 3 * len(uploaded)
    for number, ((model, layer), rows) in enumerate(points.groupby(["model", "layer"], sort=False), start=1):
        assert (model, layer) == [(teacher, "4"), (student, "2"), (teacher, "1")][number - 1]
        assert set(rows["map"]) == {str(number)}
        assert list(rows["sentence"]) == list(uploaded.sentences) and list(rows["label"]) == list(uploaded.labels)
        assert list(rows["sentence number"]) == [str(i) for i in range(len(uploaded))]
        for trace in figure.data:  # each point where the page draws it
            if trace.xaxis == ("x" if number == 1 else f"x{number}"):
                drawn = rows[rows["label"] == trace.name]
                np.testing.assert_allclose(drawn["x"].astype(float), trace.x, rtol=1e-9)
                np.testing.assert_allclose(drawn["y"].astype(float), trace.y, rtol=1e-9)
    alike = read_csv(scores_path)
    k = similarity.effective_k(len(uploaded), quality.TOPIC_K)
    assert list(alike.columns) == ["space A", "space B", "estimator", "linear CKA", "CKA, rows shuffled",
                                   "CKA, rows shuffled (sd)", "kNN overlap@10", f"same-label neighbours@{k}, A",
                                   f"same-label neighbours@{k}, B", "same-label neighbours, chance"]
    # the labelled set's same-label shares, which the note beside the table gives rounded
    shares = [float(v) for v in [alike[f"same-label neighbours@{k}, A"].iloc[0],
                                 *alike[f"same-label neighbours@{k}, B"].iloc[:2]]]
    said = note.value if hasattr(note, "value") else note
    assert f"{teacher} {shares[0]:.0%}, {student} {shares[1]:.0%}, {teacher} {shares[2]:.0%}" in said, said
    chance = quality.chance_purity(list(uploaded.labels))
    assert [float(v) for v in alike["same-label neighbours, chance"]] == pytest.approx([chance] * len(alike))
    assert alike[["space A", "space B"]].values.tolist() == scores[["space A", "space B"]].values.tolist()
    assert set(alike["estimator"]) == {"debiased"}
    for column in ("linear CKA", "CKA, rows shuffled", "kNN overlap@10"):
        assert [f"{round(float(v), 3) + 0.0:.3f}" for v in alike[column]] == list(scores[column])  # 3 decimals, no -0
    assert_offline_page_of(html_path, figure)

    figure, scores, _, _, kept = embed_maps.draw_maps(ctx, "Typed sentences", None, EIGHT, teacher, student, "",
                                                      -1, -1, -1, "CLS", "PCA", "3D")
    points_path, scores_path, html_path = paths(embed_downloads.show_downloads("draw", kept)[:3])
    points = read_csv(points_path)
    assert list(points.columns)[-3:] == ["x", "y", "z"] and len(points) == 16
    first = figure.data[0]  # typed sentences have no labels: one trace a map
    np.testing.assert_allclose(points[points["map"] == "1"][["x", "y", "z"]].astype(float).values,
                               np.column_stack([first.x, first.y, first.z]), rtol=1e-9)
    assert read_csv(scores_path)["kNN overlap@10"].tolist() == [""] and scores["kNN overlap@10"].tolist() == ["n/a"]
    assert_offline_page_of(html_path, figure)


def test_neighbours_download_names_each_sentence_and_its_neighbour_by_text(tiny_teacher_dir, tiny_student_dir):
    """A row of neighbours.csv reads without the page: the sentence chosen and its neighbour, each by number and
    text, the map, the rank and the cosine (computed here from the sentence vectors), and the page's ●."""
    import gradio as gr

    from tests.support.downloads import assert_offline_page_of, paths, read_csv
    from ui import embed_downloads, embed_neighbours
    from ui.context import AppContext

    teacher, student = str(tiny_teacher_dir), str(tiny_student_dir)
    ctx = AppContext(default_teacher=teacher, default_student=student)
    figure, shown, kept = embed_neighbours.find_neighbours(ctx, "Typed sentences", None, EIGHT, teacher, student, "",
                                                           -1, -1, -1, "mean", "PCA", "2D", "3. Я люблю читать книги.",
                                                           4)
    files = {p.name: p for p in paths(embed_downloads.show_downloads("neighbours", kept))}
    assert list(files) == ["embedding-map.csv", "embedding-map.html", "neighbours.csv"]
    table = read_csv(files["neighbours.csv"])
    assert list(table.columns) == ["sentence number", "sentence", "label", "map", "model", "layer", "rank",
                                   "neighbour number", "neighbour", "neighbour label", "cosine",
                                   "in every map's list"]
    assert len(table) == 2 * 4
    assert set(table["sentence number"]) == {"3"} and set(table["sentence"]) == {"Я люблю читать книги."}
    eight = typed_set(EIGHT)
    for number, (name, layer) in enumerate(((teacher, "4"), (student, "2")), start=1):
        vectors = embed.embed_space(zoo.load(name), eight).vectors.astype(float)  # (8, hidden)
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        cosine = unit @ unit[3]
        nearest = [int(i) for i in np.argsort(-cosine) if i != 3][:4]
        rows = table[table["map"] == str(number)]
        assert set(rows["model"]) == {name} and set(rows["layer"]) == {layer}
        assert list(rows["rank"]) == ["1", "2", "3", "4"]
        assert list(rows["neighbour number"]) == [str(i) for i in nearest]
        assert list(rows["neighbour"]) == [eight.sentences[i] for i in nearest]
        np.testing.assert_allclose(rows["cosine"].astype(float), cosine[nearest], rtol=1e-5)
        assert list(rows["label"]) == [""] * 4 and list(rows["neighbour label"]) == [""] * 4  # typed: no labels
    marked = {cell[2:].rsplit(" (#", 1)[0] for cell in shown.iloc[:, 1] if cell.startswith("● ")}
    assert set(table.loc[table["in every map's list"] == "yes", "neighbour"]) == marked
    assert set(table.loc[table["in every map's list"] == "no", "neighbour"]).isdisjoint(marked)
    assert_offline_page_of(files["embedding-map.html"], figure)  # the maps as Neighbours drew them, marked
    assert {t.name for t in figure.data} >= {"chosen", "neighbours"}
    assert embed_downloads.show_downloads("neighbours", None) == (gr.skip(),) * 3  # nothing shown yet: left as they are
    with pytest.raises(ValueError, match="its own list of neighbours"):
        tables.neighbour_rows(eight, [embed.Space("m", 1, 2, "mean", np.zeros((8, 4)), ("k",))], 3, [[(8, 0.5)]])


def test_layer_downloads_hold_every_pair_of_layers(tiny_teacher_dir, tiny_student_dir, sentences):
    from tests.support.downloads import assert_offline_page_of, paths, read_csv
    from ui import embed_downloads, embed_layers
    from ui.context import AppContext

    teacher, student = str(tiny_teacher_dir), str(tiny_student_dir)
    ctx = AppContext(default_teacher=teacher, default_student=student)
    typed = "\n".join(sentences.sentences)
    figure, kept = embed_layers.compare_layers(ctx, "Typed sentences", None, typed, teacher, student, teacher, "mean")
    csv_path, html_path = paths(embed_downloads.show_downloads("layers", kept))
    assert (csv_path.name, html_path.name) == ("layer-similarity.csv", "layer-similarity.html")
    rows = read_csv(csv_path)
    assert list(rows.columns) == ["reference model", "reference layer", "other model", "other layer", "estimator",
                                  "linear CKA", "kNN overlap@10"]
    assert len(rows) == 5 * 3 + 5 * 5  # teacher's 0..4 against student's 0..2, then against its own 0..4
    assert set(rows["reference model"]) == {f"1. {teacher}"}
    direct = embed.layer_similarity(zoo.load(teacher), zoo.load(student), sentences)
    pair = rows[rows["other model"] == f"2. {student}"]
    for metric, column in (("cka", "linear CKA"), ("knn_overlap", "kNN overlap@10")):
        grid = np.full(direct[metric].shape, np.nan)
        for _, row in pair.iterrows():
            grid[int(row["reference layer"]), int(row["other layer"])] = float(row[column])
        np.testing.assert_allclose(grid, direct[metric], rtol=1e-6, atol=1e-9)
    shown = [t for t in figure.data if t.type == "heatmap"]
    np.testing.assert_allclose(np.asarray(shown[0].z).ravel(), pair["linear CKA"].astype(float), rtol=1e-9)
    assert_offline_page_of(html_path, figure)


def test_downloads_keep_the_api_and_appear_after_each_action(tiny_teacher_dir, tiny_student_dir):
    import gradio as gr

    from ui import embed_downloads, embed_tab
    from ui.context import AppContext

    with gr.Blocks() as demo:
        parts = embed_tab.build(AppContext(default_teacher=str(tiny_teacher_dir),
                                           default_student=str(tiny_student_dir)))
    api = demo.get_api_info()
    assert not api["unnamed_endpoints"]
    returns = {name: [r["component"] for r in endpoint["returns"]] for name, endpoint in api["named_endpoints"].items()}
    assert returns == {"/embedding_map": ["Plot", "Dataframe", "Markdown", "Dropdown"],
                       "/neighbours": ["Plot", "Dataframe"], "/layer_similarity": ["Plot"]}
    dependencies = demo.config["dependencies"]
    events = {"draw": [d for d in dependencies if d["api_name"] == "embedding_map"],
              "layers": [d for d in dependencies if d["api_name"] == "layer_similarity"],
              "neighbours": [d for d in dependencies if parts["neighbour_rows"]._id in d["outputs"]
                             and isinstance(demo.blocks[d["outputs"][-1]], gr.State)]}
    assert len(events["neighbours"]) == 2  # the button and picking a sentence
    # each after a check of the sentence chosen with no outputs: a refusal marks nothing on the page "Error"
    by_event = {d["id"]: d for d in dependencies}
    checks = [by_event[d["trigger_after"]] for d in events["neighbours"]]
    assert all(c["outputs"] == [] and c["trigger_after"] is None for c in checks)
    elem_ids = {name: elem_id for row in embed_downloads.DOWNLOAD_BOXES.values() for name, _, elem_id in row}
    by_id = {getattr(block, "elem_id", None): block for block in demo.blocks.values()}
    for action, boxes in parts["files"].items():
        # each action's boxes: those of the files it makes, and those of a view it replaces (Draw: the neighbours')
        assert [b._id for b in boxes] == [by_id[elem_ids[name]]._id for name in embed_downloads.ACTION_FILES[action]]
        assert boxes and all(isinstance(b, gr.File) and not b.visible for b in boxes)  # hidden until there is a file
        for event in events[action]:
            source = event["outputs"][-1]
            assert isinstance(demo.blocks[source], gr.State)
            writes = [d for d in dependencies if d["trigger_after"] == event["id"] and d["trigger_only_on_success"]
                      and d["outputs"] == [b._id for b in boxes]]
            assert len(writes) == 1 and writes[0]["inputs"] == [source] and writes[0]["api_visibility"] == "private"


def test_tables_refuse_results_that_do_not_fit(sentences):
    space = embed.Space("m", 1, 2, "mean", np.zeros((len(sentences), 4)), ("k",))
    with pytest.raises(ValueError, match="one point per sentence"):
        tables.map_rows(sentences, [space], [np.zeros((len(sentences) - 1, 2))])
    with pytest.raises(ValueError, match="needs 2 results; 1 given"):
        tables.layer_rows(["a", "b", "c"], [{}])


@pytest.mark.parametrize("highlight, said", [("", "Choose a sentence from the list (draw the maps first), or type its "
                                                  "number."),
                                             ("7", "There is no sentence 7; the set has sentences 0 to 3."),
                                             ("2", "")])
def test_a_neighbours_request_without_a_sentence_of_the_set_is_refused_before_it_runs(highlight, said):
    """Refused by the event's validator, under the sentence list: the request never runs, so the maps already drawn
    are not replaced by an error."""
    import gradio as gr

    from ui import embed_tab
    from ui.context import AppContext

    with gr.Blocks() as demo:
        parts = embed_tab.build(AppContext(default_teacher="bundled-teacher", default_student="bundled-student"))
    events = [fn for fn in demo.fns.values() if fn.api_name == "neighbours"]
    inputs = [block._id for block in events[0].inputs]
    values = ["Typed sentences", None, "один\nдва\nтри\nчетыре", "bundled-teacher", "bundled-student", None, -1, -1,
              -1, "mean", "PCA", "2D", highlight, 3]
    answer = events[0].validator(*values)
    at = inputs.index(parts["chosen"]._id)
    assert [a["message"] for a in answer] == [said if i == at else "" for i in range(len(values))]
    assert [a["is_valid"] for a in answer] == [not said or i != at for i in range(len(values))]


def test_a_pdf_named_txt_is_refused_under_the_upload_box_as_it_is_uploaded(tmp_path):
    """The sentences box tells a file Draw would refuse as it arrives, in Draw's own sentence."""
    import gradio as gr

    from ui import embed_inputs, embed_tab
    from ui.context import AppContext
    from ui.page_text import markdown_text

    upload = tmp_path / "sentences.txt"
    upload.write_bytes(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + bytes(range(256)) * 8)
    with pytest.raises(ValueError) as refused:  # what Draw, Neighbours and Layer similarity read the upload with
        embed_inputs.sentence_set("Upload a file", str(upload), None)
    assert "'sentences.txt' is a PDF document, not plain text" in str(refused.value)
    with gr.Blocks() as demo:
        parts = embed_tab.build(AppContext(default_teacher="bundled-teacher", default_student="bundled-student"))
    uploaded = [d for d in demo.fns.values() if (parts["upload"]._id, "change") in d.targets]
    assert [[o._id for o in d.outputs] for d in uploaded] == [[parts["upload_note"]._id]]
    assert uploaded[0].fn(str(upload)) == markdown_text(str(refused.value))
    table = tmp_path / "mine.csv"
    table.write_text("sentence,label\nКошка спит.,кошки\nСобака лает.,собаки\n", encoding="utf-8")
    assert uploaded[0].fn(str(table)) == "mine.csv: 2 sentences with labels."
    assert uploaded[0].fn(None) == ""  # the box cleared: nothing is said
    assert [u.visible for u in embed_inputs.show_source("Upload a file")] == [True, True, False]
    assert [u.visible for u in embed_inputs.show_source("Probe set")] == [False, False, False]


def state_values(demo) -> int:
    """How many gr.State values Gradio holds for the app's sessions, every session together."""
    return sum(len(session.state_data) for session in demo.state_holder.session_data.values())


@pytest.mark.app
def test_api_callers_leave_no_state_behind(tiny_teacher_dir, tiny_student_dir, monkeypatch):
    """Each gradio_client Client (each raw HTTP caller) is a session of its own. /neighbours kept its maps in the
    session's state for the page's follow-ups, which an API caller never runs, and Gradio frees a session's state
    only an hour after its page closes: memory for every call, for good."""
    import time

    from ui import embed_tab

    monkeypatch.setattr(embed_tab, "KEPT_S", 1, raising=False)  # how long a page needs it: a moment
    teacher_name, student_name = str(tiny_teacher_dir), str(tiny_student_dir)
    with embeddings_app(teacher_name, student_name) as (demo, client):
        before = state_values(demo)
        for api_name, extra in (("/neighbours", ["2", 3]), ("/embedding_map", []), ("/layer_similarity", None)):
            inputs = ["Typed sentences", None, "\n".join(corpus_lines(12)), teacher_name, student_name, ""]
            inputs += ["mean"] if extra is None else [-1, -1, -1, "mean", "PCA", "2D", *extra]
            client.predict(*inputs, api_name=api_name)
            assert state_values(demo) == before + 1  # kept a moment, for a page's follow-ups
            deadline = time.time() + 30
            while state_values(demo) > before and time.time() < deadline:
                time.sleep(0.2)
            assert state_values(demo) == before, f"{api_name} left its state behind"

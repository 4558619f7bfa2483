"""Embedding spaces: sentence vectors, CKA and kNN overlap, maps, neighbours, uploads and the tab's endpoints."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from conftest import corpus_lines
from transformers import DistilBertConfig, DistilBertForMaskedLM

from core.compare import embed, similarity
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

RNG = np.random.default_rng(0)


def hsic_cka(x: np.ndarray, y: np.ndarray) -> float:
    """CKA from its definition: HSIC(K, L) / sqrt(HSIC(K, K) HSIC(L, L)), K = XX^T, L = YY^T, H the centring matrix."""
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    gram_x, gram_y = x @ x.T, y @ y.T

    def hsic(a, b):
        return np.trace(a @ h @ b @ h) / (n - 1) ** 2

    return hsic(gram_x, gram_y) / np.sqrt(hsic(gram_x, gram_x) * hsic(gram_y, gram_y))


def random_orthogonal(d: int) -> np.ndarray:
    q, _ = np.linalg.qr(RNG.normal(size=(d, d)))
    return q


def brute_knn(x: np.ndarray, k: int) -> list[set[int]]:
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    result = []
    for i in range(len(x)):
        others = sorted((j for j in range(len(x)) if j != i), key=lambda j: -float(unit[i] @ unit[j]))
        result.append(set(others[:k]))
    return result


@pytest.fixture(scope="module")
def sentences() -> SentenceSet:
    return typed_set("\n".join(corpus_lines(60)[:60]))


@pytest.fixture(scope="module")
def teacher(tiny_teacher_dir) -> zoo.LoadedModel:
    return zoo.load(str(tiny_teacher_dir))


@pytest.fixture(scope="module")
def student(tiny_student_dir) -> zoo.LoadedModel:
    return zoo.load(str(tiny_student_dir))


@pytest.fixture(scope="module")
def own_vocab_student() -> zoo.LoadedModel:
    """A DistilBERT with its own 300-word vocabulary and a width of 16: nothing shared with the teacher."""
    tokenizer = train_wordpiece(corpus_lines(1500), vocab_size=300)
    torch.manual_seed(1)
    config = DistilBertConfig(vocab_size=len(tokenizer), dim=16, n_layers=3, n_heads=2, hidden_dim=32,
                              max_position_embeddings=64)
    return zoo.LoadedModel("own-vocab", DistilBertForMaskedLM(config).eval(), tokenizer, "local")


# ---------------------------------------------------------------------------------------------------------------------
# CKA and kNN overlap


@pytest.mark.parametrize("n, width_a, width_b", [(30, 50, 70), (80, 12, 5)])  # Gram form, then feature form
def test_cka_matches_the_hsic_definition(n, width_a, width_b):
    x = RNG.normal(size=(n, width_a))
    y = np.tanh(x[:, :width_b] if width_b <= width_a else x @ RNG.normal(size=(width_a, width_b))) + \
        0.5 * RNG.normal(size=(n, width_b))
    unrelated = RNG.normal(size=(n, width_b))
    assert similarity.linear_cka(x, y) == pytest.approx(hsic_cka(x, y), rel=1e-9)
    assert similarity.linear_cka(x, unrelated) == pytest.approx(hsic_cka(x, unrelated), rel=1e-9)


def test_cka_properties():
    x = RNG.normal(size=(40, 10)) @ RNG.normal(size=(10, 10))
    assert similarity.linear_cka(x, x) == pytest.approx(1.0)
    turned = 3.7 * x @ random_orthogonal(10) + 5.0  # rotation, isotropic scale and a shift
    assert similarity.linear_cka(x, turned) == pytest.approx(1.0)
    stretched = x * np.array([10.0] + [0.1] * 9)  # scaling one axis is not isotropic: CKA must notice
    assert similarity.linear_cka(x, stretched) < 0.95
    unrelated = RNG.normal(size=(40, 6))
    assert similarity.linear_cka(x, unrelated) < similarity.linear_cka(x, x[:, :6] + 0.1 * unrelated)
    assert np.isnan(similarity.linear_cka(x, np.ones((40, 3))))  # a space that does not vary has no geometry


def test_cka_matrix_is_pairwise_cka():
    a = [RNG.normal(size=(25, w)) for w in (8, 30)]
    b = [a[0] @ RNG.normal(size=(8, 4)), RNG.normal(size=(25, 40)), a[1]]
    matrix = similarity.cka_matrix(a, b)
    assert matrix.shape == (2, 3)
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            assert matrix[i, j] == pytest.approx(hsic_cka(x, y), rel=1e-9)


def test_knn_overlap_against_brute_force():
    x = RNG.normal(size=(50, 6))
    y = x + 0.8 * RNG.normal(size=(50, 6))
    expected = np.mean([len(a & b) / 10 for a, b in zip(brute_knn(x, 10), brute_knn(y, 10))])
    assert similarity.knn_overlap(x, y, 10) == pytest.approx(expected)
    assert [set(row) for row in similarity.knn_indices(x, 10)] == brute_knn(x, 10)
    assert similarity.knn_overlap(x, 2.0 * x @ random_orthogonal(6), 10) == pytest.approx(1.0)


def test_knn_overlap_on_points_around_a_circle():
    """Points evenly around a circle: the 2 cosine neighbours of point i are i-1 and i+1 (mod n)."""
    n = 24
    angles = 2 * np.pi * np.arange(n) / n
    circle = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    place = np.arange(n)
    place[[0, 1]] = [1, 0]  # space B: points 0 and 1 trade places around the circle
    moved = circle[place]
    at_position = np.argsort(place)  # which point sits at each place
    neighbours_a = [{(i - 1) % n, (i + 1) % n} for i in range(n)]
    neighbours_b = [{at_position[(place[i] - 1) % n], at_position[(place[i] + 1) % n]} for i in range(n)]
    expected = np.mean([len(a & b) / 2 for a, b in zip(neighbours_a, neighbours_b)])
    assert expected < 1.0
    assert similarity.knn_overlap(circle, moved, 2) == pytest.approx(expected)
    assert similarity.knn_overlap_matrix([circle], [circle, moved], 2) == pytest.approx(np.array([[1.0, expected]]))


def test_knn_uses_fewer_neighbours_when_few_sentences():
    assert similarity.effective_k(5) == 4
    assert similarity.knn_indices(RNG.normal(size=(5, 3))).shape == (5, 4)


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
def test_pooled_vectors_match_one_sentence_at_a_time(teacher, student, sentences, pooling, layer):
    for loaded in (teacher, student):
        space = embed.embed_space(loaded, sentences, layer, pooling)
        assert space.vectors.shape == (len(sentences), 32)
        for i in (0, 17, len(sentences) - 1):  # sorted batching must put each vector back in its place
            expected = plain_vector(loaded, sentences.sentences[i], space.layer, pooling)
            np.testing.assert_allclose(space.vectors[i], expected, rtol=1e-4, atol=1e-5)


def test_layers_count_from_the_end(teacher, student):
    assert embed.resolve_layer(teacher, None) == 4 and embed.resolve_layer(teacher, -1) == 4
    assert embed.resolve_layer(student, -3) == 0 and embed.resolve_layer(student, 2) == 2
    for bad in (3, -4, 1.5):
        with pytest.raises(ValueError, match="layers 0 to 2"):
            embed.resolve_layer(student, bad)
    with pytest.raises(ValueError, match="Pooling"):
        embed.embed_space(student, typed_set("a b"), pooling="max")


def test_models_with_their_own_vocabulary_and_width_compare(teacher, own_vocab_student, sentences):
    a = embed.embed_space(teacher, sentences)
    b = embed.embed_space(own_vocab_student, sentences)
    assert a.vectors.shape[1] == 32 and b.vectors.shape[1] == 16
    scores = embed.compare(a, b)
    assert scores["cka"] == pytest.approx(hsic_cka(a.vectors.astype(float), b.vectors.astype(float)), rel=1e-6)
    expected = np.mean([len(p & q) / 10 for p, q in zip(brute_knn(a.vectors, 10), brute_knn(b.vectors, 10))])
    assert scores["knn_overlap"] == pytest.approx(expected) and scores["k"] == 10
    layers = embed.layer_similarity(teacher, own_vocab_student, sentences)
    assert layers["cka"].shape == (5, 4) and layers["knn_overlap"].shape == (5, 4)
    assert layers["cka"][4, 3] == pytest.approx(scores["cka"], rel=1e-6)


def test_embeddings_are_cached_and_a_changed_model_is_not(student, sentences):
    first = embed.all_layers(student, sentences)
    assert embed.all_layers(student, sentences) is first
    assert not first.flags.writeable
    changed = zoo.LoadedModel(student.name, DistilBertForMaskedLM(student.model.config).eval(), student.tokenizer,
                              student.source)  # same name, other weights: a run's student that trained further
    assert embed.model_version(changed) != embed.model_version(student)
    assert embed.all_layers(changed, sentences) is not first


def test_embedding_cache_is_bounded():
    store = embed._ArrayLRU(max_bytes=3 * 800)
    for i in range(5):
        store.put((i,), np.zeros(100))  # 800 bytes each
    assert store.get((0,)) is None and store.get((1,)) is None and store.get((4,)) is not None


# ---------------------------------------------------------------------------------------------------------------------
# Maps and neighbours


def test_pca_map_is_the_projection_on_the_top_principal_axes(teacher, sentences):
    space = embed.embed_space(teacher, sentences, layer=2)
    coords = embed.project(space, "pca", 3)
    centred = space.vectors - space.vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(centred.astype(float), full_matrices=False)
    expected = centred @ vt[:3].T
    for axis in range(3):  # each axis is defined up to its sign
        sign = np.sign(coords[:, axis] @ expected[:, axis])
        np.testing.assert_allclose(sign * coords[:, axis], expected[:, axis], rtol=1e-3, atol=1e-4)
    assert embed.project(space, "pca", 3) is coords  # cached


def test_umap_warms_up_once_and_maps_reproducibly(teacher, sentences):
    thread = embed.warm_up_umap_in_background()
    assert embed.warm_up_umap_in_background() is thread and thread.daemon
    thread.join(timeout=120)
    assert not thread.is_alive()
    space = embed.embed_space(teacher, sentences)
    coords = embed.project(space, "umap", 2)
    assert coords.shape == (len(sentences), 2) and np.isfinite(coords).all()
    embed.PROJECTIONS.clear()
    np.testing.assert_allclose(embed.project(space, "umap", 2), coords, atol=1e-5)  # fixed seed, same map
    with pytest.raises(ValueError, match="at least 4"):
        embed.project(embed.embed_space(teacher, typed_set("один\nдва\nтри")), "umap", 2)
    four = embed.embed_space(teacher, typed_set("один\nдва\nтри\nчетыре"))
    assert embed.project(four, "umap", 3).shape == (4, 3)  # too few points for UMAP's spectral start


def test_align_undoes_a_rotation_and_reflection():
    reference = RNG.normal(size=(30, 2))
    turned = (reference - reference.mean(axis=0)) @ random_orthogonal(2) @ np.diag([1.0, -1.0]) + 4.0
    np.testing.assert_allclose(embed.align(reference, turned), reference - reference.mean(axis=0), atol=1e-9)


def test_nearest_neighbours_by_cosine(student, sentences):
    space = embed.embed_space(student, sentences)
    found = embed.nearest(space, 3, k=4)
    unit = space.vectors / np.linalg.norm(space.vectors, axis=1, keepdims=True)
    cosine = unit @ unit[3]
    assert 3 not in [i for i, _ in found]
    assert [i for i, _ in found] == [int(j) for j in np.argsort(-cosine) if j != 3][:4]
    assert [c for _, c in found] == pytest.approx(sorted(cosine[[i for i, _ in found]], reverse=True), abs=1e-6)
    with pytest.raises(ValueError, match="outside"):
        embed.nearest(space, len(sentences))


def test_cls_at_the_embedding_layer_has_nothing_to_map(student, sentences):
    space = embed.embed_space(student, sentences, layer=0, pooling="cls")  # [CLS] at position 0 in every sentence
    assert not embed.varies(space.vectors)
    assert not np.any(embed.project(space, "pca", 2))
    assert np.isnan(embed.compare(space, embed.embed_space(student, sentences))["cka"])


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
    ("many.txt", "\n".join(f"Предложение {i}." for i in range(MAX_SENTENCES + 1)).encode(), "5001 sentences"),
    ("long.txt", ("Короткая.\n" + "а" * (MAX_SENTENCE_CHARS + 1)).encode(), "Line 2 of long.txt has 1001"),
    ("sheet.xlsx", b"PK\x03\x04", "not a .txt or .csv"),
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


def test_tab_endpoints(tiny_teacher_dir, tiny_student_dir, tmp_path):
    import gradio as gr
    import httpx
    from gradio_client import Client, handle_file

    from ui import embed_tab
    from ui.context import AppContext

    teacher_name, student_name = str(tiny_teacher_dir), str(tiny_student_dir)
    with gr.Blocks() as demo:
        embed_tab.build(AppContext(default_teacher=teacher_name, default_student=student_name))
    demo.queue().launch(prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
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
        assert float(scores["data"][0][2]) == pytest.approx(direct["cka"], abs=1e-3)
        assert float(scores["data"][0][3]) == pytest.approx(direct["knn_overlap"], abs=1e-3)
        assert len(choices["choices"]) == len(uploaded)

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
    finally:
        demo.close()

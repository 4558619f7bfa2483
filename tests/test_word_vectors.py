"""Word vectors as starting token embeddings (core.models.word_vectors) and train.pretrain_teacher's options for them,
on a tiny BERT (hidden 32) and a hand-made vocabulary, with small made-up vectors in place of navec's."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from core.models import word_vectors
from core.models.tokenizer import wordpiece_from_vocab
from tests.support.models import corpus_lines, tiny_bert
from train import pretrain_teacher

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "дом", "Дом", "ёлка", "ещё", "##ка", "кот", "зонт", "чай", "а"]
MATCHED = ["дом", "Дом", "ёлка", "ещё", "кот"]  # зонт, чай, а have no vector; ##ка and [MASK] are never words


def made_up_vectors(dim: int, seed: int = 1) -> dict[str, np.ndarray]:
    """Vectors keyed as navec keys them: lower case, ёлка only as елка, ещё with its ё."""
    rng = np.random.default_rng(seed)
    words = ["дом", "елка", "ещё", "кот", "ка", "[mask]", "собака"]
    return {word: rng.normal(size=dim).astype(np.float32) for word in words}


def expected_vector(entry: str, vectors: dict) -> np.ndarray:
    word = entry.lower()
    return vectors[word] if word in vectors else vectors[word.replace("ё", "е")]


@pytest.fixture
def tokenizer():
    return wordpiece_from_vocab(VOCAB)


def test_matched_rows_are_the_scaled_vectors_and_the_others_untouched(tokenizer):
    model = tiny_bert(len(VOCAB), layers=1, hidden=32)
    before = model.get_input_embeddings().weight.detach().clone()
    vectors = made_up_vectors(32)  # as wide as the model: no projection, only the scale
    result = word_vectors.init_token_embeddings(model, tokenizer, vectors, seed=0)
    after = model.get_input_embeddings().weight.detach()
    matched = [VOCAB.index(entry) for entry in MATCHED]
    target_std = before[1:].double().std().item()  # row 0 is [PAD], zero in BERT's initialisation
    raw = np.stack([expected_vector(entry, vectors) for entry in MATCHED]).astype(np.float64)
    scale = target_std / raw.std(ddof=1)
    assert torch.allclose(after[matched].double(), torch.from_numpy(raw * scale), atol=1e-6)
    assert after[matched].double().std().item() == pytest.approx(target_std, rel=1e-5)
    others = [i for i in range(len(VOCAB)) if i not in matched]
    assert torch.equal(after[others], before[others])
    assert (result.initialised, result.through_yo, result.candidates) == (5, 1, 8)
    assert (result.vocab_size, result.vector_dim, result.hidden, result.projection) == (14, 32, 32, "none")
    assert result.scale == pytest.approx(scale, rel=1e-6)


def test_narrow_vectors_keep_their_angles_and_lengths_through_the_projection(tokenizer):
    model = tiny_bert(len(VOCAB), layers=1, hidden=32)
    vectors = made_up_vectors(12)
    result = word_vectors.init_token_embeddings(model, tokenizer, vectors, seed=3)
    rows = model.get_input_embeddings().weight.detach()[[VOCAB.index(e) for e in MATCHED]].double()
    raw = torch.from_numpy(np.stack([expected_vector(e, vectors) for e in MATCHED]).astype(np.float64))
    # orthonormal rows of the (12, 32) projection keep every inner product, up to the one scale
    assert torch.allclose(rows @ rows.T, result.scale**2 * (raw @ raw.T), atol=1e-6)
    projection = word_vectors.orthogonal_projection(12, 32, seed=3)
    assert torch.allclose(rows, raw @ projection * result.scale, atol=1e-6)
    assert result.projection == "orthogonal, seed 3"


@pytest.mark.parametrize("source, target", [(12, 32), (48, 32), (300, 32), (32, 32)])
def test_projection_is_orthonormal_fixed_by_its_seed(source, target):
    projection = word_vectors.orthogonal_projection(source, target, seed=7)
    assert projection.shape == (source, target)
    narrow = min(source, target)
    gram = projection.T @ projection if target <= source else projection @ projection.T
    assert torch.allclose(gram, torch.eye(narrow, dtype=torch.float64), atol=1e-10)
    assert torch.equal(projection, word_vectors.orthogonal_projection(source, target, seed=7))
    if source != target:
        assert not torch.allclose(projection, word_vectors.orthogonal_projection(source, target, seed=8))


def test_the_tied_output_layer_starts_from_the_same_rows(tokenizer):
    model = tiny_bert(len(VOCAB), layers=1, hidden=32)
    word_vectors.init_token_embeddings(model, tokenizer, made_up_vectors(12))
    output, embeddings = model.get_output_embeddings().weight, model.get_input_embeddings().weight
    assert output.data_ptr() == embeddings.data_ptr()
    assert torch.equal(output[VOCAB.index("дом")], embeddings[VOCAB.index("дом")])


def test_corpus_words_keep_word_beginnings_out(tokenizer):
    model = tiny_bert(len(VOCAB), layers=1, hidden=32)
    before = model.get_input_embeddings().weight.detach().clone()
    words = word_vectors.corpus_words(["Дом, где кот ест.", "ёлка и ещё зонт"], tokenizer)
    assert {"Дом", "кот", "ёлка", "ещё", ","} <= words and "дом" not in words
    result = word_vectors.init_token_embeddings(model, tokenizer, made_up_vectors(12), words=words)
    assert (result.initialised, result.candidates) == (4, 5)  # Дом, ёлка, ещё, кот of Дом, ёлка, ещё, кот, зонт
    assert torch.equal(model.get_input_embeddings().weight[VOCAB.index("дом")], before[VOCAB.index("дом")])


def test_other_weights_and_the_global_random_state_are_left_alone(tokenizer):
    model, fresh = tiny_bert(len(VOCAB), layers=1, hidden=32), tiny_bert(len(VOCAB), layers=1, hidden=32)
    state = torch.get_rng_state()
    word_vectors.init_token_embeddings(model, tokenizer, made_up_vectors(12))
    assert torch.equal(torch.get_rng_state(), state)
    changed = [name for name, p in model.state_dict().items() if not torch.equal(p, fresh.state_dict()[name])]
    assert set(changed) <= {"bert.embeddings.word_embeddings.weight", "cls.predictions.decoder.weight"}
    assert "bert.embeddings.word_embeddings.weight" in changed


def test_no_match_changes_nothing(tokenizer):
    model = tiny_bert(len(VOCAB), layers=1, hidden=32)
    before = model.get_input_embeddings().weight.detach().clone()
    result = word_vectors.init_token_embeddings(model, tokenizer, {"собака": np.ones(12)})
    assert result.initialised == 0 and torch.equal(model.get_input_embeddings().weight, before)


def test_vectors_of_different_widths_are_refused(tokenizer):
    model = tiny_bert(len(VOCAB), layers=1, hidden=32)
    with pytest.raises(ValueError, match="one width"):
        word_vectors.init_token_embeddings(model, tokenizer, {"дом": np.ones(12), "кот": np.ones(10)})


def test_missing_natasha_says_how_to_install_it(monkeypatch):
    real = word_vectors.find_spec
    monkeypatch.setattr(word_vectors, "find_spec", lambda name: None if name == "natasha" else real(name))
    with pytest.raises(ValueError, match="natasha package, which is not installed: pip install natasha"):
        word_vectors.navec_news_path()


def test_missing_navec_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(word_vectors, "find_spec", lambda name: None)
    with pytest.raises(ValueError, match="navec package, which is not installed: pip install natasha"):
        word_vectors.load_navec()


def test_frozen_rows_stay_put_through_training_with_weight_decay(tokenizer):
    model = tiny_bert(len(VOCAB), layers=1, hidden=32)
    vectors = made_up_vectors(32)
    word_vectors.init_token_embeddings(model, tokenizer, vectors, seed=0)
    rows = word_vectors.vector_rows(tokenizer, vectors)
    assert rows == sorted(VOCAB.index(entry) for entry in MATCHED)
    weight = model.get_input_embeddings().weight
    before = weight.detach().clone()
    frozen = word_vectors.FrozenRows(weight, rows)
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1, weight_decay=0.5)
    ids = torch.tensor([[2, 5, 6, 7, 8, 10, 11, 12, 3]])
    for _ in range(3):
        logits = model(input_ids=ids).logits  # the tied output layer reads the same rows
        logits.logsumexp(-1).sum().backward()
        assert not weight.grad[rows].any()
        optimizer.step()
        frozen.restore()
        optimizer.zero_grad()
    others = [i for i in range(len(VOCAB)) if i not in rows and i != 0]
    assert torch.equal(weight.detach()[rows], before[rows])
    assert not torch.equal(weight.detach()[others], before[others])  # the rest trained
    assert model.get_output_embeddings().weight.data_ptr() == weight.data_ptr()


@pytest.fixture
def short_run(tmp_path):
    """Arguments of a pretraining run of a few seconds: 400 corpus lines, a 300-entry vocabulary, 1 x 32 BERT."""
    train, valid = tmp_path / "train.txt", tmp_path / "valid.txt"
    lines = corpus_lines(460)
    train.write_text("\n".join(lines[:400]) + "\n", encoding="utf-8")
    valid.write_text("\n".join(lines[400:]) + "\n", encoding="utf-8")
    return ["--corpus", str(train), "--valid-corpus", str(valid), "--vocab-size", "300", "--layers", "1",
            "--hidden", "32", "--heads", "2", "--ffn", "64", "--max-length", "32", "--steps", "2", "--batch-size",
            "4", "--eval-every", "2", "--save-dtype", "float32"]


@pytest.mark.slow
def test_cli_initialises_from_vectors_and_records_the_count(short_run, tmp_path, monkeypatch, capsys):
    words = set(word_vectors.corpus_words(corpus_lines(400), wordpiece_from_vocab(VOCAB)))
    rng = np.random.default_rng(0)
    vectors = {w.lower(): rng.normal(size=20) for w in words if w.isalpha()}
    monkeypatch.setattr(word_vectors, "load_navec", lambda path=None: vectors)
    out = tmp_path / "teacher"
    assert pretrain_teacher.main([*short_run, "--init-embeddings", "navec", "--output-dir", str(out)]) == 0
    record = json.loads((out / "pretraining.json").read_text(encoding="utf-8"))
    init = record["init_embeddings"]
    assert 0 < init["initialised"] <= init["candidates"] == record["whole_word_entries"] < record["vocab_entries"]
    assert (init["vector_dim"], init["hidden"]) == (20, 32)
    assert f"navec: initialised {init['initialised']:,} of {record['vocab_entries']:,}" in capsys.readouterr().err


@pytest.mark.slow
def test_cli_freezes_the_vector_rows(short_run, tmp_path, monkeypatch):
    words = set(word_vectors.corpus_words(corpus_lines(400), wordpiece_from_vocab(VOCAB)))
    rng = np.random.default_rng(0)
    vectors = {w.lower(): rng.normal(size=32) for w in words if w.isalpha()}
    monkeypatch.setattr(word_vectors, "load_navec", lambda path=None: vectors)
    runs = {}
    for name, extra in (("free", []), ("frozen", ["--freeze-word-vectors"])):
        out = tmp_path / name
        assert pretrain_teacher.main([*short_run, "--init-embeddings", "navec", *extra, "--steps", "4",
                                      "--output-dir", str(out)]) == 0
        runs[name] = transformers.BertForMaskedLM.from_pretrained(out).get_input_embeddings().weight.detach()
    tokenizer = transformers.AutoTokenizer.from_pretrained(tmp_path / "frozen")
    rows = word_vectors.vector_rows(tokenizer, vectors, word_vectors.corpus_words(corpus_lines(400), tokenizer))
    torch.manual_seed(0)  # the run's own start: the same seed, config and vectors
    start = transformers.BertForMaskedLM(transformers.BertConfig.from_pretrained(tmp_path / "frozen"))
    word_vectors.init_token_embeddings(start, tokenizer, vectors, seed=0,
                                       words=word_vectors.corpus_words(corpus_lines(400), tokenizer))
    assert rows and torch.allclose(runs["frozen"][rows], start.get_input_embeddings().weight.detach()[rows])
    assert not torch.allclose(runs["free"][rows], start.get_input_embeddings().weight.detach()[rows])


@pytest.mark.slow
def test_cli_default_keeps_random_embeddings_and_counts_whole_words(short_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(word_vectors, "load_navec", lambda path=None: pytest.fail("navec read without the option"))
    out = tmp_path / "teacher"
    assert pretrain_teacher.main([*short_run, "--min-frequency", "1", "--output-dir", str(out)]) == 0
    record = json.loads((out / "pretraining.json").read_text(encoding="utf-8"))
    assert record["init_embeddings"] is None and record["args"]["min_frequency"] == 1
    assert 0 < record["whole_word_entries"] < record["vocab_entries"] <= 300
    assert "navec" not in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--init-embeddings", "navec"], "which is not installed: pip install natasha"),
    (["--min-frequency", "0"], "--min-frequency must be 1 or more"),
    (["--navec-file", "x.tar"], "--navec-file is read only with --init-embeddings navec"),
    (["--freeze-word-vectors"], "--freeze-word-vectors keeps rows started from word vectors"),
])
def test_cli_refuses_with_one_line(short_run, tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.setattr(word_vectors, "find_spec", lambda name: None)  # neither navec nor natasha installed
    assert pretrain_teacher.main([*short_run, *extra, "--output-dir", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "t").exists()


def test_navec_news_vectors_when_installed():
    pytest.importorskip("navec")
    try:
        vectors = word_vectors.load_navec()
    except ValueError as error:
        pytest.skip(str(error))
    assert word_vectors.vector_key("Москва", vectors) == ("москва", False)
    assert np.asarray(vectors["москва"]).shape == (300,)

"""Loading checks: Unicode composed before tokenising, cased vocabularies read cased, encoder-only checkpoints and
configs without model_type refused in one sentence."""
from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer, BertConfig, BertForMaskedLM, BertModel

from core.compare import predict
from core.formatting import error_sentence
from core.models import zoo
from core.models.cache import ModelCache
from core.models.tokenizer import compose_unicode, train_wordpiece, wordpiece_from_vocab
from core.saving import RUNTIME_KEYS, save_tokenizer
from tests.support.models import corpus_lines

NFC_SENTENCE = "Мой ёжик любит [MASK] и йогурт."


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def vocabulary(tokenizer) -> list[str]:
    """A tokenizer's entries in id order, as vocab.txt lists them."""
    return [token for token, _ in sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])]


def hub_layout_folder(path: Path, tokens: list[str], head: bool = True, model_type: str | None = "bert") -> Path:
    """A model folder laid out as DeepPavlov's Hub repos are: config.json, pytorch_model.bin, vocab.txt, and no
    tokenizer_config.json. head=False saves a BertModel (the encoder only)."""
    path.mkdir(parents=True, exist_ok=True)
    config = BertConfig(vocab_size=len(tokens), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    model = BertForMaskedLM(config) if head else BertModel(config)
    torch.save(model.state_dict(), path / "pytorch_model.bin")
    data = config.to_dict()
    data.pop("model_type", None)
    if model_type:
        data["model_type"] = model_type
    (path / "config.json").write_text(json.dumps(data), encoding="utf-8")
    (path / "vocab.txt").write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------------------------------
# NFD text


def test_nfd_and_nfc_give_identical_tokens_and_predictions(bundled_teacher):
    tokenizer = bundled_teacher.tokenizer
    decomposed = nfd(NFC_SENTENCE)
    assert decomposed != NFC_SENTENCE and len(decomposed) == len(NFC_SENTENCE) + 3  # й, ё, й: one mark each
    assert tokenizer.tokenize(decomposed) == tokenizer.tokenize(NFC_SENTENCE)
    assert tokenizer.unk_token not in tokenizer.tokenize(decomposed)
    assert tokenizer(decomposed).word_ids() == tokenizer(NFC_SENTENCE).word_ids()
    one, other = predict.fill_mask(bundled_teacher, decomposed, 5), predict.fill_mask(bundled_teacher, NFC_SENTENCE, 5)
    assert one.masks[0].tokens == other.masks[0].tokens
    np.testing.assert_allclose(one.masks[0].probs, other.masks[0].probs, atol=1e-6)


def test_nfd_sentence_masks_the_same_words(bundled_teacher):
    sentence = "Мой ёжик любит чай и йогурт."
    strips = [predict.mask_each_word([bundled_teacher, bundled_teacher], s, top_k=3) for s in (nfd(sentence), sentence)]
    assert strips[0].words == strips[1].words == ["Мой", "ёжик", "любит", "чай", "и", "йогурт"]
    assert strips[0].spans == strips[1].spans
    assert [s[start:end] for s in (strips[0].sentence,) for start, end in strips[0].spans] == strips[0].words
    assert [m.tokens for m in strips[0].results[0]] == [m.tokens for m in strips[1].results[0]]


@pytest.mark.slow
def test_nfd_corpus_tokenises_without_unk(bundled_teacher):
    lines = [nfd(line) for line in corpus_lines(600)]
    assert sum(line != unicodedata.normalize("NFC", line) for line in lines) > 100  # the corpus has й and ё
    tokenizer = bundled_teacher.tokenizer
    ids = [i for line in lines for i in tokenizer(line, add_special_tokens=False)["input_ids"]]
    assert tokenizer.unk_token_id not in ids
    # Without composing, the same tokenizer reads a few percent of these tokens as [UNK].
    plain = AutoTokenizer.from_pretrained(zoo.BUNDLED_DIR / "teacher")
    plain_ids = [i for line in lines for i in plain(line, add_special_tokens=False)["input_ids"]]
    assert plain_ids.count(plain.unk_token_id) / len(plain_ids) > 0.02


def test_tokenizers_the_lab_makes_compose_unicode():
    lines = corpus_lines(800)
    learnt_nfd, learnt_nfc = train_wordpiece([nfd(x) for x in lines], 400), train_wordpiece(lines, 400)
    # An NFD corpus learns the NFC entries (ids of equal-count entries vary between trainings, so compare the sets).
    assert set(learnt_nfd.get_vocab()) == set(learnt_nfc.get_vocab())
    made = wordpiece_from_vocab(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "йогурт", "ёж", "##ик"])
    assert made.tokenize(nfd("йогурт ёжик")) == ["йогурт", "ёж", "##ик"]
    stand_in = zoo.load("arch:distilrubert-tiny-cased-conversational-v1").tokenizer
    assert stand_in.backend_tokenizer.normalizer.normalize_str(nfd("й")) == "й"
    before = made.backend_tokenizer.normalizer.__repr__()
    assert compose_unicode(made).backend_tokenizer.normalizer.__repr__() == before  # composing twice changes nothing


def test_saved_student_tokenizer_composes_after_loading(tmp_path, tiny_tokenizer):
    tiny_tokenizer.save_pretrained(tmp_path)
    BertForMaskedLM(BertConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=1,
                               num_attention_heads=4, intermediate_size=64)).save_pretrained(tmp_path)
    loaded = zoo.load(str(tmp_path))
    assert loaded.tokenizer.tokenize(nfd(NFC_SENTENCE)) == tiny_tokenizer.tokenize(NFC_SENTENCE)


def test_a_saved_tokenizer_carries_no_truncation_or_padding_from_earlier_calls(tmp_path, tiny_tokenizer):
    """transformers 5 wrote a call's max_length 256 into the shipped tokenizer_config.json and tokenizer.json."""
    text = ["привет мир " * 20, "да"]
    tiny_tokenizer(text, truncation=True, max_length=7, padding="max_length")
    save_tokenizer(tiny_tokenizer, tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    backend = json.loads((tmp_path / "tokenizer.json").read_text(encoding="utf-8"))
    assert not set(RUNTIME_KEYS) & set(config) and config["model_max_length"] == tiny_tokenizer.model_max_length
    assert backend["truncation"] is None and backend["padding"] is None
    assert tiny_tokenizer.backend_tokenizer.truncation["max_length"] == 7  # the tokenizer in use is left as it was
    loaded = AutoTokenizer.from_pretrained(tmp_path)
    assert loaded(text)["input_ids"] == tiny_tokenizer(text)["input_ids"]  # whole lines, unpadded, as before saving
    assert len(loaded(text)["input_ids"][0]) > 7


# ---------------------------------------------------------------------------------------------------------------------
# Cased vocabulary, lowercasing tokenizer


@pytest.mark.slow
def test_cased_vocabulary_without_tokenizer_config_loads_cased(tmp_path, bundled_teacher):
    folder = hub_layout_folder(tmp_path / "rubert", vocabulary(bundled_teacher.tokenizer))
    plain = AutoTokenizer.from_pretrained(folder)  # transformers' default: do_lower_case=True
    assert plain.tokenize("Ёжик и йогурт") != bundled_teacher.tokenizer.tokenize("Ёжик и йогурт")
    loaded = zoo.load(str(folder))
    text = "Ёжик и йогурт. Москва"
    assert loaded.tokenizer.tokenize(text) == bundled_teacher.tokenizer.tokenize(text)
    assert loaded.tokenizer.tokenize(nfd(text)) == bundled_teacher.tokenizer.tokenize(text)
    assert "read cased" in loaded.notice and "\n" not in loaded.notice
    from ui import predict_actions
    from ui.context import AppContext
    from ui.errors import ErrorLines

    ctx = AppContext(default_teacher="bundled-teacher", default_student=str(folder))
    _, markdown = predict_actions.fill_mask(ctx, ErrorLines(), "bundled-teacher", str(folder), "", 3,
                                            "Ёжик любит [MASK].")
    from ui.page_text import markdown_text
    assert markdown_text(loaded.notice) in markdown  # the Predictions tab shows the notice beside the results
    assert zoo.load("bundled-teacher").notice == ""  # a tokenizer already cased needs no notice


def test_uncased_vocabulary_stays_lowercased(tmp_path):
    tokens = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "ежик", "и", "иогурт", "."]  # accents stripped: uncased
    loaded = zoo.load(str(hub_layout_folder(tmp_path / "uncased", tokens)))
    assert loaded.tokenizer.tokenize("Ёжик и йогурт") == ["ежик", "и", "иогурт"]
    assert loaded.notice == ""


# ---------------------------------------------------------------------------------------------------------------------
# Refusals in one sentence


def test_encoder_only_checkpoint_is_refused(tmp_path, tiny_tokenizer, runs_dir):
    folder = hub_layout_folder(tmp_path / "encoder", vocabulary(tiny_tokenizer), head=False)
    with pytest.raises(ValueError, match=r"has no masked-LM head: .* nor serve as a teacher") as caught:
        zoo.load(str(folder))
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")
    with pytest.raises(ValueError, match="has no masked-LM head"):
        ModelCache().get(str(folder))  # the app's path and a run's teacher go through the same load
    saved = tmp_path / "saved"
    BertModel(BertConfig(vocab_size=len(tiny_tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                         intermediate_size=64)).save_pretrained(saved)  # safetensors, as save_pretrained writes
    tiny_tokenizer.save_pretrained(saved)
    with pytest.raises(ValueError, match="has no masked-LM head"):
        zoo.load(str(saved))


def test_config_without_model_type_names_the_cause(tmp_path, tiny_tokenizer):
    folder = hub_layout_folder(tmp_path / "old-bert", vocabulary(tiny_tokenizer), model_type=None)
    with pytest.raises(ValueError) as caught:
        zoo.load(str(folder))
    message = str(caught.value)
    assert 'has no "model_type"' in message and 'add "model_type": "bert" to config.json' in message
    assert message.endswith(".") and "\n" not in message


def test_folder_without_vocabulary_is_refused(tmp_path, tiny_tokenizer):
    folder = hub_layout_folder(tmp_path / "no-vocab", vocabulary(tiny_tokenizer))
    (folder / "vocab.txt").unlink()
    with pytest.raises(ValueError, match=r"^The tokenizer of .* beyond its 5 special tokens; .*\(vocab.txt or "
                                         r"tokenizer.json\)\.$"):
        zoo.load(str(folder))


@pytest.mark.parametrize("weights", ["pytorch_model.bin", "model.safetensors"])
def test_damaged_weights_are_refused_in_one_sentence(weights, tmp_path, tiny_tokenizer):
    folder = hub_layout_folder(tmp_path / "damaged", vocabulary(tiny_tokenizer))
    (folder / "pytorch_model.bin").unlink()
    (folder / weights).write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match=r"^The weights of .* cannot be read: the file is damaged .* again\.$"):
        zoo.load(str(folder))
    (folder / weights).unlink()
    with pytest.raises(ValueError, match=r"^Could not load .*: .*no file named model.safetensors.*\.$"):
        zoo.load(str(folder))


def test_folder_without_config_is_refused(tmp_path):
    (tmp_path / "vocab.txt").write_text("[PAD]\n", encoding="utf-8")
    with pytest.raises(ValueError, match="has no config.json; a model folder holds config.json"):
        zoo.load(str(tmp_path))


@pytest.mark.parametrize("raw, expected", [
    ("Couldn't instantiate the backend tokenizer from one of: \n(1) a file, \n(2) a slow tokenizer.",
     "Couldn't instantiate the backend tokenizer from one of: (1) a file, (2) a slow tokenizer."),
    ("Something failed:\n", "Something failed."),
    ("No such file", "No such file."),
    ("First sentence is here. " + "word " * 80, "First sentence is here."),
])
def test_library_errors_are_quoted_as_whole_sentences(raw, expected):
    assert error_sentence(ValueError(raw), limit=120) == expected


def test_long_library_error_without_sentence_end_is_cut_at_a_word():
    quoted = error_sentence(OSError("x" * 10 + " word" * 100), limit=60)
    assert quoted.endswith(" …") and len(quoted) <= 62 and "wo …" not in quoted


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_saved_weights_are_as_readable_as_the_config_beside_them(tmp_path, umask):
    from core.saving import save_model
    model = BertForMaskedLM(BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                       intermediate_size=32))
    before = os.umask(umask)
    try:
        save_model(model, tmp_path / "model")
    finally:
        os.umask(before)
    assert (tmp_path / "model" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask

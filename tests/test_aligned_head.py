"""The padded vocabulary product computes the plain head's logits and gradients and leaves the model as it was."""
from __future__ import annotations

import pytest
import torch
from transformers import AutoModelForMaskedLM, DistilBertConfig

from core.models.aligned_head import PaddedVocabLinear, pad_vocab_product
from tests.support.models import tiny_bert


def odd_distilbert(vocab: int = 1001):
    config = DistilBertConfig(vocab_size=vocab, dim=32, hidden_dim=64, n_layers=1, n_heads=2,
                              max_position_embeddings=64)
    torch.manual_seed(0)
    return AutoModelForMaskedLM.from_config(config)


@pytest.mark.parametrize("make", [odd_distilbert, lambda: tiny_bert(vocab_size=1001)])
def test_padded_product_gives_the_same_logits_and_gradients(make):
    plain, padded = make().eval(), make().eval()  # no dropout: both see the same function
    padded.load_state_dict(plain.state_dict())
    pad_vocab_product(padded)
    assert isinstance(padded.get_output_embeddings(), PaddedVocabLinear)
    ids = torch.randint(5, 1001, (3, 9))
    want, got = plain(input_ids=ids).logits, padded(input_ids=ids).logits
    assert got.shape == want.shape == (3, 9, 1001)
    assert torch.allclose(got, want, atol=1e-5)
    (want.float() ** 2).mean().backward()
    (got.float() ** 2).mean().backward()
    for (name, a), (_, b) in zip(plain.named_parameters(), padded.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name


def test_weights_stay_tied_and_saved_files_load_as_before(tmp_path):
    model = pad_vocab_product(odd_distilbert())
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    keys = set(odd_distilbert().state_dict())
    assert set(model.state_dict()) == keys
    model.save_pretrained(tmp_path)
    again = AutoModelForMaskedLM.from_pretrained(tmp_path)
    assert type(again.get_output_embeddings()) is torch.nn.Linear
    ids = torch.randint(5, 1001, (2, 7))
    model.eval()
    assert torch.allclose(again(input_ids=ids).logits, model(input_ids=ids).logits, atol=1e-5)


def test_a_vocabulary_already_a_multiple_of_64_is_left_alone():
    model = pad_vocab_product(odd_distilbert(vocab=1024))
    assert type(model.get_output_embeddings()) is torch.nn.Linear

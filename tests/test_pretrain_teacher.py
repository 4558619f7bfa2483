"""train.pretrain_teacher's loss runs the vocabulary head at masked positions only and equals the library's."""
from __future__ import annotations

import pytest
import torch

from tests.support.models import tiny_bert
from train.pretrain_teacher import masked_lm_loss

pytestmark = pytest.mark.unit


def test_masked_only_head_gives_the_library_loss_and_gradients():
    model, reference = tiny_bert(vocab_size=300), tiny_bert(vocab_size=300)
    ids = torch.randint(5, 300, (3, 12))
    labels = torch.full((3, 12), -100)
    labels[0, 2], labels[1, 7], labels[2, 0], labels[2, 11] = 17, 250, 5, 99
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    ours, theirs = masked_lm_loss(model, batch), reference(**batch).loss
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-6)
    ours.backward()
    theirs.backward()
    for (name, a), (_, b) in zip(model.named_parameters(), reference.named_parameters()):
        assert torch.allclose(a.grad, b.grad, atol=1e-6), name

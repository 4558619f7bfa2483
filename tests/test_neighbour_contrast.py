"""train.neighbour_contrast: pairs of nearby corpus lines and the SimCSE InfoNCE loss on them; the mean pooling
they are compared by."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from train import neighbour_contrast


def test_each_neighbour_is_another_line_within_the_window_and_inside_the_corpus():
    count, window = 50, 3
    anchors = list(range(count)) * 20
    near = neighbour_contrast.neighbours(anchors, count, window, torch.Generator().manual_seed(0))
    assert all(0 <= n < count and n != a and abs(n - a) <= window for a, n in zip(anchors, near))
    assert {n - a for a, n in zip(anchors, near)} == {-3, -2, -1, 1, 2, 3}  # both sides, every distance


def test_pairs_follow_from_the_generator_and_a_window_wider_than_the_corpus_still_pairs_two_lines():
    same = [neighbour_contrast.neighbours([5, 9, 0], 10, 4, torch.Generator().manual_seed(7)) for _ in range(2)]
    assert same[0] == same[1]
    assert neighbour_contrast.neighbours([0, 1] * 10, 2, 50, torch.Generator().manual_seed(1)) == [1, 0] * 10


@pytest.mark.parametrize("count, window", [(1, 3), (10, 0)])
def test_too_few_lines_or_no_window_is_refused(count, window):
    with pytest.raises(ValueError, match="at least 2 lines and a window of 1 or more"):
        neighbour_contrast.neighbours([0], count, window, torch.Generator())


def test_a_neighbour_is_cut_to_its_anchors_length_keeping_its_last_token():
    assert neighbour_contrast.cut_to([101, 7, 8, 9, 10, 102], 4) == [101, 7, 8, 102]
    assert neighbour_contrast.cut_to([101, 7, 102], 8) == [101, 7, 102]
    assert neighbour_contrast.cut_to([101, 7, 8, 9, 102], 1) == [101, 7, 102]


def test_info_nce_is_the_symmetric_cross_entropy_of_scaled_cosines():
    torch.manual_seed(0)
    a, b = torch.randn(5, 16), torch.randn(5, 16)
    cos = F.cosine_similarity(a[:, None], b[None], dim=-1) / 0.05  # (5, 5)
    rows = -torch.log_softmax(cos, dim=1).diagonal().mean()
    columns = -torch.log_softmax(cos, dim=0).diagonal().mean()
    assert neighbour_contrast.info_nce(a, b).item() == pytest.approx(((rows + columns) / 2).item(), rel=1e-5)
    same = torch.ones(6, 16)
    assert neighbour_contrast.info_nce(same, same).item() == pytest.approx(math.log(6), rel=1e-5)
    assert neighbour_contrast.info_nce(a, a).item() < 0.01  # each row its own closest


def test_mean_pooling_averages_the_real_tokens_only():
    from core.compare.embed import mean_pool

    hidden = torch.arange(12.0).reshape(1, 4, 3).repeat(2, 1, 1)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    pooled = mean_pool(hidden, mask)
    assert torch.equal(pooled, torch.stack([hidden[0, :2].mean(0), hidden[1].mean(0)]))

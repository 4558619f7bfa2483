"""Each distillation loss against a plain, independent computation written with loops, padding included."""
import math

import pytest
import torch

from core.distill.losses import (
    LossWeights,
    attention_mse_loss,
    cosine_hidden_loss,
    distillation_loss,
    kl_loss,
    mlm_loss,
)

torch.manual_seed(0)
BS, SEQ, VOCAB, DIM, HEADS = 3, 6, 11, 8, 2
MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]])  # rows 2 and 3 are padded


def real_positions():
    return [(b, s) for b in range(BS) for s in range(SEQ) if MASK[b, s]]


def plain_kl(student, teacher, positions, T):
    total = 0.0
    for b, s in positions:
        p_t = [math.exp(x / T) for x in teacher[b, s].tolist()]
        p_s = [math.exp(x / T) for x in student[b, s].tolist()]
        z_t, z_s = sum(p_t), sum(p_s)
        total += sum((pt / z_t) * (math.log(pt / z_t) - math.log(ps / z_s)) for pt, ps in zip(p_t, p_s))
    return total / len(positions) * T * T


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.5])
def test_kl_matches_plain_computation_over_real_tokens(temperature):
    student, teacher = torch.randn(BS, SEQ, VOCAB), torch.randn(BS, SEQ, VOCAB)
    got = kl_loss(student, teacher, MASK.bool(), temperature)
    assert got.item() == pytest.approx(plain_kl(student, teacher, real_positions(), temperature), rel=1e-5)


def test_kl_ignores_padding_values():
    student, teacher = torch.randn(BS, SEQ, VOCAB), torch.randn(BS, SEQ, VOCAB)
    before = kl_loss(student, teacher, MASK.bool(), 2.0)
    student[~MASK.bool()] = 100.0  # garbage in padded positions must change nothing
    assert kl_loss(student, teacher, MASK.bool(), 2.0).item() == pytest.approx(before.item(), rel=1e-6)


def test_kl_masked_only_uses_only_masked_positions():
    student, teacher = torch.randn(BS, SEQ, VOCAB), torch.randn(BS, SEQ, VOCAB)
    labels = torch.full((BS, SEQ), -100)
    labels[0, 2], labels[1, 3] = 4, 7
    weights = LossWeights(alpha_kl=1, alpha_mlm=0, alpha_cos=0, temperature=2.0, kl_masked_only=True)
    out = distillation_loss(type("O", (), {"logits": student})(), type("O", (), {"logits": teacher})(), MASK, labels,
                            weights, [])
    assert out["loss_kl"].item() == pytest.approx(plain_kl(student, teacher, [(0, 2), (1, 3)], 2.0), rel=1e-5)


def test_kl_is_zero_for_identical_logits_and_positive_otherwise():
    logits = torch.randn(BS, SEQ, VOCAB)
    assert kl_loss(logits, logits.clone(), MASK.bool(), 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_loss(logits, torch.randn(BS, SEQ, VOCAB), MASK.bool(), 2.0).item() > 0


def test_mlm_matches_plain_cross_entropy():
    logits = torch.randn(BS, SEQ, VOCAB)
    labels = torch.full((BS, SEQ), -100)
    labels[0, 1], labels[1, 2], labels[2, 0] = 3, 5, 9
    expected = 0.0
    for b, s in [(0, 1), (1, 2), (2, 0)]:
        row = logits[b, s].tolist()
        expected += -(row[labels[b, s]] - math.log(sum(math.exp(x) for x in row)))
    assert mlm_loss(logits, labels).item() == pytest.approx(expected / 3, rel=1e-5)


def test_cosine_matches_plain_computation_with_layer_groups():
    teacher = tuple(torch.randn(BS, SEQ, DIM) for _ in range(5))  # embeddings + 4 layers
    student = tuple(torch.randn(BS, SEQ, DIM) for _ in range(3))  # embeddings + 2 layers
    groups = [[1, 2], [3, 4]]
    expected = 0.0
    for i, group in enumerate(groups, start=1):
        layer_total = 0.0
        for b, s in real_positions():
            t = [(teacher[group[0]][b, s, d] + teacher[group[1]][b, s, d]).item() / 2 for d in range(DIM)]
            v = student[i][b, s].tolist()
            dot = sum(x * y for x, y in zip(v, t))
            layer_total += 1 - dot / (math.sqrt(sum(x * x for x in v)) * math.sqrt(sum(y * y for y in t)))
        expected += layer_total / len(real_positions())
    got = cosine_hidden_loss(student, teacher, MASK, groups)
    assert got.item() == pytest.approx(expected / len(groups), rel=1e-5)


def test_cosine_equals_torch_cosine_embedding_loss():
    teacher = tuple(torch.randn(BS, SEQ, DIM) for _ in range(3))
    student = tuple(torch.randn(BS, SEQ, DIM) for _ in range(2))
    real = MASK.bool()
    reference = torch.nn.CosineEmbeddingLoss()(student[1][real], ((teacher[1] + teacher[2]) / 2)[real],
                                               torch.ones(int(real.sum())))
    assert cosine_hidden_loss(student, teacher, MASK, [[1, 2]]).item() == pytest.approx(reference.item(), rel=1e-5)


def test_attention_mse_matches_plain_computation():
    teacher = tuple(torch.softmax(torch.randn(BS, HEADS, SEQ, SEQ), -1) for _ in range(4))
    student = tuple(torch.softmax(torch.randn(BS, HEADS, SEQ, SEQ), -1) for _ in range(2))
    groups = [[1, 2], [3, 4]]
    expected = 0.0
    for i, group in enumerate(groups):
        total, count = 0.0, 0
        for b in range(BS):
            for h in range(HEADS):
                for q in range(SEQ):
                    for k in range(SEQ):
                        if MASK[b, q] and MASK[b, k]:
                            t = (teacher[group[0] - 1][b, h, q, k] + teacher[group[1] - 1][b, h, q, k]).item() / 2
                            total += (student[i][b, h, q, k].item() - t) ** 2
                            count += 1
        expected += total / count
    got = attention_mse_loss(student, teacher, MASK, groups)
    assert got.item() == pytest.approx(expected / 2, rel=1e-5)


def test_weighted_sum_and_gradients():
    class Out:
        def __init__(self, logits, hidden):
            self.logits, self.hidden_states, self.attentions = logits, hidden, None

    student_logits = torch.randn(BS, SEQ, VOCAB, requires_grad=True)
    student_hidden = tuple(torch.randn(BS, SEQ, DIM, requires_grad=True) for _ in range(2))
    teacher = Out(torch.randn(BS, SEQ, VOCAB), tuple(torch.randn(BS, SEQ, DIM) for _ in range(3)))
    labels = torch.full((BS, SEQ), -100)
    labels[0, 0] = 2
    weights = LossWeights(alpha_kl=5.0, alpha_mlm=2.0, alpha_cos=1.0, temperature=2.0)
    parts = distillation_loss(Out(student_logits, student_hidden), teacher, MASK, labels, weights, [[1, 2]])
    combined = 5.0 * parts["loss_kl"] + 2.0 * parts["loss_mlm"] + 1.0 * parts["loss_cos"]
    assert parts["loss"].item() == pytest.approx(combined.item(), rel=1e-6)
    assert parts["loss_att"].item() == 0.0
    parts["loss"].backward()
    assert student_logits.grad.abs().sum() > 0 and student_hidden[1].grad.abs().sum() > 0
    assert student_logits.grad[~MASK.bool()].abs().sum() == 0  # padding receives no gradient


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=0.0), "temperature"),
    (dict(temperature=-1.0), "temperature"),
    (dict(alpha_kl=0, alpha_mlm=0, alpha_cos=0, alpha_att=0), "At least one"),
    (dict(alpha_kl=-1.0), "negative"),
])
def test_bad_weights_are_refused_with_a_sentence(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LossWeights(**kwargs).check()

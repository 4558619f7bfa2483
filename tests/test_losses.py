"""Each distillation loss against a plain, independent computation written with loops, padding included."""
import math

import pytest
import torch

from core.distill.losses import (
    LOSS_PARTS,
    LossWeights,
    attention_mse_loss,
    cosine_hidden_loss,
    distillation_loss,
    hidden_mse_loss,
    kl_loss,
    mlm_loss,
    softened_kl,
    total_loss,
)

torch.manual_seed(0)
BS, SEQ, VOCAB, DIM, HEADS = 3, 6, 11, 8, 2
MASK = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0]])  # rows 2 and 3 are padded


def real_positions():
    return [(b, s) for b in range(BS) for s in range(SEQ) if MASK[b, s]]


def plain_kl(student, teacher_logits, positions, T):
    total = 0.0
    for b, s in positions:
        p_t = [math.exp(x / T) for x in teacher_logits[b, s].tolist()]
        p_s = [math.exp(x / T) for x in student[b, s].tolist()]
        z_t, z_s = sum(p_t), sum(p_s)
        total += sum((pt / z_t) * (math.log(pt / z_t) - math.log(ps / z_s)) for pt, ps in zip(p_t, p_s))
    return total / len(positions) * T * T


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.5])
def test_kl_matches_plain_computation_over_real_tokens(temperature):
    student, teacher_logits = torch.randn(BS, SEQ, VOCAB), torch.randn(BS, SEQ, VOCAB)
    got = kl_loss(student, teacher_logits, MASK.bool(), temperature)
    assert got.item() == pytest.approx(plain_kl(student, teacher_logits, real_positions(), temperature), rel=1e-5)


def test_kl_ignores_padding_values():
    student, teacher_logits = torch.randn(BS, SEQ, VOCAB), torch.randn(BS, SEQ, VOCAB)
    before = kl_loss(student, teacher_logits, MASK.bool(), 2.0)
    student[~MASK.bool()] = 100.0  # garbage in padded positions must change nothing
    assert kl_loss(student, teacher_logits, MASK.bool(), 2.0).item() == pytest.approx(before.item(), rel=1e-6)


def test_kl_masked_only_uses_only_masked_positions():
    student, teacher_logits = torch.randn(BS, SEQ, VOCAB), torch.randn(BS, SEQ, VOCAB)
    labels = torch.full((BS, SEQ), -100)
    labels[0, 2], labels[1, 3] = 4, 7
    weights = LossWeights(alpha_kl=1, alpha_mlm=0, alpha_cos=0, temperature=2.0, kl_masked_only=True)
    out = distillation_loss(type("O", (), {"logits": student})(), type("O", (), {"logits": teacher_logits})(), MASK,
                            labels, weights, [])
    assert out["loss_kl"].item() == pytest.approx(plain_kl(student, teacher_logits, [(0, 2), (1, 3)], 2.0), rel=1e-5)


def test_kl_is_zero_for_identical_logits_and_positive_otherwise():
    logits = torch.randn(BS, SEQ, VOCAB)
    assert kl_loss(logits, logits.clone(), MASK.bool(), 2.0).item() == pytest.approx(0.0, abs=1e-6)
    assert kl_loss(logits, torch.randn(BS, SEQ, VOCAB), MASK.bool(), 2.0).item() > 0


@pytest.mark.parametrize("chunk_elements", [1, 2 * VOCAB, 5 * VOCAB, 10**9])
def test_kl_in_row_blocks_equals_the_whole_formula_in_value_and_gradient(chunk_elements):
    student, teacher_logits = torch.randn(BS, SEQ, VOCAB) * 3, torch.randn(BS, SEQ, VOCAB) * 3
    whole_input = student.clone().requires_grad_()
    whole = softened_kl(whole_input[MASK.bool()], teacher_logits[MASK.bool()], 2.0)
    whole.backward()
    blocks_input = student.clone().requires_grad_()
    blocks = kl_loss(blocks_input, teacher_logits, MASK.bool(), 2.0, chunk_elements=chunk_elements)
    (blocks * 3.0).backward()  # a factor from later in the graph reaches the saved gradient
    assert blocks.item() == pytest.approx(whole.item(), rel=1e-5)
    assert torch.allclose(blocks_input.grad, 3.0 * whole_input.grad, atol=1e-6)
    assert blocks_input.grad[~MASK.bool()].abs().max() == 0  # padding gets no gradient


def test_kl_in_16_bit_logits_matches_fp32_and_keeps_the_gradient_16_bit():
    student, teacher_logits = torch.randn(BS, SEQ, VOCAB), torch.randn(BS, SEQ, VOCAB)
    half = student.bfloat16().requires_grad_()
    loss = kl_loss(half, teacher_logits.bfloat16(), MASK.bool(), 2.0, chunk_elements=VOCAB)
    loss.backward()
    exact = kl_loss(half.detach().float(), teacher_logits.bfloat16().float(), MASK.bool(), 2.0)
    assert loss.dtype == torch.float32 and loss.item() == pytest.approx(exact.item(), rel=1e-5)
    assert half.grad.dtype == torch.bfloat16


def test_kl_of_no_position_is_zero_with_a_graph():
    student = torch.randn(BS, SEQ, VOCAB, requires_grad=True)
    loss = kl_loss(student, torch.randn(BS, SEQ, VOCAB), torch.zeros(BS, SEQ, dtype=torch.bool), 2.0)
    loss.backward()
    assert loss.item() == 0 and student.grad.abs().max() == 0


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
    teacher_hidden = tuple(torch.randn(BS, SEQ, DIM) for _ in range(5))  # embeddings + 4 layers
    student = tuple(torch.randn(BS, SEQ, DIM) for _ in range(3))  # embeddings + 2 layers
    groups = [[1, 2], [3, 4]]
    expected = 0.0
    for i, group in enumerate(groups, start=1):
        layer_total = 0.0
        for b, s in real_positions():
            t = [(teacher_hidden[group[0]][b, s, d] + teacher_hidden[group[1]][b, s, d]).item() / 2 for d in range(DIM)]
            v = student[i][b, s].tolist()
            dot = sum(x * y for x, y in zip(v, t))
            layer_total += 1 - dot / (math.sqrt(sum(x * x for x in v)) * math.sqrt(sum(y * y for y in t)))
        expected += layer_total / len(real_positions())
    got = cosine_hidden_loss(student, teacher_hidden, MASK, groups)
    assert got.item() == pytest.approx(expected / len(groups), rel=1e-5)


def test_cosine_equals_torch_cosine_embedding_loss():
    teacher_hidden = tuple(torch.randn(BS, SEQ, DIM) for _ in range(3))
    student = tuple(torch.randn(BS, SEQ, DIM) for _ in range(2))
    real = MASK.bool()
    reference = torch.nn.CosineEmbeddingLoss()(student[1][real], ((teacher_hidden[1] + teacher_hidden[2]) / 2)[real],
                                               torch.ones(int(real.sum())))
    got = cosine_hidden_loss(student, teacher_hidden, MASK, [[1, 2]])
    assert got.item() == pytest.approx(reference.item(), rel=1e-5)


def test_attention_mse_matches_plain_computation():
    teacher_maps = tuple(torch.softmax(torch.randn(BS, HEADS, SEQ, SEQ), -1) for _ in range(4))
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
                            pair = [teacher_maps[j - 1][b, h, q, k].item() for j in group]
                            t = sum(pair) / 2
                            total += (student[i][b, h, q, k].item() - t) ** 2
                            count += 1
        expected += total / count
    got = attention_mse_loss(student, teacher_maps, MASK, groups)
    assert got.item() == pytest.approx(expected / 2, rel=1e-5)


def test_weighted_sum_and_gradients():
    class Out:
        def __init__(self, logits, hidden):
            self.logits, self.hidden_states, self.attentions = logits, hidden, None

    student_logits = torch.randn(BS, SEQ, VOCAB, requires_grad=True)
    student_hidden = tuple(torch.randn(BS, SEQ, DIM, requires_grad=True) for _ in range(2))
    teacher_out = Out(torch.randn(BS, SEQ, VOCAB), tuple(torch.randn(BS, SEQ, DIM) for _ in range(3)))
    labels = torch.full((BS, SEQ), -100)
    labels[0, 0] = 2
    weights = LossWeights(alpha_kl=5.0, alpha_mlm=2.0, alpha_cos=1.0, temperature=2.0)
    parts = distillation_loss(Out(student_logits, student_hidden), teacher_out, MASK, labels, weights, [[1, 2]])
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


def test_hidden_mse_matches_plain_computation():
    teacher_hidden = tuple(torch.randn(BS, SEQ, DIM) for _ in range(5))
    student_states = [torch.randn(BS, SEQ, DIM) for _ in range(3)]  # already projected and aligned
    groups = [[1, 2], [3, 4]]
    expected = 0.0
    for i, group in enumerate(groups, start=1):
        total, count = 0.0, 0
        for b, s in real_positions():
            for d in range(DIM):
                target = (teacher_hidden[group[0]][b, s, d] + teacher_hidden[group[1]][b, s, d]).item() / 2
                total += (student_states[i][b, s, d].item() - target) ** 2
                count += 1
        expected += total / count
    got = hidden_mse_loss(student_states, teacher_hidden, MASK.bool(), groups)
    assert got.item() == pytest.approx(expected / 2, rel=1e-5)


def test_total_loss_is_the_one_formula_over_every_part():
    weights = LossWeights(alpha_kl=5.0, alpha_mlm=2.0, alpha_cos=1.5, alpha_att=0.5, alpha_hidden_mse=3.0)
    parts = {name: torch.tensor(float(i + 1)) for i, name in enumerate(LOSS_PARTS)}  # 1, 2, 3, 4, 5
    assert total_loss(parts, weights).item() == pytest.approx(5 * 1 + 2 * 2 + 1.5 * 3 + 0.5 * 4 + 3 * 5)
    del parts["loss_hidden_mse"]  # a part a recipe does not compute counts as 0
    assert total_loss(parts, weights).item() == pytest.approx(5 * 1 + 2 * 2 + 1.5 * 3 + 0.5 * 4)


def test_a_reduced_student_needs_an_alpha_that_applies_to_it():
    weights = LossWeights(alpha_kl=0, alpha_mlm=0, alpha_cos=1, alpha_hidden_mse=0)
    weights.check()  # the cosine term applies to a same-vocabulary student
    with pytest.raises(ValueError, match="At least one"):
        weights.check(reduced_vocab=True)

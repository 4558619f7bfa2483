"""Logits only where a loss reads them: the same losses and gradients as the whole models' logits, for every recipe
that decides which positions are read, and the model as it was after the block."""
import pytest
import torch

from core.distill.data import tokenize_lines
from core.distill.losses import LossWeights, logit_positions
from core.distill.recipes import SameVocabRecipe
from core.models.masked_lm import logits_only_at
from core.models.student import StudentSpec, layer_groups, make_student
from tests.support.models import corpus_lines, tiny_bert


@pytest.fixture(scope="module")
def pair(tiny_tokenizer):
    teacher = tiny_bert(len(tiny_tokenizer))
    return teacher, make_student(teacher, StudentSpec(num_layers=2, model_type="distilbert")).eval()


@pytest.mark.parametrize("which", ["teacher", "student"])  # BERT's head and DistilBERT's
def test_the_logits_are_the_whole_models_at_the_selected_positions(pair, which):
    model = pair[0] if which == "teacher" else pair[1]
    input_ids = torch.randint(5, model.config.vocab_size, (3, 9), generator=torch.Generator().manual_seed(0))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 6:] = 0
    select = torch.rand(3, 9, generator=torch.Generator().manual_seed(1)) < 0.3
    with torch.no_grad():
        whole = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        with logits_only_at(model, select):
            rows = model(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
        after = model(input_ids=input_ids, attention_mask=attention_mask)
    assert rows.logits.shape == (int(select.sum()), model.config.vocab_size)
    torch.testing.assert_close(rows.logits, whole.logits[select], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rows.hidden_states[-1], whole.hidden_states[-1])
    assert after.logits.shape == whole.logits.shape  # the hook is gone after the block


def test_a_selection_of_another_shape_is_refused_and_the_hook_removed(pair):
    teacher = pair[0]
    input_ids = torch.full((2, 5), 7)
    with pytest.raises(ValueError, match="selected for"), torch.no_grad(), \
            logits_only_at(teacher, torch.ones(2, 6, dtype=torch.bool)):
        teacher(input_ids=input_ids)
    with torch.no_grad():
        assert teacher(input_ids=input_ids).logits.shape == (2, 5, teacher.config.vocab_size)


WEIGHTS = {
    "KL at masked positions, T 1": LossWeights(alpha_kl=5, alpha_mlm=0.5, alpha_cos=1, temperature=1,
                                               kl_masked_only=True),
    "KL everywhere, T 2 (the card's)": LossWeights(temperature=2.0),
    "MLM only": LossWeights(alpha_kl=0, alpha_mlm=1, alpha_cos=0),
    "KL at masked positions, no MLM": LossWeights(alpha_kl=1, alpha_mlm=0, alpha_cos=0, kl_masked_only=True),
}


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_a_step_gives_the_same_losses_and_gradients_either_way(name, tiny_tokenizer):
    weights = WEIGHTS[name]
    teacher = tiny_bert(len(tiny_tokenizer))
    corpus = tokenize_lines(corpus_lines(40), tiny_tokenizer, 128)  # lines of many lengths: padding too
    results = []
    for where_read in (False, True):
        student = make_student(teacher, StudentSpec(num_layers=2, model_type="distilbert")).train()
        recipe = SameVocabRecipe(teacher, tiny_tokenizer, student, weights, layer_groups(4, 2), corpus,
                                 logits_where_read=where_read)
        batch = recipe.build_batch(list(range(16)), torch.Generator().manual_seed(3))
        torch.manual_seed(4)  # the same dropout masks in both
        parts = recipe.losses(student, teacher, batch)
        parts["loss"].backward()
        results.append((parts, {n: p.grad for n, p in student.named_parameters() if p.grad is not None}))
    (whole, whole_grads), (rows, rows_grads) = results
    read = logit_positions(batch["attention_mask"], batch["labels"], weights)
    assert 0 < int(read.sum()) < batch["attention_mask"].numel()  # some logits were left out
    for part in whole:
        torch.testing.assert_close(rows[part], whole[part], rtol=1e-5, atol=1e-6)
    assert rows_grads.keys() == whole_grads.keys()
    for n in whole_grads:
        torch.testing.assert_close(rows_grads[n], whole_grads[n], rtol=1e-4, atol=1e-6)


def test_the_read_positions_follow_the_weights():
    attention_mask = torch.tensor([[1, 1, 1, 1, 0]])
    labels = torch.tensor([[-100, 9, -100, -100, -100]])
    masked, real = labels != -100, attention_mask.bool()
    assert torch.equal(logit_positions(attention_mask, labels, LossWeights(kl_masked_only=True)), masked)
    assert torch.equal(logit_positions(attention_mask, labels, LossWeights()), real)
    assert torch.equal(logit_positions(attention_mask, labels, LossWeights(alpha_kl=0)), masked)
    assert not logit_positions(attention_mask, labels, LossWeights(alpha_kl=0, alpha_mlm=0)).any()

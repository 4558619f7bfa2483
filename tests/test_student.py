"""Making students from teachers, across BERT and DistilBERT, and what the loaded models expose."""
import pytest
import torch

from core.models import zoo
from core.models.student import StudentSpec, default_init_layers, layer_groups, make_student
from tests.support.models import tiny_bert

INPUT = torch.randint(5, 200, (2, 9))


def layer_weight(model, index):
    if model.config.model_type == "bert":
        return model.bert.encoder.layer[index].attention.self.query.weight
    return model.distilbert.transformer.layer[index].attention.q_lin.weight


@pytest.mark.parametrize("student_type", ["bert", "distilbert"])
def test_full_depth_copy_computes_the_same_function(student_type):
    tiny_bert_teacher = tiny_bert(300)
    student = make_student(tiny_bert_teacher, StudentSpec(num_layers=4, model_type=student_type)).eval()
    with torch.no_grad():
        a = tiny_bert_teacher(input_ids=INPUT, output_hidden_states=True)
        b = student(input_ids=INPUT, output_hidden_states=True)
    assert torch.allclose(a.logits, b.logits, atol=1e-5)
    assert all(torch.allclose(x, y, atol=1e-5) for x, y in zip(a.hidden_states, b.hidden_states))


def test_distilbert_teacher_to_bert_student_round_trip():
    tiny_bert_teacher = tiny_bert(300)
    distil = make_student(tiny_bert_teacher, StudentSpec(num_layers=4, model_type="distilbert")).eval()
    back = make_student(distil, StudentSpec(num_layers=4, model_type="bert")).eval()
    with torch.no_grad():
        assert torch.allclose(tiny_bert_teacher(input_ids=INPUT).logits, back(input_ids=INPUT).logits, atol=1e-5)


def test_default_student_is_half_depth_from_the_first_and_last_layers():
    tiny_bert_teacher = tiny_bert(300)
    student = make_student(tiny_bert_teacher)
    assert student.config.num_hidden_layers == 2 and student.config.init_layers == [0, 3]
    assert torch.equal(layer_weight(student, 1), layer_weight(tiny_bert_teacher, 3))
    assert torch.equal(student.bert.embeddings.word_embeddings.weight,
                       tiny_bert_teacher.bert.embeddings.word_embeddings.weight)
    assert torch.equal(student.cls.predictions.transform.dense.weight,
                       tiny_bert_teacher.cls.predictions.transform.dense.weight)
    # the decoder stays tied to the embeddings
    decoder, embeddings = student.cls.predictions.decoder, student.bert.embeddings.word_embeddings
    assert decoder.weight.data_ptr() == embeddings.weight.data_ptr()


def test_explicit_initialising_layers():
    tiny_bert_teacher = tiny_bert(300, layers=12, hidden=16)
    student = make_student(tiny_bert_teacher, StudentSpec(num_layers=6, init_layers=[0, 2, 4, 7, 9, 11],
                                                          model_type="distilbert"))
    for new, old in enumerate([0, 2, 4, 7, 9, 11]):
        assert torch.equal(layer_weight(student, new), layer_weight(tiny_bert_teacher, old))


def test_layer_choices_and_groups():
    assert default_init_layers(12, 6) == [0, 2, 4, 7, 9, 11]  # DistilBERT's choice
    assert default_init_layers(4, 2) == [0, 3]
    assert default_init_layers(12, 3) == [0, 6, 11]
    assert layer_groups(12, 6) == [[1, 2], [3, 4], [5, 6], [7, 8], [9, 10], [11, 12]]
    assert layer_groups(12, 2) == [list(range(1, 7)), list(range(7, 13))]
    assert [len(g) for g in layer_groups(12, 5)] == [3, 3, 2, 2, 2]


@pytest.mark.parametrize("teacher_layers", range(2, 25))
def test_default_layers_keep_both_ends_and_sit_in_their_loss_groups(teacher_layers):
    for student_layers in range(2, teacher_layers + 1):
        chosen = default_init_layers(teacher_layers, student_layers)
        assert chosen[0] == 0 and chosen[-1] == teacher_layers - 1
        assert chosen == sorted(set(chosen))
        groups = layer_groups(teacher_layers, student_layers)
        assert all(layer + 1 in group for layer, group in zip(chosen, groups)), (chosen, groups)


@pytest.mark.parametrize("spec, message", [
    (StudentSpec(num_layers=5), "more layers"),
    (StudentSpec(num_layers=2, init_layers=[0]), "one initialising teacher layer"),
    (StudentSpec(num_layers=2, init_layers=[0, 4]), "between 0 and 3"),
    (StudentSpec(num_layers=2, init_layers=[3, 3]), r"name a teacher layer more than once \(\[3, 3\]\); give 2 "),
    (StudentSpec(num_layers=2, init_layers=[3, 1]), r"must go from shallower to deeper teacher layers, as the "
                                                    r"student's layers do: give \[1, 3\] rather than \[3, 1\]\.$"),
    (StudentSpec(num_layers=3, init_layers=[0, 3, 2]), r"give \[0, 2, 3\] rather than \[0, 3, 2\]\.$"),
    (StudentSpec(num_layers=2, model_type="gpt2"), "not supported"),
])
def test_bad_student_specs(spec, message):
    with pytest.raises(ValueError, match=message):
        make_student(tiny_bert(300), spec)


def test_model_summary_counts_tied_weights_once():
    tiny_bert_teacher = tiny_bert(300)
    summary = zoo.model_summary(tiny_bert_teacher)
    decoder = tiny_bert_teacher.cls.predictions.decoder
    embeddings = tiny_bert_teacher.bert.embeddings.word_embeddings
    assert decoder.weight is embeddings.weight  # tied: one tensor, reached by two names
    storages = {p.data_ptr(): p.numel() for _, p in tiny_bert_teacher.named_parameters(remove_duplicate=False)}
    expected = sum(storages.values())  # each stored tensor once, however many names reach it
    assert summary["params"] == expected
    assert summary["size_mb"] == pytest.approx(expected * 4 / 2**20, abs=0.05)


@pytest.mark.slow
def test_real_tiny_architecture_matches_the_published_size():
    loaded = zoo.load("arch:distilrubert-tiny-cased-conversational-v1")
    summary = zoo.model_summary(loaded.model)
    assert summary["params"] / 1e6 == pytest.approx(10.4, abs=0.05)
    base = zoo.model_summary(zoo.load("arch:distilrubert-base-cased-conversational").model)
    assert base["params"] / 1e6 == pytest.approx(135.4, abs=0.05)
    assert base["size_mb"] == pytest.approx(517, abs=1)  # the card's size column: fp32 bytes in MiB


@pytest.mark.parametrize("fixture", ["tiny_teacher_dir", "tiny_student_dir"])
def test_loaded_models_expose_hidden_states_attentions_and_logits(request, fixture):
    path = request.getfixturevalue(fixture)
    loaded = zoo.load(str(path), attentions=True)
    out = loaded.model(**loaded.tokenizer(["Привет, как дела?"], return_tensors="pt"), output_hidden_states=True,
                       output_attentions=True)
    layers = loaded.model.config.num_hidden_layers if fixture == "tiny_teacher_dir" else loaded.model.config.n_layers
    assert len(out.hidden_states) == layers + 1 and len(out.attentions) == layers
    assert out.logits.shape[-1] == len(loaded.tokenizer)
    assert torch.allclose(out.attentions[0].sum(-1), torch.ones(1))

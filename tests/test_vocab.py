"""Reduced vocabularies on hand-made vocabularies: greedy split, shared table, match / reduce, initialisation."""
import pytest
import torch
from transformers import AutoModelForMaskedLM, AutoTokenizer

from core.models.reduced_student import make_reduced_student
from core.models.student import canonical_state
from core.models.tokenizer import BERT_SPECIALS, wordpiece_from_vocab
from core.models.vocab import (
    aligned_positions,
    build_mapping,
    greedy_split,
    reduce_to_teacher_positions,
    student_labels,
    to_student_inputs,
)
from tests.support.models import tiny_bert

TEACHER_TOKENS = BERT_SPECIALS + ["привет", "кот", "кошка", "##ка", "##ки", "мир", "до", "##м", "дом", "!", "##ом"]
STUDENT_TOKENS = BERT_SPECIALS + ["при", "##вет", "кот", "ко", "##ш", "##ка", "##ки", "мир", "до", "##м", "!", "##о"]


@pytest.fixture(scope="module")
def tokenizers():
    return wordpiece_from_vocab(TEACHER_TOKENS), wordpiece_from_vocab(STUDENT_TOKENS)


@pytest.fixture(scope="module")
def mapping(tokenizers):
    return build_mapping(*tokenizers)


def test_greedy_split_longest_match_first():
    vocab = {t: i for i, t in enumerate(STUDENT_TOKENS)}
    assert greedy_split("привет", vocab) == ["при", "##вет"]
    assert greedy_split("кошка", vocab) == ["ко", "##ш", "##ка"]
    assert greedy_split("дом", vocab) == ["до", "##м"]
    assert greedy_split("##ом", vocab) == ["##о", "##м"]  # a continuation stays a continuation
    assert greedy_split("кот", vocab) == ["кот"]
    assert greedy_split("лес", vocab) == ["[UNK]"]


def test_mapping_pieces_specials_and_shared_table(tokenizers, mapping):
    teacher, student = tokenizers
    t, s = teacher.get_vocab(), student.get_vocab()
    for special in BERT_SPECIALS:
        assert mapping.pieces[t[special]] == [s[special]]
    assert mapping.pieces[t["кошка"]] == [s["ко"], s["##ш"], s["##ка"]]
    shared = {teacher.convert_ids_to_tokens(i) for i in mapping.shared_teacher.tolist()}
    assert shared == set(BERT_SPECIALS) | {"кот", "##ка", "##ки", "мир", "до", "##м", "!"}
    assert student.convert_ids_to_tokens(mapping.shared_student.tolist()) == \
        teacher.convert_ids_to_tokens(mapping.shared_teacher.tolist())


def teacher_batch(tokenizer, texts):
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def test_student_inputs_and_owners(tokenizers, mapping):
    teacher, student = tokenizers
    ids, mask = teacher_batch(teacher, ["привет мир !", "кошка"])
    out = to_student_inputs(ids, mask, mapping, student.pad_token_id, max_length=64)
    assert student.convert_ids_to_tokens(out["student_input_ids"][0].tolist()) == \
        ["[CLS]", "при", "##вет", "мир", "!", "[SEP]"]
    assert out["owner"][0].tolist() == [0, 1, 1, 2, 3, 4]
    assert out["owner"][1].tolist() == [0, 1, 1, 1, 2, -1]
    assert out["student_attention_mask"][1].tolist() == [1, 1, 1, 1, 1, 0]
    assert out["covered"].tolist() == [[True] * 5, [True, True, True, False, False]]


def test_cut_rows_never_keep_part_of_a_token(tokenizers, mapping):
    teacher, student = tokenizers
    ids, mask = teacher_batch(teacher, ["мир кошка"])
    out = to_student_inputs(ids, mask, mapping, student.pad_token_id, max_length=4)
    assert out["owner"][0].tolist() == [0, 1]  # [CLS] мир; the three pieces of кошка would not fit
    assert out["covered"][0].tolist() == [True, True, False, False]


@pytest.mark.parametrize("op", ["sum", "mean"])
def test_reduce_equals_an_explicit_loop(op):
    values = torch.randn(2, 6, 5)
    owner = torch.tensor([[0, 1, 1, 2, 3, 4], [0, 1, 1, 1, 2, -1]])
    got = reduce_to_teacher_positions(values, owner, teacher_len=5, op=op)
    for b in range(2):
        for t in range(5):
            pieces = [values[b, s] for s in range(6) if owner[b, s] == t]
            expected = torch.stack(pieces).sum(0) if pieces else torch.zeros(5)
            if op == "mean" and pieces:
                expected = expected / len(pieces)
            assert torch.allclose(got[b, t], expected, atol=1e-6)


def test_match_selects_exactly_the_single_piece_positions(tokenizers, mapping):
    teacher, _ = tokenizers
    ids, mask = teacher_batch(teacher, ["привет кот дом", "мир"])
    match = aligned_positions(ids, mask, mapping, "match-pieces")
    # [CLS] привет кот дом [SEP] / [CLS] мир [SEP] pad pad: привет and дом split, so they are left out
    assert match.tolist() == [[True, False, True, False, True], [True, True, True, False, False]]
    assert aligned_positions(ids, mask, mapping, "reduce-shared").tolist() == mask.bool().tolist()


def test_labels_move_to_the_student_vocabulary(tokenizers, mapping):
    teacher, student = tokenizers
    labels = torch.tensor([[-100, teacher.convert_tokens_to_ids("кот"), teacher.convert_tokens_to_ids("кошка")]])
    assert student_labels(labels, mapping).tolist() == [[-100, student.convert_tokens_to_ids("кот"), -100]]


def test_reduced_student_initialisation(tokenizers, mapping):
    teacher_tok, student_tok = tokenizers
    teacher = tiny_bert(len(teacher_tok), layers=4, hidden=32)
    student = make_reduced_student(teacher, teacher_tok, student_tok, mapping, layers=2, hidden_size=16,
                                   model_type="distilbert")
    assert student.config.dim == 16 and student.config.n_layers == 2 and student.config.vocab_size == len(student_tok)
    t_emb = teacher.bert.embeddings.word_embeddings.weight
    s_emb = student.distilbert.embeddings.word_embeddings.weight
    t, s = teacher_tok.get_vocab(), student_tok.get_vocab()
    # "##ка" is reached from teacher "кошка" and "##ка": the mean of both rows, sliced to 16 dimensions
    assert torch.allclose(s_emb[s["##ка"]], (t_emb[t["кошка"]] + t_emb[t["##ка"]])[:16] / 2, atol=1e-6)
    # layer 1 of the student averages teacher layers 3 and 4; rows of each head are sliced per head
    canon = canonical_state(teacher)
    mean_ffn = (canon["layers.2.ffn_in.weight"] + canon["layers.3.ffn_in.weight"]) / 2
    assert torch.allclose(student.distilbert.transformer.layer[1].ffn.lin1.weight, mean_ffn[:32, :16])
    mean_q = (canon["layers.2.q.weight"] + canon["layers.3.q.weight"]) / 2  # 4 heads of 8 -> 4 heads of 4
    rows = torch.cat([torch.arange(h * 8, h * 8 + 4) for h in range(4)])
    assert torch.allclose(student.distilbert.transformer.layer[1].attention.q_lin.weight, mean_q[rows][:, :16])


@pytest.mark.parametrize("align", ["match", "reduce", "match-pieces", "reduce-shared"])
def test_reduced_step_trains_every_part(align, tmp_path, tiny_teacher_dir, tiny_corpus):
    from core.distill.data import step_generator
    from train.config import DistillConfig
    from train.setup import prepare
    cfg = DistillConfig(teacher=str(tiny_teacher_dir), corpus=str(tiny_corpus), student_layers=2,
                        student_vocab_size=300, student_hidden=16, align=align, batch_size=4, max_length=32)
    cfg.check()
    recipe = prepare(cfg, tmp_path / "run", resume=False, verbose=False).recipe
    trainable = recipe.trainable()
    batch = recipe.build_batch([0, 1, 2, 3], step_generator(0, 0))
    parts = recipe.losses(trainable, recipe.teacher, batch)
    assert all(parts[name] > 0 for name in ("loss_kl", "loss_mlm", "loss_hidden_mse")), parts
    parts["loss"].backward()
    missing = [n for n, p in trainable.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing  # embeddings, every layer, the MLM head and the projection all learn


@pytest.mark.cli
def test_reduced_run_saves_a_loadable_student(tmp_path, tiny_teacher_dir, tiny_corpus):
    # the command line writes a student that loads with its own, smaller tokenizer
    from tests.support.cli import SHORT, run_cli
    out = tmp_path / "cli"
    result = run_cli("--teacher", tiny_teacher_dir, "--corpus", tiny_corpus, "--student-vocab-size", 300,
                     "--student-hidden", 16, "--align", "match", "--max-steps", 4, "--output-dir", out, *SHORT)
    assert result.returncode == 0, result.stderr
    model, tokenizer = AutoModelForMaskedLM.from_pretrained(out / "final"), AutoTokenizer.from_pretrained(out / "final")
    assert len(tokenizer) <= 300 and model.config.vocab_size == len(tokenizer)
    assert model(**tokenizer(["Привет, как дела?"], return_tensors="pt")).logits.shape[-1] == len(tokenizer)

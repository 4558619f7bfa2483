"""The four logit alignments of reduced-vocabulary students, each against a hand-worked example.

match and reduce follow the authors' code (ayeffkay/rubert-tiny: preprocessing/find_matching_ids.py and
custom_step.py's reduce_seq / map_seq); match-pieces and reduce-shared are the lab's variants.
"""
import math
from types import SimpleNamespace

import pytest
import torch

from core.distill.data import tokenize_parallel
from core.distill.losses import LossWeights
from core.distill.recipes import ReducedVocabRecipe
from core.models.tokenizer import BERT_SPECIALS, wordpiece_from_vocab
from core.models.vocab import VocabMapping, build_mapping, match_partners, piece_matrix, to_teacher_vocab

TEACHER_TOKENS = BERT_SPECIALS + ["привет", "кот", "мир", "дом"]
STUDENT_TOKENS = BERT_SPECIALS + ["при", "##вет", "кот", "мир", "до", "##м"]
T = 2.0


def test_match_pairs_equal_strings_in_order():
    teacher = ["[CLS]", "привет", "кот", "дом", "[SEP]"]
    student = ["[CLS]", "при", "##вет", "кот", "до", "##м", "[SEP]"]
    assert match_partners(teacher, student) == [0, -1, 3, -1, 6]
    # the scan never goes back: after "b" is paired with student position 2, the second "a" has no partner left
    assert match_partners(["a", "b", "a"], ["a", "a", "b"]) == [0, 2, -1]


def test_reduce_maps_onto_the_teacher_vocabulary_by_summing_pieces():
    # teacher token 0 = piece 0; teacher token 1 = pieces 1 and 2; teacher token 2 = piece 1 twice
    mapping = VocabMapping([[0], [1, 2], [1, 1]], torch.tensor([0]), torch.tensor([0]), torch.tensor([0, -1, -1]))
    logits = torch.tensor([[[1.0, 2.0, 4.0]]])  # (bs 1, t 1, Vs 3)
    mapped = to_teacher_vocab(logits, piece_matrix(mapping, 3))
    assert mapped.tolist() == [[[1.0, 6.0, 4.0]]]


def plain_kl(student_row, teacher_row):
    p_t = [math.exp(x / T) for x in teacher_row]
    p_s = [math.exp(x / T) for x in student_row]
    z_t, z_s = sum(p_t), sum(p_s)
    return sum(pt / z_t * (math.log(pt / z_t) - math.log(ps / z_s)) for pt, ps in zip(p_t, p_s)) * T * T


@pytest.fixture(scope="module")
def setting():
    teacher_tok, student_tok = wordpiece_from_vocab(TEACHER_TOKENS), wordpiece_from_vocab(STUDENT_TOKENS)
    generator = torch.Generator().manual_seed(3)
    student_table = torch.randn(len(student_tok), len(student_tok), generator=generator)  # logits of each input id
    teacher_table = torch.randn(len(teacher_tok), len(teacher_tok), generator=generator)
    return teacher_tok, student_tok, student_table, teacher_table


def recipe_for(align, setting):
    teacher_tok, student_tok, student_table, teacher_table = setting

    def student(runs, hidden):
        return [SimpleNamespace(logits=student_table[run["input_ids"]], projected=None) for run in runs]

    def teacher(input_ids, attention_mask, output_hidden_states=False):
        return SimpleNamespace(logits=teacher_table[input_ids], hidden_states=None)

    train, own = tokenize_parallel(["привет мир"], teacher_tok, student_tok, 16)
    weights = LossWeights(alpha_kl=1, alpha_mlm=0, alpha_cos=0, alpha_hidden_mse=0, temperature=T)
    recipe = ReducedVocabRecipe(teacher, teacher_tok, SimpleNamespace(config=SimpleNamespace(
        max_position_embeddings=64)), weights, [], train, reduced_tokenizer=student_tok,
        mapping=build_mapping(teacher_tok, student_tok), align=align, student_train=own)
    batch = recipe.build_batch([0], torch.Generator().manual_seed(0))
    return recipe, student, teacher, batch


def ids(tokenizer, tokens):
    return tokenizer.convert_tokens_to_ids(tokens)


def test_authors_reduce_kl_by_hand(setting):
    teacher_tok, student_tok, student_table, teacher_table = setting
    recipe, student, teacher, batch = recipe_for("reduce", setting)
    got = recipe.losses(student, teacher, batch)["loss_kl"].item()
    # [CLS] привет мир [SEP]: привет is the pieces при ##вет; the student reads the unmasked pieces
    pieces = [["[CLS]"], ["при", "##вет"], ["мир"], ["[SEP]"]]
    splits = {t: ([t] if t in BERT_SPECIALS else {"привет": ["при", "##вет"], "кот": ["кот"], "мир": ["мир"],
                                                  "дом": ["до", "##м"]}[t]) for t in TEACHER_TOKENS}
    expected = 0.0
    for teacher_token, own_pieces in zip(["[CLS]", "привет", "мир", "[SEP]"], pieces):
        reduced = sum(student_table[i] for i in ids(student_tok, own_pieces))  # (Vs,) piece sum
        mapped = [sum(reduced[i].item() for i in ids(student_tok, splits[v])) for v in TEACHER_TOKENS]
        expected += plain_kl(mapped, teacher_table[ids(teacher_tok, [teacher_token])[0]].tolist())
    assert got == pytest.approx(expected / 4, rel=1e-5)


def test_authors_match_kl_by_hand(setting):
    teacher_tok, student_tok, student_table, teacher_table = setting
    recipe, student, teacher, batch = recipe_for("match", setting)
    got = recipe.losses(student, teacher, batch)["loss_kl"].item()
    # the student's own tokens: [CLS] при ##вет мир [SEP]; pairs [CLS]-[CLS], мир-мир, [SEP]-[SEP]; the student's
    # masked input ids are read at its own positions, the shared vocabulary is the specials, кот and мир
    own_input = batch["own_input_ids"][0].tolist()
    shared = BERT_SPECIALS + ["кот", "мир"]
    expected = 0.0
    for teacher_token, student_position in [("[CLS]", 0), ("мир", 3), ("[SEP]", 4)]:
        s_row = student_table[own_input[student_position]]
        t_row = teacher_table[ids(teacher_tok, [teacher_token])[0]]
        expected += plain_kl([s_row[i].item() for i in ids(student_tok, shared)],
                             [t_row[i].item() for i in ids(teacher_tok, shared)])
    assert batch["partners"][0].tolist() == [0, -1, 3, 4]
    assert got == pytest.approx(expected / 3, rel=1e-5)


@pytest.mark.parametrize("align, compared", [("match-pieces", ["[CLS]", "мир", "[SEP]"]),
                                              ("reduce-shared", ["[CLS]", "привет", "мир", "[SEP]"])])
def test_lab_variants_kl_by_hand(align, compared, setting):
    teacher_tok, student_tok, student_table, teacher_table = setting
    recipe, student, teacher, batch = recipe_for(align, setting)
    got = recipe.losses(student, teacher, batch)["loss_kl"].item()
    # both read the masked teacher batch as pieces; the input ids after masking decide the logits
    teacher_input = batch["input_ids"][0].tolist()
    owner, pieces = batch["owner"][0].tolist(), batch["student_input_ids"][0].tolist()
    shared = BERT_SPECIALS + ["кот", "мир"]
    positions = [i for i, t in enumerate(["[CLS]", "привет", "мир", "[SEP]"]) if t in compared]
    if align == "match-pieces":  # the masked input may have changed which token sits at a position
        single = set(ids(teacher_tok, shared))
        positions = [i for i in range(4) if teacher_input[i] in single]
    expected = 0.0
    for position in positions:
        summed = sum(student_table[pieces[s]] for s in range(len(owner)) if owner[s] == position)
        t_row = teacher_table[teacher_input[position]]
        expected += plain_kl([summed[i].item() for i in ids(student_tok, shared)],
                             [t_row[i].item() for i in ids(teacher_tok, shared)])
    assert got == pytest.approx(expected / len(positions), rel=1e-5)

"""Fill-mask comparisons: the head-at-masks shortcut, agreement figures across vocabularies, bad input, the tab."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import corpus_lines, tiny_bert
from tokenizers.pre_tokenizers import BertPreTokenizer
from transformers import pipeline

from core.compare import predict
from core.compare.probes import FillMaskProbe
from core.models import masked_lm, zoo
from core.models.tokenizer import train_wordpiece

ONE_MASK = "Я сегодня приготовила овощной [MASK] с фрикадельками."
TWO_MASKS = "Давай вечером сходим в [MASK], а потом [MASK] домой."


def sharpen(loaded: zoo.LoadedModel, seed: int) -> zoo.LoadedModel:
    """Scale the head's last LayerNorm, so random models have peaked, context-dependent distributions (no near-ties)."""
    model = loaded.model
    if model.config.model_type == "bert":
        norm, bias = model.cls.predictions.transform.LayerNorm, model.cls.predictions.bias
    else:
        norm, bias = model.vocab_layer_norm, model.vocab_projector.bias
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        norm.weight.mul_(30.0)
        bias.copy_(torch.randn(bias.shape, generator=generator) * 0.5)
    return loaded


@pytest.fixture(scope="module")
def teacher(tiny_teacher_dir) -> zoo.LoadedModel:
    return sharpen(zoo.load(str(tiny_teacher_dir)), seed=1)


@pytest.fixture(scope="module")
def student(tiny_student_dir) -> zoo.LoadedModel:
    return sharpen(zoo.load(str(tiny_student_dir)), seed=2)


@pytest.fixture(scope="module")
def other_vocab() -> zoo.LoadedModel:
    """A BERT with its own, smaller vocabulary learnt from other lines: some strings shared, some not."""
    tokenizer = train_wordpiece(corpus_lines(6000)[3000:], vocab_size=600)
    return sharpen(zoo.LoadedModel("other-vocab", tiny_bert(len(tokenizer), seed=3), tokenizer, "local"), seed=3)


PIPELINES: dict[int, object] = {}


def fill_mask_pipeline(loaded: zoo.LoadedModel, text: str, top_k: int) -> list[list[dict]]:
    """transformers' fill-mask pipeline, one list of guesses per mask."""
    if id(loaded.model) not in PIPELINES:
        PIPELINES[id(loaded.model)] = pipeline("fill-mask", model=loaded.model, tokenizer=loaded.tokenizer)
    out = PIPELINES[id(loaded.model)](text, top_k=top_k)
    return out if text.count("[MASK]") > 1 else [out]


def full_log_probs(loaded: zoo.LoadedModel, text: str) -> torch.Tensor:
    """Log-probabilities at each mask from the whole model's logits: (n_masks, vocab)."""
    batch = loaded.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return logits[batch["input_ids"] == loaded.tokenizer.mask_token_id].log_softmax(-1)  # (n, vocab)


def kl_by_strings(log_p: torch.Tensor, vocab_p: dict, log_q: torch.Tensor, vocab_q: dict) -> tuple[float, int]:
    """KL(p || q) on the strings both vocabularies hold, written with plain numpy."""
    shared = sorted(set(vocab_p) & set(vocab_q))
    p = np.exp(log_p.double().numpy()[[vocab_p[s] for s in shared]])
    q = np.exp(log_q.double().numpy()[[vocab_q[s] for s in shared]])
    p, q = p / p.sum(), q / q.sum()
    return float(np.sum(p * np.log(p / q))), len(shared)


@pytest.mark.parametrize("which", ["teacher", "student"])
def test_head_at_masks_equals_full_model_logits(which, request):
    loaded = request.getfixturevalue(which)
    batch = masked_lm.encode(loaded, [ONE_MASK, TWO_MASKS])  # different lengths: the first is padded
    select = batch["input_ids"] == loaded.tokenizer.mask_token_id
    assert select.sum() == 3
    ours = masked_lm.masked_lm_logits(loaded.model, batch["input_ids"], batch["attention_mask"], select)
    with torch.no_grad():
        full = loaded.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[select]
    assert ours.shape == (3, loaded.model.config.vocab_size)
    torch.testing.assert_close(ours, full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("which", ["teacher", "student"])
@pytest.mark.parametrize("text", [ONE_MASK, TWO_MASKS], ids=["one-mask", "two-masks"])
def test_fill_mask_equals_transformers_pipeline(which, text, request):
    loaded = request.getfixturevalue(which)
    ours = predict.fill_mask(loaded, text, top_k=7)
    reference = fill_mask_pipeline(loaded, text, top_k=7)
    assert len(ours.masks) == len(reference) == text.count("[MASK]")
    for guess, expected in zip(ours.masks, reference):
        assert guess.ids == [e["token"] for e in expected]
        assert guess.tokens == [e["token_str"] for e in expected]
        np.testing.assert_allclose(guess.probs, [e["score"] for e in expected], atol=1e-5)


def test_same_vocabulary_kl_is_the_plain_kl(teacher, student):
    assert teacher.tokenizer is not student.tokenizer  # two objects, one vocabulary
    result = predict.compare([teacher, student], TWO_MASKS, top_k=5)
    log_p, log_q = full_log_probs(teacher, TWO_MASKS), full_log_probs(student, TWO_MASKS)
    ours_t, ours_s = fill_mask_pipeline(teacher, TWO_MASKS, 5), fill_mask_pipeline(student, TWO_MASKS, 5)
    (pair,) = result.pairs
    for m, item in enumerate(pair.items):
        plain = torch.nn.functional.kl_div(log_q[m], log_p[m], log_target=True, reduction="sum").item()
        assert item.kl == pytest.approx(plain, rel=1e-4, abs=1e-6)
        assert item.shared_vocab == len(teacher.tokenizer)
        words_t, words_s = [g["token_str"] for g in ours_t[m]], [g["token_str"] for g in ours_s[m]]
        assert item.top1 == float(words_t[0] == words_s[0])
        assert item.overlap == len(set(words_t) & set(words_s)) / 5
    assert any(item.kl > 0.01 for item in pair.items)  # the models differ, so the figure says something


def test_agreement_across_vocabularies_uses_strings(teacher, other_vocab):
    vocab_t, vocab_o = teacher.tokenizer.get_vocab(), other_vocab.tokenizer.get_vocab()
    shared = set(vocab_t) & set(vocab_o)
    assert len(shared) < min(len(vocab_t), len(vocab_o))
    assert any(vocab_t[s] != vocab_o[s] for s in shared)  # the same string has different ids in the two vocabularies
    result = predict.compare([teacher, other_vocab], TWO_MASKS, top_k=10)
    log_p, log_q = full_log_probs(teacher, TWO_MASKS), full_log_probs(other_vocab, TWO_MASKS)
    guesses_t, guesses_o = fill_mask_pipeline(teacher, TWO_MASKS, 10), fill_mask_pipeline(other_vocab, TWO_MASKS, 10)
    for m, item in enumerate(result.pairs[0].items):
        kl, size = kl_by_strings(log_p[m], vocab_t, log_q[m], vocab_o)
        assert item.shared_vocab == size
        assert item.kl == pytest.approx(kl, rel=1e-4, abs=1e-6)
        words_t = [g["token_str"] for g in guesses_t[m]]
        words_o = [g["token_str"] for g in guesses_o[m]]
        assert item.top1 == float(words_t[0] == words_o[0])
        assert item.overlap == len(set(words_t) & set(words_o)) / 10


def test_three_models_are_each_compared_with_the_first(teacher, student, other_vocab):
    result = predict.compare([teacher, student, other_vocab], ONE_MASK, top_k=3)
    assert [(p.reference, p.other, p.other_index) for p in result.pairs] == [
        (teacher.name, student.name, 1), (teacher.name, other_vocab.name, 2)]
    same = predict.compare([teacher, teacher], ONE_MASK, top_k=3).pairs[0].items[0]
    assert (same.top1, same.overlap) == (1.0, 1.0) and same.kl == pytest.approx(0.0, abs=1e-6)


def test_display_word_marks_continuation_pieces():
    assert masked_lm.display_word("##ка") == "…ка"
    assert masked_lm.display_word("суп") == "суп"
    assert masked_lm.display_word("##") == "##"
    guess = masked_lm.MaskPrediction(["##ка", "ка"], [0.5, 0.4], [1, 2])
    assert guess.words == ["…ка", "ка"] and guess.tokens == ["##ка", "ка"]  # matching keeps the '##'


@pytest.mark.parametrize("text, message", [
    ("", "text is empty"),
    ("   \n\t ", "text is empty"),
    (None, "text is empty"),
    ("В этом предложении нет маски.", "has no \\[MASK\\]"),
    ("Я люблю [mask] чай.", "in capitals"),
    ("слово [MASK] " * 21, "has 21 \\[MASK\\] marks; use at most 20"),
    ("длинное слово " * 150 + "[MASK]", "characters long; shorten it to at most 2000"),
])
def test_bad_text_gets_a_sentence(text, message, teacher, student):
    with pytest.raises(ValueError, match=message):
        predict.compare([teacher, student], text)


def test_text_longer_than_the_model_reads(teacher, student):
    text = "да " * 200 + "[MASK]."
    tokens = len(teacher.tokenizer(text)["input_ids"])
    limit = teacher.model.config.max_position_embeddings
    assert tokens > limit and len(text) <= predict.MAX_CHARS
    with pytest.raises(ValueError, match=f"The text is {tokens} tokens long for .*; the model reads at most {limit}."):
        predict.compare([teacher, student], text)


def test_bad_choices_get_a_sentence(teacher, student):
    with pytest.raises(ValueError, match="two or three models"):
        predict.compare([teacher], ONE_MASK)
    with pytest.raises(ValueError, match="Top-k must be between"):
        predict.compare([teacher, student], ONE_MASK, top_k=0)
    with pytest.raises(ValueError, match="without \\[MASK\\]"):
        predict.mask_each_word([teacher, student], ONE_MASK)
    with pytest.raises(ValueError, match="at most 64"):
        predict.mask_each_word([teacher, student], "слово " * 65)
    with pytest.raises(ValueError, match="no words to mask"):
        predict.mask_each_word([teacher, student], "... !!! ???")


def test_mask_each_word_equals_one_mask_at_a_time(teacher, other_vocab):
    sentence = "Вчера мы с братом долго гуляли по парку, а вечером смотрели кино."
    strip = predict.mask_each_word([teacher, other_vocab], sentence, top_k=5, batch_size=4)
    words = [w for w, _ in BertPreTokenizer().pre_tokenize_str(sentence) if w.isalnum()]
    assert strip.words == words
    recovered = []
    for j, (word, (start, end)) in enumerate(zip(strip.words, strip.spans)):
        assert sentence[start:end] == word
        variant = sentence[:start] + "[MASK]" + sentence[end:]
        one = predict.compare([teacher, other_vocab], variant, top_k=5)
        for m in range(2):
            assert strip.results[m][j].tokens == one.results[m].masks[0].tokens
            np.testing.assert_allclose(strip.results[m][j].probs, one.results[m].masks[0].probs, atol=1e-5)
        item, alone = strip.pairs[0].items[j], one.pairs[0].items[0]
        assert (item.top1, item.overlap) == (alone.top1, alone.overlap)
        assert item.kl == pytest.approx(alone.kl, rel=1e-4, abs=1e-6)
        pieces = teacher.tokenizer.tokenize(word)
        expected = None if len(pieces) != 1 else strip.results[0][j].tokens[0] == pieces[0]
        assert strip.recovered[0][j] == expected
        recovered.append(expected)
    assert None in recovered and any(r is not None for r in recovered)  # split and whole words both covered


def make_probes(models: list[zoo.LoadedModel], count: int = 14) -> list[FillMaskProbe]:
    """Probes from corpus lines. Half expect the first model's own best guess (a whole word of its vocabulary), so
    accuracy has hits to count; the others expect the masked word, often one the tiny vocabulary splits."""
    hits, others = [], []
    for number, line in enumerate(s for s in corpus_lines(400) if 30 < len(s) < 120):
        words = [(w, span) for w, span in BertPreTokenizer().pre_tokenize_str(line) if w.isalpha()]
        if len(words) < 3:
            continue
        word, (start, end) = words[number % len(words)]
        sentence = line[:start] + "[MASK]" + line[end:]
        best = fill_mask_pipeline(models[0], sentence, 1)[0][0]["token_str"]
        if models[0].tokenizer.tokenize(best) == [best] and len(hits) < count // 2:
            hits.append(FillMaskProbe(sentence, best, f"topic{number % 3}"))
        elif len(others) < count - count // 2:
            others.append(FillMaskProbe(sentence, word, f"topic{number % 3}"))
        if len(hits) + len(others) == count:
            break
    return [p for pair in zip(hits, others) for p in pair] + hits[len(others):] + others[len(hits):]


def test_probe_summary_against_the_pipeline(teacher, student, other_vocab):
    models = [teacher, student, other_vocab]
    probes = make_probes(models)
    summary = predict.probe_summary(models, probes, top_k=5, batch_size=4)
    guesses = [[fill_mask_pipeline(m, p.sentence, 5)[0] for p in probes] for m in models]
    for m, (loaded, score) in enumerate(zip(models, summary.scores)):
        single = [loaded.tokenizer.tokenize(p.expected) for p in probes]
        single = [s[0] if len(s) == 1 and s[0] != "[UNK]" else None for s in single]
        hits = sum(s is not None and g[0]["token_str"] == s for s, g in zip(single, guesses[m]))
        assert (score.hits, score.scored, score.split) == (hits, sum(s is not None for s in single),
                                                           sum(s is None for s in single))
    assert summary.scores[0].hits > 0 and summary.scores[0].split > 0  # hits and split probes both exercised
    for pair in summary.pairs:
        other = models[pair.other_index]
        top1, overlap, kls = [], [], []
        for i, probe in enumerate(probes):
            words_r = [g["token_str"] for g in guesses[0][i]]
            words_o = [g["token_str"] for g in guesses[pair.other_index][i]]
            top1.append(words_r[0] == words_o[0])
            overlap.append(len(set(words_r) & set(words_o)) / 5)
            log_p, log_q = full_log_probs(teacher, probe.sentence)[0], full_log_probs(other, probe.sentence)[0]
            kls.append(kl_by_strings(log_p, teacher.tokenizer.get_vocab(), log_q, other.tokenizer.get_vocab())[0])
        assert pair.mean("top1") == pytest.approx(np.mean(top1))
        assert pair.mean("overlap") == pytest.approx(np.mean(overlap))
        assert pair.mean("kl") == pytest.approx(np.mean(kls), rel=1e-4)
    assert [r["expected"] for r in summary.rows] == [p.expected for p in probes]


def test_probe_summary_refuses_a_bad_probe(teacher, student):
    with pytest.raises(ValueError, match="exactly one \\[MASK\\]"):
        predict.probe_summary([teacher, student], [FillMaskProbe("Нет маски.", "слово", "t")])


def test_tab_endpoints(tiny_teacher_dir, tiny_student_dir, runs_dir, teacher, student, monkeypatch):
    import gradio as gr
    import httpx
    from gradio_client import Client

    from ui import predict_tab
    from ui.context import AppContext

    probes = make_probes([teacher, student])[:6]
    monkeypatch.setattr(predict, "fill_mask_probes", lambda: tuple(probes))
    ctx = AppContext(default_teacher=str(tiny_teacher_dir), default_student=str(tiny_student_dir))
    with gr.Blocks() as demo:
        predict_tab.build(ctx)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        every_endpoint = httpx.get(client.src_prefixed + "info?all_endpoints=True").json()  # undocumented ones too
        assert set(every_endpoint["named_endpoints"]) == {"/fill_mask", "/mask_each_word", "/probe_summary"}
        assert not every_endpoint["unnamed_endpoints"]  # picking an example (load_example) is not an endpoint
        names = dict(model_1=ctx.default_teacher, model_2=ctx.default_student, model_3="")
        figure, markdown = client.predict(**names, top_k=5, sentence=TWO_MASKS, api_name="/fill_mask")
        loaded = [ctx.load(n) for n in (ctx.default_teacher, ctx.default_student)]
        expected = predict.compare(loaded, TWO_MASKS, 5)
        assert markdown.count(f"| {predict_tab.label(ctx.default_student)} |") == 2
        for item in expected.pairs[0].items:
            assert f"| {item.kl:.3f} |" in markdown
        assert figure is not None
        strip, table = client.predict(**names, top_k=5, sentence="Мы долго гуляли по парку.",
                                      api_name="/mask_each_word")
        assert "| гуляли |" in table
        summary, _, rows = client.predict(**names, api_name="/probe_summary")
        assert len(rows["data"]) == len(probes)
        assert [row[0] for row in summary["data"]] == [f"1. {predict_tab.label(ctx.default_teacher)}",
                                                       f"2. {predict_tab.label(ctx.default_student)}"]
        with pytest.raises(Exception, match="has no \\[MASK\\]"):
            client.predict(**names, top_k=5, sentence="Без маски.", api_name="/fill_mask")
    finally:
        demo.close()

"""Fill-mask comparisons: the head-at-masks shortcut, agreement figures across vocabularies, bad input, the tab."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from tokenizers.pre_tokenizers import BertPreTokenizer
from transformers import pipeline

from core.compare import predict
from core.compare.probes import FillMaskProbe
from core.models import masked_lm, zoo
from core.models.tokenizer import train_wordpiece
from tests.support.models import corpus_lines, tiny_bert

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
def tiny_teacher(tiny_teacher_dir) -> zoo.LoadedModel:
    """The 4-layer random tiny BERT of conftest (not the bundled teacher), sharpened."""
    return sharpen(zoo.load(str(tiny_teacher_dir)), seed=1)


@pytest.fixture(scope="module")
def tiny_student(tiny_student_dir) -> zoo.LoadedModel:
    """The 2-layer DistilBERT made from the tiny teacher, sharpened."""
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


@pytest.mark.parametrize("which", ["tiny_teacher", "tiny_student"])
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


@pytest.mark.parametrize("which", ["tiny_teacher", "tiny_student"])
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


def test_same_vocabulary_kl_is_the_plain_kl(tiny_teacher, tiny_student):
    assert tiny_teacher.tokenizer is not tiny_student.tokenizer  # two objects, one vocabulary
    result = predict.compare([tiny_teacher, tiny_student], TWO_MASKS, top_k=5)
    log_p, log_q = full_log_probs(tiny_teacher, TWO_MASKS), full_log_probs(tiny_student, TWO_MASKS)
    ours_t, ours_s = fill_mask_pipeline(tiny_teacher, TWO_MASKS, 5), fill_mask_pipeline(tiny_student, TWO_MASKS, 5)
    (pair,) = result.pairs
    for m, item in enumerate(pair.items):
        plain = torch.nn.functional.kl_div(log_q[m], log_p[m], log_target=True, reduction="sum").item()
        assert item.kl == pytest.approx(plain, rel=1e-4, abs=1e-6)
        assert item.shared_vocab == len(tiny_teacher.tokenizer)
        words_t, words_s = [g["token_str"] for g in ours_t[m]], [g["token_str"] for g in ours_s[m]]
        assert item.top1 == float(words_t[0] == words_s[0])
        assert item.overlap == len(set(words_t) & set(words_s)) / 5
    assert any(item.kl > 0.01 for item in pair.items)  # the models differ, so the figure says something


def test_agreement_across_vocabularies_uses_strings(tiny_teacher, other_vocab):
    vocab_t, vocab_o = tiny_teacher.tokenizer.get_vocab(), other_vocab.tokenizer.get_vocab()
    shared = set(vocab_t) & set(vocab_o)
    assert len(shared) < min(len(vocab_t), len(vocab_o))
    assert any(vocab_t[s] != vocab_o[s] for s in shared)  # the same string has different ids in the two vocabularies
    result = predict.compare([tiny_teacher, other_vocab], TWO_MASKS, top_k=10)
    log_p, log_q = full_log_probs(tiny_teacher, TWO_MASKS), full_log_probs(other_vocab, TWO_MASKS)
    guesses_t = fill_mask_pipeline(tiny_teacher, TWO_MASKS, 10)
    guesses_o = fill_mask_pipeline(other_vocab, TWO_MASKS, 10)
    for m, item in enumerate(result.pairs[0].items):
        kl, size = kl_by_strings(log_p[m], vocab_t, log_q[m], vocab_o)
        assert item.shared_vocab == size
        assert item.kl == pytest.approx(kl, rel=1e-4, abs=1e-6)
        words_t = [g["token_str"] for g in guesses_t[m]]
        words_o = [g["token_str"] for g in guesses_o[m]]
        assert item.top1 == float(words_t[0] == words_o[0])
        assert item.overlap == len(set(words_t) & set(words_o)) / 10


def test_three_models_are_each_compared_with_the_first(tiny_teacher, tiny_student, other_vocab):
    result = predict.compare([tiny_teacher, tiny_student, other_vocab], ONE_MASK, top_k=3)
    assert [(p.reference, p.other, p.other_index) for p in result.pairs] == [
        (tiny_teacher.name, tiny_student.name, 1), (tiny_teacher.name, other_vocab.name, 2)]
    same = predict.compare([tiny_teacher, tiny_teacher], ONE_MASK, top_k=3).pairs[0].items[0]
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
    ("длинное слово " * 150 + "[MASK]", "The text is 2,106 characters long; shorten it to at most 2,000"),
])
def test_bad_text_gets_a_sentence(text, message, tiny_teacher, tiny_student):
    with pytest.raises(ValueError, match=message):
        predict.compare([tiny_teacher, tiny_student], text)


def test_text_longer_than_the_model_reads(tiny_teacher, tiny_student):
    text = "да " * 200 + "[MASK]."
    tokens = len(tiny_teacher.tokenizer(text)["input_ids"])
    limit = tiny_teacher.model.config.max_position_embeddings
    assert tokens > limit and len(text) <= predict.MAX_CHARS
    with pytest.raises(ValueError, match=f"The text is {tokens} tokens long for .*; the model reads at most {limit}."):
        predict.compare([tiny_teacher, tiny_student], text)


def test_bad_choices_get_a_sentence(tiny_teacher, tiny_student):
    with pytest.raises(ValueError, match="two or three models"):
        predict.compare([tiny_teacher], ONE_MASK)
    for bad in (0, 51, 2.5, "5", None, True):
        with pytest.raises(ValueError, match="Top-k must be a whole number from 1 to 50"):
            predict.compare([tiny_teacher, tiny_student], ONE_MASK, top_k=bad)
    with pytest.raises(ValueError, match="without \\[MASK\\]"):
        predict.mask_each_word([tiny_teacher, tiny_student], ONE_MASK)
    with pytest.raises(ValueError, match="at most 64"):
        predict.mask_each_word([tiny_teacher, tiny_student], "слово " * 65)
    with pytest.raises(ValueError, match="no words to mask"):
        predict.mask_each_word([tiny_teacher, tiny_student], "... !!! ???")


def test_mask_each_word_equals_one_mask_at_a_time(tiny_teacher, other_vocab):
    sentence = "Вчера мы с братом долго гуляли по парку, а вечером смотрели кино."
    strip = predict.mask_each_word([tiny_teacher, other_vocab], sentence, top_k=5, batch_size=4)
    words = [w for w, _ in BertPreTokenizer().pre_tokenize_str(sentence) if w.isalnum()]
    assert strip.words == words
    recovered = []
    for j, (word, (start, end)) in enumerate(zip(strip.words, strip.spans)):
        assert sentence[start:end] == word
        variant = sentence[:start] + "[MASK]" + sentence[end:]
        one = predict.compare([tiny_teacher, other_vocab], variant, top_k=5)
        for m in range(2):
            assert strip.results[m][j].tokens == one.results[m].masks[0].tokens
            np.testing.assert_allclose(strip.results[m][j].probs, one.results[m].masks[0].probs, atol=1e-5)
        item, alone = strip.pairs[0].items[j], one.pairs[0].items[0]
        assert (item.top1, item.overlap) == (alone.top1, alone.overlap)
        assert item.kl == pytest.approx(alone.kl, rel=1e-4, abs=1e-6)
        pieces = tiny_teacher.tokenizer.tokenize(word)
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


@pytest.mark.slow
def test_probe_summary_against_the_pipeline(tiny_teacher, tiny_student, other_vocab):
    models = [tiny_teacher, tiny_student, other_vocab]
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
            log_p, log_q = full_log_probs(tiny_teacher, probe.sentence)[0], full_log_probs(other, probe.sentence)[0]
            kls.append(kl_by_strings(log_p, tiny_teacher.tokenizer.get_vocab(), log_q, other.tokenizer.get_vocab())[0])
        assert pair.mean("top1") == pytest.approx(np.mean(top1))
        assert pair.mean("overlap") == pytest.approx(np.mean(overlap))
        assert pair.mean("kl") == pytest.approx(np.mean(kls), rel=1e-4)
    assert [r["expected"] for r in summary.rows] == [p.expected for p in probes]


def test_probe_summary_refuses_a_bad_probe(tiny_teacher, tiny_student):
    with pytest.raises(ValueError, match="exactly one \\[MASK\\]"):
        predict.probe_summary([tiny_teacher, tiny_student], [FillMaskProbe("Нет маски.", "слово", "t")])


@pytest.mark.app
def test_tab_endpoints(tiny_teacher_dir, tiny_student_dir, runs_dir, tiny_teacher, tiny_student, monkeypatch):
    import gradio as gr
    import httpx
    from gradio_client import Client

    from ui import predict_figures, predict_tab
    from ui.context import AppContext

    probes = make_probes([tiny_teacher, tiny_student])[:6]
    monkeypatch.setattr(predict, "fill_mask_probes", lambda: tuple(probes))
    ctx = AppContext(default_teacher=str(tiny_teacher_dir), default_student=str(tiny_student_dir))
    with gr.Blocks() as demo:
        predict_tab.build(ctx)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        api = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
        parameters = {name: [p["parameter_name"] for p in api[name]["parameters"]] for name in api}
        assert parameters == {"/fill_mask": ["model_1", "model_2", "model_3", "top_k", "sentence"],
                              "/mask_each_word": ["model_1", "model_2", "model_3", "top_k", "sentence"],
                              "/probe_summary": ["model_1", "model_2", "model_3", "top_k"]}
        every_endpoint = httpx.get(client.src_prefixed + "info?all_endpoints=True").json()  # undocumented ones too
        assert set(every_endpoint["named_endpoints"]) == {"/fill_mask", "/mask_each_word", "/probe_summary"}
        assert not every_endpoint["unnamed_endpoints"]  # picking an example (load_example) is not an endpoint
        names = dict(model_1=ctx.default_teacher, model_2=ctx.default_student, model_3="")
        figure, markdown = client.predict(**names, top_k=5, sentence=TWO_MASKS, api_name="/fill_mask")
        loaded = [ctx.load(n) for n in (ctx.default_teacher, ctx.default_student)]
        expected = predict.compare(loaded, TWO_MASKS, 5)
        assert markdown.count(f"| {predict_figures.label(ctx.default_student)} |") == 2
        for item in expected.pairs[0].items:
            assert f"| {item.kl:.3f} |" in markdown
        assert figure is not None and "**Sentence:** Давай вечером" in markdown
        strip, table = client.predict(**names, top_k=5, sentence="Мы долго гуляли по парку.",
                                      api_name="/mask_each_word")
        assert "| гуляли" in table and "**Sentence:** Мы долго гуляли по парку." in table
        summary, _, rows = client.predict(**names, api_name="/probe_summary")
        assert len(rows["data"]) == len(probes)
        assert [row[0] for row in summary["data"]] == [f"1. {predict_figures.label(ctx.default_teacher)}",
                                                       f"2. {predict_figures.label(ctx.default_student)}"]
        with pytest.raises(Exception, match="has no \\[MASK\\]"):
            client.predict(**names, top_k=5, sentence="Без маски.", api_name="/fill_mask")
    finally:
        demo.close()


# ---------------------------------------------------------------------------------------------------------------------
# The tab's own behaviour: each result names its sentence, errors stay in view, tables have headers, lists are fresh


def tab_context(teacher_dir, student_dir):
    from ui.context import AppContext
    return AppContext(default_teacher=str(teacher_dir), default_student=str(student_dir))


def test_each_figure_names_the_sentence_it_shows(tiny_teacher, tiny_student):
    from ui import predict_figures

    result = predict.compare([tiny_teacher, tiny_student], ONE_MASK, 3)
    strip = predict.mask_each_word([tiny_teacher, tiny_student], "Мы долго гуляли по парку.", 3)
    assert predict_figures.prediction_figure(result).layout.title.text == f"«{ONE_MASK}»"
    assert predict_figures.word_strip_figure(strip).layout.title.text == "«Мы долго гуляли по парку.»"
    assert predict_figures.sentence_title("слово " * 40, limit=20) == "«слово слово слово …»"


def test_failed_action_keeps_its_message_in_the_status_line(tiny_teacher_dir, tiny_student_dir, runs_dir):
    import gradio as gr

    from ui import predict_actions, predict_inputs
    from ui.errors import ErrorLines

    ctx, errors = tab_context(tiny_teacher_dir, tiny_student_dir), ErrorLines()
    inputs = dict(model_1=ctx.default_teacher, model_2=ctx.default_student, model_3="", top_k=5, sentence="Без маски.")
    with pytest.raises(gr.Error, match="has no \\[MASK\\]"):
        predict_actions.fill_mask(ctx, errors, **inputs)
    line = predict_actions.failure_status(errors, "fill_mask", *inputs.values())
    assert line.startswith("**Predict failed:** The text has no \\[MASK\\]: write \\[MASK\\]") and line.endswith("'")
    assert predict_actions.failure_status(errors, "fill_mask", *inputs.values()) == ""  # shown once, then gone
    with pytest.raises(gr.Error, match="no run 'gone'"):  # a load error (gr.Error from the context) is kept too
        predict_actions.probe_summary(ctx, errors, ctx.default_teacher, "run:gone", "")
    assert "no run 'gone'" in predict_actions.failure_status(errors, "probe_summary", ctx.default_teacher, "run:gone",
                                                             "", predict_inputs.DEFAULT_TOP_K)
    with pytest.raises(gr.Error, match="Choose a second model to compare"):
        predict_actions.mask_each_word(ctx, errors, ctx.default_teacher, "", "", 5, "Мы гуляли.")
    line = predict_actions.failure_status(errors, "mask_each_word", ctx.default_teacher, "", "", 5, "Мы гуляли.")
    assert "Choose a second model to compare" in line


def built_tab(ctx):
    import gradio as gr

    from ui import predict_tab

    with gr.Blocks() as demo, gr.Tab("Predictions") as tab:
        parts = predict_tab.build(ctx)
    return demo, tab, parts


def test_status_line_is_wired_to_every_action(tiny_teacher_dir, tiny_student_dir, runs_dir):
    demo, _, parts = built_tab(tab_context(tiny_teacher_dir, tiny_student_dir))
    dependencies = demo.config["dependencies"]
    named = {d["api_name"]: d["id"] for d in dependencies if d["api_visibility"] == "public"}
    assert set(named) == {"fill_mask", "mask_each_word", "probe_summary"}
    for event in named.values():
        after = [d for d in dependencies if d["trigger_after"] == event and parts["status"]._id in d["outputs"]]
        assert {(d["trigger_only_on_failure"], d["trigger_only_on_success"]) for d in after} == {(True, False),
                                                                                                 (False, True)}
        assert all(d["outputs"] == [parts["status"]._id] for d in after)


def test_empty_tables_have_real_headers(tiny_teacher_dir, tiny_student_dir, runs_dir):
    from ui import predict_tables

    assert list(predict_tables.summary_table().columns) == [
        "model", "top-1 accuracy", "hits / scored", "split (left out)", "top-1 agreement with model 1", "top-k overlap",
        "mean KL (nats)"]
    assert list(predict_tables.probe_table().columns) == ["sentence", "expected", "topic"]
    demo, _, parts = built_tab(tab_context(tiny_teacher_dir, tiny_student_dir))
    assert parts["summary"].value["headers"] == list(predict_tables.summary_table().columns)
    notes = [b.value for b in demo.blocks.values() if getattr(b, "elem_id", None) == "predict-split-note"]
    assert notes and "split (left out)" in notes[0] and "left out of its accuracy" in notes[0]


def test_summary_rows_and_kl_chart_headroom(tiny_teacher, tiny_student):
    from ui import predict_figures

    models = [tiny_teacher, tiny_student]
    summary = predict.probe_summary(models, make_probes(models, 6), top_k=5)
    rows = predict.summary_rows(summary)
    pair = summary.pairs[0]
    assert rows[0]["top-1 agreement with model 1"] is None
    assert rows[1]["mean KL (nats)"] == round(pair.mean("kl"), 3)
    assert rows[1]["top-5 overlap"] == round(pair.mean("overlap"), 3)
    assert rows[0]["split (left out)"] == summary.scores[0].split
    figure = predict_figures.summary_figure(summary)
    # the KL bar's label sits above the bar; the axis leaves room for it below the subplot title
    assert figure.layout.yaxis2.range[1] >= 1.25 * pair.mean("kl")
    assert figure.layout.yaxis.range[1] >= 1.15


def test_model_lists_include_a_run_finished_after_the_build(tiny_teacher_dir, tiny_student_dir, runs_dir):
    import json
    import shutil

    from ui import predict_inputs

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    _, _, parts = built_tab(ctx)
    assert not any(c[0].startswith("run:") for c in parts["second"].choices)
    run = runs_dir / "finished-run"
    shutil.copytree(tiny_student_dir, run / "final")
    (run / "status.json").write_text(json.dumps({"state": "done"}), encoding="utf-8")
    lists = predict_inputs.model_lists(ctx)
    for dropdown in lists:
        assert "run:finished-run" in [c[0] for c in dropdown.choices]
    assert [c[0] for c in lists[2].choices][0] == ""  # model 3 may stay empty
    function, outputs = parts["refresh"]
    assert outputs == [parts["first"], parts["second"], parts["third"]]
    assert all("run:finished-run" in [c[0] for c in d.choices] for d in function())


# ---------------------------------------------------------------------------------------------------------------------
# Downloads: each action's tables as CSV and figure as an HTML page, written from what the action showed


def test_predict_downloads_hold_the_guesses_and_agreement_shown(tiny_teacher_dir, tiny_student_dir, runs_dir):
    from tests.support.downloads import assert_offline_page_of, paths, read_csv
    from ui import predict_actions, predict_downloads, predict_figures
    from ui.downloads import write_files
    from ui.errors import ErrorLines

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    names = [ctx.default_teacher, ctx.default_student, ctx.default_teacher]
    figure, markdown, kept = predict_actions.fill_mask_kept(ctx, ErrorLines(), *names, 4, TWO_MASKS)
    csv_path, html_path = paths(predict_downloads.show_downloads("fill_mask", kept))
    assert (csv_path.name, html_path.name) == ("predictions.csv", "predictions.html")
    first, again = (write_files(kept, "predict")[0] for _ in range(2))
    assert first.parent != again.parent and first.read_bytes() == again.read_bytes()  # a fresh folder each time
    table = read_csv(csv_path)
    assert list(table.columns) == ["sentence", "mask", "model", "rank", "word", "probability",
                                   "top-1 agreement with model 1", "top-4 overlap", "KL (nats)"]
    assert len(table) == 3 * 2 * 4 and set(table["sentence"]) == {TWO_MASKS}
    expected = predict.compare([ctx.load(n) for n in names], TWO_MASKS, 4)
    for (model, mask), rows in table.groupby(["model", "mask"], sort=False):
        i, m = int(model.split(".")[0]) - 1, int(mask) - 1
        assert model == f"{i + 1}. {predict_figures.label(names[i])}"
        guess = expected.results[i].masks[m]
        assert list(rows["rank"]) == ["1", "2", "3", "4"] and list(rows["word"]) == guess.words
        np.testing.assert_allclose(rows["probability"].astype(float), guess.probs, rtol=1e-6)
        bars = figure.data[m * 3 + i]  # the subplot of this mask and model, as the page shows it
        assert list(bars.customdata) == guess.words and np.allclose(bars.x, rows["probability"].astype(float))
        figures = rows[["top-1 agreement with model 1", "top-4 overlap", "KL (nats)"]].drop_duplicates()
        assert len(figures) == 1
        if i == 0:
            assert figures.iloc[0].tolist() == ["", "", ""]  # model 1 against itself: nothing to say
            continue
        item = expected.pairs[i - 1].items[m]
        assert figures.iloc[0].tolist()[:2] == [str(int(item.top1)), str(item.overlap)]
        assert float(figures.iloc[0, 2]) == pytest.approx(item.kl, rel=1e-6)
        assert f"| {float(figures.iloc[0, 2]):.3f} |" in markdown  # the KL the agreement table shows
    assert_offline_page_of(html_path, figure)


def test_mask_each_word_downloads_hold_the_per_word_table(tiny_teacher_dir, tiny_student_dir, runs_dir):
    from tests.support.downloads import assert_offline_page_of, paths, read_csv
    from ui import predict_actions, predict_downloads, predict_figures
    from ui.errors import ErrorLines

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    sentence = "Мы долго гуляли по парку."
    figure, _, kept = predict_actions.mask_each_word_kept(ctx, ErrorLines(), ctx.default_teacher,
                                                          ctx.default_student, "", 3, sentence)
    csv_path, html_path = paths(predict_downloads.show_downloads("mask_each_word", kept))
    assert (csv_path.name, html_path.name) == ("mask-each-word.csv", "mask-each-word.html")
    table = read_csv(csv_path)
    strip = predict.mask_each_word([ctx.load(ctx.default_teacher), ctx.load(ctx.default_student)], sentence, 3)
    teacher, student = (f"{i}. {predict_figures.label(n)}" for i, n in ((1, ctx.default_teacher),
                                                                        (2, ctx.default_student)))
    assert list(table["word"]) == strip.words == ["Мы", "долго", "гуляли", "по", "парку"]
    assert list(table["position"]) == ["1", "2", "3", "4", "5"]
    assert set(table["sentence"]) == {sentence} and set(table["filled in"]) == {"no"}  # each row says its sentence
    assert list(table[f"{teacher}: guess"]) == [m.words[0] for m in strip.results[0]]
    assert list(table[f"{student}: guess"]) == [m.words[0] for m in strip.results[1]]
    assert list(table[f"{student}: masked word recovered"]) == [
        {True: "yes", False: "no", None: "split"}[r] for r in strip.recovered[1]]
    items = strip.pairs[0].items
    assert list(table[f"{student}: top-1 agreement with model 1"]) == [str(int(a.top1)) for a in items]
    np.testing.assert_allclose(table[f"{student}: top-3 overlap"].astype(float), [a.overlap for a in items])
    np.testing.assert_allclose(table[f"{student}: KL (nats)"].astype(float), [a.kl for a in items], rtol=1e-6)
    assert f"{teacher}: KL (nats)" not in table  # model 1 is the reference, not compared with itself
    # the strip figure's KL row holds the same figures
    np.testing.assert_allclose(figure.data[1].z[0], table[f"{student}: KL (nats)"].astype(float), rtol=1e-6)
    assert_offline_page_of(html_path, figure)


def test_probe_summary_downloads_hold_both_tables_and_the_figure(tiny_teacher_dir, tiny_student_dir, runs_dir,
                                                                 tiny_teacher, tiny_student, monkeypatch):
    from tests.support.downloads import assert_offline_page_of, paths, read_csv
    from ui import predict_actions, predict_downloads
    from ui.errors import ErrorLines

    probes = make_probes([tiny_teacher, tiny_student], 6)
    monkeypatch.setattr(predict, "fill_mask_probes", lambda: tuple(probes))
    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    summary, figure, rows, kept = predict_actions.probe_summary_kept(ctx, ErrorLines(), ctx.default_teacher,
                                                                     ctx.default_student, "")
    summary_path, rows_path, html_path = paths(predict_downloads.show_downloads("probe_summary", kept))
    assert [p.name for p in (summary_path, rows_path, html_path)] == ["probe-summary.csv", "probe-rows.csv",
                                                                       "probe-summary.html"]
    shown = summary.astype(object).where(summary.notna(), "")

    def as_number(cell) -> str:
        """A share as the page shows it ("50.0%") or as the download keeps it (0.5), the same way."""
        cell = str(cell)
        if cell.endswith("%"):
            return f"{float(cell[:-1]) / 100:.4f}"
        return f"{float(cell):.4f}" if "." in cell and cell.replace(".", "", 1).isdigit() else cell

    downloaded = [[as_number(c) for c in row] for row in read_csv(summary_path).values.tolist()]
    assert downloaded == [[as_number(v) for v in row] for row in shown.values.tolist()]
    assert list(read_csv(summary_path).columns) == list(summary.columns)
    every = read_csv(rows_path)
    assert list(every.columns) == list(rows.columns) and every.values.tolist() == rows.astype(str).values.tolist()
    assert list(every["sentence"]) == [p.sentence for p in probes]
    assert_offline_page_of(html_path, figure)


def test_downloads_keep_the_api_and_appear_after_each_action(tiny_teacher_dir, tiny_student_dir, runs_dir):
    import gradio as gr

    from ui import predict_actions, predict_downloads, predict_tables
    from ui.downloads import Downloads
    from ui.errors import ErrorLines

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    demo, _, parts = built_tab(ctx)
    api = demo.get_api_info()
    assert not api["unnamed_endpoints"]
    returns = {name: [r["component"] for r in endpoint["returns"]] for name, endpoint in api["named_endpoints"].items()}
    assert returns == {"/fill_mask": ["Plot", "Markdown"], "/mask_each_word": ["Plot", "Markdown"],
                       "/probe_summary": ["Dataframe", "Plot", "Dataframe"]}
    dependencies = demo.config["dependencies"]
    for action, boxes in parts["files"].items():
        assert all(isinstance(b, gr.File) and not b.visible for b in boxes)  # hidden until there is a file
        for event in [d for d in dependencies if d["api_name"] == action or
                      (action == "fill_mask" and d["targets"] == [(parts["sentence"]._id, "submit")])]:
            kept = event["outputs"][-1]
            assert isinstance(demo.blocks[kept], gr.State)
            writes = [d for d in dependencies if d["trigger_after"] == event["id"] and d["trigger_only_on_success"]
                      and d["outputs"] == [b._id for b in boxes]]
            assert len(writes) == 1 and writes[0]["inputs"] == [kept] and writes[0]["api_visibility"] == "private"
    _, markdown = predict_actions.fill_mask(ctx, ErrorLines(), ctx.default_teacher, ctx.default_student, "",
                                            3, ONE_MASK)  # called from Python, the action keeps its two outputs
    assert markdown.startswith("**Sentence:**")
    with pytest.raises(ValueError, match="a table named .csv or a figure named .html"):
        Downloads({"predictions.html": predict_tables.summary_table()})
    assert predict_downloads.show_downloads("fill_mask", None) == (gr.skip(), gr.skip())  # nothing shown yet


def test_a_failed_action_clears_the_results_and_downloads_of_the_previous_input(tiny_teacher_dir, tiny_student_dir,
                                                                                runs_dir):
    """After a failure the page must not keep showing (and offering for download) another input's results."""
    import gradio as gr

    from ui import embed_tab, predict_tab

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    with gr.Blocks() as demo:
        predicted, embedded = predict_tab.build(ctx), embed_tab.build(ctx)
    fns = list(demo.fns.values())
    # Draw's boxes include the neighbours': their table is taken off the page with the maps
    boxes = {"fill_mask": 2, "mask_each_word": 2, "probe_summary": 3, "embedding_map": 4, "layer_similarity": 2}
    for name, box_count in boxes.items():
        action = next(fn for fn in fns if fn.api_name == name)
        # every result it shows (a list of choices, such as the sentence to highlight, is no result)
        action_outputs = {block._id for block in action.outputs if not isinstance(block, gr.Dropdown)}
        clearing = [fn for fn in fns if fn.trigger_after == action._id and fn.trigger_only_on_failure
                    and action_outputs <= {block._id for block in fn.outputs}]
        assert len(clearing) == 1, name
        updates = clearing[0].fn()
        files = [u for u in updates if isinstance(u, gr.File)]
        assert len(files) == box_count and all(not f.visible and f.value is None for f in files), name
        shown = [block for block in clearing[0].outputs if not isinstance(block, gr.File)]
        values = [u for u in updates if not isinstance(u, gr.File)]
        assert values == [block.value for block in shown], name  # as the page first showed them: empty
        assert not any(isinstance(v, str) and v.strip() for v in values), name
    assert predicted and embedded


# ---------------------------------------------------------------------------------------------------------------------
# The page's defaults work: Mask each word on the default sentence, bars that name their model, top-k as typed


def whole_words_first(guesses: list[dict]) -> str:
    """The best of the pipeline's guesses that is a whole word: no continuation piece, punctuation or special token."""
    return next(g["token_str"] for g in guesses if g["token_str"].isalnum())


@pytest.mark.parametrize("text", [ONE_MASK, TWO_MASKS], ids=["one-mask", "two-masks"])
def test_fill_in_puts_the_reference_models_best_whole_word_at_each_mask(text, tiny_teacher):
    filled = predict.fill_in(tiny_teacher, text, probes=[])
    expected = [whole_words_first(guesses) for guesses in fill_mask_pipeline(tiny_teacher, text, predict.MAX_TOP_K)]
    assert filled.words == expected and filled.guessed_by == tiny_teacher.name
    pieces = text.split("[MASK]")
    assert filled.sentence == pieces[0] + "".join(w + rest for w, rest in zip(expected, pieces[1:]))
    assert [filled.sentence[start:end] for start, end in filled.spans] == expected


def test_fill_in_takes_a_probe_sentences_expected_word_and_refuses_a_sentence_of_masks_alone(tiny_teacher):
    probe = FillMaskProbe("Мы пили [MASK] с вареньем.", "чай", "food")
    filled = predict.fill_in(tiny_teacher, " Мы пили [MASK] с вареньем. ", probes=[probe])
    assert (filled.sentence, filled.words, filled.guessed_by) == ("Мы пили чай с вареньем.", ["чай"], None)
    plain = predict.fill_in(tiny_teacher, "Мы пили чай.", probes=[probe])
    assert (plain.sentence, plain.words) == ("Мы пили чай.", [])
    for text, message in [("[MASK]", "no words besides \\[MASK\\]"), (" [MASK] , [MASK] ", "no words besides"),
                          ("", "text is empty"), ("Мы пили [mask].", "Write \\[MASK\\] in capitals"),
                          ("слово [MASK] " * 21, "use at most 20")]:
        with pytest.raises(ValueError, match=message):
            predict.fill_in(tiny_teacher, text, probes=[probe])


def test_mask_each_word_on_the_pages_default_sentence_fills_its_mask_first(tiny_teacher_dir, tiny_student_dir,
                                                                            runs_dir):
    import gradio as gr

    from core.compare.probes import fill_mask_probes
    from tests.support.downloads import paths, read_csv
    from ui import predict_actions, predict_downloads, predict_figures
    from ui.errors import ErrorLines, error_message
    from ui.page_text import markdown_text

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    _, _, parts = built_tab(ctx)
    default = parts["sentence"].value
    probe = next(p for p in fill_mask_probes() if p.sentence == default)  # the default is a probe sentence
    names = [ctx.default_teacher, ctx.default_student]
    figure, markdown, kept = predict_actions.mask_each_word_kept(ctx, ErrorLines(), *names, "",
                                                                 parts["top_k"].value, default)
    sentence = default.replace("[MASK]", probe.expected)
    strip = predict.mask_each_word([ctx.load(n) for n in names], sentence, parts["top_k"].value)
    assert figure.layout.title.text == predict_figures.sentence_title(sentence)
    assert list(figure.layout.xaxis.ticktext) == strip.words and probe.expected in strip.words
    assert f"**Sentence:** {markdown_text(sentence)}" in markdown
    assert f"probe set's expected word first: *{probe.expected}*" in markdown
    rows = [line for line in markdown.splitlines() if "*(filled in)*" in line]
    assert len(rows) == 1 and rows[0].startswith(f"| {probe.expected} *(filled in)*")  # only the word put in
    # the download says so too, and names the sentence whose words were masked
    table = read_csv(paths(predict_downloads.show_downloads("mask_each_word", kept))[0])
    assert set(table["sentence"]) == {sentence} and list(table["word"]) == strip.words
    assert list(table["filled in"]) == ["yes" if w == probe.expected else "no" for w in strip.words]
    # a sentence that is not a probe: model 1's best whole word goes in, and the note names model 1
    _, markdown, _ = predict_actions.mask_each_word_kept(ctx, ErrorLines(), *names, "", 3, TWO_MASKS)
    words = predict.fill_in(ctx.load(ctx.default_teacher), TWO_MASKS, probes=[]).words
    assert f"model 1's (**{predict_figures.label(ctx.default_teacher)}**) most probable whole words first: " \
           f"*{words[0]}*, *{words[1]}*" in markdown
    for text, message in [("[MASK]", "The sentence has no words besides [MASK]; type a sentence around it"),
                          ("", "The text is empty: type a Russian sentence.")]:
        with pytest.raises(gr.Error) as error:
            predict_actions.mask_each_word(ctx, ErrorLines(), *names, "", 5, text)
        assert error_message(error.value).startswith(message)


def test_probe_summary_bars_each_name_their_model(tiny_teacher, tiny_student, other_vocab):
    from ui import predict_figures

    models = [tiny_teacher, tiny_student, other_vocab]
    summary = predict.probe_summary(models, make_probes(models, 6), top_k=5)
    figure = predict_figures.summary_figure(summary)
    shares = [t for t in figure.data if t.xaxis == "x"]
    kls = [t for t in figure.data if t.xaxis == "x2"]
    assert len(shares) == 3 and len(kls) == 2
    for m, (score, trace) in enumerate(zip(summary.scores, shares)):
        metrics, tags = trace.x
        assert trace.name == f"{m + 1}. {predict_figures.label(score.model)}"  # the legend names each number
        assert set(tags) == {f"model {m + 1}"}  # under every bar: its model
        pair = summary.pair_of(m)
        expected = {"accuracy": score.accuracy}
        if pair:
            expected.update({"top-1 agreement": pair.mean("top1"), "top-5 overlap": pair.mean("overlap")})
        assert dict(zip(metrics, trace.y)) == pytest.approx(expected)
    for trace, pair in zip(kls, summary.pairs):
        assert list(trace.x) == [f"model {pair.other_index + 1}"] and trace.y[0] == pytest.approx(pair.mean("kl"))
        assert trace.marker.color == shares[pair.other_index].marker.color
    assert figure.layout.xaxis.showticklabels is not False and figure.layout.xaxis2.showticklabels is not False
    # the legend keeps to the figure's bottom edge, below the tick labels, never at a fixed distance over them
    assert (figure.layout.legend.yref, figure.layout.legend.y, figure.layout.legend.yanchor) == ("container", 0,
                                                                                                  "bottom")


def test_prediction_bars_share_one_labelled_probability_scale(tiny_teacher, tiny_student, other_vocab):
    from ui import predict_figures

    result = predict.compare([tiny_teacher, tiny_student, other_vocab], TWO_MASKS, 4)
    figure = predict_figures.prediction_figure(result)
    top = max(p for r in result.results for guess in r.masks for p in guess.probs)
    axes = [figure.layout[name] for name in figure.layout if name.startswith("xaxis")]
    assert len(axes) == 6
    for axis in axes:
        assert axis.showticklabels is not False and axis.tickformat == ".0%"
        assert axis.range[0] == 0 and top <= axis.range[1] <= 1.1 * top
    assert len({tuple(axis.range) for axis in axes}) == 1  # one scale: bar lengths compare across models


def axis_titles(layout: dict) -> dict[str, str]:
    """Each x and y axis of a figure's layout (plotly's JSON) with its title's text ("" for none)."""
    def text(axis: dict) -> str:
        title = axis.get("title") or {}
        return title.get("text") or "" if isinstance(title, dict) else str(title)

    return {name: text(axis) for name, axis in layout.items() if name.startswith(("xaxis", "yaxis"))}


def test_every_axis_says_what_it_holds_and_the_downloads_keep_it(tiny_teacher_dir, tiny_student_dir, runs_dir,
                                                                  tiny_teacher, tiny_student, other_vocab):
    import json

    from tests.support.downloads import html_figure, paths
    from ui import predict_actions, predict_downloads, predict_figures
    from ui.errors import ErrorLines

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    names = [ctx.default_teacher, ctx.default_student, ctx.default_teacher]
    figure, _, kept = predict_actions.fill_mask_kept(ctx, ErrorLines(), *names, 3, TWO_MASKS)
    downloaded = html_figure(paths(predict_downloads.show_downloads("fill_mask", kept))[1])[1]
    for layout in (json.loads(figure.to_json())["layout"], downloaded):
        titles = axis_titles(layout)
        assert len(titles) == 2 * 2 * 3  # two masks, three models, two axes each
        assert all(t == ("probability (%)" if name.startswith("x") else "guess (best first)")
                   for name, t in titles.items())
    sentence = "Мы долго гуляли по парку."
    figure, _, kept = predict_actions.mask_each_word_kept(ctx, ErrorLines(), *names[:2], "", 3, sentence)
    downloaded = html_figure(paths(predict_downloads.show_downloads("mask_each_word", kept))[1])[1]
    for layout in (json.loads(figure.to_json())["layout"], downloaded):
        titles = axis_titles(layout)
        # the words' axis is titled once, under the last row; each row is named by its label beside it
        assert titles == {"xaxis": "", "xaxis2": "masked word (in sentence order)", "yaxis": "", "yaxis2": ""}
    assert [t.colorbar.title.text for t in figure.data if t.showscale] == ["KL (nats)"]
    student = predict_figures.label(names[1])
    assert [list(t.y) for t in figure.data] == [[f"top-1 = model 1's? · {student}"], [f"KL · {student}"]]
    models = [tiny_teacher, tiny_student, other_vocab]
    summary = predict_figures.summary_figure(predict.probe_summary(models, make_probes(models, 6), top_k=5))
    assert axis_titles(json.loads(summary.to_json())["layout"]) == {
        "xaxis": "measure and model", "yaxis": "share of probes (%)", "xaxis2": "model", "yaxis2": "mean KL (nats)"}
    assert summary.layout.yaxis.tickformat == ".0%"  # shares are read in %, as the title says


def test_top_k_is_a_number_box_and_out_of_range_is_refused(tiny_teacher_dir, tiny_student_dir, runs_dir):
    """The page's slider moves a typed number into its range before sending it (Gradio's Slider does so when the
    box loses focus), so 50 became 20 without a word; a number box sends what was typed, and the check refuses it."""
    import gradio as gr

    from ui import predict_actions, predict_inputs
    from ui.errors import ErrorLines, error_message

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    _, _, parts = built_tab(ctx)
    top_k = parts["top_k"]
    assert top_k.get_block_name() == "number" and (top_k.minimum, top_k.maximum) == (1, predict_inputs.MAX_SHOWN_TOP_K)
    assert f"1 to {predict_inputs.MAX_SHOWN_TOP_K}" in top_k.info
    inputs = [ctx.default_teacher, ctx.default_student, ""]
    for typed in (0, 21, 50, 2.5, -3):
        sent = top_k.preprocess(typed)  # what the handler receives from the page or gradio_client
        assert sent == typed
        for handler, sentence in ((predict_actions.fill_mask, ONE_MASK),
                                  (predict_actions.mask_each_word, "Мы гуляли.")):
            with pytest.raises(gr.Error) as error:
                handler(ctx, ErrorLines(), *inputs, sent, sentence)
            assert error_message(error.value) == f"Top-k must be a whole number from 1 to 20; got {typed}."
    figure, _ = predict_actions.fill_mask(ctx, ErrorLines(), *inputs, top_k.preprocess(20), ONE_MASK)
    assert {len(trace.x) for trace in figure.data} == {20}  # the end of the range is taken as typed


# ---------------------------------------------------------------------------------------------------------------------
# A sentence that is not Russian is still predicted, with a note that the models know Russian


@pytest.mark.parametrize("text, cyrillic, other, russian", [
    (ONE_MASK, 6, 0, True),
    ("The cat sat on the [MASK].", 0, 5, False),
    ("😀 [MASK] 😀", 0, 0, False),
    ("123 [MASK] 456", 0, 0, False),
    ("Der Hund [MASK] laut", 0, 3, False),
    ("Я купил новый iPhone и [MASK].", 4, 1, True),  # a brand name in Latin leaves a sentence Russian
    ("Мой [MASK] сломался, fix it", 2, 2, True),  # half is enough
    ("Мой [MASK] is broken, please fix it", 1, 5, False),
    ("мoлоко и [mask]", 2, 0, True),  # a Latin o inside a Russian word; a lower-case mark is no word either
], ids=["russian", "english", "emoji", "digits", "german", "brand-name", "half", "mostly-english", "look-alike"])
def test_word_scripts_counts_cyrillic_words_and_others(text, cyrillic, other, russian):
    from core.compare.sentences import WordScripts, word_scripts

    scripts = word_scripts(text)
    assert scripts == WordScripts(cyrillic, other) and scripts.russian is russian


def test_language_note_says_whether_none_or_most_words_are_not_russian():
    from ui.predict_notes import LITTLE_RUSSIAN, NO_RUSSIAN, language_note

    assert language_note("The cat sat on the [MASK].") == NO_RUSSIAN
    assert language_note("😀 [MASK] 😀") == language_note("2 + 2 = [MASK]") == NO_RUSSIAN
    assert language_note("Мой [MASK] is broken, please fix it") == LITTLE_RUSSIAN
    assert language_note(ONE_MASK) == language_note("Я купил новый iPhone и [MASK].") == ""


def test_latin_letters_typed_into_russian_words_are_named_in_the_note():
    """"У нас двoе [MASK]: сын и дoчкa." with a Latin o and a changed the guesses with no word said: the words read as
    rare pieces. The note names each such word once; a Latin brand name beside Russian words is no such word."""
    from core.compare.sentences import mixed_script_words
    from ui.predict_notes import language_note

    sentence = "У нас двoе [MASK]: сын и дoчкa, и двoе внуков."
    assert mixed_script_words(sentence) == ["двoе", "дoчкa"]
    assert language_note(sentence) == ("'двoе', 'дoчкa' mix Latin letters into Russian ones (a Latin o, a, e, c or p "
                                       "looks like the Russian letter); the models read such a word as rare pieces, "
                                       "not as the word it looks like: type it again in Russian letters.")
    assert language_note("Мы пили чaй [MASK].").startswith("'чaй' mixes Latin letters")
    assert mixed_script_words("Я купил iPhone и [mask].") == [] and language_note("Я купил iPhone и [MASK].") == ""
    assert language_note("Мой [MASK] is broken, please fix it") != "" and "Latin letters" not in language_note(
        "Мой [MASK] is broken, please fix it")


def paragraphs_after_the_sentence(markdown: str) -> list[str]:
    """The Markdown's paragraphs after its first, the "**Sentence:**" line."""
    first, *rest = markdown.split("\n\n")
    assert first.startswith("**Sentence:**")
    return rest


@pytest.mark.parametrize("sentence, note", [
    ("The cat sat on the [MASK].", "NO_RUSSIAN"),
    ("😀 [MASK] 😀", "NO_RUSSIAN"),
    ("Der Hund [MASK] laut", "NO_RUSSIAN"),
    ("Мой [MASK] is broken, please fix it", "LITTLE_RUSSIAN"),
    (ONE_MASK, None),
], ids=["english", "emoji", "german", "mostly-english", "russian"])
def test_predict_shows_the_note_under_the_sentence_and_still_predicts(sentence, note, tiny_teacher_dir,
                                                                      tiny_student_dir, runs_dir):
    from ui import predict_actions, predict_notes
    from ui.errors import ErrorLines

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    figure, markdown = predict_actions.fill_mask(ctx, ErrorLines(), ctx.default_teacher,
                                                 ctx.default_student, "", 5, sentence)
    assert {len(trace.x) for trace in figure.data} == {5}  # predicted all the same: a note, not an error
    rest = paragraphs_after_the_sentence(markdown)
    if note:
        assert rest[0] == f"*{getattr(predict_notes, note)}*" and markdown.count("know Russian") == 1
    else:
        assert "know Russian" not in markdown and rest[0].startswith("Agreement with model 1")


@pytest.mark.parametrize("sentence, note", [
    ("The cat sat on the [MASK].", "NO_RUSSIAN"),  # judged as typed, not with model 1's Russian word filled in
    ("12 34 56", "NO_RUSSIAN"),
    ("Мы [MASK] walked in the park today", "LITTLE_RUSSIAN"),
    ("Мы долго гуляли по парку.", None),
], ids=["english", "digits", "mostly-english", "russian"])
def test_mask_each_word_shows_the_note_under_the_sentence(sentence, note, tiny_teacher_dir, tiny_student_dir,
                                                          runs_dir):
    from ui import predict_actions, predict_notes
    from ui.errors import ErrorLines

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    figure, markdown = predict_actions.mask_each_word(ctx, ErrorLines(), ctx.default_teacher,
                                                      ctx.default_student, "", 5, sentence)
    assert len(figure.data) == 2  # the strip is drawn all the same
    rest = paragraphs_after_the_sentence(markdown)
    if note:
        assert rest[0] == f"*{getattr(predict_notes, note)}*" and markdown.count("know Russian") == 1
    else:
        assert "know Russian" not in markdown


def test_the_exported_comparison_shows_the_note_too(tiny_teacher_dir, tiny_student_dir, runs_dir, tmp_path,
                                                    monkeypatch):
    """The exported student fills in the sentence typed above: the same note goes with its results."""
    import dataclasses

    from ui import predict_exported, predict_notes

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    student = ctx.load(ctx.default_student)
    # A stand-in export: the student itself under an export's name, so no export has to be made here.
    monkeypatch.setattr(predict_exported, "exported_choices", lambda _: [("run:r · onnx", "run:r:onnx")])
    monkeypatch.setattr(predict_exported, "run_dir_of", lambda *_: tmp_path)
    monkeypatch.setattr(predict_exported, "load_exported", lambda _, name: dataclasses.replace(student, name=name))
    monkeypatch.setattr(ctx, "load", lambda *_, **__: student)
    for sentence, note in (("The cat sat on the [MASK].", predict_notes.NO_RUSSIAN), (ONE_MASK, None)):
        _, markdown = predict_exported.compare_exported(ctx, "run:r:onnx", 3, sentence, progress=lambda *a, **k: 0)
        rest = paragraphs_after_the_sentence(markdown)
        assert rest[0] == f"*{note}*" if note else "know Russian" not in markdown


def test_the_page_opens_on_a_sentence_both_bundled_models_get_right():
    from core.compare.predict import predict_masks
    from core.compare.probes import fill_mask_probes
    from core.models import zoo
    from ui import predict_inputs

    first = predict_inputs.example_sentences()[0]
    expected = next(p.expected for p in fill_mask_probes() if p.sentence == first)
    for name in ("bundled-teacher", "bundled-student"):
        assert predict_masks(zoo.load(name), [first], top_k=5)[0].masks[0].tokens[0] == expected, name
    assert sorted(predict_inputs.example_sentences()) == sorted(p.sentence for p in fill_mask_probes())  # all offered


def test_kl_of_nearly_equal_distributions_is_never_below_zero():
    import torch

    from core.compare.agreement import kl_divergence

    log_p = torch.log_softmax(torch.tensor([2.0, 1.0, 0.5]), dim=0)
    assert float((log_p.exp() * (log_p - (log_p + 1e-6))).sum()) < 0  # what rounding can give: -0.000 on the page
    assert kl_divergence(log_p, log_p + 1e-6) == 0.0
    log_q = torch.log_softmax(torch.tensor([0.5, 1.0, 2.0]), dim=0)
    assert kl_divergence(log_p, log_q) == pytest.approx(float((log_p.exp() * (log_p - log_q)).sum()))


# ---------------------------------------------------------------------------------------------------------------------
# The probe summary's top-k is the Top-k box's


def test_the_probe_summary_takes_its_top_k_from_the_top_k_box(tiny_teacher_dir, tiny_student_dir, runs_dir,
                                                               tiny_teacher, tiny_student, monkeypatch):
    """The summary's overlap was always top-5 whatever Top-k said, and a Top-k of 0 that Predict refuses passed."""
    import gradio as gr

    from tests.support.downloads import paths, read_csv
    from ui import predict_actions, predict_downloads
    from ui.errors import ErrorLines, error_message

    probes = make_probes([tiny_teacher, tiny_student], 6)
    monkeypatch.setattr(predict, "fill_mask_probes", lambda: tuple(probes))
    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    models = [ctx.default_teacher, ctx.default_student, ""]
    for k in (1, 3, 12):
        table, figure, _, kept = predict_actions.probe_summary_kept(ctx, ErrorLines(), *models, k)
        direct = predict.probe_summary([ctx.load(name) for name in models[:2]], probes, top_k=k).pairs[0].mean(
            "overlap")
        shown = table[f"top-{k} overlap"].tolist()
        assert shown[0] == "" and float(shown[1].removesuffix("%")) / 100 == pytest.approx(direct, abs=1e-3)
        assert f"top-{k} overlap" in [str(x) for trace in figure.data for x in trace.x[0]]
        csv_path = paths(predict_downloads.show_downloads("probe_summary", kept))[0]
        assert float(read_csv(csv_path)[f"top-{k} overlap"][1]) == pytest.approx(direct, abs=1e-3)
    for typed in (0, 21, 2.5):
        with pytest.raises(gr.Error) as refused:
            predict_actions.probe_summary(ctx, ErrorLines(), *models, typed)
        assert error_message(refused.value) == f"Top-k must be a whole number from 1 to 20; got {typed}."
    demo, _, parts = built_tab(ctx)
    event = next(d for d in demo.config["dependencies"] if d["api_name"] == "probe_summary")
    assert event["inputs"] == [parts[name]._id for name in ("first", "second", "third", "top_k")]
    assert "probe summary" in parts["top_k"].info


# ---------------------------------------------------------------------------------------------------------------------
# A run's student loaded from a checkpoint says which


def unfinished_run(root, student_dir, state: str, step: int = 120, max_steps: int = 600) -> str:
    """A run in `state` whose newest checkpoint (of the tiny student) is at `step`; no final model."""
    import json
    import os
    import shutil

    from transformers import AutoModelForMaskedLM

    from core.runs.store import RunPaths, write_status

    paths = RunPaths(root / "20250101-120000-ckpt")
    paths.root.mkdir()
    write_status(paths.root, state=state, step=step, max_steps=max_steps, pid=os.getpid())  # running: this process
    paths.config.write_text(json.dumps({"teacher": "bundled-teacher", "max_steps": max_steps}))
    shutil.copytree(student_dir, paths.student)
    (paths.root / "checkpoints").mkdir()
    model = AutoModelForMaskedLM.from_pretrained(student_dir)
    for saved in (step // 2, step):
        torch.save({"model": model.state_dict(), "step": saved}, paths.root / "checkpoints" / f"step-{saved:06d}.pt")
    return paths.root.name


@pytest.mark.parametrize("state, said", [("stopped", "the run was stopped"), ("failed", "the run failed"),
                                         ("running", "the run is still training")])
def test_an_unfinished_runs_student_says_which_checkpoint_is_loaded(tiny_teacher_dir, tiny_student_dir, runs_dir,
                                                                   tiny_teacher, tiny_student, monkeypatch, state,
                                                                   said):
    """run:<id> of a stopped run loaded its newest checkpoint without a word: a result read as the run's student
    was of step 120 of 600."""
    from ui import predict_actions, predict_figures
    from ui.errors import ErrorLines
    from ui.page_text import markdown_text

    probes = make_probes([tiny_teacher, tiny_student], 6)
    monkeypatch.setattr(predict, "fill_mask_probes", lambda: tuple(probes))
    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    run = f"run:{unfinished_run(runs_dir, tiny_student_dir, state)}"
    line = f"{run}: the checkpoint at step 120 of 600, {said}."
    models, errors = [ctx.default_teacher, run, ""], ErrorLines()
    _, markdown = predict_actions.fill_mask(ctx, errors, *models, 3, ONE_MASK)
    assert f"\n\n*{markdown_text(line)}*" in markdown  # a paragraph of its own
    _, markdown = predict_actions.mask_each_word(ctx, errors, *models, 3, "Мы долго гуляли.")
    assert f"\n\n*{markdown_text(line)}*" in markdown
    table, _, _, kept = predict_actions.probe_summary_kept(ctx, errors, *models, 3)
    assert table["model"].tolist() == [f"1. {predict_figures.label(ctx.default_teacher)}",
                                       f"2. {run} (the checkpoint at step 120 of 600, {said})"]
    assert kept.files["probe-summary.csv"]["model"].tolist() == table["model"].tolist()
    _, markdown = predict_actions.fill_mask(ctx, errors, ctx.default_teacher, ctx.default_student, "", 3, ONE_MASK)
    assert "the checkpoint at step" not in markdown  # models that are no run's checkpoint say nothing


def test_a_finished_runs_student_and_its_start_name_no_checkpoint(tiny_teacher_dir, tiny_student_dir, runs_dir):
    import shutil

    from ui import predict_notes

    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    run_id = unfinished_run(runs_dir, tiny_student_dir, "stopped")
    assert (predict_notes.checkpoint_used(ctx, f"run:{run_id}")
            == "the checkpoint at step 120 of 600, the run was stopped")
    shutil.copytree(tiny_student_dir, runs_dir / run_id / "init")
    assert predict_notes.checkpoint_used(ctx, f"run:{run_id}@init") == ""
    shutil.copytree(tiny_student_dir, runs_dir / run_id / "final")
    assert predict_notes.checkpoint_used(ctx, f"run:{run_id}") == ""
    assert predict_notes.checkpoint_used(ctx, "run:no-such-run") == ""


@pytest.mark.app
def test_api_callers_leave_no_state_behind(tiny_teacher_dir, tiny_student_dir, runs_dir, monkeypatch):
    """Each gradio_client Client is a session of its own: Predict kept its downloads in the session's state for the
    page's follow-up, which an API caller never runs, until an hour after a page closes that never opened."""
    import time

    import gradio as gr
    from gradio_client import Client

    from ui import predict_tab

    monkeypatch.setattr(predict_tab, "KEPT_S", 1, raising=False)  # how long a page needs it: a moment
    ctx = tab_context(tiny_teacher_dir, tiny_student_dir)
    with gr.Blocks() as demo:
        predict_tab.build(ctx)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        def held() -> int:
            return sum(len(session.state_data) for session in demo.state_holder.session_data.values())

        before = held()
        Client(demo.local_url, verbose=False).predict(ctx.default_teacher, ctx.default_student, "", 3, ONE_MASK,
                                                      api_name="/fill_mask")
        assert held() == before + 1  # kept a moment, for a page's follow-up
        deadline = time.time() + 30
        while held() > before and time.time() < deadline:
            time.sleep(0.2)
        assert held() == before
    finally:
        demo.close()

"""The Predictions tab's input as a new user types it: blanks written another way, Mask each word on a sentence with
a blank, empty model boxes, invisible characters, the visitor limit told on the page; and the sentence files of the
Embeddings tab (an encoding other than UTF-8, a table without a sentence column)."""
from __future__ import annotations

import pytest

from core.compare import predict
from core.compare.sentences import read_sentence_file, typed_set

EXAMPLE = "e.g. 'Я люблю пить [MASK] с лимоном.'"


def message(text: str, with_masks: bool | None = True) -> str:
    with pytest.raises(ValueError) as error:
        predict.check_text(text, with_masks=with_masks)
    return str(error.value)


# ---------------------------------------------------------------------------------------------------------------------
# Blanks typed another way than [MASK]


@pytest.mark.parametrize("text, typed, wrong", [
    ("Я люблю [MASK чай.", "[MASK", "has no closing bracket"),
    ("Я люблю MASK] чай.", "MASK]", "has no opening bracket"),
    ("Я люблю [mask] чай.", "[mask]", "is not in capitals"),
    ("Я люблю [Mask] чай.", "[Mask]", "is not in capitals"),
    ("Я люблю [ MASK ] чай.", "[ MASK ]", "has spaces inside its brackets"),
    ("Я люблю <mask> чай.", "<mask>", "is RoBERTa's mask, not BERT's"),
    ("Я люблю (MASK) чай.", "(MASK)", "is not in square brackets"),
    ("Я люблю MASK чай.", "MASK", "has no square brackets"),
    ("Я люблю [МАСК] чай.", "[МАСК]", "has Cyrillic letters in it"),
    ("Я люблю [МАSK] чай.", "[МАSK]", "has Cyrillic letters in it"),  # Cyrillic М and А, Latin S and K
    ("Я люблю ___ чай.", "___", "is a line of underscores"),
    ("Я люблю _ чай.", "_", "is an underscore"),
    ("Я люблю [] чай.", "[]", "has no word between its brackets"),
    ("Я люблю [...] чай.", "[...]", "has no word between its brackets"),
    ("Я люблю ［MASK］ чай.", "［MASK］", "has full-width brackets, not the plain [ and ]"),
    ("Я люблю 【mask】 чай.", "【mask】", "has full-width brackets, not the plain [ and ]"),
])
def test_a_blank_typed_another_way_is_named_with_how_to_write_it(text, typed, wrong):
    assert predict.mistyped_blanks(text) == [(typed, wrong)]
    write = "write [MASK] (in capitals)" if wrong == "is not in capitals" else "write the blank as [MASK]"
    assert message(text) == (f"The text has no [MASK]: '{typed}' {wrong}, so the models would read it as text; "
                             f"{write} where a word is missing, {EXAMPLE}")
    assert message(text, with_masks=None) == (f"'{typed}' {wrong}, so the models would read it as text. Write [MASK] "
                                              "in capitals where a word is to be filled in first, or remove the mark.")
    assert message(text, with_masks=False) == (f"'Mask each word' takes a sentence without a blank; '{typed}' looks "
                                               "like one: take it out, or write it as [MASK] and use Predict.")


@pytest.mark.parametrize("text", ["Надень (маску), маска в сумке.", "I wear a mask.", "Мама готовит маску.",
                                  "Переменная snake_case [1] и маскарад.", "Маска (mask) висит."])
def test_words_that_only_look_like_a_blank_are_read_as_words(text):
    assert predict.mistyped_blanks(text) == []
    assert predict.check_text(text, with_masks=False) == text


def test_a_mistyped_blank_beside_a_real_one_is_refused_as_predict_would_read_it_as_text():
    text = "Я [MASK] и <mask>, и ещё [mask]."
    assert predict.mistyped_blanks(text) == [("<mask>", "is RoBERTa's mask, not BERT's"),
                                             ("[mask]", "is not in capitals")]
    assert message(text) == ("Besides its [MASK], the text has '<mask>' (and 1 more like it), which is RoBERTa's "
                             "mask, not BERT's, so the models would read it as text; write each blank as [MASK], or "
                             "take '<mask>' out.")
    assert predict.check_text("Я [MASK] и [MASK].") == "Я [MASK] и [MASK]."  # two blanks, each written right


# ---------------------------------------------------------------------------------------------------------------------
# Mask each word on a sentence that has a blank


@pytest.fixture(scope="module")
def tab(tmp_path_factory):
    """The Predictions tab's context over the bundled pair and a runs folder of its own, and its error lines."""
    from train.launcher import RunLauncher
    from ui.context import AppContext
    from ui.errors import ErrorLines

    launcher = RunLauncher(tmp_path_factory.mktemp("runs"))
    return AppContext("bundled-teacher", "bundled-student", launcher=launcher), ErrorLines()


def refused(handler, ctx, errors, *inputs) -> str:
    import gradio as gr

    from ui.errors import error_message

    with pytest.raises(gr.Error) as error:
        handler(ctx, errors, *inputs, progress=lambda *a, **k: None)
    return error_message(error.value)


@pytest.mark.parametrize("sentence, typed", [("Я люблю [ MASK ] чай.", "[ MASK ]"), ("Я люблю [MASK чай.", "[MASK"),
                                             ("Я люблю <mask> чай.", "<mask>"), ("Я люблю MASK чай.", "MASK")])
def test_mask_each_word_never_masks_the_word_mask_of_a_mistyped_blank(tab, sentence, typed):
    from ui.predict_actions import mask_each_word

    ctx, errors = tab
    said = refused(mask_each_word, ctx, errors, "bundled-teacher", "bundled-student", "", 3, sentence)
    assert said.startswith(f"'{typed}' ") and said.endswith("Write [MASK] in capitals where a word is to be filled in "
                                                            "first, or remove the mark.")


def test_mask_each_word_masks_the_words_around_a_filled_in_blank_and_no_punctuation(tab):
    ctx, _ = tab
    teacher, student = ctx.load("bundled-teacher"), ctx.load("bundled-student")
    filled = predict.fill_in(teacher, "Ну, я [MASK] — и всё... «Чай»!")
    strip = predict.mask_each_word([teacher, student], filled.sentence, 3)
    assert strip.words == ["Ну", "я", *filled.words, "и", "всё", "Чай"]


def test_a_blank_touching_a_word_or_another_blank_is_predicted_but_not_filled_in():
    for text, stretch in [("Я люблю [MASK][MASK] чай.", "Я люблю [MASK][MASK] чай."),
                          ("Это очень длинное начало предложения при[MASK] и конец, который тоже очень длинный.",
                           "…начало предложения при[MASK] и конец, который тоже…")]:
        assert predict.check_text(text) == text
        assert message(text, with_masks=None) == (
            f"'Mask each word' fills each [MASK] in with a whole word, but in '{stretch}' a [MASK] touches a letter or "
            "another [MASK], so that word would run into it; put a space on each side of [MASK].")
    assert predict.check_text("Кто-[MASK], [MASK]!", with_masks=None) == "Кто-[MASK], [MASK]!"


def test_characters_that_draw_nothing_are_taken_out_and_leave_no_text():
    empty = "The text is empty: type a Russian sentence with [MASK] for the missing word."
    assert message("\u200b\u00ad \ufeff") == empty
    assert message("\u200b", with_masks=None) == "The text is empty: type a Russian sentence."
    assert predict.check_text("\x00Мой [MASK]\x07 раз\u00adрядился.") == "Мой [MASK] разрядился."
    assert typed_set("\u200b\nКош\u00adка спит.\x07\n\ufeff").sentences == ("Кошка спит.",)


# ---------------------------------------------------------------------------------------------------------------------
# Model boxes: the bundled pair first offline, an empty box named with a model to choose


def test_offline_the_bundled_pair_leads_every_model_list(monkeypatch, runs_dir):
    from core.models import zoo
    from ui.context import AppContext

    monkeypatch.setattr(zoo, "is_available", lambda name: name.startswith("bundled"))  # the Hub out of reach
    ctx = AppContext("bundled-teacher", "bundled-student")
    deeppavlov = ["rubert-base-cased-conversational", "distilrubert-base-cased-conversational",
                  "distilrubert-small-cased-conversational", "distilrubert-tiny-cased-conversational-v1"]
    assert ctx.model_choices() == ["bundled-teacher", "bundled-student", *deeppavlov]
    first, second, third = ctx.box_choices()
    assert first == ["bundled-teacher", "bundled-student", *deeppavlov]
    assert second == ["bundled-student", "bundled-teacher", *deeppavlov]  # Enter in an emptied box 2: the student
    assert third == ["", "bundled-teacher", "bundled-student", *deeppavlov]
    monkeypatch.setattr(zoo, "is_available", lambda name: True)  # online: DeepPavlov's pair, in the table's order
    online = AppContext(*zoo.DEEPPAVLOV_PAIR)
    assert online.model_choices() == [*deeppavlov, "bundled-teacher", "bundled-student"]


@pytest.mark.parametrize("boxes, said", [
    (("bundled-teacher", "", ""), "Choose a second model to compare with bundled-teacher, such as bundled-student as "
                                  "model 2."),
    (("bundled-student", "", ""), "Choose a second model to compare with bundled-student, such as bundled-teacher as "
                                  "model 2."),  # never the model already chosen
    (("", "bundled-student", ""), "Choose a second model to compare with bundled-student, such as bundled-teacher as "
                                  "model 1."),
    (("  ", None, ""), "Choose two models to compare, such as bundled-teacher as model 1 and bundled-student as "
                       "model 2."),
])
def test_fewer_than_two_models_are_refused_naming_a_model_to_choose(tab, boxes, said):
    from ui.predict_actions import fill_mask, probe_summary
    from ui.predict_inputs import ModelChoice

    ctx, errors = tab
    assert refused(fill_mask, ctx, errors, *boxes, 3, "Привет, [MASK]!") == said
    assert refused(probe_summary, ctx, errors, *boxes) == said
    with pytest.raises(ValueError, match="^Choose a second model to compare with bundled-teacher, as model 2.$"):
        ModelChoice("bundled-teacher", "").names()  # no pair to suggest


def test_any_two_filled_boxes_compare_the_first_as_the_reference():
    from ui.predict_inputs import ModelChoice

    assert ModelChoice("", "bundled-student", "bundled-teacher").names() == ["bundled-student", "bundled-teacher"]
    assert ModelChoice(" a ", None, "b").names() == ["a", "b"]


def test_an_empty_model_name_anywhere_is_told_the_apps_pair_not_a_hub_id(runs_dir):
    from train.launcher import RunLauncher
    from ui.context import AppContext

    for on_space in (False, True):
        ctx = AppContext("bundled-teacher", "bundled-student", on_space=on_space, launcher=RunLauncher(runs_dir))
        for empty in ("", "  ", None):
            with pytest.raises(ValueError, match=r"^Choose a model, such as bundled-teacher or bundled-student, or "
                                                 r"another from the list\.$"):
                ctx.check_name(empty)


# ---------------------------------------------------------------------------------------------------------------------
# The visitor limit: refused in a step the page shows


BUSY = ("You already have 2 predictions waiting or running, the most this app takes from one visitor at a time; wait "
        "for one to finish.")


@pytest.fixture
def visitor(monkeypatch):
    """One visitor ("a") whose waiting or running requests are `visitor.pending`."""
    from types import SimpleNamespace

    from ui import visitor_limits

    state = SimpleNamespace(pending=0)
    monkeypatch.setattr(visitor_limits, "session_id", lambda: "a")
    monkeypatch.setattr(visitor_limits, "pending_requests", lambda session, group: state.pending)
    return state


def test_an_admission_holds_a_place_until_its_request_arrives(visitor):
    from ui.visitor_limits import VisitorLimit

    limit = VisitorLimit("predictions", 2, "prediction", "predictions")
    admit, validate = limit.admit(), limit.validator(at=1)
    visitor.pending = 1
    admit("x", "y")  # one place left: taken by this admission
    with pytest.raises(ValueError, match=f"^{BUSY}$"):
        admit("x", "y")  # a second quick click finds no place
    visitor.pending = 2  # the admitted request is counted by the queue from now on
    assert [v["is_valid"] for v in validate("x", "y")] == [True, True]  # admitted: let through once
    refusal = validate("x", "y")  # any other request at the limit: the validator's own refusal
    assert [(v["is_valid"], v["message"]) for v in refusal] == [(True, ""), (False, BUSY)]
    visitor.pending = 1
    assert [v["is_valid"] for v in validate("x", "y")] == [True, True]


def test_an_admission_the_page_never_followed_lapses(visitor):
    from ui.visitor_limits import VisitorLimit

    limit = VisitorLimit("predictions", 2, "prediction", "predictions", ttl_s=0.0)
    visitor.pending = 1
    limit.admit()()
    limit.admit()()  # the first admission lapsed at once: a place again
    visitor.pending = 2
    assert not limit.validator()("x")[0]["is_valid"]  # no admission left: the limit holds


def test_every_action_of_the_tab_is_admitted_first_and_a_refusal_reaches_the_status_line(tab, visitor):
    import gradio as gr

    from ui import predict_tab
    from ui.errors import error_message
    from ui.predict_actions import ACTIONS

    ctx, _ = tab
    with gr.Blocks() as demo:
        parts = predict_tab.build(ctx)
    fns = {fn._id: fn for fn in demo.fns.values()}
    status = {"fill_mask": parts["status"], "mask_each_word": parts["status"], "probe_summary": parts["status"],
              "compare_exported": parts["exported_status"]}
    visitor.pending = predict_tab.PER_SESSION
    busy = ("You already have 4 predictions waiting or running, the most this app takes from one visitor at a time; "
            "wait for one to finish.")
    runs = [fn for fn in fns.values() if fn.validator is not None]
    named = {fn.api_name: fn for fn in runs if fn.api_visibility == "public"}
    assert len(runs) == 4 and set(named) == {"fill_mask", "mask_each_word", "probe_summary"}
    named["compare_exported"] = next(fn for fn in runs if fn.api_visibility == "private")
    for action, box in status.items():
        admit = fns[named[action].trigger_after]
        assert admit.concurrency_id != predict_tab.QUEUE_GROUP and not admit.outputs
        inputs = ["bundled-teacher", "bundled-student", "", 3, "Привет, [MASK]!"][:len(admit.inputs)]
        with pytest.raises(gr.Error) as error:
            admit.fn(*inputs)
        assert error_message(error.value) == busy
        lines = [fn for fn in fns.values() if fn.trigger_after == admit._id and fn.trigger_only_on_failure]
        assert [[o._id for o in fn.outputs] for fn in lines] == [[box._id]]
        assert lines[0].fn(*inputs) == f"**{ACTIONS[action]} failed:** {busy}"


@pytest.mark.app
def test_an_api_client_over_the_limit_is_refused_by_the_validator(tab, monkeypatch):
    import gradio as gr
    from gradio_client import Client

    from ui import predict_tab, visitor_limits

    ctx, _ = tab
    with gr.Blocks() as demo:
        predict_tab.build(ctx)
    monkeypatch.setattr(visitor_limits, "pending_requests", lambda session, group: 4 if group == "predictions" else 0)
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        with pytest.raises(Exception, match="You already have 4 predictions waiting or running"):
            client.predict("bundled-teacher", "bundled-student", "", 3, "Привет, [MASK]!", api_name="/fill_mask")
    finally:
        demo.close()


# ---------------------------------------------------------------------------------------------------------------------
# Sentence files: another encoding, a table without a sentence column


@pytest.mark.parametrize("encoding, named", [("cp1251", "Windows-1251"), ("koi8-r", "KOI8-R")])
def test_a_russian_file_in_a_one_byte_encoding_is_named_by_it(tmp_path, encoding, named):
    path = tmp_path / "фразы.csv"
    path.write_bytes("sentence;label\nМы ходили в кино.;досуг\nКошка спит на диване.;дом\n".encode(encoding))
    with pytest.raises(ValueError) as error:
        read_sentence_file(path)
    assert str(error.value) == (f"'фразы.csv' is not UTF-8 text: it reads as Russian saved as {named} (first such "
                                "byte on line 2). Save it as UTF-8 (in Excel: Save as, 'CSV UTF-8'; in Notepad: Save "
                                "as, Encoding UTF-8) and try again.")


def test_a_latin_1_file_keeps_the_plain_not_utf8_sentence(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes("Un café crème et une tarte aux pommes.\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"^'notes.txt' is not UTF-8 text \(first bad byte on line 1\); save it as "
                                         r"UTF-8 and try again.$"):
        read_sentence_file(path)


def test_a_table_without_a_sentence_column_shows_its_header_and_what_to_add(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("Мы ходили в кино\nКошка спит.\n", encoding="utf-8")
    with pytest.raises(ValueError) as error:
        read_sentence_file(path)
    assert str(error.value) == ("list.csv has no 'sentence' or 'text' column: its header (the first row) is 'Мы ходили "
                                "в кино'; put a header row above the sentences with 'sentence' over their column (and "
                                "'label' over the labels, if any), or save the sentences one a line as a .txt file.")


def test_a_table_is_read_under_a_russian_header_after_blank_lines(tmp_path):
    path = tmp_path / "фразы.csv"
    path.write_text("\n\nТема;Предложение\nдосуг;Мы ходили в кино.\nдом;Кошка спит.\n", encoding="utf-8-sig")
    table = read_sentence_file(path)
    assert table.sentences == ("Мы ходили в кино.", "Кошка спит.") and table.labels == ("досуг", "дом")


def test_a_row_split_by_a_sentences_own_commas_is_refused_not_read_as_a_label(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text('sentence,label\n"Кот спит, тихо.",pets\nИдёт дождь, холодно.,weather\n', encoding="utf-8")
    with pytest.raises(ValueError) as error:
        read_sentence_file(path)
    assert str(error.value) == ("Row 3 of s.csv has 3 cells but its header names 2: the columns are split by commas, "
                                "and a sentence holds some too. Put each sentence in double quotes, or save the table "
                                "with another separator.")


def test_a_file_of_invisible_characters_is_empty(tmp_path):
    path = tmp_path / "blank.txt"
    path.write_bytes("\ufeff\u200b\n\u00ad\n".encode())
    with pytest.raises(ValueError, match="^blank.txt is empty; put one sentence on each line.$"):
        read_sentence_file(path)
    table = tmp_path / "header.csv"
    table.write_text("sentence,label\n", encoding="utf-8")
    with pytest.raises(ValueError, match="^There are no sentences in header.csv; put each sentence on a row of its "
                                         "own, under the header 'sentence'.$"):
        read_sentence_file(table)


# ---------------------------------------------------------------------------------------------------------------------
# Numbers echoed as a person reads them, and the probe summary's header before it runs


@pytest.mark.parametrize("value, read", [(10**9, "1,000,000,000"), (1e9, "1,000,000,000"), (-12345, "-12,345"),
                                         (0, "0"), (21, "21"), (2.5, "2.5"), (1e20, "1e+20"), (float("inf"), "inf"),
                                         ("1e9", "'1e9'"), (None, "nothing"), (True, "True")])
def test_a_number_is_echoed_as_a_person_reads_it(value, read):
    """1e9 typed in a number box reaches the app as 1000000000 (the page sends numbers as JSON), and the refusal
    echoed it so; text is quoted as typed."""
    from ui.input_checks import shown, whole_number

    assert shown(value) == read
    with pytest.raises(ValueError) as refusal:
        whole_number(value, "A count", 1, 20)
    assert str(refusal.value) == f"A count must be a whole number from 1 to 20; got {read}."


@pytest.mark.parametrize("handler", ["fill_mask", "mask_each_word", "probe_summary"])
def test_a_top_k_out_of_range_is_echoed_as_a_person_reads_it(tab, handler):
    from ui import predict_actions

    ctx, errors = tab
    inputs = ["bundled-teacher", "bundled-student", "", 10**9] + (["Я люблю [MASK]."] if handler != "probe_summary"
                                                                  else [])
    said = "Top-k must be a whole number from 1 to 20; got 1,000,000,000."
    assert refused(getattr(predict_actions, handler), ctx, errors, *inputs) == said
    with pytest.raises(ValueError) as error:  # the library's own check, for a notebook's top_k
        predict._check_top_k(1e9)
    assert str(error.value) == f"Top-k must be a whole number from 1 to {predict.MAX_TOP_K}; got 1,000,000,000."


def test_the_empty_probe_summary_does_not_name_a_k_before_it_runs(tab):
    """The empty table said "top-5 overlap" whatever Top-k held; a summary names the k it ran with."""
    import re

    import gradio as gr

    from ui import predict_tab
    from ui.predict_tables import summary_table

    ctx, _ = tab
    with gr.Blocks():
        parts = predict_tab.build(ctx)
    headers = parts["summary"].value["headers"]
    assert "top-k overlap" in headers and not [h for h in headers if re.fullmatch(r"top-\d+ overlap", h)]
    result = predict.probe_summary([ctx.load("bundled-teacher"), ctx.load("bundled-student")], top_k=3)
    assert "top-3 overlap" in summary_table(result).columns

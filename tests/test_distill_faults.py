"""Faults a fresh user found in the Distill tab, each with the right answer: Delete of the last run clears the
choice, Delete of another shows the newest run left, and polling stops asking for the deleted run; 0s and empty boxes
are refused or shown, never silently replaced; the page names the form's fields, not the command line's flags; a
corpus too short is refused before queueing; the guesses table fits; /run_guesses at step 0 shows step 0."""
import pytest

from core.distill.tokenized import held_out_rows
from tests.support.runs import run_entries
from tests.test_distill_tab import make_evaluated_run
from train.admission import lines_needed
from train.config import DistillConfig
from train.distill import guess_probes
from ui import (
    distill_actions,
    distill_form,
    distill_guesses,
    distill_settings,
    distill_start,
    distill_status,
    distill_tab,
)
from ui.input_checks import some_of


def test_delete_clears_the_choice_says_so_and_nothing_asks_for_the_run_again(ctx):
    run_id = ctx.launcher.submit(DistillConfig(teacher="bundled-teacher", max_steps=10))
    ctx.launcher.stop(run_id)  # Stop, then Delete at once
    table, dropdown, status, *_, notice = distill_actions.delete_run(ctx, run_id, None)
    assert dropdown.value is None and run_id not in dropdown.choices and run_id not in table["run"].tolist()
    assert status == f"Deleted run {run_id}. {distill_status.NO_RUNS}" and notice == f"Deleted run {run_id}."
    # the timer and the list's change: the line stays, no error for the deleted run
    assert distill_status.watch(ctx, None, None, notice)[2] == f"Deleted run {run_id}. {distill_status.NO_RUNS}"
    assert distill_status.show_run(ctx, run_id, None)[1].value is None  # a page still naming it lets go of it
    guesses, slider, view = distill_guesses.follow_guesses(ctx, run_id, None, 0, distill_guesses.GuessView(run_id, 20))
    assert guesses.empty and view.run_id is None
    assert distill_status.stop_button(ctx, None, None).interactive is False


LAYERS_RANGE = "Student layers must be a whole number from 1 to 4 (bundled-teacher has 4 layers)"
ZERO_AND_RANGE = [
    (dict(student_layers=0), f"{LAYERS_RANGE}; got 0."),
    (dict(student_layers=99), f"{LAYERS_RANGE}; got 99."),
    (dict(reduced_vocab=True, student_vocab_size=0),
     "Student vocabulary size must be between 100 and 1,000,000; got 0."),
    (dict(reduced_vocab=True, student_vocab_size=10**9),
     "Student vocabulary size must be between 100 and 1,000,000; got 1,000,000,000."),
    (dict(reduced_vocab=True, student_hidden=4), "Student width must be at least 8; got 4."),
    (dict(learning_rate=-1), "Learning rate must be above 0 and at most 1; got -1.0."),
    (dict(max_length=100_000), "Max length must be a whole number from 8 to 4,096; got 100,000."),
    (dict(max_length=1), "Max length must be a whole number from 8 to 4,096; got 1."),
    (dict(max_length=4096), "Max length 4,096 is longer than the teacher's maximum (512)."),
    (dict(steps=0), "Steps must be a whole number from 1 to 10,000,000; got 0."),
    (dict(save_every=0), "Checkpoint every must be a whole number from 1 to 10,000,000; got 0."),
]


@pytest.mark.parametrize("form, sentence", ZERO_AND_RANGE, ids=[str(i) for i in range(len(ZERO_AND_RANGE))])
def test_zeros_and_out_of_range_settings_are_refused_in_the_forms_words(ctx, runs_dir, form, sentence):
    with pytest.raises(ValueError) as refused:
        distill_start.start_run_from_form(ctx, None, teacher="bundled-teacher", **form)
    assert str(refused.value) == sentence
    assert run_entries(runs_dir) == []


def test_the_command_line_keeps_its_flag_names():
    for cfg, flag in [(DistillConfig(lr=-1.0), "--lr "), (DistillConfig(max_length=100_000), "--max-length "),
                      (DistillConfig(student_vocab_size=0), "--student-vocab-size ")]:
        with pytest.raises(ValueError) as refused:
            cfg.check()
        assert str(refused.value).startswith(flag)


def test_advice_about_flags_names_the_form_fields_or_is_left_out():
    memory = ("A training step would need about 9.0 GiB (…), more than 80% of the 4.0 GiB free on the CPU: lower "
              "--batch-size (a higher --grad-accum keeps the batch of a step) or --max-length, or add "
              "--gradient-checkpointing.")
    assert distill_settings.in_form_words(memory) == ("A training step would need about 9.0 GiB (…), more than 80% "
                                                      "of the 4.0 GiB free on the CPU: lower 'Batch size' or 'Max "
                                                      "length'.")
    assert distill_settings.in_form_words("--student-hidden must be at least 8; got 7.") == \
        "Student width must be at least 8; got 7."
    with pytest.raises(ValueError) as refused:
        some_of([], "Modes", ["reference", "fast"])
    assert str(refused.value) == "Modes must be one or more of reference, fast; none is chosen."


def test_empty_boxes_take_the_default_their_box_shows(ctx):
    import gradio as gr
    with gr.Blocks():
        form = distill_form.settings_form(ctx)
    cfg = distill_settings.RunSettings(steps=None, batch_size=None, max_length=None).config("bundled-teacher")
    defaults = DistillConfig()
    assert (cfg.max_steps, cfg.batch_size, cfg.max_length) == (defaults.max_steps, defaults.batch_size,
                                                               defaults.max_length)
    assert form["steps"].placeholder == f"{defaults.max_steps} (default)"
    assert form["batch_size"].placeholder == f"{defaults.batch_size} (default)"
    assert form["max_length"].placeholder == f"{defaults.max_length} (default)"
    reduced = distill_settings.RunSettings(reduced_vocab=True, student_vocab_size=None).config("bundled-teacher")
    assert reduced.student_vocab_size == distill_settings.STUDENT_VOCAB_DEFAULT  # never an ordinary student
    # the page shows an emptied width box as 0: the form as it comes, ticked, runs at the teacher's width
    for shown in (None, 0):
        settings = distill_settings.RunSettings(reduced_vocab=True, student_hidden=shown)
        assert settings.config("bundled-teacher").student_hidden is None
    assert form["student_vocab_size"].placeholder == f"{distill_settings.STUDENT_VOCAB_DEFAULT} (default)"


@pytest.mark.parametrize("batch_size", [1, 2, 16, 19, 20, 21, 100, 10_000, 12_000])
def test_lines_needed_leave_one_batch_after_the_held_out_split(batch_size):
    needed = lines_needed(batch_size, held_out=True)
    trains = [n - len(held_out_rows(n, 42)) >= batch_size and len(held_out_rows(n, 42)) >= 1
              for n in range(needed - 3, needed + 1)]
    assert trains == [False, False, False, True]
    assert lines_needed(batch_size, held_out=False) == batch_size


def test_a_one_line_upload_is_refused_before_it_is_queued(ctx, runs_dir, tmp_path):
    upload = tmp_path / "одна строка.txt"
    upload.write_text("Привет, как дела?\n", encoding="utf-8")
    with pytest.raises(ValueError) as refused:
        distill_start.start_run_from_form(ctx, None, teacher="bundled-teacher", corpus_source=distill_settings.UPLOAD,
                                        corpus_file=str(upload), batch_size=16)
    assert str(refused.value) == ("The corpus 'одна строка.txt' has 1 line of text; a run with a batch size of 16 "
                                  "needs at least 17 (16 to train on, one batch, and 1 held out to evaluate the "
                                  "student): add lines, or lower the batch size.")
    assert run_entries(runs_dir) == []
    upload.write_text("Привет, как дела?\nХорошо, спасибо.\n", encoding="utf-8")
    owner, dropdown, _ = distill_start.start_run_from_form(ctx, None, teacher="bundled-teacher", batch_size=1,
                                                         corpus_source=distill_settings.UPLOAD, corpus_file=str(upload))
    assert dropdown.value in [p.name for p in run_entries(runs_dir)]  # two lines: one to train on, one held out


def test_the_guesses_table_has_short_headers_and_widths_for_every_column(ctx):
    import gradio as gr
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    table = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "distill-guesses")
    assert list(distill_guesses.guess_table([]).columns) == distill_guesses.GUESS_HEADERS
    assert all(len(h) <= 15 for h in distill_guesses.GUESS_HEADERS)  # one line of header each
    widths = table.column_widths
    assert len(widths) == len(distill_guesses.GUESS_HEADERS) and 99 < sum(float(w.rstrip("%")) for w in widths) <= 100
    assert table.wrap is True


def test_guesses_at_step_0_show_the_untrained_student(ctx):
    paths = make_evaluated_run(ctx.launcher.root, steps=(0, 20, 40))
    table, slider, view = distill_guesses.guesses_at(ctx, paths.root.name, None, 0)
    assert slider.value == 0 and "step 0 " in slider.label and "✓" not in table.iloc[0]["student's top 3"]
    table, slider, _ = distill_guesses.guesses_at(ctx, paths.root.name, None, 25, view)
    assert slider.value == 20 and table.iloc[0]["student's top 3"].startswith("✓ ")
    _, slider, _ = distill_guesses.guesses_at(ctx, paths.root.name, None, None)
    assert slider.value == 40


@pytest.mark.app
@pytest.mark.app
def test_through_the_api_delete_shows_the_run_left_and_run_guesses_honours_step_0(ctx, monkeypatch):
    import gradio as gr
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    paths = make_evaluated_run(ctx.launcher.root, "20250101-120000-eval", steps=(0, 20))
    with gr.Blocks() as demo:
        distill_tab.build(ctx)
    demo.queue().launch(prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        table, slider = client.predict(run_id=paths.root.name, owner=None, step=0, api_name="/run_guesses")[:2]
        step = slider["value"] if isinstance(slider, dict) else slider
        # the untrained student's guesses ("и" first), not those of step 20, which lead with the teacher's word
        assert step == 0 and table["data"][0][3].split()[0] == "и"
        one_line = ctx.launcher.root.parent / "one.txt"
        one_line.write_text("Привет, как дела?\n", encoding="utf-8")
        for form, says in [(dict(student_layers=0), f"{LAYERS_RANGE}; got 0."),
                           (dict(corpus_source=distill_settings.UPLOAD, corpus_file=handle_file(str(one_line))),
                            "The corpus 'one.txt' has 1 line of text; a run with a batch size of 16 needs at least "
                            "17")]:
            with pytest.raises(AppError) as refused:
                client.predict(owner=None, teacher="bundled-teacher", **form, api_name="/start_run")
            assert str(refused.value).startswith(says)
        assert run_entries(ctx.launcher.root) == [paths.root]  # nothing queued
        owner, dropdown, _ = client.predict(owner=None, teacher="bundled-teacher", steps=10,
                                            api_name="/start_run")
        run_id = dropdown["value"]
        client.predict(run_id=run_id, owner=owner, api_name="/stop_run")
        outputs = client.predict(run_id=run_id, owner=owner, api_name="/delete_run")
        # the newest run left is shown, chosen in the list; its line follows the deletion's
        assert outputs[1].get("value") == paths.root.name
        assert outputs[2].startswith(f"Deleted run {run_id}.  \n") and paths.root.name in outputs[2]
        # the page's polling asks no more for it; a caller still naming it gets the line, not an error
        assert client.predict(run_id=run_id, owner=owner, api_name="/run_status")[2] == f"Deleted run {run_id}."
    finally:
        demo.close()


@pytest.mark.browser
@pytest.mark.browser
def test_the_guesses_table_is_readable_at_1280_px_without_sideways_scrolling(ctx):
    import shutil

    import gradio as gr
    sync_api = pytest.importorskip("playwright.sync_api")
    longest = max((probe.expected for probe in guess_probes()), key=len)  # a run's probes' longest expected word
    paths = make_evaluated_run(ctx.launcher.root, steps=(0, 20),  # the page opens on it: a local app's newest run
                               probes=(("Будешь [MASK] с печеньем?", "чай"), ("Я иду с [MASK].", longest)))
    with gr.Blocks() as demo:
        demo.load(*distill_tab.build(ctx)["load"])  # as app.py wires it
    demo.queue().launch(prevent_thread_lock=True, quiet=True)
    try:
        with sync_api.sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.goto(demo.local_url)
            page.wait_for_function("(word) => document.querySelector('#distill-guesses')?.innerText.includes(word)",
                                   arg=longest)
            page.screenshot(path=str(ctx.launcher.root.parent / "guesses.png"), full_page=True)
            print("screenshot:", ctx.launcher.root.parent / "guesses.png")
            sizes = page.evaluate("""(word) => {
                const table = document.querySelector('#distill-guesses');
                const visible = e => e.getBoundingClientRect().height > 0;
                const header = [...table.querySelectorAll('thead tr')].filter(visible)[0];
                const scroller = [...table.querySelectorAll('*')].filter(e => e.scrollWidth > e.clientWidth + 1
                    && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX));
                const headers = [...table.querySelectorAll('thead th')].filter(visible)
                    .map(th => th.getBoundingClientRect());
                const box = table.getBoundingClientRect();
                const walker = document.createTreeWalker(table, NodeFilter.SHOW_TEXT);
                let lines = 0;
                while (walker.nextNode()) {
                    if (walker.currentNode.textContent.trim() !== word) continue;
                    const range = document.createRange();
                    range.selectNodeContents(walker.currentNode);
                    lines = Math.max(lines, new Set([...range.getClientRects()].map(r => Math.round(r.top))).size);
                }
                return {header: header.getBoundingClientRect().height, scrolls: scroller.length,
                        right: Math.max(...headers.map(h => h.right)), edge: box.right, word_lines: lines};
            }""", longest)
            browser.close()
        assert sizes["header"] < 70, sizes  # one or two lines of header, not ~190 px
        assert sizes["scrolls"] == 0 and sizes["right"] <= sizes["edge"] + 1, sizes  # every column in view
        assert sizes["word_lines"] == 1, sizes  # the longest expected word of a run's probes on one line
        assert paths.root.is_dir()
    finally:
        demo.close()

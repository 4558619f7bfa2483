"""Every tab in a real headless Chromium, with the bundled models, checked for what a person sees. Screenshots go to
test-output/screenshots/."""
import json
import re
import shutil
import time
from pathlib import Path

import pytest

from scripts.appserver import REPO, start_app

pytestmark = pytest.mark.browser

SCREENSHOTS = REPO / "test-output" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    app = start_app(folder / "runs", folder / "app.log")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_api().sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(120_000)
        page.goto(app.url)
        page.get_by_role("tab", name="Distill").wait_for()
        yield page
        browser.close()
    app.kill()


# Playwright's assertions wait 5 s by default, less than one request to the app takes while the suite loads both
# cores; a page's own waits already allow 120 s.
ASSERTION_TIMEOUT_MS = 60_000


def sync_api():
    api = pytest.importorskip("playwright.sync_api")
    api.expect.set_options(timeout=ASSERTION_TIMEOUT_MS)
    return api


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name).click()


def set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input[type=number]")
    box.fill(str(value))
    box.press("Tab")


def seen(locator, what: str, at_least: int = 1, timeout: float = 120) -> int:
    """How many of `locator` are on the page once there are `at_least`; fails saying what was missing."""
    deadline = time.time() + timeout
    while (count := locator.count()) < at_least and time.time() < deadline:
        time.sleep(0.25)
    assert count >= at_least, f"{what}: expected at least {at_least}, the page showed {count} after {timeout:.0f} s"
    return count


def text_of(locator, pattern: str, what: str, timeout: float = 120) -> str:
    """The locator's text once it matches the regular expression `pattern`; fails showing the text it had."""
    deadline, text = time.time() + timeout, ""
    while time.time() < deadline:
        text = locator.inner_text() if locator.count() else ""
        if re.search(pattern, text):
            return text
        time.sleep(0.25)
    raise AssertionError(f"{what}: expected text matching {pattern!r}, the page showed {text!r}")


def line_points(page, plot_id: str) -> int:
    """Points on the first drawn line of a Plotly figure (an SVG path: one command a point)."""
    path = page.locator(f"#{plot_id} .scatterlayer .trace path.js-line").first
    return len(re.findall(r"[ML]", path.get_attribute("d") or "")) if path.count() else 0


def screenshot(page, name: str) -> None:
    page.add_style_tag(content=".toast-wrap {display: none !important}")  # earlier notices would cover the page
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def test_offline_notice_is_one_visible_line(page):
    notice = page.locator("#offline-notice")
    text = notice.inner_text().strip()
    assert notice.is_visible() and "bundled" in text and "\n" not in text


def test_distill_start_watch_curves_and_stop(page):
    expect = sync_api().expect
    open_tab(page, "Distill")
    set_number(page, "distill-steps", 600)  # evaluated every 100 steps; stopped long before the end
    set_number(page, "distill-batch-size", 8)
    set_number(page, "distill-max-length", 32)
    page.locator("#distill-start").click()
    status = page.locator("#run-status")
    text = text_of(status, r"running · step [1-9]\d* of 600", "the progress line of the new run")
    run_id = re.search(r"(\d{8}-\d{6}-[0-9a-f]{4})", text)[1]
    row = page.locator("#distill-runs tr", has_text=run_id)
    expect(row).to_contain_text("bundled-teacher")  # the teacher and depth asked for, from the start
    expect(row).to_contain_text(re.compile(r"\d L"))
    shared = page.locator("#distill-runs th", has_text="shared").first
    box, table_box = shared.bounding_box(), page.locator("#distill-runs").bounding_box()
    assert box and box["x"] + box["width"] <= table_box["x"] + table_box["width"] + 1, \
        f"the 'shared' column is cut off: header {box}, table {table_box}"
    expect(page.locator("#distill-stop")).to_be_enabled()
    deadline = time.time() + 120
    while line_points(page, "distill-losses") < 2 and time.time() < deadline:
        time.sleep(0.5)
    assert line_points(page, "distill-losses") >= 2, "the loss curve has fewer than two points"
    while line_points(page, "distill-eval") < 2 and time.time() < deadline + 180:
        time.sleep(0.5)
    assert line_points(page, "distill-eval") >= 2, "the evaluation curve has fewer than two points"
    screenshot(page, "distill-running")
    page.locator("#distill-stop").click()
    text = text_of(status, r"· stopped ·", "the progress line after Stop")
    assert "checkpoint saved" in text, text
    expect(page.locator("#distill-stop")).to_be_disabled()  # nothing left to stop
    page.reload()  # the stopped run's student (its last checkpoint) is offered as a teacher on the new page
    open_tab(page, "Distill")
    teacher = page.locator("#distill-teacher input")
    teacher.click()
    teacher.fill("run:")
    expect(page.get_by_role("option", name=f"run:{run_id}", exact=True)).to_be_visible()
    expect(page.get_by_role("option", name=f"run:{run_id}@init", exact=True)).to_be_visible()  # its untrained start
    teacher.press("Escape")


RUN_ID = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{4}$")


def pdf_named_txt(folder: Path, name: str) -> Path:
    """A PDF document renamed to .txt, as a person might upload it."""
    path = folder / name
    path.write_bytes(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + bytes(range(256)) * 8)
    return path


@pytest.mark.parametrize("tab, upload, box, name, note, back", [
    ("Distill", "upload a .txt", "distill-corpus-file", "notes.txt", "distill-corpus-note", "bundled corpus"),
    ("Embeddings", "Upload a file", "embed-upload", "sentences.txt", "embed-upload-note", "Probe set"),
])
def test_a_file_that_is_not_text_is_told_as_it_is_uploaded(page, tmp_path, tab, upload, box, name, note, back):
    expect = sync_api().expect
    open_tab(page, tab)
    page.get_by_text(upload, exact=True).click()
    page.locator(f"#{box} input[type=file]").set_input_files(str(pdf_named_txt(tmp_path, name)))
    shown = page.locator(f"#{note}")
    expect(shown).to_contain_text(f"'{name}' is a PDF document, not plain text; save or export it as plain text",
                                  timeout=60_000)
    screenshot(page, f"{tab.lower()}-upload-not-text")
    page.get_by_text(back, exact=True).click()
    expect(shown).to_be_hidden()


def app_runs_folder(tmp_path_factory) -> Path:
    """The runs folder of the page's app (beside its log)."""
    log = next(tmp_path_factory.getbasetemp().glob("browser*/app.log"), None)
    assert log is not None, "the app's log, beside its runs folder, was not found"
    runs = log.parent / "runs"
    runs.mkdir(exist_ok=True)
    return runs


def stopped_run(run: Path, created: float) -> Path:
    """A stopped run's folder from long ago, listed after any run of the other tests."""
    run.mkdir()
    (run / "status.json").write_text(json.dumps({"state": "stopped", "step": 10, "max_steps": 30,
                                                 "created": created}), encoding="utf-8")
    (run / "config.json").write_text(json.dumps({"teacher": "bundled-teacher", "max_steps": 30,
                                                 "student_layers": 2}), encoding="utf-8")
    return run


def choose_run(page, name: str):
    """The Distill tab, showing the run `name` as a person chooses it (typed into the run list once the runs table
    lists it), after its status line names it; returns the list's input."""
    open_tab(page, "Distill")
    text_of(page.locator("#distill-runs"), name, "the runs table with the run")
    shown = page.locator("#distill-run-shown input")
    shown.fill(name)
    shown.press("Enter")
    text_of(page.locator("#run-status"), name, "the status of the run chosen")
    return shown


def test_delete_asks_before_a_run_is_gone(page, tmp_path_factory):
    expect = sync_api().expect
    run = stopped_run(app_runs_folder(tmp_path_factory) / "20000101-000100-dd01", 946_684_700)
    try:
        choose_run(page, run.name)
        confirm, keep = page.locator("#distill-delete-confirm"), page.locator("#distill-delete-keep")
        page.locator("#distill-delete").click()
        expect(confirm).to_have_text(f"Delete {run.name} for good")
        page.wait_for_timeout(1000)
        assert run.is_dir(), "the first press deleted the run"
        keep.click()
        expect(confirm).to_be_hidden()
        expect(page.locator("#distill-delete")).to_be_visible()
        page.locator("#distill-delete").click()
        screenshot(page, "distill-delete-asks")
        confirm.click()
        expect(page.locator("#distill-delete")).to_be_visible(timeout=30_000)
        deadline = time.time() + 30
        while run.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert not run.exists(), "the confirmed delete left the run's folder"
    finally:
        shutil.rmtree(run, ignore_errors=True)


def test_the_runs_table_shows_nine_runs_before_it_scrolls(page, tmp_path_factory):
    runs = app_runs_folder(tmp_path_factory)
    made = [runs / f"20000101-0000{i:02d}-ab{i:02d}" for i in range(12)]
    try:
        for i, run in enumerate(made):
            stopped_run(run, 946_684_800 + i)
        open_tab(page, "Distill")
        table = page.locator("#distill-runs")
        text_of(table, made[-1].name, "the runs table after twelve runs were added")  # the timer refreshes it
        table.scroll_into_view_if_needed()
        in_view = table.evaluate("""(table, pattern) => {
            const box = table.getBoundingClientRect(), re = new RegExp(pattern);
            return [...new Set([...table.querySelectorAll("span")].filter(e => {
                const r = e.getBoundingClientRect();
                return re.test(e.innerText.trim()) && r.height > 0 && r.top >= box.top && r.bottom <= box.bottom;
            }).map(e => e.innerText.trim()))];
        }""", RUN_ID.pattern)
        screenshot(page, "distill-runs-table")
        assert len(in_view) >= 8, f"the runs table shows {len(in_view)} runs before it scrolls: {in_view}"
    finally:
        for run in made:
            shutil.rmtree(run, ignore_errors=True)


def test_predictions_show_both_models_bars(page):
    expect = sync_api().expect
    open_tab(page, "Predictions")
    page.locator("#predict-run").click()
    seen(page.locator("#predict-bars .barlayer .trace"), "bars of the models' top words")
    titles = page.locator("#predict-bars .gtitle, #predict-bars .annotation-text").all_text_contents()
    assert any("teacher" in t for t in titles) and any("student" in t for t in titles), titles
    expect(page.locator("#predict-agreement")).to_contain_text(re.compile("top-1", re.IGNORECASE))
    page.locator("#predict-sentence textarea").fill("Я поставил чайник, будешь чай с печеньем?")
    page.locator("#predict-each-word").click()
    seen(page.locator("#predict-strip .hm"), "the per-word agreement strip")
    page.locator("#predict-summary").click()
    expect(page.locator("#predict-summary-table")).to_contain_text("bundled-student", timeout=60_000)
    screenshot(page, "predictions")
    # a failed Predict takes the previous sentence's results and downloads off the page
    expect(page.locator("#predict-download-csv")).to_be_visible()
    page.locator("#predict-sentence textarea").fill("Предложение без пропуска.")
    page.locator("#predict-run").click()
    expect(page.locator("#predict-status")).to_contain_text("Predict failed", timeout=30_000)
    expect(page.locator("#predict-agreement")).not_to_contain_text(re.compile("top-1", re.IGNORECASE))
    expect(page.locator("#predict-download-csv")).to_be_hidden()
    expect(page.locator("#predict-bars .barlayer .trace")).to_have_count(0)


def overlaps(a: dict, b: dict) -> bool:
    """Whether two bounding boxes share any area."""
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def test_predictions_on_the_pages_defaults(page):
    """Mask each word on the default sentence (a probe holding [MASK]) answers; a top-k typed past the range is
    refused, not moved into it; the probe summary's bars are each named, the legend clear of their labels."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Predictions")
    page.locator("#predict-each-word").click()
    seen(page.locator("#predict-strip .hm"), "the per-word strip of the default sentence")
    words = page.locator("#predict-strip-words")
    expect(words).to_contain_text("was filled in with the probe set's expected word first")
    expect(words).to_contain_text("(filled in)")
    expect(page.locator("#predict-status")).not_to_contain_text("failed")
    top_k = page.locator("#predict-top-k input[type=number]")
    for typed in ("50", "0"):
        top_k.fill(typed)
        top_k.press("Tab")
        assert top_k.input_value() == typed, f"Top-k {typed} was changed to {top_k.input_value()} on the page"
        page.locator("#predict-run").click()
        expect(page.locator("#predict-status")).to_contain_text(
            f"Predict failed: Top-k must be a whole number from 1 to 20; got {typed}.", timeout=30_000)
    set_number(page, "predict-top-k", 5)
    page.set_viewport_size({"width": 760, "height": 1000})  # narrow, where the legend once covered the labels
    try:
        page.locator("#predict-summary").click()
        plot = page.locator("#predict-summary-plot")
        seen(plot.locator(".barlayer .point"), "bars of the probe summary", at_least=4)
        page.wait_for_timeout(1000)  # the figure is laid out again for the narrow page
        labels = plot.locator(".xtick text, .xtick2 text, .x2tick text")
        texts = labels.all_text_contents()
        for text in ("model 1", "model 2", "accuracy", "top-1 agreement", "top-5 overlap"):
            assert text in texts, f"no tick label {text!r} under the probe summary's bars: {texts}"
        legend = plot.locator(".legend").bounding_box()
        covered = [labels.nth(i).text_content() for i in range(labels.count())
                   if overlaps(labels.nth(i).bounding_box(), legend)]
        assert not covered, f"the legend covers the tick labels {covered}"
        expect(plot.locator(".legend")).to_contain_text("1. bundled-teacher")
        screenshot(page, "predictions-summary-narrow")
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def test_embedding_map_is_drawn(page):
    open_tab(page, "Embeddings")
    page.locator("#embed-method").get_by_text("UMAP", exact=True).click()  # as the lesson asks: topics as islands
    page.locator("#embed-draw").click()
    seen(page.locator("#embed-map .scatterlayer .point"), "points of the probe sentences on the map", at_least=100)
    screenshot(page, "embeddings")


def test_short_benchmark_fills_the_table(page):
    open_tab(page, "Benchmark")
    models = page.locator("#bench-models input")
    models.click()
    for _ in range(4):
        models.press("Backspace")  # remove the card's two architectures
    for name in ("bundled-teacher", "bundled-student"):
        models.fill(name)
        models.press("Enter")
    page.locator("#bench-batch-sizes textarea").fill("1")
    set_number(page, "bench-seq-len", 32)
    page.locator("#bench-modes").get_by_text("fast", exact=True).click()  # reference only: a quick measurement
    sync_api().expect(page.get_by_text("2 measurements of 2 models")).to_be_visible()  # the estimate comes first
    page.locator("#bench-run").click()
    results = sync_api().expect(page.locator("#bench-results"))
    for name in ("bundled-teacher", "bundled-student", "float32"):  # a row per model, streamed in as measured
        results.to_contain_text(name, timeout=120_000)
    screenshot(page, "benchmark")


def test_about_tab_teaches(page):
    expect = sync_api().expect
    open_tab(page, "About")
    expect(page.get_by_text("A 10-minute lesson")).to_be_visible()
    expect(page.get_by_text("The model card's speed table")).to_be_visible()
    seen(page.locator(".katex"), "formulas of the three losses, typeset", at_least=3)
    expect(page.locator("table", has_text="distilrubert-small-cased-conversational").first).to_be_visible()
    screenshot(page, "about")


def set_benchmark(page, models: list[str], batch_sizes: str, seq_len: int, runs: int) -> None:
    """The Benchmark tab's form set to `models`, reference mode only, and the sizes given, whatever it held."""
    open_tab(page, "Benchmark")
    box = page.locator("#bench-models input")
    box.click()
    while page.locator("#bench-models .token").count():  # each chosen model is a token with its own remove button
        page.locator("#bench-models .token .token-remove").first.click()
    for name in models:
        box.fill(name)
        box.press("Enter")
    box.press("Escape")
    page.locator("#bench-batch-sizes textarea").fill(batch_sizes)
    set_number(page, "bench-seq-len", seq_len)
    set_number(page, "bench-runs", runs)
    page.locator("#bench-modes").get_by_role("checkbox", name="reference", exact=True).set_checked(True)
    page.locator("#bench-modes").get_by_role("checkbox", name="fast", exact=True).set_checked(False)


def run_button_is_ready(page) -> None:
    """Run enabled under its own label, Stop disabled: what the page shows when nothing of its own is measured."""
    expect = sync_api().expect
    expect(page.locator("#bench-run")).to_be_enabled(timeout=30_000)
    expect(page.locator("#bench-run")).to_have_text("Run benchmark")
    expect(page.locator("#bench-stop")).to_be_disabled()


def test_benchmark_run_button_is_disabled_while_its_benchmark_runs(page):
    expect = sync_api().expect
    set_benchmark(page, ["bundled-teacher", "bundled-student"], "1", 32, 50)
    expect(page.locator("#bench-estimate")).to_contain_text("Before you run: 2 measurements of 2 models")
    run_button_is_ready(page)
    page.locator("#bench-run").click()
    # a second click could not start a second benchmark, and the button says so
    expect(page.locator("#bench-run")).to_be_disabled(timeout=10_000)
    expect(page.locator("#bench-run")).to_have_text("Running…")
    expect(page.locator("#bench-stop")).to_be_enabled()
    text_of(page.locator("#bench-progress"), r"done: 2 measurements", "the progress line once the benchmark ends")
    run_button_is_ready(page)


def test_benchmark_estimate_during_a_run_is_for_the_next_one_and_stop_frees_the_button(page):
    expect = sync_api().expect
    set_benchmark(page, ["bundled-teacher", "bundled-student"], "8,16", 128, 50)  # a minute or more; stopped early
    page.locator("#bench-run").click()
    expect(page.locator("#bench-run")).to_be_disabled(timeout=10_000)
    text_of(page.locator("#bench-progress"), r"starting|measuring|warm", "the progress line of the running benchmark")
    page.locator("#bench-batch-sizes textarea").fill("1")  # new settings while the old ones are measured
    estimate = page.locator("#bench-estimate")
    expect(estimate).to_contain_text("Before your next run: 2 measurements of 2 models", timeout=30_000)
    expect(estimate).to_contain_text("keeps the settings it started with")
    screenshot(page, "benchmark-running")
    expect(page.locator("#bench-run")).to_be_disabled()  # still running: the estimate above was not of this run
    page.locator("#bench-stop").click()
    text_of(page.locator("#bench-progress"), r"stopped after", "the progress line after Stop")
    run_button_is_ready(page)


def test_benchmark_run_button_is_enabled_again_after_a_refused_request(page):
    expect = sync_api().expect
    notices = page.locator(".toast-wrap")  # textContent: screenshot() hides the notices from view
    # a mistake the benchmark itself answers: an error notice, and Run is offered again
    set_benchmark(page, ["bundled-student"], "0", 32, 1)
    page.locator("#bench-run").click()
    expect(notices).to_contain_text("Batch size must be at least 1", timeout=30_000)
    run_button_is_ready(page)
    # a request over the time limit, refused before it is queued: a notice says why, and Run is offered again
    card_models = ["arch:rubert-base-cased-conversational", "arch:distilrubert-base-cased-conversational"]
    set_benchmark(page, card_models, ",".join(map(str, range(1, 65))), 512, 50)
    expect(page.locator("#bench-estimate")).to_contain_text("Cannot run as set: This measurement would take about",
                                                            timeout=60_000)
    page.locator("#bench-run").click()
    expect(notices).to_contain_text("This measurement would take about", timeout=30_000)
    run_button_is_ready(page)
    expect(page.locator("#bench-progress")).not_to_contain_text("starting")


def test_predictions_of_a_sentence_that_is_not_russian_carry_a_note(page):
    """English is predicted all the same, with one line saying the models know Russian; Mask each word too, and a
    Russian sentence carries no such line."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Predictions")
    sentence, note = page.locator("#predict-sentence textarea"), "the models here know Russian"
    sentence.fill("The cat sat on the [MASK].")
    page.locator("#predict-run").click()
    seen(page.locator("#predict-bars .barlayer .trace"), "bars of the English sentence")
    agreement = page.locator("#predict-agreement")
    text_of(agreement, "This sentence has no Russian words; " + note, "the note under the English sentence")
    expect(agreement).to_contain_text(re.compile("top-1", re.IGNORECASE))  # its results shown under the note
    expect(page.locator("#predict-status")).not_to_contain_text("failed")
    screenshot(page, "predictions-not-russian")
    sentence.fill("Der Hund bellt laut")
    page.locator("#predict-each-word").click()
    text_of(page.locator("#predict-strip-words"), "This sentence has no Russian words", "the note of Mask each word")
    seen(page.locator("#predict-strip .hm"), "the per-word strip of the German sentence")
    sentence.fill("Не забудь взять [MASK], на улице дождь.")
    page.locator("#predict-run").click()
    text_of(agreement, r"Не забудь взять", "the Russian sentence's results")
    expect(agreement).not_to_contain_text(note)


def test_a_reloaded_page_opens_on_the_persons_run_and_draws_it(page):
    """After a reload the run list shows the person's run without being chosen again, its progress and curves drawn:
    the run training now, and once it has finished, still the newest."""
    expect = sync_api().expect
    page.reload()  # no answer of an earlier test's action still on its way to this page
    open_tab(page, "Distill")
    set_number(page, "distill-steps", 40)  # a loss logged every 10 steps
    set_number(page, "distill-batch-size", 8)
    set_number(page, "distill-max-length", 32)
    page.locator("#distill-start").click()
    text = text_of(page.locator("#run-status"), r"(running · step [1-9]\d*|finished · step \d+) of 40",
                   "the progress line of the new run")
    run_id = re.search(r"(\d{8}-\d{6}-[0-9a-f]{4})", text)[1]
    for state in ("running|finished", "finished"):  # reloaded while it trains, then once it has finished
        page.reload()
        open_tab(page, "Distill")
        expect(page.locator("#distill-run-shown input")).to_have_value(run_id, timeout=30_000)
        text_of(page.locator("#run-status"), rf"{run_id} · ({state}) · step", "the progress line after a reload")
        seen(page.locator("#distill-eval .scatterlayer .point"), "the evaluations drawn after a reload", timeout=240)
        deadline = time.time() + 240
        while line_points(page, "distill-losses") < 2 and time.time() < deadline:
            time.sleep(0.5)
        assert line_points(page, "distill-losses") >= 2, "the reloaded page drew no loss curve"
        text_of(page.locator("#run-status"), r"· finished ·", "the progress line once the run ends", timeout=240)
    screenshot(page, "distill-reloaded")


def bar_labels(page, plot_id: str) -> tuple[int, list[str]]:
    """A bar chart's bars, and the value labels a person can see on them."""
    plot = page.locator(f"#{plot_id} .barlayer .point")
    texts = page.locator(f"#{plot_id} .barlayer .point text")
    return plot.count(), [texts.nth(i).text_content() for i in range(texts.count()) if texts.nth(i).is_visible()]


def test_benchmark_charts_label_every_bar_once_the_streamed_run_ends(page):
    """The charts are redrawn as each measurement arrives; the last bar (the student in fast mode, missing from
    every earlier drawing) has its value above it like the others."""
    set_benchmark(page, ["bundled-teacher", "bundled-student"], "1", 32, 3)
    page.locator("#bench-modes").get_by_role("checkbox", name="fast", exact=True).set_checked(True)
    sync_api().expect(page.locator("#bench-estimate")).to_contain_text("4 measurements of 2 models")
    page.locator("#bench-run").click()
    sync_api().expect(page.locator("#bench-run")).to_be_disabled(timeout=10_000)  # this run's line, not an earlier
    text_of(page.locator("#bench-progress"), r"done: 4 measurements", "the progress line once the benchmark ends")
    for plot_id in ("bench-latency", "bench-throughput"):
        deadline = time.time() + 10  # the last figure may still be drawing when the progress line says done
        while (shown := bar_labels(page, plot_id))[0] != len(shown[1]) and time.time() < deadline:
            time.sleep(0.25)
        bars, labels = shown
        assert bars == 4, f"{plot_id}: expected reference and fast bars for both models, the page drew {bars}"
        assert len(labels) == bars and all(re.fullmatch(r"[\d.,]+", t) for t in labels), \
            f"{plot_id}: {bars} bars but these value labels: {labels}"
    screenshot(page, "benchmark-charts-labelled")


def test_a_refused_start_stays_on_the_status_line_after_its_toast(page):
    """Start refused: the sentence is still on the status line once the toast has faded (10 s) and the timer has
    redrawn the line several times."""
    open_tab(page, "Distill")
    set_number(page, "distill-batch-size", 1_000_000)
    try:
        page.locator("#distill-start").click()
        said = r"Start run refused: Batch size must be a whole number from 1 to 100,000; got 1,000,000"
        text_of(page.locator("#run-status"), said, "the status line after a refused Start", timeout=30)
        page.wait_for_timeout(12_000)  # past the toast's 10 s: five ticks of the timer
        text_of(page.locator("#run-status"), said, "the status line once the toast has gone", timeout=1)
        screenshot(page, "distill-start-refused")
    finally:
        set_number(page, "distill-batch-size", 8)


def run_with_losses(run: Path, created: float) -> Path:
    """stopped_run with a loss and an evaluation logged at steps 0 to 10, so that both plots draw axes."""
    stopped_run(run, created)
    rows = [{"step": 0, "eval_agreement": 0.1, "eval_mlm_acc": 0.1, "eval_teacher_mlm_acc": 0.3}] + [
        {"step": s, "loss": 5.0 - s / 10, "loss_kl": 1.0, "loss_mlm": 2.0, "loss_cos": 0.4, "eval_agreement": 0.2,
         "eval_mlm_acc": 0.2, "eval_teacher_mlm_acc": 0.3} for s in (5, 10)]
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return run


def test_the_plots_name_their_axes_and_delete_shows_the_newest_run_left(page, tmp_path_factory):
    from core.runs.store import list_runs
    expect = sync_api().expect
    runs = app_runs_folder(tmp_path_factory)
    older = run_with_losses(runs / "20000101-000200-ee01", 946_684_900)
    newer = run_with_losses(runs / "20000101-000201-ee02", 946_684_901)
    try:
        shown = choose_run(page, newer.name)
        for plot_id, titles in [("distill-losses", ["α-weighted sum (nats + unitless)",
                                                    "nats (KL, MLM); unitless (cos, MSE)"]),
                                ("distill-eval", ["share of masked positions (%)"])]:
            plot = page.locator(f"#{plot_id}")
            y_titles = plot.locator(".g-ytitle text, .g-y2title text")  # plotly's classes of the first two y axes
            seen(y_titles, f"the y-axis titles of {plot_id}", len(titles), timeout=30)
            box = plot.bounding_box()
            for title in titles:
                drawn = y_titles.filter(has_text=title)
                expect(drawn).to_be_visible()
                where = drawn.bounding_box()
                assert where["x"] >= box["x"] and where["y"] >= box["y"] and \
                    where["y"] + where["height"] <= box["y"] + box["height"] + 1, \
                    f"{plot_id}: the title {title!r} is cut by the plot's edge: title {where}, plot {box}"
        screenshot(page, "distill-axes-titled")
        page.locator("#distill-delete").click()
        page.locator("#distill-delete-confirm").click()
        deadline = time.time() + 30
        while newer.exists() and time.time() < deadline:
            time.sleep(0.2)
        assert not newer.exists(), "the confirmed delete left the run's folder"
        left = list_runs(runs)[0]["id"]  # newest first; every run is the person's own on this app
        expect(shown).to_have_value(left, timeout=30_000)
        text_of(page.locator("#run-status"), rf"\*?\*?{left}\*?\*? · ", "the status of the run shown after Delete",
                timeout=30)
    finally:
        for run in (older, newer):
            shutil.rmtree(run, ignore_errors=True)


EMBED_EIGHT = ["Мы ходили в кино.", "Кошка спит на диване.", "Завтра обещают дождь.", "Я люблю читать книги.",
               "Поезд опаздывает на час.", "Мама готовит суп.", "Купи хлеба по дороге домой.", "Матч начнётся в семь."]


def test_embedding_downloads_follow_the_maps_on_the_page(page):
    """Neighbours offers its list as a file; drawing the maps again (other sentences) takes the list and its file
    away, and each map's axes say which component they show."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Embeddings")
    page.get_by_role("radio", name="Typed sentences").check()
    typed = page.get_by_label("Sentences, one a line")
    typed.fill("\n".join(EMBED_EIGHT))
    page.locator("#embed-draw").click()
    expect(page.locator("#embed-download-map-csv")).to_be_visible(timeout=120_000)
    expect(page.locator("#embed-map .g-xtitle")).to_have_text("PCA component 1")
    expect(page.locator("#embed-map .g-ytitle")).to_have_text("PCA component 2")
    expect(page.locator("#embed-download-neighbours-csv")).to_be_hidden()
    page.locator("#embed-chosen input").click()
    page.get_by_role("option", name="3. Я люблю читать книги.").click()  # picking it asks for its neighbours
    neighbours_file = page.locator("#embed-download-neighbours-csv")
    expect(neighbours_file).to_be_visible(timeout=120_000)
    link = neighbours_file.locator("a")
    expect(link).to_have_attribute("href", re.compile(r"/neighbours\.csv$"))
    rows = page.request.get(link.get_attribute("href")).text().splitlines()
    assert rows[0].startswith("sentence number,sentence,") and ",neighbour," in rows[0], rows[0]
    assert all(row.startswith("3,Я люблю читать книги.,") for row in rows[1:]) and len(rows) == 1 + 2 * 5, rows
    expect(page.locator("#embed-neighbours")).to_contain_text("(#")  # a neighbour, by its text and number
    screenshot(page, "embeddings-neighbours-file")
    typed.fill("\n".join(EMBED_EIGHT[:6]))
    page.locator("#embed-draw").click()
    expect(neighbours_file).to_be_hidden(timeout=120_000)
    expect(page.locator("#embed-neighbours")).not_to_contain_text("(#")  # the table is empty again
    expect(page.locator("#embed-download-map-csv")).to_be_visible()
    expect(page.locator("#embed-map")).to_contain_text("PCA 2D of 6 sentences")


def test_neighbours_of_a_sentence_not_in_the_set_says_so_and_keeps_the_maps(page):
    """A number typed into the sentence list that the set does not have is answered on the page (the status line),
    the maps drawn stay, unmarked by an error; a Draw that fails empties the sentence list with the maps."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Embeddings")
    page.get_by_role("radio", name="Typed sentences").check()
    typed = page.get_by_label("Sentences, one a line")
    typed.fill("\n".join(EMBED_EIGHT))
    page.locator("#embed-draw").click()
    expect(page.locator("#embed-map")).to_contain_text("PCA 2D of 8 sentences", timeout=120_000)
    chosen = page.locator("#embed-chosen input")
    chosen.fill("99")
    chosen.press("Enter")
    page.locator("#embed-neighbours-run").click()
    expect(page.locator("#embed-neighbours-status")).to_contain_text(
        "Neighbours failed: There is no sentence 99; the set has sentences 0 to 7.", timeout=60_000)
    expect(page.locator("#embed-map")).to_contain_text("PCA 2D of 8 sentences")
    screenshot(page, "embeddings-neighbours-refused")
    typed.fill(EMBED_EIGHT[0])
    page.locator("#embed-draw").click()
    expect(page.locator("#embed-status")).to_contain_text("Draw failed:", timeout=60_000)
    expect(chosen).to_have_value("")
    expect(page.locator("#embed-chosen")).not_to_contain_text("Error")


TABLE_FIT = """table => {
    const viewport = table.querySelector('.virtual-table-viewport') || table;
    const headers = [...table.querySelectorAll('th')].map(th => {
        const walker = document.createTreeWalker(th, NodeFilter.SHOW_TEXT);
        let lines = 0, text = '';
        while (walker.nextNode()) {
            const words = walker.currentNode.textContent.replace('\u22ee', '').trim();  // less the column menu's mark
            if (!words) continue;
            const range = document.createRange();
            range.selectNodeContents(walker.currentNode);
            lines += range.getClientRects().length;
            text += words;
        }
        return [text, lines];
    }).filter(([text]) => text);
    return {sideways: viewport.scrollWidth - viewport.clientWidth, headers};
}"""


def bench_errors_shown(page) -> int:
    """The bare "Error" marks a person sees on the page (the notices hidden: they say more than that)."""
    page.add_style_tag(content=".toast-wrap {display: none !important}")
    return page.locator(":text-is('Error'):visible").count()


def test_benchmark_tables_fit_and_a_refused_run_takes_the_previous_results_away(page):
    """At a 1280-pixel window every table fits without sideways scrolling, each header word on one line. A run then
    refused, by the run itself (batch sizes "abc") or before it is queued (over the time limit), says why on the
    progress line, leaves no bare "Error" mark, and no longer shows the earlier rows, charts or files as its own."""
    expect = sync_api().expect
    page.set_viewport_size({"width": 1280, "height": 1000})
    try:
        set_benchmark(page, ["bundled-student"], "1", 16, 1)
        expect(page.locator("#bench-estimate")).to_contain_text("Before you run: 1 measurement of 1 model")
        page.locator("#bench-run").click()
        expect(page.locator("#bench-run")).to_be_disabled(timeout=10_000)
        text_of(page.locator("#bench-progress"), r"done: 1 measurement", "the progress line once the benchmark ends")
        results, csv_link = page.locator("#bench-results"), page.locator("#bench-csv a")
        expect(results).to_contain_text("bundled-student")
        expect(csv_link).to_be_visible()
        for table_id in ("bench-results", "bench-card", "bench-ratios"):
            fit = page.locator(f"#{table_id}").evaluate(TABLE_FIT)
            assert fit["sideways"] <= 0, f"{table_id} scrolls sideways by {fit['sideways']} px"
            broken = [(text, lines) for text, lines in fit["headers"] if lines > len(text.split())]
            assert len(fit["headers"]) >= 5 and not broken, f"{table_id}: headers broken inside a word: {broken}"
        screenshot(page, "benchmark-tables-1280")
        page.locator("#bench-batch-sizes textarea").fill("abc")
        page.locator("#bench-run").click()
        # said once on the page: on the line above Run, where it stays until the settings are fixed
        text_of(page.locator("#bench-estimate"), r"Cannot run as set: Batch sizes must be whole numbers separated by "
                r"commas, such as 1,16; got 'abc'\.", "the estimate line after a refused run", timeout=30)
        text_of(page.locator("#bench-progress"), r"^\s*$", "the progress line after a refused run", timeout=30)
        expect(results).not_to_contain_text("bundled-student")
        expect(csv_link).to_have_count(0)
        expect(page.locator("#bench-latency .barlayer .trace")).to_have_count(0)
        assert bench_errors_shown(page) == 0, "a bare Error mark is left on the Benchmark tab"
        run_button_is_ready(page)
        screenshot(page, "benchmark-refused")
        card_models = ["arch:rubert-base-cased-conversational", "arch:distilrubert-base-cased-conversational"]
        set_benchmark(page, card_models, ",".join(map(str, range(1, 65))), 512, 50)
        expect(page.locator("#bench-estimate")).to_contain_text("Cannot run as set: This measurement would take",
                                                                timeout=60_000)
        page.locator("#bench-run").click()
        text_of(page.locator("#bench-progress"), r"^\s*$", "the progress line after a run over the time limit",
                timeout=30)
        expect(page.locator("#bench-estimate")).to_contain_text("Cannot run as set: This measurement would take")
        assert bench_errors_shown(page) == 0, "a bare Error mark is left after the time limit's refusal"
        run_button_is_ready(page)
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


# ---------------------------------------------------------------------------------------------------------------------
# The Predictions tab's input: a blank typed another way, an emptied model box, a visitor over the limit


def test_predictions_say_how_to_write_a_mistyped_blank(page):
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Predictions")
    sentence, status = page.locator("#predict-sentence textarea"), page.locator("#predict-status")
    sentence.fill("Не забудь взять [MASK, на улице дождь.")
    page.locator("#predict-run").click()
    expect(status).to_contain_text(
        "Predict failed: The text has no [MASK]: '[MASK' has no closing bracket, so the models would read it as text; "
        "write the blank as [MASK] where a word is missing", timeout=60_000)
    sentence.fill("Не забудь взять [ MASK ], на улице дождь.")
    page.locator("#predict-each-word").click()
    expect(status).to_contain_text(
        "Mask each word failed: '[ MASK ]' has spaces inside its brackets, so the models would read it as text. Write "
        "[MASK] in capitals where a word is to be filled in first, or remove the mark.", timeout=60_000)
    screenshot(page, "predictions-mistyped-blank")


def test_an_emptied_model_box_comes_back_to_its_default_or_names_one(page):
    """Enter in an emptied box takes the first model of its list, the box's own default (offline once a Hub model
    that could not load); an empty box left so is named, with the model to choose."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Predictions")
    box = page.locator("#predict-model-2 input")
    box.click()
    box.fill("")
    box.press("Enter")
    expect(box).to_have_value("bundled-student")
    box.click()
    box.fill("")
    box.press("Tab")
    expect(box).to_have_value("")
    page.locator("#predict-run").click()
    expect(page.locator("#predict-status")).to_contain_text(
        "Predict failed: Choose a second model to compare with bundled-teacher, such as bundled-student as model 2.",
        timeout=60_000)
    page.reload()


def test_predictions_over_the_visitor_limit_say_so_on_the_page(page, monkeypatch, tmp_path):
    """A second action while the visitor's one place is taken: refused before it is queued, in the status line and a
    notice (a validator's refusal showed nothing on the page); the first prediction still arrives."""
    import threading

    import gradio as gr

    from core.compare import predict
    from train.launcher import RunLauncher
    from ui import predict_tab
    from ui.context import AppContext

    expect = sync_api().expect
    release, compare = threading.Event(), predict.compare

    def held(*args, **kwargs):  # still running when the second click comes
        release.wait(120)
        return compare(*args, **kwargs)

    monkeypatch.setattr(predict, "compare", held)
    monkeypatch.setattr(predict_tab, "PER_SESSION", 1)
    with gr.Blocks() as demo:
        predict_tab.build(AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(tmp_path / "runs")))
    demo.queue().launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    visitor = page.context.browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        visitor.goto(demo.local_url)
        visitor.locator("#predict-run").click()
        deadline = time.time() + 60
        while not any(e.concurrency_id == predict_tab.QUEUE_GROUP for e in demo._queue.event_ids_to_events.values()):
            assert time.time() < deadline, "the first prediction was never queued"
            time.sleep(0.1)
        visitor.locator("#predict-each-word").click()
        said = ("You already have 1 prediction waiting or running, the most this app takes from one visitor at a "
                "time; wait for it to finish.")
        expect(visitor.locator("#predict-status")).to_contain_text(f"Mask each word failed: {said}", timeout=60_000)
        expect(visitor.locator(".toast-wrap")).to_contain_text(said)
        screenshot(visitor, "predictions-visitor-limit")
        release.set()
        seen(visitor.locator("#predict-bars .barlayer .trace"), "bars of the prediction let through")
    finally:
        release.set()
        visitor.close()
        demo.close()


def test_delete_of_a_training_run_says_to_stop_it_first_and_the_confirmation_sits_beside_keep(page, tmp_path_factory):
    """Delete of a run still training is refused at once, before any confirmation, saying to press Stop first; for a
    stopped run the confirmation and Keep it sit side by side."""
    import os
    expect = sync_api().expect
    runs = app_runs_folder(tmp_path_factory)
    stopped = stopped_run(runs / "20000101-000300-ff01", 946_685_000)
    training = stopped_run(runs / "20000101-000301-ff02", 946_685_001)
    status = json.loads((training / "status.json").read_text(encoding="utf-8"))
    status.update(state="running", pid=os.getpid())  # a live process: this one
    (training / "status.json").write_text(json.dumps(status), encoding="utf-8")
    confirm, keep = page.locator("#distill-delete-confirm"), page.locator("#distill-delete-keep")
    try:
        choose_run(page, training.name)
        page.locator("#distill-delete").click()
        expect(page.locator(".toast-wrap")).to_contain_text(
            f"Run {training.name} is running: press Stop first (it saves a checkpoint and ends), then Delete.",
            timeout=30_000)
        expect(confirm).to_be_hidden()
        assert training.is_dir()
        choose_run(page, stopped.name)
        page.locator("#distill-delete").click()
        expect(confirm).to_have_text(f"Delete {stopped.name} for good", timeout=30_000)
        expect(keep).to_be_visible()
        asked, kept = confirm.bounding_box(), keep.bounding_box()
        assert abs(asked["y"] - kept["y"]) < 2 and kept["x"] >= asked["x"] + asked["width"], \
            f"Keep it is not beside the confirmation: confirmation {asked}, Keep it {kept}"
        screenshot(page, "distill-delete-side-by-side")
        keep.click()
        expect(confirm).to_be_hidden()
    finally:
        for run in (stopped, training):
            shutil.rmtree(run, ignore_errors=True)


def test_a_corpus_the_teacher_cannot_read_is_told_under_its_box_and_refused_by_start(page, tmp_path):
    """A corpus of emoji and symbols: the line under the corpus box gives its share of unknown tokens as it is
    uploaded, and Start run is refused with that sentence on the status line."""
    expect = sync_api().expect
    open_tab(page, "Distill")
    corpus = tmp_path / "emoji.txt"
    corpus.write_text("\n".join(["😀🎉 🔥🔥 👍 ✨✨"] * 40) + "\n", encoding="utf-8")
    page.get_by_text("upload a .txt", exact=True).click()
    clear = page.locator("#distill-corpus-file button[aria-label='Clear']")  # a file an earlier test left there
    try:
        expect(page.locator("#distill-corpus-file")).to_be_visible(timeout=30_000)
        if clear.count():
            clear.click()
        page.locator("#distill-corpus-file input[type=file]").set_input_files(str(corpus))
        said = "100% of the tokens of the corpus 'emoji.txt' are unknown to the teacher's tokenizer ([UNK])"
        expect(page.locator("#distill-corpus-note")).to_contain_text(said, timeout=60_000)
        page.locator("#distill-start").click()
        text_of(page.locator("#run-status"), re.escape(f"Start run refused: {said}"),
                "the status line after Start with a corpus the teacher cannot read", timeout=60)
        screenshot(page, "distill-corpus-unreadable")
    finally:
        if clear.count():
            clear.click()
        page.get_by_text("bundled corpus", exact=True).click()


EMBED_WITH_EMOJI = ["🐱", "Кошка спит на диване.", "🚀", "Завтра обещают дождь.", "🍕", "Мы ходили в кино.",
                    "Кошка 🐱", "Кошка 🚀"]


def test_neighbours_with_other_settings_shows_their_own_scores_beside_the_maps(page):
    """Draw, then Neighbours with another layer and sentence vector: the how-alike table, its file and the note are
    of the maps Neighbours drew, not of Draw's."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Embeddings")
    page.get_by_role("radio", name="Typed sentences").check()
    page.get_by_label("Sentences, one a line").fill("\n".join(EMBED_EIGHT))
    page.locator("#embed-draw").click()
    scores = page.locator("#embed-scores")
    expect(scores).to_contain_text("1. bundled-teacher (L4)", timeout=120_000)
    set_number(page, "embed-layer-1", 2)
    page.locator("#embed-pooling").get_by_text("CLS", exact=True).click()
    page.locator("#embed-chosen input").click()
    page.get_by_role("option", name="3. Я люблю читать книги.").click()  # picking it asks for its neighbours
    expect(page.locator("#embed-map")).to_contain_text("bundled-teacher · layer 2/4 · cls", timeout=120_000)
    expect(scores).to_contain_text("1. bundled-teacher (L2)", timeout=30_000)
    expect(scores).not_to_contain_text("(L4)")
    link = page.locator("#embed-download-scores-csv a")
    expect(link).to_have_attribute("href", re.compile(r"/how-alike\.csv$"))
    rows = page.request.get(link.get_attribute("href")).text().splitlines()
    assert rows[1].startswith("1. bundled-teacher (L2),2. bundled-student (L2),"), rows
    expect(page.locator("#embed-note")).to_contain_text("8 sentences:")
    expect(page.locator("#embed-chosen input")).to_have_value("3. Я люблю читать книги.")  # the list kept its choice
    screenshot(page, "embeddings-neighbours-other-settings")
    page.get_by_role("button", name="Layer similarity").click()  # its title names the sentence vector it shows
    layers = page.locator("#embed-layers")
    expect(layers).to_contain_text("8 sentences (the typed text), [CLS] vectors", timeout=120_000)
    expect(layers).to_contain_text("CKA is unreliable with fewer than 20 sentences")
    expect(layers).to_contain_text("A blank cell: every sentence has the same vector at one of its layers")
    layers.scroll_into_view_if_needed()
    layers.screenshot(path=SCREENSHOTS / "embeddings-layers-few-sentences.png")


def test_embeddings_say_which_sentences_share_a_point_and_what_the_upload_box_takes(page, tmp_path):
    """Emoji the tokenizer has no piece for are named in the note; three sentences for UMAP are refused with how
    many to add; the upload box names every file type it takes and refuses a Windows-1251 file by the encoding to
    use."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Embeddings")
    page.get_by_role("radio", name="Typed sentences").check()
    typed = page.get_by_label("Sentences, one a line")
    typed.fill("\n".join(EMBED_WITH_EMOJI))
    page.locator("#embed-draw").click()
    note = page.locator("#embed-note")
    expect(note).to_contain_text("3 sentences (#0, #2 and #4) are only unknown tokens ([UNK]) to bundled-teacher",
                                 timeout=120_000)
    expect(note).to_contain_text("2 sentences (#6 and #7) differ only in characters unknown to bundled-teacher and "
                                 "bundled-student, read as [UNK]; they share one point on those maps.")
    screenshot(page, "embeddings-unknown-tokens-note")
    typed.fill("\n".join(EMBED_EIGHT[:3]))
    page.locator("#embed-method").get_by_text("UMAP", exact=True).click()
    page.locator("#embed-draw").click()
    expect(page.locator("#embed-status")).to_contain_text(
        "Draw failed: The maps need at least 4 different sentences; there are 3: add 1 more.", timeout=60_000)
    page.get_by_role("radio", name="Upload a file").check()
    box = page.locator("#embed-upload")
    expect(box).to_contain_text("UTF-8 .txt, .csv or .tsv")
    windows = tmp_path / "windows.txt"
    windows.write_bytes("\n".join(EMBED_EIGHT).encode("cp1251"))
    box.locator("input[type=file]").set_input_files(str(windows))
    expect(page.locator("#embed-upload-note")).to_contain_text("'windows.txt' is not UTF-8 text", timeout=60_000)
    expect(page.locator("#embed-upload-note")).to_contain_text("as UTF-8")
    screenshot(page, "embeddings-upload-windows-1251")


def test_embeddings_use_numbers_as_typed_or_refuse_them_and_name_uploads_as_given(page, tmp_path):
    """A neighbours count of 0 stays 0 and is refused (the slider made it 1 without a word); a layer a model lacks is
    refused with its range counted both ways, and a negative layer it has is said in the note; a file uploaded as
    nul.txt (stored by Gradio as _nul.txt) is named nul.txt."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Embeddings")
    page.get_by_role("radio", name="Typed sentences").check()
    page.get_by_label("Sentences, one a line").fill("\n".join(EMBED_EIGHT))
    set_number(page, "embed-layer-1", -6)
    page.locator("#embed-draw").click()
    expect(page.locator("#embed-status")).to_contain_text(
        "Draw failed: The layer of model 1 must be from -5 to 4 for bundled-teacher: 0 is its embeddings and 4 its "
        "last layer; negative layers count from the last, as in Python (-1 is layer 4, -5 is layer 0). Got -6.",
        timeout=120_000)
    set_number(page, "embed-layer-1", -5)
    page.locator("#embed-draw").click()
    expect(page.locator("#embed-note")).to_contain_text(
        "Layer -5 of model 1 is layer 0 of bundled-teacher: negative layers count from the last, as in Python",
        timeout=120_000)
    expect(page.locator("#embed-map")).to_contain_text("bundled-teacher · layer 0/4")
    k = page.locator("#embed-k input[type=number]")
    k.fill("0")
    k.press("Tab")
    assert k.input_value() == "0", f"the neighbours count 0 was changed to {k.input_value()} on the page"
    page.locator("#embed-chosen input").click()
    page.get_by_role("option", name="3. Я люблю читать книги.").click()  # picking it asks for its neighbours
    expect(page.locator("#embed-neighbours-status")).to_contain_text(
        "Neighbours failed: Neighbours must be a whole number from 1 to 20; got 0.", timeout=120_000)
    expect(page.locator("#embed-map")).to_contain_text("PCA 2D of 8 sentences")  # refused before it ran: the maps stay
    expect(page.locator("#embed-map")).not_to_contain_text("Error")
    screenshot(page, "embeddings-numbers-as-typed")
    set_number(page, "embed-k", 5)
    page.get_by_role("radio", name="Upload a file").check()
    named = tmp_path / "nul.txt"
    named.write_text("\n".join(EMBED_EIGHT), encoding="utf-8")
    page.locator("#embed-upload input[type=file]").set_input_files(str(named))
    note = page.locator("#embed-upload-note")
    expect(note).to_contain_text("nul.txt: 8 sentences.", timeout=60_000)
    expect(note).not_to_contain_text("_nul")


def test_layer_similarity_names_the_sentences_a_model_reads_alike(page):
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Embeddings")
    page.get_by_role("radio", name="Typed sentences").check()
    page.get_by_label("Sentences, one a line").fill("\n".join(EMBED_WITH_EMOJI))
    page.get_by_role("button", name="Layer similarity").click()
    layers = page.locator("#embed-layers")
    expect(layers).to_contain_text("3 sentences (#0, #2 and #4) are only unknown tokens ([UNK]) to bundled-teacher",
                                   timeout=120_000)
    expect(layers).to_contain_text("they share one vector at every layer")
    layers.scroll_into_view_if_needed()
    layers.screenshot(path=SCREENSHOTS / "embeddings-layers-same-tokens.png")


def run_stopped_at_a_checkpoint(run: Path) -> Path:
    """A run stopped at step 120 of 600, its checkpoint holding the bundled student's weights."""
    import torch
    from transformers import AutoModelForMaskedLM

    from core.models import zoo

    student = zoo.BUNDLED_DIR / zoo.KNOWN_MODELS["bundled-student"].bundled_dir
    (run / "checkpoints").mkdir(parents=True)
    (run / "status.json").write_text(json.dumps({"state": "stopped", "step": 120, "max_steps": 600,
                                                 "created": 946_684_900}), encoding="utf-8")
    (run / "config.json").write_text(json.dumps({"teacher": "bundled-teacher", "max_steps": 600,
                                                 "student_layers": 2}), encoding="utf-8")
    shutil.copytree(student, run / "student")
    state = AutoModelForMaskedLM.from_pretrained(student).state_dict()
    torch.save({"model": state, "step": 120}, run / "checkpoints" / "step-000120.pt")
    return run


def test_probe_summary_takes_top_k_and_a_stopped_runs_student_names_its_checkpoint(page, tmp_path_factory):
    expect = sync_api().expect
    run = run_stopped_at_a_checkpoint(app_runs_folder(tmp_path_factory) / "20000101-000200-ck01")
    try:
        page.reload()
        open_tab(page, "Predictions")
        set_number(page, "predict-top-k", 0)
        page.locator("#predict-summary").click()
        expect(page.locator("#predict-status")).to_contain_text(
            "Probe summary failed: Top-k must be a whole number from 1 to 20; got 0.", timeout=60_000)
        set_number(page, "predict-top-k", 3)
        second = page.locator("#predict-model-2 input")
        second.fill(f"run:{run.name}")
        second.press("Enter")
        page.locator("#predict-summary").click()
        table = page.locator("#predict-summary-table")
        expect(table).to_contain_text("top-3 overlap", timeout=120_000)
        expect(table).to_contain_text(f"run:{run.name} (the checkpoint at step 120 of 600, the run was stopped)")
        page.locator("#predict-run").click()
        expect(page.locator("#predict-agreement")).to_contain_text(
            f"run:{run.name}: the checkpoint at step 120 of 600, the run was stopped.", timeout=120_000)
        screenshot(page, "predictions-stopped-run-checkpoint")
    finally:
        shutil.rmtree(run, ignore_errors=True)


def notices_saying(page, sentence: str) -> int:
    """How many notices (toasts) on the page carry `sentence`; a notice grouping repeats holds each of them."""
    return page.locator("[data-testid=toast-text]", has_text=sentence).count()


@pytest.mark.parametrize("teacher, said", [
    ("", "Choose a model, such as bundled-teacher or bundled-student, or another from the list."),
    ("DeepPavlov/not-cached-here", "'DeepPavlov/not-cached-here' is on the Hugging Face Hub, which this machine "
                                   "cannot reach, and it is not cached")])
def test_a_teacher_start_refuses_is_one_notice(page, teacher, said):
    """A blank teacher showed "Error (2)", and a Hub model out of reach a warning and an error of one sentence: the
    teacher's change said it, then Start run again. The change now writes it under the teacher box, and Start run's
    refusal is the one notice."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Distill")
    box = page.locator("#distill-teacher input")
    try:
        box.click()
        box.fill(teacher)
        box.press("Enter" if teacher else "Tab")
        expect(page.locator("#distill-teacher-note")).to_contain_text(said, timeout=30_000)
        page.wait_for_timeout(2000)  # the change's own notice, if it still made one, would be here by now
        assert notices_saying(page, said) == 0, "the teacher's change made a notice"
        page.locator("#distill-start").click()
        text_of(page.locator("#run-status"), re.escape(f"Start run refused: {said}"), "the status after Start",
                timeout=30)
        page.wait_for_timeout(2000)
        assert notices_saying(page, said) == 1, f"{notices_saying(page, said)} notices say {said!r}"
        assert page.locator(".toast-title", has_text="Warning").count() == 0
        screenshot(page, "distill-teacher-refused-once")
    finally:
        box.click()
        box.fill("bundled-teacher")
        box.press("Enter")
        expect(page.locator("#distill-teacher-note")).to_be_hidden(timeout=30_000)


def test_student_layers_keep_what_is_typed_and_name_the_teachers_range(page):
    """The depth slider moved 0 to 1 and 99 to 4 without a word; the box keeps what was typed, and the line under it
    names the bundled teacher's 4 layers, as Start run's refusal does."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Distill")
    layers = page.locator("#distill-student-layers")
    expect(layers).to_contain_text("1 to 4: bundled-teacher has 4 layers", timeout=30_000)
    try:
        for typed in (0, 99):
            set_number(page, "distill-student-layers", typed)
            said = f"Student layers must be a whole number from 1 to 4 (bundled-teacher has 4 layers); got {typed}."
            expect(layers).to_contain_text(said, timeout=30_000)
            expect(layers.locator("input[type=number]")).to_have_value(str(typed))
        page.locator("#distill-start").click()
        text_of(page.locator("#run-status"), re.escape(f"Start run refused: {said}"), "the status after Start",
                timeout=30)
        screenshot(page, "distill-student-layers-out-of-range")
    finally:
        set_number(page, "distill-student-layers", 2)


def test_a_starting_run_shows_its_phase_and_runs_stopped_unstarted_go_in_one_press(page, tmp_path_factory):
    """After Start the line said "Starting ..." for a minute with no sign of progress: it names what the run does.
    Start then Stop, twice, leaves two runs with no step done; one press, confirmed once with their number, deletes
    them and keeps the runs that trained."""
    from core.runs.store import list_runs
    expect = sync_api().expect
    runs = app_runs_folder(tmp_path_factory)
    page.reload()
    open_tab(page, "Distill")
    status, started = page.locator("#run-status"), []
    for _ in range(2):
        page.locator("#distill-start").click()
        text = text_of(status, r"· running · step 0 of \d+ · loading the teacher, then reading and tokenising the "
                               r"corpus …", "the line of a run loading", timeout=120)
        started.append(re.search(r"\*?\*?(\d{8}-\d{6}-[0-9a-f]{4})", text)[1])
        screenshot(page, "distill-run-loading")
        page.locator("#distill-stop").click()
        text_of(status, r"· stopped ·", "the line after Stop", timeout=60)
    unstarted = [r["id"] for r in list_runs(runs) if r["state"] == "stopped" and not r["step"] and not r["checkpoint"]]
    assert set(started) <= set(unstarted)
    trained = [p.name for p in runs.iterdir() if p.name not in unstarted]
    page.locator("#distill-delete-unstarted").click()
    confirm = page.locator("#distill-delete-unstarted-confirm")
    expect(confirm).to_have_text(f"Delete {len(unstarted)} runs stopped before their first step for good",
                                 timeout=30_000)
    screenshot(page, "distill-delete-unstarted-asks")
    confirm.click()
    text_of(status, re.escape(f"Deleted {len(unstarted)} runs stopped before their first step."),
            "the line after the deletion", timeout=60)
    expect(page.locator("#distill-delete-unstarted")).to_be_visible()
    assert sorted(p.name for p in runs.iterdir()) == sorted(trained)


# ---------------------------------------------------------------------------------------------------------------------
# The Benchmark tab: a refusal said once in a notice and once on the page; tables whose words stay whole at 1024 px


BENCH_SAID = """sentence => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    let lines = 0;
    while (walker.nextNode()) {
        const parent = walker.currentNode.parentElement;
        if (walker.currentNode.textContent.includes(sentence) && !parent.closest('.toast-wrap')
            && parent.offsetParent !== null) lines++;
    }
    return lines;
}"""
BENCH_TOASTS = """() => { window.benchToasts = [];
    if (window.benchWatching) return;  // one observer a page, however many tests start counting
    window.benchWatching = true;
    new MutationObserver(changes => { for (const change of changes) for (const node of change.addedNodes) {
        if (node.nodeType !== 1) continue;
        const selector = '[data-testid=toast-text]';
        const texts = node.matches(selector) ? [node] : node.querySelectorAll(selector);
        texts.forEach(text => window.benchToasts.push(text.textContent));
    } }).observe(document.body, {childList: true, subtree: true}); }"""


def bench_refusal_shown(page, sentence: str) -> tuple[int, int]:
    """Run pressed once: the notices that arrive with `sentence`, and the lines on the page (notices left out) that
    carry it once Run is offered again."""
    page.evaluate(BENCH_TOASTS)
    page.locator("#bench-run").click()
    deadline = time.time() + 60
    while not any(sentence in text for text in page.evaluate("window.benchToasts")) and time.time() < deadline:
        time.sleep(0.25)
    run_button_is_ready(page)
    page.wait_for_timeout(2000)  # a second notice, were the refusal raised twice, would have come by now
    notices = sum(sentence in text for text in page.evaluate("window.benchToasts"))
    return notices, page.evaluate(BENCH_SAID, sentence)


@pytest.mark.parametrize("models, batch_sizes, seq_len, said", [
    (["bundled-student"], "0", 32, "Batch size must be at least 1, not 0."),
    (["bundled-student"], "abc", 32, "Batch sizes must be whole numbers separated by commas, such as 1,16; got 'abc'."),
    (["bundled-student"], "1", 100000, "Sequence length must be a whole number from 1 to 4,096; got 100,000."),
    ([], "1", 32, "Choose at least one model to benchmark."),
])
def test_a_refused_benchmark_is_said_once_in_a_notice_and_once_on_the_page(page, models, batch_sizes, seq_len, said):
    """The estimate line above Run says why the settings cannot run; Run then brings one notice and empties the
    results, and the progress line does not repeat the sentence (it was on the page twice, and in the notice)."""
    expect = sync_api().expect
    set_benchmark(page, models, batch_sizes, seq_len, 1)
    expect(page.locator("#bench-estimate")).to_contain_text(f"Cannot run as set: {said}", timeout=60_000)
    notices, lines = bench_refusal_shown(page, said)
    assert (notices, lines) == (1, 1), f"{said!r}: {notices} notices and {lines} lines on the page, not 1 and 1"
    expect(page.locator("#bench-progress")).not_to_contain_text(said)
    expect(page.locator("#bench-results")).not_to_contain_text("bundled-student")
    screenshot(page, "benchmark-refused-once")


BENCH_LINES_WRITTEN = """() => { window.benchLines = [];
    const line = document.querySelector('#bench-progress');
    new MutationObserver(() => window.benchLines.push(line.textContent)).observe(
        line, {childList: true, subtree: true, characterData: true}); }"""


def test_a_second_benchmark_refused_while_the_first_runs_leaves_its_progress(page):
    """Run is disabled while the page's benchmark runs; a click that reaches the app all the same (the button enabled
    again as a page may be, a moment before the app has let the run go) is refused in one notice, and the running
    benchmark's progress line is not overwritten by a failure it did not have."""
    expect = sync_api().expect
    busy = "You already have 1 benchmark waiting or running"
    set_benchmark(page, ["bundled-teacher", "bundled-student"], "8,16", 128, 50)
    page.locator("#bench-run").click()
    expect(page.locator("#bench-run")).to_be_disabled(timeout=10_000)
    progress = page.locator("#bench-progress")
    text_of(progress, r"\d+% ·", "the progress line of the running benchmark")
    page.evaluate(BENCH_TOASTS)
    page.evaluate(BENCH_LINES_WRITTEN)
    page.evaluate("() => { const run = document.querySelector('#bench-run'); run.disabled = false; run.click(); }")
    deadline = time.time() + 60
    while not any(busy in text for text in page.evaluate("window.benchToasts")) and time.time() < deadline:
        time.sleep(0.25)
    page.wait_for_timeout(2000)
    assert sum(busy in text for text in page.evaluate("window.benchToasts")) == 1
    written = page.evaluate("window.benchLines")
    assert not any("Benchmark failed" in line for line in written), written  # not even for a moment
    expect(progress).to_contain_text("%")
    page.locator("#bench-stop").click()
    text_of(progress, r"stopped after", "the progress line after Stop")
    run_button_is_ready(page)


BENCH_WORDS_WHOLE = """table => {
    const broken = [];
    for (const cell of table.querySelectorAll('th, .body-cell')) {
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const text = walker.currentNode.textContent.replace('\\u22ee', '').trim();  // less the column menu's mark
            if (!text) continue;
            const range = document.createRange();
            range.selectNodeContents(walker.currentNode);
            const lines = new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size;
            const words = text.replace(/-/g, '- ').split(/\\s+/).length;  // a name may wrap after a hyphen
            if (lines > words) broken.push([text, lines]);
        }
    }
    const viewport = table.querySelector('.virtual-table-viewport') || table;
    return {broken, cells: table.querySelectorAll('.body-cell').length,
            sideways: viewport.scrollWidth - viewport.clientWidth,
            headers: [...table.querySelectorAll('th')].map(th => th.textContent.replace('\\u22ee', '').trim())};
}"""


def test_benchmark_tables_break_no_word_at_1024_pixels_and_the_downloads_keep_full_names(page):
    """At a 1024-pixel window no header or cell of the three tables breaks inside a word ("referenc e", "0.1117 3",
    "throughput_samp les_s" did): the page's headers are short, the legend under the table gives their meaning, and
    the CSV keeps the full field names."""
    expect = sync_api().expect
    page.set_viewport_size({"width": 1024, "height": 1000})
    try:
        set_benchmark(page, ["bundled-teacher", "bundled-student"], "1", 16, 1)
        page.locator("#bench-run").click()
        expect(page.locator("#bench-run")).to_be_disabled(timeout=10_000)
        text_of(page.locator("#bench-progress"), r"done: 2 measurements", "the progress line once the benchmark ends")
        expect(page.locator("#bench-results")).to_contain_text("reference")
        for table_id, columns in (("bench-results", 10), ("bench-card", 5), ("bench-ratios", 5)):
            table = page.locator(f"#{table_id}")
            table.scroll_into_view_if_needed()
            fit = table.evaluate(BENCH_WORDS_WHOLE)
            assert fit["sideways"] <= 0, f"{table_id} scrolls sideways by {fit['sideways']} px"
            assert len(fit["headers"]) == columns and fit["cells"] >= columns, fit  # a line or more
            assert not fit["broken"], f"{table_id}: words broken over lines: {fit['broken']}"
            table.screenshot(path=SCREENSHOTS / f"{table_id}-1024.png")
        fit = page.locator("#bench-results").evaluate(BENCH_WORDS_WHOLE)
        assert fit["headers"] == ["model", "mode", "dtype", "batch", "seq", "ms", "p90 ms", "samples/s", "MB",
                                  "of peak"]
        legend, results = page.locator("#bench-results-legend"), page.locator("#bench-results")
        expect(legend).to_contain_text("ms: median milliseconds a batch takes")
        assert legend.bounding_box()["y"] >= results.bounding_box()["y"] + results.bounding_box()["height"] - 1
        link = page.locator("#bench-csv a")
        header = page.request.get(link.get_attribute("href")).text().splitlines()[0].split(",")
        assert header[:12] == ["model", "mode", "device", "dtype", "batch_size", "seq_len", "params", "size_mb",
                               "latency_s", "latency_p90_s", "throughput_samples_s", "peak_mem_mb"], header
        assert "share_of_peak" in header
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def empty_box(page, label: str) -> None:
    """The number box labelled `label` emptied, as a person clears it."""
    box = page.get_by_label(label, exact=True)
    box.fill("")
    box.press("Tab")


def test_the_distill_tab_before_any_run_and_a_run_opened_later(page, tmp_path):
    """On an app with no run: the downloads' refusal stays under their buttons, with each file box empty and
    labelled, and one sentence refused by several buttons is one notice; Start run with boxes emptied names each with
    the value it took, under the button; the two downloads of a run fill a box each; a page opened on a run in
    training is not told "Started.", as if it had started it."""
    import os

    from train.config import DistillConfig
    from ui.distill_tab import NO_RUN_CHOSEN
    expect = sync_api().expect
    app = start_app(tmp_path / "runs", tmp_path / "app.log")
    fresh = page.context.browser.new_page(viewport={"width": 1280, "height": 1000})
    fresh.set_default_timeout(120_000)
    try:
        fresh.goto(app.url)
        open_tab(fresh, "Distill")
        expect(fresh.locator("#run-status")).to_contain_text("No runs yet")
        fresh.get_by_text("Export for ONNX Runtime / OpenVINO").click()
        for button in ("#distill-metrics-csv", "#distill-student-zip", "#distill-delete", "#distill-export"):
            fresh.locator(button).click()
        fresh.get_by_role("button", name="Resume", exact=True).click()
        line = fresh.locator("#distill-downloaded")
        expect(line).to_contain_text(f"Download student (zip) failed: {NO_RUN_CHOSEN}", timeout=30_000)
        expect(fresh.locator("#distill-exported")).to_contain_text(f"Export failed: {NO_RUN_CHOSEN}")
        fresh.wait_for_timeout(2000)  # every press answered
        assert notices_saying(fresh, NO_RUN_CHOSEN) == 1, f"{notices_saying(fresh, NO_RUN_CHOSEN)} notices"
        for box, label in (("#distill-metrics-file", "Metrics (CSV)"), ("#distill-student-file", "Student (zip)"),
                           ("#distill-export-file", "Exported student (zip)")):
            expect(fresh.locator(box)).to_contain_text(label)
            expect(fresh.locator(box)).not_to_contain_text("Error")
        fresh.locator("#distill-metrics-csv").scroll_into_view_if_needed()
        screenshot(fresh, "distill-no-run-downloads-refused")

        defaults = DistillConfig()
        for label in ("Steps", "α KL", "Checkpoint every"):
            empty_box(fresh, label)
        fresh.locator("#distill-start").click()
        taken = (f"Boxes left empty took their defaults: Steps {defaults.max_steps}, α KL "
                 f"{defaults.losses.alpha_kl:g}, Checkpoint every {defaults.save_every}.")
        note = text_of(fresh.locator("#distill-start-note"), re.escape(taken), "the line under Start run", timeout=60)
        run_id = re.search(r"Run (\d{8}-\d{6}-[0-9a-f]{4})", note)[1]
        text_of(fresh.locator("#run-status"), f"{run_id}.* · (queued|running) · step 0 of {defaults.max_steps}",
                "the status of the run started", timeout=60)
        fresh.locator("#distill-start").scroll_into_view_if_needed()
        screenshot(fresh, "distill-start-names-empty-boxes")
        expect(line).to_have_text("")  # its refusal was for no run chosen
        fresh.locator("#distill-stop").click()
        text_of(fresh.locator("#run-status"), r"· stopped ·", "the line after Stop", timeout=120)

        run = run_stopped_at_a_checkpoint(app.runs / "20000101-000300-ck02")
        (run / "metrics.jsonl").write_text(json.dumps({"step": 10, "loss": 4.0}) + "\n", encoding="utf-8")
        choose_run(fresh, run.name)
        fresh.locator("#distill-metrics-csv").click()
        expect(fresh.locator(f"#distill-metrics-file [download='{run.name}-metrics.csv']")).to_be_visible()
        fresh.locator("#distill-student-zip").click()
        expect(fresh.locator(f"#distill-student-file [download='{run.name}-step-000120.zip']")).to_be_visible()
        expect(fresh.locator(f"#distill-metrics-file [download='{run.name}-metrics.csv']")).to_be_visible()
        expect(line).to_have_text("")
        fresh.locator("#distill-metrics-csv").scroll_into_view_if_needed()
        screenshot(fresh, "distill-both-downloads")

        training = app.runs / "20000101-000400-tr01"  # started by another page: its process is this one
        training.mkdir()
        (training / "status.json").write_text(json.dumps({
            "state": "running", "step": 40, "max_steps": 300, "pid": os.getpid(), "message": "Started.",
            "created": 946_685_000}), encoding="utf-8")
        (training / "config.json").write_text(json.dumps({"teacher": "bundled-teacher", "max_steps": 300}),
                                              encoding="utf-8")
        later = page.context.browser.new_page(viewport={"width": 1280, "height": 1000})
        try:
            later.goto(app.url)
            open_tab(later, "Distill")
            status = text_of(later.locator("#run-status"), f"{training.name} · running · step 40 of 300",
                             "the status of the run in training", timeout=60)
            later.wait_for_timeout(3000)  # a redraw of the timer
            status = later.locator("#run-status").inner_text()
            assert "Started" not in status, status
            screenshot(later, "distill-opened-on-a-run-in-training")
        finally:
            later.close()
    finally:
        fresh.close()
        app.kill()


def test_distill_choosing_another_run_takes_the_earlier_runs_lines_and_files_away(page, tmp_path_factory):
    """An "Export failed: ..." line, a refused download's line and a downloaded file stayed under their buttons after
    another run was chosen, as if they were about that run."""
    expect = sync_api().expect
    runs = app_runs_folder(tmp_path_factory)
    first = stopped_run(runs / "20000101-000500-ex01", 946_684_500)
    (first / "metrics.jsonl").write_text(json.dumps({"step": 10, "loss": 4.0}) + "\n", encoding="utf-8")
    second = stopped_run(runs / "20000101-000501-ex02", 946_684_501)
    try:
        page.reload()  # the export's controls folded, as a page opens
        choose_run(page, first.name)
        page.get_by_text("Export for ONNX Runtime / OpenVINO").click()
        downloaded, exported = page.locator("#distill-downloaded"), page.locator("#distill-exported")
        page.locator("#distill-metrics-csv").click()
        metrics = page.locator("#distill-metrics-file")
        expect(metrics.locator(f"[download='{first.name}-metrics.csv']")).to_be_visible()
        page.locator("#distill-student-zip").click()
        expect(downloaded).to_contain_text(f"Download student (zip) failed: Run '{first.name}' was stopped before "
                                           "saving its first checkpoint")
        page.locator("#distill-export").click()
        expect(exported).to_contain_text(f"Export failed: Run {first.name} is stopped, not finished")
        page.locator("#distill-metrics-csv").scroll_into_view_if_needed()
        screenshot(page, "distill-lines-of-the-run-chosen")
        choose_run(page, second.name)
        expect(exported).to_have_text("")
        expect(downloaded).to_have_text("")
        expect(metrics.locator("[download]")).to_have_count(0)
        expect(metrics).to_contain_text("Metrics (CSV)")  # the box stays, empty and labelled
        screenshot(page, "distill-another-run-chosen")
    finally:
        for run in (first, second):
            shutil.rmtree(run, ignore_errors=True)


def just_under(line, controls, gap: float = 60) -> bool:
    """Whether `line` starts within `gap` pixels under the bottom of `controls`: in view wherever they are."""
    above, box = controls.bounding_box(), line.bounding_box()
    return bool(above and box) and 0 <= box["y"] - (above["y"] + above["height"]) <= gap


def test_neighbours_and_layer_similarity_say_a_refusal_under_their_buttons_and_copies_are_named(page):
    """A refused neighbours count was told by a toast and the status line above the maps, out of view from the
    Neighbours button once the toast faded; 1e9 came back as 1000000000; a sentence typed three times was listed as
    its own nearest neighbour, and the note said nothing of its copies."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Embeddings")
    page.get_by_role("radio", name="Typed sentences").check()
    page.get_by_label("Sentences, one a line").fill("\n".join(EMBED_EIGHT + [EMBED_EIGHT[3], EMBED_EIGHT[3]]))
    page.locator("#embed-draw").click()
    expect(page.locator("#embed-map")).to_contain_text("PCA 2D of 10 sentences", timeout=120_000)
    expect(page.locator("#embed-note")).to_contain_text(
        f"The set holds '{EMBED_EIGHT[3]}' 3 times (#3, #8 and #9): copies share one point on each map")
    set_number(page, "embed-k", "1e9")
    page.locator("#embed-chosen input").click()
    page.get_by_role("option", name=f"8. {EMBED_EIGHT[3]}").click()  # picking it asks for its neighbours
    under = page.locator("#embed-neighbours-status")
    expect(under).to_have_text(
        "Neighbours failed: Neighbours must be a whole number from 1 to 20; got 1,000,000,000.", timeout=120_000)
    assert just_under(under, page.locator("#embed-chosen")), "the refusal is not under the neighbours' controls"
    expect(page.locator("#embed-status")).not_to_contain_text("Neighbours failed")  # said once, where it is seen
    screenshot(page, "embeddings-neighbours-count-refused-in-view")
    set_number(page, "embed-k", 20)
    page.locator("#embed-neighbours-run").click()
    table = page.locator("#embed-neighbours")
    expect(table).to_contain_text(f"{EMBED_EIGHT[0]} (#0,", timeout=120_000)
    expect(under).to_have_text("")
    expect(table).not_to_contain_text(EMBED_EIGHT[3])  # never its own neighbour, whichever copy
    expect(page.locator("#embed-note")).to_contain_text("The set has 7 other sentences (copies counted once)")
    page.get_by_label("Sentences, one a line").fill("\n".join(EMBED_EIGHT[:3]))
    page.get_by_role("button", name="Layer similarity").click()
    layers = page.locator("#embed-layers-status")
    expect(layers).to_have_text("Layer similarity failed: Layer similarity needs at least 4 different sentences; "
                                "there are 3: add 1 more.", timeout=120_000)
    assert just_under(layers, page.locator("#embed-layers-run")), "the refusal is not under Layer similarity"


def test_the_estimate_line_shows_a_model_name_as_typed_and_the_empty_summary_names_no_k(page):
    """The estimate line is Markdown: a model named a_*b*_<i>c</i> showed as emphasis; the probe summary's empty
    table said "top-5 overlap" whatever Top-k held."""
    expect = sync_api().expect
    page.reload()
    open_tab(page, "Predictions")
    set_number(page, "predict-top-k", 3)
    summary = page.locator("#predict-summary-table")
    expect(summary).to_contain_text("top-k overlap")
    expect(summary).not_to_contain_text("top-5 overlap")
    name = "a_*b*_<i>c</i>"
    set_benchmark(page, [name], "1", 16, 1)
    estimate = page.locator("#bench-estimate")
    expect(estimate).to_contain_text(f"Cannot run as set: Unknown model '{name}'.", timeout=60_000)
    expect(estimate.locator("em, i")).to_have_count(0)
    set_number(page, "bench-seq-len", "1e9")
    expect(estimate).to_contain_text("Sequence length must be a whole number from 1 to 4,096; got 1,000,000,000.")
    screenshot(page, "benchmark-estimate-as-typed")


def test_the_kl_checkbox_has_a_line_of_its_own_at_1024_pixels(page):
    """Beside the α cosine and α attention boxes, a 1024-pixel window squeezed 'KL at masked positions only', the
    box the lesson asks to tick, to a word a line with its help cut off."""
    page.set_viewport_size({"width": 1024, "height": 1000})
    try:
        page.reload()
        open_tab(page, "Distill")
        box = page.locator("#distill-kl-masked-only")
        box.scroll_into_view_if_needed()
        cosine = page.get_by_label("α cosine", exact=True).bounding_box()
        width = box.bounding_box()["width"]
        assert width >= 2 * cosine["width"], f"the checkbox is {width:.0f} px wide, a number box {cosine['width']:.0f}"
        label = box.get_by_text("KL at masked positions only", exact=True)
        assert label.bounding_box()["height"] < 30, "the checkbox's label takes more than one line"
        screenshot(page, "distill-kl-checkbox-1024")
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
        page.reload()


# The Distill tab's tables at 1024 px: no word broken over two lines ("finish ed", "owne r", "300/30 0" were)

WORDS_WHOLE = """table => {
    const broken = [];
    for (const cell of table.querySelectorAll('th, .body-cell')) {
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const node = walker.currentNode, text = node.textContent;
            // a browser may break at a space, and beside a hyphen; a no-break space joins a guess to its share
            for (const match of text.matchAll(/[^ \\t\\n-]+/g)) {
                const word = match[0].replace('\\u22ee', '').trim();
                if (!word) continue;
                const range = document.createRange();
                range.setStart(node, match.index);
                range.setEnd(node, match.index + match[0].length);
                const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
                                      .map(r => Math.round(r.top))).size;
                if (lines > 1) broken.push(word);
            }
        }
    }
    const viewport = table.querySelector('.virtual-table-viewport') || table;
    return {broken, cells: table.querySelectorAll('.body-cell').length,
            sideways: viewport.scrollWidth - viewport.clientWidth};
}"""


def evaluated_run(run: Path, created: float) -> Path:
    """A finished reduced-student run of 300 steps, its guesses evaluated at steps 0 and 300 with long words."""
    run.mkdir()
    (run / "status.json").write_text(json.dumps({"state": "finished", "step": 300, "max_steps": 300,
                                                 "created": created}), encoding="utf-8")
    (run / "config.json").write_text(json.dumps({"teacher": "bundled-teacher", "max_steps": 300, "student_layers": 2,
                                                 "student_vocab_size": 100_000, "student_hidden": 150,
                                                 "align": "reduce"}), encoding="utf-8")
    probes = [{"sentence": "После [MASK] у меня болят все мышцы.", "expected": "тренировки"},
              {"sentence": "Завтра у меня [MASK] по истории, а я ничего не выучил.", "expected": "экзамен"}]
    guesses = {"words": ["учительница", "преподаватель", "экзамен"], "probs": [0.04, 0.02, 0.02]}
    with open(run / "guesses.jsonl", "w", encoding="utf-8") as out:
        out.write(json.dumps({"step": 0, "probes": probes, "teacher": [guesses, guesses],
                              "student": [guesses, guesses]}, ensure_ascii=False) + "\n")
        out.write(json.dumps({"step": 300, "student": [guesses, guesses]}, ensure_ascii=False) + "\n")
    return run


def test_the_runs_and_guesses_tables_break_no_word_at_1024_pixels(page, tmp_path_factory):
    run = evaluated_run(app_runs_folder(tmp_path_factory) / "20000101-000300-ee01", 946_685_000)
    page.set_viewport_size({"width": 1024, "height": 1000})
    try:
        choose_run(page, run.name)
        guesses = page.locator("#distill-guesses")
        text_of(guesses, "преподаватель", "the guesses of the run chosen")
        for table in (page.locator("#distill-runs"), guesses):
            table.scroll_into_view_if_needed()
            fit = table.evaluate(WORDS_WHOLE)
            assert fit["cells"] >= 5 and fit["sideways"] <= 0, fit
            assert not fit["broken"], f"words broken over lines at 1024 px: {fit['broken']}"
        guesses.screenshot(path=SCREENSHOTS / "distill-guesses-1024.png")
        page.locator("#distill-runs").screenshot(path=SCREENSHOTS / "distill-runs-1024.png")
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
        shutil.rmtree(run, ignore_errors=True)


def test_a_formula_wider_than_a_phone_scrolls_sideways(page):
    """On a 390-pixel phone the lesson's cosine loss was cut off mid-sum, with no way to see the rest."""
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_tab(page, "About")
    seen(page.locator(".katex-display"), "the About tab's formulas", at_least=3)
    page.set_viewport_size({"width": 390, "height": 844})
    try:
        page.wait_for_timeout(1000)
        formulas = page.evaluate("""() => [...document.querySelectorAll('.katex-display')].map(d => ({
            wide: d.scrollWidth > d.clientWidth + 1, scrolls: ['auto', 'scroll'].includes(getComputedStyle(d).overflowX)
        }))""")
        assert any(f["wide"] for f in formulas), "no formula is wider than a phone: the test no longer tests anything"
        assert all(f["scrolls"] for f in formulas if f["wide"]), formulas
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


def stored_benchmark(page) -> str | None:
    """The benchmark the page keeps in the browser's local storage (sealed: compared, never read)."""
    return page.evaluate("() => localStorage.getItem('rudistil-benchmark')")


def test_a_reloaded_page_shows_the_last_benchmark_again(page):
    """A reload used to leave the Benchmark tab empty, a finished benchmark gone without a word. Its rows, charts,
    card and downloads now come back, and the progress line says they are the last benchmark run in this browser."""
    expect = sync_api().expect
    page.reload()
    set_benchmark(page, ["bundled-student"], "1", 16, 1)
    expect(page.locator("#bench-estimate")).to_contain_text("Before you run: 1 measurement of 1 model")
    before = stored_benchmark(page)
    page.locator("#bench-run").click()
    expect(page.locator("#bench-run")).to_be_disabled(timeout=10_000)
    text_of(page.locator("#bench-progress"), r"done: 1 measurement", "the progress line once the benchmark ends")
    deadline = time.time() + 30
    while stored_benchmark(page) in (None, before) and time.time() < deadline:
        time.sleep(0.25)
    assert stored_benchmark(page) not in (None, before), "the finished benchmark was not kept in the browser"
    measured = page.locator("#bench-results").inner_text()
    card = page.locator("#bench-card").inner_text()
    bars = page.locator("#bench-latency .barlayer .trace").count()
    assert "bundled-student" in measured and bars >= 1
    page.reload()
    open_tab(page, "Benchmark")
    text_of(page.locator("#bench-progress"), r"100% · your last benchmark in this browser, \d{1,2} \w{3} \d{4}, "
            r"\d\d:\d\d UTC: 1 measurement in .+\. Press Run to measure again\.", "the progress line after a reload",
            timeout=60)
    text_of(page.locator("#bench-results"), re.escape(measured), "the measurements after a reload", timeout=30)
    assert page.locator("#bench-card").inner_text() == card
    expect(page.locator("#bench-latency .barlayer .trace")).to_have_count(bars)
    # the form as it was set for those results, its estimate for them
    expect(page.locator("#bench-seq-len input[type=number]")).to_have_value("16")
    expect(page.locator("#bench-batch-sizes textarea")).to_have_value("1")
    expect(page.locator("#bench-models .token")).to_have_text(["bundled-student"])
    expect(page.locator("#bench-estimate")).to_contain_text("Before you run: 1 measurement of 1 model")
    for box in ("bench-csv", "bench-json"):
        expect(page.locator(f"#{box} a")).to_be_visible()
    run_button_is_ready(page)
    screenshot(page, "benchmark-reloaded")


PHONE = {"width": 390, "height": 844}


def open_about_at(page, viewport: dict) -> None:
    """The About tab open at `viewport`: a click on its tab just after the window changed width can land on another
    tab while the tab bar lays itself out again, so the click is repeated until the About tab is the one shown."""
    page.set_viewport_size(viewport)
    about = page.get_by_role("tab", name="About")
    for _ in range(20):
        if about.is_visible() and about.get_attribute("aria-selected") == "true" \
                and page.locator("#about-card").is_visible():
            return
        page.wait_for_timeout(500)
        if about.is_visible():
            about.click()
    raise AssertionError("the About tab did not open")
TABLES_CUT = """() => [...document.querySelectorAll('table')].filter(t => t.checkVisibility()).map(t => {
    const block = t.closest('.block');
    const cut = [...block.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1
        && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX));
    const before = block.previousElementSibling;
    const said = !!before && before.checkVisibility()
        && before.innerText.toLowerCase().includes('scroll sideways for more columns');
    return {table: block.id || t.innerText.slice(0, 40), cut, said};
})"""


def test_about_tables_cut_on_a_phone_say_above_them_that_they_scroll_sideways(page):
    """On a 390-pixel phone the About tab's tables scrolled sideways with nothing to say so: a reader saw a table cut
    after its first column. Each table wider than its box now has a line above it saying it scrolls; a table that
    fits (at 1400 pixels) has none."""
    open_about_at(page, {"width": 1400, "height": 1000})
    seen(page.locator("#about-card table"), "the model card's table")
    page.wait_for_timeout(1000)
    wide = page.evaluate(TABLES_CUT)
    assert wide and not any(t["cut"] or t["said"] for t in wide), wide
    page.set_viewport_size(PHONE)
    try:
        page.wait_for_timeout(1000)
        tables = page.evaluate(TABLES_CUT)
        assert any(t["cut"] for t in tables), f"no table is cut on a phone: the test tests nothing: {tables}"
        assert all(t["said"] == t["cut"] for t in tables), tables
        page.locator("#about-experiment").scroll_into_view_if_needed()
        page.screenshot(path=SCREENSHOTS / "about-table-390.png")
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


PLOT_TEXT_OUTSIDE = """plot => {
    const svg = plot.querySelector('svg.main-svg').getBoundingClientRect();
    const area = plot.querySelector('.draglayer .nsewdrag').getBoundingClientRect();
    const outside = (r, box) => r.left < box.left - 1 || r.right > box.right + 1 || r.top < box.top - 1
        || r.bottom > box.bottom + 1;
    const texts = [...plot.querySelectorAll('text')].filter(t => t.textContent.trim());
    return {texts: texts.length, cut: texts.filter(t => outside(t.getBoundingClientRect(), svg)
        || (t.closest('.scatterlayer') && outside(t.getBoundingClientRect(), area))).map(t => t.textContent)};
}"""


@pytest.mark.parametrize("width", [390, 1400])
def test_the_about_plot_cuts_no_label_on_a_phone_or_a_wide_window(page, width):
    """On a 390-pixel phone the compression plot cut its leftmost labels ("reduced, match" read "uced, match") at
    the edge of its plot area. Every label of a point now lies inside the plot area, and every text inside the
    figure."""
    open_about_at(page, {"width": 1400, "height": 1000})
    plot = page.locator("#about-tradeoff .js-plotly-plot")
    seen(page.locator("#about-tradeoff .scatterlayer text"), "the compression plot's labels", at_least=2)
    page.set_viewport_size({"width": width, "height": 844 if width == 390 else 1000})
    try:
        page.wait_for_timeout(1500)  # Plotly redraws the figure for its new width
        plot.scroll_into_view_if_needed()
        found = plot.evaluate(PLOT_TEXT_OUTSIDE)
        plot.screenshot(path=SCREENSHOTS / f"about-plot-{width}.png")
        assert found["texts"] >= 4, found
        assert not found["cut"], f"texts cut at {width} px: {found['cut']}"
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


# A link's name as axe's link-name rule takes it: an SVG's <title> (Plotly's logo has "plotly-logomark") names
# nothing unless the SVG has role="img", and Plotly's data-title is no name at all.
UNNAMED_TOOLBAR_LINKS = """() => [...document.querySelectorAll('.js-plotly-plot .modebar a')].filter(a =>
    a.checkVisibility() && !(a.getAttribute('aria-label') || a.getAttribute('aria-labelledby')
                             || a.getAttribute('title') || a.innerText).trim()).map(a => a.className)"""


def test_plot_toolbars_have_no_link_without_a_name(page):
    """Plotly's toolbar ended in its logo: a link to plotly.com holding only a picture, which a screen reader
    announces as a bare link. No link in a figure's toolbar is left without an accessible name."""
    open_about_at(page, {"width": 1400, "height": 1000})
    seen(page.locator("#about-tradeoff .modebar .modebar-btn"), "the compression plot's toolbar buttons")
    page.locator("#about-tradeoff .js-plotly-plot").hover()  # the toolbar shows on hover
    assert page.evaluate(UNNAMED_TOOLBAR_LINKS) == []


def test_embeddings_refuse_10_000_filled_in_lines_under_the_box_without_freezing_the_page(page):
    """10,000 lines pasted into the typed sentences' box froze the page for minutes: the browser put the text in a
    line at a time. The page now takes it in at once, and the line under the box says why Draw would refuse it."""
    expect = sync_api().expect
    open_tab(page, "Embeddings")
    page.get_by_role("radio", name="Typed sentences").check()
    typed = page.get_by_label("Sentences, one a line")
    typed.fill("\n".join(f"Предложение номер {i}." for i in range(10_000)))
    note = page.locator("#embed-typed-note")
    text_of(note, r"There are 10,000 sentences in the typed text, more than the 5,000 a map can take",
            "the line under the typed box")
    expect(typed).to_have_value(re.compile(r"^Предложение номер 0\.\n[\s\S]*\nПредложение номер 9999\.$"))
    typed.fill("\n".join(EMBED_EIGHT))
    expect(note).to_have_text("")


# The Predictions tab on a 390-pixel phone: each chart's plot area and the texts drawn beside it, and the title
PHONE_BARS = """plot => {
    const box = (e) => { const r = e.getBoundingClientRect(); return {x: r.left, y: r.top, width: r.width,
                                                                     height: r.height}; };
    const areas = [...plot.querySelectorAll('.draglayer .nsewdrag')].map(box);
    const secondTexts = [...plot.querySelectorAll('.g-y2title text, .y2tick text')].map(box);
    const firstValues = [...plot.querySelectorAll('.barlayer .trace')].slice(0, 1)
        .flatMap(trace => [...trace.querySelectorAll('text')].map(box));
    return {areas, secondTexts, firstValues, svg: box(plot.querySelector('svg.main-svg')),
            title: box(plot.querySelector('.gtitle'))};
}"""


def inside(inner: dict, outer: dict) -> bool:
    """Whether a bounding box lies within another (to a pixel)."""
    return inner["x"] >= outer["x"] - 1 and inner["y"] >= outer["y"] - 1 and \
        inner["x"] + inner["width"] <= outer["x"] + outer["width"] + 1 and \
        inner["y"] + inner["height"] <= outer["y"] + outer["height"] + 1


def predict_on_a_phone(page) -> None:
    """The Predictions tab's default sentence predicted, the page at a phone's size."""
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.reload()  # the boxes as the page starts: an earlier test leaves a sentence Predict refuses
    open_tab(page, "Predictions")
    page.set_viewport_size(PHONE)
    page.locator("#predict-run").click()
    seen(page.locator("#predict-bars .barlayer .trace"), "bars of the models' top words", at_least=2)
    page.wait_for_timeout(1500)  # Plotly lays the figure out again for the phone's width


def test_predictions_on_a_phone_keep_the_two_charts_apart_and_the_title_in_view(page):
    """On a 390-pixel phone the student's words and its axis title were drawn over the teacher's bars, covering a
    value ("8.1%"), and the sentence's title lay behind the component's label and Plotly's toolbar."""
    try:
        predict_on_a_phone(page)
        plot = page.locator("#predict-bars .js-plotly-plot")
        plot.scroll_into_view_if_needed()
        found = plot.evaluate(PHONE_BARS)
        page.locator("#predict-bars").screenshot(path=SCREENSHOTS / "predictions-bars-390.png")
        first, second = found["areas"][:2]
        assert len(found["areas"]) == 2 and not overlaps(first, second), found["areas"]
        assert found["secondTexts"] and found["firstValues"], found
        covering = [t for t in found["secondTexts"] if overlaps(t, first)]
        assert not covering, f"the second chart's texts lie over the first chart: {covering}"
        title = found["title"]
        assert inside(title, found["svg"]), f"the title {title} is cut by the figure's edge {found['svg']}"
        for cover in ("#predict-bars [data-testid=block-label]", "#predict-bars .modebar"):
            assert not overlaps(title, page.locator(cover).bounding_box()), f"{cover} covers the title"
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})


MARKDOWN_WORDS_WHOLE = """box => {
    const broken = [];
    for (const cell of box.querySelectorAll('th, td')) {
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        while (walker.nextNode()) {
            const node = walker.currentNode;
            // a browser may break at a space, and after a hyphen ("bundled-student")
            for (const match of node.textContent.matchAll(/[^ \\t\\n-]+-?/g)) {
                const range = document.createRange();
                range.setStart(node, match.index);
                range.setEnd(node, match.index + match[0].length);
                const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
                                      .map(r => Math.round(r.top))).size;
                if (lines > 1) broken.push(match[0]);
            }
        }
    }
    return {broken, headers: box.querySelectorAll('th').length};
}"""


def test_the_agreement_table_on_a_phone_keeps_its_words_whole_and_says_it_scrolls(page):
    """On a 390-pixel phone the agreement table's headers broke inside words ("m / as / k", "KL (n / ats )"). Its
    words stay whole, the table scrolls sideways, and a line above it says so, as the About tab's tables do; at
    1400 pixels the table fits and no line says it scrolls."""
    expect = sync_api().expect
    note = page.locator("#predict-agreement-scrolls")
    try:
        predict_on_a_phone(page)
        table = page.locator("#predict-agreement")
        expect(table.locator("th").first).to_be_visible()
        table.scroll_into_view_if_needed()
        fit = table.evaluate(MARKDOWN_WORDS_WHOLE)
        page.screenshot(path=SCREENSHOTS / "predictions-agreement-390.png")
        assert fit["headers"] == 6 and not fit["broken"], f"words broken over lines at 390 px: {fit['broken']}"
        cut = table.evaluate(CUT_INSIDE)
        assert cut, "the table fits a phone: the test no longer tests the sideways scroll"
        expect(note).to_be_visible()
        expect(note).to_contain_text("Scroll sideways for more columns")
    finally:
        page.set_viewport_size({"width": 1400, "height": 1000})
    page.wait_for_timeout(1000)
    assert not page.locator("#predict-agreement").evaluate(CUT_INSIDE)
    expect(note).to_be_hidden()


CUT_INSIDE = """box => [...box.querySelectorAll('*')].some(e => e.scrollWidth > e.clientWidth + 1
    && ['auto', 'scroll'].includes(getComputedStyle(e).overflowX))"""


def test_the_sentence_and_initialising_layers_boxes_are_found_by_their_labels(page):
    """The Sentence box and the Distill tab's Initialising teacher layers box were named by their label and the help
    under it together, so a screen reader read the whole help as the name and get_by_label("Sentence") found
    nothing. Each is named by its label alone."""
    page.set_viewport_size({"width": 1400, "height": 1000})
    open_tab(page, "Predictions")
    sentence = page.get_by_label("Sentence", exact=True)
    assert sentence.evaluate("e => e.tagName === 'TEXTAREA' && !!e.closest('#predict-sentence')")
    open_tab(page, "Distill")
    layers = page.get_by_label("Initialising teacher layers", exact=True)
    assert layers.evaluate("e => ['TEXTAREA', 'INPUT'].includes(e.tagName)")
    assert layers.get_attribute("placeholder").startswith("one per student layer")

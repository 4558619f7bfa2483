"""Every tab in a real headless Chromium, with the bundled models, checked for what a person sees. Screenshots go to
test-output/screenshots/."""
import re
import shutil
import time

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


def sync_api():
    return pytest.importorskip("playwright.sync_api")


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
    sync_api().expect(page.get_by_text("2 measurements of 2 model(s)")).to_be_visible()  # the estimate comes first
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

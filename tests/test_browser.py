"""Every tab in a real headless Chromium, with the bundled models. Screenshots go to test-output/screenshots/."""
import shutil

import pytest

from tests.appserver import REPO, start_app

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


def screenshot(page, name: str) -> None:
    page.add_style_tag(content=".toast-wrap {display: none !important}")  # earlier notices would cover the page
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


def test_offline_notice_is_one_visible_line(page):
    notice = page.locator("#offline-notice")
    text = notice.inner_text().strip()
    assert notice.is_visible() and "bundled" in text and "\n" not in text


def test_distill_start_watch_curves_and_stop(page):
    open_tab(page, "Distill")
    set_number(page, "distill-steps", 600)  # evaluated every 100 steps; stopped long before the end
    set_number(page, "distill-batch-size", 8)
    set_number(page, "distill-max-length", 32)
    page.locator("#distill-start").click()
    page.locator("#run-status").get_by_text("running").wait_for()
    page.locator("#distill-losses .scatterlayer .trace path.js-line").first.wait_for()  # the loss curve is drawn
    page.locator("#distill-eval .scatterlayer .trace path.js-line").first.wait_for()  # two evaluations make a line
    screenshot(page, "distill-running")
    page.locator("#distill-stop").click()
    page.locator("#run-status").get_by_text("stopped").wait_for()
    assert "checkpoint saved" in page.locator("#run-status").inner_text()


def test_predictions_show_both_models_bars(page):
    open_tab(page, "Predictions")
    page.locator("#predict-run").click()
    page.locator("#predict-bars .barlayer .trace").first.wait_for()
    titles = page.locator("#predict-bars .gtitle, #predict-bars .annotation-text").all_text_contents()
    assert any("teacher" in t for t in titles) and any("student" in t for t in titles), titles
    assert "top-1" in page.locator("#predict-agreement").inner_text().lower()
    page.locator("#predict-sentence textarea").fill("Я поставил чайник, будешь чай с печеньем?")
    page.locator("#predict-each-word").click()
    page.locator("#predict-strip .hm").first.wait_for()
    page.locator("#predict-summary").click()
    sync_api().expect(page.locator("#predict-summary-table")).to_contain_text("bundled-student", timeout=60_000)
    screenshot(page, "predictions")


def test_embedding_map_is_drawn(page):
    open_tab(page, "Embeddings")
    page.locator("#embed-draw").click()
    page.locator("#embed-map .scatterlayer .point").nth(100).wait_for()  # hundreds of probe sentences
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
    page.get_by_text("2 measurements of 2 model(s)").wait_for()  # the tab says how long it will take first
    page.locator("#bench-run").click()
    results = sync_api().expect(page.locator("#bench-results"))
    for name in ("bundled-teacher", "bundled-student", "float32"):  # a row per model, streamed in as measured
        results.to_contain_text(name, timeout=120_000)
    screenshot(page, "benchmark")


def test_about_tab_teaches(page):
    open_tab(page, "About")
    page.get_by_text("A 10-minute lesson").wait_for()
    screenshot(page, "about")

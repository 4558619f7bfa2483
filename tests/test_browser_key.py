"""What the page keeps in the browser (the owner id that marks a visitor's runs, the last benchmark) is sealed with a
key kept in the runs folder: with Gradio's default, a key made at each start, a restarted app could read neither."""
import stat

from ui.sessions import BROWSER_KEY, BROWSER_KEY_FILE, browser_key


def test_the_key_is_made_once_and_read_again_by_a_restarted_app(tmp_path):
    first = browser_key(tmp_path)
    assert BROWSER_KEY.fullmatch(first)
    assert browser_key(tmp_path) == first  # the same folder: the app started again
    assert stat.S_IMODE((tmp_path / BROWSER_KEY_FILE).stat().st_mode) == 0o600
    assert browser_key(tmp_path / "other") != first


def test_a_file_that_is_not_a_key_is_replaced_by_one_that_lasts(tmp_path):
    (tmp_path / BROWSER_KEY_FILE).write_bytes(b"\xff\xfe short")
    made = browser_key(tmp_path)
    assert BROWSER_KEY.fullmatch(made) and browser_key(tmp_path) == made


def test_a_folder_that_cannot_be_written_still_gives_a_key(tmp_path):
    (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
    assert BROWSER_KEY.fullmatch(browser_key(tmp_path / "a-file" / "runs"))


def test_every_browser_state_of_the_app_is_sealed_with_the_runs_folders_key(runs_dir):
    from app import build_app
    from ui.context import AppContext

    states = []
    for _ in range(2):  # the app, then the app started again on the same runs folder
        ctx = AppContext("bundled-teacher", "bundled-student")
        demo = build_app(ctx)
        found = [block for block in demo.blocks.values() if type(block).__name__ == "BrowserState"]
        assert {block.storage_key for block in found} == {"rudistil-owner", "rudistil-benchmark"}
        assert {block.secret for block in found} == {ctx.browser_key}
        states.append(ctx.browser_key)
    assert states[0] == states[1] == browser_key(runs_dir)

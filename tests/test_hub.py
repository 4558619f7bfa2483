"""Preparing a classroom before going offline: the DeepPavlov models into the Hugging Face cache, against a fake Hub
(huggingface_hub's metadata and download calls replaced), and how the page names the pair it uses."""
from __future__ import annotations

import re
from collections import namedtuple

import gradio as gr
import pytest

from core.models import hub, zoo
from tests.support import fake_hub
from tests.support.fake_hub import REPOS, lab_sizes, write_cached

TEACHER_ID = zoo.KNOWN_MODELS["rubert-base-cased-conversational"].hub_id
BASE_ID = zoo.KNOWN_MODELS["distilrubert-base-cased-conversational"].hub_id
ALL_IDS = [zoo.KNOWN_MODELS[n].hub_id for n in hub.hub_models()]


@pytest.fixture
def fake(monkeypatch, tmp_path):
    return fake_hub.install(monkeypatch, tmp_path)


def total_of(hub_ids) -> int:
    return sum(sum(lab_sizes(h).values()) for h in hub_ids)


def test_the_hub_models_are_the_deeppavlov_teacher_and_students():
    assert hub.hub_models() == ["rubert-base-cased-conversational", "distilrubert-base-cased-conversational",
                                "distilrubert-small-cased-conversational", "distilrubert-tiny-cased-conversational-v1"]


def test_the_plan_asks_only_for_the_files_the_lab_loads_with_one_weights_file(fake):
    plan = hub.plan_download()
    assert [m.hub_id for m in plan.models] == ALL_IDS and not any(m.cached for m in plan.models)
    for model in plan.models:
        assert model.files == lab_sizes(model.hub_id), model.name
        assert sum(w in model.files for w in hub.WEIGHTS) == 1  # never both formats
    assert plan.size_bytes == total_of(ALL_IDS)
    assert plan.size_bytes < sum(sum(files.values()) for files in REPOS.values()) / 1.5  # README, tf, onnx left out
    assert fake.info_calls == ALL_IDS


def test_dry_run_says_how_much_and_where_and_downloads_nothing(fake, capsys):
    assert hub.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[0]
    assert hub.format_bytes(total_of(ALL_IDS)) in head and str(fake.cache_dir) in head and "4 models" in head
    assert "nothing was downloaded" in out.lower()
    for name in hub.hub_models():
        assert name in out
    assert fake.downloads == [] and not any(fake.cache_dir.iterdir())


def test_download_fetches_only_the_planned_files_shows_a_progress_bar_and_reports(fake, capsys):
    assert hub.main([]) == 0
    assert fake.downloads == [(h, list(lab_sizes(h))) for h in ALL_IDS]
    assert all(zoo.is_cached(h) for h in ALL_IDS)
    captured = capsys.readouterr()
    bar = captured.err.replace("\r", "\n")
    whole = f"{total_of(ALL_IDS) / 1e9:.2f}G"  # tqdm's reading of the bytes, as 1.73G
    assert re.search(rf"100%\|█+\| {whole}/{whole}", bar), bar
    assert "distilrubert-tiny-cased-conversational-v1" in bar  # the bar names the model it is on
    report = captured.out.strip().splitlines()[-1]
    assert report.startswith("Downloaded rubert-base-cased-conversational, distilrubert-base-cased-conversational")
    assert "After a restart the app uses the DeepPavlov pair" in report and str(fake.cache_dir) in report


def test_cached_models_are_skipped_without_asking_the_hub(fake, capsys):
    write_cached(fake.cache_dir, TEACHER_ID, lab_sizes(TEACHER_ID))
    assert hub.main([]) == 0
    out = capsys.readouterr().out
    assert TEACHER_ID not in fake.info_calls and TEACHER_ID not in [d[0] for d in fake.downloads]
    assert re.search(r"rubert-base-cased-conversational\s+already cached", out)
    assert out.splitlines()[0].startswith(hub.format_bytes(total_of(ALL_IDS[1:])) + " to download: 3 models")


def test_a_model_with_only_its_config_cached_is_not_complete(fake):
    write_cached(fake.cache_dir, BASE_ID, ["config.json"])  # a download cut short after the config
    assert not zoo.is_cached(BASE_ID)
    write_cached(fake.cache_dir, BASE_ID, ["pytorch_model.bin", "vocab.txt"])
    assert zoo.is_cached(BASE_ID)


def test_models_chooses_a_subset_by_the_labs_names(fake, capsys):
    assert hub.main(["--models", "distilrubert-tiny-cased-conversational-v1, rubert-base-cased-conversational"]) == 0
    assert [d[0] for d in fake.downloads] == [ALL_IDS[3], ALL_IDS[0]]
    assert "keeps its bundled pair until distilrubert-base-cased-conversational" in capsys.readouterr().out


def one_error_line(err: str, after_bar: bool = False) -> str:
    """The one stderr line of an error; with after_bar, the progress bar drawn before it is left aside."""
    if after_bar:
        assert "%|" in err  # the bar was drawn
        err = err.replace("\r", "\n")
        err = "\n".join(line for line in err.splitlines() if "%|" not in line and line.strip())
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), err
    assert "Traceback" not in err
    return lines[0]


def test_offline_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys):
    fake = fake_hub.install(monkeypatch, tmp_path, reachable=False)
    assert hub.main([]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "cannot be reached" in line and str(fake.cache_dir) in line and "python -m core.models.hub" in line
    assert fake.info_calls == [] and fake.downloads == []


def test_offline_with_everything_cached_has_nothing_to_do(monkeypatch, tmp_path, capsys):
    fake = fake_hub.install(monkeypatch, tmp_path, reachable=False)
    for hub_id in ALL_IDS:
        write_cached(fake.cache_dir, hub_id, lab_sizes(hub_id))
    assert hub.main([]) == 0
    out = capsys.readouterr().out
    assert "All 4 models are already in the Hugging Face cache" in out and "Nothing to download" in out


def test_a_hub_api_that_does_not_answer_is_the_offline_line(monkeypatch, tmp_path, capsys):
    fake_hub.install(monkeypatch, tmp_path, metadata_fails=True)
    assert hub.main(["--dry-run"]) == 2
    assert "cannot be reached" in one_error_line(capsys.readouterr().err)


def test_a_connection_lost_midway_keeps_what_finished_and_says_to_run_again(monkeypatch, tmp_path, capsys):
    fake = fake_hub.install(monkeypatch, tmp_path, fail_on=BASE_ID)
    assert hub.main([]) == 2
    line = one_error_line(capsys.readouterr().err, after_bar=True)
    assert "lost while downloading distilrubert-base-cased-conversational" in line
    assert "rubert-base-cased-conversational is complete and stays cached" in line and "run the download again" in line
    assert zoo.is_cached(TEACHER_ID) and not zoo.is_cached(BASE_ID)
    fake.fail_on = None  # the network is back
    assert hub.main([]) == 0 and TEACHER_ID not in [d[0] for d in fake.downloads[2:]]
    assert all(zoo.is_cached(h) for h in ALL_IDS)


def test_unknown_model_names_are_refused_in_one_line(fake, capsys):
    assert hub.main(["--models", "bundled-teacher"]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'bundled-teacher' is not one of the lab's Hub models" in line and "rubert-base-cased" in line


def test_a_disk_too_small_is_refused_before_downloading(fake, monkeypatch, capsys):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(hub.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 5 * 10**8, 5 * 10**8))
    assert hub.main([]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert hub.format_bytes(total_of(ALL_IDS)) in line and "500.0 MB free" in line and fake.downloads == []


def test_progress_counts_bytes_of_the_whole_plan_in_order(fake):
    plan = hub.plan_download(["rubert-base-cased-conversational", "distilrubert-tiny-cased-conversational-v1"])
    calls = []
    done = hub.download(plan, lambda name, n, total: calls.append((name, n, total)))
    assert [d.name for d in done] == [m.name for m in plan.models]
    assert all(total == plan.size_bytes for _, _, total in calls)
    counts = [n for _, n, _ in calls]
    assert counts == sorted(counts) and counts[-1] == plan.size_bytes
    first = plan.models[0].size_bytes
    assert {name for name, n, _ in calls if n <= first} == {"rubert-base-cased-conversational"}
    assert any(0 < n < first for n in counts)  # it moves during a model, not only between models


@pytest.mark.parametrize("size, text", [(0, "0 B"), (712, "712 B"), (1_649_718, "1.6 MB"),
                                        (711_456_796, "711.5 MB"), (1_734_000_000, "1.73 GB")])
def test_sizes_read_as_the_hub_shows_them(size, text):
    assert hub.format_bytes(size) == text


# The page: which pair it uses, and the About tab's download section.

def test_the_notice_names_the_bundled_pair_offline_in_one_line():
    from ui.context import AppContext
    ctx = AppContext.create()  # HF_HUB_OFFLINE=1 in tests and no DeepPavlov model is cached
    assert (ctx.default_teacher, ctx.default_student) == zoo.BUNDLED_PAIR
    assert "bundled-teacher and bundled-student" in ctx.notice and "python -m core.models.hub" in ctx.notice
    assert "\n" not in ctx.notice


def test_the_notice_names_the_deeppavlov_pair_and_where_it_comes_from(fake, monkeypatch):
    from ui.context import AppContext
    monkeypatch.setattr(zoo, "default_pair", lambda: (zoo.DEEPPAVLOV_PAIR, ""))
    online = AppContext.create().notice
    assert "DeepPavlov's pair: rubert-base-cased-conversational (teacher) and " \
           "distilrubert-base-cased-conversational (student)" in online and "Hub" in online
    for hub_id in (TEACHER_ID, BASE_ID):
        write_cached(fake.cache_dir, hub_id, lab_sizes(hub_id))
    cached = AppContext.create().notice
    assert "this machine's Hugging Face cache" in cached and "\n" not in cached


def test_the_notice_names_a_chosen_pair():
    from ui.context import AppContext
    ctx = AppContext.create(teacher="bundled-teacher", student="run:my-student")
    assert ctx.notice.startswith("The lab starts with bundled-teacher (teacher) and run:my-student (student).")
    assert "python -m core.models.hub" in ctx.notice  # offline here: it still says how to get DeepPavlov's pair


def about_blocks(ctx):
    from ui import about_tab
    with gr.Blocks() as demo:
        parts = about_tab.build(ctx)
    return demo, parts


def elem_ids(demo) -> dict:
    return {b.elem_id: b for b in demo.blocks.values() if getattr(b, "elem_id", None)}


def test_about_tab_hides_the_button_offline_and_says_why(monkeypatch, tmp_path):
    from ui.context import AppContext
    fake_hub.install(monkeypatch, tmp_path, reachable=False)
    demo, parts = about_blocks(AppContext("bundled-teacher", "bundled-student"))
    ids = elem_ids(demo)
    assert "about-download" not in ids and not any(isinstance(b, gr.Button) for b in demo.blocks.values())
    assert "cannot be reached" in ids["about-download-offline"].value
    assert "not cached" in ids["about-cache-status"].value
    function, outputs = parts["refresh"]
    assert outputs == [ids["about-cache-status"]] and function() == ids["about-cache-status"].value


def test_about_tab_shows_the_button_when_the_hub_is_reachable_but_not_on_a_space(fake):
    from ui.context import AppContext
    demo, _ = about_blocks(AppContext("bundled-teacher", "bundled-student"))
    ids = elem_ids(demo)
    assert ids["about-download"].value == "Download the DeepPavlov models" and "about-download-offline" not in ids
    demo, _ = about_blocks(AppContext("bundled-teacher", "bundled-student", on_space=True))
    assert "about-download" not in elem_ids(demo)


def test_about_download_says_the_plan_first_then_what_it_did(fake):
    from ui import about_tab
    write_cached(fake.cache_dir, ALL_IDS[2], lab_sizes(ALL_IDS[2]))
    steps = []
    shown = list(about_tab.download_models(progress=lambda fraction, desc="": steps.append((fraction, desc))))
    assert len(shown) == 2
    assert hub.format_bytes(total_of([ALL_IDS[0], ALL_IDS[1], ALL_IDS[3]])) + " to download" in shown[0]
    assert str(fake.cache_dir) in shown[0] and "already cached" in shown[0] and "Downloaded" not in shown[0]
    assert "Downloaded rubert-base-cased-conversational" in shown[1]
    assert "After a restart the app uses the DeepPavlov pair" in shown[1]
    assert ALL_IDS[2] not in [d[0] for d in fake.downloads]
    assert steps[-1][0] == 1.0 and steps[-1][1].startswith("distilrubert-tiny-cased-conversational-v1: ")
    assert "cached" in about_tab.cache_status() and "not cached" not in about_tab.cache_status()


def test_about_download_offline_is_one_sentence(monkeypatch, tmp_path):
    from ui import about_tab
    fake_hub.install(monkeypatch, tmp_path, reachable=False)
    with pytest.raises(gr.Error, match="cannot be reached") as caught:
        list(about_tab.download_models(progress=lambda *a, **k: None))
    assert str(caught.value.message).endswith(".") and "\n" not in str(caught.value.message)

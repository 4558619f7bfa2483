"""Every tab's model lists are fresh when the page loads and when the tab is opened: a run that finished after the app
started appears in all of them."""
import json
import shutil


def test_every_tab_refreshes_its_model_lists_on_load_and_when_opened(tiny_teacher_dir, tiny_student_dir, runs_dir):
    from app import build_app
    from ui.context import AppContext

    ctx = AppContext(default_teacher=str(tiny_teacher_dir), default_student=str(tiny_student_dir))
    demo = build_app(ctx)
    tabs = {block.label: block for block in demo.blocks.values() if type(block).__name__ == "Tab"}
    dropdowns = {block._id: block for block in demo.blocks.values() if type(block).__name__ == "Dropdown"
                 and block.label and ("Model" in block.label or block.label == "Teacher")}
    assert not any(str(c[0]).startswith("run:") for d in dropdowns.values() for c in d.choices)

    run = runs_dir / "finished-after-start"  # a run that finished after the page was built
    shutil.copytree(tiny_student_dir, run / "final")
    (run / "status.json").write_text(json.dumps({"state": "finished"}), encoding="utf-8")

    refreshed = {}
    for dependency in demo.fns.values():
        outputs = [block._id for block in dependency.outputs]
        for block_id, event in dependency.targets:
            # the lists' refreshes take no input (the Benchmark tab's redraw of a kept benchmark, which sets its
            # Models box too, reads the browser's storage)
            if event in ("load", "select") and set(outputs) & set(dropdowns) and not dependency.inputs:
                refreshed.setdefault(event, set()).update(outputs)
                updates = dependency.fn()
                updates = updates if isinstance(updates, (tuple, list)) else [updates]
                for update in updates:
                    assert "run:finished-after-start" in [c[0] for c in update.choices]
                if event == "select":
                    assert block_id in {tab._id for tab in tabs.values()}
    missing = {event: {dropdowns[i].label for i in set(dropdowns) - ids} for event, ids in refreshed.items()}
    assert set(refreshed) == {"load", "select"} and missing == {"load": set(), "select": set()}, missing


def test_a_run_and_its_untrained_start_are_both_offered_and_both_load(tiny_teacher_dir, tiny_student_dir, runs_dir):
    from core.models.cache import ModelCache
    from ui.context import AppContext

    run = runs_dir / "with-start"
    shutil.copytree(tiny_student_dir, run / "final")
    shutil.copytree(tiny_teacher_dir, run / "init")  # a different model, so the two loads can be told apart
    (run / "status.json").write_text(json.dumps({"state": "finished"}), encoding="utf-8")
    ctx = AppContext(default_teacher=str(tiny_teacher_dir), default_student=str(tiny_student_dir))
    names = ctx.model_choices()
    assert names.index("run:with-start@init") == names.index("run:with-start") + 1
    cache = ModelCache()
    trained, start = cache.get("run:with-start"), cache.get("run:with-start@init")
    assert trained.model.config.model_type == "distilbert" and start.model.config.model_type == "bert"
    assert cache.get("run:with-start@init") is start  # kept: the untrained start never changes


def test_every_api_answer_is_named_for_gradio_client_users(tiny_teacher_dir, tiny_student_dir):
    """gradio_client lists each endpoint's outputs by label: an unlabelled one reads "value_51". The browser's owner
    id (a BrowserState, which has no label) is the one exception."""
    from app import build_app
    from ui.context import AppContext

    demo = build_app(AppContext(default_teacher=str(tiny_teacher_dir), default_student=str(tiny_student_dir)))
    endpoints = demo.get_api_info()["named_endpoints"]
    unnamed = {name: [r["label"] for r in endpoint["returns"] if str(r["label"]).startswith("value_")
                      and r["component"] != "Browserstate"]
               for name, endpoint in endpoints.items()}
    assert len(endpoints) > 10 and not any(unnamed.values()), unnamed

"""The download boxes of the Predictions and Embeddings tabs, through Gradio's own event processing: an action keeps
what it showed for the session, and its private follow-up turns that into files."""
from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.support.runs import run_entries


@pytest.mark.slow
def test_each_action_fills_its_download_boxes_in_the_same_session(tiny_teacher_dir, tiny_student_dir, runs_dir):
    import gradio as gr
    from gradio.state_holder import SessionState

    from ui import embed_tab, predict_tab
    from ui.context import AppContext

    teacher, student = str(tiny_teacher_dir), str(tiny_student_dir)
    ctx = AppContext(default_teacher=teacher, default_student=student)
    with gr.Blocks() as demo:
        with gr.Tab("Predictions"):
            predict_parts = predict_tab.build(ctx)
        with gr.Tab("Embeddings"):
            embed_parts = embed_tab.build(ctx)
    demo.queue()
    dependencies = demo.config["dependencies"]
    models = [teacher, student, ""]
    typed = "\n".join(["Мы ходили в кино.", "Кошка спит на диване.", "Завтра обещают дождь.", "Мама готовит суп."])
    actions = [  # (api name, inputs, the boxes its follow-up fills)
        ("fill_mask", models + [3, "Не забудь взять [MASK], на улице дождь."], predict_parts["files"]["fill_mask"]),
        ("mask_each_word", models + [3, "Мы долго гуляли."], predict_parts["files"]["mask_each_word"]),
        ("embedding_map", ["Typed sentences", None, typed] + models + [-1, -1, -1, "mean", "PCA", "2D", "debiased"],
         embed_parts["files"]["draw"]),
        ("layer_similarity", ["Typed sentences", None, typed] + models + ["mean", "debiased"],
         embed_parts["files"]["layers"]),
    ]

    async def run(session: SessionState, event: dict, inputs: list) -> list:
        return (await demo.process_api(event["id"], inputs, state=session))["data"]

    async def actions_then_files(session: SessionState) -> dict[str, list[dict]]:
        shown = {}
        for api_name, inputs, boxes in actions:
            event = next(d for d in dependencies if d["api_name"] == api_name)
            await run(session, event, inputs)
            follow_up = next(d for d in dependencies if d["trigger_after"] == event["id"]
                             and d["outputs"] == [b._id for b in boxes])
            shown[api_name] = await run(session, follow_up, [None] * len(follow_up["inputs"]))  # State: the session's
        return shown

    shown = asyncio.run(actions_then_files(SessionState(demo)))
    names = {api_name: [Path(box["value"]["path"]).name if box["value"] else None for box in boxes]
             for api_name, boxes in shown.items()}
    assert names == {"fill_mask": ["predictions.csv", "predictions.html"],
                     "mask_each_word": ["mask-each-word.csv", "mask-each-word.html"],
                     # Draw empties the neighbours' box: its table is taken off the page with the maps
                     "embedding_map": ["embedding-map.csv", "how-alike.csv", "embedding-map.html", None],
                     "layer_similarity": ["layer-similarity.csv", "layer-similarity.html"]}
    assert all(box["visible"] is (box["value"] is not None) for boxes in shown.values() for box in boxes)
    assert all(Path(box["value"]["path"]).stat().st_size > 0 for boxes in shown.values() for box in boxes
               if box["value"])

    async def files_before_any_action(session: SessionState) -> list:
        event = next(d for d in dependencies if d["api_name"] == "fill_mask")
        follow_up = next(d for d in dependencies if d["trigger_after"] == event["id"]
                         and d["outputs"] == [b._id for b in predict_parts["files"]["fill_mask"]])
        return await run(session, follow_up, [None])

    # another session has shown nothing: its boxes stay hidden, not filled with the first session's files
    untouched = asyncio.run(files_before_any_action(SessionState(demo)))
    assert untouched == [{"__type__": "update"}] * 2


PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n" + bytes(range(256)) * 8


@pytest.mark.app
def test_a_file_of_another_type_sent_through_the_api_gets_the_sentence_the_page_gives(runs_dir, tmp_path, capfd):
    """A PDF sent to /embedding_map or /start_run reaches the tab's own check: the client gets the sentence the page
    writes under the upload box, and the server's log no traceback (gr.File refused it with a bare HTTP 400 where
    the event has a validator, and with its own words and a traceback where it has none)."""
    import gradio as gr
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from core.compare.sentences import read_sentence_file
    from train.launcher import RunLauncher, check_uploaded_corpus
    from ui import distill_tab, embed_inputs, embed_tab
    from ui.context import AppContext
    from ui.page_text import markdown_text

    pdf = tmp_path / "notes.pdf"
    pdf.write_bytes(PDF)
    said = {}
    for check, key in ((read_sentence_file, "embed"), (lambda path: check_uploaded_corpus(path, pdf.name), "corpus")):
        with pytest.raises(ValueError) as refused:
            check(pdf)
        said[key] = str(refused.value)
    ctx = AppContext("bundled-teacher", "bundled-student", launcher=RunLauncher(runs_dir))
    with gr.Blocks() as demo:
        parts = {"distill": distill_tab.build(ctx), "embed": embed_tab.build(ctx)}
    assert embed_inputs.upload_line(str(pdf)) == markdown_text(said["embed"])  # the page's line under the box
    assert distill_tab.corpus_file_line(str(pdf)) == markdown_text(said["corpus"])
    assert parts["embed"]["upload"].file_types == [".txt", ".csv", ".tsv"]  # the page's file picker still filters
    demo.queue().launch(prevent_thread_lock=True, quiet=True)
    try:
        client = Client(demo.local_url, verbose=False)
        with pytest.raises(AppError) as refused:
            client.predict(source="Upload a file", file=handle_file(str(pdf)), model_1="bundled-teacher",
                           model_2="bundled-student", api_name="/embedding_map")
        assert str(refused.value) == said["embed"]
        with pytest.raises(AppError) as refused:
            client.predict(owner=None, teacher="bundled-teacher", corpus_source=distill_tab.UPLOAD,
                           corpus_file=handle_file(str(pdf)), api_name="/start_run")
        assert str(refused.value) == said["corpus"]
    finally:
        demo.close()
    log = capfd.readouterr()
    assert "Traceback" not in log.out + log.err and "Invalid file type" not in log.out + log.err, log
    assert not run_entries(runs_dir)  # no run was queued


def test_the_upload_box_passes_a_file_of_another_type_on_by_its_path(tmp_path):
    from gradio.data_classes import FileData, ListFiles

    from ui.components import CheckedFile

    box = CheckedFile(file_types=[".txt"], type="filepath")
    for name in ("notes.pdf", "notes.txt"):
        assert box.preprocess(FileData(path=str(tmp_path / name))) == str(tmp_path / name)
    assert box.preprocess(ListFiles([FileData(path=str(tmp_path / "a.pdf"))])) == str(tmp_path / "a.pdf")
    assert box.preprocess(None) is None

"""What the Embeddings and Predictions tabs offer for download always matches what their page shows: each action is
run through Gradio's own event processing with the follow-ups its success or failure triggers, as a browser runs
them, and after every step each download box shown is read back against the view it belongs to."""
from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.downloads import html_figure, read_csv

EIGHT = ("Мы ходили в кино.\nКошка спит на диване.\nЗавтра обещают дождь.\nЯ люблю читать книги.\n"
         "Поезд опаздывает на час.\nМама готовит суп.\nКупи хлеба по дороге домой.\nМатч начнётся в семь.")
SIX = "\n".join(EIGHT.splitlines()[:6])


class Page:
    """One visitor's page: an event runs with the inputs the page holds, then the follow-ups its success (or
    failure) triggers, in order; what each component shows, and whether it is visible, is kept as the browser
    would keep it."""

    def __init__(self, demo):
        from gradio.state_holder import SessionState

        self.demo, self.session = demo, SessionState(demo)
        self.dependencies = demo.config["dependencies"]
        self.value = {block_id: getattr(block, "value", None) for block_id, block in demo.blocks.items()}
        self.visible = {block_id: getattr(block, "visible", True) for block_id, block in demo.blocks.items()}

    def run(self, api_name: str, inputs: list) -> bool:
        """Type `inputs` into the event's input boxes and run it; True when it succeeded."""
        event = next(d for d in self.dependencies if d["api_name"] == api_name)
        for block_id, value in zip(event["inputs"], inputs, strict=True):
            self.value[block_id] = value
        return asyncio.run(self._run(event))

    async def _run(self, event: dict) -> bool:
        try:
            answer = await self.demo.process_api(event["id"], [self.value[i] for i in event["inputs"]],
                                                 state=self.session)
        except Exception:  # the handler's gr.Error: what the page's failure listeners are for
            succeeded = False
        else:
            succeeded = True
            for block_id, update in zip(event["outputs"], answer["data"]):
                self._show(block_id, update)
        for after in self.dependencies:
            if after["trigger_after"] != event["id"]:
                continue
            if (after["trigger_only_on_success"] and not succeeded) or (after["trigger_only_on_failure"]
                                                                        and succeeded):
                continue
            await self._run(after)
        return succeeded

    def _show(self, block_id: int, update) -> None:
        if isinstance(update, dict) and update.get("__type__") == "update":
            if "value" in update:
                self.value[block_id] = update["value"]
            if "visible" in update:
                self.visible[block_id] = update["visible"]
        else:
            self.value[block_id] = update

    def file(self, box) -> Path | None:
        """The file a download box offers; None when the box is hidden or empty."""
        value = self.value[box._id]
        if not self.visible[box._id] or not value:
            return None
        return Path(value["path"] if isinstance(value, dict) else value)

    def plot(self, block) -> dict | None:
        """The figure a gr.Plot shows, as plotly's JSON; None when it shows none."""
        value = self.value[block._id]
        return json.loads(value["plot"]) if value else None

    def table(self, block) -> tuple[list[str], list[list]]:
        """(headers, rows) of a gr.Dataframe as shown."""
        value = self.value[block._id]
        if value is None:
            return [], []
        if hasattr(value, "columns"):  # the component's first value, a pandas table
            headers, rows = list(value.columns), value.values.tolist()
        else:
            headers, rows = list(value.get("headers") or []), list(value.get("data") or [])
        return headers, [row for row in rows if any(str(cell).strip() for cell in row)]  # an empty table: no rows


def numbers(values) -> np.ndarray:
    """A plotly JSON array: a list, or numpy's bytes as plotly writes them ({"dtype", "bdata"})."""
    if isinstance(values, dict) and "bdata" in values:
        return np.frombuffer(base64.b64decode(values["bdata"]), dtype=values["dtype"])
    return np.asarray(values, dtype=float)


BOXES = {"embedding-map.csv": "embed-download-map-csv", "how-alike.csv": "embed-download-scores-csv",
         "embedding-map.html": "embed-download-map-html", "neighbours.csv": "embed-download-neighbours-csv",
         "layer-similarity.csv": "embed-download-layers-csv", "layer-similarity.html": "embed-download-layers-html"}


def boxes_by_name(page: Page) -> dict:
    """Each download box of the Embeddings tab by the file name it offers, found by its elem_id."""
    by_id = {getattr(block, "elem_id", None): block for block in page.demo.blocks.values()}
    return {name: by_id[elem_id] for name, elem_id in BOXES.items()}


def assert_embedding_downloads_are_the_page(page: Page, parts: dict) -> None:
    """Every download box of the Embeddings tab that is shown holds what the page shows now; one whose view is empty
    is hidden."""
    boxes = boxes_by_name(page)
    shown_map = page.plot(parts["map_plot"])
    map_csv, map_html = page.file(boxes["embedding-map.csv"]), page.file(boxes["embedding-map.html"])
    if shown_map is None:
        assert map_csv is None and map_html is None
    else:
        assert map_csv is not None and map_html is not None
        assert html_figure(map_html)[0] == shown_map["data"]  # the maps as drawn now, marks included
        points = read_csv(map_csv)
        drawn = [t for t in shown_map["data"] if t["name"] == "sentences"]  # unlabelled: one trace a map, in order
        assert sorted(set(points["map"])) == [str(m) for m in range(1, len(drawn) + 1)]
        for number, trace in enumerate(drawn, start=1):
            rows = points[points["map"] == str(number)]
            np.testing.assert_allclose(rows["x"].astype(float), numbers(trace["x"]), rtol=1e-6)
            np.testing.assert_allclose(rows["y"].astype(float), numbers(trace["y"]), rtol=1e-6)
    headers, scores = page.table(parts["scores"])
    alike = page.file(boxes["how-alike.csv"])
    if not scores:
        assert alike is None
    else:
        assert read_csv(alike)[["space A", "space B"]].values.tolist() == [row[:2] for row in scores]
    headers, rows = page.table(parts["neighbour_rows"])
    neighbours = page.file(boxes["neighbours.csv"])
    if not rows:
        assert neighbours is None, "a neighbours file is offered beside an empty neighbours table"
    else:
        table = read_csv(neighbours)
        for number, column in enumerate(headers[1:], start=1):
            listed = [int(cell.rsplit("(#", 1)[1].split(",")[0]) for cell in (row[number] for row in rows)]
            rows_of_map = table[table["map"] == str(number)]
            assert rows_of_map["neighbour number"].astype(int).tolist() == listed
            assert {f"{number}. {m} (L{layer})" for m, layer in zip(rows_of_map["model"], rows_of_map["layer"])} \
                == {column}
    shown_layers = page.plot(parts["layer_plot"])
    layer_html = page.file(boxes["layer-similarity.html"])
    if shown_layers is None:
        assert layer_html is None and page.file(boxes["layer-similarity.csv"]) is None
    else:
        assert html_figure(layer_html)[0] == shown_layers["data"]


@pytest.fixture
def embeddings_page(tiny_teacher_dir, tiny_student_dir):
    import gradio as gr

    from ui import embed_tab
    from ui.context import AppContext

    teacher, student = str(tiny_teacher_dir), str(tiny_student_dir)
    with gr.Blocks() as demo:
        parts = embed_tab.build(AppContext(default_teacher=teacher, default_student=student))
    demo.queue()

    def draw(sentences: str, layer_1=-1, dims="2D", model_1=teacher) -> list:
        return ["Typed sentences", None, sentences, model_1, student, "", layer_1, -1, -1, "mean", "PCA", dims,
                "debiased"]

    def neighbours(sentences: str, chosen: str, k: int, layer_1=-1) -> list:
        return draw(sentences, layer_1)[:-1] + [chosen, k]

    return Page(demo), parts, draw, neighbours


@pytest.mark.slow
def test_drawing_again_takes_the_previous_neighbours_file_away(embeddings_page):
    page, parts, draw, neighbours = embeddings_page
    boxes = boxes_by_name(page)
    assert page.run("embedding_map", draw(EIGHT))
    assert_embedding_downloads_are_the_page(page, parts)
    assert page.run("neighbours", neighbours(EIGHT, "3. Я люблю читать книги.", 4))
    assert page.file(boxes["neighbours.csv"]) is not None
    assert_embedding_downloads_are_the_page(page, parts)
    for other in (draw(SIX), draw(EIGHT, layer_1=1), draw(EIGHT, dims="3D")):  # sentences, layer, projection
        assert page.run("neighbours", neighbours(EIGHT, "2", 3))
        assert page.file(boxes["neighbours.csv"]) is not None
        assert page.run("embedding_map", other)
        assert page.file(boxes["neighbours.csv"]) is None and not page.table(parts["neighbour_rows"])[1]
        assert_embedding_downloads_are_the_page(page, parts)


def test_a_failed_draw_takes_every_file_of_the_maps_away(embeddings_page):
    page, parts, draw, neighbours = embeddings_page
    boxes = boxes_by_name(page)
    assert page.run("embedding_map", draw(EIGHT))
    assert page.run("neighbours", neighbours(EIGHT, "1", 2))
    assert not page.run("embedding_map", draw(EIGHT, model_1="nonexistent"))
    assert page.plot(parts["map_plot"]) is None
    assert [page.file(boxes[name]) for name in ("embedding-map.csv", "how-alike.csv", "embedding-map.html",
                                                "neighbours.csv")] == [None] * 4
    assert_embedding_downloads_are_the_page(page, parts)


def test_neighbours_replaces_the_maps_files_with_the_maps_it_draws(embeddings_page):
    """Neighbours redraws the maps (the sentence and its neighbours marked, with the settings now chosen): the map's
    CSV and HTML are those of the maps on the page, not of the drawing before."""
    page, parts, draw, neighbours = embeddings_page
    boxes = boxes_by_name(page)
    assert page.run("embedding_map", draw(EIGHT))
    drawn = html_figure(page.file(boxes["embedding-map.html"]))[0]
    assert page.run("neighbours", neighbours(EIGHT, "5", 3))
    marked = html_figure(page.file(boxes["embedding-map.html"]))[0]
    assert {t["name"] for t in marked} - {t["name"] for t in drawn} == {"chosen", "neighbours"}
    assert_embedding_downloads_are_the_page(page, parts)
    assert page.run("neighbours", neighbours(EIGHT, "5", 3, layer_1=2))  # another layer, no Draw between
    points = read_csv(page.file(boxes["embedding-map.csv"]))
    assert set(points[points["map"] == "1"]["layer"]) == {"2"}
    assert_embedding_downloads_are_the_page(page, parts)
    assert page.run("layer_similarity", draw(EIGHT)[:6] + ["mean", "debiased"])
    assert_embedding_downloads_are_the_page(page, parts)  # the layers' files beside the maps', each its own


def test_prediction_downloads_follow_each_result_shown(tiny_teacher_dir, tiny_student_dir, runs_dir):
    import gradio as gr

    from ui import predict_tab
    from ui.context import AppContext

    teacher, student = str(tiny_teacher_dir), str(tiny_student_dir)
    with gr.Blocks() as demo:
        parts = predict_tab.build(AppContext(default_teacher=teacher, default_student=student))
    demo.queue()
    page = Page(demo)
    csv_box, html_box = parts["files"]["fill_mask"]
    for sentence in ("Не забудь взять [MASK], на улице дождь.", "Мой [MASK] опять разрядился."):
        assert page.run("fill_mask", [teacher, student, "", 3, sentence])
        assert set(read_csv(page.file(csv_box))["sentence"]) == {sentence}
        assert html_figure(page.file(html_box))[0] == page.plot(parts["bars"])["data"]
    assert not page.run("fill_mask", [teacher, student, "", 3, "Без пропуска."])
    assert page.file(csv_box) is None and page.file(html_box) is None and page.plot(parts["bars"]) is None
    strip_csv, strip_html = parts["files"]["mask_each_word"]
    assert page.run("mask_each_word", [teacher, student, "", 3, "Мы долго гуляли."])
    assert set(read_csv(page.file(strip_csv))["sentence"]) == {"Мы долго гуляли."}
    assert html_figure(page.file(strip_html))[0] == page.plot(parts["strip"])["data"]

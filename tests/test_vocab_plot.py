"""The compression-against-quality plot of scripts/vocab_experiment keeps every label inside the figure."""
import json

from core.paths import ASSETS
from scripts.vocab_experiment import plot


def test_every_label_lies_inside_the_figure():
    rows = json.loads((ASSETS / "results" / "vocab_experiment.json").read_text(encoding="utf-8"))["rows"]
    figure = plot(rows)
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    frame = figure.bbox
    labels = [text for text in figure.axes[0].texts]
    assert [text.get_text().split(":")[0] for text in labels] == [row["student"] for row in rows]  # teacher included
    for text in labels:
        box = text.get_window_extent(renderer)
        assert box.x0 >= frame.x0 and box.x1 <= frame.x1 and box.y0 >= frame.y0 and box.y1 <= frame.y1, \
            text.get_text()

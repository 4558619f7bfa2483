"""The Predictions bars' layout, which must hold on a 390-pixel phone as on a wide window: each guess's word above
its bar (tick labels beside each chart's axis ran over the chart to their left), charts apart, the title under the
component's label."""
from __future__ import annotations

import pytest

from core.compare import predict
from core.models import zoo

TWO_MASKS = "Давай вечером сходим в [MASK], а потом [MASK] домой."


@pytest.fixture(scope="module")
def many_guesses(tiny_teacher_dir, tiny_student_dir) -> predict.SentenceComparison:
    """Three models, two masks, twenty guesses each: the most the tab shows at once, short of 20 masks."""
    teacher, student = zoo.load(str(tiny_teacher_dir)), zoo.load(str(tiny_student_dir))
    return predict.compare([teacher, student, teacher], TWO_MASKS, 20)


def charts(figure) -> list[tuple]:
    """(bars, words) of each chart, paired by the subplot they are drawn in."""
    bars = [t for t in figure.data if t.type == "bar"]
    words = {(t.xaxis, t.yaxis): t for t in figure.data if t.type == "scatter"}
    return [(b, words.get((b.xaxis, b.yaxis))) for b in bars]


def axis(figure, name: str, letter: str):
    """The layout's axis of a trace's axis name ("y2" -> yaxis2)."""
    return figure.layout[letter + "axis" + name[1:]]


def test_each_guess_word_is_written_above_its_own_bar_and_not_beside_the_axis(many_guesses):
    from ui import predict_figures as pf

    figure = pf.prediction_figure(many_guesses)
    pairs = charts(figure)
    assert len(pairs) == 2 * 3 and pairs[0][0] is figure.data[0]  # each chart's bars keep their place in the data
    px = pf.GUESS_PX
    for bars, words in pairs:
        y_axis = axis(figure, bars.yaxis, "y")
        # no word as a tick label: between two charts lies only the guess axis's title
        assert y_axis.showticklabels is False and y_axis.title.text == pf.GUESS_AXIS
        assert words is not None and list(words.text) == list(bars.customdata) and words.hoverinfo == "skip"
        assert list(bars.y) == list(range(20)) and set(words.x) == {0}
        low, high = y_axis.range  # reversed: best guess on top
        for rank, y in enumerate(words.y):
            bar_top, bar_above_bottom = rank - pf.BAR_SHARE / 2, rank - 1 + pf.BAR_SHARE / 2
            half_word = pf.WORD_FONT / 2 / px
            assert bar_above_bottom + half_word < y < bar_top - half_word, (rank, y)
            assert (bar_top - y) < (y - bar_above_bottom)  # nearer its own bar than the one above
            assert high < y - half_word and y + half_word < low
    assert figure.layout.bargap == pytest.approx(1 - pf.BAR_SHARE)


def test_the_charts_of_a_row_lie_apart_and_each_guess_has_its_pixels(many_guesses):
    from ui import predict_figures as pf

    figure = pf.prediction_figure(many_guesses)
    layout = figure.layout
    rows: dict[tuple, list] = {}
    for bars, _ in charts(figure):
        rows.setdefault(tuple(axis(figure, bars.yaxis, "y").domain), []).append(axis(figure, bars.xaxis, "x").domain)
    assert len(rows) == 2
    plot_px = layout.height - layout.margin.t - layout.margin.b
    for (bottom, top), domains in rows.items():
        domains.sort()
        assert len(domains) == 3
        for left, right in zip(domains, domains[1:]):
            assert right[0] - left[1] >= pf.GAP_BETWEEN_MODELS - 1e-9  # the room of the rotated axis title
        span = 20 - 1 + pf.BAR_SHARE / 2 + 0.1 - (-1 + pf.BAR_SHARE / 2)
        per_guess = (top - bottom) * plot_px / span
        # a word's band over each bar holds the word and its gap
        assert (1 - pf.BAR_SHARE) * per_guess >= pf.WORD_FONT + 2 * pf.WORD_GAP_PX, per_guess


def test_the_title_starts_under_the_components_label_and_the_toolbar(many_guesses):
    from ui import predict_figures as pf

    title = pf.prediction_figure(many_guesses).layout.title
    assert title.text == pf.sentence_title(TWO_MASKS)
    assert (title.yref, title.y, title.yanchor) == ("container", 1.0, "top")
    assert title.pad.t >= 36  # Gradio's label is 26 px high, Plotly's toolbar 25 px
    assert pf.prediction_figure(many_guesses).layout.margin.t >= title.pad.t + 2 * title.font.size + 20


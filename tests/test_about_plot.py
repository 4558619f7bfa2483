"""The About tab's compression plot on a phone: room for each point's label, and no negative tick."""
from ui import about_tab

ROWS = [dict(student="teacher", params=4.9e6, agreement=1.0),
        dict(student="same vocabulary", params=3.3e6, agreement=0.70),
        dict(student="reduced, match", params=7.4e5, agreement=0.339),
        dict(student="reduced, reduce", params=7.4e5, agreement=0.336)]


def test_every_label_fits_beside_its_point_in_a_phones_plot_area():
    """On a 390-pixel phone the leftmost labels ("reduced, match") were cut at the plot area's left edge."""
    figure = about_tab.tradeoff_figure(ROWS)
    left, right = figure.layout.xaxis.range
    trace = figure.data[0]
    for x, label in zip(trace.x, trace.text):
        half = len(label) * about_tab.LABEL_CHAR_PX / 2  # px: the label is centred on its point
        assert (x - left) / (right - left) * about_tab.PHONE_PLOT_PX >= half - 1e-6, label
        assert (right - x) / (right - left) * about_tab.PHONE_PLOT_PX >= half - 1e-6, label
    assert figure.layout.margin.l + figure.layout.margin.r <= 80  # Plotly's 160 px left a phone 164 px to plot in


def test_the_x_axis_ticks_start_at_zero_and_are_round():
    figure = about_tab.tradeoff_figure(ROWS)
    assert figure.layout.xaxis.range[0] < 0  # the room the leftmost label needs
    assert list(figure.layout.xaxis.tickvals) == [0, 1, 2, 3, 4, 5]
    assert about_tab.zero_up_ticks(0.9) == [0, 0.2, 0.4, 0.6, 0.8]  # 0.6, not 0.6000000000000001
    assert about_tab.zero_up_ticks(120) == [0, 20, 40, 60, 80, 100, 120]

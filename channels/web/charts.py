"""The performance page's charts: SVG drawn on the server by pygal, served as images.

A chart is an ``<img>`` of a same-origin address answering ``image/svg+xml``, so the
styles pygal puts inside the SVG are the image's own, not the page's (whose Content
Security Policy allows no inline style). pygal's scripts are left out: its ``js`` list
emptied, and the one inline script it writes anyway (its configuration, for tooltips)
taken out of the tree before the SVG is written, so the image has nothing to run even
opened on its own. Each chart's words come in the page's language; its text
alternative is the page's (the ``alt`` and the table beside it).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence

import pygal
from pygal.style import Style

# pygal adds an import hook to sys.meta_path for its map plugins (which we do not use).
# It has no find_spec, so from then on every import that reaches it (any module not
# found elsewhere, as a library probing for an optional one) warns with an ImportWarning,
# an error under the tests' filterwarnings. Take it off again.
sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]

WIDTH, HEIGHT = 960, 400
TALL = 540  # the time-to-tell chart: room for a legend of five long names
# GOV.UK Frontend's colours: blue, green, red, purple, orange, turquoise; the bar black.
COLOURS = ("#1d70b8", "#00703c", "#d4351c", "#4c2c92", "#f47738", "#28a197")
GREAT_COLOUR = "#0b0c0c"

STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#0b0c0c",
    foreground_strong="#0b0c0c",
    foreground_subtle="#505a5f",
    colors=COLOURS,
    font_family="arial, sans-serif",
    label_font_size=14,
    major_label_font_size=14,
    legend_font_size=16,
    value_font_size=14,
    no_data_font_size=24,
    opacity="1",
    opacity_hover="1",
)

Series = Sequence[float | None]
# Where the time-to-tell chart marks its scale: 1 s, 10 s, 1 min, 10 min, 1 h, 6 h, 1 d, 3 d.
TIME_LABELS = (1, 10, 60, 600, 3600, 6 * 3600, 86400, 3 * 86400)


def _make(
    kind: type[pygal.graph.graph.Graph], labels: Sequence[str], no_data: str, **options: object
) -> pygal.graph.graph.Graph:
    """A pygal chart of ``kind`` in the site's style, with no JavaScript."""
    config: dict[str, object] = {
        "js": [],  # no tooltips: nothing to run
        "width": WIDTH,
        "height": HEIGHT,
        "explicit_size": True,
        "style": STYLE,
        "x_labels": list(labels),
        "x_labels_major_every": 7,
        "show_minor_x_labels": False,
        "truncate_label": -1,
        "legend_at_bottom": True,
        "legend_at_bottom_columns": 3,
        "truncate_legend": -1,
        "no_data_text": no_data,
    }
    return kind(**{**config, **options})


def _svg(chart: pygal.graph.graph.Graph, title: str) -> bytes:
    """The chart as an SVG document with no script, titled ``title``."""
    tree = chart.render_tree()
    for parent in tree.iter():
        for child in list(parent):
            if str(child.tag).rpartition("}")[2] == "script":
                parent.remove(child)
    for element in tree.iter():
        if str(element.tag).rpartition("}")[2] == "title":
            element.text = title  # pygal's is "Pygal"
            break
    return ET.tostring(tree, encoding="utf-8", xml_declaration=True)


def share_chart(
    title: str,
    labels: Sequence[str],
    series: tuple[str, Series],
    great: tuple[str, float],
    no_data: str,
) -> bytes:
    """A line of a daily share (0 to 1) as a percentage, with the government's "great"
    bar as a dashed line."""
    chart = _make(
        pygal.Line,
        labels,
        no_data,
        range=(0, 100),
        y_labels=[0, 20, 40, 60, 80, 100],
        value_formatter=lambda v: f"{v:.0f}%",
        dots_size=3,
    )
    name, values = series
    chart.add(name, [None if v is None else round(v * 100, 1) for v in values])
    bar_name, bar = great
    if any(v is not None for v in values):
        chart.add(
            bar_name,
            [bar * 100] * len(values),
            show_dots=False,
            stroke_style={"width": 2, "dasharray": "8, 6"},
            color=GREAT_COLOUR,
        )
    return _svg(chart, title)


def bar_chart(
    title: str,
    labels: Sequence[str],
    series: tuple[str, Series],
    formatter: Callable[[float], str],
    no_data: str,
) -> bytes:
    """Bars of a daily amount."""
    chart = _make(pygal.Bar, labels, no_data, value_formatter=formatter)
    name, values = series
    chart.add(name, list(values))
    return _svg(chart, title)


def lines_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Series]],
    formatter: Callable[[float], str],
    no_data: str,
) -> bytes:
    """A line for each of several daily amounts, on a logarithmic scale (times to tell
    run from a fraction of a second to days)."""
    chart = _make(
        pygal.Line,
        labels,
        no_data,
        logarithmic=True,
        value_formatter=formatter,
        y_labels=list(TIME_LABELS),
        dots_size=3,
        height=TALL,  # room for a legend of long names
        legend_at_bottom_columns=1,
    )
    for name, values in series:
        chart.add(name, list(values))
    return _svg(chart, title)

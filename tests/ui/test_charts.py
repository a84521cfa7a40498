"""Server-drawn SVG charts: a line per series with a titled point per value, bars largest
first, and every label escaped."""

from __future__ import annotations

import re

from stackyard.ui.charts import Series, bar_chart, line_chart


def test_a_line_per_series_and_a_titled_point_per_value() -> None:
    svg = str(
        line_chart(
            "Latency <ms>",
            [
                Series("p50", [("10:00", 10.0), ("11:00", 30.0)]),
                Series("p99 & more", [("10:00", 40.0), ("11:00", 80.0)]),
            ],
            " ms",
        )
    )
    assert svg.startswith('<svg class="chart"')
    assert 'aria-label="Latency &lt;ms&gt;"' in svg
    assert svg.count("<polyline") == 2
    assert svg.count("<circle") == 4
    assert "<title>p99 &amp; more 11:00: 80 ms</title>" in svg
    # The highest value touches the top of the plot, zero would sit on the bottom line.
    ys = [float(y) for y in re.findall(r'cy="([\d.]+)"', svg)]
    assert min(ys) == 12.0
    assert max(ys) < 220 - 28


def test_bars_come_largest_first_and_empty_charts_still_draw() -> None:
    svg = str(bar_chart("Cost by model", [("small", 0.5), ("large", 2.0)], "$"))
    assert svg.index("large") < svg.index("small")
    assert "<title>large: $2.00</title>" in svg
    assert "<title>small: $0.5000</title>" in svg
    assert str(line_chart("Nothing yet", [])).endswith("</svg>")
    assert "<rect" not in str(bar_chart("Nothing yet", []))

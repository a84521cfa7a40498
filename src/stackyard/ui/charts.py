"""Charts as inline SVG, drawn on the server: no charting library to ship or load, readable
without JavaScript, and each point carries a ``<title>`` (its value on hover, and for screen
readers). Lines over time, one per series, and horizontal bars."""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28
#: Colour-blind-safe (Okabe and Ito).
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")


@dataclass(frozen=True)
class Series:
    name: str
    points: Sequence[tuple[str, float]]  # (label on the x axis, value)


def _number(value: float, unit: str = "") -> str:
    if unit == "$":
        return f"${value:,.4f}" if value < 1 else f"${value:,.2f}"
    if abs(value) >= 1000:
        return f"{value:,.0f}{unit}"
    return f"{value:.3g}{unit}"


def line_chart(
    title: str, series: Sequence[Series], unit: str = "", *, order: Sequence[str] | None = None
) -> Markup:
    """One line per series over shared x labels: time buckets (which sort as text), or the
    labels of ``order`` in that order (training steps)."""
    seen = {label for s in series for label, _ in s.points}
    first = [label for label in order or () if label in seen]
    labels = first + sorted(seen - set(first))
    top = max((v for s in series for _, v in s.points), default=0.0) or 1.0
    inner_w, inner_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    step = inner_w / max(len(labels) - 1, 1)
    where = {label: LEFT + i * step for i, label in enumerate(labels)}

    def y(value: float) -> float:
        return TOP + inner_h * (1 - value / top)

    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>'
    ]
    for fraction in (0, 0.5, 1):
        value = top * fraction
        parts.append(
            f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"/><text class="axis" x="{LEFT - 6}" y="{y(value) + 4:.1f}" '
            f'text-anchor="end">{html.escape(_number(value, unit))}</text>'
        )
    if labels:
        for label in (labels[0], labels[-1]):
            anchor = "start" if label == labels[0] else "end"
            parts.append(
                f'<text class="axis" x="{where[label]:.1f}" y="{HEIGHT - 8}" '
                f'text-anchor="{anchor}">{html.escape(label)}</text>'
            )
    for index, s in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        points = sorted(s.points, key=lambda point: where[point[0]])
        path = " ".join(f"{where[label]:.1f},{y(value):.1f}" for label, value in points)
        parts.append(
            f'<polyline class="series" fill="none" stroke="{colour}" stroke-width="2" '
            f'points="{path}"><title>{html.escape(s.name)}</title></polyline>'
        )
        for label, value in points:
            parts.append(
                f'<circle cx="{where[label]:.1f}" cy="{y(value):.1f}" r="3" fill="{colour}">'
                f"<title>{html.escape(s.name)} {html.escape(label)}: "
                f"{html.escape(_number(value, unit))}</title></circle>"
            )
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(title: str, bars: Sequence[tuple[str, float]], unit: str = "") -> Markup:
    """Horizontal bars, largest first."""
    rows = sorted(bars, key=lambda bar: -bar[1])[:12]
    top = max((v for _, v in rows), default=0.0) or 1.0
    row_h = 24
    height = TOP + BOTTOM + row_h * max(len(rows), 1)
    label_w = 160
    inner_w = WIDTH - label_w - RIGHT - 80
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{html.escape(title)}"><title>{html.escape(title)}</title>'
    ]
    for index, (label, value) in enumerate(rows):
        y = TOP + index * row_h
        width = inner_w * value / top
        text = html.escape(_number(value, unit))
        parts.append(
            f'<text class="axis" x="{label_w - 6}" y="{y + 16}" text-anchor="end">'
            f"{html.escape(label[:28])}</text>"
            f'<rect x="{label_w}" y="{y + 4}" width="{width:.1f}" height="{row_h - 8}" '
            f'fill="{PALETTE[0]}"><title>{html.escape(label)}: {text}</title></rect>'
            f'<text class="axis" x="{label_w + width + 6:.1f}" y="{y + 16}">{text}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))

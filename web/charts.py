"""Server-side SVG charts for the career pages and the operator pages: no JavaScript, readable without colour.

Every chart is an <svg role="img"> with a <title> and a <desc> (what a screen reader says), a text label on every
bar (the figure itself), and series told apart by pattern as well as colour (hatched losses, dotted missing events),
with a legend in words. Bars carry class "bar" and data-series / data-value, so a test can count and read them.
Values are escaped; sizes are fixed viewBox units, the CSS scales the chart to its container.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from itertools import count

from django.utils.safestring import SafeString, mark_safe

_ids = count(1)
WIDTH, HEIGHT = 640, 220
TOP, BOTTOM, LEFT, RIGHT = 24, 36, 8, 8
_DEFS = (
    "<defs>"
    '<pattern id="{p}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
    '<rect width="6" height="6" fill="#f3d6d6"/><line x1="0" y1="0" x2="0" y2="6" stroke="#b03a3a" stroke-width="3"/>'
    "</pattern>"
    '<pattern id="{p}-dots" width="6" height="6" patternUnits="userSpaceOnUse">'
    '<rect width="6" height="6" fill="#e8e2f5"/><circle cx="3" cy="3" r="1.6" fill="#5b3fa0"/>'
    "</pattern>"
    "</defs>"
)


@dataclass(frozen=True, slots=True)
class Series:
    name: str  # also the legend's word and data-series
    fill: str  # "solid", "hatch" or "dots"
    values: Sequence[float]
    color: str = "#2f6fb0"


def _fill(series: Series, prefix: str) -> str:
    if series.fill == "hatch":
        return f"url(#{prefix}-hatch)"
    if series.fill == "dots":
        return f"url(#{prefix}-dots)"
    return series.color


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bar_chart(title: str, desc: str, labels: Sequence[str], series: Sequence[Series]) -> SafeString:
    """Grouped bars: one group per label, one bar per series, each bar labelled with its value."""
    prefix = f"chart{next(_ids)}"
    groups = max(len(labels), 1)
    top = max([v for s in series for v in s.values] + [1])
    plot_h = HEIGHT - TOP - BOTTOM
    group_w = (WIDTH - LEFT - RIGHT) / groups
    bar_w = max(min(group_w * 0.8 / max(len(series), 1), 40), 2)
    parts = [
        f'<svg class="chart" role="img" aria-labelledby="{prefix}-t {prefix}-d" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{prefix}-t">{escape(title)}</title><desc id="{prefix}-d">{escape(desc)}</desc>',
        _DEFS.format(p=prefix),
        f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}" stroke="#889"/>',
    ]
    for g, label in enumerate(labels):
        x0 = LEFT + g * group_w + (group_w - bar_w * len(series)) / 2
        for i, s in enumerate(series):
            value = s.values[g]
            h = plot_h * value / top
            x, y = x0 + i * bar_w, HEIGHT - BOTTOM - h
            parts.append(
                f'<rect class="bar" data-series="{escape(s.name)}" data-label="{escape(label)}" '
                f'data-value="{_fmt(value)}" x="{x:.1f}" y="{y:.1f}" width="{bar_w - 1:.1f}" height="{h:.1f}" '
                f'fill="{_fill(s, prefix)}" stroke="#334" stroke-width="0.5">'
                f"<title>{escape(label)}: {_fmt(value)} {escape(s.name)}</title></rect>"
            )
            if groups <= 40:
                parts.append(
                    f'<text x="{x + (bar_w - 1) / 2:.1f}" y="{y - 3:.1f}" text-anchor="middle">{_fmt(value)}</text>'
                )
        parts.append(
            f'<text x="{LEFT + g * group_w + group_w / 2:.1f}" y="{HEIGHT - BOTTOM + 14}" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append(_legend(series, prefix))
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped or a number


def _legend(series: Sequence[Series], prefix: str) -> str:
    out = []
    for i, s in enumerate(series):
        x = LEFT + i * 130
        out.append(
            f'<rect x="{x}" y="{HEIGHT - 14}" width="12" height="10" fill="{_fill(s, prefix)}" stroke="#334" '
            f'stroke-width="0.5"/><text x="{x + 16}" y="{HEIGHT - 5}">{escape(s.name)}</text>'
        )
    return "".join(out)


def form_chart(title: str, results: Sequence[str]) -> SafeString:
    """Recent form, oldest to newest, left to right: a tall solid bar lettered W for a win, a short hatched bar
    lettered L for a loss, a dotted stub lettered "WO" for a walkover."""
    prefix = f"chart{next(_ids)}"
    n = max(len(results), 1)
    slot = (WIDTH - LEFT - RIGHT) / max(n, 20)
    wins = sum(r == "W" for r in results)
    losses = sum(r == "L" for r in results)
    desc = f"Last {len(results)} results, oldest first: {' '.join(results) or 'none'} ({wins} won, {losses} lost)."
    base = HEIGHT - BOTTOM
    parts = [
        f'<svg class="chart form" role="img" aria-labelledby="{prefix}-t {prefix}-d" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{prefix}-t">{escape(title)}</title><desc id="{prefix}-d">{escape(desc)}</desc>',
        _DEFS.format(p=prefix),
    ]
    heights = {"W": 0.9, "L": 0.45, "WO": 0.2}
    fills = {"W": "#2f8f4e", "L": f"url(#{prefix}-hatch)", "WO": f"url(#{prefix}-dots)"}
    for i, r in enumerate(results):
        h = (HEIGHT - TOP - BOTTOM) * heights.get(r, 0.2)
        x = LEFT + i * slot
        parts.append(
            f'<rect class="bar" data-series="form" data-value="{escape(r)}" x="{x + 1:.1f}" y="{base - h:.1f}" '
            f'width="{slot - 2:.1f}" height="{h:.1f}" fill="{fills.get(r, "#999")}" stroke="#334" stroke-width="0.5">'
            f"<title>{escape(r)}</title></rect>"
            f'<text x="{x + slot / 2:.1f}" y="{base + 14}" text-anchor="middle">{escape(r)}</text>'
        )
    parts.append(
        _legend([Series("won (W)", "solid", [], "#2f8f4e"), Series("lost (L)", "hatch", [])], prefix) + "</svg>"
    )
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped or a number

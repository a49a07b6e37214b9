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


def step_chart(title: str, desc: str, points: Sequence[tuple[str, float]], *, peak: float) -> SafeString:
    """A value over time as a step line through a marker per point (label, value), oldest left. Readable without
    colour: the y-axis bounds, the first and last values and the peak are written as text, the peak marker is a
    triangle rather than a dot. Markers carry class "point" and data-label / data-value, for a test to read."""
    prefix = f"chart{next(_ids)}"
    values = [v for _label, v in points]
    low, high = min(values + [peak]), max(values + [peak])
    span = (high - low) or 1.0
    plot_l, plot_r = LEFT + 44, WIDTH - RIGHT - 44
    plot_t, plot_b = TOP, HEIGHT - BOTTOM
    step = (plot_r - plot_l) / max(len(points) - 1, 1)

    def y(v: float) -> float:
        return plot_b - (plot_b - plot_t) * (v - low) / span

    xy = [(plot_l + i * step, y(v)) for i, v in enumerate(values)]
    path = "".join(f"M{x:.1f},{yy:.1f}" if i == 0 else f"H{x:.1f}V{yy:.1f}" for i, (x, yy) in enumerate(xy))
    parts = [
        f'<svg class="chart step" role="img" aria-labelledby="{prefix}-t {prefix}-d" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{prefix}-t">{escape(title)}</title><desc id="{prefix}-d">{escape(desc)}</desc>',
        f'<line x1="{plot_l}" y1="{plot_b}" x2="{plot_r}" y2="{plot_b}" stroke="#889"/>',
        f'<text x="{plot_l - 4}" y="{plot_t + 4}" text-anchor="end">{high:.0f}</text>',
        f'<text x="{plot_l - 4}" y="{plot_b}" text-anchor="end">{low:.0f}</text>',
        f'<path d="{path}" fill="none" stroke="#2f6fb0" stroke-width="2"/>',
    ]
    peak_drawn = False
    for (label, value), (x, yy) in zip(points, xy, strict=True):
        is_peak = value == peak and not peak_drawn
        peak_drawn = peak_drawn or is_peak
        shape = (
            f'<path d="M{x:.1f},{yy - 6:.1f}l5,9h-10z" fill="#c08a00" stroke="#334"'
            if is_peak
            else f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="2.5" fill="#2f6fb0" stroke="#334"'
        )
        mark = ' data-peak="1"' if is_peak else ""
        parts.append(
            f'<g class="point" data-label="{escape(label)}" data-value="{value:.1f}"{mark}>{shape} '
            f'stroke-width="0.5"/><title>{escape(label)}: {value:.0f}</title></g>'
        )
    if points:
        x0, (x1, y1) = xy[0][0], xy[-1]
        parts.append(f'<text x="{x0:.1f}" y="{plot_b + 14}" text-anchor="start">{escape(points[0][0])}</text>')
        parts.append(f'<text x="{x1:.1f}" y="{plot_b + 14}" text-anchor="end">{escape(points[-1][0])}</text>')
        parts.append(f'<text x="{x1 + 4:.1f}" y="{y1 + 4:.1f}">{values[-1]:.0f}</text>')
    parts.append(
        f'<text x="{LEFT}" y="{HEIGHT - 5}">line: rating after each match shown; triangle: peak {peak:.0f}</text>'
    )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped or a number

"""Small inline SVG charts for the HTML report: bars, stacked bars, columns, a funnel.

Every chart is a self-contained ``<svg>`` string (no script, no external resource)
that scales with the page (``viewBox``), with axes, tick labels, a legend and a value
written next to each bar, so it reads without colour: series are told apart by fill
*pattern* (solid, hatched, dotted, light), not by hue alone, and print in black and
white. The patterns live in :data:`PATTERN_DEFS`, included once per page.

Text widths are estimated (Hangul and other wide characters count as one em, others
as about half), which is enough to lay out labels without a browser.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

__all__ = [
    "PATTERN_DEFS",
    "STYLES",
    "Series",
    "funnel",
    "grouped_bars",
    "nice_ticks",
    "stacked_bars",
    "stacked_columns",
    "text_width",
]

_INK = "#1f3b5c"
_GRID = "#d0d5dc"
_FONT = 12

#: Fill styles a series can have; each looks different in black and white.
STYLES = ("solid", "hatch", "dots", "light", "cross")
_FILLS = {
    "solid": _INK,
    "hatch": "url(#cl-hatch)",
    "dots": "url(#cl-dots)",
    "light": "#a9c4e0",
    "cross": "url(#cl-cross)",
}

#: The fill patterns, as one invisible SVG to put once at the top of the page.
PATTERN_DEFS = f"""<svg class="cl-defs" width="0" height="0" aria-hidden="true" focusable="false">
<defs>
<pattern id="cl-hatch" width="6" height="6" patternUnits="userSpaceOnUse"
 patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>
<line x1="0" y1="0" x2="0" y2="6" stroke="{_INK}" stroke-width="2.2"/></pattern>
<pattern id="cl-dots" width="5" height="5" patternUnits="userSpaceOnUse">
<rect width="5" height="5" fill="#fff"/><circle cx="2.5" cy="2.5" r="1.3" fill="{_INK}"/></pattern>
<pattern id="cl-cross" width="7" height="7" patternUnits="userSpaceOnUse">
<rect width="7" height="7" fill="#fff"/>
<path d="M0 0L7 7M7 0L0 7" stroke="{_INK}" stroke-width="1"/></pattern>
</defs></svg>"""


@dataclass(frozen=True)
class Series:
    """One series of a chart: its legend label, one value per category, and its fill."""

    label: str
    values: Sequence[float | None]
    style: str = "solid"


def text_width(text: str, size: float = _FONT) -> float:
    """The estimated width of ``text`` at font ``size`` (wide characters count one em)."""
    total = 0.0
    for ch in text:
        if unicodedata.east_asian_width(ch) in ("W", "F"):
            total += 1.0
        elif ch in "il.,:;|!'":
            total += 0.3
        elif ch.isupper() or ch in "mwMW%":
            total += 0.72
        else:
            total += 0.56
    return total * size


def nice_ticks(maximum: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``maximum`` (about ``count`` of them)."""
    if maximum < 1e-9:  # nothing to show (or too little to draw): a unit axis
        return [0.0, 1.0]
    raw = maximum / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [i * step for i in range(max(math.ceil(maximum / step), 1) + 1)]


def _number(value: float) -> str:
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}"


def _t(
    x: float, y: float, text: str, *, anchor: str = "start", size: int = _FONT, extra: str = ""
) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
        f'fill="#1a1a1a"{extra}>{escape(text)}</text>'
    )


def _rect(x: float, y: float, w: float, h: float, style: str) -> str:
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
        f'fill="{_FILLS[style]}" stroke="{_INK}" stroke-width="0.8"/>'
    )


def _open(width: float, height: float, title: str, description: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" width="100%" '
        f'role="img" xmlns="http://www.w3.org/2000/svg" preserveAspectRatio="xMinYMin meet">'
        f"<title>{escape(title)}</title><desc>{escape(description)}</desc>"
    )


def _legend(series: Sequence[Series], x: float, y: float, width: float) -> tuple[str, float]:
    """Legend swatches from ``(x, y)``, wrapping at ``width``; returns SVG and its height."""
    parts = []
    cx, cy = x, y
    for s in series:
        item = 18 + text_width(s.label) + 16
        if cx + item > x + width and cx > x:
            cx, cy = x, cy + 18
        parts.append(_rect(cx, cy - 10, 12, 12, s.style))
        parts.append(_t(cx + 17, cy, s.label))
        cx += item
    return "".join(parts), cy - y + 18


def _value_axis(
    ticks: Sequence[float],
    scale: Callable[[float], float],
    *,
    horizontal: bool,
    start: float,
    end: float,
    label: str = "",
) -> str:
    parts = []
    for tick in ticks:
        pos = scale(tick)
        if horizontal:
            parts.append(
                f'<line x1="{pos:.1f}" y1="{start:.1f}" x2="{pos:.1f}" y2="{end:.1f}" '
                f'stroke="{_GRID}" stroke-width="0.8"/>'
            )
            parts.append(_t(pos, end + 14, _number(tick), anchor="middle", size=10))
        else:
            parts.append(
                f'<line x1="{start:.1f}" y1="{pos:.1f}" x2="{end:.1f}" y2="{pos:.1f}" '
                f'stroke="{_GRID}" stroke-width="0.8"/>'
            )
            parts.append(_t(start - 5, pos + 3.5, _number(tick), anchor="end", size=10))
    if label and horizontal:
        mid = (scale(ticks[0]) + scale(ticks[-1])) / 2
        parts.append(_t(mid, end + 28, label, anchor="middle", size=10))
    return "".join(parts)


def grouped_bars(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    axis_label: str = "",
    width: float = 460,
    bar: float = 9,
    reference: tuple[float, str] | None = None,
    value_format: Callable[[float], str] = _number,
) -> str:
    """Horizontal bars: one group per category, one bar per series, values written beside.

    ``reference`` draws a labelled dashed line at a value (a deadline, a target).
    """
    label_w = max((text_width(c) for c in categories), default=0) + 12
    gap = 7
    group_h = bar * len(series) + gap
    legend, legend_h = _legend(series, 0, 14, width)
    top = 22 + legend_h
    plot_h = group_h * len(categories)
    values = [v for s in series for v in s.values if v is not None]
    ticks = nice_ticks(max([*values, reference[0] if reference else 0, 0]))
    x0 = label_w
    x1 = width - 46
    span = ticks[-1] or 1

    def scale(v: float) -> float:
        return x0 + (x1 - x0) * v / span

    height = top + plot_h + 40
    out = [_open(width, height, title, f"{title}: {', '.join(s.label for s in series)}")]
    out.append(legend)
    out.append(
        _value_axis(
            ticks, scale, horizontal=True, start=top - 4, end=top + plot_h, label=axis_label
        )
    )
    for i, category in enumerate(categories):
        gy = top + i * group_h
        out.append(_t(x0 - 6, gy + group_h / 2 + 1, category, anchor="end"))
        for j, s in enumerate(series):
            value = s.values[i]
            y = gy + j * bar
            if value is None:
                out.append(_t(x0 + 3, y + bar - 1.5, "–", size=9))
                continue
            out.append(_rect(x0, y, scale(value) - x0, bar - 1, s.style))
            out.append(_t(scale(value) + 3, y + bar - 1.5, value_format(value), size=9))
    out.append(
        f'<line x1="{x0:.1f}" y1="{top - 4:.1f}" x2="{x0:.1f}" y2="{top + plot_h:.1f}" '
        f'stroke="{_INK}" stroke-width="1"/>'
    )
    if reference is not None:
        rx = scale(reference[0])
        out.append(
            f'<line x1="{rx:.1f}" y1="{top - 6:.1f}" x2="{rx:.1f}" y2="{top + plot_h:.1f}" '
            f'stroke="#000" stroke-width="1.4" stroke-dasharray="5 3"/>'
        )
        out.append(_t(rx + 3, top - 8, reference[1], size=10))
    out.append("</svg>")
    return "".join(out)


def stacked_bars(
    categories: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    axis_label: str = "",
    width: float = 700,
    bar: float = 14,
    shares: bool = True,
) -> str:
    """Horizontal stacked bars (one per category), each part labelled with its value.

    With ``shares``, the first series' share of each bar's total is written after it.
    """
    label_w = max((text_width(c) for c in categories), default=0) + 12
    legend, legend_h = _legend(series, 0, 14, width)
    top = 22 + legend_h
    row = bar + 8
    plot_h = row * len(categories)
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(categories))]
    ticks = nice_ticks(max([*totals, 0]))
    x0, x1 = label_w, width - 70
    span = ticks[-1] or 1

    def scale(v: float) -> float:
        return x0 + (x1 - x0) * v / span

    height = top + plot_h + 40
    out = [_open(width, height, title, f"{title}: {', '.join(s.label for s in series)}")]
    out.append(legend)
    out.append(
        _value_axis(
            ticks, scale, horizontal=True, start=top - 4, end=top + plot_h, label=axis_label
        )
    )
    for i, category in enumerate(categories):
        y = top + i * row
        out.append(_t(x0 - 6, y + bar - 2, category, anchor="end"))
        x = x0
        for s in series:
            value = s.values[i] or 0
            w = scale(value) - x0
            out.append(_rect(x, y, w, bar, s.style))
            if value and w > text_width(_number(value), 9) + 4:
                # On a dark fill the value is white; on a pattern, dark with a white halo.
                paint = (
                    'fill="#fff"'
                    if s.style == "solid"
                    else 'fill="#1a1a1a" stroke="#fff" stroke-width="3" paint-order="stroke"'
                )
                out.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + bar - 3.5:.1f}" font-size="9" '
                    f'text-anchor="middle" {paint}>{_number(value)}</text>'
                )
            x += w
        if shares and totals[i]:
            share = (series[0].values[i] or 0) / totals[i]
            out.append(_t(x + 4, y + bar - 3, f"{_number(totals[i])} ({share:.0%})", size=9))
    out.append("</svg>")
    return "".join(out)


def stacked_columns(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    title: str,
    axis_label: str = "",
    width: float = 700,
    height: float = 240,
    divider: int | None = None,
    divider_labels: tuple[str, str] = ("", ""),
) -> str:
    """Vertical stacked columns over time, with the total above each column.

    ``divider`` draws a line before column ``divider`` (e.g. where this period starts),
    with ``divider_labels`` written left and right of it.
    """
    legend, legend_h = _legend(series, 0, 14, width)
    top = 28 + legend_h
    totals = [sum(s.values[i] or 0 for s in series) for i in range(len(labels))]
    ticks = nice_ticks(max([*totals, 0]))
    tick_w = max(text_width(_number(t), 10) for t in ticks)
    x0, x1 = tick_w + 12, width - 8
    y0, y1 = top, height - 36
    span = ticks[-1] or 1

    def scale(v: float) -> float:
        return y1 - (y1 - y0) * v / span

    step = (x1 - x0) / max(len(labels), 1)
    col = step * 0.68
    out = [_open(width, height, title, f"{title}: {', '.join(s.label for s in series)}")]
    out.append(legend)
    out.append(_value_axis(ticks, scale, horizontal=False, start=x0, end=x1))
    if axis_label:
        out.append(_t(x0 - tick_w - 8, y0 - 10, axis_label, size=10))
    for i, label in enumerate(labels):
        cx = x0 + step * i + (step - col) / 2
        y = y1
        for s in series:
            value = s.values[i] or 0
            h = y1 - scale(value)
            out.append(_rect(cx, y - h, col, h, s.style))
            y -= h
        if totals[i]:
            out.append(_t(cx + col / 2, y - 3, _number(totals[i]), anchor="middle", size=9))
        out.append(_t(cx + col / 2, y1 + 13, label, anchor="middle", size=9))
    out.append(
        f'<line x1="{x0:.1f}" y1="{y1:.1f}" x2="{x1:.1f}" y2="{y1:.1f}" '
        f'stroke="{_INK}" stroke-width="1"/>'
    )
    if divider is not None and 0 < divider < len(labels):
        dx = x0 + step * divider
        out.append(
            f'<line x1="{dx:.1f}" y1="{y0 - 8:.1f}" x2="{dx:.1f}" y2="{y1 + 20:.1f}" '
            f'stroke="#000" stroke-width="1.2" stroke-dasharray="4 3"/>'
        )
        out.append(_t(dx - 5, y1 + 30, divider_labels[0], anchor="end", size=10))
        out.append(_t(dx + 5, y1 + 30, divider_labels[1], size=10))
    out.append("</svg>")
    return "".join(out)


def funnel(
    steps: Sequence[tuple[str, float, float | None]],
    *,
    title: str,
    current_label: str,
    previous_label: str,
    width: float = 700,
) -> str:
    """A funnel of stages: a centred bar per step (this period), its value and the share
    of the step before; the previous period's value as an outlined marker.

    ``steps`` are ``(label, value, previous value)``.
    """
    label_w = max((text_width(s[0]) for s in steps), default=0) + 14
    series = [Series(current_label, [], "solid"), Series(previous_label, [], "hatch")]
    legend, legend_h = _legend(series, 0, 14, width)
    top = 22 + legend_h
    row = 30
    height = top + row * len(steps) + 8
    biggest = max([s[1] for s in steps] + [s[2] or 0 for s in steps] + [1])
    area = width - label_w - 110
    centre = label_w + area / 2
    out = [_open(width, height, title, title)]
    out.append(legend)
    for i, (label, value, previous) in enumerate(steps):
        y = top + i * row
        w = area * value / biggest
        if previous is not None:
            pw = area * previous / biggest
            out.append(_rect(centre - pw / 2, y + 15, pw, 7, "hatch"))
        out.append(_rect(centre - w / 2, y, w, 14, "solid"))
        out.append(_t(label_w - 8, y + 12, label, anchor="end"))
        text = _number(value)
        if i and steps[i - 1][1]:
            text += f"  ({value / steps[i - 1][1]:.0%})"
        out.append(_t(centre + max(w, area * (previous or 0) / biggest) / 2 + 6, y + 12, text))
    out.append("</svg>")
    return "".join(out)

"""Charts as server-rendered SVG: readable without JavaScript and without colour alone.

Every chart carries a ``<title>`` and ``<desc>`` (the numbers in words, for screen readers), labelled
axes, a ``<title>`` on every mark (a tooltip on hover) and, where colour would carry meaning, a pattern
or a marker shape as well. No inline ``style`` attributes (the console's CSP forbids them): presentation
attributes and classes only. Every text is escaped.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from html import escape

from markupsafe import Markup

_ids = itertools.count(1)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if abs(value) < 1e6 else f"{value:,.0f}"


def _open(width: int, height: int, title: str, desc: str, css: str) -> tuple[str, list[str]]:
    uid = f"c{next(_ids)}"
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart {css}" viewBox="0 0 {width} {height}" '
            f'width="{width}" height="{height}" role="img" aria-labelledby="{uid}-t {uid}-d">'
            f'<title id="{uid}-t">{_e(title)}</title><desc id="{uid}-d">{_e(desc)}</desc>')
    return uid, [head]


def _empty(width: int, height: int, title: str, message: str) -> Markup:
    _, parts = _open(width, height, title, message, "chart-empty")
    parts.append(f'<rect x="0.5" y="0.5" width="{width - 1}" height="{height - 1}" fill="none" '
                 f'stroke="#999" stroke-dasharray="4 4"/>'
                 f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" class="chart-note">{_e(message)}</text>'
                 "</svg>")
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped


def line_chart(points: Sequence[tuple[dt.datetime | dt.date, float]], *, title: str, empty: str = "no data",
               y_min: float = 0.0, y_max: float = 100.0, thresholds: Sequence[tuple[float, str]] = (),
               width: int = 640, height: int = 220) -> Markup:
    """A line over time with a circle marker (and a tooltip) per point and labelled threshold lines."""
    if not points:
        return _empty(width, height, title, empty)
    pts = sorted(points, key=lambda p: p[0] if isinstance(p[0], dt.datetime)
                 else dt.datetime.combine(p[0], dt.time(), tzinfo=dt.UTC))
    left, right, top, bottom = 44, 16, 14, 30
    plot_w, plot_h = width - left - right, height - top - bottom

    def ts(x: dt.datetime | dt.date) -> float:
        if not isinstance(x, dt.datetime):
            x = dt.datetime.combine(x, dt.time(), tzinfo=dt.UTC)
        return x.timestamp()

    t0, t1 = ts(pts[0][0]), ts(pts[-1][0])
    span = (t1 - t0) or 1.0

    def px(x: dt.datetime | dt.date) -> float:
        return left + (plot_w / 2 if t1 == t0 else (ts(x) - t0) / span * plot_w)

    def py(v: float) -> float:
        v = min(max(v, y_min), y_max)
        return top + plot_h - (v - y_min) / ((y_max - y_min) or 1) * plot_h

    values = [v for _, v in pts]
    desc = (f"{len(pts)} points from {_day(pts[0][0])} to {_day(pts[-1][0])}; latest {_num(values[-1])}, "
            f"lowest {_num(min(values))}, highest {_num(max(values))}.")
    _, parts = _open(width, height, title, desc, "chart-line")
    for tick in (y_min, (y_min + y_max) / 2, y_max):
        y = py(tick)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="chart-axis">{_num(tick)}</text>')
    for value, label in thresholds:
        y = py(value)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#666" '
                     f'stroke-dasharray="5 4"/><text x="{width - right - 2}" y="{y - 3:.1f}" text-anchor="end" '
                     f'class="chart-axis">{_e(label)}</text>')
    coords = " ".join(f"{px(x):.1f},{py(v):.1f}" for x, v in pts)
    parts.append(f'<polyline points="{coords}" fill="none" stroke="#1f5fa8" stroke-width="2"/>')
    for x, v in pts:
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(v):.1f}" r="3.5" fill="#fff" stroke="#1f5fa8" '
                     f'stroke-width="2"><title>{_e(_day(x))}: {_num(v)}</title></circle>')
    parts.append(f'<text x="{left}" y="{height - 8}" class="chart-axis">{_e(_day(pts[0][0]))}</text>'
                 f'<text x="{width - right}" y="{height - 8}" text-anchor="end" class="chart-axis">'
                 f'{_e(_day(pts[-1][0]))}</text></svg>')
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped


def bar_chart(points: Sequence[tuple[dt.date, float]], *, title: str, start: dt.date, end: dt.date,
              unit: str = "", empty: str = "no data", width: int = 640, height: int = 200) -> Markup:
    """One bar per day from ``start`` to ``end`` (days absent from ``points`` are zero)."""
    by_day = {d: v for d, v in points if start <= d <= end}
    if not by_day:
        return _empty(width, height, title, empty)
    days = [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]
    left, right, top, bottom = 52, 10, 12, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max(by_day.values()) or 1.0
    slot = plot_w / len(days)
    total = sum(by_day.values())
    active = sum(1 for v in by_day.values() if v > 0)
    desc = (f"{len(days)} days from {start} to {end}: {_num(total)}{unit} in total, {active} days with activity, "
            f"peak {_num(peak)}{unit}.")
    _, parts = _open(width, height, title, desc, "chart-bars")
    for tick in (0.0, peak / 2, peak):
        y = top + plot_h - tick / peak * plot_h
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" class="chart-axis">{_num(tick)}</text>')
    for i, day in enumerate(days):
        v = by_day.get(day, 0.0)
        h = v / peak * plot_h
        x = left + i * slot
        parts.append(f'<rect x="{x + slot * 0.1:.1f}" y="{top + plot_h - h:.1f}" width="{max(slot * 0.8, 1):.1f}" '
                     f'height="{max(h, 0):.1f}" fill="#4a7fb8"><title>{day}: {_num(v)}{_e(unit)}</title></rect>')
    parts.append(f'<line x1="{left}" x2="{width - right}" y1="{top + plot_h}" y2="{top + plot_h}" stroke="#333"/>'
                 f'<text x="{left}" y="{height - 8}" class="chart-axis">{start}</text>'
                 f'<text x="{width - right}" y="{height - 8}" text-anchor="end" class="chart-axis">{end}</text></svg>')
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped


def hbar_chart(rows: Sequence[tuple[str, float, str]], *, title: str, empty: str = "no data",
               width: int = 640, row_height: int = 26, negative_label: str = "lowers",
               positive_label: str = "raises") -> Markup:
    """Horizontal bars (label, value, value text): positive bars solid, negative ones hatched, each with
    its value written next to it, so sign and size read without colour."""
    if not rows:
        return _empty(width, 60, title, empty)
    label_w, value_w = 190, 110
    plot_w = width - label_w - value_w
    biggest = max(abs(v) for _, v, _ in rows) or 1.0
    has_neg = any(v < 0 for _, v, _ in rows)
    zero = label_w + (plot_w / 2 if has_neg else 0)
    scale = (plot_w / 2 if has_neg else plot_w) / biggest
    height = row_height * len(rows) + 10
    desc = "; ".join(f"{name}: {text}" for name, _, text in rows)
    uid, parts = _open(width, height, title, desc, "chart-hbars")
    parts.append(f'<defs><pattern id="{uid}-hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
                 f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#fff"/>'
                 f'<line x1="0" y1="0" x2="0" y2="6" stroke="#b45309" stroke-width="3"/></pattern></defs>')
    for i, (name, value, text) in enumerate(rows):
        y = 5 + i * row_height
        w = abs(value) * scale
        x = zero if value >= 0 else zero - w
        fill = f"url(#{uid}-hatch)" if value < 0 else "#1f5fa8"
        sign = negative_label if value < 0 else positive_label
        parts.append(f'<text x="{label_w - 8}" y="{y + row_height * 0.65:.1f}" text-anchor="end" '
                     f'class="chart-label">{_e(name)}</text>'
                     f'<rect x="{x:.1f}" y="{y + 3}" width="{max(w, 1):.1f}" height="{row_height - 8}" fill="{fill}" '
                     f'stroke="#333" stroke-width="0.5"><title>{_e(name)}: {_e(text)} ({_e(sign)})</title></rect>'
                     f'<text x="{width - value_w + 6}" y="{y + row_height * 0.65:.1f}" class="chart-value">'
                     f'{_e(text)}</text>')
    parts.append(f'<line x1="{zero:.1f}" x2="{zero:.1f}" y1="2" y2="{height - 2}" stroke="#333"/></svg>')
    return Markup("".join(parts))  # noqa: S704 - every interpolated text above is escaped


def _day(x: dt.datetime | dt.date) -> str:
    return x.date().isoformat() if isinstance(x, dt.datetime) else x.isoformat()

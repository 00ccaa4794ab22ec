"""A very small SVG chart kit: axes with ticks, lines, points, bars and heat-map cells.

Charts are plain strings of inline SVG, so a report is one file that works offline, with no
plotting library and no JavaScript.
"""

from __future__ import annotations

import math
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def tick_labels(values: list[float]) -> list[str]:
    """Labels for a row of ticks: one number of decimals, as few as show every tick exactly (67.5, not
    68; 0.010 beside 0.015), thousands as k and millions as M (2.5k, 1.5M), never 1e+03."""
    if not values:
        return []
    top = max(abs(v) for v in values)
    scale, suffix = next(((f, x) for f, x, at in ((1e6, "M", 1e6), (1e3, "k", 1e4)) if top >= at), (1.0, ""))
    scaled = [v / scale for v in values]
    decimals = next((d for d in range(7) if all(abs(round(v, d) - v) < 1e-9 * max(1.0, abs(v)) for v in scaled)), 6)
    return ["0" if v == 0 else f"{v:.{decimals}f}{suffix}" for v in scaled]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2, 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(1, count)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, value = [], first
    while value <= hi + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    return ticks


def padded(values: list[float], pad: float = 0.08, floor: float | None = None) -> tuple[float, float]:
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return 0.0, 1.0
    lo, hi = min(values), max(values)
    span = hi - lo or abs(hi) * 0.1 or 1.0
    lo, hi = lo - span * pad, hi + span * pad
    if floor is not None:
        lo = max(lo, floor)
    return lo, hi


class Chart:
    """One plot area with linear x and y scales; methods add elements, ``svg()`` renders them."""

    def __init__(self, title: str, xlabel: str, ylabel: str, xlim: tuple[float, float], ylim: tuple[float, float],
                 width: int = 440, height: int = 280, margin: tuple[int, int, int, int] = (34, 16, 44, 58)):
        self.title, self.xlabel, self.ylabel = title, xlabel, ylabel
        self.xlim, self.ylim, self.width, self.height = xlim, ylim, width, height
        self.top, self.right, self.bottom, self.left = margin
        self.parts: list[str] = []
        self.legend: list[tuple[str, str]] = []
        self.rotate_x = False

    @property
    def plot_w(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_h(self) -> float:
        return self.height - self.top - self.bottom

    def x(self, value: float) -> float:
        lo, hi = self.xlim
        return self.left + (value - lo) / ((hi - lo) or 1) * self.plot_w

    def y(self, value: float) -> float:
        lo, hi = self.ylim
        return self.top + self.plot_h - (value - lo) / ((hi - lo) or 1) * self.plot_h

    def add(self, element: str) -> None:
        self.parts.append(element)

    def line(self, points: list[tuple[float, float]], color: str, label: str | None = None, width: float = 2,
             dash: str | None = None, markers: bool = True) -> None:
        if not points:
            return
        path = " ".join(f"{self.x(px):.1f},{self.y(py):.1f}" for px, py in points)
        style = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="{width}"{style}/>')
        if markers:
            for px, py in points:
                self.point(px, py, color, radius=2.5)
        if label:
            self.legend.append((label, color))

    def point(self, px: float, py: float, color: str, radius: float = 4, label: str | None = None,
              tip: str | None = None) -> None:
        title = f"<title>{escape(tip)}</title>" if tip else ""
        self.add(f'<circle cx="{self.x(px):.1f}" cy="{self.y(py):.1f}" r="{radius}" fill="{color}">{title}</circle>')
        if label:
            self.add(f'<text x="{self.x(px) + 6:.1f}" y="{self.y(py) - 6:.1f}" class="lbl">{escape(label)}</text>')

    def rect(self, x0: float, y0: float, x1: float, y1: float, color: str, tip: str | None = None,
             opacity: float = 1.0) -> None:
        left, right = sorted((self.x(x0), self.x(x1)))
        top, bottom = sorted((self.y(y0), self.y(y1)))
        title = f"<title>{escape(tip)}</title>" if tip else ""
        self.add(f'<rect x="{left:.1f}" y="{top:.1f}" width="{right - left:.1f}" height="{bottom - top:.1f}" '
                 f'fill="{color}" fill-opacity="{opacity}">{title}</rect>')

    def text(self, px: float, py: float, text: str, anchor: str = "middle", cls: str = "lbl") -> None:
        self.add(f'<text x="{self.x(px):.1f}" y="{self.y(py):.1f}" text-anchor="{anchor}" class="{cls}">'
                 f"{escape(text)}</text>")

    def _axes(self, xticks: list | None, yticks: list | None) -> list[str]:
        out = [f'<rect x="{self.left}" y="{self.top}" width="{self.plot_w}" height="{self.plot_h}" class="frame"/>']
        bottom = self.top + self.plot_h
        xs = nice_ticks(*self.xlim) if xticks is None else xticks
        xlabels = tick_labels([v for v in xs if not isinstance(v, tuple)])
        for value in xs:
            label = value[1] if isinstance(value, tuple) else xlabels.pop(0)
            pos = self.x(value[0] if isinstance(value, tuple) else value)
            place = (f'transform="translate({pos + 3:.1f},{bottom + 8}) rotate(-45)" text-anchor="end"'
                     if self.rotate_x else f'x="{pos:.1f}" y="{bottom + 15}" text-anchor="middle"')
            out.append(f'<line x1="{pos:.1f}" y1="{bottom}" x2="{pos:.1f}" y2="{bottom + 4}" class="tick"/>'
                       f'<text {place} class="tk">{escape(label)}</text>')
        ys = nice_ticks(*self.ylim) if yticks is None else yticks
        ylabels = tick_labels([v for v in ys if not isinstance(v, tuple)])
        for value in ys:
            label = value[1] if isinstance(value, tuple) else ylabels.pop(0)
            pos = self.y(value[0] if isinstance(value, tuple) else value)
            out.append(f'<line x1="{self.left}" y1="{pos:.1f}" x2="{self.left + self.plot_w}" y2="{pos:.1f}" '
                       f'class="grid"/><text x="{self.left - 5}" y="{pos + 3:.1f}" text-anchor="end" '
                       f'class="tk">{escape(label)}</text>')
        out.append(f'<text x="{self.left + self.plot_w / 2:.1f}" y="{self.height - 6}" text-anchor="middle" '
                   f'class="ax">{escape(self.xlabel)}</text>')
        out.append(f'<text transform="translate(13,{self.top + self.plot_h / 2:.1f}) rotate(-90)" '
                   f'text-anchor="middle" class="ax">{escape(self.ylabel)}</text>')
        return out

    def _legend(self) -> list[str]:
        """Right of the plot area (the chart grows to make room)."""
        out = []
        lx = self.left + self.plot_w + 10
        for i, (label, color) in enumerate(self.legend):
            ly = self.top + 10 + i * 15
            out.append(f'<rect x="{lx}" y="{ly - 8}" width="10" height="9" fill="{color}"/>'
                       f'<text x="{lx + 14}" y="{ly}" class="lg">{escape(label)}</text>')
        return out

    def svg(self, xticks: list | None = None, yticks: list | None = None, css_class: str = "chart") -> str:
        body = [*self._axes(xticks, yticks), *self.parts, *self._legend()]
        width = self.width + (24 + 6.5 * max(len(label) for label, _ in self.legend) if self.legend else 0)
        title = f'<text x="{width / 2:.1f}" y="18" text-anchor="middle" class="ti">{escape(self.title)}</text>'
        return (f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" role="img" '
                f'aria-label="{escape(self.title)}" viewBox="0 0 {width:.0f} {self.height}" '
                f'width="{width:.0f}" height="{self.height}">{title}{"".join(body)}</svg>')


def empty_chart(title: str, message: str, width: int = 440, height: int = 120) -> str:
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" aria-label="{escape(title)}" '
            f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
            f'<text x="{width / 2}" y="18" text-anchor="middle" class="ti">{escape(title)}</text>'
            f'<text x="{width / 2}" y="{height / 2 + 10}" text-anchor="middle" class="lbl">{escape(message)}</text>'
            f"</svg>")


def blend(value: float, low: str = "#ffffff", high: str = "#08306b") -> str:
    """Colour between ``low`` (value 0) and ``high`` (value 1)."""
    value = min(1.0, max(0.0, value))
    a = [int(low[i:i + 2], 16) for i in (1, 3, 5)]
    b = [int(high[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(x + (y - x) * value):02x}" for x, y in zip(a, b, strict=True))

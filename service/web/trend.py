"""Geometry and words of a result's trend picture: its earlier results and itself, oldest first.

No Flask and no rule of its own: the points are the core's `ResultReport.trend` (canonical unit), and
the change and its judgement are the core's `Delta`; this only places the points and says them in words.
The picture is small (WIDTH x HEIGHT user units), time runs left to right in proportion, and the value
axis is scaled from the trend's own values (not the reference interval: the range bar shows that).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from collections.abc import Sequence

from ..core.deltas import elapsed
from ..core.history import Delta, TrendPoint
from ..core.report import Citation, tidy

WIDTH, HEIGHT = 160.0, 40.0  # SVG user units, drawn at that size
MARGIN = 5.0  # room for the markers inside the edges
MIN_SPAN = 0.2  # the value axis spans at least this share of the largest value


@dataclass(frozen=True)
class Point:
    x: float
    y: float
    value: str  # as shown: comparator, value, unit ("<4.4 mmol/L")
    day: str  # as shown: "2026-11-19" (a time too, when it is not midnight UTC)
    censored: bool
    current: bool  # the result itself (the last point)


@dataclass(frozen=True)
class Trend:
    points: tuple[Point, ...]
    line: str  # the polyline's points attribute
    low: float  # the value axis, canonical unit
    high: float
    unit: str
    title: str  # the picture's accessible name: first and last point
    description: str  # every point in words, and the scale

    @property
    def width(self) -> float:
        return WIDTH

    @property
    def height(self) -> float:
        return HEIGHT


def when(moment: datetime) -> str:
    """A moment as the page shows it: the form's dates are whole days (00:00 UTC), shown as that day."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%d") if (utc.hour, utc.minute) == (0, 0) else utc.strftime("%Y-%m-%d %H:%M UTC")


def amount(value: float, unit: str, comparator: str | None = None) -> str:
    """A value as the page shows it, e.g. "<4.4 mmol/L"."""
    return f"{comparator or ''}{tidy(value):g} {unit}"


def _axis(values: list[float]) -> tuple[float, float]:
    """The value axis: the trend's values with a tenth of their span beyond each, the span at least a
    fifth of the largest value (so a change of 0.1 in 2.0 is not drawn as if it were the whole height;
    one value throughout is a flat line), never below 0 for values that are not, rounded
    outward to a tenth of the span's order of magnitude (2.86-4.54 gives 2.8-4.6)."""
    low, high = min(values), max(values)
    least = MIN_SPAN * max(abs(low), abs(high)) or 1.0
    if high - low < least:
        middle = (high + low) / 2
        low, high = middle - least / 2, middle + least / 2
    pad = (high - low) * 0.1
    low, high = low - pad, high + pad
    if min(values) >= 0 > low:
        low, high = 0.0, high - low
    step = 10 ** math.floor(math.log10(high - low)) / 10  # rounded outward to a readable step
    return float(f"{math.floor(low / step) * step:.6g}"), float(f"{math.ceil(high / step) * step:.6g}")


def build(points: Sequence[TrendPoint], unit: str, name: str) -> Trend | None:
    """The trend picture of a result (core TrendPoints, oldest first, the last one the result itself);
    None when there is nothing to draw (no earlier result)."""
    if len(points) < 2:
        return None
    values = [float(p.value) for p in points]
    low, high = _axis(values)
    start = points[0].collected_at
    span = (points[-1].collected_at - start).total_seconds()
    inner_w, inner_h = WIDTH - 2 * MARGIN, HEIGHT - 2 * MARGIN
    placed = []
    for i, (p, v) in enumerate(zip(points, values)):
        share = (p.collected_at - start).total_seconds() / span if span > 0 else i / (len(points) - 1)
        x = round(MARGIN + share * inner_w, 2)
        y = round(MARGIN + (high - v) / (high - low) * inner_h, 2)
        placed.append(Point(x, y, amount(v, unit, p.comparator), when(p.collected_at), p.comparator is not None,
                            i == len(points) - 1))
    first, last = placed[0], placed[-1]
    title = f"{name} trend: {first.value} on {first.day} to {last.value} on {last.day}"
    said = [f"{p.day}: {p.value}{' (this result)' if p.current else ''}{' (censored)' if p.censored else ''}"
            for p in placed]
    description = (f"{len(placed)} results, oldest first. " + "; ".join(said)
                   + f". Value axis {tidy(low):g} to {tidy(high):g} {unit}; time runs left to right.")
    return Trend(tuple(placed), " ".join(f"{p.x},{p.y}" for p in placed), low, high, unit, title, description)


@dataclass(frozen=True)
class Change:
    """A result's change from its earlier result, in words (the core's Delta, canonical unit)."""

    previous: str  # "4.4 mmol/L on 2026-11-19, 2 days before this result"
    change: str  # "-1.4 mmol/L (-31.8%), a fall"
    significant: bool
    verdict: str  # "beyond the delta-check limit" | "within the delta-check limit" | "not judged"
    limit: str | None  # the rule's limit text, "1 mmol/L within 48 hours"; None: no rule applied
    why: str | None  # why it was not judged
    citations: tuple[Citation, ...]  # the rule's sources


def describe_change(delta: Delta) -> Change:
    """The words of a core Delta: the earlier value and day, the change, and how it was judged."""
    p, unit = delta.previous, delta.unit
    previous = f"{amount(p.value, unit, p.comparator)} on {when(p.collected_at)}, {elapsed(delta.hours)} before this result"
    if delta.change is None:
        moved = "not computed"
    elif delta.direction is None:
        moved = f"none (0 {unit})"
    else:
        moved = f"{delta.change:+g} {unit}"
        moved += f" ({delta.change_percent:+.1f}%)" if delta.change_percent is not None else ""
        moved += ", a rise" if delta.direction == "rise" else ", a fall"
    rule = delta.rule
    limit = None if rule is None else rule.limit_text(unit)
    why = None
    if rule is not None:
        verdict = "beyond the delta-check limit" if delta.significant else "within the delta-check limit"
    else:
        verdict = "not judged"
        why = ("a censored value has no number to subtract" if delta.change is None
               else f"no delta-check limit applies to a change over {elapsed(delta.hours)}")
    return Change(previous, moved, delta.significant, verdict, limit, why, () if rule is None else tuple(rule.citations))

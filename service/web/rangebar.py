"""Geometry of the range bar: where a value sits against its bands, normal and critical limits.

No Flask and no rule of its own: each coloured segment takes the band that the core's
classify_point gives its midpoint, so the picture can never disagree with the classification.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..core.classify import Classification, Interval, classify_point, concern
from ..core.knowledge import Analyte, Limits
from ..core.report import ResultReport, tidy
import itertools

WIDTH = 400.0  # SVG user units; the bar scales to the page width
PAD = 0.25  # share of the span between the outermost limits shown beyond them


@dataclass(frozen=True)
class Segment:
    x: float
    width: float
    band: str
    tone: str


@dataclass(frozen=True)
class Tick:
    x: float
    value: float
    kind: str  # normal | critical
    label: str


@dataclass(frozen=True)
class RangeBar:
    segments: tuple[Segment, ...]
    ticks: tuple[Tick, ...]
    marker_x: float | None  # None when the value has no place on a scale (indeterminate bound)
    off_scale: str | None  # below | above, when the marker is clamped to an edge
    scale_min: float
    scale_max: float
    unit: str
    description: str


def tone(c: Classification | ResultReport, analyte: Analyte) -> str:
    """The colour family of a classification; the band name is always shown beside it."""
    standing = concern(analyte, c.band, c.flag, c.critical)
    return "unknown" if standing in ("implausible", "indeterminate") else standing


def _scale(points: list[float]) -> tuple[float, float]:
    """Padded around the limits and rounded outward to a readable step (2.8-6.2 gives 1.5-7.5)."""
    lo, hi = min(points), max(points)
    span = (hi - lo) or (abs(hi) or 1.0)
    lo, hi = max(0.0, lo - PAD * span), hi + PAD * span
    step = 10 ** math.floor(math.log10(hi - lo)) / 2
    return float(f"{math.floor(lo / step) * step:.6g}"), float(f"{math.ceil(hi / step) * step:.6g}")


def _fmt(x: float) -> str:
    return f"{tidy(x):g}"


def build(report: ResultReport, analyte: Analyte) -> RangeBar:
    """The bar of one result, in the canonical unit, from the limits the core applied to it."""
    used = report.reference_range
    interval = Interval(used.low, used.high, used.origin, None, None)
    critical = Limits(used.critical_low, used.critical_high, None, None)
    thresholds = [s.upper for s in analyte.bands.subdivisions if s.upper is not None]
    thresholds += [s.lower for s in analyte.bands.subdivisions if s.lower is not None]
    limits = [x for x in (used.low, used.high, used.critical_low, used.critical_high) if x is not None]
    lo, hi = _scale(limits + thresholds or [report.normalized_value])
    impl = analyte.implausible
    cuts = sorted({lo, hi, *(x for x in limits + thresholds + [impl.low, impl.high]
                             if x is not None and lo < x < hi)})
    scale = WIDTH / (hi - lo)

    def at(v: float) -> float:
        return round((min(max(v, lo), hi) - lo) * scale, 2)

    segments = []
    for a, b in itertools.pairwise(cuts):
        c = classify_point(analyte, (a + b) / 2, interval, critical)
        segments.append(Segment(at(a), round((b - a) * scale, 2), c.band, tone(c, analyte)))
    ticks = [Tick(at(v), v, "normal", _fmt(v)) for v in (used.low, used.high) if v is not None]
    ticks += [Tick(at(v), v, "critical", _fmt(v)) for v in (used.critical_low, used.critical_high) if v is not None]
    v = report.normalized_value
    marker = None if report.band == "indeterminate" else at(v)
    off = None if marker is None else "below" if v < lo else "above" if v > hi else None
    return RangeBar(tuple(segments), tuple(sorted(ticks, key=lambda t: t.x)), marker, off, lo, hi,
                    report.canonical_unit, _describe(report, used.low, used.high, critical, off, lo, hi))


def _describe(report: ResultReport, low: float | None, high: float | None, critical: Limits,
              off: str | None, lo: float, hi: float) -> str:
    """The bar in words, for screen readers and for anyone who cannot tell the colours apart."""
    unit = report.canonical_unit
    value = f"{report.comparator or ''}{_fmt(report.normalized_value)} {unit}"
    parts = [f"{value}: {report.band.replace('_', ' ')}"]
    if low is not None or high is not None:
        parts.append(f"reference interval {_fmt(low) if low is not None else 'open'} to "
                     f"{_fmt(high) if high is not None else 'open'} {unit}")
    if critical.low is not None:
        parts.append(f"critical below {_fmt(critical.low)}")
    if critical.high is not None:
        parts.append(f"critical above {_fmt(critical.high)}")
    if off == "below":
        parts.append(f"value below the scale shown (starts at {_fmt(lo)}), marker clamped to the left edge")
    elif off == "above":
        parts.append(f"value above the scale shown (ends at {_fmt(hi)}), marker clamped to the right edge")
    return "; ".join(parts)

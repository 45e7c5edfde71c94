"""Classification of a canonical value against limits; semantics in reference_ranges/README.md.

A censored value is classified by its bound: "<x" takes every plausible value below x, so it has a
band only when the lowest plausible value and the value just below x share one.
"""
from __future__ import annotations

from typing import NamedTuple

from .knowledge import Analyte, Limits
from .model import Patient

REGION_FLAGS = {"below": "L", "within": "N", "above": "H"}


class Classification(NamedTuple):
    band: str
    flag: str | None
    critical: bool


class Interval(NamedTuple):
    """The reference interval applied to one result, in the canonical unit."""

    low: float | None
    high: float | None
    origin: str  # default | partition | laboratory
    low_source: str | None
    high_source: str | None


def select_limits(analyte: Analyte, patient: Patient) -> tuple[Interval, Limits | None]:
    """The interval and critical limits for this patient: the first matching partition, or the default."""
    for part in analyte.partitions:
        if part.age_min is not None and (patient.age_years is None or patient.age_years < part.age_min):
            continue
        if part.age_max is not None and (patient.age_years is None or patient.age_years >= part.age_max):
            continue
        if part.sex is not None and patient.sex != part.sex:
            continue
        ri = part.reference_interval
        return Interval(ri.low, ri.high, "partition", ri.low_source, ri.high_source), part.critical or analyte.critical
    ri = analyte.reference_interval
    return Interval(ri.low, ri.high, "default", ri.low_source, ri.high_source), analyte.critical


def _lt(v: float, side: int, t: float) -> bool:
    """v (or a value infinitesimally beside it, by side) < t."""
    return v < t or (v == t and side < 0)


def _gt(v: float, side: int, t: float) -> bool:
    return v > t or (v == t and side > 0)


def classify_point(analyte: Analyte, v: float, interval: Interval, critical: Limits | None, side: int = 0) -> Classification:
    """Band of one value; side -1/+1 means just below/above v (for censored bounds)."""
    impl = analyte.implausible
    if (impl.low is not None and _lt(v, side, impl.low)) or (impl.high is not None and _gt(v, side, impl.high)):
        return Classification("implausible", None, False)
    bands = analyte.bands
    if critical is not None:
        if critical.low is not None and bands.critical_below and _lt(v, side, critical.low):
            return Classification(bands.critical_below, "LL", True)
        if critical.high is not None and bands.critical_above and _gt(v, side, critical.high):
            return Classification(bands.critical_above, "HH", True)
    if interval.low is not None and _lt(v, side, interval.low):
        region = "below"
    elif interval.high is not None and _gt(v, side, interval.high):
        region = "above"
    else:
        region = "within"
    band = getattr(bands, region)
    for sub in bands.subdivisions:
        if sub.region != region:
            continue
        if sub.upper is not None and (_lt(v, side, sub.upper) or (sub.upper_inclusive and not _gt(v, side, sub.upper))):
            band = sub.band
        if sub.lower is not None and (_gt(v, side, sub.lower) or (sub.lower_inclusive and not _lt(v, side, sub.lower))):
            band = sub.band
    return Classification(band, REGION_FLAGS[region], False)


def classify(analyte: Analyte, v: float, comparator: str | None, interval: Interval,
             critical: Limits | None) -> Classification:
    """Band of a measured or censored value."""
    if comparator is None:
        return classify_point(analyte, v, interval, critical)
    impl = analyte.implausible
    if comparator in ("<", "<="):
        near = classify_point(analyte, v, interval, critical, -1 if comparator == "<" else 0)
        far_value = impl.low if impl.low is not None else 0.0
    else:
        near = classify_point(analyte, v, interval, critical, 1 if comparator == ">" else 0)
        far_value = impl.high if impl.high is not None else v
    if near.band == "implausible":
        return near
    far = classify_point(analyte, far_value, interval, critical)
    if far.band == near.band:
        return near
    return Classification("indeterminate", None, False)


def concern(analyte: Analyte, band: str, flag: str | None, critical: bool) -> str:
    """How a classified result stands, for the doors that rank results (colours, CDS cards):
    implausible | indeterminate | critical | normal | watch (inside the interval, in a sub-band such
    as borderline) | abnormal."""
    if band in ("implausible", "indeterminate"):
        return band
    if critical:
        return "critical"
    if flag == "N":
        return "normal" if band == analyte.bands.within else "watch"
    return "abnormal"

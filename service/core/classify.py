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
    implausible: bool = False  # beyond the plausibility limits: verify the specimen, the unit, the entry


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


def _beyond_low(v: float, side: int, limit: float, inclusive: bool) -> bool:
    """v (or, by side -1/+1, a value infinitesimally below/above it) lies beyond a low limit; a value
    equal to an inclusive limit is beyond it ("<= 6.5"), to an exclusive one it is not ("< 6.5")."""
    return v < limit or (v == limit and (side < 0 or (side == 0 and inclusive)))


def _beyond_high(v: float, side: int, limit: float, inclusive: bool) -> bool:
    return v > limit or (v == limit and (side > 0 or (side == 0 and inclusive)))


def beyond(limits: Limits, v: float, side: int = 0) -> int:
    """-1 beyond the low limit, +1 beyond the high one, 0 between them."""
    if limits.low is not None and _beyond_low(v, side, limits.low, limits.low_inclusive):
        return -1
    if limits.high is not None and _beyond_high(v, side, limits.high, limits.high_inclusive):
        return 1
    return 0


def classify_point(analyte: Analyte, v: float, interval: Interval, critical: Limits | None, side: int = 0) -> Classification:
    """Band of one value; side -1/+1 means just below/above v (for censored bounds).

    A value beyond a critical limit is critical, whatever else is true of it: an implausible value
    (beyond the plausibility limits) adds a request to verify, never replaces the alarm. Only where
    no critical limit exists on that side is "implausible" the band itself."""
    implausible = beyond(analyte.implausible, v, side) != 0
    bands = analyte.bands
    if critical is not None:
        where = beyond(critical, v, side)
        if where < 0 and bands.critical_below:
            return Classification(bands.critical_below, "LL", True, implausible)
        if where > 0 and bands.critical_above:
            return Classification(bands.critical_above, "HH", True, implausible)
    if implausible:
        return Classification("implausible", None, False, True)
    if interval.low is not None and _beyond_low(v, side, interval.low, False):  # the interval holds its limits
        region = "below"
    elif interval.high is not None and _beyond_high(v, side, interval.high, False):
        region = "above"
    else:
        region = "within"
    band = getattr(bands, region)
    for sub in bands.subdivisions:
        if sub.region != region:
            continue
        if sub.upper is not None and not _beyond_high(v, side, sub.upper, not sub.upper_inclusive):
            band = sub.band
        if sub.lower is not None and not _beyond_low(v, side, sub.lower, not sub.lower_inclusive):
            band = sub.band
    return Classification(band, REGION_FLAGS[region], False)


def classify(analyte: Analyte, v: float, comparator: str | None, interval: Interval,
             critical: Limits | None) -> Classification:
    """Band of a measured or censored value: a censored one has a band only when everything it allows,
    down (or up) to the plausibility limit, shares one."""
    if comparator is None:
        return classify_point(analyte, v, interval, critical)
    impl = analyte.implausible
    if comparator in ("<", "<="):
        side = -1 if comparator == "<" else 0
        near = classify_point(analyte, v, interval, critical, side)
        if beyond(impl, v, side) < 0:
            return near  # everything it allows lies below the lowest plausible value
        # the lowest plausible value: the limit itself, or just above it when the limit is inclusive
        far = classify_point(analyte, impl.low, interval, critical, int(impl.low_inclusive)) if impl.low is not None else near
    else:
        side = 1 if comparator == ">" else 0
        near = classify_point(analyte, v, interval, critical, side)
        if beyond(impl, v, side) > 0:
            return near  # everything it allows lies above the highest plausible value
        far = classify_point(analyte, impl.high, interval, critical, -int(impl.high_inclusive)) if impl.high is not None else near
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

"""Classification: every band edge of every analyte, read from reference_ranges/*.yaml.

The expected band, flag and critical flag come from the README's boundary semantics (restated in
core_helpers.expected_class) applied to limits read with yaml.safe_load, never from the code:
reference interval inclusive, critical strict, implausible strict, subdivisions as declared.
"""
from __future__ import annotations

import math

import pytest

from service.core import LabRange

try:
    import core_helpers as h
except ImportError:  # pragma: no cover
    from tests import core_helpers as h

ANALYTES = h.analyte_ids()
EPS = 1e-9


def test_the_analytes_under_test_are_the_ones_the_brief_names():
    assert set(ANALYTES) >= {"vitamin_b12", "potassium", "magnesium", "calcium", "ionized_calcium", "albumin"}
    assert set(ANALYTES) == set(h.kb().analytes)


def limit_points(analyte: str) -> list[tuple[str, float]]:
    raw = h.raw_analyte(analyte)
    out = []
    for key in ("reference_interval", "critical", "implausible"):
        lim = raw.get(key)
        if not lim:
            continue
        for side in ("low", "high"):
            if lim.get(side) is not None:
                out.append((f"{key}.{side}", float(lim[side])))
    for i, sub in enumerate(raw["bands"].get("subdivisions") or []):
        bound = "upper" if "upper" in sub else "lower"
        out.append((f"subdivision.{i}.{bound}", float(sub[bound])))
    return out


EDGE_CASES = [
    (a, kind, limit, where, value)
    for a in ANALYTES
    for kind, limit in limit_points(a)
    for where, value in (("at", limit), ("below", limit * (1 - EPS)), ("above", limit * (1 + EPS)))
]


def _region(raw: dict, v: float) -> str:
    ri = raw["reference_interval"]
    return "below" if v < ri["low"] else "above" if v > ri["high"] else "within"


def _semantics(analyte: str, kind: str, where: str, value: float, band: str, flag: str | None,
               critical: bool) -> None:
    """What README 'boundary semantics' says about this particular edge, stated directly."""
    raw = h.raw_analyte(analyte)
    bands = raw["bands"]
    if kind.startswith("implausible."):
        side = kind.split(".")[1]
        beyond = where == ("below" if side == "low" else "above") or (
            where == "at" and raw["implausible"].get(f"{side}_inclusive", False))
        has_critical = (raw.get("critical") or {}).get(side) is not None
        # Implausible is a band only where no critical limit applies; beyond a critical one the alarm stands.
        assert (band == "implausible") == (beyond and not has_critical)
        if beyond and has_critical:
            assert critical
    elif kind.startswith("critical."):
        side = kind.split(".")[1]
        inclusive = raw["critical"].get(f"{side}_inclusive", False)
        beyond = where == ("below" if side == "low" else "above") or (where == "at" and inclusive)
        critical_band = bands["critical_below" if side == "low" else "critical_above"]
        assert critical == beyond
        assert (band == critical_band and flag == ("LL" if side == "low" else "HH")) == beyond
    elif kind == "reference_interval.low":  # inclusive
        assert flag == ("L" if where == "below" else "N")
        assert not critical
    elif kind == "reference_interval.high":
        assert flag == ("H" if where == "above" else "N")
        assert not critical
    elif kind.startswith("subdivision."):
        _, index, bound = kind.split(".")
        sub = bands["subdivisions"][int(index)]
        if bound == "upper":
            inside = where == "below" or (where == "at" and sub.get("upper_inclusive", False))
        else:
            inside = where == "above" or (where == "at" and sub.get("lower_inclusive", True))
        inside = inside and _region(raw, value) == sub["region"]  # a subdivision refines its own region
        if inside:
            assert band == sub["band"] and flag == h.REGION_FLAGS[sub["region"]]  # flags follow the region
        elif _region(raw, value) == sub["region"]:
            assert band != sub["band"] or any(  # another subdivision of the same band may still hold it
                o["band"] == band and o is not sub for o in bands["subdivisions"])
    if band == "implausible":
        assert flag is None and critical is False


@pytest.mark.parametrize("analyte, kind, limit, where, value", EDGE_CASES,
                         ids=[f"{a}-{k}={fmt}-{w}" for a, k, fmt, w, _ in
                              ((a, k, h.fmt(lim), w, v) for a, k, lim, w, v in EDGE_CASES)])
def test_band_edges(analyte, kind, limit, where, value):
    r = h.one(analyte, value)
    got = (r.band, r.flag, r.critical)
    assert got == h.expected_class(h.raw_analyte(analyte), value), got
    _semantics(analyte, kind, where, value, *got)
    assert r.to_dict()["flag"] in (None, "LL", "L", "N", "H", "HH")


def test_edge_table_covers_every_limit_kind():
    kinds = {k.split(".")[0] for _, k, *_ in EDGE_CASES}
    assert kinds == {"reference_interval", "critical", "implausible", "subdivision"}
    assert {a for a, *_ in EDGE_CASES} == set(ANALYTES)


# Published B12 semantics (BACL interval 200-900; UCSF S26 borderline 200-300 inclusive; very high
# from 1000 inclusive), stated as facts rather than read from the file.
B12_PUBLISHED = [
    (199.999, "deficient", "L"), (200, "borderline", "N"), (250, "borderline", "N"), (300, "borderline", "N"),
    (300.001, "normal", "N"), (900, "normal", "N"), (900.001, "high", "H"), (999.999, "high", "H"),
    (1000, "very_high", "H"), (5000, "very_high", "H"),
]


@pytest.mark.parametrize("value, band, flag", B12_PUBLISHED)
def test_b12_published_cut_offs(value, band, flag):
    r = h.one("vitamin_b12", value, "pg/mL")
    assert (r.band, r.flag, r.critical) == (band, flag, False)


@pytest.mark.parametrize("analyte", ANALYTES)
def test_implausible_never_silences_a_critical_alarm(analyte):
    """Beyond the verify limits: critical where a critical limit exists on that side (with
    `implausible` set), the band `implausible` (flag null, not critical) only where none does."""
    raw = h.raw_analyte(analyte)
    impl, crit = raw["implausible"], raw.get("critical") or {}
    for value, side in ((impl["low"] * 0.5, "low"), (impl["high"] * 1.5, "high")):
        r = h.one(analyte, value)
        assert r.implausible is True and r.to_dict()["implausible"] is True
        if crit.get(side) is not None:
            assert r.critical and r.flag == ("LL" if side == "low" else "HH"), (analyte, value, r.band)
        else:
            assert (r.band, r.flag, r.critical) == ("implausible", None, False)
    inside = h.one(analyte, (raw["reference_interval"]["low"] + raw["reference_interval"]["high"]) / 2)
    assert inside.implausible is False


NO_CRITICAL = [a for a in ANALYTES if h.raw_analyte(a).get("critical") is None]


def test_b12_and_albumin_have_no_critical_limits():
    # no laboratory lists B12 critical values (S29b); albumin is used for the adjustment only
    assert {"vitamin_b12", "albumin"} <= set(NO_CRITICAL)


@pytest.mark.parametrize("analyte", NO_CRITICAL)
def test_analyte_without_critical_limits_is_never_critical(analyte):
    raw = h.raw_analyte(analyte)
    order = h.kb().analytes[analyte].bands.order()
    assert not any(b.startswith("critical") for b in order)
    for value in (raw["implausible"]["low"], raw["implausible"]["high"]):
        r = h.one(analyte, value)
        assert r.critical is False and r.flag in ("L", "H")


# ------------------------------------------------------------------ calcium age partitions

CA = h.raw_analyte("calcium")
AGES = [None, 0, 17.99, 18, 30, 59.99, 60, 65, 100]


@pytest.mark.parametrize("age", AGES, ids=[f"age={a}" for a in AGES])
def test_calcium_partition_interval_is_reported(age):
    ri, _, origin = h.limits_for(CA, age)
    r = h.one("calcium", 9.4, age=age)
    rr = r.reference_range
    assert (rr.low, rr.high, rr.origin) == (ri["low"], ri["high"], origin)
    assert r.reference_range.to_dict()["source"]  # every interval names where it came from


CA_PARTITION_EDGES = [
    (age, side, where, v)
    for age in AGES
    for side in ("low", "high")
    for where, v in (("at", h.limits_for(CA, age)[0][side]),
                     ("below", h.limits_for(CA, age)[0][side] * (1 - EPS)),
                     ("above", h.limits_for(CA, age)[0][side] * (1 + EPS)))
]


@pytest.mark.parametrize("age, side, where, value", CA_PARTITION_EDGES,
                         ids=[f"age={a}-{s}-{w}" for a, s, w, _ in CA_PARTITION_EDGES])
def test_calcium_partition_edges(age, side, where, value):
    r = h.one("calcium", value, age=age)
    assert (r.band, r.flag, r.critical) == h.expected_class(CA, value, age=age)
    expected_flag = {"low": "L", "high": "H"}[side] if where == ("below" if side == "low" else "above") else "N"
    assert r.flag == expected_flag


@pytest.mark.parametrize("age, low, high, origin", [(30, 8.6, 10.0, "partition"), (65, 8.8, 10.2, "partition"),
                                                     (None, 8.6, 10.2, "default")])
def test_calcium_partitions_match_published_mayo_and_quest_intervals(age, low, high, origin):
    # Mayo CA (S10): 18-59 y 8.6-10.0, >= 60 y 8.8-10.2 mg/dL; Quest (S11): 8.6-10.2 mg/dL.
    rr = h.one("calcium", 9.4, age=age).reference_range
    assert (rr.low, rr.high, rr.origin) == (low, high, origin)


@pytest.mark.parametrize("value, age, band", [
    (10.1, 30, "high"), (10.1, 65, "normal"), (10.1, None, "normal"),
    (8.7, 30, "normal"), (8.7, 65, "low"), (8.7, None, "normal"),
    (10.0, 30, "normal"), (8.8, 65, "normal"),
])
def test_calcium_age_changes_the_band(value, age, band):
    assert h.one("calcium", value, age=age).band == band


# ------------------------------------------------------------------ other units classify alike

UNIT_CASES = [
    (a, u, band)
    for a in ANALYTES
    for u in h.raw_analyte(a)["units"] if u != h.canonical_unit(a)
    for band in h.kb().analytes[a].bands.order()
]


@pytest.mark.parametrize("analyte, unit, band", UNIT_CASES, ids=[f"{a}-{u}-{b}" for a, u, b in UNIT_CASES])
def test_value_in_another_unit_classifies_like_its_canonical_value(analyte, unit, band):
    canonical = h.value_in(analyte, band)
    in_unit = canonical / h.kb().analytes[analyte].factors[unit]
    a = h.one(analyte, canonical)
    b = h.one(analyte, in_unit, unit)
    assert a.band == band
    assert (b.band, b.flag, b.critical) == (a.band, a.flag, a.critical)
    assert b.normalized_value == pytest.approx(canonical, rel=1e-12)


@pytest.mark.parametrize("analyte, value, unit, canonical, tol, band, flag", [
    ("potassium", 3.4, "mEq/L", 3.4, 1e-12, "low", "L"),              # mEq/L = mmol/L for K+
    ("potassium", 3.4, "meq/l", 3.4, 1e-12, "low", "L"),
    ("calcium", 2.0, "mmol/L", 2.0 / 0.2495, 0.002, "low", "L"),       # 8.02 mg/dL
    ("calcium", 4.0, "mEq/L", 2.0 / 0.2495, 0.002, "low", "L"),        # 4 mEq/L = 2 mmol/L
    ("magnesium", 0.6, "mmol/L", 0.6 / 0.4114, 0.001, "low", "L"),      # 1.46 mg/dL
    ("vitamin_b12", 100, "pmol/L", 100 / 0.7378, 0.05, "deficient", "L"),  # ~135.5 pg/mL
    ("vitamin_b12", 100, "PMOL/L", 100 / 0.7378, 0.05, "deficient", "L"),
    ("albumin", 30, "g/L", 3.0, 1e-12, "low", "L"),
    ("ionized_calcium", 2.4, "mEq/L", 1.2, 1e-12, "normal", "N"),
])
def test_published_conversions_classify(analyte, value, unit, canonical, tol, band, flag):
    r = h.one(analyte, value, unit)
    assert abs(r.normalized_value - canonical) <= tol
    assert (r.band, r.flag) == (band, flag)
    assert r.to_dict()["normalized"]["unit"] == h.canonical_unit(analyte)


# ------------------------------------------------------------------ monotonicity

def _sweep(analyte: str) -> list[float]:
    impl = h.raw_analyte(analyte)["implausible"]
    lo, hi = impl["low"], impl["high"]
    n = 3000
    values = {lo * (hi / lo) ** (i / n) for i in range(n + 1)}
    for _, limit in limit_points(analyte):
        values |= {limit, limit * (1 - EPS), limit * (1 + EPS)}
    for part in h.raw_analyte(analyte).get("partitions") or []:
        for side in ("low", "high"):
            limit = part["reference_interval"][side]
            values |= {limit, limit * (1 - EPS), limit * (1 + EPS)}
    return sorted(v for v in values if lo <= v <= hi)


MONO = [(a, age) for a in ANALYTES for age in ([None, 30, 65] if h.raw_analyte(a).get("partitions") else [None])]


@pytest.mark.parametrize("analyte, age", MONO, ids=[f"{a}-age={g}" for a, g in MONO])
def test_band_never_decreases_as_the_value_rises(analyte, age):
    values = _sweep(analyte)
    report = h.run(h.panel(*[h.R(analyte, v) for v in values], age=age))
    order = h.kb().analytes[analyte].bands.order()
    ranks = []
    for v, r in zip(values, report.results):
        assert r.band in order, (v, r.band)  # plausible, uncensored values never leave the ladder
        ranks.append(order.index(r.band))
    drops = [(values[i], report.results[i].band, values[i + 1], report.results[i + 1].band)
             for i in range(len(ranks) - 1) if ranks[i + 1] < ranks[i]]
    assert drops == []
    assert {r.band for r in report.results} == set(order)  # every band is reachable


def test_lab_range_keeps_critical_implausible_and_subdivisions():
    # README: a lab range replaces low/high only; critical, implausible limits and subdivisions stay.
    k = h.raw_analyte("potassium")
    wide = LabRange(low=k["critical"]["low"] * 0.5, high=k["critical"]["high"] * 1.5)
    r = h.one("potassium", k["critical"]["low"] * 0.9, reference_range=wide)
    assert (r.band, r.flag, r.critical) == ("critical_low", "LL", True)
    r = h.one("potassium", k["implausible"]["high"] * 1.1, reference_range=LabRange(low=1.2, high=99))
    assert (r.band, r.flag, r.critical, r.implausible) == ("critical_high", "HH", True, True)
    assert math.isfinite(r.normalized_value)
    b12 = h.one("vitamin_b12", 250, reference_range=LabRange(low=301, high=816))
    assert (b12.band, b12.flag) == ("borderline", "L")  # the decision limits hold inside any interval

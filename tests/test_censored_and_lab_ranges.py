"""Censored values ("<150", ">=2000", a comparator) and laboratory reference ranges.

README: a censored value takes the band of its bound when every plausible value the bound allows
falls in one band, else `indeterminate`. A lab range replaces low/high of the reference interval
for that result only; critical and implausible limits and subdivisions stay.
"""
from __future__ import annotations

import math

import pytest

from service.core import InputError, LabRange

try:
    import core_helpers as h
except ImportError:  # pragma: no cover
    from tests import core_helpers as h

ANALYTES = h.analyte_ids()

# ------------------------------------------------------------------ censored values

# (analyte, value, unit, band, flag, critical, comparator reported), reasoned from the semantics:
CENSORED = [
    ("vitamin_b12", "<150", "pg/mL", "deficient", "L", False, "<"),       # 1..150: all deficient
    ("vitamin_b12", "<200", "pg/mL", "deficient", "L", False, "<"),       # 200 itself excluded
    ("vitamin_b12", "<=200", "pg/mL", "indeterminate", None, False, "<="),  # 200 is borderline
    ("vitamin_b12", "\u2264200", "pg/mL", "indeterminate", None, False, "<="),
    ("vitamin_b12", "\u2264199", "pg/mL", "deficient", "L", False, "<="),
    ("vitamin_b12", "<250", "pg/mL", "indeterminate", None, False, "<"),  # deficient or borderline
    ("vitamin_b12", "<=300", "pg/mL", "indeterminate", None, False, "<="),
    ("vitamin_b12", ">2000", "pg/mL", "very_high", "H", False, ">"),
    ("vitamin_b12", "\u22652000", "pg/mL", "very_high", "H", False, ">="),
    ("vitamin_b12", ">=1000", "pg/mL", "very_high", "H", False, ">="),    # very_high from 1000 inclusive
    ("vitamin_b12", ">999", "pg/mL", "indeterminate", None, False, ">"),  # high or very_high
    ("vitamin_b12", ">300", "pg/mL", "indeterminate", None, False, ">"),
    ("vitamin_b12", " < 150 ", "pg/mL", "deficient", "L", False, "<"),
    ("vitamin_b12", "<100", "pmol/L", "deficient", "L", False, "<"),      # ~135.5 pg/mL
    ("potassium", "<2.5", "mmol/L", "critical_low", "LL", True, "<"),
    ("potassium", "<2.5", "mEq/L", "critical_low", "LL", True, "<"),
    ("potassium", "<2.8", "mmol/L", "critical_low", "LL", True, "<"),     # critical is strict
    ("potassium", "<=2.8", "mmol/L", "indeterminate", None, False, "<="),  # 2.8 itself is only low
    ("potassium", ">7", "mmol/L", "critical_high", "HH", True, ">"),
    ("potassium", ">6.2", "mmol/L", "critical_high", "HH", True, ">"),
    ("potassium", ">=6.2", "mmol/L", "indeterminate", None, False, ">="),
    ("potassium", "<5", "mmol/L", "indeterminate", None, False, "<"),
    ("potassium", "<0.5", "mmol/L", "critical_low", "LL", True, "<"),     # implausible, and the alarm stands
    ("potassium", ">12", "mmol/L", "critical_high", "HH", True, ">"),
    ("vitamin_b12", ">25000", "pg/mL", "implausible", None, False, ">"),  # no critical limit: its own band
    ("magnesium", "<30", "mg/dL", "indeterminate", None, False, "<"),  # below an implausible high: every band
    ("potassium", "<12", "mmol/L", "indeterminate", None, False, "<"),
    ("potassium", ">0.5", "mmol/L", "indeterminate", None, False, ">"),
    ("albumin", "<3.0", "g/dL", "low", "L", False, "<"),
    ("albumin", "<30", "g/L", "low", "L", False, "<"),
    ("albumin", "<4", "g/dL", "indeterminate", None, False, "<"),
]


@pytest.mark.parametrize("analyte, value, unit, band, flag, critical, comparator", CENSORED,
                         ids=[f"{a}-{v}{u}" for a, v, u, *_ in CENSORED])
def test_censored_strings(analyte, value, unit, band, flag, critical, comparator):
    r = h.one(analyte, value, unit)
    assert (r.band, r.flag, r.critical) == (band, flag, critical)
    assert r.comparator == comparator
    d = r.to_dict()
    assert d["comparator"] == comparator and d["normalized"]["comparator"] == comparator
    assert d["value"] == value  # echoed as sent


def _censored_from_data():
    """Per analyte: bounds inside the lowest / highest band keep it; spanning bounds are indeterminate."""
    for a in ANALYTES:
        order = h.kb().analytes[a].bands.order()
        lo_v, hi_v = h.value_in(a, order[0]), h.value_in(a, order[-1])
        yield a, "<" + h.fmt(lo_v), order[0]
        yield a, "<=" + h.fmt(lo_v), order[0]
        yield a, ">" + h.fmt(hi_v), order[-1]
        yield a, ">=" + h.fmt(hi_v), order[-1]
        yield a, "<" + h.fmt(hi_v), "indeterminate"
        yield a, ">" + h.fmt(lo_v), "indeterminate"
        yield a, "<" + h.fmt(h.value_in(a, "normal")), "indeterminate"


CENSORED_DATA = list(_censored_from_data())


@pytest.mark.parametrize("analyte, value, band", CENSORED_DATA, ids=[f"{a}-{v}" for a, v, _ in CENSORED_DATA])
def test_censored_bands_follow_the_data(analyte, value, band):
    r = h.one(analyte, value)
    assert r.band == band
    if band == "indeterminate":
        assert r.flag is None and r.critical is False


@pytest.mark.parametrize("value, comparator, band", [
    (150, "<", "deficient"), (150.0, "<=", "deficient"), (2000, ">", "very_high"), (2000, ">=", "very_high"),
    (250, "<", "indeterminate"), (200, "<=", "indeterminate"), (200, "<", "deficient"), (1000, ">=", "very_high"),
    (999, ">", "indeterminate"),
])
def test_comparator_field_with_a_numeric_value(value, comparator, band):
    r = h.one("vitamin_b12", value, "pg/mL", comparator=comparator)
    assert r.band == band and r.comparator == comparator


@pytest.mark.parametrize("value, comparator", [
    ("<150", ">"), ("<150", "<="), (">2000", "<"), (">=2000", ">"), ("\u2264200", "<"), ("\u22652000", "<="),
])
def test_comparator_disagreeing_with_the_string_is_an_input_error(value, comparator):
    with pytest.raises(InputError) as ei:
        h.run(h.panel(h.R("vitamin_b12", value, "pg/mL", comparator=comparator)))
    assert h.pointers(ei.value) == ["/results/0/value"]


GARBAGE = ["<<5", ">", "<", "abc", "", " ", "1,5", "NaN", "nan", "inf", "Infinity", "-1", "-0.5", "1.2.3",
           "5 5", "<5>", "=5", "=<5", "5<", "\uff15", "1" * 41, 1e308, -1, -0.001, float("nan"),
           float("inf"), float("-inf"), True, False, None, [], {}, b"5"]


@pytest.mark.parametrize("value", GARBAGE, ids=[repr(v)[:24] for v in GARBAGE])
def test_garbage_values_are_input_errors_at_the_value(value):
    with pytest.raises(InputError) as ei:
        h.run(h.panel(h.R("potassium", 4.0), h.R("calcium", 9.0), h.R("potassium", value)))
    assert h.pointers(ei.value) == ["/results/2/value"]
    assert all(p.path == ("results", 2, "value") for p in ei.value.problems)


def test_every_bad_value_of_a_panel_is_reported():
    with pytest.raises(InputError) as ei:
        h.run(h.panel(h.R("potassium", "abc"), h.R("calcium", 9.0), h.R("magnesium", None), h.R("albumin", -1)))
    assert h.pointers(ei.value) == ["/results/0/value", "/results/2/value", "/results/3/value"]


# ------------------------------------------------------------------ laboratory reference ranges

def test_b12_lab_range_keeps_borderline_subdivision():
    # 190 pg/mL is inside the lab's 180-914 and <= 300, so borderline (flag N), not deficient.
    rng = LabRange(low=180, high=914)
    assert h.one("vitamin_b12", 190, "pg/mL").band == "deficient"  # with the default 200-900
    r = h.one("vitamin_b12", 190, "pg/mL", reference_range=rng)
    assert (r.band, r.flag, r.critical) == ("borderline", "N", False)
    assert h.one("vitamin_b12", 179, "pg/mL", reference_range=rng).band == "deficient"
    assert h.one("vitamin_b12", 180, "pg/mL", reference_range=rng).band == "borderline"  # inclusive
    assert h.one("vitamin_b12", 910, "pg/mL", reference_range=rng).band == "normal"
    assert h.one("vitamin_b12", 950, "pg/mL", reference_range=rng).band == "high"
    assert h.one("vitamin_b12", 1000, "pg/mL", reference_range=rng).band == "very_high"


K = h.raw_analyte("potassium")


@pytest.mark.parametrize("value, unit, rng, band, flag", [
    (3.4, "mmol/L", LabRange(low=3.3, high=5.0), "normal", "N"),
    (5.05, "mmol/L", LabRange(low=3.3, high=5.0), "high", "H"),
    (5.0, "mmol/L", LabRange(low=3.3, high=5.0), "normal", "N"),
    (3.3, "mmol/L", LabRange(low=3.3, high=5.0), "normal", "N"),
    (3.25, "mmol/L", LabRange(low=3.3, high=5.0), "low", "L"),
    (3.4, "mmol/L", LabRange(low=3.3, high=5.0, unit="mEq/L"), "normal", "N"),
    (5.05, "mmol/L", LabRange(low=3.3, high=5.0, unit="MEQ/L"), "high", "H"),
    (5.05, "mEq/L", LabRange(low=3.3, high=5.0, unit="mmol/L"), "high", "H"),
    (5.05, "mEq/L", LabRange(low=3.3, high=5.0), "high", "H"),
    (2.7, "mmol/L", LabRange(low=2.0, high=5.0), "critical_low", "LL"),  # critical limits stay
    ("<3.2", "mmol/L", LabRange(low=3.3, high=5.0), "indeterminate", None),
    (">5.5", "mmol/L", LabRange(low=3.3, high=5.0), "indeterminate", None),
])
def test_potassium_lab_range(value, unit, rng, band, flag):
    r = h.one("potassium", value, unit, reference_range=rng)
    assert (r.band, r.flag) == (band, flag)
    assert r.reference_range.origin == "laboratory"


def test_potassium_lab_range_changes_what_the_default_says():
    # premise from the data: 3.4 is low and 5.05 normal under the default interval
    assert h.expected_class(K, 3.4)[0] == "low" and h.expected_class(K, 5.05)[0] == "normal"
    assert h.one("potassium", 3.4).band == "low" and h.one("potassium", 5.05).band == "normal"
    rng = LabRange(low=3.3, high=5.0)
    assert h.one("potassium", 3.4, reference_range=rng).band == "normal"
    assert h.one("potassium", 5.05, reference_range=rng).band == "high"


def test_lab_range_applies_to_its_own_result_only():
    rep = h.run(h.panel(h.R("potassium", 5.05, reference_range=LabRange(low=3.3, high=5.0)),
                        h.R("potassium", 5.05)))
    assert [r.band for r in rep.results] == ["high", "normal"]
    assert [r.reference_range.origin for r in rep.results] == ["laboratory", "default"]


def test_lab_range_is_reported_in_the_callers_unit_and_canonical():
    r = h.one("potassium", 3.4, "mEq/L", reference_range=LabRange(low=3.3, high=5.0))
    assert r.reference_range.to_dict() == {
        "low": 3.3, "high": 5.0, "unit": "mEq/L",
        "canonical": {"low": 3.3, "high": 5.0, "unit": "mmol/L"},
        "origin": "laboratory", "source": "laboratory",
        "citations": [{"title": "The laboratory's own reference interval", "reference": "laboratory",
                       "kind": "laboratory"}],
        "text": None,
    }


def test_the_laboratorys_wording_of_its_range_is_echoed_only_when_its_range_is_used():
    worded = LabRange(low=3.3, high=5.0, text="3.3-5.0 mmol/L (adult, heparin plasma)")
    assert h.one("potassium", 3.4, reference_range=worded).reference_range.to_dict()["text"] == worded.text
    assert h.one("potassium", 3.4).reference_range.to_dict()["text"] is None


def test_lab_range_in_another_unit_than_the_result():
    # B12 result in pg/mL, lab range 133-674 pmol/L (= ~180-914 pg/mL, factor 0.7378 [S31])
    r = h.one("vitamin_b12", 190, "pg/mL", reference_range=LabRange(low=133, high=674, unit="pmol/L"))
    assert r.band == "borderline"
    d = r.reference_range.to_dict()
    assert d["unit"] == "pg/mL" and d["canonical"]["unit"] == "pg/mL"
    assert d["low"] == pytest.approx(133 / 0.7378, rel=1e-4)
    assert d["high"] == pytest.approx(674 / 0.7378, rel=1e-4)
    assert d["origin"] == "laboratory" and d["source"] == "laboratory"
    # calcium: range in mmol/L, result in mg/dL
    r = h.one("calcium", 8.5, "mg/dL", reference_range=LabRange(low=2.10, high=2.55, unit="mmol/L"))
    assert r.band == "normal"  # 2.10 mmol/L = 8.42 mg/dL
    assert r.reference_range.to_dict()["low"] == pytest.approx(2.10 / 0.2495, rel=1e-4)


@pytest.mark.parametrize("rng, value, band, low, high", [
    (LabRange(low=3.3), 3.4, "normal", 3.3, K["reference_interval"]["high"]),
    (LabRange(low=3.3), K["reference_interval"]["high"] * 1.01, "high", 3.3, K["reference_interval"]["high"]),
    (LabRange(high=5.0), 5.05, "high", K["reference_interval"]["low"], 5.0),
    (LabRange(high=5.0), 3.4, "low", K["reference_interval"]["low"], 5.0),
])
def test_lab_range_with_only_one_limit(rng, value, band, low, high):
    # the side the laboratory gives replaces the default; the other side stays the default
    r = h.one("potassium", value, reference_range=rng)
    assert r.band == band
    rr = r.reference_range
    assert (rr.low, rr.high, rr.origin) == (low, high, "laboratory")


@pytest.mark.parametrize("rng, pointer", [
    (LabRange(low=5.0, high=3.3), "/results/0/reference_range/low"),
    (LabRange(low=3.3, high=5.0, unit="g/dL"), "/results/0/reference_range/unit"),
    (LabRange(low=3.3, high=5.0, unit="pg/mL"), "/results/0/reference_range/unit"),
    (LabRange(low=3.3, high=5.0, unit="furlong"), "/results/0/reference_range/unit"),
    (LabRange(low=3.3, high=5.0, unit="x" * 100_000), "/results/0/reference_range/unit"),
    (LabRange(low="abc", high=5.0), "/results/0/reference_range/low"),
    (LabRange(low=-1, high=5.0), "/results/0/reference_range/low"),
    (LabRange(low=3.3, high="<5"), "/results/0/reference_range/high"),
    (LabRange(low=3.3, high=float("nan")), "/results/0/reference_range/high"),
    (LabRange(low=True, high=5.0), "/results/0/reference_range/low"),
    (LabRange(text="3.5-5.1"), "/results/0/reference_range"),
])
def test_bad_lab_ranges(rng, pointer):
    with pytest.raises(InputError) as ei:
        h.run(h.panel(h.R("potassium", 4.0, reference_range=rng)))
    assert h.pointers(ei.value) == [pointer]


# ------------------------------------------------------------------ default ranges name their source

def _expected_source(raw_limits: dict) -> str:
    sources = h.raw_sources()
    tags = []
    for side in ("low", "high"):
        tag = raw_limits.get(f"{side}_source") or raw_limits.get("source")
        if tag and tag not in tags:
            tags.append(tag)
    return "; ".join(sources[t]["url"] or sources[t]["citation"] for t in tags)


@pytest.mark.parametrize("analyte", ANALYTES)
def test_default_range_reports_origin_and_source_url(analyte):
    raw = h.raw_analyte(analyte)
    r = h.one(analyte, h.value_in(analyte, "normal"))
    d = r.reference_range.to_dict()
    assert d["origin"] == "default"
    assert d["canonical"] == {"low": raw["reference_interval"]["low"], "high": raw["reference_interval"]["high"],
                              "unit": raw["canonical_unit"]}
    assert d["source"] == _expected_source(raw["reference_interval"])
    for part in d["source"].split("; "):
        assert part.startswith(("http://", "https://")), part


@pytest.mark.parametrize("age", [30, 65])
def test_partition_range_reports_origin_and_source_url(age):
    raw = h.raw_analyte("calcium")
    ri, _, _origin = h.limits_for(raw, age)
    d = h.one("calcium", 9.4, age=age).reference_range.to_dict()
    assert (d["origin"], d["low"], d["high"]) == ("partition", ri["low"], ri["high"])
    assert d["source"] == _expected_source(ri)
    assert d["source"].startswith(("http://", "https://"))


def test_default_range_in_callers_unit():
    raw = h.raw_analyte("calcium")["reference_interval"]
    d = h.one("calcium", 2.3, "mmol/L").reference_range.to_dict()
    assert d["unit"] == "mmol/L"
    assert math.isclose(d["low"], raw["low"] * 0.2495, rel_tol=2e-4)
    assert math.isclose(d["high"], raw["high"] * 0.2495, rel_tol=2e-4)
    assert d["canonical"]["unit"] == "mg/dL"


@pytest.mark.parametrize("analyte, rng, value", [
    ("vitamin_b12", LabRange(low=950), 950),    # lab low above the default high (900)
    ("potassium", LabRange(high=3.0), 3.0),     # lab high below the default low (3.5)
])
def test_one_sided_lab_range_never_makes_an_inverted_interval(analyte, rng, value):
    """Explicit low > high is refused (above); a one-sided lab range must not produce the same
    incoherent interval by combining with the opposite default limit. Either refuse it at the
    reference_range, or apply an interval with low <= high, in which the lab's own limit is normal."""
    try:
        r = h.one(analyte, value, reference_range=rng)
    except InputError as exc:
        assert all(p.startswith("/results/0/reference_range") for p in h.pointers(exc))
        return
    rr = r.reference_range
    assert rr.low is None or rr.high is None or rr.low <= rr.high, (rr.low, rr.high)
    assert r.flag == "N", (r.band, r.flag)  # a value at the lab's own (inclusive) limit

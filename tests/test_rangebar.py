"""The range bar agrees with the classification: the marker lands in the segment of its own band."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core import PanelInput, Patient, ResultInput, default_knowledge, interpret_panel
from service.web import rangebar

from .core_helpers import load_yaml

ANALYTES = ["vitamin_b12", "potassium", "magnesium", "calcium", "albumin", "ionized_calcium"]


def bar_for(analyte: str, value: float, unit: str | None = None, age: float | None = None, comparator=None):
    kb = default_knowledge()
    unit = unit or load_yaml(f"{analyte}.yaml")["canonical_unit"]
    report = interpret_panel(PanelInput((ResultInput(value, unit, analyte=analyte, comparator=comparator),),
                                        Patient(age, None)), kb).results[0]
    return report, rangebar.build(report, kb.analytes[analyte])


@settings(max_examples=400, deadline=None)
@given(analyte=st.sampled_from(ANALYTES), value=st.floats(min_value=0, max_value=30000, allow_nan=False),
       age=st.sampled_from([None, 30, 75]))
def test_the_marker_sits_in_the_segment_of_the_results_band(analyte, value, age):
    report, bar = bar_for(analyte, value, age=age)
    assert bar.segments[0].x == 0 and abs(bar.segments[-1].x + bar.segments[-1].width - rangebar.WIDTH) < 0.05
    for a, b in zip(bar.segments, bar.segments[1:]):
        assert abs(a.x + a.width - b.x) < 0.05  # contiguous, in order
    assert 0 <= bar.marker_x <= rangebar.WIDTH
    inside = bar.scale_min <= report.normalized_value <= bar.scale_max
    assert (bar.off_scale is None) == inside
    if not inside:
        assert bar.marker_x == (0 if bar.off_scale == "below" else rangebar.WIDTH)
        assert f"{bar.off_scale} the scale shown" in bar.description
        return
    touching = {s.band for s in bar.segments if s.x - 0.01 <= bar.marker_x <= s.x + s.width + 0.01}
    assert report.band in touching


@pytest.mark.parametrize("analyte", ANALYTES)
def test_ticks_mark_the_limits_the_core_applied(analyte):
    data = load_yaml(f"{analyte}.yaml")
    report, bar = bar_for(analyte, data["reference_interval"]["low"])
    normal = sorted(t.value for t in bar.ticks if t.kind == "normal")
    assert normal == [report.reference_range.low, report.reference_range.high]
    critical = sorted(t.value for t in bar.ticks if t.kind == "critical")
    expected = [] if not data.get("critical") else [data["critical"]["low"], data["critical"]["high"]]
    assert critical == expected
    assert bar.scale_min < min(normal + critical) and bar.scale_max > max(normal + critical)
    xs = [t.x for t in bar.ticks]
    assert xs == sorted(xs)


def test_the_bar_follows_an_age_partition():
    _, young = bar_for("calcium", 9.0, age=30)
    _, old = bar_for("calcium", 9.0, age=75)
    assert {t.value for t in young.ticks} != {t.value for t in old.ticks}


def test_a_censored_value_that_spans_bands_has_no_marker():
    report, bar = bar_for("vitamin_b12", 500, comparator="<")
    assert report.band == "indeterminate" and bar.marker_x is None


def test_the_description_names_value_band_and_limits():
    _, bar = bar_for("potassium", 3.1)
    assert bar.description == ("3.1 mmol/L: low; reference interval 3.5 to 5.1 mmol/L; "
                               "critical below 2.8; critical above 6.2")

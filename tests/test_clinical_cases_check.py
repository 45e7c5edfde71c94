"""The clinical-case checker itself (tests/clinical_cases/check.py), on hand-made reports: the history
expectations of issue 15 (`delta`, `trend_length`) must fail a report that contradicts them and pass
one that agrees, or a history case would prove nothing."""
from __future__ import annotations

from typing import Any

from .clinical_cases.check import failures

SEED_DELTA = {"previous": {"value": 4.4, "unit": "mmol/L", "collected_at": "2026-11-18T08:00:00Z"},
              "change": -1.4000000000000004, "change_percent": -31.818181818181824, "hours": 48.0,
              "significant": True, "rule": "potassium-delta-48h", "source": "DELTA-PROPOSAL-2026"}


def _report(**result: Any) -> dict[str, Any]:
    return {"results": [{"id": "k", "band": "low", "flag": "L", "critical": False, "notes": [], **result}],
            "notes": [], "derived": []}


def _case(**wanted: Any) -> dict[str, Any]:
    return {"id": "a-case", "expect": {"results": {"k": wanted}}}


SEED_CASE = _case(delta={"significant": True, "rule": "potassium-delta-48h", "change": -1.4, "hours": 48,
                         "previous": {"value": 4.4}})


def test_a_matching_delta_passes():
    assert failures(SEED_CASE, _report(delta=SEED_DELTA)) == []


def test_numbers_match_within_the_report_rounding():
    rounded = {**SEED_DELTA, "change": -1.41, "change_percent": -31.82, "hours": 48}
    assert failures(SEED_CASE, _report(delta=rounded)) == []
    assert failures(_case(delta={"change_percent": -31.82}), _report(delta=SEED_DELTA)) == []


def test_a_wrong_change_fails():
    problems = failures(SEED_CASE, _report(delta={**SEED_DELTA, "change": -1.2}))
    assert problems == ["k.delta.change: expected -1.4, got -1.2"]


def test_a_change_off_by_more_than_the_tolerance_fails():
    assert failures(SEED_CASE, _report(delta={**SEED_DELTA, "change": -1.42}))


def test_each_given_field_is_checked():
    wrong = {**SEED_DELTA, "significant": False, "rule": None, "hours": 72.0,
             "previous": {**SEED_DELTA["previous"], "value": 4.1}}
    problems = failures(SEED_CASE, _report(delta=wrong))
    assert len(problems) == 4
    assert any(p.startswith("k.delta.significant:") for p in problems)
    assert any(p.startswith("k.delta.rule:") for p in problems)
    assert any(p.startswith("k.delta.hours:") for p in problems)
    assert any(p.startswith("k.delta.previous.value:") for p in problems)


def test_fields_the_case_does_not_give_are_not_checked():
    assert failures(_case(delta={"significant": True}), _report(delta=SEED_DELTA)) == []


def test_significant_is_a_boolean_not_a_number():
    assert failures(_case(delta={"significant": True}), _report(delta={**SEED_DELTA, "significant": 1}))


def test_a_null_rule_must_be_null():
    case = _case(delta={"significant": False, "rule": None, "change": None})
    censored = {**SEED_DELTA, "significant": False, "rule": None, "source": None, "change": None,
                "change_percent": None}
    assert failures(case, _report(delta=censored)) == []
    assert failures(case, _report(delta={**censored, "rule": "vitamin-b12-delta-fall-720h"}))
    assert failures(case, _report(delta={**censored, "change": 0.0}))


def test_delta_null_requires_null():
    case = _case(delta=None)
    assert failures(case, _report(delta=None)) == []
    assert failures(case, _report(delta=SEED_DELTA)) == [f"k.delta: expected null, got {SEED_DELTA!r}"]


def test_delta_null_fails_a_report_without_deltas():
    """Every result carries `delta` (null when there is no earlier result): a report that has none at
    all (a service without history support) must not pass a `delta: null` expectation."""
    assert failures(_case(delta=None), _report()) == ["k.delta: the report gives no delta"]


def test_an_expected_delta_fails_on_null_or_absent():
    assert failures(SEED_CASE, _report(delta=None)) == ["k.delta: expected a delta, got null"]
    assert failures(SEED_CASE, _report()) == ["k.delta: the report gives no delta"]


def test_a_previous_that_is_not_a_mapping_fails():
    assert failures(SEED_CASE, _report(delta={**SEED_DELTA, "previous": None}))


def test_trend_length():
    trend = [{"value": v, "collected_at": f"2026-11-{d:02d}T08:00:00Z"} for d, v in ((18, 4.4), (20, 3.0))]
    assert failures(_case(trend_length=2), _report(trend=trend)) == []
    assert failures(_case(trend_length=3), _report(trend=trend)) == ["k.trend: expected 3 points, got 2"]
    assert failures(_case(trend_length=2), _report()) == ["k.trend: expected a trend of 2 points, got None"]


def test_the_delta_map_keyed_by_result_id_is_checked_the_same_way():
    case = {"id": "a-case", "expect": {"delta": {"k": {"significant": True, "change": -1.4}}}}
    assert failures(case, _report(delta=SEED_DELTA)) == []
    assert failures(case, _report(delta={**SEED_DELTA, "significant": False})) == [
        "k.delta.significant: expected True, got False"]
    assert failures({"id": "a-case", "expect": {"delta": {"k": None}}}, _report()) == [
        "k.delta: the report gives no delta"]


def test_delta_expectations_sit_beside_the_other_result_expectations():
    case = _case(band="normal", notes=["delta-significant-change"], delta={"significant": True})
    problems = failures(case, _report(delta=SEED_DELTA))
    assert "k.band: expected 'normal', got 'low'" in problems
    assert any("delta-significant-change missing" in p for p in problems)
    assert not any(p.startswith("k.delta") for p in problems)

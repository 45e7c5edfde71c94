"""POST /fhir/$interpret with several Observations of one analyte and one subject (issue 15): the
earlier ones are the history of the newest, which gains v3-ObservationInterpretation U or D for a
significant change and the delta note saying from what and over how long; the older ones are
interpreted as they are, without a change of their own."""
from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from .conftest import AUTH
from .fhir_fixtures import INTERPRETATION, bundle, observation, patient
from .servers import gunicorn
from .test_fhir import by_id, interpret, outcome_of, post

K, CA_MASS, CA_MOLES = "2823-3", "17861-6", "2000-8"


def codes(obs: dict[str, Any]) -> list[str]:
    return [c["code"] for i in obs["interpretation"] for c in i.get("coding", []) if c["system"] == INTERPRETATION]


def notes(obs: dict[str, Any]) -> list[str]:
    return [n["text"] for n in obs.get("note", [])]


def change_notes(obs: dict[str, Any]) -> list[str]:
    return [t for t in notes(obs) if "since the previous result" in t]


def diagnostics(out: dict[str, Any]) -> list[tuple[str, list[str]]]:
    return [(i["diagnostics"], i.get("expression", [])) for i in outcome_of(out)["issue"]]


def test_the_newest_of_three_potassiums_falls_significantly_and_the_older_ones_get_no_change(client):
    out = interpret(client, bundle(
        patient(),
        observation("k-new", K, 3.0, "mmol/L", when="2026-11-21T08:00:00Z"),  # newest first, as a search sorts
        observation("k-mid", K, 4.4, "mmol/L", when="2026-11-19T08:00:00Z"),
        observation("k-old", K, 4.6, "mmol/L", when="2026-11-15T08:00:00Z")))
    k = by_id(out)
    assert codes(k["k-new"]) == ["L", "D"]
    assert k["k-new"]["interpretation"][0]["coding"][1] == {
        "system": INTERPRETATION, "code": "D", "display": "Significant change down"}
    assert k["k-new"]["interpretation"][0]["text"] == "low; significant change down"
    (change,) = change_notes(k["k-new"])  # compared with the newest earlier one: from what, over how long
    assert change.startswith("[warning] Changed from 4.4 to 3.0 mmol/L over 2 days (change -1.4 mmol/L, -31.8%)")
    assert "delta-check limit of 1 mmol/L within 48 hours" in change
    for older in ("k-mid", "k-old"):  # interpreted as they are: normal, without a change code or note
        assert codes(k[older]) == ["N"] and change_notes(k[older]) == []
        assert k[older]["interpretation"][0]["text"] == "normal"


def test_a_significant_rise_within_hours_is_u_on_a_normal_result(client):
    out = interpret(client, bundle(observation("k1", K, 3.6, "mmol/L", when="2026-11-21T02:00:00Z"),
                                   observation("k2", K, 4.9, "mmol/L", when="2026-11-21T08:00:00Z")))
    k = by_id(out)
    assert codes(k["k2"]) == ["N", "U"]
    assert k["k2"]["interpretation"][0]["coding"][1]["display"] == "Significant change up"
    assert change_notes(k["k2"])[0].startswith("[warning] Changed from 3.6 to 4.9 mmol/L over 6 hours (change +1.3")
    assert codes(k["k1"]) == ["N"]


@pytest.mark.parametrize("earlier, when, why", [
    (4.4, "2026-11-19T08:00:00Z", "a change of 0.4 is below the limit"),
    (4.6, "2026-11-14T08:00:00Z", "a fall of 1.6 over a week is beyond the rule's 48-hour window"),
])
def test_a_change_that_is_not_significant_gets_no_code_and_no_note(client, earlier, when, why):
    out = interpret(client, bundle(observation("k0", K, earlier, "mmol/L", when=when),
                                   observation("k1", K, 4.0 if earlier == 4.4 else 3.0, "mmol/L",
                                               when="2026-11-21T08:00:00Z")))
    k = by_id(out)["k1"]
    assert codes(k) in (["N"], ["L"]) and change_notes(k) == [], why


def test_another_subjects_observation_is_never_history(client):
    out = interpret(client, bundle(
        patient("p1"), patient("p2", gender="male"),
        observation("k-p2", K, 4.6, "mmol/L", subject="Patient/p2", when="2026-11-20T08:00:00Z"),
        observation("k-p1", K, 3.0, "mmol/L", subject="Patient/p1", when="2026-11-21T08:00:00Z")))
    k = by_id(out)
    assert codes(k["k-p1"]) == ["L"] and change_notes(k["k-p1"]) == []
    assert codes(k["k-p2"]) == ["N"] and change_notes(k["k-p2"]) == []
    # with an earlier result of its own, p1's potassium is compared with that one only
    out = interpret(client, bundle(
        patient("p1"), patient("p2", gender="male"),
        observation("k-p2", K, 3.1, "mmol/L", subject="Patient/p2", when="2026-11-20T20:00:00Z"),
        observation("k-p1-old", K, 4.4, "mmol/L", subject="Patient/p1", when="2026-11-19T08:00:00Z"),
        observation("k-p1", K, 3.0, "mmol/L", subject="Patient/p1", when="2026-11-21T08:00:00Z")))
    assert change_notes(by_id(out)["k-p1"])[0].startswith("[warning] Changed from 4.4 to 3.0 mmol/L over 2 days")


@pytest.mark.parametrize("now_mmol, expect, text", [
    (2.0, ["L", "D"], "Changed from 9.60 to 8.02 mg/dL over 24 hours (change -1.58 mg/dL, -16.5%)"),
    (2.3, ["N"], None),  # 9.6 mg/dL is 2.395 mmol/L: a fall of 0.38 mg/dL, not the 7.3 of the bare numbers
])
def test_an_earlier_calcium_in_mg_dl_is_compared_with_one_in_mmol_l(client, now_mmol, expect, text):
    out = interpret(client, bundle(patient(), observation("ca-then", CA_MASS, 9.6, "mg/dL", when="2026-11-20T08:00:00Z"),
                                   observation("ca-now", CA_MOLES, now_mmol, "mmol/L", when="2026-11-21T08:00:00Z")))
    ca = by_id(out)
    assert codes(ca["ca-now"]) == expect and codes(ca["ca-then"]) == ["N"]
    assert [t[len("[warning] "):][:len(text)] for t in change_notes(ca["ca-now"])] == ([text] if text else [])


def test_a_critical_fall_keeps_ll_and_adds_d_and_says_the_critical_value_is_new(client):
    out = interpret(client, bundle(observation("k1", K, 4.4, "mmol/L", when="2026-11-19T08:00:00Z"),
                                   observation("k2", K, 2.4, "mmol/L", when="2026-11-21T08:00:00Z")))
    k = by_id(out)["k2"]
    assert codes(k) == ["LL", "D"]
    assert any(t.startswith("[critical] This critical value is new: the previous result, 2 days earlier") for t in notes(k))


def test_only_the_analytes_whose_newest_result_a_panel_holds_are_compared(client):
    """A panel of potassium and calcium at one time: its potassium is the newest (compared), its calcium
    is older than the next calcium (interpreted as it is); the later calcium is compared with it."""
    out = interpret(client, bundle(
        observation("k-then", K, 4.4, "mmol/L", when="2026-11-19T08:00:00Z"),
        observation("k-now", K, 3.0, "mmol/L", when="2026-11-20T08:00:00Z"),
        observation("ca-with-k", CA_MASS, 10.2, "mg/dL", when="2026-11-20T08:00:00Z"),
        observation("ca-later", CA_MASS, 8.9, "mg/dL", when="2026-11-21T08:00:00Z")))
    obs = by_id(out)
    assert codes(obs["k-now"]) == ["L", "D"]
    assert codes(obs["ca-with-k"]) == ["N"] and change_notes(obs["ca-with-k"]) == []
    assert codes(obs["ca-later"]) == ["N", "D"]
    assert change_notes(obs["ca-later"])[0].startswith("[warning] Changed from 10.2 to 8.9 mg/dL over 24 hours")


def test_an_observation_without_an_effective_time_is_never_history_and_says_so(client):
    untimed = observation("k-untimed", K, 4.6, "mmol/L")
    del untimed["effectiveDateTime"]
    out = interpret(client, bundle(untimed, observation("k", K, 3.0, "mmol/L", when="2026-11-21T08:00:00Z")))
    k = by_id(out)
    assert codes(k["k"]) == ["L"] and change_notes(k["k"]) == []
    assert codes(k["k-untimed"]) == ["N"]
    assert ("no effective time: not compared with other potassium results, nor used as the history of one",
            ["Bundle.entry[0].resource"]) in diagnostics(out)


def test_observations_without_a_subject_are_not_compared(client):
    first, second = (observation(i, K, v, "mmol/L", when=w) for i, v, w in
                     [("k1", 4.4, "2026-11-19T08:00:00Z"), ("k2", 3.0, "2026-11-21T08:00:00Z")])
    for obs in (first, second):
        del obs["subject"]
    out = interpret(client, bundle(first, second))
    assert [codes(o) for o in by_id(out).values()] == [["N"], ["L"]]
    said = [where for text, where in diagnostics(out) if text.startswith("no subject: not compared")]
    assert said == [["Bundle.entry[0].resource"], ["Bundle.entry[1].resource"]]


def test_two_different_earlier_values_at_one_moment_are_not_guessed_between(client):
    clash = [observation("k-a", K, 4.4, "mmol/L", when="2026-11-20T08:00:00Z"),
             observation("k-b", K, 4.8, "mmol/L", when="2026-11-20T08:00:00Z")]
    out = interpret(client, bundle(*clash, observation("k", K, 3.0, "mmol/L", when="2026-11-21T08:00:00Z")))
    k = by_id(out)
    assert codes(k["k"]) == ["L"] and change_notes(k["k"]) == []
    (warning,) = [(t, w) for t, w in diagnostics(out) if "disagree" in t]
    assert warning[1] == ["Bundle.entry[0].resource"]
    assert "Bundle.entry[0].resource, Bundle.entry[1].resource" in warning[0]
    assert "Bundle.entry[2].resource was not compared with the earlier potassium results" in warning[0]
    # an exact repeat of the earlier result is one result: compared as usual
    repeat = [observation("k-a", K, 4.4, "mmol/L", when="2026-11-20T08:00:00Z"),
              observation("k-a2", K, 4.4, "mmol/L", when="2026-11-20T08:00:00Z")]
    out = interpret(client, bundle(*repeat, observation("k", K, 3.0, "mmol/L", when="2026-11-21T08:00:00Z")))
    assert codes(by_id(out)["k"]) == ["L", "D"]


def test_a_laboratorys_own_change_code_is_not_read_as_a_disagreeing_flag(client):
    sent = observation("k2", K, 3.0, "mmol/L", when="2026-11-21T08:00:00Z", interpretation=[{"coding": [
        {"system": INTERPRETATION, "code": "L"}, {"system": INTERPRETATION, "code": "D"}]}])
    out = interpret(client, bundle(observation("k1", K, 4.4, "mmol/L", when="2026-11-20T08:00:00Z"), sent))
    k = by_id(out)["k2"]
    assert codes(k) == ["L", "D"]  # ours replace theirs: one D, not two
    assert not any("flagged this result" in t for t in notes(k))


def test_members_of_a_report_at_two_times_compare_by_the_time_they_inherit(client):
    """DiagnosticReports with contained Observations that carry no time of their own: each member takes
    its report's time, and the later report's potassium is compared with the earlier one's."""
    def report(id_: str, when: str, value: float) -> dict[str, Any]:
        member = observation(f"{id_}-k", K, value, "mmol/L")
        del member["effectiveDateTime"]
        return {"resourceType": "DiagnosticReport", "id": id_, "status": "final",
                "code": {"coding": [{"system": "http://loinc.org", "code": "24321-2"}]},
                "subject": {"reference": "Patient/p1"}, "effectiveDateTime": when,
                "contained": [member], "result": [{"reference": f"#{id_}-k"}]}
    out = interpret(client, bundle(patient(), report("r1", "2026-11-20T08:00:00Z", 4.4),
                                   report("r2", "2026-11-21T08:00:00Z", 3.0)))
    k = by_id(out)
    assert codes(k["r1-k"]) == ["N"] and codes(k["r2-k"]) == ["L", "D"]


def test_the_answer_with_history_conforms_to_the_contract(client, conform):
    resp = post(client, bundle(observation("k1", K, 4.4, "mmol/L", when="2026-11-19T08:00:00Z"),
                               observation("k2", K, 3.0, "mmol/L", when="2026-11-21T08:00:00Z")))
    conform("post", "/fhir/$interpret", resp)
    assert resp.status_code == 200


@pytest.mark.server
def test_gunicorn_marks_the_newest_potassium_d_against_the_earlier_one(tmp_path):
    with gunicorn(tmp_path) as port:
        body = bundle(patient(), observation("k-then", K, 4.4, "mmol/L", when="2026-11-19T08:00:00Z"),
                      observation("k-now", K, 3.0, "mmol/L", when="2026-11-21T08:00:00Z"))
        req = urllib.request.Request(f"http://127.0.0.1:{port}/fhir/$interpret", data=json.dumps(body).encode(),
                                     headers={**AUTH, "Content-Type": "application/fhir+json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("application/fhir+json")
            out = json.load(resp)
    k = by_id(out)
    assert codes(k["k-now"]) == ["L", "D"] and codes(k["k-then"]) == ["N"]
    assert change_notes(k["k-now"])[0].startswith("[warning] Changed from 4.4 to 3.0 mmol/L over 2 days")

"""POST /fhir/$interpret with the real public FHIR examples and our own fixtures.

Every response is checked to be FHIR R4 by structure (fhir.resources R4B), and every Observation sent
is either returned interpreted or named in the OperationOutcome."""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.operationoutcome import OperationOutcome

from .fhir_fixtures import (
    INTERPRETATION, b12_administration, bundle, example, observation, patient,
)

FHIR = "application/fhir+json"


def post(client, body: Any, content_type: str = FHIR):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/fhir/$interpret", data=data, content_type=content_type)


def interpret(client, body: Any) -> dict[str, Any]:
    resp = post(client, body)
    assert resp.status_code == 200, resp.get_data(as_text=True)[:2000]
    assert resp.mimetype == FHIR
    out = resp.get_json()
    Bundle.model_validate(out)  # every output validates as R4
    assert out["type"] == "collection"
    _nothing_lost(body, out)
    return out


def _observation_paths(body: dict[str, Any]) -> dict[str, str | None]:
    """FHIRPath -> id of every Observation sent."""
    paths: dict[str, str | None] = {}
    resources = [(f"Bundle.entry[{i}].resource", e["resource"]) for i, e in enumerate(body.get("entry", []))] \
        if body["resourceType"] == "Bundle" else [(body["resourceType"], body)]
    for path, res in resources:
        if res["resourceType"] == "Observation":
            paths[path] = res.get("id")
        for j, inner in enumerate(res.get("contained", [])):
            if inner["resourceType"] == "Observation":
                paths[f"{path}.contained[{j}]"] = inner.get("id")
    return paths


def _nothing_lost(body: dict[str, Any], out: dict[str, Any]) -> None:
    """Each Observation sent comes back interpreted, or the OperationOutcome names it by FHIRPath."""
    returned = {o.get("id") for o in observations(out)}
    expressions = [e for i in outcome_of(out)["issue"] for e in i.get("expression", [])]
    for path, id_ in _observation_paths(body).items():
        named = any(e == path or e.startswith(path + ".") for e in expressions)
        assert id_ in returned or named, (path, id_)


def observations(out: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "Observation"]


def by_id(out: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {o["id"]: o for o in observations(out)}


def outcome_of(out: dict[str, Any]) -> dict[str, Any]:
    found = [e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "OperationOutcome"]
    assert len(found) == 1
    return found[0]


def findings(out: dict[str, Any]) -> list[str]:
    return [e["resource"]["code"]["text"] for e in out["entry"] if e["resource"]["resourceType"] == "DetectedIssue"]


def flag(obs: dict[str, Any]) -> str | None:
    codes = [c["code"] for i in obs["interpretation"] for c in i.get("coding", []) if c["system"] == INTERPRETATION]
    return codes[0] if codes else None


# ---------------------------------------------------------------- the real public examples

def test_us_core_potassium_is_judged_against_the_laboratorys_own_range(client):
    sent = example("us-core_observation-serum-potassium.json")
    out = interpret(client, sent)
    k = by_id(out)["serum-potassium"]
    # 5.4 mmol/L: high against our default 3.5-5.1, normal against the lab's 3.5-5.5, which wins.
    assert flag(k) == "N" and k["interpretation"][0]["text"] == "normal"
    assert k["referenceRange"] == sent["referenceRange"]  # the range used is the one that came in
    assert {key: k[key] for key in sent if key not in ("interpretation", "note")} == \
           {key: sent[key] for key in sent if key not in ("interpretation", "note")}


def test_us_core_calcium_without_a_ucum_code_is_read_from_its_unit_text(client):
    out = interpret(client, example("us-core_observation-serum-calcium.json"))
    ca = by_id(out)["serum-calcium"]
    assert flag(ca) == "L" and any("[info]" in n["text"] or "[warning]" in n["text"] for n in ca["note"])


def test_us_core_report_alone_names_every_result_it_could_not_find(client):
    out = interpret(client, example("us-core_diagnosticreport-metabolic-panel.json"))
    assert observations(out) == []
    missing = [i for i in outcome_of(out)["issue"] if i["code"] == "not-found"]
    assert len(missing) == 8 and all(i["expression"] == ["DiagnosticReport"] for i in missing)


def test_us_core_report_in_a_bundle_with_its_observations(client):
    report = example("us-core_diagnosticreport-metabolic-panel.json")
    k, ca = example("us-core_observation-serum-potassium.json"), example("us-core_observation-serum-calcium.json")
    out = interpret(client, bundle(report, k, ca, patient("example", "female", "1963-01-01")))
    assert {i: flag(o) for i, o in by_id(out).items()} == {"serum-potassium": "N", "serum-calcium": "L"}
    assert len([i for i in outcome_of(out)["issue"] if i["code"] == "not-found"]) == 6


def test_general_health_panel_bundle(client):
    sent = example("fhir-r4-spec_bundle-ghp-general-health-panel.json")
    out = interpret(client, sent)
    got = {o["code"]["coding"][0]["code"]: (o["valueQuantity"]["value"], flag(o)) for o in observations(out)}
    assert got == {"2823-3": (4.2, "N"), "2000-8": (2.38, "N"), "1751-7": (42, "N")}
    assert findings(out) == ["albumin-adjusted-calcium"]  # the estimate, as a panel finding
    issues = outcome_of(out)["issue"]
    not_ours = [i for i in issues if i["code"] == "not-supported" and "LOINC" in i["diagnostics"]]
    total = sum(1 for e in sent["entry"] if e["resource"]["resourceType"] == "Observation")
    panels = [i for i in issues if "panel; its members" in i["diagnostics"]]
    assert len(not_ours) + len(panels) + 3 == total
    assert out["meta"]["tag"][0]["code"] and any("not a diagnosis" in i["diagnostics"] for i in issues)


# ---------------------------------------------------------------- our own fixtures

def test_b12_and_magnesium_by_mass_and_by_moles(client):
    out = interpret(client, bundle(
        patient(), observation("b12", "2132-9", 180, "pg/mL"), observation("b12-molar", "14685-2", 120, "pmol/L"),
        observation("mg", "19123-9", 1.5, "mg/dL"), observation("mg-molar", "2601-3", 0.9, "mmol/L")))
    got = {i: (flag(o), o["interpretation"][0]["text"]) for i, o in by_id(out).items()}
    assert got == {"b12": ("L", "deficient"), "b12-molar": ("L", "deficient"),
                   "mg": ("L", "low"), "mg-molar": ("N", "normal")}
    ranges = by_id(out)["b12"]["referenceRange"][-1]
    assert ranges["low"] == {"value": 200, "unit": "pg/mL", "system": "http://unitsofmeasure.org", "code": "pg/mL"}
    assert "labinterp" in ranges["text"]
    assert any(".txt" in n["text"] for n in by_id(out)["b12"]["note"])  # notes cite the seed files


def test_unit_text_only_and_comparators(client):
    out = interpret(client, bundle(observation("k", "2823-3", 3.1, "mEq/L", ucum=False),
                                   observation("b12", "2132-9", 50, "pg/mL", comparator="<")))
    assert flag(by_id(out)["k"]) == "L"
    assert by_id(out)["b12"]["interpretation"][0]["text"] == "deficient"


def test_whole_blood_codes(client):
    out = interpret(client, bundle(observation("k", "6298-4", 6.5, "mmol/L"), observation("ca", "49765-1", 9.5, "mg/dL")))
    assert flag(by_id(out)["k"]) == "HH" and flag(by_id(out)["ca"]) == "N"


# A dose two days before a low potassium: the note that asks whether it was the first one. Without
# the start of replacement, a first dose cannot be told from a maintenance dose.
INJECTED = "potassium-low-b12-injection-start-unknown"


def test_low_potassium_two_days_after_a_cyanocobalamin_injection(client):
    out = interpret(client, bundle(patient(), b12_administration(), observation("k", "2823-3", 3.1, "mmol/L")))
    assert flag(by_id(out)["k"]) == "L"
    assert INJECTED in findings(out) and "potassium-low-after-b12-injection" not in findings(out)
    issue = next(e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "DetectedIssue"
                 and e["resource"]["code"]["coding"][0]["code"] == INJECTED)
    assert issue["patient"] == {"reference": "Patient/p1"} and issue["severity"] == "low"  # an info note
    assert issue["implicated"][0]["reference"].startswith("urn:uuid:")


@pytest.mark.parametrize("medication, expect_injection", [
    (b12_administration(), True),
    (b12_administration(route=None), True),  # no route: read as an injection, and said so
    (b12_administration(route="26643006"), False),  # oral: a supplement
    (b12_administration(resource="MedicationStatement", text="hydroxocobalamin 1 mg/mL", status="completed"), True),
    (b12_administration(when="2026-11-22T09:00:00Z"), False),  # after the result
    (b12_administration(status="entered-in-error"), False),
    (b12_administration(subject="Patient/someone-else"), False),
])
def test_which_medication_resources_count_as_a_recent_injection(client, medication, expect_injection):
    out = interpret(client, bundle(patient(), medication, observation("k", "2823-3", 3.1, "mmol/L")))
    assert (INJECTED in findings(out)) == expect_injection


def test_a_b12_statement_period_start_is_when_replacement_began(client):
    """MedicationStatement.effectivePeriod.start of a B12 product is the start of treatment, so a low
    potassium two days later gets the first-days note; a course begun a year ago does not."""
    def statement(start: str) -> dict:
        res = b12_administration(resource="MedicationStatement", text="hydroxocobalamin 1 mg/mL")
        del res["effectiveDateTime"]
        res["effectivePeriod"] = {"start": start}
        return res
    k = observation("k", "2823-3", 3.1, "mmol/L")
    early = interpret(client, bundle(patient(), statement("2026-11-19T09:00:00Z"), k))
    assert "potassium-low-after-b12-injection" in findings(early)
    late = interpret(client, bundle(patient(), statement("2025-11-19T09:00:00Z"), b12_administration(), k))
    assert "potassium-low-after-b12-injection" not in findings(late) and INJECTED not in findings(late)


def test_medications_by_rxnorm_code_reach_the_notes(client):
    metformin = {"resourceType": "MedicationStatement", "id": "m", "status": "active", "subject": {"reference": "Patient/p1"},
                 "medicationCodeableConcept": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                                                           "code": "6809"}]}, "effectiveDateTime": "2025-01-01"}
    with_med = interpret(client, bundle(patient(), metformin, observation("b12", "2132-9", 180, "pg/mL")))
    without = interpret(client, bundle(patient(), observation("b12", "2132-9", 180, "pg/mL")))
    assert len(by_id(with_med)["b12"]["note"]) > len(by_id(without)["b12"]["note"])


def test_age_from_birth_date_selects_the_calcium_partition(client):
    young = interpret(client, bundle(patient(birth="1986-01-01"), observation("ca", "17861-6", 8.7, "mg/dL")))
    old = interpret(client, bundle(patient(birth="1950-01-01"), observation("ca", "17861-6", 8.7, "mg/dL")))
    assert (flag(by_id(young)["ca"]), flag(by_id(old)["ca"])) == ("N", "L")


@pytest.mark.parametrize("obs, code, words", [
    (observation("k", "2823-3", 3.1, "mmol/L", status="entered-in-error"), "business-rule", "entered in error"),
    (observation("k", "2823-3", 3.1, "mmol/L", status="cancelled"), "business-rule", "cancelled"),
    (observation("k", "2823-3", None, None, dataAbsentReason={"text": "specimen hemolysed"}), "incomplete", "no value"),
    (observation("k", "2823-3", 3.1, "g/L"), "not-supported", "not accepted"),
    (observation("k", "2823-3", 3.1, "furlongs"), "not-supported", "unknown unit"),
    (observation("x", "718-7", 140, "g/L"), "not-supported", "not an analyte"),
    (observation("k", "2823-3", 3.1, "mmol/L", comparator="ad"), "not-supported", "comparator"),
])
def test_observations_not_interpreted_are_named_with_the_reason(client, obs, code, words):
    out = interpret(client, bundle(obs, observation("ok", "2823-3", 4.0, "mmol/L")))
    assert list(by_id(out)) == ["ok"]
    named = [i for i in outcome_of(out)["issue"] if i.get("expression", [""])[0].startswith("Bundle.entry[0]")]
    assert len(named) == 1 and named[0]["code"] == code and words in named[0]["diagnostics"], named


def test_a_report_with_contained_observations_and_a_panel_with_members(client):
    report = {"resourceType": "DiagnosticReport", "id": "r", "status": "final", "code": {"text": "electrolytes"},
              "effectiveDateTime": "2026-11-21T08:00:00Z", "subject": {"reference": "Patient/p1"},
              "contained": [observation("k", "2823-3", 2.5, "mmol/L"), observation("mg", "19123-9", 2.0, "mg/dL")],
              "result": [{"reference": "#k"}, {"reference": "#mg"}]}
    out = interpret(client, report)
    assert {i: flag(o) for i, o in by_id(out).items()} == {"k": "LL", "mg": "N"}
    members = [observation(f"m{i}", c, v, u, when=None) for i, (c, v, u) in
               enumerate([("2823-3", 3.0, "mmol/L"), ("17861-6", 9.0, "mg/dL")])]
    for m in members:
        del m["effectiveDateTime"]
    panel = {"resourceType": "Observation", "id": "bmp", "status": "final", "code": {"coding": [
        {"system": "http://loinc.org", "code": "24321-2"}]}, "effectiveDateTime": "2026-11-21T08:00:00Z",
        "hasMember": [{"reference": "Observation/m0"}, {"reference": "Observation/m1"}]}
    out = interpret(client, bundle(panel, *members, kind="transaction"))
    assert {i: flag(o) for i, o in by_id(out).items()} == {"m0": "L", "m1": "N"}


def test_a_disagreeing_laboratory_flag_is_kept_in_words(client):
    obs = observation("k", "2823-3", 3.1, "mmol/L", interpretation=[{"coding": [{"system": INTERPRETATION, "code": "N"}]}])
    k = by_id(interpret(client, obs))["k"]
    assert flag(k) == "L" and any("flagged this result N" in n["text"] for n in k["note"])


# ---------------------------------------------------------------- hostile FHIR

@pytest.mark.parametrize("body, status, code, where", [
    ({"resourceType": "Patient", "id": "x"}, 422, "not-supported", "resourceType"),
    ({"resourceType": "Bundle", "type": "document", "entry": []}, 422, "value", "Bundle.type"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Nope"}}]},
     422, "not-supported", "Bundle.entry[0].resource.resourceType"),
    ({"resourceType": "Observation", "code": {"text": "k"}}, 422, "required", "Observation.status"),
    ({"resourceType": "DiagnosticReport", "status": None, "code": None}, 422, "structure", "DiagnosticReport.code"),
    ({"resourceType": "Bundle", "type": "collection",
      "entry": [{"resource": {"resourceType": "Observation", "status": "done", "code": {}}}]},
     422, "value", "Bundle.entry[0].resource.status"),
    ({"resourceType": "Observation", "status": "final", "code": {"text": "k"},
      "valueQuantity": {"value": float("nan")}}, 422, "value", "Observation"),
    ([1, 2], 400, "structure", None),
])
def test_hostile_requests_get_an_operation_outcome_naming_the_element(client, body, status, code, where):
    resp = post(client, json.dumps(body, allow_nan=True))
    assert resp.status_code == status and resp.mimetype == FHIR
    out = resp.get_json()
    OperationOutcome.model_validate(out)
    assert out["issue"][0]["code"] == code and out["issue"][0]["severity"] == "error"
    if where:
        assert where in [e for i in out["issue"] for e in i.get("expression", [])]


def test_a_resource_the_r4_models_refuse_is_named_and_the_others_are_read(client, conform):
    """One malformed resource never fails the others: it is not read, and the OperationOutcome of the
    200 answer names it by FHIRPath."""
    bad = observation("bad", "2823-3", 3.1, "mmol/L", bogus=1)
    good = observation("k", "2823-3", 3.1, "mmol/L")
    out = conform("post", "/fhir/$interpret", post(client, bundle(bad, good)))
    interpreted = [e["resource"]["id"] for e in out["entry"] if e["resource"]["resourceType"] == "Observation"]
    assert interpreted == ["k"]
    issues = next(e["resource"] for e in out["entry"] if e["resource"]["resourceType"] == "OperationOutcome")["issue"]
    assert any(i["severity"] == "error" and "Bundle.entry[0].resource.bogus" in i.get("expression", []) for i in issues)
    alone = conform("post", "/fhir/$interpret", post(client, bad))
    assert [e["resource"]["resourceType"] for e in alone["entry"]] == ["OperationOutcome"]
    assert any("Observation.bogus" in i.get("expression", []) for i in alone["entry"][0]["resource"]["issue"])


def test_ten_thousand_entries_are_refused_as_too_costly(client):
    big = {"resourceType": "Bundle", "type": "collection",
           "entry": [{"resource": {"resourceType": "Observation", "status": "final", "code": {"text": "k"}}}] * 10_000}
    resp = post(client, big)
    assert resp.status_code in (413, 422) and resp.mimetype == FHIR
    assert resp.get_json()["issue"][0]["code"] == "too-costly"


@pytest.mark.parametrize("method, status", [("get", 405), ("put", 405)])
def test_http_errors_on_fhir_paths_are_operation_outcomes(client, method, status):
    resp = getattr(client, method)("/fhir/$interpret")
    assert resp.status_code == status and resp.mimetype == FHIR and "POST" in resp.headers["Allow"]
    assert client.get("/fhir/nothing-here").mimetype == FHIR


def test_media_type_and_plain_json_and_the_contract(client, conform):
    obs = observation("k", "2823-3", 3.1, "mmol/L")
    for resp, status in ((post(client, obs, "text/plain"), 415), (post(client, obs, "application/json"), 200),
                         (post(client, "{", FHIR), 400), (post(client, {"resourceType": "Patient"}), 422)):
        assert resp.status_code == status
        conform("post", "/fhir/$interpret", resp)


def test_no_value_from_the_request_is_logged(client, caplog):
    caplog.set_level("DEBUG")
    interpret(client, bundle(patient(birth="1961-02-03"), observation("k", "2823-3", 3.17, "mmol/L")))
    text = caplog.text
    assert "3.17" not in text and "1961" not in text and "p1" not in re.sub(r"http\S+", "", text)


@pytest.mark.parametrize("kind", ["collection", "batch", "transaction", "searchset"])
def test_every_accepted_bundle_type(client, kind):
    out = interpret(client, bundle(patient(), observation("mg", "19123-9", 1.5, "mg/dL"), kind=kind))
    assert flag(by_id(out)["mg"]) == "L"


def test_members_take_the_time_a_panel_takes_from_its_report(client):
    k = observation("k", "2823-3", 3.1, "mmol/L")
    del k["effectiveDateTime"]
    panel = {"resourceType": "Observation", "id": "bmp", "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "24321-2"}]},
             "hasMember": [{"reference": "Observation/k"}]}
    report = {"resourceType": "DiagnosticReport", "id": "r", "status": "final", "code": {"text": "bmp"},
              "subject": {"reference": "Patient/p1"}, "effectiveDateTime": "2026-11-21T08:00:00Z",
              "result": [{"reference": "Observation/bmp"}]}
    out = interpret(client, bundle(patient(), b12_administration(), report, panel, k))
    assert INJECTED in findings(out)  # the time and subject reached the member


def test_a_dose_for_another_patient_does_not_count_when_neither_patient_is_sent(client):
    dose = b12_administration(subject="Patient/someone-else")
    out = interpret(client, bundle(dose, observation("k", "2823-3", 3.1, "mmol/L", subject="Patient/not-sent")))
    assert INJECTED not in findings(out)
    same = interpret(client, bundle(b12_administration(subject="Patient/not-sent"),
                                    observation("k", "2823-3", 3.1, "mmol/L", subject="Patient/not-sent")))
    assert INJECTED in findings(same)  # the same unknown patient still matches

"""CDS Hooks 2.0: discovery, cards from prefetched resources, 412 for a missing prefetch."""
from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core import load_knowledge

from .core_helpers import RANGES, load_yaml
from .fhir_fixtures import b12_administration, observation, patient

ANALYTE_KEYS = list(load_knowledge(RANGES).analytes)  # one prefetch key per analyte of the knowledge
CONTEXT_KEYS = ("medicationAdministrations", "medicationStatements")
URL = "/cds-services/labinterp-panel"


def searchset(*resources: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in resources]}


def hook_request(**prefetch: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"patient": patient(), **dict.fromkeys(ANALYTE_KEYS)}
    base.update(prefetch)
    return {"hook": "patient-view", "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
            "context": {"userId": "Practitioner/1", "patientId": "p1"}, "prefetch": base}


def call(client, body: dict[str, Any]) -> list[dict[str, Any]]:
    resp = client.post(URL, json=body)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    out = resp.get_json()
    for card in out["cards"]:
        assert len(card["summary"]) < 140 and card["indicator"] in ("info", "warning", "critical")
        assert card["source"]["label"].startswith("labinterp (knowledge ") and card["detail"]
        assert set(card) == {"uuid", "summary", "indicator", "detail", "source"}  # nothing empty or null
    return out["cards"]


def test_discovery_lists_one_patient_view_service_with_a_prefetch_per_analyte(client, conform):
    resp = client.get("/cds-services")
    conform("get", "/cds-services", resp)
    (service,) = resp.get_json()["services"]
    assert service["hook"] == "patient-view" and service["id"] == "labinterp-panel"
    assert service["prefetch"]["patient"] == "Patient/{{context.patientId}}"
    for key in ANALYTE_KEYS:
        codes = [c["code"] for c in load_yaml(f"{key}.yaml")["loinc"]]
        template = service["prefetch"][key]
        assert template.startswith("Observation?patient={{context.patientId}}&code=")
        assert template.count("http://loinc.org|") == len(codes) and all(f"|{c}" in template for c in codes)
        assert template.endswith("&_sort=-date&_count=5")  # the newest and its history (test_cds_history.py)


def test_low_potassium_after_a_b12_injection(client, conform):
    body = hook_request(potassium=searchset(observation("k", "2823-3", 3.1, "mmol/L")),
                        medicationAdministrations=searchset(b12_administration()))
    resp = client.post(URL, json=body)
    conform("post", "/cds-services/{service_id}", resp)
    cards = call(client, body)
    assert [c["indicator"] for c in cards] == ["warning", "info"]  # without the start of treatment it asks
    assert cards[0]["summary"].startswith("Potassium 3.1 mmol/L: low")
    assert "B12 injection" in cards[1]["summary"]
    assert "[Cyanocobalamin Injection, USP: prescribing information](https://" in cards[1]["detail"]


def test_a_critical_result_gives_a_critical_card_and_normal_results_none(client):
    critical = call(client, hook_request(potassium=searchset(observation("k", "2823-3", 2.4, "mmol/L"))))
    assert critical[0]["indicator"] == "critical" and "critically low" in critical[0]["summary"]
    normal = call(client, hook_request(potassium=searchset(observation("k", "2823-3", 4.2, "mmol/L")),
                                       calcium=searchset(observation("ca", "17861-6", 9.4, "mg/dL"))))
    assert normal == []


def test_only_the_newest_result_of_each_analyte_counts(client):
    old_low = observation("k-old", "2823-3", 3.0, "mmol/L", when="2026-10-01T08:00:00Z")
    new_normal = observation("k-new", "2823-3", 4.4, "mmol/L", when="2026-11-20T08:00:00Z")
    assert call(client, hook_request(potassium=searchset(old_low, new_normal))) == []
    assert len(call(client, hook_request(potassium=searchset(old_low)))) == 1


@pytest.mark.parametrize("key", ["patient", *ANALYTE_KEYS])
def test_a_needed_prefetch_that_was_not_sent_breaks_the_contract(client, conform, key):
    """The contract requires the keys the service needs; without one the call is invalid: 422 naming
    it (CDS Hooks' 412 is for a service that cannot fetch what it needs; this contract asks for it)."""
    body = hook_request()
    del body["prefetch"][key]
    resp = client.post(URL, json=body)
    conform("post", "/cds-services/{service_id}", resp)
    assert resp.status_code == 422 and resp.mimetype == "application/problem+json"
    assert resp.get_json()["title"] == "Prefetch needed"
    assert resp.get_json()["errors"] == [{"pointer": f"/prefetch/{key}", "message": resp.get_json()["errors"][0]["message"]}]


def test_optional_medication_prefetch_may_be_left_out_and_null_means_no_data(client):
    low = searchset(observation("k", "2823-3", 3.1, "mmol/L"))
    left_out = hook_request(potassium=low)
    assert not set(CONTEXT_KEYS) & set(left_out["prefetch"])
    null = hook_request(potassium=low, medicationAdministrations=None, medicationStatements=None)
    injected = hook_request(potassium=low, medicationAdministrations=searchset(b12_administration()))
    summaries = [[c["summary"] for c in call(client, body)] for body in (left_out, null, injected)]
    assert summaries[0] == summaries[1] and len(summaries[0]) == 1  # the low result, nothing about treatment
    assert summaries[0][0].startswith("Potassium 3.1 mmol/L: low")
    assert len(summaries[2]) == 2 and "B12 injection" in summaries[2][1]  # the key, when sent, is read
    assert call(client, hook_request()) == []  # nothing prefetched: nothing to say


@pytest.mark.parametrize("body, status, pointer", [
    (dict(hook_request(), hook="order-sign"), 422, "/hook"),
    ({k: v for k, v in hook_request().items() if k != "context"}, 422, "/context"),
    (hook_request(potassium={"resourceType": "Observation", "status": "final"}), 422, "/prefetch/potassium"),
    (hook_request(potassium=searchset({"resourceType": "Nope"})), 422, "/prefetch/potassium"),
    (hook_request(potassium=[1]), 422, "/prefetch/potassium"),
])
def test_invalid_requests_are_located(client, body, status, pointer):
    resp = client.post(URL, json=body)
    assert resp.status_code == status
    assert pointer in [e["pointer"] for e in resp.get_json()["errors"]]


def test_unknown_service_is_a_404(client):
    resp = client.post("/cds-services/other", json=hook_request())
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"


values = st.floats(min_value=0.2, max_value=25000, allow_nan=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(b12=values, k=values, mg=values, ca=values, injected=st.booleans())
def test_any_panel_gives_short_summaries_and_the_band_of_each_abnormal_result(client, b12, k, mg, ca, injected):
    body = hook_request(vitamin_b12=searchset(observation("b", "2132-9", round(b12, 1), "pg/mL")),
                        potassium=searchset(observation("k", "2823-3", round(k, 2), "mmol/L")),
                        magnesium=searchset(observation("m", "19123-9", round(mg, 2), "mg/dL")),
                        calcium=searchset(observation("c", "17861-6", round(ca, 2), "mg/dL")),
                        medicationAdministrations=searchset(b12_administration()) if injected else None)
    cards = call(client, copy.deepcopy(body))
    panel = {"results": [{"analyte": a, "value": v, "unit": u} for a, v, u in
                         [("vitamin_b12", round(b12, 1), "pg/mL"), ("potassium", round(k, 2), "mmol/L"),
                          ("magnesium", round(mg, 2), "mg/dL"), ("calcium", round(ca, 2), "mg/dL")]],
             "patient": {"age_years": 66.72, "sex": "female"}, "collected_at": "2026-11-21T08:00:00Z",
             **({"context": {"b12_injection_at": "2026-11-19T09:00:00Z"}} if injected else {})}
    report = client.post("/v1/interpretations", json=panel).get_json()
    abnormal = [r for r in report["results"] if not (r["flag"] == "N" and r["band"] == "normal")]
    assert len(cards) == len(abnormal) + len(report["notes"])
    assert [c["indicator"] == "critical" for c in cards[:len(abnormal)]] == [r["critical"] for r in abnormal]


def test_a_prefetched_resource_the_r4_models_refuse_is_said_in_a_card(client):
    broken = observation("k-bad", "2823-3", 3.1, "mmol/L")
    broken["bogus"] = 1
    cards = call(client, hook_request(potassium=searchset(broken, observation("k", "2823-3", 3.1, "mmol/L"))))
    unread = [c for c in cards if "not FHIR R4: not read" in c["summary"]]
    assert len(unread) == 1 and unread[0]["indicator"] == "info" and "`potassium`" in unread[0]["detail"]
    assert any(c["summary"].startswith("Potassium 3.1 mmol/L: low") for c in cards)  # the other was read


def test_a_prefetch_key_holding_the_wrong_resource_type_is_refused(client, conform):
    resp = client.post(URL, json=hook_request(patient=observation("k", "2823-3", 3.1, "mmol/L")))
    conform("post", "/cds-services/{service_id}", resp)
    assert resp.status_code == 422 and resp.get_json()["errors"][0]["pointer"] == "/prefetch/patient"

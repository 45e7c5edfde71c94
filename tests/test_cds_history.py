"""CDS Hooks with history (issue 15): the discovery prefetch asks for the five newest results of each
analyte; the newest is interpreted with the others as its history, and a card tells of a significant
change ("Potassium 3.0 mmol/L, down from 4.4 two days earlier")."""
from __future__ import annotations

import json
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import AUTH
from .fhir_fixtures import observation, patient
from .servers import gunicorn
from .test_cds import ANALYTE_KEYS, URL, call, hook_request, searchset

K = "2823-3"
THREE_POTASSIUMS = searchset(  # as the EHR answers the template: newest first
    observation("k3", K, 3.0, "mmol/L", when="2026-11-21T08:00:00Z"),
    observation("k2", K, 4.4, "mmol/L", when="2026-11-19T08:00:00Z"),
    observation("k1", K, 4.6, "mmol/L", when="2026-11-15T08:00:00Z"))


def test_discovery_asks_for_the_five_newest_results_of_each_analyte(client):
    (service,) = client.get("/cds-services").get_json()["services"]
    for key in ANALYTE_KEYS:
        template = service["prefetch"][key]
        assert template.startswith("Observation?patient={{context.patientId}}&code=http://loinc.org|")
        assert template.endswith("&_sort=-date&_count=5")


def test_three_potassiums_give_one_card_telling_of_the_fall_from_the_previous_one(client, conform):
    body = hook_request(potassium=THREE_POTASSIUMS)
    conform("post", "/cds-services/{service_id}", client.post(URL, json=body))
    (card,) = call(client, body)
    assert card["summary"] == "Potassium 3.0 mmol/L, down from 4.4 two days earlier: low (reference 3.5–5.1 mmol/L)"
    assert card["indicator"] == "warning"
    assert "Collected 2026-11-21." in card["detail"]
    assert "Results (mmol/L, oldest first): 4.6 (2026-11-15), 4.4 (2026-11-19), 3 (2026-11-21)." in card["detail"]
    assert "Changed from 4.4 to 3.0 mmol/L over 2 days (change -1.4 mmol/L, -31.8%)" in card["detail"]


def test_the_order_of_the_searchset_does_not_matter(client):
    oldest_first = searchset(*reversed([e["resource"] for e in THREE_POTASSIUMS["entry"]]))
    assert [c["summary"] for c in call(client, hook_request(potassium=oldest_first))] == \
           [c["summary"] for c in call(client, hook_request(potassium=THREE_POTASSIUMS))]


def test_a_critical_fall_keeps_its_critical_indicator(client):
    (card, *_) = call(client, hook_request(potassium=searchset(
        observation("k2", K, 2.4, "mmol/L", when="2026-11-21T08:00:00Z"),
        observation("k1", K, 4.4, "mmol/L", when="2026-11-19T08:00:00Z"))))
    assert card["indicator"] == "critical"
    assert card["summary"].startswith("Potassium 2.4 mmol/L, down from 4.4 two days earlier: critically low")
    assert "This critical value is new" in card["detail"]


def test_a_significant_change_within_the_normal_range_gets_a_warning_card_in_hours(client):
    (card,) = call(client, hook_request(potassium=searchset(
        observation("k2", K, 3.8, "mmol/L", when="2026-11-21T08:00:00Z"),
        observation("k1", K, 5.0, "mmol/L", when="2026-11-20T14:00:00Z"))))
    assert card["summary"] == "Potassium 3.8 mmol/L, down from 5.0 18 hours earlier: normal (reference 3.5–5.1 mmol/L)"
    assert card["indicator"] == "warning"
    (rise,) = call(client, hook_request(potassium=searchset(
        observation("k2", K, 4.9, "mmol/L", when="2026-11-21T08:00:00Z"),
        observation("k1", K, 3.6, "mmol/L", when="2026-11-21T02:00:00Z"))))
    assert rise["summary"].startswith("Potassium 4.9 mmol/L, up from 3.6 six hours earlier: normal")


def test_a_change_that_is_not_significant_is_not_told_in_the_summary(client):
    low = searchset(observation("k2", K, 3.4, "mmol/L", when="2026-11-21T08:00:00Z"),
                    observation("k1", K, 4.2, "mmol/L", when="2026-11-20T08:00:00Z"))
    (card,) = call(client, hook_request(potassium=low))
    assert card["summary"] == "Potassium 3.4 mmol/L: low (reference 3.5–5.1 mmol/L)"
    assert "Results (mmol/L, oldest first): 4.2 (2026-11-20), 3.4 (2026-11-21)." in card["detail"]
    normal = searchset(observation("k2", K, 4.0, "mmol/L", when="2026-11-21T08:00:00Z"),
                       observation("k1", K, 4.4, "mmol/L", when="2026-11-20T08:00:00Z"))
    assert call(client, hook_request(potassium=normal)) == []


def test_the_earlier_value_is_given_in_the_unit_of_the_newest(client):
    (card,) = call(client, hook_request(calcium=searchset(
        observation("ca2", "2000-8", 2.0, "mmol/L", when="2026-11-21T08:00:00Z"),
        observation("ca1", "17861-6", 9.6, "mg/dL", when="2026-11-20T08:00:00Z"))))
    assert card["summary"].startswith("Calcium, total 2.0 mmol/L, down from 2.40 24 hours earlier: low")  # 9.6 mg/dL


def test_a_result_of_another_subject_in_the_prefetch_is_not_history(client):
    (card,) = call(client, hook_request(potassium=searchset(
        observation("k2", K, 3.0, "mmol/L", when="2026-11-21T08:00:00Z"),
        observation("k1", K, 4.4, "mmol/L", when="2026-11-19T08:00:00Z", subject="Patient/someone-else"))))
    assert card["summary"] == "Potassium 3.0 mmol/L: low (reference 3.5–5.1 mmol/L)"


def test_cards_carry_no_patient_identifier(client):
    person = {**patient("mrn-7731-secret"), "name": [{"family": "Zwicky-Hartmann", "given": ["Ottilie"]}],
              "identifier": [{"system": "urn:oid:1.2.3", "value": "MRN-998877"}]}
    subject = "Patient/mrn-7731-secret"
    body = hook_request(patient=person, potassium=searchset(
        observation("k-2026-a", K, 2.4, "mmol/L", when="2026-11-21T08:00:00Z", subject=subject),
        observation("k-2026-b", K, 4.4, "mmol/L", when="2026-11-19T08:00:00Z", subject=subject)))
    body["context"]["patientId"] = "mrn-7731-secret"
    text = json.dumps(call(client, body))
    assert "down from 4.4" in text
    for secret in ("mrn-7731-secret", "Zwicky", "Ottilie", "MRN-998877", "k-2026-a", "1960-03-01"):
        assert secret not in text


times = st.integers(min_value=1, max_value=24 * 30)  # hours between the two results
COLLECTED = datetime(2026, 11, 21, 8, tzinfo=UTC)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(then=st.floats(min_value=0.5, max_value=9.5), now=st.floats(min_value=0.5, max_value=9.5), hours=times,
       analyte=st.sampled_from([("potassium", "Potassium", K, "mmol/L"), ("magnesium", "Magnesium", "19123-9", "mg/dL"),
                                ("calcium", "Calcium, total", "17861-6", "mg/dL")]))
def test_the_summary_tells_a_change_exactly_when_the_json_api_finds_it_significant(client, then, now, hours, analyte):
    """The same two results through the JSON API: a card says "up from"/"down from" exactly when the
    delta there is significant, in the direction it gives; every summary stays under 140 characters."""
    key, name, code, unit = analyte
    then, now = round(then, 1), round(now, 1)
    earlier = (COLLECTED - timedelta(hours=hours)).isoformat().replace("+00:00", "Z")
    cards = call(client, hook_request(**{key: searchset(observation("now", code, now, unit, when="2026-11-21T08:00:00Z"),
                                                        observation("then", code, then, unit, when=earlier))}))
    panel = {"collected_at": "2026-11-21T08:00:00Z", "patient": {"age_years": 66.72, "sex": "female"},
             "results": [{"analyte": key, "value": now, "unit": unit}],
             "history": [{"analyte": key, "value": then, "unit": unit, "collected_at": earlier}]}
    resp = client.post("/v1/interpretations", json=panel)
    assert resp.status_code == 200, resp.get_data(as_text=True)
    delta = resp.get_json()["results"][0]["delta"]
    assert delta["hours"] == hours
    told = [c["summary"] for c in cards if c["summary"].startswith(f"{name} {now} {unit}, ")]
    if delta["significant"]:
        word = "up" if delta["change"] > 0 else "down"
        assert len(told) == 1 and told[0].startswith(f"{name} {now} {unit}, {word} from {then} "), told
    else:
        assert told == []


@pytest.mark.server
def test_gunicorn_answers_the_change_card_and_the_five_result_prefetch(tmp_path):
    with gunicorn(tmp_path) as port:
        with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/cds-services", headers=AUTH),
                                    timeout=10) as resp:
            (service,) = json.load(resp)["services"]
        req = urllib.request.Request(f"http://127.0.0.1:{port}{URL}",
                                     data=json.dumps(hook_request(potassium=THREE_POTASSIUMS)).encode(),
                                     headers={**AUTH, "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200
            cards: list[dict[str, Any]] = json.load(resp)["cards"]
    assert service["prefetch"]["potassium"].endswith("&_sort=-date&_count=5")
    assert [(c["indicator"], c["summary"]) for c in cards] == [
        ("warning", "Potassium 3.0 mmol/L, down from 4.4 two days earlier: low (reference 3.5–5.1 mmol/L)")]

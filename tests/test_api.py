"""The JSON API: the acceptance panel, every error class, headers, and conformance to openapi.yaml."""
from __future__ import annotations

import logging

import pytest

from service.api.interpretations.examples import PANEL_EXAMPLE

PATH = "/v1/interpretations"

ACCEPTANCE = {
    "context": {"b12_injection_at": "2026-11-17T08:00:00Z", "b12_therapy_started_at": "2026-11-17T08:00:00Z"},
    "collected_at": "2026-11-19T08:00:00Z",
    "results": [
        {"id": "b12", "analyte": "vitamin_b12", "value": 180, "unit": "pg/mL"},
        {"id": "k", "analyte": "potassium", "value": 3.1, "unit": "mmol/L"},
        {"id": "mg", "analyte": "magnesium", "value": 1.5, "unit": "mg/dL"},
        {"id": "ca", "analyte": "calcium", "value": 8.1, "unit": "mg/dL"},
    ],
}


def post(client, conform, body, **kw):
    resp = client.post(PATH, json=body, **kw) if "data" not in kw else client.post(PATH, **kw)
    return resp, conform("post", PATH, resp)


def test_acceptance_panel(client, conform):
    resp, data = post(client, conform, ACCEPTANCE)
    assert resp.status_code == 200
    by_id = {r["id"]: r for r in data["results"]}
    assert [r["id"] for r in data["results"]] == ["b12", "k", "mg", "ca"]
    assert (by_id["b12"]["band"], by_id["b12"]["flag"]) == ("deficient", "L")
    for rid in ("k", "mg", "ca"):
        assert (by_id[rid]["band"], by_id[rid]["flag"], by_id[rid]["critical"]) == ("low", "L", False)
    b12_notes = {n["id"] for n in by_id["b12"]["notes"]}
    assert "b12-deficient-nerve-damage" in b12_notes
    assert "potassium-low-after-b12-injection" in {n["id"] for n in data["notes"]}
    for rid in ("k", "mg", "ca"):
        assert any("cramp" in n["text"].lower() for n in by_id[rid]["notes"]), rid
    every_note = [n for r in data["results"] for n in r["notes"]] + data["notes"]
    assert all(n["sources"] for n in every_note)
    for n in every_note:  # each source by title beside its reference; never a seed document alone
        assert [c["reference"] for c in n["citations"]] == n["sources"] and all(c["title"] for c in n["citations"])
        assert any(c["kind"] != "consumer" for c in n["citations"]), n["id"]
    assert any(c["kind"] == "consumer" for n in every_note for c in n["citations"])
    assert data["knowledge_version"] and "not a diagnosis" in data["disclaimer"]


def test_units_are_normalized_and_echoed(client, conform):
    body = {"results": [{"analyte": "b12", "value": 100, "unit": "pmol/L"},
                        {"code": "2000-8", "value": 2.0, "unit": "mmol/L"},
                        {"analyte": "K", "value": 3.4, "unit": "meq/l"}]}
    _resp, data = post(client, conform, body)
    b12, ca, k = data["results"]
    assert b12["normalized"] == {"value": pytest.approx(135.537, rel=1e-4), "unit": "pg/mL", "comparator": None}
    assert b12["loinc"] == "14685-2" and b12["unit"] == "pmol/L" and b12["band"] == "deficient"
    assert ca["analyte"] == "calcium" and ca["normalized"]["value"] == pytest.approx(8.0156, rel=1e-4)
    assert ca["reference_range"]["unit"] == "mmol/L" and ca["reference_range"]["canonical"]["unit"] == "mg/dL"
    assert ca["reference_range"]["low"] == pytest.approx(8.6 / 4.0078, rel=1e-4)
    assert k["band"] == "low" and k["unit"] == "meq/l"


def test_ids_generated_in_order_and_every_result_returned(client, conform):
    body = {"results": [{"analyte": "k", "value": v, "unit": "mmol/L"} for v in (2.0, 3.0, 4.0, 5.0, 7.0)]
            + [{"id": "result-1", "analyte": "mg", "value": 2, "unit": "mg/dL"}]}
    _resp, data = post(client, conform, body)
    ids = [r["id"] for r in data["results"]]
    assert len(ids) == 6 == len(set(ids)) and ids[-1] == "result-1" and ids[0] != "result-1"
    assert [r["band"] for r in data["results"][:5]] == ["critical_low", "low", "normal", "normal", "critical_high"]
    assert [r["flag"] for r in data["results"][:5]] == ["LL", "L", "N", "N", "HH"]


def test_censored_and_lab_range(client, conform):
    body = {"results": [
        {"analyte": "b12", "value": "<150", "unit": "pg/mL"},
        {"analyte": "b12", "value": 150, "comparator": "<", "unit": "ng/L"},
        {"analyte": "b12", "value": "<250", "unit": "pg/mL"},
        {"analyte": "k", "value": 5.05, "unit": "mmol/L", "reference_range": {"low": 3.3, "high": 5.0}},
    ]}
    _resp, data = post(client, conform, body)
    r = data["results"]
    assert [x["band"] for x in r] == ["deficient", "deficient", "indeterminate", "high"]
    assert r[0]["normalized"]["comparator"] == "<" and r[2]["flag"] is None
    assert r[3]["reference_range"]["origin"] == "laboratory" and r[3]["reference_range"]["high"] == 5.0


def test_example_panel_is_accepted(client, conform):
    resp, data = post(client, conform, PANEL_EXAMPLE)
    assert resp.status_code == 200 and len(data["results"]) == 4


@pytest.mark.parametrize("body, status, pointer", [
    ({"results": []}, 422, "/results"),
    ({}, 422, "/results"),
    ({"results": [{"analyte": "b12", "value": 1, "unit": "pg/mL"}] * 101}, 422, "/results"),
    ({"results": [{"analyte": "zinc", "value": 1, "unit": "mg/dL"}]}, 422, "/results/0/analyte"),
    ({"results": [{"analyte": "k", "value": 1, "unit": "furlong"}]}, 422, "/results/0/unit"),
    ({"results": [{"analyte": "k", "value": 4, "unit": "pg/mL"}]}, 422, "/results/0/unit"),
    ({"results": [{"code": "2132-9", "value": 4, "unit": "pmol/L"}]}, 422, "/results/0/unit"),
    ({"results": [{"code": "16695-9", "value": 400, "unit": "pg/mL"}]}, 422, "/results/0/code"),
    ({"results": [{"analyte": "k", "code": "2132-9", "value": 4, "unit": "mmol/L"}]}, 422, "/results/0/code"),
    ({"results": [{"analyte": "k", "value": -1, "unit": "mmol/L"}]}, 422, "/results/0/value"),
    ({"results": [{"analyte": "k", "value": 1e308, "unit": "mmol/L"}]}, 422, "/results/0/value"),
    ({"results": [{"analyte": "k", "value": "abc", "unit": "mmol/L"}]}, 422, "/results/0/value"),
    ({"results": [{"analyte": "k", "value": True, "unit": "mmol/L"}]}, 422, "/results/0/value"),
    ({"results": [{"analyte": "k", "value": None, "unit": "mmol/L"}]}, 422, "/results/0/value"),
    ({"results": [{"analyte": "k", "value": "<<5", "unit": "mmol/L"}]}, 422, "/results/0/value"),
    ({"results": [{"analyte": "k", "value": 4, "unit": "mmol/L", "extra": 1}]}, 422, "/results/0/extra"),
    ({"results": [{"analyte": "k", "value": 4, "unit": "mmol/L",
                   "reference_range": {"low": 5, "high": 3}}]}, 422, "/results/0/reference_range/low"),
    ({"results": [{"analyte": "k", "value": 4, "unit": "mmol/L",
                   "reference_range": {"low": 3, "high": 5, "unit": "g/L"}}]}, 422, "/results/0/reference_range/unit"),
    ({"results": [{"id": "a", "analyte": "k", "value": 4, "unit": "mmol/L"},
                  {"id": "a", "analyte": "k", "value": 4, "unit": "mmol/L"}]}, 422, "/results/1/id"),
    ({"collected_at": "yesterday", "results": [{"analyte": "k", "value": 4, "unit": "mmol/L"}]}, 422, "/collected_at"),
    ({"collected_at": "2026-11-19T08:00:00", "results": [{"analyte": "k", "value": 4, "unit": "mmol/L"}]},
     422, "/collected_at"),
    ({"context": {"medications": ["aspirin"]}, "results": [{"analyte": "k", "value": 4, "unit": "mmol/L"}]},
     422, "/context/medications/0"),
    ({"patient": {"age_years": "30"}, "results": [{"analyte": "k", "value": 4, "unit": "mmol/L"}]},
     422, "/patient/age_years"),
    ({"context": {"specimen": {"hemolyzed": "yes"}}, "results": [{"analyte": "k", "value": 4, "unit": "mmol/L"}]},
     422, "/context/specimen/hemolyzed"),
    ({"results": [{"id": "a\u0000b", "analyte": "k", "value": 4, "unit": "mmol/L"}]}, 422, "/results/0/id"),
    ([1, 2], 422, ""),
    ("results", 422, ""),
])
def test_invalid_content_is_422_with_pointer(client, conform, body, status, pointer):
    resp, data = post(client, conform, body)
    assert resp.status_code == status
    assert pointer in [e["pointer"] for e in data["errors"]], data["errors"]


def test_several_problems_reported_at_once(client, conform):
    body = {"context": {"diet": "carnivore"}, "results": [
        {"analyte": "k", "value": "NaN", "unit": "g/L"}, {"analyte": "zinc", "value": -2, "unit": "mg/dL"}]}
    _resp, data = post(client, conform, body)
    pointers = {e["pointer"] for e in data["errors"]}
    assert {"/context/diet", "/results/0/unit", "/results/0/value", "/results/1/analyte",
            "/results/1/value"} <= pointers


@pytest.mark.parametrize("data, content_type, status", [
    (b"", "application/json", 400),
    (b'{"results": [', "application/json", 400),
    (b"\xff\xfe{}", "application/json", 400),
    (b"[" * 10000 + b"]" * 10000, "application/json", 400),
    (b'{"results": []}', "text/plain", 415),
    (b'{"results": []}', "application/x-www-form-urlencoded", 415),
    (b"x" * 1_100_000, "application/json", 413),
])
def test_malformed_bodies(client, conform, data, content_type, status):
    resp, body = post(client, conform, None, data=data, content_type=content_type)
    assert resp.status_code == status
    assert body["status"] == status and body["errors"][0]["pointer"] == ""


def test_nan_literal_names_the_field(client, conform):
    raw = b'{"results": [{"analyte": "k", "value": NaN, "unit": "mmol/L"}, {"analyte": "k", "value": Infinity, "unit": "mmol/L"}]}'
    resp, body = post(client, conform, None, data=raw, content_type="application/json")
    assert resp.status_code == 422
    assert {e["pointer"] for e in body["errors"]} == {"/results/0/value", "/results/1/value"}


def test_404_and_405_are_problem_json(client, conform):
    resp = client.get("/v1/nothing-here")
    assert resp.status_code == 404 and resp.mimetype == "application/problem+json"
    resp = client.delete(PATH)
    assert resp.status_code == 405 and "POST" in resp.headers["Allow"]
    assert resp.mimetype == "application/problem+json" and resp.json["status"] == 405


def test_security_headers_and_request_id(client):
    resp = client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"
    assert resp.headers["X-Content-Type-Options"] == "nosniff" and resp.headers["Cache-Control"] == "no-store"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id; <script>"}).headers["X-Request-ID"]
    assert "script" not in generated and len(generated) == 32


def test_analytes_catalogue(client, conform):
    resp = client.get("/v1/analytes")
    data = conform("get", "/v1/analytes", resp)
    by_id = {a["id"]: a for a in data["analytes"]}
    assert set(by_id) == {"vitamin_b12", "potassium", "magnesium", "calcium", "ionized_calcium", "albumin"}
    codes = {c["code"] for a in data["analytes"] for c in a["loinc"]}
    assert {"2132-9", "14685-2", "2823-3", "6298-4", "19123-9", "2601-3", "17861-6", "2000-8", "49765-1",
            "1995-0", "1994-3", "17863-2", "1751-7"} <= codes and "16695-9" not in codes
    assert by_id["vitamin_b12"]["bands"] == ["deficient", "borderline", "normal", "high", "very_high"]
    assert all(a["reference_interval"]["sources"] for a in data["analytes"])


def test_health(client, conform):
    data = conform("get", "/healthz", client.get("/healthz"))
    assert data["status"] == "ok"


def test_no_patient_value_is_logged_even_on_an_unexpected_error(app, client, caplog, monkeypatch):
    from service.ops import per_request
    from service.panels import interpret as application

    written: list[bytes] = []
    monkeypatch.setattr(per_request, "emit", written.append)  # the request log line, written without logging
    secret = {"patient": {"age_years": 87.25},
              "results": [{"id": "MRN-998877", "analyte": "k", "value": 3.14159, "unit": "mmol/L"}]}
    caplog.set_level(logging.DEBUG)
    assert client.post(PATH, json=secret).status_code == 200

    def boom(*a, **k):
        raise ValueError("value 3.14159 for MRN-998877 aged 87.25")

    monkeypatch.setattr(application, "interpret_panel", boom)
    resp = client.post(PATH, json=secret)
    assert resp.status_code == 500 and resp.mimetype == "application/problem+json"
    assert "3.14159" not in resp.get_data(as_text=True)
    logged = "\n".join(r.getMessage() + str(r.exc_text or "") for r in caplog.records)
    assert "ValueError" in logged and len(written) == 2
    logged += b"\n".join(written).decode()
    for needle in ("3.14159", "MRN-998877", "87.25"):
        assert needle not in logged

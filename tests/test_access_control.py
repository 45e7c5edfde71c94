"""API keys: /v1, /fhir and /cds-services need a bearer key when keys are configured; health, the
contract and the form stay open."""
from __future__ import annotations

import logging

import pytest

from service.app import create_app
from service.config import Settings

KEYS = ("alpha-key-0001", "beta-key-0002")
PANEL = {"results": [{"analyte": "k", "value": 4.0, "unit": "mmol/L"}]}


@pytest.fixture(scope="module")
def locked():
    return create_app(Settings(api_keys=KEYS)).test_client()


@pytest.mark.parametrize("key", KEYS)
def test_each_configured_key_opens_v1(locked, conform, key):
    resp = locked.post("/v1/interpretations", json=PANEL, headers={"Authorization": f"Bearer {key}"})
    assert conform("post", "/v1/interpretations", resp)["results"][0]["band"] == "normal"
    assert locked.get("/v1/analytes", headers={"Authorization": f"bearer {key}"}).status_code == 200


@pytest.mark.parametrize("header", [
    None, "", "Bearer", "Bearer ", "Bearer wrong-key", f"Basic {KEYS[0]}", f"Bearer {KEYS[0]}x",
    f"Bearer {KEYS[0][:-1]}", "Bearer " + "k" * 10_000, f"Bearer {KEYS[0]}, {KEYS[1]}",
])
def test_missing_wrong_empty_and_overlong_keys_get_401(locked, conform, header):
    headers = {} if header is None else {"Authorization": header}
    for method, path in (("post", "/v1/interpretations"), ("get", "/v1/analytes")):
        resp = locked.open(path, method=method.upper(), json=PANEL if method == "post" else None, headers=headers)
        body = conform(method, path, resp)
        assert resp.status_code == 401 and body["status"] == 401
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_health_and_contract_stay_open(locked):
    assert locked.get("/healthz").status_code == 200
    assert locked.get("/openapi.yaml").status_code == 200
    assert locked.get("/").status_code == 200


def test_fhir_and_cds_hooks_need_a_key_too(locked, conform):
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "k"}}
    resp = locked.post("/fhir/$interpret", json=obs)
    assert resp.status_code == 401 and resp.mimetype == "application/fhir+json"
    assert conform("post", "/fhir/$interpret", resp)["issue"][0]["code"] == "security"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert locked.post("/fhir/$interpret", json=obs, headers={"Authorization": f"Bearer {KEYS[0]}"}).status_code == 200
    resp = locked.get("/cds-services")
    assert resp.status_code == 401 and conform("get", "/cds-services", resp)["status"] == 401
    assert locked.get("/cds-services", headers={"Authorization": f"Bearer {KEYS[1]}"}).status_code == 200


def test_open_mode_says_so_once_at_start_up(caplog):
    caplog.set_level(logging.INFO, logger="labinterp")
    app = create_app(Settings())
    warnings = [r for r in caplog.records if "LABINTERP_API_KEYS is not set" in r.getMessage()]
    assert len(warnings) == 1
    client = app.test_client()
    assert client.post("/v1/interpretations", json=PANEL).status_code == 200
    assert len([r for r in caplog.records if "LABINTERP_API_KEYS" in r.getMessage()]) == 1


def test_keys_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LABINTERP_API_KEYS", " one , two ,, ")
    assert Settings.from_env().api_keys == ("one", "two")
    monkeypatch.setenv("LABINTERP_MAX_RESULTS", "zero")
    with pytest.raises(ValueError, match="LABINTERP_MAX_RESULTS"):
        Settings.from_env()


def test_limits_are_configuration(conform):
    client = create_app(Settings(max_results=2, max_body_bytes=2000)).test_client()
    resp = client.post("/v1/interpretations", json={"results": PANEL["results"] * 3})
    assert resp.status_code == 422 and conform("post", "/v1/interpretations", resp)["errors"][0]["pointer"] == "/results"
    resp = client.post("/v1/interpretations", json={"results": PANEL["results"] * 2, "pad": "x" * 3000})
    assert resp.status_code == 413

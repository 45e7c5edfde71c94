"""Secure by default: /v1, /fhir, /cds-services and /metrics always need a bearer key (configured, or
generated into a key file on first start); open-on-loopback mode only by name and only for loopback
peers; the form needs the key beyond loopback; health, readiness and the contract stay open."""
from __future__ import annotations

from service.app import service_of

import base64
import os
import runpy
import stat

import pytest

from service.http.auth import KeyFileError
from service.app import create_app
from service.config import Settings

from .conftest import ROOT, keyed_client, make_app

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
    assert locked.get("/readyz").status_code == 200
    assert locked.get("/openapi.yaml").status_code == 200


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


def test_without_keys_a_key_is_generated_once_into_a_private_file_and_required(tmp_path, caplog):
    """As Jupyter does with its token: the first start creates the key, later starts reuse it, the log
    says where it is (never the key itself), and nothing answers without it."""
    key_file = tmp_path / "state" / "api-key"
    caplog.set_level("INFO", logger="labinterp")
    first = create_app(Settings(api_key_file=str(key_file))).test_client()
    key = key_file.read_text().strip()
    assert len(key) >= 32 and stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert any(str(key_file) in r.getMessage() for r in caplog.records)
    assert not any(key in r.getMessage() for r in caplog.records)
    assert first.post("/v1/interpretations", json=PANEL).status_code == 401
    assert first.get("/metrics").status_code == 401
    assert first.post("/v1/interpretations", json=PANEL, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    again = create_app(Settings(api_key_file=str(key_file))).test_client()
    assert key_file.read_text().strip() == key
    assert again.get("/v1/analytes", headers={"Authorization": f"Bearer {key}"}).status_code == 200


def test_no_key_to_be_had_stops_start_up(tmp_path):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    with pytest.raises(KeyFileError, match="LABINTERP_API_KEYS"):
        create_app(Settings(api_key_file=str(blocked / "api-key")))
    short = tmp_path / "short"
    short.write_text("abc\n")
    with pytest.raises(KeyFileError, match="characters"):
        create_app(Settings(api_key_file=str(short)))


def test_open_on_loopback_answers_loopback_peers_only_and_says_so_in_its_contract(conform):
    app = create_app(Settings(auth="open-on-loopback", api_keys=KEYS))
    client = app.test_client()
    assert client.post("/v1/interpretations", json=PANEL).status_code == 200
    far = client.post("/v1/interpretations", json=PANEL, environ_base={"REMOTE_ADDR": "10.1.2.3"})
    assert far.status_code == 401
    proxied = client.post("/v1/interpretations", json=PANEL, headers={"X-Forwarded-For": "203.0.113.9"})
    assert proxied.status_code == 401  # a proxy on this host must not turn loopback into the network
    assert client.post("/v1/interpretations", json=PANEL, environ_base={"REMOTE_ADDR": "10.1.2.3"},
                       headers={"Authorization": f"Bearer {KEYS[0]}"}).status_code == 200
    served = service_of(app).contract
    assert served["paths"]["/v1/interpretations"]["post"]["security"] == [{}, {"apiKey": []}]
    default = service_of(make_app()).contract
    assert default["paths"]["/v1/interpretations"]["post"]["security"] == [{"apiKey": []}]


def test_gunicorn_refuses_open_mode_beyond_loopback(monkeypatch):
    monkeypatch.setenv("LABINTERP_AUTH", "open-on-loopback")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/tmp/labinterp-test-unused")
    monkeypatch.setenv("HOST", "0.0.0.0")
    with pytest.raises(SystemExit, match="loopback"):
        runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    monkeypatch.setenv("HOST", "127.0.0.1")
    assert runpy.run_path(str(ROOT / "gunicorn.conf.py"))["bind"] == "127.0.0.1:8000"


def test_an_unknown_auth_mode_stops_start_up():
    with pytest.raises(ValueError, match="LABINTERP_AUTH"):
        Settings.from_env({"LABINTERP_AUTH": "none"})


def _basic(password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"clinician:{password}".encode()).decode()}


def test_the_form_needs_the_key_beyond_loopback(locked):
    assert locked.get("/").status_code == 200  # this host
    far = {"REMOTE_ADDR": "192.0.2.7"}
    resp = locked.get("/", environ_base=far)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Basic")
    assert "192.0.2.7" not in resp.get_data(as_text=True)
    assert locked.get("/", environ_base=far, headers=_basic("wrong")).status_code == 401
    assert locked.get("/", environ_base=far, headers=_basic(KEYS[1])).status_code == 200
    assert locked.get("/", headers={"Forwarded": "for=198.51.100.1"}).status_code == 401
    with locked.get("/assets/labinterp.css", environ_base=far) as asset:
        assert asset.status_code == 200  # no patient data


def test_keys_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("LABINTERP_API_KEYS", " one , two ,, ")
    assert Settings.from_env().api_keys == ("one", "two")
    monkeypatch.setenv("LABINTERP_MAX_RESULTS", "zero")
    with pytest.raises(ValueError, match="LABINTERP_MAX_RESULTS"):
        Settings.from_env()


def test_limits_are_configuration(conform):
    client = keyed_client(make_app(max_results=2, max_body_bytes=2000))
    resp = client.post("/v1/interpretations", json={"results": PANEL["results"] * 3})
    assert resp.status_code == 422 and conform("post", "/v1/interpretations", resp)["errors"][0]["pointer"] == "/results"
    resp = client.post("/v1/interpretations", json={"results": PANEL["results"] * 2, "pad": "x" * 3000})
    assert resp.status_code == 413

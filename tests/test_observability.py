"""Metrics, request logs and timing: counted right, in the documented shape, without patient data."""
from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from service.app import create_app
from service.config import Settings
from service.ops import per_request

from .fhir_fixtures import bundle, observation, patient
from .conftest import AUTH
from .servers import free_port, start_gunicorn, stop, wait_ready

# Values and identifiers no log line may ever carry (all distinctive enough not to occur by chance).
SECRET_ID, SECRET_VALUE, SECRET_AGE = "mrn-5521-qx", 2.0417, 71.375
PANEL = {"patient": {"age_years": SECRET_AGE, "sex": "female"},
         "results": [{"id": SECRET_ID, "analyte": "potassium", "value": SECRET_VALUE, "unit": "mmol/L"},
                     {"id": "b", "analyte": "vitamin_b12", "value": 180, "unit": "pg/mL"}]}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture()
def log_lines(monkeypatch):
    """The JSON lines of the per-request log, captured where the service writes them."""
    written: list[bytes] = []
    monkeypatch.setattr(per_request, "emit", written.append)
    return lambda: [json.loads(line) for line in written]


def test_results_requests_and_criticals_are_counted(client):
    low_k = sample("labinterp_results_interpreted_total", analyte="potassium", band="critical_low")
    b12 = sample("labinterp_results_interpreted_total", analyte="vitamin_b12", band="deficient")
    crit = sample("labinterp_critical_results_total", analyte="potassium")
    ok = sample("labinterp_http_requests_total", route="/v1/interpretations", method="POST", status="200")
    bad = sample("labinterp_http_requests_total", route="/v1/interpretations", method="POST", status="422")
    lost = sample("labinterp_http_requests_total", route="unmatched", method="GET", status="404")
    timed = sample("labinterp_http_request_duration_seconds_count", route="/v1/interpretations")
    assert client.post("/v1/interpretations", json=PANEL).status_code == 200  # K 2.04: critically low
    assert client.post("/v1/interpretations/batch", json={"panels": [PANEL, PANEL, {"results": []}]}).status_code == 200
    assert client.post("/v1/interpretations", json={"results": []}).status_code == 422
    assert client.get("/no/such/page").status_code == 404
    assert sample("labinterp_results_interpreted_total", analyte="potassium", band="critical_low") == low_k + 3
    assert sample("labinterp_results_interpreted_total", analyte="vitamin_b12", band="deficient") == b12 + 3
    assert sample("labinterp_critical_results_total", analyte="potassium") == crit + 3
    assert sample("labinterp_http_requests_total", route="/v1/interpretations", method="POST", status="200") == ok + 1
    assert sample("labinterp_http_requests_total", route="/v1/interpretations", method="POST", status="422") == bad + 1
    assert sample("labinterp_http_requests_total", route="unmatched", method="GET", status="404") == lost + 1
    assert sample("labinterp_http_request_duration_seconds_count", route="/v1/interpretations") == timed + 2


def test_fhir_cds_and_form_results_are_counted_too(client):
    from .test_cds import URL, hook_request, searchset

    before = sample("labinterp_results_interpreted_total", analyte="potassium", band="low")
    body = bundle(patient(), observation("k", "2823-3", 3.1, "mmol/L"))
    assert client.post("/fhir/$interpret", json=body, content_type="application/fhir+json").status_code == 200
    assert sample("labinterp_results_interpreted_total", analyte="potassium", band="low") == before + 1
    hook = hook_request(potassium=searchset(observation("k", "2823-3", 3.1, "mmol/L")))
    assert client.post(URL, json=hook).status_code == 200
    assert sample("labinterp_results_interpreted_total", analyte="potassium", band="low") == before + 2
    form = {"potassium_value": "3.1", "potassium_unit": "mmol/L"}
    assert client.post("/", data=form).status_code == 200
    assert sample("labinterp_results_interpreted_total", analyte="potassium", band="low") == before + 3


def test_metrics_are_prometheus_text_in_the_contract(client, conform):
    client.post("/v1/interpretations", json=PANEL)
    resp = client.get("/metrics")
    conform("get", "/metrics", resp)
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    text = resp.get_data(as_text=True)
    for name in ("labinterp_http_requests_total", "labinterp_http_request_duration_seconds_bucket",
                 "labinterp_results_interpreted_total", "labinterp_critical_results_total"):
        assert f"\n{name}{{" in text
    assert SECRET_ID not in text and str(SECRET_VALUE) not in text and "_created" not in text


def test_metrics_need_the_api_key_when_keys_are_set(conform):
    locked = create_app(Settings(api_keys=("k1",))).test_client()
    refused = locked.get("/metrics")
    assert refused.status_code == 401 and conform("get", "/metrics", refused)["status"] == 401
    assert locked.get("/metrics", headers={"Authorization": "Bearer k1"}).status_code == 200


def test_one_json_line_per_request_without_patient_data(client, log_lines):
    client.post("/v1/interpretations", json=PANEL, headers={"X-Request-ID": "req-1"})
    client.post("/v1/interpretations", json={**PANEL, "patient": {"age_years": SECRET_AGE, "sex": "x"}},
                headers={"X-Request-ID": "req-2"})  # 422 naming the field, not its value
    client.post("/v1/interpretations/batch", json={"panels": [PANEL] * 3}, headers={"X-Request-ID": "req-3"})
    lines = log_lines()
    assert [(e["request_id"], e["route"], e["status"], e["results"]) for e in lines] == [
        ("req-1", "/v1/interpretations", 200, 2), ("req-2", "/v1/interpretations", 422, 0),
        ("req-3", "/v1/interpretations/batch", 200, 6)]
    for e in lines:
        assert {"ts", "level", "logger", "pid", "message", "method", "duration_ms"} <= set(e)
        assert isinstance(e["duration_ms"], float) and e["duration_ms"] >= 0
    text = json.dumps(lines)
    assert SECRET_ID not in text and str(SECRET_VALUE) not in text and str(SECRET_AGE) not in text


def test_server_timing_and_request_id_headers(client):
    resp = client.post("/v1/interpretations", json=PANEL, headers={"X-Request-ID": "abc-9"})
    assert resp.headers["X-Request-ID"] == "abc-9"
    assert re.fullmatch(r"app;dur=\d+\.\d\d", resp.headers["Server-Timing"])


def test_a_bad_log_level_stops_start_up(monkeypatch):
    monkeypatch.setenv("LABINTERP_LOG_LEVEL", "chatty")
    with pytest.raises(ValueError, match="LABINTERP_LOG_LEVEL"):
        create_app(Settings())


def _post(port: int, path: str, body: object) -> int:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={**AUTH, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        resp.read()
        return resp.status


def _scrape(port: int) -> dict[str, float]:
    with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers=AUTH), timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


@pytest.mark.server
def test_gunicorn_workers_share_their_metrics_and_log_json(tmp_path: Path):
    """Two workers, one scrape: the counts are the instance's, whichever worker answers."""
    port = free_port()
    log = tmp_path / "gunicorn.log"
    proc = start_gunicorn(port, log, {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics")})
    try:
        wait_ready(port, proc)
        for _ in range(30):
            assert _post(port, "/v1/interpretations", PANEL) == 200
        for _ in range(4):  # several scrapes, landing on either worker, all agree
            m = _scrape(port)
            assert m['labinterp_http_requests_total{method="POST",route="/v1/interpretations",status="200"}'] == 30
            assert m['labinterp_results_interpreted_total{analyte="potassium",band="critical_low"}'] == 30
            assert m['labinterp_critical_results_total{analyte="potassium"}'] == 30
    finally:
        assert stop(proc) == 0
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # every line is JSON, gunicorn's too
    requests = [e for e in lines if e.get("route") == "/v1/interpretations"]
    assert len(requests) == 30 and all(e["status"] == 200 and e["results"] == 2 for e in requests)
    assert any(e["logger"] == "gunicorn.error" for e in lines)
    assert SECRET_ID not in log.read_text() and str(SECRET_VALUE) not in log.read_text()

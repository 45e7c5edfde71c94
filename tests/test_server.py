"""Start the real `gunicorn` command with gunicorn.conf.py on loopback and post a panel over HTTP."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from .conftest import AUTH, ROOT
from .servers import free_port, start_gunicorn, stop, wait_ready

pytestmark = pytest.mark.server


@pytest.fixture()
def server(tmp_path):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    proc = start_gunicorn(port, log)
    try:
        wait_ready(port, proc)
        yield port, proc, log
    finally:
        stop(proc)


def test_gunicorn_serves_a_panel_over_http(server):
    port, proc, log_path = server
    body = {"results": [{"id": "k-7f3a", "analyte": "potassium", "value": 3.0817, "unit": "mmol/L"},
                        {"id": "b12", "code": "2132-9", "value": 180, "unit": "pg/mL"}]}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/interpretations", data=json.dumps(body).encode(),
                                 headers={**AUTH, "Content-Type": "application/json", "X-Request-ID": "t-1"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        data = json.load(resp)
        assert resp.headers["X-Request-ID"] == "t-1" and resp.headers["Cache-Control"] == "no-store"
    assert [(r["id"], r["band"]) for r in data["results"]] == [("k-7f3a", "low"), ("b12", "deficient")]
    # Issue 15: the same panel with an earlier potassium of two days before.
    body |= {"collected_at": "2026-11-20T08:00:00Z",
             "history": [{"code": "2823-3", "value": 4.4, "unit": "mEq/L", "collected_at": "2026-11-18T09:00:00+01:00"}]}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/interpretations", data=json.dumps(body).encode(),
                                 headers={**AUTH, "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        k, b12 = json.load(resp)["results"]
    assert (k["delta"]["previous"]["value"], k["delta"]["hours"], k["delta"]["significant"]) == (4.4, 48.0, True)
    assert "delta-significant-change" in {n["id"] for n in k["notes"]} and b12["delta"] is None
    bad = urllib.request.Request(f"http://127.0.0.1:{port}/v1/interpretations", data=b"{",
                                 headers={**AUTH, "Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=10)
    assert err.value.code == 400 and err.value.headers["Content-Type"] == "application/problem+json"
    err.value.close()
    assert stop(proc) == 0
    log = log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert any(e.get("request_id") == "t-1" and e.get("route") == "/v1/interpretations" and e["status"] == 200
               for e in lines)
    assert "3.0817" not in log and "k-7f3a" not in log  # no value or id from the body


def test_a_bad_knowledge_folder_stops_start_up_naming_file_and_field(tmp_path):
    import shutil

    bad = tmp_path / "ranges"
    shutil.copytree(ROOT / "reference_ranges", bad)
    text = (bad / "potassium.yaml").read_text().replace("low: 3.5, high: 5.1", "low: 3.5, high: lots")
    (bad / "potassium.yaml").write_text(text)
    log = tmp_path / "gunicorn.log"
    proc = start_gunicorn(free_port(), log, {"LABINTERP_RANGES_DIR": str(bad)})
    assert proc.wait(timeout=30) != 0
    out = log.read_text()
    assert "potassium.yaml" in out and "reference_interval.high" in out

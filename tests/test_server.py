"""Start the real `gunicorn` command with gunicorn.conf.py on loopback and post a panel over HTTP."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT

pytestmark = pytest.mark.server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LABINTERP_WORKERS": "2", **(env_extra or {})}
    return subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "service.app:create_app()"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_ready(port: int, proc: subprocess.Popen, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"gunicorn exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("gunicorn did not become ready")


@pytest.fixture()
def server():
    port = free_port()
    proc = start_gunicorn(port)
    try:
        wait_ready(port, proc)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=35)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_gunicorn_serves_a_panel_over_http(server):
    port, proc = server
    body = {"results": [{"id": "k", "analyte": "potassium", "value": 3.1, "unit": "mmol/L"},
                        {"id": "b12", "code": "2132-9", "value": 180, "unit": "pg/mL"}]}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/interpretations", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json", "X-Request-ID": "t-1"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        data = json.load(resp)
        assert resp.headers["X-Request-ID"] == "t-1" and resp.headers["Cache-Control"] == "no-store"
    assert [(r["id"], r["band"]) for r in data["results"]] == [("k", "low"), ("b12", "deficient")]
    bad = urllib.request.Request(f"http://127.0.0.1:{port}/v1/interpretations", data=b"{",
                                 headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(bad, timeout=10)
    assert err.value.code == 400 and err.value.headers["Content-Type"] == "application/problem+json"
    err.value.close()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=35) == 0
    log = proc.stdout.read() if proc.stdout else ""
    assert "3.1" not in log.replace("HTTP/1.1", "")  # the access log carries no body values


def test_a_bad_knowledge_folder_stops_start_up_naming_file_and_field(tmp_path):
    import shutil

    bad = tmp_path / "ranges"
    shutil.copytree(ROOT / "reference_ranges", bad)
    text = (bad / "potassium.yaml").read_text().replace("low: 3.5, high: 5.1", "low: 3.5, high: lots")
    (bad / "potassium.yaml").write_text(text)
    proc = start_gunicorn(free_port(), {"LABINTERP_RANGES_DIR": str(bad)})
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode != 0
    assert "potassium.yaml" in out and "reference_interval.high" in out

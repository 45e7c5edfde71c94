"""`make run` (labinterp-serve) serves HTTP and MLLP from one command, and stops them together."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from .conftest import AUTH, ROOT, TEST_KEY
from .hl7_messages import K, obx, oru
from .mllp_peers import DownstreamPeer, frame, mllp_exchange, msa
from .servers import free_port, wait_listening, wait_ready

pytestmark = pytest.mark.server
SERVE = Path(sys.executable).with_name("labinterp-serve")


def start_serve(log_path: Path, env_extra: dict[str, str]) -> tuple[subprocess.Popen, int, int]:
    """labinterp-serve as `make run` runs it: HOST and PORT from the environment, in the project folder."""
    port, mllp_port = free_port(), free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LABINTERP_MLLP_PORT": str(mllp_port),
           "LABINTERP_API_KEYS": TEST_KEY, **env_extra}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(SERVE)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, port, mllp_port


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = Path(f"/proc/{entry.name}/stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2:].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def test_make_run_serves_http_and_mllp_and_sigterm_stops_both(tmp_path):
    assert "$(BIN)/labinterp-serve" in (ROOT / "Makefile").read_text(encoding="utf-8")
    peer = DownstreamPeer("AA")
    proc, port, mllp_port = start_serve(tmp_path / "serve.log", {"LABINTERP_MLLP_FORWARD": peer.address})
    try:
        wait_ready(port, proc, 60)
        wait_listening(mllp_port, proc, 60)
        children = _children(proc.pid)
        assert len(children) == 2  # gunicorn's master and the listener
        body = oru(obx(1, K, "3.1"), control_id="SERVE-1")
        assert msa(mllp_exchange(mllp_port, frame(body))) == ("AA", "SERVE-1")
        with requests.post(f"http://127.0.0.1:{port}/hl7v2/interpret", data=body, timeout=30,
                           headers={"Content-Type": "x-application/hl7-v2+er7", **AUTH}) as r:
            assert r.status_code == 200 and r.content == peer.acked[0]  # one core, one answer
        with requests.get(f"http://127.0.0.1:{port}/metrics", timeout=30, headers=AUTH) as r:
            assert 'labinterp_mllp_messages_total{ack="AA",outcome="delivered"} 1.0' in r.text
            assert 'labinterp_mllp_forward_seconds_count{ack="AA"} 1.0' in r.text
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        assert not any(Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()
                       for pid in children)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        peer.close()


def test_with_mllp_off_only_http_is_served(tmp_path):
    proc, port, mllp_port = start_serve(tmp_path / "serve.log", {"LABINTERP_MLLP": "off"})
    try:
        wait_ready(port, proc, 60)
        time.sleep(1)
        assert len(_children(proc.pid)) == 1
        with pytest.raises(OSError):
            mllp_exchange(mllp_port, frame(oru(obx(1, K, "3.1"))), timeout=2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_when_one_half_dies_the_other_is_stopped_and_the_exit_says_so(tmp_path):
    proc, port, mllp_port = start_serve(tmp_path / "serve.log", {})
    try:
        wait_ready(port, proc, 60)
        wait_listening(mllp_port, proc, 60)
        listener = [pid for pid in _children(proc.pid) if b"service.hl7v2.listener" in Path(f"/proc/{pid}/cmdline").read_bytes()]
        assert len(listener) == 1
        os.kill(listener[0], signal.SIGKILL)
        assert proc.wait(timeout=60) != 0  # the orchestrator restarts the whole
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert "mllp exited with -9; stopping" in (tmp_path / "serve.log").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_bad_setting_stops_it_before_anything_starts(tmp_path):
    proc, _, _ = start_serve(tmp_path / "serve.log", {"LABINTERP_MLLP_FORWARD": "no-port-here"})
    assert proc.wait(timeout=30) == 2
    log = (tmp_path / "serve.log").read_text()
    assert "labinterp-serve: LABINTERP_MLLP_FORWARD must be host:port" in log and "Traceback" not in log

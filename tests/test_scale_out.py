"""Scale-out: deploy/nginx.conf in front of two gunicorn instances loses no request.

The compose topology without containers: the real deploy/nginx.conf (only its upstream servers, its port
and its pid, log and temp paths substituted) in front of two gunicorns started as `make run` starts them,
on loopback. A bounded load of panels and batches, whose answers are computed in process beforehand,
runs through nginx while one instance is restarted (SIGTERM, then started again on its port, as an
orchestrator's rolling restart does) and a worker of the other is SIGKILLed in the middle of a request.
Every request must still get its own right answer. Logs and a report stay under test-output/scale-out/.

To be sure a signal lands on a request in flight, a "probe" (a batch of 1,000 panels of 16 results, some
400 ms of CPU) is sent until a worker of the instance is seen holding a connection on which it has already
spent more CPU than any other request of the load needs, a full garbage collection included (~40 ms);
the signal is sent then, with most of the probe still to compute.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from .conftest import AUTH, ROOT, keyed_client
from .nginx import Nginx, require_nginx
from .servers import free_port, start_gunicorn, stop, wait_ready

pytestmark = pytest.mark.server

OUT = ROOT / "test-output" / "scale-out"
GRACEFUL_TIMEOUT = 10
GUNICORN_ENV = {"LABINTERP_GRACEFUL_TIMEOUT": str(GRACEFUL_TIMEOUT), "LABINTERP_LOG_LEVEL": "warning"}
LOAD_REQUESTS = 2400  # the load's budget; a few more are sent while nginx has not yet taken a restarted instance back
CLIENTS = 6
COLLECTED_AT = "2026-11-19T08:30:00+00:00"


# --- the work and its answers -------------------------------------------------------------------------

def _panel(*results: tuple, **extra) -> dict:
    return {"results": [dict(zip(("id", "analyte", "value", "unit"), r)) for r in results],
            "collected_at": COLLECTED_AT, **extra}


PANELS = [
    _panel(("k", "potassium", 3.1, "mmol/L"), ("b12", "vitamin_b12", 180, "pg/mL"),
           ("mg", "magnesium", 1.5, "mg/dL"), ("ca", "calcium", 8.1, "mg/dL")),
    _panel(("k", "potassium", 4.2, "mmol/L"), ("b12", "vitamin_b12", 450, "pg/mL")),
    _panel(("k", "potassium", 5.8, "mEq/L"), ("mg", "magnesium", 2.1, "mg/dL"), ("ca", "calcium", 10.9, "mg/dL")),
    _panel(("b12", "vitamin_b12", "<150", "pg/mL"), ("mg", "magnesium", 0.6, "mmol/L")),
    _panel(("k", "potassium", 2.4, "mmol/L"), ("ca", "calcium", 2.0, "mmol/L"),
           context={"b12_injection_at": "2026-11-17T08:00:00Z"}),
    _panel(("b12", "vitamin_b12", 310, "pmol/L"), ("ca", "calcium", 7.2, "mg/dL"), ("alb", "albumin", 3.0, "g/dL")),
]


def _variant(i: int) -> dict:
    """Panel i of a batch: values stepping across the bands."""
    return _panel(("k", "potassium", round(2.4 + 0.09 * (i % 50), 2), "mmol/L"),
                  ("mg", "magnesium", round(1.1 + 0.03 * (i % 40), 2), "mg/dL"),
                  ("b12", "vitamin_b12", 120 + 17 * (i % 60), "pg/mL"),
                  ("ca", "calcium", round(7.0 + 0.11 * (i % 45), 2), "mg/dL"))


def _probe_panel(i: int) -> dict:
    """Panel i of the probe: four variants in one panel, 16 results."""
    results = [{**r, "id": f"{r['id']}{j}"} for j in range(4) for r in _variant(i + 7 * j)["results"]]
    return {"results": results, "collected_at": COLLECTED_AT}


@dataclass(frozen=True)
class Work:
    name: str
    path: str
    body: bytes
    expected: dict


@dataclass(frozen=True)
class Workload:
    load: list[Work]     # what the clients send, in turn: single panels and a batch of 50
    probe: Work          # the batch of 1,000 panels of 16 results
    padded: Work         # a batch of 10 panels padded with spaces to 2 MiB
    long_cpu_ns: int     # CPU time on one connection that only a probe reaches


def _expect(client, name: str, path: str, body: dict) -> tuple[Work, float]:
    """The answer and CPU time of `body` in process (measured on a second, warm call)."""
    first = client.post(path, json=body)
    assert first.status_code == 200, (name, first.get_json())
    cpu = time.process_time()
    again = client.post(path, json=body)
    cpu = time.process_time() - cpu
    assert again.get_json() == first.get_json(), f"{name}: the answer is not deterministic"
    return Work(name, path, json.dumps(body).encode(), first.get_json()), cpu


@pytest.fixture(scope="module")
def workload(app) -> Workload:
    client = keyed_client(app)
    load = [_expect(client, f"panel-{i}", "/v1/interpretations", p)[0] for i, p in enumerate(PANELS)]
    batch, batch_cpu = _expect(client, "batch-50", "/v1/interpretations/batch",
                               {"panels": [_variant(i) for i in range(50)]})
    probe, probe_cpu = _expect(client, "probe-1000", "/v1/interpretations/batch",
                               {"panels": [_probe_panel(i) for i in range(1000)]})
    small, _ = _expect(client, "batch-10", "/v1/interpretations/batch", {"panels": [_variant(i) for i in range(10)]})
    padded = Work("batch-10-padded", small.path, small.body[:-1] + b" " * (2 * 1024 * 1024 - len(small.body)) + b"}",
                  small.expected)
    assert len({json.dumps(w.expected, sort_keys=True) for w in load}) == len(load)
    # A connection that has cost its worker `threshold` of CPU is a probe with most of it still to go. No
    # other request comes near: a batch of 50, or a panel during which the worker runs a full garbage
    # collection (~40 ms here; it scales with the machine as the probe does).
    threshold = max(4 * batch_cpu, 0.25 * probe_cpu, 0.1)
    assert probe_cpu >= 3 * threshold, (
        f"the probe ({probe_cpu:.3f} s CPU) is too short to be caught in the middle: make it larger")
    return Workload(load + [batch], probe, padded, int(threshold * 1e9))


@pytest.fixture()
def out(request) -> Path:
    path = OUT / request.node.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


# --- gunicorn's processes, seen through /proc ---------------------------------------------------------

def _stat(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: state, ppid, ..."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2:].split()


def workers(master: int) -> list[int]:
    """The live gunicorn workers of a master."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat(int(entry.name))
            if int(fields[1]) == master and fields[0] != "Z" and \
                    b"gunicorn" in Path(f"/proc/{entry.name}/cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, IndexError, ValueError):  # gone meanwhile
            continue
    return found


def _sockets(pid: int) -> set[str]:
    found = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:"):
            found.add(link)
    return found


def _cpu_ns(pid: int) -> int:
    """CPU time of a process in ns (the scheduler's own count; /proc/<pid>/stat has 10 ms ticks)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def worker_deep_in_a_request(master: int, long_cpu_ns: int, seconds: float = 60) -> int:
    """Wait for a worker that has spent `long_cpu_ns` of CPU on the connection it holds; return its pid.

    A worker's only socket besides the listener it shares with the master is the connection it accepted.
    """
    first_seen: dict[tuple[int, str], int] = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            listeners = _sockets(master)
        except OSError as exc:
            raise AssertionError(f"gunicorn master {master} is gone") from exc
        for pid in workers(master):
            try:
                cpu = _cpu_ns(pid)
                connections = _sockets(pid) - listeners
            except (OSError, IndexError, ValueError):
                continue
            for connection in connections:
                if cpu - first_seen.setdefault((pid, connection), cpu) >= long_cpu_ns:
                    return pid
        time.sleep(0.002)
    raise AssertionError(f"no worker of gunicorn {master} was seen in the middle of a probe")


def _wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


# --- the load -----------------------------------------------------------------------------------------

class Load:
    """Client threads posting the work through nginx; every answer is checked against the expected one."""

    def __init__(self, url: str, work: list[Work], budget: int, gate: int):
        self.url, self.work, self.budget, self.gate = url, work, budget, gate
        self.gate_open = threading.Event()  # past `gate` requests, only a trickle until it opens
        self.lock = threading.Lock()
        self.issued = self.extra = self.sent = self.answered = self.failed = self.wrong = 0
        self.problems: list[str] = []
        self.threads = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(CLIENTS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def abort(self) -> None:
        with self.lock:
            self.budget = 0
        self.gate_open.set()

    def join(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "the load did not finish"

    def wait_issued(self, count: int, seconds: float = 120) -> None:
        _wait_until(lambda: self.issued >= count, seconds, f"{count} requests were sent")

    def send(self, session: requests.Session, work: Work, rid: str) -> None:
        with self.lock:
            self.sent += 1
        status, body, echoed, error = None, None, None, None
        try:
            with session.post(self.url + work.path, data=work.body, timeout=120,
                              headers={**AUTH, "Content-Type": "application/json", "X-Request-Id": rid}) as r:
                status, echoed = r.status_code, r.headers.get("X-Request-ID")
                body = r.json() if status == 200 else r.text[:300]
        except Exception as exc:
            error = f"{rid} {work.name}: {type(exc).__name__}: {exc}"
        with self.lock:
            if error or status != 200:
                self.failed += 1
                self.problems.append(error or f"{rid} {work.name}: HTTP {status} {body}")
                return
            self.answered += 1
            if body != work.expected or echoed != rid:
                self.wrong += 1
                self.problems.append(f"{rid} {work.name}: wrong answer (X-Request-ID {echoed})")

    def _client(self, n: int) -> None:
        try:
            with requests.Session() as session:
                i = 0
                while True:
                    with self.lock:
                        if self.issued >= self.budget:
                            return
                        trickle = self.issued >= self.gate and not self.gate_open.is_set()
                        if trickle:
                            self.extra += 1
                        else:
                            self.issued += 1
                    if trickle:
                        self.gate_open.wait(0.05)
                    self.send(session, self.work[(n + i) % len(self.work)], f"load-{n}-{i}")
                    i += 1
        except Exception as exc:
            with self.lock:
                self.problems.append(f"client {n}: {type(exc).__name__}: {exc}")


class Prober:
    """Sends the probe through nginx, one after the other, until stopped; `current` is the one in flight."""

    def __init__(self, load: Load, probe: Work, name: str):
        self.load, self.probe, self.name = load, probe, name
        self.stopping = threading.Event()
        self.current = ""
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        with requests.Session() as session:
            n = 0
            while not self.stopping.is_set():
                self.current = f"{self.name}-{n}"
                self.load.send(session, self.probe, self.current)
                n += 1

    def finish(self) -> None:
        """Let the probe in flight finish, send no other."""
        self.stopping.set()
        self.thread.join(120)
        assert not self.thread.is_alive()


# --- the tests ----------------------------------------------------------------------------------------

def test_rolling_restart_and_a_killed_worker_lose_no_request(workload, out, capsys):
    require_nginx()
    a_port, b_port = free_port(), free_port()
    a = start_gunicorn(a_port, out / "gunicorn-a-1.log", GUNICORN_ENV)
    b = start_gunicorn(b_port, out / "gunicorn-b.log", GUNICORN_ENV)
    nginx = load = None
    try:
        wait_ready(a_port, a, 60)
        wait_ready(b_port, b, 60)
        nginx = Nginx(out, [a_port, b_port])
        load = Load(nginx.url, workload.load, LOAD_REQUESTS, gate=2 * LOAD_REQUESTS // 3)
        started = time.monotonic()
        load.start()

        # A third in: SIGTERM to A while one of its workers is in the middle of a probe; A finishes it,
        # nginx passes new requests to B. Then A is started again on its port (a rolling restart).
        load.wait_issued(LOAD_REQUESTS // 3)
        prober = Prober(load, workload.probe, "probe-a")
        worker_deep_in_a_request(a.pid, workload.long_cpu_ns)
        graceful_probe = prober.current
        a.send_signal(signal.SIGTERM)
        prober.finish()
        assert a.wait(timeout=GRACEFUL_TIMEOUT + 20) == 0
        restarted = nginx.access_log.stat().st_size
        a = start_gunicorn(a_port, out / "gunicorn-a-2.log", GUNICORN_ENV)
        wait_ready(a_port, a, 60)
        # nginx takes A back after fail_timeout; until then the load past two thirds is only a trickle.
        _wait_until(lambda: nginx.served(a_port, after=restarted), 60, "nginx passed requests to the restarted A")
        load.gate_open.set()

        # Two thirds in: SIGKILL to the B worker in the middle of a probe; nginx passes the probe to A.
        prober = Prober(load, workload.probe, "probe-b")
        victim = worker_deep_in_a_request(b.pid, workload.long_cpu_ns)
        retried_probe = prober.current
        os.kill(victim, signal.SIGKILL)
        prober.finish()
        load.join(180)
        duration = time.monotonic() - started
        _wait_until(lambda: len(workers(b.pid)) == 2 and victim not in workers(b.pid), 30,
                    "B's master replaced the killed worker")
        assert stop(a) == 0 and stop(b) == 0
        nginx.close()

        report = {"sent": load.sent, "answered": load.answered, "failed": load.failed, "wrong": load.wrong,
                  "retried_by_nginx": nginx.retried(), "upstream_errors": len(nginx.upstream_errors()),
                  "trickle_until_a_is_back": load.extra, "duration_s": round(duration, 1)}
        (OUT / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        with capsys.disabled():
            print(f"\nscale-out: sent {report['sent']}, answered {report['answered']}, failed {report['failed']}, "
                  f"wrong {report['wrong']}, retried-by-nginx {report['retried_by_nginx']} "
                  f"({report['upstream_errors']} upstream errors in nginx's error log), "
                  f"duration {report['duration_s']} s")

        assert load.problems == [], load.problems[:10]
        assert load.sent == load.answered and load.failed == 0 and load.wrong == 0
        assert load.sent >= LOAD_REQUESTS
        # The probe A had at SIGTERM was answered by A itself; the one B's worker had was passed to A.
        assert f" upstream=127.0.0.1:{a_port} upstream_status=200 " in nginx.access(graceful_probe)
        assert f" upstream=127.0.0.1:{b_port}, 127.0.0.1:{a_port} " in nginx.access(retried_probe)
        assert "upstream prematurely closed connection" in nginx.errors()
    finally:
        if load:
            load.abort()
        if nginx:
            nginx.close()
        stop(a)
        stop(b)


def test_sigterm_lets_the_request_in_flight_finish_and_takes_no_new_one(workload, out):
    port = free_port()
    proc = start_gunicorn(port, out / "gunicorn.log", GUNICORN_ENV)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(port, proc)
        outcome: dict = {}

        def in_flight() -> None:
            try:
                with requests.post(url + "/v1/interpretations/batch", data=workload.probe.body, timeout=120,
                                   headers={**AUTH, "Content-Type": "application/json", "X-Request-Id": "in-flight"}) as r:
                    outcome.update(status=r.status_code, body=r.json(), rid=r.headers.get("X-Request-ID"))
            except Exception as exc:
                outcome["error"] = repr(exc)
            outcome["at"] = time.monotonic()

        thread = threading.Thread(target=in_flight, daemon=True)
        thread.start()
        busy = worker_deep_in_a_request(proc.pid, workload.long_cpu_ns)
        proc.send_signal(signal.SIGTERM)
        signalled = time.monotonic()
        # The idle worker leaves at once; from then on nobody accepts a connection.
        _wait_until(lambda: set(workers(proc.pid)) <= {busy}, 20, "the idle worker exited")
        with pytest.raises(requests.ConnectionError):
            requests.post(url + "/v1/interpretations", data=workload.load[0].body, timeout=60,
                          headers={**AUTH, "Content-Type": "application/json"})
        thread.join(120)
        assert "error" not in outcome, outcome.get("error")
        assert outcome["at"] > signalled
        assert (outcome["status"], outcome["rid"]) == (200, "in-flight")
        assert outcome["body"] == workload.probe.expected
        assert proc.wait(timeout=GRACEFUL_TIMEOUT) == 0
    finally:
        stop(proc)


def test_nginx_passes_a_post_on_when_an_upstream_is_down(workload, out):
    require_nginx()
    dead, live = free_port(), free_port()
    proc = start_gunicorn(live, out / "gunicorn.log", GUNICORN_ENV)
    nginx = None
    try:
        wait_ready(live, proc)
        nginx = Nginx(out, [dead, live])
        panels = workload.load[:-1]
        with requests.Session() as session:
            for i in range(20):
                work = panels[i % len(panels)]
                with session.post(nginx.url + work.path, data=work.body, timeout=60,
                                  headers={**AUTH, "Content-Type": "application/json", "X-Request-Id": f"down-{i}"}) as r:
                    assert (r.status_code, r.headers["X-Request-ID"]) == (200, f"down-{i}")
                    assert r.json() == work.expected
            # No X-Request-Id, or one the service would refuse: nginx's own id reaches the service.
            generated = []
            for headers in ({}, {"X-Request-Id": "not a valid id!"}):
                with session.post(nginx.url + "/v1/interpretations", data=panels[0].body, timeout=60,
                                  headers={**AUTH, "Content-Type": "application/json", **headers}) as r:
                    assert r.status_code == 200 and re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"])
                    generated.append(r.headers["X-Request-ID"])
            # A body over nginx's default 1 MiB limit reaches the batch endpoint (16 MiB).
            with session.post(nginx.url + workload.padded.path, data=workload.padded.body, timeout=60,
                              headers={**AUTH, "Content-Type": "application/json"}) as r:
                assert r.status_code == 200, r.text[:300]
                assert r.json() == workload.padded.expected
            with session.get(nginx.url + "/nginx-health", timeout=10) as r:
                assert (r.status_code, r.text) == (200, "ok\n")
        nginx.close()

        refused = [line for line in nginx.upstream_errors() if "connect() failed (111" in line]
        assert refused and all(f"127.0.0.1:{dead}" in line and '"POST /v1/interpretations' in line
                               for line in refused)
        assert any(f" upstream=127.0.0.1:{dead}, 127.0.0.1:{live} upstream_status=502, 200 " in nginx.access(f"down-{i}")
                   for i in range(20))
        for rid in generated:  # the id nginx logged is the one the service received and echoed
            assert nginx.access(rid)
    finally:
        if nginx:
            nginx.close()
        stop(proc)

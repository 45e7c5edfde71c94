"""Large bodies (issue 13): a client that writes its whole body before it reads still receives the 413.

http.client (HTTPConnection.request with a bytes body, or an iterable for a chunked one), requests
(requests.post with data=bytes, or a generator) and curl (Debian's, through subprocess) send 8 MiB and
64 MiB to every door, with a Content-Length and chunked, to the real gunicorn (gunicorn.conf.py, one sync
worker, as `make run` starts it) and to the real deploy/nginx.conf in front of it (as
tests/test_scale_out.py runs it). Each must receive the 413 in its door's media type (problem+json,
an OperationOutcome under /fhir/, HTML for the form), with its X-Request-ID; the one worker must then
serve a panel, never having been replaced; and each refusal must end within a guard against hangs.

Under gunicorn alone the service's drain (service/ops/drain.py) is checked through its debug log line:
a body refused unread is drained byte for byte, a chunked one from one byte past the limit. Its bounds
are checked on a second gunicorn with small ones: a sender that stalls is cut off at the time bound,
an endless one at the byte bound, and a body declared beyond the bound is not read at all.

Figures (client time, drain time, bytes drained) go to test-output/large-bodies/report.json.
No timing is asserted except generous upper bounds against hangs.
"""
from __future__ import annotations

import base64
import http.client
import json
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from service.config import Settings

from .nginx import Nginx, require_nginx
from .conftest import AUTH, ROOT, TEST_KEY
from .servers import free_port, start_gunicorn, stop, wait_ready
from .test_scale_out import workers

pytestmark = pytest.mark.server

MiB = 1024 * 1024
SIZES = {"8MiB": 8 * MiB, "64MiB": 64 * MiB}
GUARD_SECONDS = 30.0  # against hangs only, never a performance target
OUT = ROOT / "test-output" / "large-bodies"
CURL = shutil.which("curl")
DEFAULTS = Settings()
NGINX_LIMIT = 17 * MiB  # deploy/nginx.conf's client_max_body_size (checked below)

JSON, FHIR, FORM = "application/json", "application/fhir+json", "application/x-www-form-urlencoded"
PROBLEM, HTML = "application/problem+json", "text/html"
PANEL = json.dumps({"results": [{"id": "k", "analyte": "potassium", "value": 3.1, "unit": "mmol/L"}]}).encode()


@dataclass(frozen=True)
class Door:
    name: str
    path: str
    spec_path: str | None  # in openapi.yaml; None for the form, which is not part of the contract
    content_type: str
    answer: str  # the media type of its 413
    limit: int

    @property
    def auth(self) -> dict[str, str]:
        """The key as this door takes it: a bearer token, or the form's HTTP Basic password (the form
        needs it beyond loopback, and behind nginx every request comes through a proxy)."""
        if self.name != "form":
            return AUTH
        return {"Authorization": "Basic " + base64.b64encode(f"clinician:{TEST_KEY}".encode()).decode()}


DOORS = [
    Door("panel", "/v1/interpretations", "/v1/interpretations", JSON, PROBLEM, DEFAULTS.max_body_bytes),
    Door("batch", "/v1/interpretations/batch", "/v1/interpretations/batch", JSON, PROBLEM, DEFAULTS.max_batch_bytes),
    Door("fhir", "/fhir/$interpret", "/fhir/$interpret", FHIR, FHIR, DEFAULTS.max_body_bytes),
    Door("cds", "/cds-services/labinterp-panel", "/cds-services/{service_id}", JSON, PROBLEM, DEFAULTS.max_body_bytes),
    Door("form", "/", None, FORM, HTML, DEFAULTS.max_body_bytes),
]
CHUNKED_DOORS = {"panel", "form"}  # read_json's bounded read, and the form's own


def _cases(limit_of: Callable[[Door], int]) -> list:
    """(door, size, framing) for every body over the limit that answers it."""
    return [pytest.param(door, size, framing, id=f"{door.name}-{label}-{framing}")
            for door in DOORS for label, size in SIZES.items() for framing in ("content-length", "chunked")
            if size > limit_of(door) and (framing == "content-length" or door.name in CHUNKED_DOORS)]


# --- the three clients --------------------------------------------------------------------------------

@dataclass
class Answer:
    status: int
    mimetype: str
    headers: dict[str, str]  # lower-case names
    body: bytes
    seconds: float


def _chunks(body: bytes) -> Iterator[bytes]:
    for start in range(0, len(body), MiB):
        yield body[start:start + MiB]


def via_http_client(base: str, door: Door, body: bytes, body_file: Path, chunked: bool, rid: str) -> Answer:
    host, port = base.removeprefix("http://").split(":")
    started = time.monotonic()
    conn = http.client.HTTPConnection(host, int(port), timeout=GUARD_SECONDS)
    try:
        # bytes: sent with a Content-Length, all of it before the answer is read; an iterable: chunked.
        conn.request("POST", door.path, body=_chunks(body) if chunked else body,
                     headers={"Content-Type": door.content_type, "X-Request-Id": rid, **door.auth})
        resp = conn.getresponse()
        data = resp.read()
        headers = {k.lower(): v for k, v in resp.getheaders()}
        return Answer(resp.status, headers.get("content-type", "").split(";")[0], headers, data,
                      time.monotonic() - started)
    finally:
        conn.close()


def via_requests(base: str, door: Door, body: bytes, body_file: Path, chunked: bool, rid: str) -> Answer:
    started = time.monotonic()
    with requests.post(base + door.path, data=_chunks(body) if chunked else body, timeout=GUARD_SECONDS,
                       headers={"Content-Type": door.content_type, "X-Request-Id": rid, **door.auth}) as resp:
        data = resp.content
        headers = {k.lower(): v for k, v in resp.headers.items()}
        return Answer(resp.status_code, headers.get("content-type", "").split(";")[0], headers, data,
                      time.monotonic() - started)


def via_curl(base: str, door: Door, body: bytes, body_file: Path, chunked: bool, rid: str) -> Answer:
    if CURL is None:
        reason = "curl is missing: install Debian's curl (apt-get install curl) for the curl cases"
        print(reason)
        pytest.skip(reason)
    out, head = body_file.with_suffix(f".{rid}.out"), body_file.with_suffix(f".{rid}.head")
    # curl sends `Expect: 100-continue` for a body this large and reads while it sends.
    command = [CURL, "-sS", "--max-time", str(GUARD_SECONDS), "-o", str(out), "-D", str(head),
               "-H", f"Content-Type: {door.content_type}", "-H", f"X-Request-Id: {rid}",
               "-H", f"Authorization: {door.auth['Authorization']}",
               "--data-binary", f"@{body_file}", base + door.path]
    if chunked:
        command[1:1] = ["-H", "Transfer-Encoding: chunked"]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, timeout=GUARD_SECONDS + 10)
    seconds = time.monotonic() - started
    assert done.returncode == 0, f"curl exited {done.returncode}: {done.stderr.decode(errors='replace')[:300]}"
    # The last header block (after `100 Continue`, when there was one) is the answer's.
    block = re.split(r"\r\n\r\n(?=HTTP/)", head.read_bytes().decode("latin-1").strip())[-1].split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in block[1:])}
    data = out.read_bytes()
    out.unlink()
    head.unlink()
    return Answer(int(block[0].split()[1]), headers.get("content-type", "").split(";")[0], headers, data, seconds)


CLIENTS = {"http.client": via_http_client, "requests": via_requests, "curl": via_curl}


# --- the servers --------------------------------------------------------------------------------------

class Gunicorn:
    """One gunicorn with one sync worker, so that "the worker" is unambiguous."""

    def __init__(self, out: Path, name: str, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = out / f"{name}.log"
        self.proc = start_gunicorn(self.port, self.log, {"LABINTERP_WORKERS": "1", **env})
        try:
            wait_ready(self.port, self.proc)
            self.worker = self._the_worker()
        except BaseException:
            stop(self.proc)
            raise

    def _the_worker(self) -> int:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = workers(self.proc.pid)
            if len(found) == 1:
                return found[0]
            time.sleep(0.05)
        raise AssertionError(f"gunicorn {self.proc.pid} has no single worker: {workers(self.proc.pid)}")

    def drain_line(self, rid: str) -> dict | None:
        """The service's drain log line of a request (written before the worker takes the next one)."""
        for line in self.log.read_text(encoding="utf-8", errors="replace").splitlines():
            if '"labinterp.drain"' in line and f'"request_id":"{rid}"' in line:
                return json.loads(line)
        return None

    def assert_same_worker(self) -> None:
        assert workers(self.proc.pid) == [self.worker], "the worker was replaced (killed by its timeout?)"


@pytest.fixture(scope="module")
def out() -> Path:
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    return OUT


@pytest.fixture(scope="module")
def bodies(out) -> dict[int, tuple[bytes, Path]]:
    """Each size as bytes and as a file for curl: an opening brace, then spaces (no patient data)."""
    made = {}
    for size in SIZES.values():
        body = b"{" + b" " * (size - 1)
        path = out / f"body-{size // MiB}MiB.bin"
        path.write_bytes(body)
        made[size] = (body, path)
    yield made
    for _, path in made.values():
        path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def gunicorn(out):
    """The defaults of gunicorn.conf.py and the service; debug logs for the drain's line."""
    server = Gunicorn(out, "gunicorn", {"LABINTERP_LOG_LEVEL": "debug"})
    yield server
    assert stop(server.proc) == 0


@pytest.fixture(scope="module")
def nginx(out, gunicorn):
    require_nginx()
    text = (ROOT / "deploy" / "nginx.conf").read_text(encoding="utf-8")
    assert re.search(r"^\s*client_max_body_size 17m;", text, re.MULTILINE), "NGINX_LIMIT no longer matches"
    assert text.count("larger than 17 MiB") == 3, "nginx's 413 bodies should name its client_max_body_size"
    path = out / "nginx"
    path.mkdir()
    server = Nginx(path, [gunicorn.port])
    yield server
    server.close()


@pytest.fixture(scope="module")
def figures(out):
    rows: list[dict] = []
    yield rows
    (out / "report.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")


# --- what every refusal must look like ----------------------------------------------------------------

class _Resp:
    """Just enough of a response for the contract checker."""

    def __init__(self, answer: Answer):
        self.status_code, self.mimetype, self._body = answer.status, answer.mimetype, answer.body

    def get_data(self, as_text: bool = False):
        return self._body.decode() if as_text else self._body


def assert_refused(answer: Answer, door: Door, rid: str, conform) -> None:
    shown = answer.body[:300]
    assert (answer.status, answer.mimetype) == (413, door.answer), (answer.status, answer.mimetype, shown)
    assert answer.headers.get("x-request-id") == rid
    assert answer.headers.get("x-content-type-options") == "nosniff"
    assert answer.seconds < GUARD_SECONDS
    if door.spec_path is None:
        text = answer.body.decode()
        assert text.startswith("<!doctype html>") and "nothing was interpreted" in text.lower(), shown
        return
    data = conform("post", door.spec_path, _Resp(answer))  # documented, and valid against openapi.yaml
    if door.answer == FHIR:
        assert data["resourceType"] == "OperationOutcome" and data["issue"][0]["code"] == "too-costly", data
    else:
        assert (data["status"], data["type"]) == (413, "urn:labinterp:problem:body-too-large"), data


def assert_serves_a_panel(base: str) -> None:
    with requests.post(base + "/v1/interpretations", data=PANEL, timeout=GUARD_SECONDS,
                       headers={"Content-Type": JSON, **AUTH}) as resp:
        assert resp.status_code == 200, resp.text[:300]
        assert resp.json()["results"][0]["band"] == "low"


def _refuse(client: str, base: str, door: Door, size: int, framing: str, bodies, rid: str) -> Answer:
    body, body_file = bodies[size]
    return CLIENTS[client](base, door, body, body_file, framing == "chunked", rid)


# --- gunicorn alone -----------------------------------------------------------------------------------

@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("door, size, framing", _cases(lambda door: door.limit))
def test_gunicorn_alone_the_client_receives_the_413(gunicorn, bodies, figures, conform, capsys, client, door, size,
                                                    framing):
    rid = f"large-{client}-{door.name}-{size // MiB}-{framing}".replace(".", "-")
    answer = _refuse(client, gunicorn.url, door, size, framing, bodies, rid)
    assert_refused(answer, door, rid, conform)
    assert_serves_a_panel(gunicorn.url)  # the one worker is free again...
    gunicorn.assert_same_worker()        # ...and is the same one
    line = gunicorn.drain_line(rid)      # written before that worker took the panel
    figures.append({"via": "gunicorn", "client": client, "door": door.name, "size": size, "framing": framing,
                    "client_s": round(answer.seconds, 3), "drain_ms": line and line["drain_ms"],
                    "drained": line and line["drained_bytes"], "outcome": line and line["outcome"]})
    if client == "curl":
        # curl reads while it sends: it sees the 413 and stops, so less may arrive (even nothing, and
        # then there is no line).
        assert line is None or (line["outcome"] in ("end", "client-gone") and line["drained_bytes"] <= size), line
        return
    assert line is not None, f"no drain line for {rid}"
    assert (line["status"], line["outcome"]) == (413, "end"), line
    if (client, door.name, framing) == ("http.client", "panel", "content-length"):
        with capsys.disabled():
            print(f"\nlarge bodies: {size // MiB} MiB refused under gunicorn alone: http.client had its 413 after "
                  f"{answer.seconds * 1000:.0f} ms, the worker drained the body in {line['drain_ms']:.0f} ms")
    if framing == "content-length":
        assert line["drained_bytes"] == size, line  # refused unread, then drained to the last byte
    else:
        # read_json and the form read at most one byte past the limit, the drain the rest.
        assert size - door.limit - 1 <= line["drained_bytes"] < size, line


# --- behind deploy/nginx.conf -------------------------------------------------------------------------

def _access(nginx: Nginx, rid: str) -> re.Match:
    """nginx's access-log line of a request (written when it has finished with the connection)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in nginx.access_log.read_text().splitlines() if line.endswith(f" rid={rid}")]
        if lines or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 1, (rid, lines)
    found = re.search(r'" (\d{3}) \d+ (\d+) \S+ upstream=(\S+) upstream_status=(\S+) ', lines[0])
    assert found, lines[0]
    return found


@pytest.mark.parametrize("client", CLIENTS)
@pytest.mark.parametrize("door, size, framing", _cases(lambda door: min(door.limit, NGINX_LIMIT)))
def test_behind_nginx_the_client_receives_the_413(nginx, gunicorn, bodies, figures, conform, client, door, size,
                                                  framing):
    rid = f"nginx-{client}-{door.name}-{size // MiB}-{framing}".replace(".", "-")
    answer = _refuse(client, nginx.url, door, size, framing, bodies, rid)
    assert_refused(answer, door, rid, conform)
    assert_serves_a_panel(nginx.url)
    gunicorn.assert_same_worker()
    status, request_length, upstream, upstream_status = _access(nginx, rid).groups()
    figures.append({"via": "nginx", "client": client, "door": door.name, "size": size, "framing": framing,
                    "client_s": round(answer.seconds, 3), "answered_by": "service" if upstream != "-" else "nginx",
                    "request_length": int(request_length)})
    assert status == "413"
    if size <= NGINX_LIMIT:
        # Within nginx's limit: passed on once, and it is the service's 413 that comes back (no 502,
        # no retry on another replica).
        assert (upstream, upstream_status) == (f"127.0.0.1:{gunicorn.port}", "413")
    else:
        assert (upstream, upstream_status) == ("-", "-")  # nginx's own, in the door's shape
        if client == "curl" and framing == "content-length":
            # Refused on its Content-Length before `100 Continue`: curl sent no body at all.
            assert int(request_length) < 64 * 1024, request_length


# --- the drain's bounds -------------------------------------------------------------------------------

BOUND_SECONDS, BOUND_BYTES = 1, 4 * MiB


@pytest.fixture(scope="module")
def bounded(out):
    """Small bounds, so that reaching them is quick."""
    server = Gunicorn(out, "gunicorn-bounded", {"LABINTERP_DRAIN_SECONDS": str(BOUND_SECONDS),
                                                "LABINTERP_DRAIN_MAX_BYTES": str(BOUND_BYTES)})
    yield server
    assert stop(server.proc) == 0


class RawClient:
    """A client on a bare socket: it sends the head, reads the answer while a thread sends the body,
    and tells when the server has closed the connection."""

    def __init__(self, port: int, head: bytes, sender: Callable[[socket.socket], None] | None = None):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=GUARD_SECONDS)
        self.sock.sendall(head)
        self.sent = 0
        self.thread = threading.Thread(target=self._send, args=(sender,), daemon=True) if sender else None
        if self.thread:
            self.thread.start()

    def _send(self, sender: Callable[[socket.socket], None]) -> None:
        try:
            sender(self)
        except OSError:  # the server closed: what the test waits for
            pass

    def answer(self) -> tuple[int, bytes]:
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(65536)
            assert chunk, f"closed before an answer: {buf[:200]!r}"
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
        while len(rest) < length:
            chunk = self.sock.recv(65536)
            assert chunk, "closed in the middle of the answer"
            rest += chunk
        return int(head.split()[1]), rest[:length]

    def wait_closed(self) -> float:
        """Seconds until the server closes (EOF or reset)."""
        started = time.monotonic()
        try:
            while self.sock.recv(65536):
                pass
        except ConnectionResetError:
            pass
        return time.monotonic() - started

    def close(self) -> None:
        self.sock.close()
        if self.thread:
            self.thread.join(GUARD_SECONDS)


def _head(rid: str, length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (f"POST /v1/interpretations HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"X-Request-Id: {rid}\r\nAuthorization: {AUTH['Authorization']}\r\n{framing}\r\n\r\n").encode()


def _wait_line(server: Gunicorn, rid: str) -> dict:
    deadline = time.monotonic() + GUARD_SECONDS
    while (line := server.drain_line(rid)) is None:
        assert time.monotonic() < deadline, f"no drain line for {rid}"
        time.sleep(0.05)
    return line


def test_a_sender_that_trickles_is_cut_off_at_the_time_bound(bounded):
    def trickle(client: RawClient) -> None:
        client.sock.sendall(b"{" + b" " * 65535)
        for _ in range(600):  # a byte every 0.1 s: it would go on for a minute
            client.sock.sendall(b" ")
            time.sleep(0.1)

    client = RawClient(bounded.port, _head("trickle", 2 * MiB), trickle)  # over 1 MiB, under the bound
    try:
        assert client.answer()[0] == 413
        # The time bound, then gunicorn's own lingering close (at most 2 s); far below a minute.
        assert client.wait_closed() < BOUND_SECONDS + 2 + 10
    finally:
        client.close()
    line = _wait_line(bounded, "trickle")
    assert line["outcome"] == "time-bound" and line["drained_bytes"] < 2 * MiB, line
    assert_serves_a_panel(bounded.url)
    bounded.assert_same_worker()


def test_an_endless_chunked_sender_is_cut_off_at_the_byte_bound(bounded):
    chunk = b"10000\r\n" + b" " * 65536 + b"\r\n"

    def endless(client: RawClient) -> None:
        client.sock.sendall(b"1\r\n{\r\n")
        while True:
            client.sock.sendall(chunk)

    client = RawClient(bounded.port, _head("endless", None), endless)
    try:
        assert client.answer()[0] == 413
        assert client.wait_closed() < GUARD_SECONDS
    finally:
        client.close()
    line = _wait_line(bounded, "endless")
    assert line["outcome"] == "bytes-bound" and line["drained_bytes"] == BOUND_BYTES + 1, line
    assert_serves_a_panel(bounded.url)
    bounded.assert_same_worker()


def test_a_body_declared_beyond_the_bound_is_not_drained(bounded):
    client = RawClient(bounded.port, _head("declared", 1024 * MiB))  # the head only: nothing to reset
    try:
        assert client.answer()[0] == 413
        assert client.wait_closed() < GUARD_SECONDS
    finally:
        client.close()
    line = _wait_line(bounded, "declared")
    assert (line["outcome"], line["drained_bytes"]) == ("declared-over-bound", 0), line
    assert_serves_a_panel(bounded.url)
    bounded.assert_same_worker()

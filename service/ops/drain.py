"""A refused request body is read to its end after the answer, within bounds, so the client gets the answer.

Why. The service often answers before it has read the whole request body: 413 to a body over its
limit (with a Content-Length over the limit, without reading a byte), and 401, 404, 405 or 415 without
looking at the body at all. The rest of the body is still on its way. If the server then closes the
connection, the kernel answers the unread bytes with a TCP reset, and a client that writes its whole
body before it reads (Python's http.client, requests, most SDKs) fails with "broken pipe" or
"connection reset" instead of reading the answer waiting in its receive buffer. RFC 9112 §9.6 asks for
a lingering close: keep reading what the client sends until it is done, then close. gunicorn's sync
worker lingers for at most 64 KiB and 2 s, far less than a body of megabytes; behind deploy/nginx.conf
the reset also reached nginx, which answered 502 instead of the service's 413.

What. `DrainUnreadBody` wraps the WSGI application. When a request may carry a body, wsgi.input is
counted as the application reads it, the response is handed to the server wrapped, and in its close() (which the server calls after writing
the last byte of the answer) whatever the application left unread of the body is read and thrown
away, through wsgi.input, so the framing (Content-Length or chunked) says where the body ends and the
connection stays in step. The answer goes out first: a client that reads while it sends (curl) sees
the 413 at once and stops sending, so its drain is short; one that writes everything first finds the
answer when it is done. Only servers that end wsgi.input themselves (`wsgi.input_terminated`, which
gunicorn always sets) get this: elsewhere a read past the body could block.

Bounds, so that a slow, stalled or endless sender cannot keep a worker:

- bytes: at most `max_bytes` are drained (LABINTERP_DRAIN_MAX_BYTES, 128 MiB by default: twice the
  64 MiB that the tests send, eight times the batch limit). When what is left of a body by its
  Content-Length is more, it is not drained at all, since it could not be finished anyway; a chunked
  body that goes on past the bound is abandoned. Either way its client may then see a reset.
- time: at most `seconds` of wall-clock time (LABINTERP_DRAIN_SECONDS, 5 s by default); 5 s lets a
  64 MiB body arrive at about 110 Mbit/s. A socket timeout would not do: gunicorn's body reader calls
  recv() until it holds what was asked for, so a client that trickles a byte at a time would reset it
  on every call. Instead one watchdog thread per worker process shuts the reading side of the
  connection (shutdown(SHUT_RD), on gunicorn's `environ["gunicorn.socket"]`, the server's extension
  key that its own websocket example reads) when a drain's time is up: a blocked read returns at once
  and the drain stops. It must stay well below gunicorn's worker timeout (LABINTERP_TIMEOUT, 30 s): a
  sync worker does not report alive while it drains. Without that key the deadline is only checked
  between reads, and the server's worker timeout is the backstop.

After an abandoned drain gunicorn's own lingering close (at most 64 KiB and 2 s) follows, so the
worst a sender can hold a worker for, after its answer, is about `seconds` + 2 s.

On loopback a refused 64 MiB body is drained in 30-200 ms, 8 MiB in 5-30 ms (docs/api.md, Limits). Behind
nginx nothing larger than its client_max_body_size (17m) reaches gunicorn, and nginx sends at
loopback or LAN speed. The drain happens after the service's own request log line, so `duration_ms`
does not include it; an abandoned drain is logged (byte count, time and reason, never a byte of the
body) at info level, a completed one at debug level.
"""
from __future__ import annotations

import heapq
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

log = logging.getLogger("labinterp.drain")

# gunicorn receives up to 1 MiB at a time for a body of known length; smaller reads of its buffer copy it again.
READ_SIZE = 1024 * 1024

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class DrainUnreadBody:
    """WSGI middleware: after the answer, read and discard what is left of the request body (see module)."""

    def __init__(self, app: WSGIApp, max_bytes: int, seconds: float):
        self.app, self.max_bytes, self.seconds = app, max_bytes, seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("wsgi.input_terminated") or not _may_have_body(environ):
            return self.app(environ, start_response)  # GETs and the like: the answer as it is, sendfile kept
        body = environ["wsgi.input"] = _CountedInput(environ["wsgi.input"])
        answered: list[str] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            answered[:] = [status.split(" ", 1)[0], next((v for k, v in headers if k.lower() == "x-request-id"), "")]
            return start_response(status, headers, exc_info)

        return _ThenDrain(self.app(environ, start), environ, body, answered, self)

    def drain(self, environ: dict[str, Any], body: _CountedInput) -> tuple[int, float, str]:
        """Read and discard the rest of the body: (bytes read, seconds, why it stopped)."""
        started = time.monotonic()
        declared = _content_length(environ)
        if declared is not None:
            if declared <= body.consumed:
                return 0, 0.0, "end"  # the application read it all: nothing to do (most requests)
            if declared - body.consumed > self.max_bytes:
                return 0, 0.0, "declared-over-bound"  # could not be finished within the bound: not begun
        stream = body.stream
        deadline = started + self.seconds
        sock = environ.get("gunicorn.socket")
        watch = _WATCHDOG.watch(sock, deadline) if hasattr(sock, "shutdown") else None
        drained, outcome = 0, "bytes-bound"
        try:
            while drained <= self.max_bytes:
                if time.monotonic() >= deadline:
                    outcome = "time-bound"
                    break
                chunk = stream.read(min(READ_SIZE, self.max_bytes + 1 - drained))
                if not chunk:
                    outcome = "end"
                    break
                drained += len(chunk)
        except OSError:  # reset, or closed before the end (gunicorn's NoMoreData is an OSError): nothing left to read
            outcome = "client-gone"
        except Exception as exc:
            outcome = f"error:{type(exc).__name__}"  # a malformed chunk, say: the type only
        finally:
            if watch is not None and _WATCHDOG.release(watch):
                outcome = "time-bound"  # what looked like the end was the watchdog shutting the socket
        return drained, time.monotonic() - started, outcome


class _Watchdog:
    """One thread per process that shuts the reading side of a drained connection at its deadline.

    Started by the first drain in each process (after gunicorn forked its workers: a thread does not
    survive a fork). A drain registers before it reads and releases after; only a registration still
    held at its deadline is acted on, under the same lock, so a connection that is done is never touched.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Watch]] = []
        self._count = 0
        self._pid = 0

    def watch(self, sock: Any, deadline: float) -> _Watch:
        entry = _Watch(sock)
        with self._lock:
            if self._pid != os.getpid():
                self._pid, self._heap = os.getpid(), []
                threading.Thread(target=self._run, name="labinterp-drain-watchdog", daemon=True).start()
            self._count += 1
            heapq.heappush(self._heap, (deadline, self._count, entry))
            if self._heap[0][2] is entry:
                self._lock.notify()
        return entry

    def release(self, entry: _Watch) -> bool:
        """Stop watching; whether the deadline came first and the socket was shut."""
        with self._lock:
            entry.active = False
            return entry.fired

    def _run(self) -> None:
        with self._lock:
            while True:
                while self._heap and not self._heap[0][2].active:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._lock.wait()
                    continue
                left = self._heap[0][0] - time.monotonic()
                if left > 0:
                    self._lock.wait(left)
                    continue
                entry = heapq.heappop(self._heap)[2]
                entry.fired = True
                try:
                    entry.sock.shutdown(socket.SHUT_RD)  # a blocked recv() returns b"" at once
                except OSError:
                    pass


class _Watch:
    __slots__ = ("active", "fired", "sock")

    def __init__(self, sock: Any):
        self.sock, self.active, self.fired = sock, True, False


_WATCHDOG = _Watchdog()


class _ThenDrain:
    """The application's response iterable; close() closes it, then drains."""

    def __init__(self, inner: Iterable[bytes], environ: dict[str, Any], body: _CountedInput, answered: list[str],
                 middleware: DrainUnreadBody):
        self.inner, self.environ, self.body, self.answered, self.middleware = inner, environ, body, answered, middleware

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.inner)

    def close(self) -> None:
        try:
            close = getattr(self.inner, "close", None)
            if close is not None:
                close()
        finally:
            drained, seconds, outcome = self.middleware.drain(self.environ, self.body)
            if drained or outcome != "end":
                status, request_id = (self.answered + ["", ""])[:2]
                done = outcome in ("end", "client-gone")
                log.log(logging.DEBUG if done else logging.INFO,
                        "unread request body drained" if done else "unread request body abandoned",
                        extra={"request_id": request_id, "status": int(status) if status.isdigit() else None,
                               "drained_bytes": drained, "drain_ms": round(seconds * 1000, 2), "outcome": outcome})


class _CountedInput:
    """wsgi.input as the application sees it, counting what it reads (to know what is left of a body)."""

    __slots__ = ("consumed", "stream")

    def __init__(self, stream: Any):
        self.stream, self.consumed = stream, 0

    def read(self, *size: Any) -> bytes:
        data = self.stream.read(*size)
        self.consumed += len(data)
        return data

    def readline(self, *size: Any) -> bytes:
        data = self.stream.readline(*size)
        self.consumed += len(data)
        return data

    def readlines(self, *hint: Any) -> list[bytes]:
        lines = self.stream.readlines(*hint)
        self.consumed += sum(map(len, lines))
        return lines

    def __iter__(self) -> Iterator[bytes]:
        for line in self.stream:
            self.consumed += len(line)
            yield line


def _content_length(environ: dict[str, Any]) -> int | None:
    try:
        value = int(environ.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return value if value >= 0 else None


def _may_have_body(environ: dict[str, Any]) -> bool:
    return bool(_content_length(environ)) or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()

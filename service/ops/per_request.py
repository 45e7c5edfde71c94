"""Per-request bookkeeping as one WSGI middleware: a request id, the time taken (also sent as
Server-Timing), the headers every answer carries, the request metrics and one JSON log line.

It wraps the Flask app, so it sees every answer, errors included; the route template comes from the
request Werkzeug keeps in the environ (`werkzeug.request`, which Flask's request populates) while the
answer starts, before Flask lets go of its request. The log
line is written straight to stderr in the service's JSON format (service/ops/logs.py): one write per
line, without the logging machinery on every request. It holds the request id, method, route, status,
duration and how many results were interpreted; never anything from the request body."""
from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Iterable
from typing import Any

from . import metrics
from .logs import entry, log_level

LOGGER = "labinterp.requests"
REQUEST_ID_KEY = "labinterp.request_id"  # in the WSGI environ, for the app's own error log
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
ALWAYS = (("X-Content-Type-Options", "nosniff"), ("Cache-Control", "no-store"))  # results are patient data
_OURS = frozenset({"x-request-id", "server-timing", *(name.lower() for name, _ in ALWAYS)})

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def emit(line: bytes) -> None:
    """Write one log line to stderr in a single write (lines of several workers never interleave)."""
    os.write(2, line + b"\n")


def _route(environ: dict[str, Any]) -> str:
    request = environ.get("werkzeug.request")
    rule = getattr(request, "url_rule", None)
    return rule.rule if rule is not None else "unmatched"


class RequestBookkeeping:
    def __init__(self, app: WsgiApp):
        self.app = app
        self.log_requests = log_level() in ("DEBUG", "INFO")

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        given = environ.get("HTTP_X_REQUEST_ID", "")
        request_id = given if _REQUEST_ID.match(given) else os.urandom(16).hex()
        environ[REQUEST_ID_KEY] = request_id
        answered: list[Any] = []

        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            seconds = time.perf_counter() - started
            headers[:] = [h for h in headers if h[0].lower() not in _OURS]
            headers += [*ALWAYS, ("X-Request-ID", request_id), ("Server-Timing", f"app;dur={seconds * 1000:.2f}")]
            answered[:] = [int(status[:3]), int(seconds * 1e9), _route(environ)]
            return start_response(status, headers, exc_info)

        counted = metrics.count_results()
        try:
            body = self.app(environ, start)
        finally:
            metrics.stop_counting(counted)
        status, nanoseconds, route = answered or (500, int((time.perf_counter() - started) * 1e9), "unmatched")
        method = environ.get("REQUEST_METHOD", "")
        metrics.observe_request(route, method, status, nanoseconds / 1e9)
        if self.log_requests:
            emit(entry(time.time(), "info", LOGGER, "request", (
                ("request_id", request_id), ("method", method), ("route", route), ("status", status),
                ("duration_ms", round(nanoseconds / 1e6, 2)), ("results", counted.total))))
        return body

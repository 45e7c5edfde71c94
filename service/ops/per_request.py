"""Per-request bookkeeping: a request id, the time taken (also sent as Server-Timing), one JSON log
line and the metrics of each request. Views hand their reports over with `note_reports`."""
from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterable

from flask import Flask, Response, g, request

from ..core.report import PanelReport
from . import metrics

log = logging.getLogger("labinterp.requests")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def note_reports(reports: Iterable[PanelReport]) -> None:
    """What a view interpreted, for the request's log line and the result metrics."""
    g.setdefault("reports", []).extend(reports)


def install(app: Flask) -> None:
    """Register first, so that the time and the id cover every other hook (authentication too)."""

    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex

    @app.after_request
    def _finish(resp: Response) -> Response:
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        request_id = g.get("request_id") or uuid.uuid4().hex
        resp.headers["X-Request-ID"] = request_id
        resp.headers["Server-Timing"] = f"app;dur={seconds * 1000:.2f}"
        route = request.url_rule.rule if request.url_rule is not None else "unmatched"
        results = metrics.observe_reports(g.get("reports", ()))
        metrics.observe_request(route, request.method, resp.status_code, seconds)
        if log.isEnabledFor(logging.INFO):
            log.info("request", extra={"request_id": request_id, "method": request.method, "route": route,
                                       "status": resp.status_code, "duration_ms": round(seconds * 1000, 2),
                                       "results": results})
        return resp

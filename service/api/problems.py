"""RFC 9457 problem details: every error response of the service has this one shape."""
from __future__ import annotations

from typing import Iterable

from flask import Response, json
from werkzeug.http import HTTP_STATUS_CODES

from ..core.errors import Problem

PROBLEM_JSON = "application/problem+json"

# Problem types are URNs: stable identifiers that need no web server behind them.
TYPES = {
    400: "urn:labinterp:problem:malformed-request",
    404: "urn:labinterp:problem:not-found",
    412: "urn:labinterp:problem:prefetch-missing",
    413: "urn:labinterp:problem:body-too-large",
    415: "urn:labinterp:problem:unsupported-media-type",
    422: "urn:labinterp:problem:invalid-content",
    500: "urn:labinterp:problem:internal-error",
}


class ApiProblem(Exception):
    """Raised by adapters; rendered by the app's error handler."""

    def __init__(self, status: int, detail: str, problems: Iterable[Problem] = (), title: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.title = status, detail, title
        self.problems = tuple(problems)


def problem_response(status: int, detail: str, problems: Iterable[Problem] = (), title: str | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    body = {
        "type": TYPES.get(status, "about:blank"),
        "title": title or HTTP_STATUS_CODES.get(status, "Error"),
        "status": status,
        "detail": detail,
        "errors": [{"pointer": p.pointer(), "message": p.message} for p in problems],
    }
    resp = Response(json.dumps(body), status=status, mimetype=PROBLEM_JSON)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp

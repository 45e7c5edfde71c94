"""RFC 9457 problem details: every error response of the service has this one shape."""
from __future__ import annotations

from collections.abc import Iterable

from flask import Response, json
from werkzeug.http import HTTP_STATUS_CODES

from ..core.errors import Problem
from .problem_types import PROBLEM_JSON, TYPES




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

"""RFC 9457 problem documents, apart from Flask so that the command line and the batch use them too."""
from __future__ import annotations

from typing import Any
from collections.abc import Iterable
from http import HTTPStatus

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


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_document(status: int, detail: str, problems: Iterable[Problem] = (), title: str | None = None) -> dict[str, Any]:
    """The one shape of every error the service answers: type, title, status, detail, located errors."""
    return {"type": TYPES.get(status, "about:blank"), "title": title or _title(status), "status": status,
            "detail": detail, "errors": [{"pointer": p.pointer(), "message": p.message} for p in problems]}

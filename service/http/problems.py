"""RFC 9457 problem responses: every error of the JSON doors has this one shape."""
from __future__ import annotations

from collections.abc import Iterable

from flask import Response

from ..core.errors import Problem
from .problem_types import PROBLEM_JSON, problem_document
from .writer import json_response


class ApiProblem(Exception):
    """Raised by adapters; rendered by the error handler of the door it came through."""

    def __init__(self, status: int, detail: str, problems: Iterable[Problem] = (), title: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.title = status, detail, title
        self.problems = tuple(problems)


def problem_response(status: int, detail: str, problems: Iterable[Problem] = (), title: str | None = None,
                     headers: dict[str, str] | None = None) -> Response:
    return json_response(problem_document(status, detail, problems, title), status, PROBLEM_JSON, headers)

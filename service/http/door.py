"""What a front door hands the application factory: its blueprint, its part of the contract, and how an
HTTP-level error (401, 404, 405, 413, 415, 500) is said in its protocol."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Callable

from flask import Blueprint, Response

from .contract import ApiDoc
from .problems import problem_response

ErrorRenderer = Callable[[int, str, "dict[str, str] | None"], Response]


def problem_error(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """The JSON doors' error: RFC 9457 problem+json."""
    return problem_response(status, detail, headers=headers)


@dataclass(frozen=True)
class Door:
    blueprint: Blueprint
    doc: ApiDoc | None = None  # None: not part of the JSON contract (the form's HTML pages)
    render_error: ErrorRenderer = problem_error
    refine_contract: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def prefix(self) -> str:
        return self.blueprint.url_prefix or ""

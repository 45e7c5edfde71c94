"""Many panels at once, each with its own report or its own problem, in order. No Flask here:
POST /v1/interpretations/batch and the `labinterp interpret` command both run this."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable, Iterator

from marshmallow import Schema

from ...core import InputError, Problem, interpret_panel
from ...core.knowledge import Knowledge
from ...core.report import PanelReport
from ...http.problem_types import TYPES
from .adapter import parse_panel

MAX_PANELS = 1000


@dataclass(frozen=True)
class Interpreter:
    """The single-panel parse and core, with the schemas built once."""

    kb: Knowledge
    panel_schema: Schema
    result_schema: Schema
    max_results: int

    def one(self, index: int, body: Any, at: tuple[str | int, ...] = ()) -> dict[str, Any]:
        """{"index", "status": 200, "report"} or {"index", "status": 422, "problem"} for one panel;
        problem pointers start with `at` (where the panel sits in the request)."""
        return self.outcome(index, body, at)[0]

    def outcome(self, index: int, body: Any, at: tuple[str | int, ...] = ()) -> tuple[dict[str, Any], PanelReport | None]:
        """`one`, with the report itself (None for a problem) for whoever counts results."""
        try:
            panel = parse_panel(body, self.panel_schema, self.result_schema, self.kb, self.max_results)
            report = interpret_panel(panel, self.kb)
        except InputError as exc:
            return {"index": index, "status": 422, "problem": {
                "type": TYPES[422], "title": "Unprocessable Content", "status": 422,
                "detail": f"{len(exc.problems)} problem(s) in this panel",
                "errors": [{"pointer": Problem(at + p.path, p.message).pointer(), "message": p.message}
                           for p in exc.problems]}}, None
        return {"index": index, "status": 200, "report": report.to_dict()}, report

    def outcomes(self, bodies: Iterable[Any],
                 at: tuple[str | int, ...] | None = None) -> Iterator[tuple[dict[str, Any], PanelReport | None]]:
        """Each panel's `outcome`, in order; with `at`, pointers are into the whole request (at + index)."""
        for i, body in enumerate(bodies):
            yield self.outcome(i, body, () if at is None else at + (i,))

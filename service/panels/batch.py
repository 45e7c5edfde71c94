"""Many panels at once (POST /v1/interpretations/batch and `labinterp interpret`): the envelope's
rules and the shape of each panel's entry, its report or its own RFC 9457 problem, in order."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from marshmallow import ValidationError, fields, validate

from ..core import Problem
from ..core.errors import Path, flatten_messages
from ..core.strict import StrictSchema
from ..http.problem_types import problem_document
from .interpret import Outcome

MAX_PANELS = 1000


@dataclass(frozen=True)
class BatchLimits:
    max_panels: int = MAX_PANELS
    max_results: int = 20_000  # all panels together (LABINTERP_MAX_BATCH_RESULTS)


class BatchSchema(StrictSchema):
    """The envelope; each panel in it is read on its own, so one bad panel fails only itself."""

    panels = fields.List(fields.Raw(allow_none=True, metadata={
        "description": "A panel as `Panel`. An invalid one gets its own 422 problem in the response; it does "
                       "not fail the batch.", "anyOf": [{"$ref": "#/components/schemas/Panel"}, {}]}),
        required=True, validate=validate.Length(min=1, max=MAX_PANELS))


_BATCH = BatchSchema()


def envelope_problems(body: Any, limits: BatchLimits) -> list[Problem]:
    """What is wrong with `{"panels": [...]}` as a whole; each panel is judged on its own later."""
    if not isinstance(body, dict):
        return [Problem((), "expected a JSON object with `panels`")]
    try:
        panels = _BATCH.load(body)["panels"]
    except ValidationError as exc:
        return flatten_messages(exc.messages)
    results = sum(len(p["results"]) for p in panels if isinstance(p, dict) and isinstance(p.get("results"), list))
    if results > limits.max_results:
        return [Problem(("panels",), f"at most {limits.max_results} results in one batch, all panels together; "
                                     f"got {results}: split the batch")]
    return []


def outcome_document(index: int, outcome: Outcome, at: Path = ()) -> dict[str, Any]:
    """{"index", "status": 200, "report"} or {"index", "status": 422, "problem"}; the problem's pointers
    start with `at`, where the panel sits in the request."""
    if outcome.report is not None:
        return {"index": index, "status": 200, "report": outcome.report.to_dict()}
    problems = [Problem(at + p.path, p.message) for p in outcome.problems]
    return {"index": index, "status": 422,
            "problem": problem_document(422, f"{len(problems)} problem(s) in this panel", problems)}

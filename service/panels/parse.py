"""JSON body -> core PanelInput; marshmallow messages and core problems -> one list of pointers."""
from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError

from ..core import Context, InputError, LabRange, PanelInput, Patient, Problem, ResultInput
from ..core.errors import flatten_messages
from ..core.interpret import result_problems
from ..core.knowledge import Knowledge


def to_result(d: dict[str, Any]) -> ResultInput:
    rng = d.get("reference_range")
    return ResultInput(
        value=d["value"], unit=d["unit"], analyte=d.get("analyte"), code=d.get("code"), id=d.get("id"),
        comparator=d.get("comparator"),
        reference_range=None if rng is None else LabRange(rng.get("low"), rng.get("high"), rng.get("unit"), rng.get("text")),
    )


def to_panel(d: dict[str, Any]) -> PanelInput:
    p, c = d.get("patient") or {}, d.get("context") or {}
    return PanelInput(
        results=tuple(to_result(r) for r in d["results"]),
        patient=Patient(p.get("age_years"), p.get("sex")),
        context=Context(
            b12_injection_at=c.get("b12_injection_at"), b12_therapy_started_at=c.get("b12_therapy_started_at"),
            medications=frozenset(c.get("medications", ())), diet=c.get("diet"),
            symptoms=frozenset(c.get("symptoms", ())), conditions=frozenset(c.get("conditions", ())),
            hemolyzed=bool((c.get("specimen") or {}).get("hemolyzed", False)),
        ),
        collected_at=d.get("collected_at"),
    )


def _order(p: Problem) -> tuple:
    return tuple((0, x, "") if isinstance(x, int) else (1, 0, x) for x in p.path)


def parse_panel(body: Any, panel_schema: Schema, result_schema: Schema, kb: Knowledge, max_results: int) -> PanelInput:
    """Validate structure and content together, so that every problem is reported at once."""
    if not isinstance(body, dict):
        raise InputError([Problem((), f"expected a JSON object, got {type(body).__name__}")])
    results = body.get("results")
    if isinstance(results, list) and len(results) > max_results:
        # Checked first and alone: a huge list is refused without looking at its items.
        raise InputError([Problem(("results",), f"at most {max_results} results per panel; got {len(results)}")])
    try:
        return to_panel(panel_schema.load(body))
    except ValidationError as exc:
        problems = flatten_messages(exc.messages)
    # Structure is broken somewhere; still check the content of every result, field by field.
    if isinstance(results, list):
        flagged = {p.path[:3] for p in problems if len(p.path) > 2 and p.path[0] == "results"}
        for i, raw in enumerate(results):
            if not isinstance(raw, dict) or ("results", i) in {p.path[:2] for p in problems if len(p.path) == 2}:
                continue
            item = to_result_lenient(raw, result_schema)
            for q in result_problems(item, kb):
                path = ("results", i) + q.path
                required_and_missing = q.path[:1] in (("value",), ("unit",)) and q.path[0] not in raw
                if path[:3] not in flagged and not required_and_missing:
                    problems.append(Problem(path, q.message))
    raise InputError(sorted(problems, key=_order))


def to_result_lenient(raw: dict[str, Any], result_schema: Schema) -> ResultInput:
    """The well-formed fields of a result whose structure is partly broken."""
    try:
        data = result_schema.load(raw, unknown=EXCLUDE, partial=True)
    except ValidationError as exc:
        data = exc.valid_data if isinstance(exc.valid_data, dict) else {}
    data.setdefault("value", None)
    data.setdefault("unit", None)
    if not isinstance(data.get("reference_range"), dict):
        data.pop("reference_range", None)
    return to_result(data)

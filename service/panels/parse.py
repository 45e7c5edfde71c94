"""JSON body -> core PanelInput; marshmallow messages and core problems -> one list of pointers."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError

from ..core import Context, InputError, LabRange, PanelInput, Patient, Problem, ResultInput
from ..core.errors import flatten_messages
from ..core.history import history_problems
from ..core.interpret import result_problems
from ..core.knowledge import Knowledge
from ..core.model import HistoryInput


def to_result(d: dict[str, Any]) -> ResultInput:
    rng = d.get("reference_range")
    return ResultInput(
        value=d["value"], unit=d["unit"], analyte=d.get("analyte"), code=d.get("code"), id=d.get("id"),
        comparator=d.get("comparator"),
        reference_range=None if rng is None else LabRange(rng.get("low"), rng.get("high"), rng.get("unit"), rng.get("text")),
    )


def to_history(d: dict[str, Any]) -> HistoryInput:
    return HistoryInput(value=d["value"], unit=d["unit"], collected_at=d.get("collected_at"), analyte=d.get("analyte"),
                        code=d.get("code"))


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
        history=tuple(to_history(h) for h in d.get("history", ())),
    )


def _order(p: Problem) -> tuple:
    return tuple((0, x, "") if isinstance(x, int) else (1, 0, x) for x in p.path)


def _too_many(body: dict[str, Any], limits: dict[str, int]) -> list[Problem]:
    """Lists over their bound, refused first and alone, without looking at their items."""
    return [Problem((key,), f"at most {bound} {key} per panel; got {len(body[key])}")
            for key, bound in limits.items() if isinstance(body.get(key), list) and len(body[key]) > bound]


def parse_panel(body: Any, schemas: dict[str, Schema], kb: Knowledge, limits: dict[str, int]) -> PanelInput:
    """Validate structure and content together, so that every problem is reported at once.
    `schemas`: Panel, ResultInput, HistoryItem; `limits`: the bound of each list (results, history)."""
    if not isinstance(body, dict):
        raise InputError([Problem((), f"expected a JSON object, got {type(body).__name__}")])
    if too_many := _too_many(body, limits):
        raise InputError(too_many)
    try:
        return to_panel(schemas["Panel"].load(body))
    except ValidationError as exc:
        problems = flatten_messages(exc.messages)
    # Structure is broken somewhere; still check the content of every result and earlier result.
    problems += _content_problems(body.get("results"), "results", problems, schemas["ResultInput"],
                                  lambda d: result_problems(to_result(d), kb))
    problems += _content_problems(body.get("history"), "history", problems, schemas["HistoryItem"],
                                  lambda d: history_problems(to_history(d), kb))
    raise InputError(sorted(problems, key=_order))


def _content_problems(items: Any, key: str, found: list[Problem], schema: Schema,
                      check: Callable[[dict[str, Any]], list[Problem]]) -> list[Problem]:
    """The core's problems with the well-formed fields of each item, where marshmallow said nothing."""
    if not isinstance(items, list):
        return []
    flagged = {p.path[:3] for p in found if len(p.path) > 2 and p.path[0] == key}
    whole = {p.path[:2] for p in found if len(p.path) == 2}
    out = []
    for i, raw in enumerate(items):
        if not isinstance(raw, dict) or (key, i) in whole:
            continue
        for q in check(_well_formed(raw, schema)):
            path = (key, i) + q.path
            required_and_missing = q.path[:1] in (("value",), ("unit",), ("collected_at",)) and q.path[0] not in raw
            if path[:3] not in flagged and not required_and_missing:
                out.append(Problem(path, q.message))
    return out


def _well_formed(raw: dict[str, Any], schema: Schema) -> dict[str, Any]:
    """The well-formed fields of an item whose structure is partly broken."""
    try:
        data = schema.load(raw, unknown=EXCLUDE, partial=True)
    except ValidationError as exc:
        data = exc.valid_data if isinstance(exc.valid_data, dict) else {}
    data.setdefault("value", None)
    data.setdefault("unit", None)
    if not isinstance(data.get("reference_range"), dict):
        data.pop("reference_range", None)
    return data

"""The clinician form: its fields (built from the knowledge), and form data -> the API's panel JSON.

The form holds no rule of its own. It reshapes what was typed into the JSON body the API takes,
which then goes through the same schemas and core checks; the problems' JSON pointers are mapped
back to the form fields they came from.

Each analyte may also carry one earlier value and the day it was taken (`<analyte>_previous_value`,
`<analyte>_previous_on`), in the unit chosen for its current value: they become the panel's `history`.
What the form refuses itself is only what it cannot send: one of the pair without the other, and an
earlier value with no current value of its analyte (the API would check it and then leave it unused,
which on a form reads as if it had been compared).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any
from collections.abc import Iterable, Mapping

from ..core.errors import Problem
from ..core.knowledge import Knowledge
from ..core.vocabulary import Term
from ..core.model import start_of_day

LIST_FIELDS = ("medications", "symptoms", "conditions")  # several choices each, from the vocabulary
DATE_FIELDS = {"collected_on": ("collected_at",), "b12_injection_on": ("context", "b12_injection_at"),
               "b12_therapy_started_on": ("context", "b12_therapy_started_at")}
FORM_ERROR = "form"  # where a problem that belongs to no single field is shown
# The API's names for what the form calls otherwise, in the core's messages shown under a field.
FORM_WORDS = (("the panel's collected_at", "the collection date (Collected on)"),
              ("with their history", "with their earlier values"))


@dataclass(frozen=True)
class AnalyteField:
    analyte: str
    label: str
    units: tuple[str, ...]
    default_unit: str
    optional: bool

    @property
    def value_name(self) -> str:
        return f"{self.analyte}_value"

    @property
    def unit_name(self) -> str:
        return f"{self.analyte}_unit"

    @property
    def previous_value_name(self) -> str:
        return f"{self.analyte}_previous_value"

    @property
    def previous_on_name(self) -> str:
        return f"{self.analyte}_previous_on"

    @property
    def names(self) -> tuple[str, str, str, str]:
        """The analyte's fields, in page order."""
        return self.value_name, self.unit_name, self.previous_value_name, self.previous_on_name


def analyte_fields(kb: Knowledge) -> tuple[AnalyteField, ...]:
    """One value and unit pair per analyte the knowledge has, in its order, units exactly as it accepts
    them; an analyte that serves to adjust another (albumin for calcium) is marked optional."""
    return tuple(AnalyteField(a.id, a.name, a.units, a.canonical_unit, a.id in kb.adjusting)
                 for a in kb.analytes.values())


def field_order(kb: Knowledge) -> tuple[str, ...]:
    """Every form field, in the order the page shows them."""
    names = tuple(n for f in analyte_fields(kb) for n in f.names)
    return names + ("collected_on", "age", "sex", "b12_injection_on", "b12_therapy_started_on", "diet",
                    "hemolyzed", *LIST_FIELDS)


def field_labels(kb: Knowledge) -> dict[str, str]:
    """Each field's visible label, which is also its accessible name and its name in the error summary.

    An analyte's value and unit are named with the analyte ("Potassium value", "Potassium unit"), never
    a bare "Value" five times: voice control ("click Potassium value") and a screen reader's list of
    form fields tell them apart only by that name (WCAG 2.5.3 Label in Name, 2.4.6 Labels). So are the
    earlier value and its date ("Potassium earlier value", "Potassium earlier value taken on")."""
    labels = {FORM_ERROR: "Form", "collected_on": "Collected on", "age": "Age in years", "sex": "Sex",
              "b12_injection_on": "Last vitamin B12 injection", "b12_therapy_started_on": "B12 replacement started",
              "diet": "Diet", "hemolyzed": "Specimen reported as hemolyzed", "medications": "Medications",
              "symptoms": "Symptoms", "conditions": "Known conditions"}
    for f in analyte_fields(kb):
        labels[f.value_name], labels[f.unit_name] = f"{f.label} value", f"{f.label} unit"
        labels[f.previous_value_name] = f"{f.label} earlier value"
        labels[f.previous_on_name] = f"{f.label} earlier value taken on"
    return labels


def known_names(kb: Knowledge) -> set[str]:
    return set(field_order(kb))


def vocabularies(kb: Knowledge) -> dict[str, tuple[Term, ...]]:
    """The choices of each vocabulary field, with the words people are shown."""
    return {kind: kb.vocabulary.terms[kind] for kind in ("sex", "diet", *LIST_FIELDS)}


def _number(text: str) -> Any:
    """A typed number as a number; anything else goes on as typed, for the schema to name."""
    try:
        return float(text) if text.strip() else text
    except ValueError:
        return text


def _date(text: str) -> str | None:
    """A date input as the start of that day in UTC (the API needs an offset); None if not a date."""
    try:
        return start_of_day(date.fromisoformat(text.strip())).isoformat()
    except ValueError:
        return None


def _read_date(form: Mapping[str, str], name: str, own: dict[str, list[str]]) -> str | None:
    """The date field `name` as the API's moment (None if empty); a field error if it is not a date."""
    if not form.get(name, "").strip():
        return None
    moment = _date(form[name])
    if moment is None:
        own.setdefault(name, []).append("enter a date as YYYY-MM-DD")
    return moment


@dataclass(frozen=True)
class Parsed:
    body: dict[str, Any]
    sources: tuple[str, ...]  # results[i] came from the analyte sources[i]
    own_errors: dict[str, list[str]]  # what the form itself could not read, by field
    history_sources: tuple[str, ...] = ()  # history[i] came from the analyte history_sources[i]


def to_panel_json(form: Mapping[str, str], lists: Mapping[str, list[str]], kb: Knowledge) -> Parsed:
    """The JSON body of POST /v1/interpretations for what was typed; empty analytes are left out."""
    results, sources, history, history_sources = [], [], [], []
    own: dict[str, list[str]] = {}
    for f in analyte_fields(kb):
        value = form.get(f.value_name, "").strip()
        unit = form.get(f.unit_name, f.default_unit)
        if value:
            results.append({"id": f.analyte, "analyte": f.analyte, "value": value, "unit": unit})
            sources.append(f.analyte)
        earlier = _earlier(form, f, bool(value), unit, own)
        if earlier is not None:
            history.append(earlier)
            history_sources.append(f.analyte)
    body: dict[str, Any] = {"results": results}
    if history:
        body["history"] = history
    patient: dict[str, Any] = {}
    if form.get("age", "").strip():
        patient["age_years"] = _number(form["age"])
    if form.get("sex"):
        patient["sex"] = form["sex"]
    if patient:
        body["patient"] = patient
    context: dict[str, Any] = {k: lists[k] for k in LIST_FIELDS if lists.get(k)}
    if form.get("diet"):
        context["diet"] = form["diet"]
    if form.get("hemolyzed"):
        context["specimen"] = {"hemolyzed": True}
    for name, path in DATE_FIELDS.items():
        moment = _read_date(form, name, own)
        if moment is not None:
            (body if len(path) == 1 else context)[path[-1]] = moment
    if context:
        body["context"] = context
    unknown = sorted(set(form) - known_names(kb))
    if unknown:
        own[FORM_ERROR] = [f"unexpected form field {name[:40]!r}" for name in unknown[:5]]
    return Parsed(body, tuple(sources), own, tuple(history_sources))


def _earlier(form: Mapping[str, str], f: AnalyteField, current: bool, unit: str,
             own: dict[str, list[str]]) -> dict[str, Any] | None:
    """The analyte's earlier result as a history item, in the current value's unit; None (with a field
    error when only part of it was given) when there is none to send."""
    value = form.get(f.previous_value_name, "").strip()
    moment = _read_date(form, f.previous_on_name, own)
    dated = bool(form.get(f.previous_on_name, "").strip())
    if not value and not dated:
        return None
    if not value:
        own.setdefault(f.previous_value_name, []).append(f"enter the earlier {f.label} value, or clear its date")
    elif not dated:
        own.setdefault(f.previous_on_name, []).append("enter the day the earlier value was taken")
    elif not current:
        own.setdefault(f.previous_value_name, []).append(
            f"enter the current {f.label} value too (the earlier one is compared with it), or clear the earlier one")
    if not (value and moment and current):
        return None
    return {"analyte": f.analyte, "value": value, "unit": unit, "collected_at": moment}


def field_errors(problems: Iterable[Problem], parsed: Parsed, kb: Knowledge) -> dict[str, list[str]]:
    """Each problem under the form field it belongs to (FORM_ERROR when it belongs to none), in page order."""
    out: dict[str, list[str]] = {k: list(v) for k, v in parsed.own_errors.items()}
    for p in problems:
        message = "enter at least one result" if p.path == ("results",) and not parsed.sources else p.message
        for api_words, form_words in FORM_WORDS:
            message = message.replace(api_words, form_words)
        messages = out.setdefault(_field_of(p.path, parsed), [])
        if message not in messages:  # an earlier value's unit is the current one's: one message, not two
            messages.append(message)
    order = {name: i for i, name in enumerate((FORM_ERROR, *field_order(kb)))}
    return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))


def _field_of(path: tuple, parsed: Parsed) -> str:
    if len(path) >= 3 and path[0] == "results" and isinstance(path[1], int) and path[1] < len(parsed.sources):
        analyte = parsed.sources[path[1]]
        return f"{analyte}_unit" if path[2] == "unit" else f"{analyte}_value"
    if len(path) >= 2 and path[0] == "history" and isinstance(path[1], int) and path[1] < len(parsed.history_sources):
        analyte, key = parsed.history_sources[path[1]], path[2] if len(path) > 2 else None
        return {"unit": f"{analyte}_unit", "collected_at": f"{analyte}_previous_on"}.get(
            str(key), f"{analyte}_previous_value")
    if path[:1] in (("results",), ("history",)):
        return FORM_ERROR
    if path[:2] == ("patient", "age_years"):
        return "age"
    for name, where in DATE_FIELDS.items():
        if path[:len(where)] == where:
            return name
    if len(path) >= 2 and path[0] == "context":
        return {"specimen": "hemolyzed"}.get(str(path[1]), str(path[1]))
    if len(path) >= 2 and path[0] == "patient":
        return str(path[1])
    return FORM_ERROR

"""CDS Hooks 2.0 service on the patient-view hook: discovery, prefetch reading, cards. No Flask here.

CDS Hooks has no hook for a result arriving, so the service runs when a chart is opened and reads
the newest result of each analyte from the prefetch (interop.md 3.4). The prefetch asks for the few
newest results of each analyte: the older ones are the newest one's history, so a card can say that it
changed significantly since the previous result.
"""
from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from ..core.classify import concern
from ..core.deltas import elapsed
from ..core.errors import Problem
from ..core.knowledge import Knowledge
from ..core.report import Note, PanelReport, ResultReport, decimals, tidy
from ..fhir import FhirError, Mapped, check, component_for, entry_index, interpret_read, read_request, signature

SERVICE_ID = "labinterp-panel"
HOOK = "patient-view"
CONTEXT_KEYS = ("medicationAdministrations", "medicationStatements")
SUMMARY_MAX = 139  # the spec: a one-sentence summary of fewer than 140 characters
HISTORY_COUNT = 5  # results per analyte the prefetch asks for, newest first: the newest and its history
# A result's standing as a card indicator; a note's severity (info|warning|critical) is one already.
CARD_INDICATOR = {"critical": "critical", "abnormal": "warning", "implausible": "warning",
                  "watch": "info", "indeterminate": "info"}


class PrefetchMissing(Exception):
    """A prefetch key the service needs was not sent. CDS Hooks lets a service that cannot obtain its
    data answer 412; this service's contract declares the keys it needs as required, so a call without
    them breaks the contract and is answered like any other invalid request: 422, naming the key."""

    def __init__(self, keys: list[str]):
        self.keys = keys
        super().__init__(", ".join(keys))


class PrefetchInvalid(Exception):
    """A prefetched value that is not FHIR R4 (or not a resource): 422, located by JSON pointer."""

    def __init__(self, problems: tuple[Problem, ...]):
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s)")


def analyte_keys(kb: Knowledge) -> tuple[str, ...]:
    """One prefetch key per analyte of the knowledge, named by its id."""
    return tuple(kb.analytes)


def discovery(kb: Knowledge) -> dict[str, Any]:
    patient = "{{context.patientId}}"
    prefetch = {"patient": f"Patient/{patient}"}
    for a in analyte_keys(kb):
        codes = ",".join(f"http://loinc.org|{c.code}" for c in kb.analytes[a].loinc)
        prefetch[a] = f"Observation?patient={patient}&code={codes}&_sort=-date&_count={HISTORY_COUNT}"
    prefetch["medicationAdministrations"] = f"MedicationAdministration?patient={patient}&_count=50"
    prefetch["medicationStatements"] = f"MedicationStatement?patient={patient}&_count=50"
    return {"services": [{
        "hook": HOOK, "id": SERVICE_ID, "title": "Lab panel interpretation (B12, K, Mg, Ca)",
        "description": "Interprets the newest serum vitamin B12, potassium, magnesium and calcium results "
                       "against sourced reference ranges, compares each with the earlier results prefetched "
                       "with it, and adds notes that combine them with B12 injections and medications. One "
                       "card per abnormal or significantly changed result or panel finding. Decision support "
                       "only.",
        "prefetch": prefetch,
        "usageRequirements": "Prefetch `patient` and each analyte key (its newest results first, the older "
                             "ones are compared with the newest); the two medication keys are optional. "
                             "The service does not query the FHIR server itself.",
    }]}


# What each prefetch key may hold (besides null): the resource types its template searches for.
def prefetch_kinds(kb: Knowledge) -> dict[str, tuple[str, ...]]:
    return {"patient": ("Patient",), **dict.fromkeys(analyte_keys(kb), ("Bundle", "Observation")),
            **dict.fromkeys(CONTEXT_KEYS, ("Bundle",))}


def _prefetch_problems(key: str, value: Any, kinds: tuple[str, ...], max_resources: int) -> list[Problem]:
    """What is wrong with one prefetched value against the contract (service/fhir/envelope.py)."""
    kind = value.get("resourceType") if isinstance(value, dict) else None
    if kind not in kinds:
        return [Problem(("prefetch", key), f"expected {' or '.join(kinds)} (or null), not {str(kind)[:40]!r}")]
    issues = check(value, component_for(value) or "", str(kind), max_resources)
    return [Problem(("prefetch", key), f"{i.expression}: {i.diagnostics}") for i in issues]


def _as_bundle(prefetch: dict[str, Any], kb: Knowledge, max_resources: int) -> tuple[dict[str, Any], list[str]]:
    """All prefetched resources as one collection Bundle; which prefetch key each entry came from."""
    missing = [k for k in ("patient", *analyte_keys(kb)) if k not in prefetch]
    if missing:
        raise PrefetchMissing(missing)
    entries: list[dict[str, Any]] = []
    origin: list[str] = []
    for key, kinds in prefetch_kinds(kb).items():
        value = prefetch.get(key)
        if value is None:
            continue
        problems = _prefetch_problems(key, value, kinds, max_resources)
        if problems:
            raise PrefetchInvalid(tuple(problems))
        if value["resourceType"] == "Bundle":  # a search: its entries' resources (an entry may have none)
            resources = [e["resource"] for e in value.get("entry") or [] if isinstance(e.get("resource"), dict)]
        else:
            resources = [value]
        entries += [{"resource": r} for r in resources]
        origin += [key] * len(resources)
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}, origin


def _later(a: Mapped, b: Mapped) -> bool:
    if a.collected is None:
        return False
    return b.collected is None or a.collected > b.collected


def cards(request: dict[str, Any], kb: Knowledge, max_resources: int, now: datetime | None = None, *,
          reports: list[PanelReport] | None = None) -> dict[str, Any]:
    """The cards of one hook call; the core's reports are appended to `reports` when given."""
    bundle, origin = _as_bundle(request.get("prefetch") or {}, kb, max_resources)
    try:
        read = read_request(bundle, max_resources)
    except FhirError as exc:
        problems = []
        for issue in exc.issues:
            key, rest = _locate(issue.expression, origin)
            problems.append(Problem(("prefetch", key) if key else ("prefetch",), f"{rest}: {issue.diagnostics}"))
        raise PrefetchInvalid(tuple(problems)) from None

    def newest(usable: list[Mapped]) -> list[Mapped]:
        by_analyte: dict[str, Mapped] = {}
        for m in usable:
            analyte = kb.by_loinc[str(m.result.code)].id if m.result else ""
            if analyte not in by_analyte or _later(m, by_analyte[analyte]):
                by_analyte[analyte] = m
        return list(by_analyte.values())

    result = interpret_read(read, kb, now, select=newest)  # the others of each analyte are its history
    if reports is not None:
        reports.extend(p.report for p in result.panels)
    out: list[dict[str, Any]] = []
    for panel in result.panels:
        for r in panel.report.results:
            card = _result_card(r, kb, panel.collected)
            if card:
                out.append(card)
        out += [_card(n.text, n.severity, _detail([n], kb), kb) for n in panel.report.notes]
    unread = [i for i in read.issues if i.diagnostics.startswith("not read:")]
    if unread:
        out.append(_unread_card(unread, origin, kb))
    return {"cards": out}


def _unread_card(issues: list[Any], origin: list[str], kb: Knowledge) -> dict[str, Any]:
    """Prefetched resources the R4 models refused: said, not silently dropped."""
    lines = []
    for issue in issues[:10]:
        key, rest = _locate(issue.expression, origin)
        lines.append(f"- prefetch `{key or '?'}` {rest}: {issue.diagnostics.removeprefix('not read: ')}")
    paths = {(_locate(i.expression, origin)[0], entry_index(i.expression)) for i in issues}
    summary = f"{len(paths)} prefetched resource{'s' if len(paths) != 1 else ''} not FHIR R4: not read"
    return _card(summary, "info", "\n".join(lines) + f"\n\n_{kb.disclaimer}_", kb)


def _locate(expression: str | None, origin: list[str]) -> tuple[str | None, str]:
    """Bundle.entry[3].resource.x -> (the prefetch key of entry 3, 'resource.x')."""
    index = entry_index(expression)
    if expression and index is not None and index < len(origin):
        return origin[index], expression[expression.index("]") + 2:] or "resource"
    return None, expression or "prefetch"


def _limits(r: ResultReport) -> str:
    used = r.reference_range
    low = "" if used.input_low is None else f"{tidy(used.input_low):g}"
    high = "" if used.input_high is None else f"{tidy(used.input_high):g}"
    return f"{low}–{high} {r.unit}"


def _result_card(r: ResultReport, kb: Knowledge, collected: datetime | None) -> dict[str, Any] | None:
    """A card for an abnormal result or one that changed significantly since the previous result."""
    analyte = kb.analytes[r.analyte]
    standing = concern(analyte, r.band, r.flag, r.critical)
    change = _change(r, kb)
    if standing == "normal" and change is None:
        return None
    indicator = CARD_INDICATOR.get(standing, "info")
    if change is not None and SEVERITY_ORDER.index(indicator) < SEVERITY_ORDER.index(CHANGE_INDICATOR):
        indicator = CHANGE_INDICATOR  # a critical result stays critical
    band = r.band.replace("critical_", "critically ").replace("_", " ")
    head = f"{analyte.name} {r.comparator or ''}{r.value} {r.unit}" + (f", {change}" if change else "")
    summary = f"{head}: {band} (reference {_limits(r)})"
    if len(summary) > SUMMARY_MAX:
        summary = f"{head}: {band}"
    when = f"Collected {collected.date().isoformat()}.\n\n" if collected else ""
    return _card(summary, indicator, when + _trend(r) + _detail(r.notes, kb), kb)


SEVERITY_ORDER = ("info", "warning", "critical")
CHANGE_INDICATOR = "warning"  # as the core's note on a significant change (delta-significant-change)


def _change(r: ResultReport, kb: Knowledge) -> str | None:
    """"down from 4.4 two days earlier" for a significant change since the previous result, the
    previous value in the unit of this one; None otherwise. "Earlier" counts from this result's
    collection, as the delta does, not from the time the chart is opened."""
    delta = r.delta
    if delta is None or not delta.significant or delta.direction is None:
        return None
    word = "up" if delta.direction == "rise" else "down"
    return f"{word} from {_in_unit_of(r, delta.previous.value, kb)} {_spelled(elapsed(delta.hours))} earlier"


def _in_unit_of(r: ResultReport, canonical: float, kb: Knowledge) -> str:
    """A value of the result's analyte in the canonical unit, written in the result's own unit (as its
    summary gives the result) to as many decimals as the result shows, or one more when it has them
    (4.4 beside 3.0, 5.0 beside 3.8, 4.45 beside 3.0, 9.6 mg/dL as 2.40 beside 2.0 mmol/L)."""
    unit = kb.units.lookup(r.unit)
    factor = kb.analytes[r.analyte].factors.get(unit.id) if unit else None
    value = canonical / factor if factor else canonical
    shown = decimals(str(r.value))
    places = min(max(decimals(value), shown), shown + 1)
    return f"{value:.{places}f}"


NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def _spelled(interval: str) -> str:
    """"2 days" -> "two days" (numbers up to ten in words, as prose writes them)."""
    number, _, rest = interval.partition(" ")
    return f"{NUMBER_WORDS[int(number)]} {rest}" if number.isdigit() and int(number) < len(NUMBER_WORDS) else interval


def _trend(r: ResultReport) -> str:
    """The analyte's results the delta was judged on, oldest first, in the canonical unit (markdown)."""
    if not r.trend:
        return ""
    points = ", ".join(f"{p.comparator or ''}{tidy(p.value):g} ({p.collected_at.date().isoformat()})" for p in r.trend)
    return f"Results ({r.canonical_unit}, oldest first): {points}.\n\n"


def _source_links(n: Note) -> str:
    """Markdown: each source's title, linked when its reference is a URL."""
    return "; ".join(f"[{c.title}]({c.reference})" if c.reference.startswith(("https://", "http://"))
                     else f"{c.title} ({c.reference})" for c in n.citations)


def _detail(notes: Any, kb: Knowledge) -> str:
    lines = [f"- **{n.severity}**: {n.text}  \n  Sources: {_source_links(n)}" for n in notes]
    return "\n".join(lines) + f"\n\n_{kb.disclaimer}_" if lines else f"_{kb.disclaimer}_"


def _card(summary: str, indicator: str, detail: str, kb: Knowledge) -> dict[str, Any]:
    first = summary.split(". ")[0].strip()
    if len(first) > SUMMARY_MAX:
        first = first[:SUMMARY_MAX - 1].rstrip() + "…"
    return {"uuid": str(uuid.uuid4()), "summary": first, "indicator": indicator, "detail": detail,
            "source": {"label": signature(kb)}}

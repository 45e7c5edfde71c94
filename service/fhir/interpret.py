"""FHIR R4 request -> the core -> a FHIR R4 collection Bundle. No Flask here.

Observations are grouped into panels by subject and collection time, so a note that compares a
result's time with an injection is judged on that result's own time.

Observations of one analyte and one subject at several times are that subject's history: the panel
holding the subject's newest result of an analyte gets the earlier ones of that analyte as its
`history`, so the newest result is compared with them (its delta); the older ones are interpreted as
they were, without a change of their own. An Observation without an effective time, or without a
subject, cannot be placed in a subject's series: it is never history and never gets any.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, UTC
from typing import Any
from collections.abc import Callable

from fhir.resources.R4B.bundle import Bundle

from ..core import PanelInput, PanelReport, interpret_panel
from ..core.history import resolve_history
from ..core.knowledge import Knowledge
from ..core.model import HistoryInput
from .context import Subject, medications_for, patient_for
from .observations import Mapped, map_observation
from .outcome import Issue, outcome
from .reader import CONTEXT_TYPES, Read, entry_index, read_request
from .writer import VERSION_SYSTEM, detected_issue, enrich, new_full_url


@dataclass(frozen=True)
class PanelResult:
    subject: str | None
    collected: datetime | None
    members: tuple[Mapped, ...]
    report: PanelReport
    history: tuple[Mapped, ...] = ()  # the subject's earlier Observations its newest results were compared with


@dataclass(frozen=True)
class Interpretation:
    mapped: tuple[Mapped, ...]
    panels: tuple[PanelResult, ...]
    issues: tuple[Issue, ...]  # what was not interpreted, and what was assumed


def interpret_read(read: Read, kb: Knowledge, now: datetime | None = None,
                   select: Callable[[list[Mapped]], list[Mapped]] | None = None) -> Interpretation:
    """Map every Observation, group the usable ones into panels, and run the core on each.
    `select` may narrow the usable Observations that are interpreted (CDS Hooks keeps the newest per
    analyte); every usable Observation may still be history for a later one of its subject."""
    issues: list[Issue] = list(read.issues)
    mapped = [map_observation(f, kb) for f in read.of_type("Observation")]
    for m in mapped:
        issues.extend(m.issues)
    usable = [m for m in mapped if m.result is not None]
    series = _series(usable, kb, issues)
    newest = {key: max(m.collected for m in own if m.collected) for key, own in series.items()}
    groups: dict[tuple[str | None, datetime | None], list[Mapped]] = {}
    for m in (select(usable) if select else usable):
        groups.setdefault((m.found.subject, m.collected), []).append(m)
    panels: list[PanelResult] = []
    subjects: dict[str | None, Subject] = {}
    for (subject, collected), members in groups.items():
        patient, _ = patient_for(read, subject, members[0].found, collected, kb)
        if subject not in subjects:
            subjects[subject] = medications_for(read, subject, patient, kb)
            issues.extend(subjects[subject].issues)
        earlier = _history(subject, collected, members, series, newest, kb, issues)
        panel = PanelInput(tuple(m.result for m in members if m.result), patient,
                           subjects[subject].context(collected), collected,
                           tuple(_as_history(m) for m in earlier))
        panels.append(PanelResult(subject, collected, tuple(members), interpret_panel(panel, kb, now=now),
                                  tuple(earlier)))
    for f in read.resources:
        if f.type not in ("Observation", *CONTEXT_TYPES) and f.container is None:
            issues.append(Issue("information", "informational",
                                f"{f.type} read for its references; only Observations are interpreted", f.path))
    return Interpretation(tuple(mapped), tuple(panels), tuple(issues))


def _analyte(m: Mapped, kb: Knowledge) -> str:
    return kb.by_loinc[str(m.result.code)].id if m.result else ""


Series = dict[tuple[str, str], list[Mapped]]  # (subject reference, analyte id) -> its timed Observations


def _series(usable: list[Mapped], kb: Knowledge, issues: list[Issue]) -> Series:
    """Each subject's timed Observations by analyte. An Observation that cannot be placed in such a
    series, while others of its analyte could have been compared with it, is said."""
    out: Series = {}
    unplaced: list[tuple[Mapped, str]] = []
    for m in usable:
        if m.found.subject is None or m.collected is None:
            unplaced.append((m, _analyte(m, kb)))
        else:
            out.setdefault((m.found.subject, _analyte(m, kb)), []).append(m)
    anonymous = Counter(a for m, a in unplaced if m.found.subject is None)
    for m, analyte in unplaced:
        subject = m.found.subject
        if subject is not None and (subject, analyte) in out:
            why = "no effective time"
        elif subject is None and anonymous[analyte] > 1:
            why = "no subject"
        else:
            continue
        issues.append(Issue("information", "informational", f"{why}: not compared with other {analyte} results, "
                            "nor used as the history of one", m.found.path))
    return out


def _history(subject: str | None, collected: datetime | None, members: list[Mapped], series: Series,
             newest: dict[tuple[str, str], datetime], kb: Knowledge, issues: list[Issue]) -> list[Mapped]:
    """The subject's earlier Observations of each analyte whose newest result this panel holds."""
    if subject is None or collected is None:
        return []
    earlier: list[Mapped] = []
    for analyte in dict.fromkeys(_analyte(m, kb) for m in members):
        key = (subject, analyte)
        if newest.get(key) == collected:
            before = [m for m in series[key] if m.collected and m.collected < collected]
            earlier += _consistent(before, collected, analyte, members, kb, issues)
    return earlier


def _consistent(before: list[Mapped], collected: datetime, analyte: str, members: list[Mapped],
                kb: Knowledge, issues: list[Issue]) -> list[Mapped]:
    """The earlier Observations of one analyte as the core accepts them as history, or none. The core
    refuses two different values of one analyte at one moment rather than guess one (an exact repeat
    is fine; the Observations were each checked already, so that is the only refusal left): the newest
    result is then not compared at all, and the OperationOutcome says why."""
    items = tuple(_as_history(m) for m in before)
    _, problems = resolve_history(PanelInput((), collected_at=collected, history=items), kb)
    if not problems:
        return before
    moments = {before[p.path[1]].collected for p in problems
               if len(p.path) > 1 and p.path[0] == "history" and isinstance(p.path[1], int)}
    clashing = [m.found.path for m in before if m.collected in moments]
    newest = ", ".join(m.found.path for m in members if _analyte(m, kb) == analyte)
    issues.append(Issue("warning", "business-rule", (
        f"{analyte} results of this subject collected at the same moment disagree ({', '.join(clashing[:5])}); "
        f"rather than guess which is right, {newest} was not compared with the earlier {analyte} results")[:600],
        clashing[0] if clashing else None))
    return []


def _as_history(m: Mapped) -> HistoryInput:
    r = m.result
    assert r is not None  # only usable Observations are history
    return HistoryInput(r.value, r.unit, m.collected, code=r.code, comparator=r.comparator)


def interpret_fhir(body: Any, kb: Knowledge, max_resources: int, now: datetime | None = None, *,
                   reports: list[PanelReport] | None = None) -> dict[str, Any]:
    """The response Bundle; FhirError when the request as a whole cannot be read. The core's reports
    are appended to `reports` when given (for the service's metrics)."""
    read = read_request(body, max_resources)
    result = interpret_read(read, kb, now)
    if reports is not None:
        reports.extend(p.report for p in result.panels)
    full_urls = _full_urls(body, read)
    enriched: dict[int, dict[str, Any]] = {}
    findings: list[dict[str, Any]] = []
    for p in result.panels:
        for m, r in zip(p.members, p.report.results):
            enriched[id(m)] = enrich(m.found.resource, r, m.lab_range_used, kb)
        refs = [full_urls[id(m.found)] for m in p.members]
        findings += [detected_issue(n, p.subject, refs, kb) for n in p.report.notes]
    issues = [*result.issues, Issue("information", "informational", kb.disclaimer)]
    entries = [{"fullUrl": full_urls[id(m.found)], "resource": enriched[id(m)]}
               for m in result.mapped if id(m) in enriched]
    entries += [{"fullUrl": new_full_url(), "resource": f} for f in findings]
    entries.append({"fullUrl": new_full_url(), "resource": outcome(issues)})
    bundle = {"resourceType": "Bundle", "meta": {"tag": [{"system": VERSION_SYSTEM, "code": kb.version}]},
              "type": "collection", "timestamp": (now or datetime.now(UTC)).isoformat(),
              "entry": entries}
    Bundle.model_validate(bundle)  # what we send is R4 by structure, or this is our bug (a 500)
    return bundle


def _full_urls(body: Any, read: Read) -> dict[int, str]:
    """Each resource's fullUrl as sent, else a new urn:uuid (so DetectedIssues can point at it)."""
    sent: dict[int, str] = {}
    if isinstance(body, dict) and body.get("resourceType") == "Bundle":
        for i, entry in enumerate(body.get("entry") or []):
            if entry.get("fullUrl"):
                sent[i] = entry["fullUrl"]
    out: dict[int, str] = {}
    for f in read.resources:
        index = entry_index(f.path)
        out[id(f)] = sent.get(index, "") if index is not None and f.container is None else ""
        out[id(f)] = out[id(f)] or new_full_url()
    return out


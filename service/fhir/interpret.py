"""FHIR R4 request -> the core -> a FHIR R4 collection Bundle. No Flask here.

Observations are grouped into panels by subject and collection time, so a note that compares a
result's time with an injection is judged on that result's own time.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, UTC
from typing import Any
from collections.abc import Callable

from fhir.resources.R4B.bundle import Bundle

from ..core import PanelInput, PanelReport, interpret_panel
from ..core.knowledge import Knowledge
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


@dataclass(frozen=True)
class Interpretation:
    mapped: tuple[Mapped, ...]
    panels: tuple[PanelResult, ...]
    issues: tuple[Issue, ...]  # what was not interpreted, and what was assumed


def interpret_read(read: Read, kb: Knowledge, now: datetime | None = None,
                   select: Callable[[list[Mapped]], list[Mapped]] | None = None) -> Interpretation:
    """Map every Observation, group the usable ones into panels, and run the core on each.
    `select` may narrow the usable Observations (CDS Hooks keeps the newest per analyte)."""
    issues: list[Issue] = list(read.issues)
    mapped = [map_observation(f, kb) for f in read.of_type("Observation")]
    for m in mapped:
        issues.extend(m.issues)
    usable = [m for m in mapped if m.result is not None]
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
        panel = PanelInput(tuple(m.result for m in members if m.result), patient,
                           subjects[subject].context(collected), collected)
        panels.append(PanelResult(subject, collected, tuple(members), interpret_panel(panel, kb, now=now)))
    for f in read.resources:
        if f.type not in ("Observation", *CONTEXT_TYPES) and f.container is None:
            issues.append(Issue("information", "informational",
                                f"{f.type} read for its references; only Observations are interpreted", f.path))
    return Interpretation(tuple(mapped), tuple(panels), tuple(issues))


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


"""The pipeline: resolve -> normalize -> classify -> annotate. Pure: no I/O, no Flask, no logging."""
from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone

from .classify import Interval, classify, select_limits
from .errors import InputError, Problem
from .knowledge import Analyte, Knowledge, Limits, NoteRule, load_knowledge
from .model import LabRange, PanelInput, ResultInput
from .report import Note, PanelReport, RangeUsed, ResultReport, is_exact
from .rules import Env, Fact
from .units import Unit
from .values import parse_value
from .vocabulary import COMPARATORS


@functools.lru_cache(maxsize=1)
def default_knowledge() -> Knowledge:
    """The knowledge of LABINTERP_RANGES_DIR (or the bundled folder), loaded once per process."""
    return load_knowledge()


def _resolve_range(rng: LabRange, analyte: Analyte, result_unit: Unit | None, kb: Knowledge,
                   at: tuple) -> tuple[tuple[float | None, float | None, str] | None, list[Problem]]:
    problems: list[Problem] = []
    unit = result_unit
    if rng.unit is not None:
        unit = kb.units.lookup(rng.unit)
        if unit is None or unit.id not in analyte.factors:
            problems.append(Problem(at + ("unit",), f"unit is not accepted for {analyte.id}; "
                                                   f"accepted: {list(analyte.units)}"))
            return None, problems
    if unit is None:
        return None, problems
    bounds: dict[str, float | None] = {}
    for side in ("low", "high"):
        raw = getattr(rng, side)
        if raw is None:
            bounds[side] = None
            continue
        try:
            number, comparator = parse_value(raw, None)
            if comparator:
                raise ValueError("must be a plain number")
            bounds[side] = number
        except ValueError as exc:
            problems.append(Problem(at + (side,), str(exc)))
    low, high = bounds.get("low"), bounds.get("high")
    if not problems and low is None and high is None:
        problems.append(Problem(at, "give low, high or both"))
    if low is not None and high is not None and low > high:
        problems.append(Problem(at + ("low",), f"low ({low:g}) is above high ({high:g})"))
    if problems:
        return None, problems
    f = analyte.factors[unit.id]
    return (None if low is None else low * f, None if high is None else high * f, unit.id), problems


@dataclass(frozen=True)
class _Checked:
    analyte: Analyte
    unit: Unit
    loinc: str
    value: float
    comparator: str | None
    lab_range: tuple[float | None, float | None, str] | None


def _check(item: ResultInput, kb: Knowledge) -> tuple[_Checked | None, list[Problem]]:
    """Check one result's analyte, code, unit, value and lab range; paths are relative to the result."""
    problems: list[Problem] = []
    analyte: Analyte | None = None
    loinc = None
    if item.analyte is None and item.code is None:
        problems.append(Problem(("analyte",), "name the analyte (`analyte`) or its LOINC code (`code`)"))
    if item.analyte is not None:
        analyte = kb.find_analyte(item.analyte)
        if analyte is None:
            problems.append(Problem(("analyte",), f"unknown analyte; known: {sorted(kb.analytes)}"))
    if item.code is not None:
        by_code = kb.by_loinc.get(item.code)
        if by_code is None:
            problems.append(Problem(("code",), f"not a LOINC code this service interprets; known: {sorted(kb.by_loinc)}"))
        elif analyte is not None and by_code is not analyte:
            problems.append(Problem(("code",), f"LOINC {item.code} is {by_code.id}, not {analyte.id}"))
            analyte = None
        elif item.analyte is None or analyte is not None:
            analyte, loinc = by_code, item.code
    unit = None
    if item.unit is None:
        problems.append(Problem(("unit",), "unit is required"))
    else:
        unit = kb.units.lookup(item.unit)
        if unit is None:
            problems.append(Problem(("unit",), "unknown unit; send one of the accepted units listed by GET /v1/analytes"))
        elif analyte is not None and unit.id not in analyte.factors:
            problems.append(Problem(("unit",), f"{unit.id} ({unit.kind.replace('_', ' ')}) is not accepted for "
                                               f"{analyte.id}; accepted: {list(analyte.units)}"))
            unit = None
        elif analyte is not None and loinc is not None:
            prop = next(c.property for c in analyte.loinc if c.code == loinc)
            if (unit.kind == "mass_concentration") != (prop == "MCnc"):
                problems.append(Problem(("unit",), f"{unit.id} is a {unit.kind.replace('_', ' ')} but LOINC {loinc} "
                                                   f"reports {'mass' if prop == 'MCnc' else 'substance'} concentration"))
                unit = None
    value, comparator = 0.0, None
    if item.comparator is not None and item.comparator not in COMPARATORS:
        problems.append(Problem(("comparator",), f"must be one of {list(COMPARATORS)}"))
    else:
        try:
            value, comparator = parse_value(item.value, item.comparator)
        except ValueError as exc:
            problems.append(Problem(("value",), str(exc)))
    lab_range = None
    if item.reference_range is not None and analyte is not None:
        lab_range, more = _resolve_range(item.reference_range, analyte, unit, kb, ("reference_range",))
        problems.extend(more)
    if problems or analyte is None or unit is None:
        return None, problems
    return _Checked(analyte, unit, loinc or analyte.loinc_for_kind(unit.kind), value, comparator, lab_range), problems


def result_problems(item: ResultInput, kb: Knowledge) -> list[Problem]:
    """Everything wrong with one result on its own (paths relative to the result)."""
    return _check(item, kb)[1]


def _resolve(panel: PanelInput, kb: Knowledge) -> list[tuple[str, ResultInput, _Checked]]:
    """Every result checked, with its id (given or generated); InputError lists every problem."""
    problems: list[Problem] = []
    resolved: list[tuple[str, ResultInput, _Checked]] = []
    taken = {r.id for r in panel.results if r.id is not None}
    seen: dict[str, int] = {}
    for i, item in enumerate(panel.results):
        if item.id is not None:
            if item.id in seen:
                problems.append(Problem(("results", i, "id"), f"duplicate id; also used by /results/{seen[item.id]}"))
            seen.setdefault(item.id, i)
            rid = item.id
        else:
            rid, n = f"result-{i + 1}", 1
            while rid in taken:
                n += 1
                rid = f"result-{i + 1}-{n}"
            taken.add(rid)
        checked, more = _check(item, kb)
        problems.extend(Problem(("results", i) + p.path, p.message) for p in more)
        if checked is not None:
            resolved.append((rid, item, checked))
    if problems:
        raise InputError(problems)
    return resolved


def _lab_interval(lab: tuple[float | None, float | None, str], default: Interval) -> Interval:
    """The laboratory's limits; a side it leaves out keeps the default, unless that would invert the
    interval, in which case that side is open (as FHIR reads a missing bound)."""
    low, high, _ = lab
    low_source = high_source = LAB_SOURCE
    if low is None and default.low is not None and (high is None or default.low <= high):
        low, low_source = default.low, default.low_source
    if high is None and default.high is not None and (low is None or default.high >= low):
        high, high_source = default.high, default.high_source
    return Interval(low, high, "laboratory", low_source, high_source)


LAB_SOURCE = "laboratory"


def _derived(values: list[tuple[str, float, bool]], kb: Knowledge) -> dict[str, str]:
    """Values computed from several results: (analyte, canonical value, exact) for each result."""
    out: dict[str, str] = {}
    ca = next((v for a, v, exact in values if a == "calcium" and exact), None)
    alb = next((v for a, v, exact in values if a == "albumin" and exact), None)
    calcium = kb.analytes.get("calcium")
    if ca is not None and alb is not None and calcium and calcium.albumin_adjustment:
        adj = calcium.albumin_adjustment
        value = ca + adj["coefficient"] * (adj["nominal_albumin"] - alb)
        text = f"{value:.1f} {calcium.canonical_unit}"
        if "mmol/L" in calcium.factors:
            text += f" ({value / calcium.factors['mmol/L']:.2f} mmol/L)"
        out["albumin_adjusted_calcium"] = text
    return out


def _notes(rules: tuple[NoteRule, ...], env: Env) -> tuple[Note, ...]:
    notes = []
    for rule in rules:
        if rule.placeholders and not all(p in env.derived for p in rule.placeholders):
            continue
        if rule.test(env):
            text = rule.text.format_map(env.derived) if rule.placeholders else rule.text
            notes.append(Note(rule.id, rule.severity, text, rule.references))
    return tuple(notes)


@dataclass(frozen=True)
class _Classified:
    id: str
    value: float | int | str | None  # as sent
    unit_text: str
    checked: _Checked
    interval: Interval
    critical: Limits | None
    canonical: float
    flag: str | None
    fact: Fact


def _classify(rid: str, item: ResultInput, r: _Checked, panel: PanelInput) -> _Classified:
    interval, critical = select_limits(r.analyte, panel.patient)
    if r.lab_range is not None:
        interval = _lab_interval(r.lab_range, interval)
    canonical = r.value * r.analyte.factors[r.unit.id]
    c = classify(r.analyte, canonical, r.comparator, interval, critical)
    fact = Fact(r.analyte.id, c.band, c.critical, is_exact(r.comparator, c.band))
    return _Classified(rid, item.value, item.unit or r.unit.id, r, interval, critical, canonical, c.flag, fact)


def _time_problems(panel: PanelInput) -> list[Problem]:
    """Times must carry a UTC offset: comparing a local time with an offset time would be a guess."""
    times = {("collected_at",): panel.collected_at,
             ("context", "b12_injection_at"): panel.context.b12_injection_at,
             ("context", "b12_therapy_started_at"): panel.context.b12_therapy_started_at}
    return [Problem(path, "must include a UTC offset (for example 2026-11-19T08:00:00Z)")
            for path, moment in times.items() if moment is not None and moment.utcoffset() is None]


def interpret_panel(panel: PanelInput, knowledge: Knowledge | None = None, *,
                    now: datetime | None = None) -> PanelReport:
    """Interpret every result of a panel, in input order; raise InputError listing every problem."""
    kb = knowledge or default_knowledge()
    try:
        resolved = _resolve(panel, kb)
        time_problems = _time_problems(panel)
    except InputError as exc:
        raise InputError(list(exc.problems) + _time_problems(panel)) from None
    if time_problems:
        raise InputError(time_problems)
    classified = [_classify(rid, item, r, panel) for rid, item, r in resolved]
    facts = [c.fact for c in classified]
    collected = panel.collected_at or now or datetime.now(timezone.utc)
    derived = _derived([(c.fact.analyte, c.canonical, c.fact.exact) for c in classified], kb)
    env = Env(facts, panel.patient, panel.context, collected, derived)
    final = []
    for c in classified:
        r, interval, critical = c.checked, c.interval, c.critical
        back = r.analyte.factors[r.unit.id]
        used = RangeUsed(interval.low, interval.high, r.analyte.canonical_unit,
                         None if interval.low is None else interval.low / back,
                         None if interval.high is None else interval.high / back,
                         c.unit_text, interval.origin,
                         kb.source_text(interval.low_source, interval.high_source, LAB_SOURCE),
                         critical.low if critical else None, critical.high if critical else None)
        notes = _notes(kb.notes_for(c.fact.analyte, c.fact.band),
                       Env(facts, panel.patient, panel.context, collected, derived, c.fact))
        final.append(ResultReport(c.id, c.fact.analyte, r.loinc, c.value, r.comparator,  # type: ignore[arg-type]
                                  c.unit_text, c.canonical, r.analyte.canonical_unit,
                                  c.fact.band, c.flag, c.fact.critical, used, notes))
    panel_notes = _notes(kb.panel_notes, env)
    return PanelReport(tuple(final), panel_notes, kb.version, kb.disclaimer)

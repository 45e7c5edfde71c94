"""The pipeline: resolve -> normalize -> classify -> annotate. Pure: no I/O, no Flask, no logging."""
from __future__ import annotations

import functools
from datetime import datetime, timezone
from typing import NamedTuple

from .classify import Interval, classify, select_limits
from .errors import InputError, Problem
from .knowledge import Analyte, Knowledge, NoteRule, load_knowledge
from .model import LabRange, PanelInput, Patient, ResultInput
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


class _Checked(NamedTuple):
    analyte: Analyte
    unit: Unit
    loinc: str
    value: float
    comparator: str | None
    lab_range: tuple[float | None, float | None, str] | None


_Identity = tuple[Analyte | None, Unit | None, str | None, list[Problem]]
_IDENTITIES_KEPT = 4096  # distinct (analyte, code, unit) spellings remembered per knowledge


def _identify(analyte_text: str | None, code: str | None, unit_text: str | None, kb: Knowledge) -> _Identity:
    """Which analyte, unit and LOINC code a result names; depends on those three strings only."""
    problems: list[Problem] = []
    analyte: Analyte | None = None
    loinc = None
    if analyte_text is None and code is None:
        problems.append(Problem(("analyte",), "name the analyte (`analyte`) or its LOINC code (`code`)"))
    if analyte_text is not None:
        analyte = kb.find_analyte(analyte_text)
        if analyte is None:
            problems.append(Problem(("analyte",), f"unknown analyte; known: {sorted(kb.analytes)}"))
    if code is not None:
        by_code = kb.by_loinc.get(code)
        if by_code is None:
            problems.append(Problem(("code",), f"not a LOINC code this service interprets; known: {sorted(kb.by_loinc)}"))
        elif analyte is not None and by_code is not analyte:
            problems.append(Problem(("code",), f"LOINC {code} is {by_code.id}, not {analyte.id}"))
            analyte = None
        elif analyte_text is None or analyte is not None:
            analyte, loinc = by_code, code
    unit = None
    if unit_text is None:
        problems.append(Problem(("unit",), "unit is required"))
    else:
        unit = kb.units.lookup(unit_text)
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
    if analyte is not None and unit is not None and loinc is None:
        loinc = analyte.loinc_for_kind(unit.kind)
    return analyte, unit, loinc, problems


def _identity(item: ResultInput, kb: Knowledge) -> _Identity:
    """_identify, remembered for spellings that resolved cleanly (a panel repeats a handful of them)."""
    key = (item.analyte, item.code, item.unit)
    known = kb.identities.get(key)
    if known is not None:
        return known[0], known[1], known[2], []
    found = _identify(item.analyte, item.code, item.unit, kb)
    if not found[3] and len(kb.identities) < _IDENTITIES_KEPT:
        kb.identities[key] = found[:3]
    return found


def _check(item: ResultInput, kb: Knowledge) -> tuple[_Checked | None, list[Problem]]:
    """Check one result's analyte, code, unit, value and lab range; paths are relative to the result."""
    analyte, unit, loinc, problems = _identity(item, kb)
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
    return _Checked(analyte, unit, loinc, value, comparator, lab_range), problems  # type: ignore[arg-type]


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
        if more:
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
        if not rule.placeholders:
            if rule.test(env):
                notes.append(rule.note)
        elif all(p in env.derived for p in rule.placeholders) and rule.test(env):
            notes.append(Note(rule.id, rule.severity, rule.text.format_map(env.derived), rule.references))
    return tuple(notes)


def _classify(rid: str, item: ResultInput, r: _Checked, patient: Patient,
              kb: Knowledge) -> tuple[Fact, tuple]:
    """The result's fact (what rules see) and its report's fields but the notes, which need every
    result's fact first."""
    analyte = r.analyte
    interval, critical = select_limits(analyte, patient)
    if r.lab_range is not None:
        interval = _lab_interval(r.lab_range, interval)
    factor = analyte.factors[r.unit.id]
    canonical = r.value * factor
    c = classify(analyte, canonical, r.comparator, interval, critical)
    fact = Fact(analyte.id, c.band, c.critical, is_exact(r.comparator, c.band))
    low, high, unit_text = interval.low, interval.high, item.unit or r.unit.id
    used = RangeUsed(low, high, analyte.canonical_unit,
                     None if low is None else low / factor, None if high is None else high / factor,
                     unit_text, interval.origin, kb.source_text(interval.low_source, interval.high_source, LAB_SOURCE),
                     critical.low if critical else None, critical.high if critical else None)
    return fact, (rid, analyte.id, r.loinc, item.value, r.comparator, unit_text, canonical,
                  analyte.canonical_unit, c.band, c.flag, c.critical, used)


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
    classified = [_classify(rid, item, r, panel.patient, kb) for rid, item, r in resolved]
    facts = [fact for fact, _ in classified]
    collected = panel.collected_at or now or datetime.now(timezone.utc)
    derived = _derived([(fact.analyte, head[6], fact.exact) for fact, head in classified], kb)
    env = Env(facts, panel.patient, panel.context, collected, derived)
    final = []
    for fact, head in classified:
        rules = kb.notes_for(fact.analyte, fact.band)
        notes = _notes(rules, Env(facts, panel.patient, panel.context, collected, derived, fact)) if rules else ()
        final.append(ResultReport(*head, notes))
    panel_notes = _notes(kb.panel_notes, env)
    return PanelReport(tuple(final), panel_notes, kb.version, kb.disclaimer)

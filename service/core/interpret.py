"""The pipeline: resolve -> normalize -> classify -> annotate. Pure: no I/O, no Flask, no logging."""
from __future__ import annotations

import functools
from datetime import datetime, UTC
from typing import NamedTuple

from .classify import Interval, classify, classify_point, select_limits
from .errors import InputError, Problem
from .history import Earlier, judge, resolve_history, trend
from .identify import identify_measurement
from .knowledge import LAB_SOURCE, Analyte, Knowledge, NoteRule, load_knowledge
from .model import LabRange, PanelInput, ResultInput
from .report import DerivedValue, Note, PanelReport, RangeUsed, ResultReport, is_exact
from .rules import Env, Fact, placeholder_text
from .units import Unit
from .values import parse_value


@functools.lru_cache(maxsize=1)
def default_knowledge() -> Knowledge:
    """The bundled knowledge, loaded once per process (for callers of the core that name none)."""
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


def _check(item: ResultInput, kb: Knowledge) -> tuple[_Checked | None, list[Problem]]:
    """Check one result's analyte, code, unit, value and lab range; paths are relative to the result."""
    (analyte, unit, loinc, _), value, comparator, problems = identify_measurement(
        item.analyte, item.code, item.unit, item.value, item.comparator, kb)
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
    low_source: str | None = LAB_SOURCE
    high_source: str | None = LAB_SOURCE
    if low is None and default.low is not None and (high is None or default.low <= high):
        low, low_source = default.low, default.low_source
    if high is None and default.high is not None and (low is None or default.high >= low):
        high, high_source = default.high, default.high_source
    return Interval(low, high, "laboratory", low_source, high_source)


def _adjusted(classified: list[tuple[Fact, tuple]], kb: Knowledge,
               intervals: dict[str, Interval]) -> dict[str, DerivedValue]:
    """Each analyte's `adjustment` (e.g. total calcium for albumin: value + coefficient x (nominal -
    other)), from the first exact result of each in the panel, classified against the interval applied
    to the adjusted result."""
    first: dict[str, tuple] = {}
    for fact, head in classified:
        if fact.exact:
            first.setdefault(fact.analyte, head)
    out: dict[str, DerivedValue] = {}
    for analyte in kb.adjusted:
        adj = analyte.adjustment
        own, other = first.get(analyte.id), first.get(adj["by"])  # type: ignore[index]
        if own is None or other is None:
            continue
        value = own[6] + adj["coefficient"] * (adj["nominal"] - other[6])  # type: ignore[index]
        text = f"{value:.1f} {analyte.canonical_unit}"
        if "mmol/L" in analyte.factors and analyte.canonical_unit != "mmol/L":
            text += f" ({value / analyte.factors['mmol/L']:.2f} mmol/L)"
        c = classify_point(analyte, value, intervals[own[0]], None)
        out[adj["id"]] = DerivedValue(adj["id"], value, analyte.canonical_unit, analyte.id, c.band, c.flag,  # type: ignore[index]
                                      (own[0], other[0]), text)
    return out


def _notes(rules: tuple[NoteRule, ...], env: Env) -> tuple[Note, ...]:
    notes = []
    for rule in rules:
        if not rule.test(env):
            continue
        if not rule.placeholders:
            notes.append(rule.note)
            continue
        values = {p: placeholder_text(p, env) for p in rule.placeholders}  # only for rules that hold
        if None not in values.values():
            notes.append(Note(rule.id, rule.severity, rule.text.format_map(values), rule.references, rule.citations))
    return tuple(notes)


def _classify(rid: str, item: ResultInput, r: _Checked, panel: PanelInput, kb: Knowledge,
              earlier: dict[str, list[Earlier]], collected: datetime) -> tuple[Fact, tuple, Interval]:
    """The result's fact (what rules see), its report's fields but the notes (which need every
    result's fact first), and the interval applied."""
    patient = panel.patient
    analyte = r.analyte
    interval, critical = select_limits(analyte, patient)
    if r.lab_range is not None:
        interval = _lab_interval(r.lab_range, interval)
    factor = analyte.factors[r.unit.id]
    canonical = r.value * factor
    c = classify(analyte, canonical, r.comparator, interval, critical)
    before = earlier.get(analyte.id, [])
    delta = judge(analyte, canonical, r.comparator, collected, before, kb, interval, critical) if before else None
    fact = Fact(analyte.id, c.band, c.critical, is_exact(r.comparator, c.band, c.implausible), c.implausible,
                c.flag, canonical, r.comparator, delta)
    low, high, unit_text = interval.low, interval.high, item.unit or r.unit.id
    cited = kb.range_source(interval.low_source, interval.high_source)
    lab_text = item.reference_range.text if r.lab_range is not None and item.reference_range is not None else None
    used = RangeUsed(low, high, analyte.canonical_unit,
                     None if low is None else low / factor, None if high is None else high / factor,
                     unit_text, interval.origin, cited.text, critical, cited.citations, lab_text)
    return fact, (rid, analyte.id, r.loinc, item.value, r.comparator, unit_text, canonical,
                  analyte.canonical_unit, c.band, c.flag, c.critical, used), interval


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
    except InputError as exc:
        raise InputError([*exc.problems, *_time_problems(panel), *resolve_history(panel, kb)[1]]) from None
    earlier, history_problems = resolve_history(panel, kb) if panel.history else ({}, [])
    if time_problems := [*_time_problems(panel), *history_problems]:
        raise InputError(time_problems)
    collected = panel.collected_at or now or datetime.now(UTC)
    classified = [_classify(rid, item, r, panel, kb, earlier, collected) for rid, item, r in resolved]
    facts = [fact for fact, _, _ in classified]
    derived = _adjusted([(f, head) for f, head, _ in classified], kb,
                        {head[0]: interval for _, head, interval in classified}) if kb.adjusted else {}
    env = Env(facts, panel.patient, panel.context, collected, derived)
    final = []
    for fact, head, _ in classified:
        rules = kb.notes_for(fact.analyte, fact.band, fact.delta is not None)
        notes = _notes(rules, env._replace(this=fact)) if rules else ()
        before = earlier.get(fact.analyte)
        points = trend(before, fact.value, fact.comparator, collected, kb.history.trend_points) if before else ()
        final.append(ResultReport(*head, notes, fact.implausible, fact.delta, points))  # type: ignore[call-arg]  # head: the first 12 fields
    present = {fact.analyte for fact in facts}
    panel_notes = _notes(tuple(r for r in kb.panel_notes if r.needs <= present
                               and (earlier or not r.needs_previous)), env)
    return PanelReport(tuple(final), panel_notes, kb.version, kb.disclaimer, tuple(derived.values()))

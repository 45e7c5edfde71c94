"""Which analyte, unit and LOINC code a result names: a function of those three strings only, so the
spellings exactly as the knowledge files write them are resolved once at load (an immutable index)
and requests only look them up; any other spelling (case, spaces, a UCUM code) is resolved each time.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple
from collections.abc import Iterator

from .errors import Problem
from .units import Unit, property_of_kind
from .values import ComparatorError, parse_value

if TYPE_CHECKING:  # pragma: no cover
    from .knowledge import Analyte, Knowledge

Key = tuple[str | None, str | None, str | None]  # (analyte, code, unit) as written


class Identity(NamedTuple):
    analyte: Analyte | None
    unit: Unit | None
    loinc: str | None
    problems: tuple[Problem, ...]


def identify(analyte_text: str | None, code: str | None, unit_text: str | None, kb: Knowledge) -> Identity:
    """Resolve one result's names, or say (paths relative to the result) what is wrong with them."""
    known = kb.identities.get((analyte_text, code, unit_text))
    if known is not None:
        return known
    problems: list[Problem] = []
    analyte, loinc = _analyte_and_code(analyte_text, code, kb, problems)
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
            if property_of_kind(unit.kind) != prop:
                problems.append(Problem(("unit",), f"{unit.id} is a {unit.kind.replace('_', ' ')} but LOINC {loinc} "
                                                   f"reports {'mass' if prop == 'MCnc' else 'substance'} concentration"))
                unit = None
    if analyte is not None and unit is not None and loinc is None:
        loinc = analyte.loinc_for_kind(unit.kind)
    return Identity(analyte, unit, loinc, tuple(problems))


def _analyte_and_code(analyte_text: str | None, code: str | None, kb: Knowledge,
                      problems: list[Problem]) -> tuple[Analyte | None, str | None]:
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
    return analyte, loinc


def _spellings_as_written(kb: Knowledge) -> Iterator[Key]:
    for a in kb.analytes.values():
        units = [s for u in a.units for s in dict.fromkeys((u, kb.units.units[u].ucum, *kb.units.units[u].spellings))]
        names = (a.id, *a.aliases)
        codes = [c.code for c in a.loinc]
        for unit in units:
            yield from ((name, None, unit) for name in names)
            yield from ((None, code, unit) for code in codes)
            yield from ((name, code, unit) for name in names for code in codes)


def clean_identities(kb: Knowledge) -> dict[Key, Identity]:
    """Every combination of names, codes and units exactly as the files spell them that resolves
    without a problem (a few hundred): what requests almost always send."""
    out = {}
    for key in _spellings_as_written(kb):
        found = identify(*key, kb)
        if not found.problems:
            out[key] = found
    return out


class Measurement(NamedTuple):
    """A result's or an earlier result's names resolved and its value read; `problems` paths relative to it."""

    identity: Identity
    value: float
    comparator: str | None
    problems: list[Problem]


def identify_measurement(analyte_text: str | None, code: str | None, unit_text: str | None, value: object,
                         comparator: str | None, kb: Knowledge) -> Measurement:
    """`identify`, and the value read as a number or a censored value (ComparatorError: the comparator's fault)."""
    identity = identify(analyte_text, code, unit_text, kb)
    problems = list(identity.problems)
    number, sign = 0.0, None
    try:
        number, sign = parse_value(value, comparator)
    except ComparatorError as exc:
        problems.append(Problem(("comparator",), str(exc)))
    except ValueError as exc:
        problems.append(Problem(("value",), str(exc)))
    return Measurement(identity, number, sign, problems)

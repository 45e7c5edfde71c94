"""An ORU^R01 message -> the core's inputs: one panel per OBR (an order), one result per OBX we
interpret, the patient from the PID before it. No Flask here.

An OBX is ours when OBX-3 names one of the knowledge's LOINC codes (coding system LN) or, with no
LOINC code, one of its analyte names or aliases as text. The core's own per-result check
(result_problems) decides whether such a result can be interpreted, so no rule is repeated here; a
result it refuses keeps its OBX untouched and gets a remark saying why.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta, UTC

from ..core.interpret import result_problems
from ..core.knowledge import Knowledge
from ..core.model import LabRange, Patient, ResultInput, age_at
from .er7 import Er7Message, hl7_time

# OBX-3 coding systems that mean LOINC: the HL7 table 0396 code, its long name, and LOINC's OID
# (which some senders put there instead).
LOINC_SYSTEMS = frozenset({"LN", "LOINC", "2.16.840.1.113883.6.1"})
UCUM_SYSTEMS = frozenset({"UCUM", "2.16.840.1.113883.6.8"})
# OBX-11 (HL7 table 0085): statuses that carry a result to interpret. The others say there is none
# (I pending, N not asked, O order detail, X cannot be obtained) or that it is void (D deleted, W wrong).
RESULT_STATUSES = frozenset({"", "F", "C", "P", "R", "S", "U", "A"})
SEXES = {"F": "female", "M": "male", "O": "other", "A": "other", "U": "unknown", "N": "unknown"}
SN_COMPARATORS = {"": None, "=": None, "<": "<", ">": ">", "<=": "<=", ">=": ">="}
_NM = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)$")
_NUMBER = r"(\d{1,12}(?:\.\d{1,12})?)"
_TWO_SIDED = re.compile(rf"^\s*{_NUMBER}\s*[-_]\s*{_NUMBER}\s*$")
_ONE_SIDED = re.compile(rf"^\s*(<=?|>=?)\s*{_NUMBER}\s*$")
_WITH_OFFSET = re.compile(r"[+-]\d{4}$")


@dataclass
class Observation:
    """One OBX that names an analyte we interpret."""

    index: int  # its segment
    result: ResultInput | None  # None: not interpreted; `remarks` say why
    lab_flags: tuple[str, ...] = ()  # OBX-8 as sent
    lab_range: bool = False  # OBX-7 was read and used
    observed: datetime | None = None  # OBX-14
    remarks: list[str] = field(default_factory=list)


@dataclass
class Order:
    """One OBR and the OBX segments under it: one panel for the core."""

    index: int  # its segment
    patient: Patient
    collected: datetime | None
    observations: list[Observation] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    pid: int | None = None  # the PID segment it belongs to: the same patient for every order under it


def _number(text: str) -> float | None:
    """An HL7 NM value (optional sign, digits, optional point) as a float, or None."""
    return float(text) if _NM.match(text) else None


def _analyte(msg: Er7Message, i: int, kb: Knowledge) -> tuple[str | None, str | None] | None:
    """(LOINC code, analyte name) that OBX-3 names, or None when it is not one of ours. A LOINC code
    decides; the text components count only when OBX-3 carries no LOINC code at all."""
    loinc_given = False
    for code, system in ((1, 3), (4, 6)):
        if msg.field(i, 3, system).strip().upper() in LOINC_SYSTEMS:
            loinc_given = True
            value = msg.field(i, 3, code).strip()
            if value in kb.by_loinc:
                return value, None
    if loinc_given:
        return None
    for text in (msg.field(i, 3, 2), msg.field(i, 3, 5)):
        if text.strip() and kb.find_analyte(text.strip()) is not None:
            return None, text.strip()
    return None


def _unit(msg: Er7Message, i: int, kb: Knowledge) -> str | None:
    """OBX-6: the UCUM code when its coding system says UCUM, else the first of identifier, text and
    alternates that the unit allowlist knows (or the first given, for the core to refuse by name)."""
    identifier = msg.field(i, 6, 1).strip()
    if identifier and msg.field(i, 6, 3).strip().upper() in UCUM_SYSTEMS:
        return identifier
    given: list[str] = []
    for component in (1, 2, 4, 5):
        text = identifier if component == 1 else msg.field(i, 6, component).strip()
        if text and kb.units.lookup(text) is not None:
            return text
        if text:
            given.append(text)
    return given[0] if given else None


def _value(msg: Er7Message, i: int) -> tuple[float | str | None, str | None, str | None]:
    """(value, comparator, why not) from OBX-2 and OBX-5."""
    value_type = msg.field(i, 2).strip().upper()
    values = msg.repetitions(i, 5)
    if not values:
        return None, None, "OBX-5 holds no value"
    if len(values) > 1:
        return None, None, "OBX-5 holds more than one value"
    if value_type == "NM":
        number = _number(msg.field(i, 5).strip())
        return (number, None, None) if number is not None else (None, None, "OBX-5 is not an NM number")
    if value_type == "SN":
        comparator, first, separator, second = (msg.field(i, 5, c).strip() for c in range(1, 5))
        number = _number(first)
        if separator or second:
            return None, None, "OBX-5 is a structured range or ratio, not a single value"
        if comparator not in SN_COMPARATORS or number is None:
            return None, None, "OBX-5 is not a structured number the service reads (comparator^number)"
        return number, SN_COMPARATORS[comparator], None
    if value_type in ("ST", "TX", "FT", ""):
        return msg.field(i, 5).strip(), None, None  # the core reads "4.2" or "<150", or says why not
    return None, None, f"OBX-2 value type {value_type[:8]} does not hold a number"


def lab_range(text: str) -> LabRange | None:
    """OBX-7 as the laboratory's reference interval: `3.5-5.1`, `70_105`, `<5.1`, `>3.5`; None when it
    says something else (free text is kept in the message, not read)."""
    two = _TWO_SIDED.match(text)
    if two:
        return LabRange(float(two[1]), float(two[2]), text=text)
    one = _ONE_SIDED.match(text)
    if one:
        bound = float(one[2])
        return LabRange(bound, None, text=text) if one[1].startswith(">") else LabRange(None, bound, text=text)
    return None


def _observation(msg: Er7Message, i: int, kb: Knowledge, offset: timedelta | None) -> Observation | None:
    named = _analyte(msg, i, kb)
    if named is None:
        return None
    flags = tuple(f.strip() for f in msg.repetitions(i, 8) if f.strip())
    observed, _ = _time(msg.field(i, 14), offset)
    obs = Observation(i, None, flags, observed=observed)
    status = msg.field(i, 11).strip().upper()
    if status not in RESULT_STATUSES:
        obs.remarks.append(f"not interpreted: OBX-11 result status {status[:4]} carries no result to interpret")
        return obs
    value, comparator, why = _value(msg, i)
    if why:
        obs.remarks.append(f"not interpreted: {why}")
        return obs
    range_text = msg.field(i, 7).strip()
    lab = lab_range(range_text) if range_text else None
    if range_text and lab is None:
        obs.remarks.append("OBX-7 could not be read as a reference interval (low-high, <high or >low); "
                           "the service's own interval was applied")
    code, name = named
    result = ResultInput(value=value, unit=_unit(msg, i, kb), analyte=name, code=code, id=f"OBX-{i}",
                         comparator=comparator, reference_range=lab)
    problems = result_problems(result, kb)
    if lab is not None and problems and all(p.path[:1] == ("reference_range",) for p in problems):
        obs.remarks.append("OBX-7 could not be used (" + "; ".join(p.message for p in problems)[:200]
                           + "); the service's own interval was applied")
        result, lab = replace(result, reference_range=None), None
        problems = result_problems(result, kb)
    if problems:
        obs.remarks += [f"not interpreted: {_where(p.path)}{p.message[:200]}" for p in problems]
        return obs
    obs.result, obs.lab_range = result, lab is not None
    return obs


def _where(path: tuple) -> str:
    return {"unit": "OBX-6: ", "value": "OBX-5: ", "code": "OBX-3: ", "analyte": "OBX-3: "}.get(
        str(path[0]) if path else "", "")


def _offset(msg: Er7Message) -> timedelta | None:
    """MSH-7's UTC offset, when it has one: the sender's, for its times that carry none."""
    text = msg.field(0, 7).strip()
    if not _WITH_OFFSET.search(text):
        return None
    moment, _ = _time(text, None)
    return moment.utcoffset() if moment is not None else None


def _time(text: str, offset: timedelta | None) -> tuple[datetime | None, bool]:
    """(moment, valid): an empty field is (None, True), a malformed one (None, False)."""
    try:
        return hl7_time(text.strip(), offset), True
    except ValueError:
        return None, False


def _patient(msg: Er7Message, i: int | None, on: date, remarks: list[str]) -> Patient:
    """Age (on the day of collection) and sex from PID-7 and PID-8."""
    if i is None:
        return Patient()
    born, valid = _time(msg.field(i, 7), None)
    if not valid:
        remarks.append("PID-7 (date of birth) is not a valid HL7 date, so the age is unknown and no "
                       "age-specific interval was applied")
    age = age_at(born.date(), on) if born is not None else None
    if born is not None and age is None:
        remarks.append("PID-7 (date of birth) is after the collection date, so the age is unknown and no "
                       "age-specific interval was applied")
    return Patient(age, SEXES.get(msg.field(i, 8).strip().upper()))


def read_orders(msg: Er7Message, kb: Knowledge, now: datetime | None = None) -> list[Order]:
    """Every OBR that has OBX segments of ours under it, in message order. The age is taken on the
    day of collection (OBR-7, else OBX-14), else of the message (MSH-7), else `now`."""
    offset = _offset(msg)
    pid: int | None = None
    groups: list[tuple[int, int | None, list[Observation]]] = []
    for i in range(1, len(msg)):
        kind = msg.segment_id(i)
        if kind == "PID":
            pid = i
        elif kind == "OBR":
            groups.append((i, pid, []))
        elif kind == "OBX" and groups:
            obs = _observation(msg, i, kb, offset)
            if obs is not None:
                groups[-1][2].append(obs)
    orders = []
    for obr, patient_at, observations in groups:
        if not observations:
            continue
        remarks: list[str] = []
        collected, valid = _time(msg.field(obr, 7), offset)
        if not valid:
            remarks.append("OBR-7 (observation date/time) is not a valid HL7 date/time and was not used")
        collected = collected or next((o.observed for o in observations if o.observed), None)
        message_time, _ = _time(msg.field(0, 7), offset)
        on = (collected or message_time or now or datetime.now(UTC)).date()
        patient = _patient(msg, patient_at, on, remarks)
        orders.append(Order(obr, patient, collected, observations, remarks, patient_at))
    return orders

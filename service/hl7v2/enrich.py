"""An ORU^R01 message enriched with the core's interpretation, as minimal edits of its own bytes.

For each OBX we interpret: OBX-8 gets the HL7 table 0078 flag (LL, L, N, H, HH), OBX-7 our interval
when the laboratory sent none, and one NTE follows per interpretation note (with its sources), after
any NTE the laboratory sent. Panel notes, remarks about the order and the disclaimer follow the OBR
as NTEs. Everything else is left as it came (er7.Er7Message.edited). No Flask here.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..core import Context, InputError, PanelInput, PanelReport, interpret_panel
from ..core.knowledge import Knowledge
from ..core.model import HistoryInput
from ..core.report import ResultReport, decimals, tidy
from .er7 import Er7Message
from .oru import Observation, Order, read_orders

SUPPORTED_VERSIONS = ("2.3", "2.3.1", "2.4", "2.5", "2.5.1")
# Table 0078 flags that say where the value lies against the interval: ours replace them. Any other
# flag the laboratory sent (B, W, R, S, MS, VS, ...) is kept after ours. U and D (significant change
# up or down) are ours too when the message holds an earlier result of the analyte for the patient.
POSITION_FLAGS = frozenset({"L", "H", "LL", "HH", "N", "A", "AA", "<", ">"})
CHANGE_FLAGS = {"rise": "U", "fall": "D"}
NTE_SOURCE = b"O"  # HL7 table 0105: other system is the source of the comment
SIGNATURE = "labinterp"


class NotInterpretable(Exception):
    """A readable message that this door does not enrich as a whole; `code` is from HL7 table 0357,
    `field` the MSH field that says so."""

    def __init__(self, text: str, code: str, field: int):
        super().__init__(text)
        self.text, self.code, self.field = text, code, field


@dataclass(frozen=True)
class Enriched:
    raw: bytes
    reports: tuple[PanelReport, ...]
    interpreted: int  # OBX segments interpreted
    not_interpreted: int  # OBX segments of ours left as they were, with an NTE saying why


def check_interpretable(msg: Er7Message) -> None:
    """NotInterpretable unless the message is an ORU^R01 of a version and character set we edit."""
    kind, event = msg.message_type
    if kind != "ORU":
        raise NotInterpretable(f"message type {kind[:8] or '(none)'} is not interpreted: only ORU^R01 is", "200", 9)
    if event != "R01":
        raise NotInterpretable(f"trigger event {event[:8] or '(none)'} is not interpreted: only ORU^R01 is", "201", 9)
    if msg.version not in SUPPORTED_VERSIONS:
        raise NotInterpretable(f"HL7 version {msg.version[:12] or '(none)'} is not interpreted: "
                               f"{', '.join(SUPPORTED_VERSIONS)} are", "203", 12)
    if msg.codec is None:
        raise NotInterpretable(f"character set {msg.charset[:20]} (MSH-18) is not one the service edits "
                               "(ASCII, 8859/n, UNICODE UTF-8)", "103", 18)
    if len(msg.encoding_chars) != 4:
        raise NotInterpretable("MSH-2 has five encoding characters, which HL7 2.5.1 and earlier do not define",
                               "102", 2)


@dataclass
class _Edits:
    msg: Er7Message
    replace: dict[int, bytes] = field(default_factory=dict)
    insert_after: dict[int, list[bytes]] = field(default_factory=dict)

    def notes_after(self, i: int, texts: list[str]) -> None:
        """NTE segments after segment i and the NTEs already following it, numbered on from them."""
        last = i
        while last + 1 < len(self.msg) and self.msg.segment_id(last + 1) == "NTE":
            last += 1
        sep = self.msg.field_separator
        for n, text in enumerate(texts, start=last - i + 1):
            self.insert_after.setdefault(last, []).append(
                sep.join((b"NTE", str(n).encode(), NTE_SOURCE, self.msg.escape(text))))


def _interval_text(r: ResultReport) -> str:
    """Our interval in the result's own unit, in OBX-7's forms (`low-high`, `>low`, `<high`), both
    limits with as many decimals as the more precise one (8.6-10.0, as laboratories print it)."""
    limits = [tidy(x) for x in (r.reference_range.input_low, r.reference_range.input_high)]
    places = max((decimals(x) for x in limits if x is not None), default=0)
    low, high = (None if x is None else f"{x:.{places}f}" for x in limits)
    if low is not None and high is not None:
        return f"{low}-{high}"
    return f">{low}" if low is not None else f"<{high}" if high is not None else ""


def _obx(msg: Er7Message, obs: Observation, r: ResultReport) -> bytes:
    """The OBX with our flags in OBX-8 (the position, and U or D for a significant change; the
    laboratory's other flags kept) and our interval in an empty OBX-7."""
    fields = msg.fields_raw(obs.index)
    fields += [b""] * (9 - len(fields))
    if not fields[7].strip():
        fields[7] = msg.escape(_interval_text(r))
    change = CHANGE_FLAGS.get(r.delta.direction or "") if r.delta is not None and r.delta.significant else None
    ours = [f.encode() for f in (r.flag, change) if f]
    if ours:
        rep = msg.encoding_chars[1].encode()
        replaced = POSITION_FLAGS | ({"U", "D"} if change else set())
        kept = [f for f in fields[8].split(rep) if f.strip() and f.strip().decode("latin-1").upper() not in replaced]
        fields[8] = rep.join(ours + kept)
    return msg.field_separator.join(fields)


def _result_texts(obs: Observation, r: ResultReport) -> list[str]:
    texts = []
    theirs = sorted({f.upper() for f in obs.lab_flags} & POSITION_FLAGS)
    if theirs and (r.flag or "") not in theirs:
        texts.append(f"{SIGNATURE} [info] The sending laboratory flagged this result {', '.join(theirs)}; labinterp "
                     f"classifies it {r.band.replace('_', ' ')} ({r.flag or 'no flag'}) against the interval it applied.")
    if r.band == "indeterminate":
        texts.append(f"{SIGNATURE} [info] The censored value spans more than one band, so no flag was set.")
    texts += [f"{SIGNATURE} [info] {remark}." for remark in obs.remarks]
    return texts + [f"{SIGNATURE} {note.as_text()}" for note in r.notes]


def _history(order: Order, orders: list[Order], kb: Knowledge) -> tuple[HistoryInput, ...]:
    """The earlier results of the same patient (PID) in the message, for the analytes whose newest result
    of the message this order holds: those get a delta; older ones are interpreted as they stand."""
    at = order.collected
    if at is None:
        return ()
    timed = [(o.collected, o) for o in orders if o.pid == order.pid and o.collected is not None]
    newest: dict[str, datetime] = {}
    for when, o in timed:
        for obs in o.observations:
            name = _analyte_of(obs, kb)
            if name is not None and (name not in newest or when > newest[name]):
                newest[name] = when
    wanted = {name for name, when in newest.items() if when == at}
    return tuple(HistoryInput(obs.result.value, obs.result.unit, when, obs.result.analyte, obs.result.code,
                              obs.result.comparator)
                 for when, o in timed if when < at
                 for obs in o.observations if obs.result is not None and _analyte_of(obs, kb) in wanted)


def _analyte_of(obs: Observation, kb: Knowledge) -> str | None:
    r = obs.result
    if r is None:
        return None
    a = kb.by_loinc.get(r.code or "") or kb.find_analyte(r.analyte or "")
    return None if a is None else a.id


def _interpret(order: Order, kb: Knowledge, max_results: int, now: datetime | None,
               history: tuple[HistoryInput, ...] = ()) -> PanelReport | None:
    usable = [o for o in order.observations if o.result is not None]
    if not usable:
        return None
    if len(usable) > max_results:
        order.remarks.append(f"not interpreted: more than {max_results} results of analytes the service "
                             "interprets in one order")
        return None
    panel = PanelInput(tuple(o.result for o in usable if o.result), order.patient, Context(), order.collected,
                       history[-max_results:])
    try:
        return interpret_panel(panel, kb, now=now)
    except InputError as exc:  # every result was checked on its own; this would be a panel-level rule
        order.remarks.append(f"not interpreted: {'; '.join(p.message for p in exc.problems)[:300]}")
        return None


def enrich(msg: Er7Message, kb: Knowledge, max_results: int, now: datetime | None = None) -> Enriched:
    """The message with every OBX of ours interpreted, or said not to be; NotInterpretable when the
    message as a whole is not one this door edits."""
    check_interpretable(msg)
    edits = _Edits(msg)
    reports: list[PanelReport] = []
    interpreted = refused = 0
    orders = read_orders(msg, kb, now)
    for order in orders:
        report = _interpret(order, kb, max_results, now, _history(order, orders, kb))
        results = iter(report.results) if report else iter(())
        for obs in order.observations:
            r = next(results) if obs.result is not None and report else None
            if r is None:
                refused += 1
                edits.notes_after(obs.index, [f"{SIGNATURE} [info] {remark}." for remark in obs.remarks])
                continue
            interpreted += 1
            edits.replace[obs.index] = _obx(msg, obs, r)
            edits.notes_after(obs.index, _result_texts(obs, r))
        texts = [f"{SIGNATURE} {note.as_text()}" for note in report.notes] if report else []
        texts += [f"{SIGNATURE} [info] {remark}." for remark in order.remarks]
        edits.notes_after(order.index, texts + [f"{SIGNATURE} (knowledge {kb.version}) {kb.disclaimer}"])
        if report:
            reports.append(report)
    return Enriched(msg.edited(edits.replace, edits.insert_after), tuple(reports), interpreted, refused)

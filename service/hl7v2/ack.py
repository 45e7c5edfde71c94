"""HL7 v2 acknowledgements: built with python-hl7's Message.create_ack, with MSA-3 and an ERR segment
added for an error (create_ack writes neither); and read back from a downstream system.

Original-mode codes only: AA (accepted), AE (error: the sender keeps the message and sends it
again), AR (rejected: sending it again cannot help). ERR carries the reason in both its v2.3/2.4
form (ERR-1) and its v2.5 form (ERR-2 location, ERR-3 table 0357 code, ERR-4 severity, ERR-8 text).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from datetime import datetime, UTC

import hl7

from .er7 import Er7Error, read_header, read_message

# Table 0357 texts of the codes this service sends.
ERROR_TEXTS = {"100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
               "103": "Table value not found", "200": "Unsupported message type", "201": "Unsupported event code",
               "203": "Unsupported version id", "207": "Application internal error"}
# A stand-in MSH to acknowledge bytes that had none we could read.
_NO_HEADER = "MSH|^~\\&|||||||ACK^||P|2.5.1"
ACCEPTED, ERROR, REJECTED = "AA", "AE", "AR"


@dataclass(frozen=True)
class AckError:
    """Why a message was not accepted: the text for the sender, the table 0357 code, where."""

    text: str
    code: str = "207"
    where: tuple[str, int, int] | None = None  # segment id, sequence, field


def _source(msh: str | None) -> hl7.Message:
    """The MSH to acknowledge, as create_ack needs it: MSH-9 with components and fields up to MSH-12."""
    if msh is None:
        return hl7.parse(_NO_HEADER)
    fields = msh.split(msh[3])
    fields += [""] * (12 - len(fields))
    if msh[4] not in fields[8]:
        fields[8] += msh[4]
    return hl7.parse(msh[3].join(fields))


def build_ack(msh: str | None, code: str, error: AckError | None = None, now: datetime | None = None) -> bytes:
    """The ACK of a message whose MSH segment is `msh` (None when it had none we could read), its
    control id echoed in MSA-2, in the message's own delimiters; ASCII text."""
    source = _source(msh)
    with warnings.catch_warnings():  # create_ack stamps MSH-7 with datetime.utcnow(); we replace it
        warnings.simplefilter("ignore", DeprecationWarning)
        ack = source.create_ack(code)
    header, msa = ack.segment("MSH"), ack.segment("MSA")
    header.assign_field((now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S%z"), 7)
    segments = [str(header)]
    if error is None:
        segments.append(str(msa))
    else:
        text = str(source.escape(" ".join(error.text.split())[:400]))
        msa.assign_field(text, 3)  # MSA-3, the text message of v2.3/2.4 (ERR-8 from v2.5 on)
        segments += [str(msa), _err(source, error, text)]
    return ("\r".join(segments) + "\r").encode("ascii", "replace")


def _err(source: hl7.Message, error: AckError, text: str) -> str:
    sep = str(source.segment("MSH")[1])
    component, subcomponent = str(source.segment("MSH")[2])[0], str(source.segment("MSH")[2])[3]
    segment, sequence, position = error.where or ("", 0, 0)
    where = [segment, str(sequence) if sequence else "", str(position) if position else ""]
    label = ERROR_TEXTS.get(error.code, "")
    eld = component.join(where + [subcomponent.join((error.code, label, "HL70357"))])  # ERR-1, v2.3/2.4
    erl = component.join(where).rstrip(component)  # ERR-2
    cwe = component.join((error.code, label, "HL70357"))  # ERR-3
    return sep.join(("ERR", eld, erl, cwe, "E", "", "", "", text))


def ack_for(raw: bytes, code: str, error: AckError | None = None) -> bytes:
    """The ACK of raw bytes: their MSH when it can be read, else the stand-in (MSA-2 empty)."""
    return build_ack(read_header(raw), code, error)


@dataclass(frozen=True)
class Ack:
    code: str  # MSA-1
    control_id: str  # MSA-2: the control id of the message acknowledged


def read_ack(raw: bytes) -> Ack | None:
    """MSA-1 and MSA-2 of an acknowledgement, or None when the bytes are not one."""
    try:
        msg = read_message(raw)
    except Er7Error:
        return None
    for i in range(len(msg)):
        if msg.segment_id(i) == "MSA":
            return Ack(msg.field(i, 1).strip().upper(), msg.field(i, 2))
    return None

"""POST /hl7v2/interpret: an ORU^R01 in ER7 in, the same message enriched out; errors as HL7 ACKs.

An HL7 client reads an acknowledgement, not problem+json, so every error of this door is an ACK in
the request's media type: AR (resending cannot help) with MSA-3 and an ERR segment, with the HTTP
status saying what kind of error it is (400 not ER7, 401 no key, 413 too large, 415 media type, 422
ER7 that this door does not interpret as a whole). AE only for the 500 that is never expected.
"""
from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, request
from flask.typing import ResponseReturnValue

from ..config import Settings
from ..core.knowledge import Knowledge
from ..http.body import read_body
from ..http.contract import SECURED, ApiDoc
from ..http.door import Door
from ..http.problems import ApiProblem
from ..ops import metrics
from .ack import ERROR, REJECTED, AckError, ack_for, build_ack
from .enrich import NotInterpretable, enrich
from .er7 import Er7Error, read_message

ER7 = "x-application/hl7-v2+er7"
MEDIA_TYPES = (ER7, "text/plain")

EXAMPLE = "\r".join((
    "MSH|^~\\&|LIS|LAB|EHR|HOSP|20261119083000+0100||ORU^R01^ORU_R01|MSG00001|P|2.5.1",
    "PID|1||PATID1234^^^HOSP^MR||DOE^JANE||19580312|F",
    "OBR|1|ORD448811|FIL448811|24323-8^Metabolic panel^LN|||20261119080000+0100",
    "OBX|1|NM|2823-3^Potassium^LN||3.1|mmol/L^mmol/L^UCUM|||||F",
    "OBX|2|SN|2132-9^Vitamin B12^LN||<^150|pg/mL^pg/mL^UCUM|||||F",
)) + "\r"

_MESSAGE = {"type": "string", "description": "One HL7 v2 message in ER7 (segments ended by CR), in the character "
                                             "set its MSH-18 names (ASCII, 8859/n or UNICODE UTF-8)."}
# What the door enriches, as far as a pattern can say it: one ORU^R01 of version 2.3 to 2.5.1 in the
# recommended encoding characters |^~\& and a character set it edits; the later segments each an id
# (not another message or a batch). The service also reads other encoding characters MSH-2 declares.
_FIELD = r"[^|\r\n]*"
_EOL = r"(?:\r\n|\r|\n)"
ORU_PATTERN = (
    r"^\ufeff?[ \t\r\n]*MSH\|\^~\\&(?:\|" + _FIELD + r"){6}"                       # MSH-3 to MSH-8
    r"\|ORU\^R01(?:[\^~&]" + _FIELD + r")?"                                           # MSH-9
    r"\|" + _FIELD + r"\|" + _FIELD +                                                 # MSH-10, MSH-11
    r"\|2\.(?:3\.1|3|4|5\.1|5)(?:[\^~&]" + _FIELD + r")?"                              # MSH-12
    r"(?:(?:\|" + _FIELD + r"){5}\|(?:|ASCII|UNICODE UTF-8|8859/(?:15|[1-9]))(?:~" + _FIELD + r")?"
    r"(?:\|[^\r\n]*)?|(?:\|" + _FIELD + r"){0,5})"                                     # MSH-13 to MSH-18...
    r"(?:" + _EOL + r"+(?!MSH|FHS|BHS|BTS|FTS)[A-Z][A-Z0-9]{2}(?:\|[^\r\n]*)?)*" + _EOL + r"*$"
)
_ORU = {**_MESSAGE, "pattern": ORU_PATTERN,
        "description": _MESSAGE["description"] + " The pattern states the ORU^R01 this door enriches with the "
                       "recommended encoding characters; other encoding characters that MSH-2 declares are read too. "
                       "x-application/hl7-v2+er7 (HAPI's media type for HL7 over HTTP) is accepted as well as "
                       "text/plain, and answered in kind."}
_ACK = {"type": "string", "description": "An HL7 ACK: MSA-1 AR (AE for a 500), MSA-2 the message's control id "
                                         "when it could be read, MSA-3 and an ERR segment saying why."}
ACK_DESCRIPTIONS = {
    400: "Not an HL7 v2 message in ER7: empty body, no MSH, unusable separators, a line that is not a segment.",
    401: "Missing or wrong API key.",
    404: "No such resource.",
    405: "Method not allowed on this resource.",
    413: "Request body larger than the configured limit.",
    415: "Not x-application/hl7-v2+er7 or text/plain.",
    422: "ER7 that is not interpreted as a whole: not ORU^R01, an HL7 version other than 2.3 to 2.5.1, or a "
         "character set (MSH-18) the service does not edit.",
    500: "Unexpected server error (never expected; no detail is revealed).",
}
# A 4xx ACK by the HTTP status it comes with: the table 0357 code and where.
STATUS_ERRORS = {400: "102", 401: "207", 404: "207", 405: "207", 413: "102", 415: "102", 422: "207", 500: "207"}


def _media_type() -> str:
    """The request's media type when it is one of ours, else ER7: the answer comes back in it."""
    return request.mimetype if request.mimetype in MEDIA_TYPES else ER7


def _response(body: bytes, status: int, charset: str | None = "us-ascii",
              headers: dict[str, str] | None = None) -> Response:
    content_type = _media_type() + (f"; charset={charset}" if charset else "")
    resp = Response(body, status=status, content_type=content_type)
    for key, value in (headers or {}).items():
        resp.headers[key] = value
    return resp


def problem_as_ack(status: int, detail: str, headers: dict[str, str] | None = None) -> Response:
    """An HTTP-level error (401, 404, 405, 413, 415, 500) on an HL7 v2 path, as an HL7 client reads it."""
    code = ERROR if status >= 500 else REJECTED
    return _response(build_ack(None, code, AckError(detail, STATUS_ERRORS.get(status, "207"))), status, headers=headers)


def _doc(description: str) -> dict[str, Any]:
    return {"description": description, "content": {m: {"schema": _ACK} for m in MEDIA_TYPES}}


RESPONSES = {
    "200": {"description": "The message as it came, byte for byte, but for OBX-8 (the flag), an empty OBX-7 (our "
                           "interval) and the NTE segments added after each interpreted OBX and after its OBR.",
            "content": {m: {"schema": _MESSAGE} for m in MEDIA_TYPES}},
    **{str(status): _doc(text) for status, text in ACK_DESCRIPTIONS.items() if status not in (404, 405)},
}


def make_door(kb: Knowledge, settings: Settings) -> Door:
    bp = Blueprint("hl7v2", __name__, url_prefix="/hl7v2")
    doc = ApiDoc("hl7v2", "HL7 v2: enrich the ORU^R01 result messages laboratories send.", "/hl7v2")

    @bp.post("/interpret")
    @doc.operation("/interpret", "post", operationId="interpretHl7v2", security=SECURED, requestBody={
        "required": True, "content": {"text/plain": {"schema": _ORU, "example": EXAMPLE}}}, responses=RESPONSES)
    def interpret() -> ResponseReturnValue:
        """Interpret the results of an HL7 v2 ORU^R01 message.

        Each OBX naming one of the service's analytes (by LOINC code, coding system LN, or by name) is
        classified against the laboratory's OBX-7 interval or the service's own, and gets its flag in
        OBX-8 and its notes as NTE segments; a result that cannot be interpreted gets an NTE saying why.
        The answer is in the request's media type and the message's own character set.
        """
        try:
            raw = read_body(settings.max_body_bytes, MEDIA_TYPES)
        except ApiProblem as exc:
            return problem_as_ack(exc.status, exc.detail)
        try:
            msg = read_message(raw)
            enriched = enrich(msg, kb, settings.max_results)
        except Er7Error as exc:
            return _response(build_ack(exc.header, REJECTED, AckError(exc.text, exc.code, exc.where)), 400)
        except NotInterpretable as exc:
            return _response(ack_for(raw, REJECTED, AckError(exc.text, exc.code, ("MSH", 1, exc.field))), 422)
        metrics.observe_reports(enriched.reports)
        return _response(enriched.raw, 200, _mime_charset(msg.codec))

    return Door(bp, doc, problem_as_ack)


def _mime_charset(codec: str | None) -> str | None:
    """The IANA name of a codec of er7.CODECS (us-ascii, utf-8, iso-8859-n)."""
    if codec is None:
        return None
    return {"ascii": "us-ascii"}.get(codec, codec.replace("iso8859-", "iso-8859-"))

"""Reading a JSON request body defensively: media type, size, encoding, syntax, nesting depth."""
from __future__ import annotations

import json
import re
from typing import Any

import orjson
from flask import request
from werkzeug.exceptions import RequestEntityTooLarge

from ..core.errors import Problem
from .problems import ApiProblem

JSON_TYPES = ("application/json",)


def _is_json(mimetype: str) -> bool:
    return mimetype in JSON_TYPES or (mimetype.startswith("application/") and mimetype.endswith("+json"))


def read_body(max_bytes: int, accept: tuple[str, ...], any_json: bool = False) -> bytes:
    """The raw body, or ApiProblem: 415 when its media type is not in `accept` (nor a +json type with
    `any_json`), 413 when it is larger than max_bytes (refused unread when it says so up front)."""
    mimetype = request.mimetype
    if not (mimetype in accept or (any_json and _is_json(mimetype))):
        raise ApiProblem(415, f"send the body as {' or '.join(accept)}", [Problem((), "unsupported media type")])
    length = request.content_length
    if length is not None and length > max_bytes:
        raise ApiProblem(413, f"the body is larger than {max_bytes} bytes", [Problem((), "body too large")])
    # With a Content-Length within the limit, Werkzeug's stream ends there: read it in one call.
    return request.get_data(cache=False) if length is not None else _read_limited(max_bytes)


def read_json(max_bytes: int, accept: tuple[str, ...] = JSON_TYPES) -> Any:
    """Return the parsed body or raise ApiProblem (415, 413, 400) with a pointer to the body root."""
    raw = read_body(max_bytes, accept, any_json=accept == JSON_TYPES)
    if not raw.strip():
        raise ApiProblem(400, "the body is empty", [Problem((), "expected a JSON object")])
    if not _LONG_DIGITS.search(raw):
        try:
            return orjson.loads(raw)  # strict RFC 8259 and UTF-8; anything it refuses is re-read below
        except orjson.JSONDecodeError:
            pass
    try:
        text = raw.decode("utf-8")  # RFC 8259: JSON exchanged between systems is UTF-8
    except UnicodeDecodeError as exc:
        raise ApiProblem(400, f"the body is not UTF-8 (byte {exc.start})", [Problem((), "not UTF-8")]) from None
    try:
        # NaN and Infinity are parsed so that the field holding them is named in a 422.
        return json.loads(text)
    except RecursionError:
        raise ApiProblem(400, "the JSON document is nested too deeply", [Problem((), "nested too deeply")]) from None
    except ValueError as exc:
        raise ApiProblem(400, f"the body is not valid JSON: {_describe(exc)}", [Problem((), "invalid JSON")]) from None


# orjson reads an integer beyond 64 bits as a float; such bodies take the json module's exact path.
# 19 digits, not 20: an integer below -2**63 (-9223372036854775809) has only 19.
_LONG_DIGITS = re.compile(rb"[0-9]{19}")


def _read_limited(max_bytes: int) -> bytes:
    """Read at most max_bytes; a body without Content-Length that goes on past that is a 413."""
    too_large = ApiProblem(413, f"the body is larger than {max_bytes} bytes", [Problem((), "body too large")])
    chunks: list[bytes] = []
    size = 0
    try:
        while True:
            chunk = request.stream.read(min(65536, max_bytes + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise too_large
            if size == max_bytes and request.stream.read(1):
                raise too_large
    except RequestEntityTooLarge:
        raise too_large from None
    return b"".join(chunks)


def _describe(exc: ValueError) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    return str(exc)

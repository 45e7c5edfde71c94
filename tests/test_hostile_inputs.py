"""A catalogue of hostile requests to POST /v1/interpretations, and what the service must answer.

Every row: (case id, body, content type, expected status, JSON pointer(s) that must be reported).
A body given as bytes is sent as is; anything else is JSON-encoded first. Every response must have the
expected status, be application/problem+json when it is an error, conform to openapi.yaml, never be
a 5xx, and come back within a generous wall-clock guard (no tighter timing is asserted anywhere).

Decisions the rows encode (from README.md, service/api/fields.py and service/core/values.py):
unknown fields are rejected at every level with 422 naming the field; ids and units may not hold
C0/C1 control characters or U+2028/U+2029 (bidi controls such as U+202E are not control characters:
accepted and echoed exactly); a tiny positive value such as 1e-320 is implausible, not an error.
"""
from __future__ import annotations

import io
import json
import time
from typing import Any, NamedTuple
from collections.abc import Callable

import pytest
from jsonschema import Draft202012Validator
from werkzeug.test import EnvironBuilder

from service.config import Settings
from service.ops.drain import DrainUnreadBody

from .conftest import AUTH
from .contract_check import SPEC_URI

PATH = "/v1/interpretations"
JSON = "application/json"
PROBLEM = "application/problem+json"
GUARD_SECONDS = 5.0  # a wall-clock guard against hangs, not a performance target
LIMIT = Settings().max_body_bytes  # the conftest app runs with the default settings
MAX_RESULTS = Settings().max_results


def K(**kw: Any) -> dict[str, Any]:
    """A valid potassium result, with fields replaced or added."""
    return {"analyte": "k", "value": 4.0, "unit": "mmol/L", **kw}


def panel(*results: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {**kw, "results": list(results) or [K()]}


def without(d: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in d.items() if k != key}


def raw_result(value_token: bytes, **extra: bytes) -> bytes:
    """A panel whose one result's value is a raw JSON token (NaN, Infinity, 400-digit numbers...)."""
    more = b"".join(b', "%s": %s' % (k.encode(), v) for k, v in extra.items())
    return b'{"results": [{"analyte": "k", "unit": "mmol/L", "value": ' + value_token + more + b"}]}"


def body_of_size(size: int) -> bytes:
    """A valid one-result panel padded with insignificant whitespace to exactly `size` bytes."""
    core = json.dumps(panel()).encode()
    return core[:-1] + b" " * (size - len(core)) + core[-1:]


def many_items(item: bytes, budget: int) -> bytes:
    """{"results": [item, item, ...]} as large as fits in `budget` bytes."""
    head, tail = b'{"results": [', b"]}"
    n = (budget - len(head) - len(tail) + 1) // (len(item) + 1)
    return head + b",".join([item] * n) + tail


def band_is(band: str, implausible: bool = False) -> Callable[[dict[str, Any]], None]:
    def check(data: dict[str, Any]) -> None:
        assert data["results"][0]["band"] == band, data["results"][0]
        assert data["results"][0]["implausible"] is implausible, data["results"][0]
    return check


def id_echoed(rid: str) -> Callable[[dict[str, Any]], None]:
    def check(data: dict[str, Any]) -> None:
        assert data["results"][0]["id"] == rid
    return check


class Case(NamedTuple):
    id: str
    body: Any  # bytes: sent as is; anything else: JSON-encoded
    content_type: str | None  # None: no Content-Type header at all
    status: int
    pointers: str | tuple[str, ...] | None  # every one must appear in errors[].pointer
    check: Callable[[dict[str, Any]], None] | None = None  # extra assertion on a 200 body


BIG_INT = b"1" + b"0" * 400  # a valid JSON number that no float can hold

AT = "2026-11-20T08:00:00Z"


def H(**kw: Any) -> dict[str, Any]:
    """A valid earlier potassium result, a day before AT, with fields replaced or added."""
    return {"analyte": "k", "value": 4.4, "unit": "mmol/L", "collected_at": "2026-11-19T08:00:00Z", **kw}


def with_history(*items: Any, **kw: Any) -> dict[str, Any]:
    return {"collected_at": AT, "history": list(items), **panel(**kw)}


def _delta(previous: float, change: float, hours: float) -> Callable[[dict[str, Any]], None]:
    def check(data: dict[str, Any]) -> None:
        d = data["results"][0]["delta"]
        assert (d["previous"]["value"], d["change"], d["hours"]) == (previous, change, hours), d
    return check


def _no_delta(data: dict[str, Any]) -> None:
    assert data["results"][0]["delta"] is None and data["results"][0]["trend"] == []


MAX_HISTORY = Settings().max_history
HISTORY_CASES = [
    Case("history-item-ok", with_history(H()), JSON, 200, None, _delta(4.4, -0.4, 24.0)),
    Case("history-disordered-times-newest-wins",
         with_history(H(value=3.9, collected_at="2026-11-10T08:00:00Z"), H(value=4.2, collected_at="2026-11-19T20:00:00Z"),
                      H(value=5.0, collected_at="2026-11-15T08:00:00+05:00")), JSON, 200, None, _delta(4.2, -0.2, 12.0)),
    Case("history-exact-duplicate-counts-once", with_history(H(), H()), JSON, 200, None, _delta(4.4, -0.4, 24.0)),
    Case("history-same-moment-other-value", with_history(H(), H(value=5.0)), JSON, 422, "/history/1/value"),
    Case("history-same-moment-other-offset-other-value",
         with_history(H(), H(value=5.0, collected_at="2026-11-19T09:00:00+01:00")), JSON, 422, "/history/1/value"),
    Case("history-mixed-units", with_history(H(value=17.2, unit="mg/dL")), JSON, 200, None,
         lambda d: d["results"][0]["delta"]["previous"]["unit"] == "mmol/L"),
    Case("history-of-another-analyte-only", with_history({"analyte": "b12", "value": 300, "unit": "pg/mL",
                                                          "collected_at": "2026-11-01T08:00:00Z"}), JSON, 200, None, _no_delta),
    Case("history-older-than-the-look-back", with_history(H(collected_at="2020-01-01T00:00:00Z")), JSON, 200, None, _no_delta),
    Case("history-at-the-panel-time", with_history(H(collected_at=AT)), JSON, 422, "/history/0/collected_at"),
    Case("history-after-the-panel", with_history(H(collected_at="2026-11-21T08:00:00Z")), JSON, 422,
         "/history/0/collected_at"),
    Case("history-without-panel-time", {"history": [H()], **panel()}, JSON, 422, "/collected_at"),
    Case("history-time-without-offset", with_history(H(collected_at="2026-11-19T08:00:00")), JSON, 422,
         "/history/0/collected_at"),
    Case("history-time-missing", with_history(without(H(), "collected_at")), JSON, 422, "/history/0/collected_at"),
    Case("history-time-not-a-date", with_history(H(collected_at="yesterday")), JSON, 422, "/history/0/collected_at"),
    Case("history-unit-unknown", with_history(H(unit="furlong")), JSON, 422, "/history/0/unit"),
    Case("history-unit-wrong-kind", with_history(H(unit="pg/mL")), JSON, 422, "/history/0/unit"),
    Case("history-analyte-unknown", with_history(H(analyte="sodium")), JSON, 422, "/history/0/analyte"),
    Case("history-value-negative", with_history(H(value=-1)), JSON, 422, "/history/0/value"),
    Case("history-value-nan-text", with_history(H(value="NaN")), JSON, 422, "/history/0/value"),
    Case("history-value-boolean", with_history(H(value=True)), JSON, 422, "/history/0/value"),
    Case("history-censored-value", with_history(H(value="<3.0")), JSON, 200, None,
         lambda d: d["results"][0]["delta"]["change"] is None),
    Case("history-comparator-field-is-not-taken", with_history(H(comparator="<")), JSON, 422, "/history/0/comparator"),
    Case("history-unknown-field", with_history(H(id="h1")), JSON, 422, "/history/0/id"),
    Case("history-not-a-list", {**with_history(), "history": {"k": 4.4}}, JSON, 422, "/history"),
    Case("history-item-not-an-object", with_history("4.4"), JSON, 422, "/history/0"),
    Case("history-at-the-bound", with_history(*(H(collected_at=f"2026-10-{1 + i % 28:02d}T{i % 24:02d}:00:00Z")
                                                for i in range(MAX_HISTORY))), JSON, 200, None,
         lambda d: 2 <= len(d["results"][0]["trend"]) <= 10),
    Case("history-over-the-bound", with_history(*([H()] * (MAX_HISTORY + 1))), JSON, 422, "/history"),
    Case("history-problems-and-result-problems-together", {**with_history(H(unit="furlong")), "results": [K(unit="x")]},
         JSON, 422, ("/history/0/unit", "/results/0/unit")),
    Case("history-broken-shape-still-checks-content", {**with_history(H(unit="furlong"), H(extra=1)), "results": [K()]},
         JSON, 422, ("/history/0/unit", "/history/1/extra")),
]

CASES: list[Case] = [
    # ---- syntax and encoding: 400 at the body root
    Case("invalid-json", b'{"results": [}', JSON, 400, ""),
    Case("truncated-json", b'{"results": [{"analyte": "k", "val', JSON, 400, ""),
    Case("empty-body", b"", JSON, 400, ""),
    Case("whitespace-only-body", b" \r\n\t  \n", JSON, 400, ""),
    Case("non-utf8-bytes", b'{"results": [{"id": "\xff\xfe\xc0", "analyte": "k", "value": 4, "unit": "mmol/L"}]}',
         JSON, 400, ""),
    Case("utf16-with-bom", json.dumps(panel()).encode("utf-16"), JSON, 400, ""),
    Case("nested-10000-arrays", b"[" * 10000 + b"]" * 10000, JSON, 400, ""),
    Case("nested-10000-objects", b'{"a": ' * 10000 + b"1" + b"}" * 10000, JSON, 400, ""),
    # Python refuses integers of more than 4300 digits while parsing (int max_str_digits guard).
    Case("integer-5000-digits", raw_result(b"7" * 5000), JSON, 400, ""),
    # ---- not an object at the top level: 422 at the root
    Case("top-level-array", [K()], JSON, 422, ""),
    Case("top-level-string", "results", JSON, 422, ""),
    Case("top-level-number", 42, JSON, 422, ""),
    Case("top-level-null", None, JSON, 422, ""),
    Case("top-level-true", True, JSON, 422, ""),
    # ---- media type: 415 at the root
    Case("content-type-text-plain", panel(), "text/plain", 415, ""),
    Case("content-type-xml", b"<panel><results/></panel>", "application/xml", 415, ""),
    Case("content-type-multipart", b'--x\r\nContent-Disposition: form-data; name="results"\r\n\r\n[]\r\n--x--\r\n',
         "multipart/form-data; boundary=x", 415, ""),
    Case("content-type-form", b"results=1", "application/x-www-form-urlencoded", 415, ""),
    Case("content-type-missing", panel(), None, 415, ""),
    Case("content-type-json-seq", panel(), "application/json-seq", 415, ""),
    # ---- size: over the limit is 413; exactly at the limit is fine
    Case("body-over-limit", body_of_size(LIMIT + 1), JSON, 413, ""),
    Case("body-exactly-at-limit", body_of_size(LIMIT), JSON, 200, None, band_is("normal")),
    # ---- results: presence, type and count
    Case("results-missing", {"patient": {"age_years": 40}}, JSON, 422, "/results"),
    Case("results-empty", {"results": []}, JSON, 422, "/results"),
    Case("results-null", {"results": None}, JSON, 422, "/results"),
    Case("results-object", {"results": K()}, JSON, 422, "/results"),
    Case("result-not-an-object", {"results": [K(), 5]}, JSON, 422, "/results/1"),
    Case("results-101", {"results": [K()] * (MAX_RESULTS + 1)}, JSON, 422, "/results"),
    # Too many results is a problem of its own, even when the results are broken too.
    Case("results-101-all-broken", {"results": [{"analyte": "zinc"}] * (MAX_RESULTS + 1)}, JSON, 422, "/results"),
    # ~350,000 empty objects fit in the 1 MiB limit: the count alone decides, quickly and briefly.
    Case("results-350k-under-size-limit", many_items(b"{}", LIMIT), JSON, 422, "/results"),
    # ---- analyte and unit
    Case("analyte-unknown", panel(K(analyte="zinc")), JSON, 422, "/results/0/analyte"),
    Case("analyte-and-code-missing", panel(without(K(), "analyte")), JSON, 422, "/results/0/analyte"),
    Case("analyte-100kb", panel(K(analyte="k" * 100_000)), JSON, 422, "/results/0/analyte"),
    Case("code-unknown", panel({"code": "1234-5", "value": 4, "unit": "mmol/L"}), JSON, 422, "/results/0/code"),
    Case("unit-unknown", panel(K(unit="furlong")), JSON, 422, "/results/0/unit"),
    Case("unit-missing", panel(without(K(), "unit")), JSON, 422, "/results/0/unit"),
    Case("unit-empty", panel(K(unit="")), JSON, 422, "/results/0/unit"),
    Case("unit-wrong-kind-potassium-pg/mL", panel(K(unit="pg/mL")), JSON, 422, "/results/0/unit"),
    Case("unit-wrong-kind-b12-mmol/L", panel({"analyte": "b12", "value": 300, "unit": "mmol/L"}), JSON, 422,
         "/results/0/unit"),
    Case("unit-power-exhaustion", panel(K(unit="mg/dL**999999999")), JSON, 422, "/results/0/unit"),
    Case("unit-10000-nested-parens", panel(K(unit="(" * 10000 + "mg" + ")" * 10000)), JSON, 422, "/results/0/unit"),
    Case("unit-100kb", panel(K(unit="mg/dL" * 20_000)), JSON, 422, "/results/0/unit"),
    Case("unit-1e999", panel(K(unit="1e999 mg/dL")), JSON, 422, "/results/0/unit"),
    Case("unit-sql", panel(K(unit="mg/dL; DROP TABLE")), JSON, 422, "/results/0/unit"),
    Case("unit-with-nul", panel(K(unit="mmol\u0000/L")), JSON, 422, "/results/0/unit"),
    Case("unit-not-a-string", panel(K(unit=["mmol/L"])), JSON, 422, "/results/0/unit"),
    # ---- value
    Case("value-missing", panel(without(K(), "value")), JSON, 422, "/results/0/value"),
    Case("value-non-numeric-string", panel(K(value="four")), JSON, 422, "/results/0/value"),
    Case("value-nan-token", raw_result(b"NaN"), JSON, 422, "/results/0/value"),
    Case("value-nan-string", panel(K(value="NaN")), JSON, 422, "/results/0/value"),
    Case("value-infinity-token", raw_result(b"Infinity"), JSON, 422, "/results/0/value"),
    Case("value-minus-infinity-token", raw_result(b"-Infinity"), JSON, 422, "/results/0/value"),
    Case("value-infinity-string", panel(K(value="Infinity")), JSON, 422, "/results/0/value"),
    Case("value-1e400-overflows-to-inf", raw_result(b"1e400"), JSON, 422, "/results/0/value"),
    Case("value-400-digit-integer", raw_result(BIG_INT), JSON, 422, "/results/0/value"),
    Case("value-negative", panel(K(value=-1)), JSON, 422, "/results/0/value"),
    Case("value-1e308", panel(K(value=1e308)), JSON, 422, "/results/0/value"),
    Case("value-denormal-1e-320", panel(K(value=1e-320)), JSON, 200, None, band_is("critical_low", implausible=True)),
    Case("value-true", panel(K(value=True)), JSON, 422, "/results/0/value"),
    Case("value-null", panel(K(value=None)), JSON, 422, "/results/0/value"),
    Case("value-empty-array", panel(K(value=[])), JSON, 422, "/results/0/value"),
    Case("value-empty-object", panel(K(value={})), JSON, 422, "/results/0/value"),
    Case("value-exponent-string", panel(K(value="1e5")), JSON, 422, "/results/0/value"),
    Case("value-41-char-string", panel(K(value="4" * 41)), JSON, 422, "/results/0/value"),
    Case("value-nested-900-arrays", raw_result(b"[" * 900 + b"]" * 900), JSON, 422, "/results/0/value"),
    Case("censored-double-less", panel(K(value="<<5")), JSON, 422, "/results/0/value"),
    Case("censored-greater-alone", panel(K(value=">")), JSON, 422, "/results/0/value"),
    Case("censored-less-alone", panel(K(value="<")), JSON, 422, "/results/0/value"),
    Case("censored-less-space", panel(K(value="< ")), JSON, 422, "/results/0/value"),
    Case("censored-trailing-sign", panel(K(value="5<")), JSON, 422, "/results/0/value"),
    Case("censored-sign-both-sides", panel(K(value="<5<")), JSON, 422, "/results/0/value"),
    Case("censored-double-unicode-le", panel(K(value="\u2264\u22643")), JSON, 422, "/results/0/value"),
    Case("censored-negative", panel(K(value="<-5")), JSON, 422, "/results/0/value"),
    Case("comparator-unknown", panel(K(comparator="=")), JSON, 422, "/results/0/comparator"),
    Case("comparator-contradicts-value", panel(K(value="<5", comparator=">")), JSON, 422, "/results/0/value"),
    # ---- ids
    Case("id-duplicate", panel(K(id="a"), K(id="b"), K(id="a")), JSON, 422, "/results/2/id"),
    Case("id-emoji", panel(K(id="\U0001f9ea-\U0001f600")), JSON, 200, None, id_echoed("\U0001f9ea-\U0001f600")),
    Case("id-nul", panel(K(id="a\u0000b")), JSON, 422, "/results/0/id"),
    Case("id-c0-escape", panel(K(id="a\u001b[31mb")), JSON, 422, "/results/0/id"),
    Case("id-c1-nel", panel(K(id="a\u0085b")), JSON, 422, "/results/0/id"),
    Case("id-line-separator", panel(K(id="a\u2028b")), JSON, 422, "/results/0/id"),
    Case("id-paragraph-separator", panel(K(id="a\u2029b")), JSON, 422, "/results/0/id"),
    # U+202E is a format character, not a control character: accepted and echoed byte for byte.
    Case("id-bidi-override", panel(K(id="abc\u202edef")), JSON, 200, None, id_echoed("abc\u202edef")),
    Case("id-64-chars", panel(K(id="x" * 64)), JSON, 200, None, id_echoed("x" * 64)),
    Case("id-65-chars", panel(K(id="x" * 65)), JSON, 422, "/results/0/id"),
    Case("id-empty", panel(K(id="")), JSON, 422, "/results/0/id"),
    Case("id-number", panel(K(id=7)), JSON, 422, "/results/0/id"),
    # ---- the laboratory's own reference range
    Case("lab-range-low-above-high", panel(K(reference_range={"low": 5.0, "high": 3.0})), JSON, 422,
         "/results/0/reference_range/low"),
    Case("lab-range-foreign-unit", panel(K(reference_range={"low": 3.5, "high": 5.1, "unit": "g/L"})), JSON, 422,
         "/results/0/reference_range/unit"),
    Case("lab-range-unknown-unit", panel(K(reference_range={"low": 3.5, "high": 5.1, "unit": "furlong"})), JSON,
         422, "/results/0/reference_range/unit"),
    Case("lab-range-text-only", panel(K(reference_range={"text": "3.5-5.1 mmol/L"})), JSON, 422,
         "/results/0/reference_range"),
    Case("lab-range-empty", panel(K(reference_range={})), JSON, 422, "/results/0/reference_range"),
    Case("lab-range-negative", panel(K(reference_range={"low": -1.0, "high": 5.0})), JSON, 422,
         "/results/0/reference_range/low"),
    Case("lab-range-string-bound", panel(K(reference_range={"low": "3.5", "high": 5.0})), JSON, 422,
         "/results/0/reference_range/low"),
    Case("lab-range-nan-bound", b'{"results": [{"analyte": "k", "value": 4, "unit": "mmol/L", '
                                b'"reference_range": {"low": NaN, "high": 5}}]}', JSON, 422,
         "/results/0/reference_range/low"),
    Case("lab-range-400-digit-bound",
         raw_result(b"4", reference_range=b'{"low": 1, "high": ' + BIG_INT + b"}"), JSON, 422,
         "/results/0/reference_range/high"),
    # ---- dates
    Case("date-month-13-day-45", panel(collected_at="2026-13-45T00:00:00Z"), JSON, 422, "/collected_at"),
    Case("date-yesterday", panel(collected_at="yesterday"), JSON, 422, "/collected_at"),
    Case("date-naive", panel(collected_at="2026-11-19T08:00:00"), JSON, 422, "/collected_at"),
    Case("date-integer-0", panel(collected_at=0), JSON, 422, "/collected_at"),
    Case("date-injection-feb-30", panel(context={"b12_injection_at": "2026-02-30T08:00:00Z"}), JSON, 422,
         "/context/b12_injection_at"),
    Case("date-therapy-naive", panel(context={"b12_therapy_started_at": "2026-01-01T00:00:00"}), JSON, 422,
         "/context/b12_therapy_started_at"),
    # ---- enums and the patient
    Case("medication-unknown", panel(context={"medications": ["aspirin"]}), JSON, 422, "/context/medications/0"),
    Case("medications-not-a-list", panel(context={"medications": "statin"}), JSON, 422, "/context/medications"),
    Case("diet-unknown", panel(context={"diet": "carnivore"}), JSON, 422, "/context/diet"),
    Case("symptom-unknown", panel(context={"symptoms": ["headache"]}), JSON, 422, "/context/symptoms/0"),
    Case("condition-unknown", panel(context={"conditions": ["scurvy"]}), JSON, 422, "/context/conditions/0"),
    Case("hemolyzed-string", panel(context={"specimen": {"hemolyzed": "yes"}}), JSON, 422,
         "/context/specimen/hemolyzed"),
    Case("sex-unknown", panel(patient={"sex": "x"}), JSON, 422, "/patient/sex"),
    Case("age-negative", panel(patient={"age_years": -1}), JSON, 422, "/patient/age_years"),
    Case("age-200", panel(patient={"age_years": 200}), JSON, 422, "/patient/age_years"),
    Case("age-string", panel(patient={"age_years": "30"}), JSON, 422, "/patient/age_years"),
    Case("age-400-digit-integer", b'{"patient": {"age_years": ' + BIG_INT + b'}, "results": '
                                  b'[{"analyte": "k", "value": 4, "unit": "mmol/L"}]}', JSON, 422,
         "/patient/age_years"),
    Case("patient-not-an-object", panel(patient=[]), JSON, 422, "/patient"),
    Case("context-null", panel(context=None), JSON, 422, "/context"),
    # ---- unknown fields are rejected at every level, by name
    Case("unknown-field-root", panel(notes="please"), JSON, 422, "/notes"),
    Case("unknown-field-patient", panel(patient={"age_years": 40, "name": "Jane"}), JSON, 422, "/patient/name"),
    Case("unknown-field-context", panel(context={"smoker": True}), JSON, 422, "/context/smoker"),
    Case("unknown-field-specimen", panel(context={"specimen": {"lipemic": True}}), JSON, 422,
         "/context/specimen/lipemic"),
    Case("unknown-field-result", panel(K(flag="H")), JSON, 422, "/results/0/flag"),
    Case("unknown-field-reference-range", panel(K(reference_range={"low": 3.5, "high": 5.1, "source": "lab"})),
         JSON, 422, "/results/0/reference_range/source"),
    Case("unknown-field-name-needs-escaping", panel(K(**{"a/b~c": 1})), JSON, 422, "/results/0/a~1b~0c"),
    Case("unknown-field-deeply-nested-value", panel(extra=[[[[[[[[[[{}]]]]]]]]]]), JSON, 422, "/extra"),
    # ---- history (issue 15): each earlier result is checked like a result, and against the panel's time
    *HISTORY_CASES,
    # ---- several problems in one request: all of them, at once
    Case("several-problems-at-once", {
        "patient": {"sex": "x", "age_years": -3},
        "context": {"diet": "carnivore", "medications": ["aspirin"]},
        "collected_at": "yesterday",
        "results": [
            {"analyte": "k", "value": "NaN", "unit": "g/L"},
            {"analyte": "zinc", "value": -2, "unit": "mg/dL"},
            K(id="dup"), K(id="dup", colour="red"),
            K(reference_range={"low": 5.0, "high": 3.0}),
        ]}, JSON, 422,
        ("/patient/sex", "/patient/age_years", "/context/diet", "/context/medications/0", "/collected_at",
         "/results/0/unit", "/results/0/value", "/results/1/analyte", "/results/1/value", "/results/3/colour",
         "/results/4/reference_range/low")),
]

assert len(CASES) >= 45 and len({c.id for c in CASES}) == len(CASES)


def _send(client, case: Case):
    data = case.body if isinstance(case.body, bytes) else json.dumps(case.body).encode()
    kwargs: dict[str, Any] = {"data": data}
    if case.content_type is not None:
        kwargs["content_type"] = case.content_type
    start = time.perf_counter()
    resp = client.post(PATH, **kwargs)
    resp.get_data()
    return resp, time.perf_counter() - start


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_request(client, conform, case: Case):
    resp, elapsed = _send(client, case)
    with resp:
        assert resp.status_code < 500, f"{case.id}: {resp.status_code} {resp.get_data(as_text=True)[:500]}"
        assert resp.status_code == case.status, f"{case.id}: {resp.get_data(as_text=True)[:500]}"
        assert elapsed < GUARD_SECONDS, f"{case.id}: took {elapsed:.1f} s, answer {len(resp.get_data())} bytes"
        assert resp.mimetype == (JSON if case.status == 200 else PROBLEM)
        data = conform("post", PATH, resp)
        if case.status == 200:
            assert len(data["results"]) == 1
            if case.check is not None:
                case.check(data)
            return
        assert data["status"] == case.status
        reported = [e["pointer"] for e in data["errors"]]
        wanted = (case.pointers,) if isinstance(case.pointers, str) else case.pointers
        missing = [p for p in wanted or () if p not in reported]
        shown = reported if len(reported) <= 12 else reported[:12] + [f"... {len(reported) - 12} more"]
        assert not missing, f"{case.id}: {missing} not among the {len(reported)} reported: {shown}"


# ---------------------------------------------------------------- methods and paths


def _assert_problem(conform, resp, status: int) -> dict[str, Any]:
    assert resp.status_code == status and resp.mimetype == PROBLEM
    data = json.loads(resp.get_data(as_text=True))
    validator = Draft202012Validator({"$ref": f"{SPEC_URI}#/components/schemas/Problem"}, registry=conform.registry)
    errors = [e.message for e in validator.iter_errors(data)]
    assert not errors, errors
    assert data["status"] == status
    return data


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405_with_allow(client, conform, method):
    start = time.perf_counter()
    with client.open(PATH, method=method, json=panel()) as resp:
        assert time.perf_counter() - start < GUARD_SECONDS
        _assert_problem(conform, resp, 405)
        allowed = {m.strip() for m in resp.headers["Allow"].split(",")}
        assert "POST" in allowed and method not in allowed


@pytest.mark.parametrize("path", [
    "/v1/nothing-here", "/v1/interpretations/1", "/v2/interpretations", "/v1/interpretations/../../etc/passwd",
    "/v1/%00", "/" + "a/" * 2000, "/v1/interpretations.json",
])
def test_unknown_paths_are_404(client, conform, path):
    start = time.perf_counter()
    with client.get(path) as resp:
        assert time.perf_counter() - start < GUARD_SECONDS
        _assert_problem(conform, resp, 404)


# ---------------------------------------------------------------- the body limit, at the WSGI level


class GuardedInput(io.RawIOBase):
    """wsgi.input that serves filler bytes and fails the test if read beyond `limit` bytes."""

    def __init__(self, prefix: bytes, limit: int, filler: bytes = b" "):
        self.prefix, self.limit, self.filler, self.served = prefix, limit, filler, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        n = len(buf)
        if self.served + n > self.limit:
            raise AssertionError(f"the app read past {self.limit} bytes of the body")
        chunk = (self.prefix[self.served:self.served + n] + self.filler * n)[:n]
        buf[:n] = chunk
        self.served += n
        return n


def _call_wsgi(app, environ) -> tuple[int, dict[str, str], bytes, float]:
    out: dict[str, Any] = {}

    def start_response(status, headers, exc_info=None):
        out["status"], out["headers"] = int(status.split()[0]), dict(headers)

    start = time.perf_counter()
    iterable = app(environ, start_response)
    try:
        body = b"".join(iterable)
    finally:
        close = getattr(iterable, "close", None)
        if close is not None:
            close()
    return out["status"], out["headers"], body, time.perf_counter() - start


class _Resp:
    """Just enough of a response for the contract checker."""

    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status_code, self.mimetype = status, headers["Content-Type"].split(";")[0].strip()
        self._body = body

    def get_data(self, as_text: bool = False):
        return self._body.decode() if as_text else self._body


def _environ(**overrides: Any) -> dict[str, Any]:
    env = EnvironBuilder(path=PATH, method="POST", content_type=JSON, data=b"{}", headers=AUTH).get_environ()
    env.update(overrides)
    return env


def test_declared_length_over_limit_is_refused_without_reading(app, conform):
    stream = GuardedInput(b"", limit=2 * 1024 * 1024)
    env = _environ(CONTENT_LENGTH=str(50 * 1024 * 1024))
    env["wsgi.input"] = stream
    status, headers, body, elapsed = _call_wsgi(app, env)
    assert status == 413 and elapsed < GUARD_SECONDS
    assert stream.served <= 2 * 1024 * 1024
    data = conform("post", PATH, _Resp(status, headers, body))
    assert [e["pointer"] for e in data["errors"]] == [""]


def _streamed(app, body: bytes, declare_length: bool = False) -> tuple[int, dict[str, str], bytes, float, int]:
    """POST `body` as it arrives through gunicorn (which sets wsgi.input_terminated): as a chunked
    upload without Content-Length, or with a truthful Content-Length."""
    stream = io.BytesIO(body)
    env = _environ(**{"wsgi.input_terminated": True})
    if declare_length:
        env["CONTENT_LENGTH"] = str(len(body))
    else:
        env.pop("CONTENT_LENGTH", None)
    env["wsgi.input"] = stream
    status, headers, out, elapsed = _call_wsgi(app, env)
    return status, headers, out, elapsed, stream.tell()


@pytest.mark.parametrize("declare_length", [False, True], ids=["chunked", "content-length"])
@pytest.mark.parametrize("size, status", [(LIMIT - 1, 200), (LIMIT, 200), (LIMIT + 1, 413)],
                         ids=["below-limit", "at-limit", "over-limit"])
def test_body_limit_under_a_gunicorn_like_environ(app, conform, size, status, declare_length):
    """The limit is the same with or without Content-Length: a body of exactly the limit is fine
    ("larger request bodies get 413"). The test client does not set wsgi.input_terminated, gunicorn does."""
    got, headers, body, elapsed, _read = _streamed(app, body_of_size(size), declare_length)
    assert elapsed < GUARD_SECONDS
    assert got == status, f"a body of {size} bytes (limit {LIMIT}): {got} {body[:120]!r}"
    conform("post", PATH, _Resp(got, headers, body))


def test_streamed_body_over_limit_is_refused(app, conform):
    """No Content-Length (chunked upload; gunicorn sets wsgi.input_terminated): the limit still holds.

    The body is a valid panel followed by 2 MiB of spaces and then garbage, so the whole body is
    both over the limit and not JSON: it must never be interpreted as if it ended at the limit.
    """
    status, headers, body, elapsed, read = _streamed(
        app, json.dumps(panel()).encode() + b" " * (2 * 1024 * 1024) + b"garbage")
    assert elapsed < GUARD_SECONDS
    assert status == 413, f"got {status} after reading {read} bytes: {body[:120]!r}"
    assert read <= LIMIT + 65536  # refused once past the limit, not after reading everything
    conform("post", PATH, _Resp(status, headers, body))


# ---------------------------------------------------------------- what a refused body leaves unread


class CountingInput(io.RawIOBase):
    """wsgi.input of `size` filler bytes (None: endless), noting how much was read when the answer started."""

    def __init__(self, size: int | None, delay: float = 0.0):
        self.size, self.delay, self.served, self.at_answer = size, delay, 0, None

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:  # type: ignore[override]
        time.sleep(self.delay)
        n = len(buf) if self.size is None else min(len(buf), self.size - self.served)
        buf[:n] = b" " * n
        self.served += n
        return n


def _drained(stream: CountingInput, length: int | None, terminated: bool = True, max_bytes: int = 4 * 1024 * 1024,
             seconds: float = 5.0) -> tuple[int, float]:
    """POST to an app that answers 413 at once, reading nothing (as read_json does for a Content-Length
    over the limit), behind the service's drain; (bytes read in all, seconds)."""
    def refusing_app(environ, start_response):
        start_response("413 Request Entity Too Large", [("Content-Type", PROBLEM)])
        stream.at_answer = stream.served
        return [b"{}"]

    env = _environ(**{"wsgi.input": stream})
    env.pop("CONTENT_LENGTH", None)
    if length is None:
        env["HTTP_TRANSFER_ENCODING"] = "chunked"
    else:
        env["CONTENT_LENGTH"] = str(length)
    if terminated:
        env["wsgi.input_terminated"] = True
    status, _, _, elapsed = _call_wsgi(DrainUnreadBody(refusing_app, max_bytes, seconds), env)
    assert status == 413
    return stream.served, elapsed


def test_a_refused_body_is_drained_after_the_answer():
    stream = CountingInput(3 * 1024 * 1024)
    served, elapsed = _drained(stream, 3 * 1024 * 1024)
    assert stream.at_answer == 0 and served == 3 * 1024 * 1024  # answered first, then read to its end
    assert elapsed < GUARD_SECONDS


def test_no_drain_where_the_server_does_not_end_the_stream():
    """Without wsgi.input_terminated a read past the body could block: nothing is read."""
    stream = CountingInput(3 * 1024 * 1024)
    assert _drained(stream, 3 * 1024 * 1024, terminated=False)[0] == 0


def test_a_body_declared_beyond_the_drain_bound_is_not_read():
    stream = CountingInput(64 * 1024 * 1024)
    assert _drained(stream, 64 * 1024 * 1024, max_bytes=4 * 1024 * 1024)[0] == 0


def test_an_endless_chunked_body_is_drained_up_to_the_byte_bound():
    stream = CountingInput(None)
    served, elapsed = _drained(stream, None, max_bytes=4 * 1024 * 1024)
    assert served == 4 * 1024 * 1024 + 1 and elapsed < GUARD_SECONDS


def test_a_slow_body_is_drained_up_to_the_time_bound():
    mib = 1024 * 1024
    stream = CountingInput(100 * mib, delay=0.05)  # 1 MiB per read, 20 reads a second: 5 s to its end
    served, elapsed = _drained(stream, None, max_bytes=1 << 40, seconds=0.5)
    assert 0 < served < 100 * mib and elapsed < GUARD_SECONDS  # stopped at the deadline, not at the end

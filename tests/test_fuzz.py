"""A short, bounded fuzz run over the three parsers (fuzz/fuzz_parsers.py runs the same targets longer).

1. the request parser: arbitrary JSON documents, mutated valid panels, arbitrary bytes and numbers of
   any magnitude, POSTed to the test client: never a 5xx, always a documented status and content type
   (tests/contract_check.py), and every error pointer points into the request;
2. the censored-value parser, service.core.values.parse_value, with arbitrary text and objects:
   returns (finite float in range, comparator or None) or raises ValueError, nothing else;
3. the unit parser, knowledge.units.lookup, with arbitrary text: returns an allowlisted Unit or None,
   never raises and never reaches pint (the registry is booby-trapped for the run).

The targets live here as plain functions of a Harness so that the longer script can reuse them.
"""
from __future__ import annotations

from service.app import service_of

import contextlib
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Iterator
from unittest import mock

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core import units as units_mod
from service.core.units import unit_key
from service.core.values import MAX_VALUE, parse_value
from service.core.vocabulary import COMPARATORS

from .conftest import keyed_client
from .test_properties import valid_panels

PATH = "/v1/interpretations"
JSON = "application/json"
PROBLEM = "application/problem+json"
GUARD_SECONDS = 5.0
CONTROL = set(map(chr, [*range(0x00, 0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]))


# ---------------------------------------------------------------- the harness shared with the script

@dataclass(repr=False)
class Harness:
    app: Any
    conform: Callable[..., Any]
    calls: Counter = field(default_factory=Counter)
    statuses: dict[str, Counter] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.client = keyed_client(self.app)
        self.kb = service_of(self.app).knowledge

    def __repr__(self) -> str:  # shown in falsifying examples
        return "Harness()"

    def post(self, target: str, body: bytes, content_type: str | None = JSON) -> tuple[int, Any]:
        kwargs: dict[str, Any] = {"data": body}
        if content_type is not None:
            kwargs["content_type"] = content_type
        start = time.perf_counter()
        with self.client.post(PATH, **kwargs) as resp:
            elapsed = time.perf_counter() - start
            assert resp.status_code < 500, f"{resp.status_code}: {resp.get_data(as_text=True)[:300]}"
            assert elapsed < GUARD_SECONDS, f"took {elapsed:.1f} s"
            data = self.conform("post", PATH, resp)
            if resp.status_code == 200:
                assert resp.mimetype == JSON
            else:
                assert resp.mimetype == PROBLEM and data["status"] == resp.status_code and data["errors"]
            self.statuses.setdefault(target, Counter())[resp.status_code] += 1
            return resp.status_code, data


def encode(doc: Any, ascii_only: bool = True) -> bytes:
    """JSON text for a document, NaN and Infinity as the bare tokens Python writes."""
    return json.dumps(doc, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")


def resolves(doc: Any, pointer: str) -> bool:
    """Whether the parent of an RFC 6901 pointer exists in `doc` (the field itself may be missing)."""
    if pointer == "":
        return True
    tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return False
    return isinstance(node, (dict, list))


# ---------------------------------------------------------------- strategies

KEYS = ["results", "patient", "context", "collected_at", "id", "analyte", "code", "value", "comparator", "unit",
        "reference_range", "low", "high", "text", "age_years", "sex", "medications", "diet", "symptoms",
        "conditions", "specimen", "hemolyzed", "b12_injection_at", "b12_therapy_started_at"]
WORDS = ["k", "b12", "vitamin_b12", "calcium", "mg", "zinc", "mmol/L", "mg/dL", "pg/mL", "mEq/L", "g/L", "furlong",
         "<150", ">=2000", "\u22643", "<<5", "NaN", "Infinity", "-1", "1e999", "2026-11-19T08:00:00Z",
         "2026-13-45T00:00:00Z", "2132-9", "2823-3", "female", "vegan", "metformin", "muscle_cramps", "",
         " ", "\u0000", "\u202e", "\u2028", "\U0001f9ea", "(" * 50, "mg/dL**9"]

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2 ** 64), max_value=2 ** 64), st.floats(),
    st.text(max_size=40), st.sampled_from(WORDS),
)
JSON_DOCUMENTS = st.recursive(
    SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=6),
                               st.dictionaries(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)), children,
                                               max_size=6)),
    max_leaves=40,
)


def _slots(node: Any, out: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            out.append((node, key))
            _slots(value, out)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.append((node, i))
            _slots(value, out)
    return out


@st.composite
def mutated_panels(draw) -> Any:
    """A valid panel with one to four of its fields replaced, deleted or joined by a stranger."""
    doc = draw(valid_panels())
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        slots = _slots(doc, [])
        if not slots:
            break
        parent, key = draw(st.sampled_from(slots))
        op = draw(st.sampled_from(["replace", "replace", "delete", "add"]))
        if op == "replace":
            parent[key] = draw(JSON_DOCUMENTS)
        elif op == "delete":
            del parent[key]
        elif isinstance(parent, dict):
            parent[draw(st.one_of(st.sampled_from(KEYS), st.text(max_size=8)))] = draw(JSON_DOCUMENTS)
        else:
            parent.insert(key, draw(JSON_DOCUMENTS))
    return doc


OTHER_CONTENT_TYPES = st.one_of(
    st.sampled_from(["application/json; charset=utf-8", "application/json; charset=utf-16",
                     "application/problem+json", "application/vnd.lab+json", "text/plain", "text/json",
                     "application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded",
                     None]),
    st.from_regex(r"[a-z]{1,12}/[a-z0-9.+-]{1,20}(; ?[a-z]{1,8}=[a-z0-9-]{1,10})?", fullmatch=True),
)
# Mostly JSON, so that most bodies reach the parser rather than stopping at 415.
CONTENT_TYPES = st.integers(min_value=0, max_value=3).flatmap(lambda i: OTHER_CONTENT_TYPES if i == 0 else st.just(JSON))


@st.composite
def byte_bodies(draw) -> bytes:
    """Arbitrary bytes, or the bytes of a valid panel with a few of them flipped, cut or inserted."""
    if draw(st.booleans()):
        return draw(st.binary(max_size=2048))
    raw = bytearray(encode(draw(valid_panels())))
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        i = draw(st.integers(min_value=0, max_value=max(len(raw) - 1, 0)))
        op = draw(st.sampled_from(["flip", "cut", "insert", "truncate"]))
        if op == "flip" and raw:
            raw[i] = draw(st.integers(min_value=0, max_value=255))
        elif op == "cut":
            del raw[i:i + draw(st.integers(min_value=1, max_value=8))]
        elif op == "insert":
            raw[i:i] = draw(st.binary(min_size=1, max_size=8) | st.sampled_from([b"[", b"{", b'"', b"\\", b"\x00",
                                                                               b"NaN", b"\xff", b"\xc3"]))
        else:
            del raw[i:]
    return bytes(raw)


# Integers beyond 2**1024 are valid JSON numbers that no float can hold (float() raises OverflowError).
INTEGERS = st.one_of(
    st.integers(), st.integers(min_value=2 ** 1000, max_value=10 ** 1000),
    st.integers(min_value=-(10 ** 1000), max_value=-(2 ** 1000)),
)
NUMBERS = st.one_of(INTEGERS, st.floats())
NUMBER_FIELDS = st.sampled_from([("results", 0, "value"), ("patient", "age_years"),
                                 ("results", 0, "reference_range", "low"), ("results", 0, "reference_range", "high")])

VALUE_TEXT = st.one_of(
    st.text(max_size=50),
    st.from_regex(r"\s{0,2}(<=|>=|<|>|\u2264|\u2265|=|<<)?\s{0,2}-?[0-9]{0,14}(\.[0-9]{0,14})?(e[+-]?[0-9]{1,3})?\s{0,2}",
                  fullmatch=True),
)
VALUE_OBJECTS = st.one_of(
    VALUE_TEXT, st.none(), st.booleans(), st.integers(min_value=-(2 ** 64), max_value=2 ** 64), st.floats(),
    st.decimals(), st.fractions(), st.complex_numbers(), st.binary(max_size=8), st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2), st.builds(object),
)
COMPARATOR_ARGS = st.one_of(st.none(), st.sampled_from([*COMPARATORS, "=", "\u2264", "", " <", "<<"]), st.text(max_size=3))

@st.composite
def unit_texts(draw, spellings: tuple[str, ...]) -> str:
    kind = draw(st.sampled_from(["any", "alphabet", "mutated", "long"]))
    if kind == "any":
        return draw(st.text(max_size=64))
    if kind == "alphabet":
        return draw(st.text(alphabet="mgdLlµμuMOpPnN/()*^0123456789 .eEq%;,-_\u00a0\u2009\uff4d\uff47\u2215",
                            max_size=40))
    if kind == "long":
        return draw(st.sampled_from(spellings)) * draw(st.integers(min_value=2, max_value=5000))
    text = draw(st.sampled_from(spellings))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        i = draw(st.integers(min_value=0, max_value=len(text)))
        text = text[:i] + draw(st.text(min_size=1, max_size=3)) + text[i:]
    return draw(st.sampled_from([text, text.upper(), text.swapcase(), f"\t{text}\n"]))


# ---------------------------------------------------------------- the targets

def request_document(h: Harness, doc: Any, ascii_only: bool) -> None:
    """Any JSON document: a documented answer, and pointers into the document."""
    h.calls["request-json-documents"] += 1
    status, data = h.post("request-json-documents", encode(doc, ascii_only))
    if ascii_only:  # the body is valid UTF-8 JSON, so it is never a 400, 413 or 415
        assert status in (200, 422), status
    if status == 422:
        for e in data["errors"]:
            assert resolves(doc, e["pointer"]), (e, doc)


def request_panel(h: Harness, doc: Any) -> None:
    """A mutated valid panel: 200 or 422, and every pointer into the document."""
    h.calls["request-mutated-panels"] += 1
    status, data = h.post("request-mutated-panels", encode(doc))
    assert status in (200, 422), status
    if status == 200:
        assert len(data["results"]) == len(doc["results"])
    else:
        for e in data["errors"]:
            assert resolves(doc, e["pointer"]), (e, doc)


def request_bytes(h: Harness, body: bytes, content_type: str | None) -> None:
    h.calls["request-bytes"] += 1
    status, _ = h.post("request-bytes", body, content_type)
    assert status in (200, 400, 413, 415, 422), status


def request_numbers(h: Harness, where: tuple, number: int | float) -> None:
    """A number of any magnitude (JSON allows any) in each numeric field of a valid panel."""
    h.calls["request-numbers"] += 1
    doc: dict[str, Any] = {"patient": {"age_years": 40},
                           "results": [{"analyte": "k", "value": 4, "unit": "mmol/L",
                                        "reference_range": {"low": 3.5, "high": 5.1}}]}
    node: Any = doc
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = number
    status, data = h.post("request-numbers", encode(doc))
    if status == 422:
        pointers = [e["pointer"] for e in data["errors"]]
        named = "/" + "/".join(map(str, where))
        if "reference_range" in where:  # a bound out of order with the other is reported at `low`
            assert {named, "/results/0/reference_range/low"} & set(pointers), pointers
        else:
            assert named in pointers, pointers
    else:
        assert status == 200, status


def value_parser(h: Harness, value: Any, comparator: Any) -> None:
    """parse_value returns a finite, bounded float and a known comparator, or raises ValueError."""
    h.calls["value-parser"] += 1
    try:
        number, comp = parse_value(value, comparator)
    except ValueError as exc:
        assert str(exc)  # a message meant for the caller
        return
    assert type(number) is float and math.isfinite(number) and 0 <= number <= MAX_VALUE
    assert comp is None or comp in COMPARATORS
    if comparator is not None:
        assert comp == comparator
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        assert number == float(value)
    else:
        assert isinstance(value, str)


def value_parser_magnitudes(h: Harness, value: int, comparator: Any) -> None:
    """Integers of any size are numbers too: a ValueError when too large, never another exception."""
    h.calls["value-parser-magnitudes"] += 1
    value_parser(h, value, comparator)


def unit_lookup(h: Harness, text: str) -> None:
    h.calls["unit-lookup"] += 1
    unit = h.kb.units.lookup(text)
    if unit is None:
        return
    assert any(unit is u for u in h.kb.units.units.values())
    assert len(text) <= units_mod.MAX_UNIT_LENGTH
    assert unit_key(text) in {unit_key(s) for s in (unit.id, unit.ucum, *unit.spellings)}


def unit_over_http(h: Harness, text: str) -> None:
    """The API accepts a potassium unit exactly when the allowlist does (and it is clean text)."""
    h.calls["unit-over-http"] += 1
    status, data = h.post("unit-over-http", encode({"results": [{"analyte": "k", "value": 4, "unit": text}]}))
    unit = h.kb.units.lookup(text)
    clean = 1 <= len(text) <= 32 and not CONTROL & set(text)
    accepted = clean and unit is not None and unit.id in h.kb.analytes["potassium"].factors
    assert status == (200 if accepted else 422), (text, status)
    if status == 422:
        assert "/results/0/unit" in [e["pointer"] for e in data["errors"]]


@contextlib.contextmanager
def pint_tripwire() -> Iterator[None]:
    """Make any use of pint during the run fail loudly (the factors were derived at start-up)."""

    class Tripwire:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the pint registry was used during a request ({name})")

    def registry() -> Any:
        raise AssertionError("the pint registry was requested during a request")

    with mock.patch.object(units_mod, "registry", registry), mock.patch.object(units_mod, "_registry", Tripwire()):
        yield


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[..., None]
    strategies: Callable[[Harness], dict[str, st.SearchStrategy]]
    no_pint: bool = False


def _spellings(h: Harness) -> tuple[str, ...]:
    return tuple(sorted({s for u in h.kb.units.units.values() for s in (u.id, u.ucum, *u.spellings)}))


TARGETS = {t.name: t for t in [
    Target("request-json-documents", request_document,
           lambda h: {"doc": JSON_DOCUMENTS, "ascii_only": st.booleans()}),
    Target("request-mutated-panels", request_panel, lambda h: {"doc": mutated_panels()}),
    Target("request-bytes", request_bytes, lambda h: {"body": byte_bodies(), "content_type": CONTENT_TYPES}),
    Target("request-numbers", request_numbers, lambda h: {"where": NUMBER_FIELDS, "number": NUMBERS}),
    Target("value-parser", value_parser, lambda h: {"value": VALUE_OBJECTS, "comparator": COMPARATOR_ARGS}),
    Target("value-parser-magnitudes", value_parser_magnitudes,
           lambda h: {"value": INTEGERS, "comparator": COMPARATOR_ARGS}),
    Target("unit-lookup", unit_lookup, lambda h: {"text": unit_texts(_spellings(h))}, no_pint=True),
    Target("unit-over-http", unit_over_http, lambda h: {"text": unit_texts(_spellings(h))}, no_pint=True),
]}


def build(target: Target, h: Harness, seed: int | None = None, **settings_kwargs: Any) -> Callable[[], None]:
    """The target as a runnable hypothesis test with these settings (and this seed, if given)."""
    test = given(h=st.just(h), **target.strategies(h))(target.run)
    if seed is not None:
        test = hypothesis.seed(seed)(test)
    defaults = {"deadline": None, "database": None,
                "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large,
                                          HealthCheck.filter_too_much]}
    test = settings(**{**defaults, **settings_kwargs})(test)

    def run() -> None:
        with pint_tripwire() if target.no_pint else contextlib.nullcontext():
            test()
    return run


# ---------------------------------------------------------------- the bounded run

@pytest.fixture(scope="module")
def harness(app, conform) -> Harness:
    return Harness(app, conform)


@pytest.mark.parametrize("name", list(TARGETS))
def test_fuzz(harness, name):
    build(TARGETS[name], harness, max_examples=200, derandomize=True)()
    assert harness.calls[name] >= 50  # the target really ran (hypothesis may stop early on small spaces)

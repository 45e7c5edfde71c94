"""The compiled fast path of Schema.load: never a different answer from marshmallow, only a faster one."""
from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marshmallow import Schema, ValidationError, fields, post_load

from service.api.fastload import Fallback, Unsupported, compile_schema, fast_load
from service.api.interpretations.examples import PANEL_EXAMPLE
from service.api.interpretations.schemas import make_schemas
from service.core import default_knowledge

SCHEMAS = make_schemas(default_knowledge(), 100, 200)
PANEL = SCHEMAS["Panel"]()

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20), st.floats(allow_nan=True),
                         st.text(max_size=12))
json_values = st.recursive(json_scalars, lambda kids: st.one_of(st.lists(kids, max_size=3),
                                                                st.dictionaries(st.text(max_size=6), kids, max_size=3)),
                           max_leaves=6)

# Valid and invalid spellings of each field. Bodies are drawn valid, then 0 to 3 spots are broken
# (a bad spelling, any JSON value, an unknown key), so both paths are exercised on near-valid bodies.
VALID: dict[str, list[Any]] = {
    "id": ["b12", "k", "r-1"], "analyte": ["vitamin_b12", "Potassium", "magnesium", "calcium", "b12", "nope"],
    "code": ["2823-3", "2132-9", "0000-0"], "value": [0, 3.1, 180, 1e12, "<50", ">=2000", "abc", -1],
    "unit": ["pg/mL", "mmol/L", "mg/dL", "mEq/L", "furlong"], "comparator": ["<", ">="],
    "low": [0, 3.5, 200.5], "high": [5.1, 900], "text": ["3.5-5.1", ""],
    "time": ["2026-11-19T08:30:00+00:00", "2026-11-19T08:30:00Z", "2026-11-19T08:30:00.123456+05:30"],
    "medications": [["diuretic"], ["statin", "ppi"], []], "diet": ["vegan", "omnivore"],
    "symptoms": [["muscle_cramps"], ["twitching", "muscle_cramps"]], "conditions": [["ckd"], []],
    "hemolyzed": [True, False], "age_years": [0, 67, 67.5, 130], "sex": ["female", "male", "other", "unknown"],
}
INVALID: dict[str, list[Any]] = {
    "id": ["", "i" * 65, "a\nb", "b12\n"], "analyte": ["", "x" * 70, "K\n", "ca\u2028"],
    "code": ["", "1" * 17], "value": [True, None, [], {}], "unit": ["", "m" * 40, "pg/mL\n"],
    "comparator": ["=", "~"], "low": [-1, 2e12, math.nan, math.inf, True, "3.5", 10**301],
    "high": [-1, "5.1", None], "text": ["t" * 201, 5],
    "time": ["2026-11-19T08:30:00", "2026-11-19", "2026-13-40T08:30:00Z", "yesterday", "", 20261119],
    "medications": [["diuretic", "diuretic"], ["aspirin"], "diuretic"], "diet": ["carnivore", None],
    "symptoms": [["hiccups"], ["twitching", "twitching"]], "conditions": [["gout"]],
    "hemolyzed": [1, "yes", None], "age_years": [-1, 131, math.nan, True, "67", 10**400], "sex": ["f", ""],
}
KIND = {"b12_injection_at": "time", "b12_therapy_started_at": "time", "collected_at": "time"}


def valid(kind: str) -> st.SearchStrategy[Any]:
    return st.sampled_from(VALID[kind])


result_bodies = st.fixed_dictionaries(
    {"analyte": valid("analyte"), "value": valid("value"), "unit": valid("unit")},
    optional={"id": valid("id"), "code": valid("code"), "comparator": valid("comparator"),
              "reference_range": st.fixed_dictionaries({}, optional={
                  k: valid(k) for k in ("low", "high", "unit", "text")})})
valid_panels = st.fixed_dictionaries({"results": st.lists(result_bodies, min_size=1, max_size=4)}, optional={
    "patient": st.fixed_dictionaries({}, optional={"age_years": valid("age_years"), "sex": valid("sex")}),
    "context": st.fixed_dictionaries({}, optional={
        "b12_injection_at": valid("time"), "b12_therapy_started_at": valid("time"),
        "medications": valid("medications"), "diet": valid("diet"), "symptoms": valid("symptoms"),
        "conditions": valid("conditions"),
        "specimen": st.fixed_dictionaries({}, optional={"hemolyzed": valid("hemolyzed")})}),
    "collected_at": valid("time")})


def _spots(body: Any, path: tuple = ()) -> list[tuple]:
    """Every (container, key) in a body, to break one of them."""
    out = []
    if isinstance(body, dict):
        for k, v in body.items():
            out.append((body, k))
            out += _spots(v)
    elif isinstance(body, list):
        for i, v in enumerate(body):
            out.append((body, i))
            out += _spots(v)
    return out


@st.composite
def panels(draw: st.DrawFn) -> Any:
    body = copy.deepcopy(draw(valid_panels))  # the pools must never be mutated
    for _ in range(draw(st.integers(0, 3))):
        spots = _spots(body)
        if not spots:
            break
        container, key = draw(st.sampled_from(spots))
        kind = KIND.get(key, key) if isinstance(key, str) else None
        how = draw(st.sampled_from(["invalid", "any", "unknown-key", "drop"]))
        if how == "invalid" and kind in INVALID:
            container[key] = draw(st.sampled_from(INVALID[kind]))
        elif how == "unknown-key" and isinstance(container, dict):
            container[draw(st.sampled_from(["extra", "Unit", "value "]))] = draw(json_values)
        elif how == "drop" and isinstance(container, dict):
            del container[key]
        else:
            container[key] = draw(json_values)
    return body


def load_or_error(schema: Schema, body: Any) -> Any:
    try:
        return schema.load(body)
    except ValidationError:
        return ValidationError


def assert_agrees(schema: Schema, body: Any) -> bool:
    """The fast walk either steps aside or returns exactly what marshmallow returns; True if it answered."""
    original = copy.deepcopy(body)
    try:
        fast = fast_load(schema, body)
    except Fallback:
        return False
    finally:
        assert body == original or body != body, "the fast path must not modify the body"
    slow = load_or_error(schema, body)
    assert slow is not ValidationError, f"the fast path accepted what marshmallow rejects: {body!r}"
    assert fast == slow
    assert [type(x) for x in _leaves(fast)] == [type(x) for x in _leaves(slow)]
    return True


def _leaves(x: Any) -> list[Any]:
    if isinstance(x, dict):
        return [leaf for k in sorted(x) for leaf in _leaves(x[k])]
    if isinstance(x, list):
        return [leaf for item in x for leaf in _leaves(item)]
    return [x]


def test_the_documented_example_takes_the_fast_path():
    assert assert_agrees(PANEL, copy.deepcopy(PANEL_EXAMPLE))


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(panels())
def test_fast_path_never_disagrees_with_marshmallow(body):
    assert_agrees(PANEL, body)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(range(4)), min_size=1, max_size=4), st.data())
def test_well_formed_panels_are_answered_by_the_fast_path(picks, data):
    """Valid bodies must really be served fast (else the optimisation has silently gone)."""
    body = copy.deepcopy(PANEL_EXAMPLE)
    body["results"] = [copy.deepcopy(PANEL_EXAMPLE["results"][i]) for i in picks]
    for i, r in enumerate(body["results"]):
        r["id"] = f"r{i}"
        r["value"] = data.draw(st.one_of(st.floats(0, 1e6), st.integers(0, 10**6), st.sampled_from(["<50", ">=2000"])))
    assert assert_agrees(PANEL, body)


@pytest.mark.parametrize("mutate", [
    lambda b: b["results"][0].update(id="b12\n"),  # a pattern's `$` would let this through
    lambda b: b["patient"].update(age_years=math.nan),
    lambda b: b["patient"].update(age_years=True),
    lambda b: b["patient"].update(age_years=10**400),
    lambda b: b["context"].update(symptoms=["muscle_cramps", "muscle_cramps"]),
    lambda b: b.update(collected_at="2026-11-19T08:30:00"),
    lambda b: b["results"][0].update(reference_range=None),
    lambda b: b["context"].update(specimen={"hemolyzed": 1}),
    lambda b: b.update(results=[]),
    lambda b: b["results"][1].pop("unit"),
    lambda b: b["patient"].update(height=170),
], ids=["newline-id", "nan-age", "bool-age", "huge-age", "repeated-symptom", "naive-time", "null-range",
        "int-boolean", "no-results", "missing-unit", "unknown-nested-key"])
def test_invalid_bodies_go_to_marshmallow(mutate):
    body = copy.deepcopy(PANEL_EXAMPLE)
    mutate(body)
    with pytest.raises(Fallback):
        fast_load(PANEL, body)
    assert load_or_error(PANEL, body) is ValidationError


def test_defaults_are_filled_as_marshmallow_fills_them():
    body = {"results": [{"analyte": "potassium", "value": 4, "unit": "mmol/L"}], "context": {"specimen": {}}}
    assert assert_agrees(PANEL, body)
    assert fast_load(PANEL, body)["context"] == {"medications": [], "symptoms": [], "conditions": [],
                                                 "specimen": {"hemolyzed": False}}


def test_schemas_with_features_it_does_not_mirror_are_refused_when_compiling():
    class WithHook(Schema):
        a = fields.String()

        @post_load
        def shout(self, data, **kwargs):
            return data

    class WithDataKey(Schema):
        a = fields.String(data_key="b")

    for schema in (WithHook(), WithDataKey()):
        with pytest.raises(Unsupported):
            compile_schema(schema)

"""The request path's speed-ups change nothing a client can see: orjson reads and writes the same
JSON as the json module, and the views are the plain functions they are written as."""
from __future__ import annotations

import json
import math

import pytest
from flask import Flask
from hypothesis import given, settings
from hypothesis import strategies as st

from service.http.body import read_json
from service.http.writer import json_response

app = Flask(__name__)

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10**25, 10**25), st.floats(allow_nan=False, allow_infinity=False),
              st.text()),
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)),
    max_leaves=12)


def read(raw: bytes):
    with app.test_request_context("/", method="POST", data=raw, content_type="application/json"):
        return read_json(10_000_000)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_bodies_are_read_exactly_as_the_json_module_reads_them(value):
    raw = json.dumps(value).encode()
    got = read(raw)
    assert got == json.loads(raw)
    assert json.dumps(got) == json.dumps(json.loads(raw))  # same types too: 1 stays an int, 1.0 a float


@pytest.mark.parametrize("raw", [b'{"a": NaN}', b'[18446744073709551616]', b'[123456789012345678901234567890]',
                                 b'"\\ud800"', b'[1e400]'])
def test_what_orjson_refuses_or_would_round_is_read_by_the_json_module(raw):
    got = read(raw)
    expected = json.loads(raw)
    assert json.dumps(got) == json.dumps(expected) or (isinstance(got, dict) and math.isnan(got["a"]))


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_responses_carry_the_same_json_as_flask_would_write(value):
    with app.app_context():
        body = json_response(value).get_data()
    assert json.loads(body) == value


def test_a_response_orjson_cannot_write_falls_back_to_flask():
    with app.app_context():
        resp = json_response({"big": 10**30, "nested": {1: "x"}})
    assert json.loads(resp.get_data()) == {"big": 10**30, "nested": {"1": "x"}}


def test_documenting_a_view_leaves_it_unwrapped(app):
    """The contract is recorded when the doors are built; no view carries a per-request layer."""
    for endpoint, view in app.view_functions.items():
        assert not hasattr(view, "__wrapped__"), endpoint


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes(timezones=st.just(__import__("datetime").UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    st.from_regex(r"\A\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})?\Z"),
    st.text(max_size=30)))
def test_rfc3339_fields_read_date_times_exactly_as_marshmallow_does(text):
    """The JSON panel's date-time field reads the usual spellings with datetime.fromisoformat: the same
    instant, the same offset, the same errors as marshmallow's AwareDateTime, for any text."""
    from marshmallow import ValidationError, fields

    from service.panels.fields import Rfc3339

    def read(field):
        try:
            value = field.deserialize(text)
        except ValidationError as exc:
            return ("error", str(exc.messages))
        return (value.isoformat(), value.utcoffset())

    assert read(Rfc3339()) == read(fields.AwareDateTime())

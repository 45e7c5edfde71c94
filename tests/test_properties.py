"""Hypothesis properties of the domain core (service.core) and, where cheap, of the HTTP API.

a) unit conversion round-trips and is consistent between any two accepted units;
b) classification is monotonic in the value (with default, partitioned and laboratory ranges);
c) every input result comes back exactly once, in order, with its id (generated ids are unique);
d) interpreting the same panel twice gives the same answer (core and HTTP);
e) censored values: "<x" is never above the band of x, ">x" never below.

Derandomized, so that CI runs the same examples every time.
"""
from __future__ import annotations

from service.app import service_of

import json
import math
from datetime import datetime, timedelta, UTC
from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from service.core import Context, LabRange, PanelInput, Patient, ResultInput, interpret_panel
from service.core import load_knowledge

_VOCAB = load_knowledge().vocabulary
SEXES, DIETS, MEDICATIONS, SYMPTOMS, CONDITIONS = (
    _VOCAB.ids(k) for k in ("sex", "diet", "medications", "symptoms", "conditions"))

from . import core_helpers as h
from .conftest import keyed_client

KB = h.kb()
NOW = h.NOW
ANALYTES = sorted(KB.analytes)
PATH = "/v1/interpretations"

CORE = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow])
HTTP = settings(max_examples=100, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---------------------------------------------------------------- helpers

def rank(analyte: str, band: str) -> int:
    return KB.analytes[analyte].bands.order().index(band)


def limits_of(analyte: str) -> list[float]:
    """Every number the classification of `analyte` compares against, in the canonical unit."""
    a = KB.analytes[analyte]
    out = [a.implausible.low, a.implausible.high, a.reference_interval.low, a.reference_interval.high]
    if a.critical is not None:
        out += [a.critical.low, a.critical.high]
    for part in a.partitions:
        out += [part.reference_interval.low, part.reference_interval.high]
        if part.critical is not None:
            out += [part.critical.low, part.critical.high]
    out += [x for s in a.bands.subdivisions for x in (s.upper, s.lower)]
    return sorted({x for x in out if x is not None})


def plausible(analyte: str) -> tuple[float, float]:
    impl = KB.analytes[analyte].implausible
    return impl.low, impl.high


def canonical_values(analyte: str, lo: float | None = None, hi: float | None = None) -> st.SearchStrategy[float]:
    """Values in [lo, hi] (default: the plausible range), limits themselves drawn often."""
    p_lo, p_hi = plausible(analyte)
    lo = p_lo if lo is None else lo
    hi = p_hi if hi is None else hi
    edges = [x for x in limits_of(analyte) if lo <= x <= hi]
    near = [y for x in edges for y in (math.nextafter(x, -math.inf), math.nextafter(x, math.inf)) if lo <= y <= hi]
    return st.one_of(st.floats(min_value=lo, max_value=hi), st.sampled_from(edges + near or [lo]))


def ages() -> st.SearchStrategy[float | None]:
    return st.one_of(st.none(), st.sampled_from([0.0, 17.999, 18.0, 59.5, 60.0, 130.0]),
                     st.floats(min_value=0, max_value=130))


@st.composite
def lab_ranges(draw, analyte: str, optional: bool = True) -> tuple[float | None, float | None] | None:
    """None, or a laboratory range inside the plausible limits (canonical unit), low < high."""
    if optional and draw(st.booleans()):
        return None
    low, high = sorted((draw(canonical_values(analyte)), draw(canonical_values(analyte))))
    side = draw(st.sampled_from(["both", "both", "low", "high"]))
    if low == high and side == "both":
        side = "low"
    return (low if side != "high" else None, high if side != "low" else None)


def one_panel(analyte: str, values: list[Any], *, age: float | None = None,
              lab: tuple[float | None, float | None] | None = None, comparators: list[str | None] | None = None):
    unit = KB.analytes[analyte].canonical_unit
    rng = None if lab is None else LabRange(lab[0], lab[1])
    comps = comparators or [None] * len(values)
    results = tuple(ResultInput(value=v, unit=unit, analyte=analyte, comparator=c, reference_range=rng)
                    for v, c in zip(values, comps))
    return interpret_panel(PanelInput(results=results, patient=Patient(age_years=age)), KB, now=NOW)


def decimal_text(x: float) -> str:
    """A canonical float as the plain decimal text a censored value accepts (at most 12 decimals)."""
    return h.fmt(x)


# ---------------------------------------------------------------- a) unit conversion

@CORE
@given(data=st.data())
def test_conversion_round_trips_through_every_accepted_unit(data):
    analyte = data.draw(st.sampled_from(ANALYTES), label="analyte")
    a = KB.analytes[analyte]
    u = data.draw(st.sampled_from(a.units), label="unit")
    w = data.draw(st.sampled_from(a.units), label="other unit")
    v = data.draw(st.floats(min_value=1e-6, max_value=1e9), label="canonical value")
    f = a.factors
    assert a.canonical_unit in a.units and math.isclose(f[a.canonical_unit], 1.0, rel_tol=1e-12)
    assert all(math.isfinite(x) and x > 0 for x in f.values())
    in_u = v / f[u]
    assert math.isclose(in_u * f[u], v, rel_tol=1e-9)
    # u -> canonical -> w -> canonical -> u returns the value, and u -> w is the ratio of the factors.
    in_w = in_u * f[u] / f[w]
    assert math.isclose(in_w * f[w] / f[u], in_u, rel_tol=1e-9)
    assert math.isclose(in_w, in_u * (f[u] / f[w]), rel_tol=1e-9)


@CORE
@given(data=st.data())
def test_the_core_normalizes_any_unit_alike(data):
    """The same quantity sent in two accepted units normalizes alike and, off the limits, bands alike."""
    analyte = data.draw(st.sampled_from(ANALYTES), label="analyte")
    a = KB.analytes[analyte]
    u = data.draw(st.sampled_from(a.units), label="unit")
    w = data.draw(st.sampled_from(a.units), label="other unit")
    lo, hi = plausible(analyte)
    c = data.draw(st.floats(min_value=lo / 2, max_value=hi * 2), label="canonical value")
    x, y = c / a.factors[u], c / a.factors[w]
    p = PanelInput(results=(ResultInput(value=x, unit=u, analyte=analyte), ResultInput(value=y, unit=w, analyte=analyte)))
    rx, ry = interpret_panel(p, KB, now=NOW).results
    assert rx.unit == u and ry.unit == w and rx.canonical_unit == ry.canonical_unit == a.canonical_unit
    assert math.isclose(rx.normalized_value, c, rel_tol=1e-9)
    assert math.isclose(rx.normalized_value, ry.normalized_value, rel_tol=1e-9)
    if all(abs(c - limit) > 1e-9 * abs(limit) for limit in limits_of(analyte)):
        assert (rx.band, rx.flag, rx.critical) == (ry.band, ry.flag, ry.critical)
    assert math.isclose(rx.reference_range.input_low or 0, (rx.reference_range.low or 0) / a.factors[u], rel_tol=1e-9)


# ---------------------------------------------------------------- b) monotonic classification

@CORE
@given(data=st.data())
def test_classification_is_monotonic(data):
    analyte = data.draw(st.sampled_from(ANALYTES), label="analyte")
    x = data.draw(canonical_values(analyte), label="x")
    y = data.draw(canonical_values(analyte), label="y")
    x, y = min(x, y), max(x, y)
    rx, ry = one_panel(analyte, [x, y], age=data.draw(ages(), label="age")).results
    assert "implausible" not in (rx.band, ry.band)
    assert rank(analyte, rx.band) <= rank(analyte, ry.band), (x, rx.band, y, ry.band)


@CORE
@given(data=st.data())
def test_classification_is_monotonic_with_a_laboratory_range(data):
    analyte = data.draw(st.sampled_from(ANALYTES), label="analyte")
    lab = data.draw(lab_ranges(analyte, optional=False), label="lab range")
    x = data.draw(canonical_values(analyte), label="x")
    y = data.draw(canonical_values(analyte), label="y")
    x, y = min(x, y), max(x, y)
    rx, ry = one_panel(analyte, [x, y], age=data.draw(ages(), label="age"), lab=lab).results
    assert rx.reference_range.origin == "laboratory"
    assert rank(analyte, rx.band) <= rank(analyte, ry.band), (lab, x, rx.band, y, ry.band)


@CORE
@given(data=st.data())
def test_sorted_values_give_sorted_bands(data):
    """A whole sorted panel of one analyte: the bands come back in non-decreasing order."""
    analyte = data.draw(st.sampled_from(ANALYTES), label="analyte")
    values = sorted(data.draw(st.lists(canonical_values(analyte), min_size=2, max_size=20), label="values"))
    lab = data.draw(lab_ranges(analyte), label="lab range")
    report = one_panel(analyte, values, age=data.draw(ages(), label="age"), lab=lab)
    ranks = [rank(analyte, r.band) for r in report.results]
    assert ranks == sorted(ranks), list(zip(values, [r.band for r in report.results]))


# ---------------------------------------------------------------- valid panels, as JSON and as core input

def _spelling(draw, text: str) -> str:
    return draw(st.sampled_from([text, text.upper(), text.lower(), f" {text} "]))


@st.composite
def valid_results(draw, rid: str | None) -> dict[str, Any]:
    """One valid result as the JSON API takes it."""
    analyte = draw(st.sampled_from(ANALYTES))
    a = KB.analytes[analyte]
    unit_id = draw(st.sampled_from(a.units))
    unit = KB.units.units[unit_id]
    out: dict[str, Any] = {} if rid is None else {"id": rid}
    codes = [c.code for c in a.loinc if (c.property == "MCnc") == (unit.kind == "mass_concentration")]
    how = draw(st.sampled_from(["analyte", "analyte", "code", "both"] if codes else ["analyte"]))
    if how in ("analyte", "both"):
        out["analyte"] = _spelling(draw, draw(st.sampled_from((a.id, *a.aliases))))
    if how in ("code", "both"):
        out["code"] = draw(st.sampled_from(codes))
    out["unit"] = _spelling(draw, draw(st.sampled_from((unit.id, unit.ucum, *unit.spellings))))
    _lo, hi = plausible(analyte)
    canonical = draw(st.floats(min_value=0, max_value=hi * 1.5))
    value = canonical / a.factors[unit_id]
    kind = draw(st.sampled_from(["number", "number", "censored", "comparator"]))
    if kind == "number":
        out["value"] = value
    else:
        sign = draw(st.sampled_from(["<", "<=", ">", ">=", "\u2264", "\u2265"] if kind == "censored"
                                    else ["<", "<=", ">", ">="]))
        text = decimal_text(value)
        if kind == "censored":
            out["value"] = sign + text
        else:  # a number with a separate comparator
            out["value"], out["comparator"] = float(text), sign
    lab = draw(lab_ranges(analyte))
    if lab is not None:
        f = a.factors[unit_id]
        rng = {k: v / f for k, v in zip(("low", "high"), lab) if v is not None}
        if draw(st.booleans()):
            rng["unit"] = unit.id
        out["reference_range"] = rng
    return out


def to_core(result: dict[str, Any]) -> ResultInput:
    rng = result.get("reference_range")
    return ResultInput(value=result["value"], unit=result["unit"], analyte=result.get("analyte"),
                       code=result.get("code"), id=result.get("id"), comparator=result.get("comparator"),
                       reference_range=None if rng is None else LabRange(rng.get("low"), rng.get("high"),
                                                                        rng.get("unit")))


ID_TEXT = st.text(st.characters(exclude_categories=("Cc", "Cs", "Zl", "Zp")), min_size=1, max_size=64)
TRICKY_IDS = st.sampled_from(["result-1", "result-2", "result-2-2", "result-3", "a", "A", " ", "0"])


@st.composite
def valid_panels(draw) -> dict[str, Any]:
    """A valid panel as JSON: 1..20 results, each with a unique id or none; random context."""
    n = draw(st.integers(min_value=1, max_value=20))
    ids = draw(st.lists(st.one_of(TRICKY_IDS, ID_TEXT), min_size=n, max_size=n, unique=True))
    given_id = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    results = [draw(valid_results(rid if keep else None)) for rid, keep in zip(ids, given_id)]
    body: dict[str, Any] = {"results": results,
                            "collected_at": draw(st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1),
                                                              timezones=st.just(UTC))).isoformat()}
    collected = datetime.fromisoformat(body["collected_at"])
    if draw(st.booleans()):
        patient: dict[str, Any] = {}
        age = draw(ages())
        if age is not None:
            patient["age_years"] = age
        if draw(st.booleans()):
            patient["sex"] = draw(st.sampled_from(SEXES))
        body["patient"] = patient
    if draw(st.booleans()):
        days = st.floats(min_value=-30, max_value=400)
        ctx: dict[str, Any] = {
            "medications": draw(st.lists(st.sampled_from(MEDICATIONS), unique=True)),
            "symptoms": draw(st.lists(st.sampled_from(SYMPTOMS), unique=True)),
            "conditions": draw(st.lists(st.sampled_from(CONDITIONS), unique=True)),
            "specimen": {"hemolyzed": draw(st.booleans())},
        }
        if draw(st.booleans()):
            ctx["diet"] = draw(st.sampled_from(DIETS))
        if draw(st.booleans()):
            ctx["b12_injection_at"] = (collected - timedelta(days=draw(days))).isoformat()
        if draw(st.booleans()):
            ctx["b12_therapy_started_at"] = (collected - timedelta(days=draw(days))).isoformat()
        body["context"] = ctx
    return body


def core_panel(body: dict[str, Any]) -> PanelInput:
    p, c = body.get("patient", {}), body.get("context", {})
    when = lambda key, d: None if key not in d else datetime.fromisoformat(d[key])  # noqa: E731
    return PanelInput(
        results=tuple(to_core(r) for r in body["results"]),
        patient=Patient(p.get("age_years"), p.get("sex")),
        context=Context(b12_injection_at=when("b12_injection_at", c),
                        b12_therapy_started_at=when("b12_therapy_started_at", c),
                        medications=frozenset(c.get("medications", ())), diet=c.get("diet"),
                        symptoms=frozenset(c.get("symptoms", ())), conditions=frozenset(c.get("conditions", ())),
                        hemolyzed=c.get("specimen", {}).get("hemolyzed", False)),
        collected_at=when("collected_at", body),
    )


def check_results_echo(body: dict[str, Any], ids: list[str], analytes: list[str], values: list[Any],
                       units: list[str]) -> None:
    sent = body["results"]
    assert len(ids) == len(sent)
    assert len(set(ids)) == len(ids), ids
    for i, r in enumerate(sent):
        if "id" in r:
            assert ids[i] == r["id"]
        assert values[i] == r["value"] and units[i] == r["unit"]
        expected = KB.find_analyte(r["analyte"]) if "analyte" in r else KB.by_loinc[r["code"]]
        assert analytes[i] == expected.id


# ---------------------------------------------------------------- c) every result, once, in order

@CORE
@given(body=valid_panels())
def test_every_result_comes_back_once_in_order_with_its_id(body):
    report = interpret_panel(core_panel(body), KB, now=NOW)
    rs = report.results
    check_results_echo(body, [r.id for r in rs], [r.analyte for r in rs], [r.value for r in rs], [r.unit for r in rs])


@HTTP
@given(body=valid_panels())
def test_every_result_comes_back_once_in_order_over_http(app, conform, body):
    with keyed_client(app).post(PATH, json=body) as resp:
        assert resp.status_code == 200, resp.get_data(as_text=True)[:500]
        data = conform("post", PATH, resp)
    rs = data["results"]
    check_results_echo(body, [r["id"] for r in rs], [r["analyte"] for r in rs], [r["value"] for r in rs],
                       [r["unit"] for r in rs])


# ---------------------------------------------------------------- d) determinism

@CORE
@given(body=valid_panels())
def test_interpreting_twice_gives_the_same_answer(body):
    first = interpret_panel(core_panel(body), KB, now=NOW).to_dict()
    second = interpret_panel(core_panel(json.loads(json.dumps(body))), KB,
                             now=NOW + timedelta(days=365)).to_dict()  # collected_at is given: `now` is moot
    assert first == second


@HTTP
@given(body=valid_panels())
def test_interpreting_twice_over_http_gives_the_same_answer(app, body):
    client = keyed_client(app)
    with client.post(PATH, json=body) as one, client.post(PATH, json=body) as two:
        assert one.status_code == two.status_code == 200
        assert one.get_data() == two.get_data()
    # and the core, with the app's knowledge, answers what the API answered
    core = interpret_panel(core_panel(body), service_of(app).knowledge).to_dict()
    assert json.loads(one.get_data()) == json.loads(json.dumps(core))


# ---------------------------------------------------------------- e) censored values

@CORE
@given(data=st.data())
def test_censored_values_stay_on_their_side(data):
    analyte = data.draw(st.sampled_from(ANALYTES), label="analyte")
    lo, hi = plausible(analyte)
    x = float(decimal_text(data.draw(canonical_values(analyte, 0.0, hi * 1.2), label="x")))
    comparator = data.draw(st.sampled_from(["<", "<=", ">", ">="]), label="comparator")
    age = data.draw(ages(), label="age")
    lab = data.draw(lab_ranges(analyte), label="lab range")
    text = decimal_text(x)
    plain, as_string, as_field, lowest, highest = one_panel(
        analyte, [x, comparator + text, float(text), lo, hi], age=age, lab=lab,
        comparators=[None, None, comparator, None, None]).results
    assert as_string.band == as_field.band and as_string.comparator == as_field.comparator == comparator
    band = as_string.band
    if band == "indeterminate":
        assert as_string.flag is None and not as_string.critical
        return
    if as_string.implausible:  # everything it allows is implausible: classified by its bound, alarm and all
        assert band == plain.band or comparator in ("<", ">"), (x, comparator, band, plain.band)
        return
    assert not plain.implausible, (x, comparator, band)
    if comparator in ("<", "<="):
        assert rank(analyte, band) <= rank(analyte, plain.band), (x, comparator, band, plain.band)
        assert band == lowest.band  # every plausible value below x shares it
    else:
        assert rank(analyte, band) >= rank(analyte, plain.band), (x, comparator, band, plain.band)
        assert band == highest.band
    if comparator in ("<=", ">="):
        assert band == plain.band  # x itself is allowed, so its band is the answer


@CORE
@given(x=st.floats(min_value=0, max_value=1e9), sign=st.sampled_from(["<=", ">="]))
def test_unicode_comparators_mean_the_ascii_ones(x, sign):
    from service.core.values import parse_value

    text = decimal_text(x)
    assume(len(text) <= 25)
    uni = {"<=": "\u2264", ">=": "\u2265"}[sign]
    assert parse_value(uni + text, None) == parse_value(sign + text, None) == parse_value(float(text), sign)


# ---------------------------------------------------------------- f) history (issue 15)

AT = datetime(2026, 11, 20, 8, tzinfo=UTC)


@st.composite
def histories(draw, analyte: str) -> list[tuple[float, str, datetime]]:
    """Earlier results of one analyte: (canonical value, the unit sent, when), at distinct moments
    within two years before AT (some beyond the look-back), in no particular order."""
    units = list(KB.analytes[analyte].units)
    hours = draw(st.lists(st.integers(1, 2 * 365 * 24), min_size=0, max_size=25, unique=True))
    return [(draw(canonical_values(analyte)), draw(st.sampled_from(units)), AT - timedelta(hours=h)) for h in hours]


def history_panel(analyte: str, current: float, items: list[tuple[float, str, datetime]],
                  extra: tuple = ()) -> PanelInput:
    from service.core.model import HistoryInput

    a = KB.analytes[analyte]
    history = tuple(HistoryInput(v / a.factors[u], u, t, analyte=analyte) for v, u, t in items) + extra
    return PanelInput(results=(ResultInput(current, a.canonical_unit, analyte=analyte, id="r"),),
                      collected_at=AT, history=history)


def _report(panel: PanelInput) -> dict[str, Any]:
    return interpret_panel(panel, KB).to_dict()["results"][0]


def _draw_history_case(data: Any) -> tuple[str, list[tuple[float, str, datetime]], float, dict[str, Any]]:
    """An analyte, earlier results of it, a current value, and the report of the one result."""
    analyte = data.draw(st.sampled_from(ANALYTES))
    items = data.draw(histories(analyte))
    current = data.draw(canonical_values(analyte))
    return analyte, items, current, _report(history_panel(analyte, current, items))


@CORE
@given(data=st.data())
def test_the_newest_earlier_result_within_the_look_back_is_the_previous_one(data):
    analyte, items, current, got = _draw_history_case(data)
    within = [i for i in items if AT - i[2] <= timedelta(days=KB.history.max_age_days)]
    if not within:
        assert got["delta"] is None and got["trend"] == []
        return
    value, _, when = max(within, key=lambda i: i[2])
    d = got["delta"]
    assert math.isclose(d["previous"]["value"], value, rel_tol=1e-5, abs_tol=1e-9)
    assert d["previous"]["collected_at"] == when.isoformat() and d["previous"]["unit"] == KB.analytes[analyte].canonical_unit
    assert math.isclose(d["change"], current - value, rel_tol=1e-4, abs_tol=1e-6)
    assert math.isclose(d["hours"], (AT - when).total_seconds() / 3600, rel_tol=1e-6)
    trend = got["trend"]
    assert len(trend) == min(len(within) + 1, KB.history.trend_points)
    assert [p["collected_at"] for p in trend] == sorted(p["collected_at"] for p in trend)  # oldest first
    assert trend[-1]["collected_at"] == AT.isoformat()
    if d["significant"]:
        assert d["rule"] is not None and d["source"] is not None


@CORE
@given(data=st.data())
def test_order_duplicates_units_and_other_analytes_do_not_change_the_answer(data):
    analyte, items, current, plain = _draw_history_case(data)
    shuffled = data.draw(st.permutations(items))
    repeated = shuffled + data.draw(st.lists(st.sampled_from(items), max_size=5)) if items else shuffled
    other = data.draw(st.sampled_from([a for a in ANALYTES if a != analyte]))
    from service.core.model import HistoryInput

    others = tuple(HistoryInput(v, u, t, analyte=other) for v, u, t in data.draw(histories(other)))
    for variant in (history_panel(analyte, current, list(repeated)), history_panel(analyte, current, items, others)):
        assert _report(variant) == plain
    in_canonical = [(v, KB.analytes[analyte].canonical_unit, t) for v, _, t in items]
    again = _report(history_panel(analyte, current, in_canonical))
    assert (again["delta"] is None) == (plain["delta"] is None)
    if plain["delta"] is not None:
        assert math.isclose(again["delta"]["change"], plain["delta"]["change"], rel_tol=1e-4, abs_tol=1e-5)


@CORE
@given(data=st.data())
def test_history_never_changes_the_band_flag_or_critical_alarm(data):
    """History adds a delta and notes; it never changes how the value itself is classified."""
    analyte = data.draw(st.sampled_from(ANALYTES))
    current = data.draw(canonical_values(analyte))
    alone = _report(history_panel(analyte, current, []))
    with_history = _report(history_panel(analyte, current, data.draw(histories(analyte))))
    for key in ("band", "flag", "critical", "implausible", "normalized", "reference_range"):
        assert with_history[key] == alone[key], key
    alone_notes = {n["id"] for n in alone["notes"]}
    assert alone_notes <= {n["id"] for n in with_history["notes"]}

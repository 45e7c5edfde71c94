"""Units: conversion factors against published figures, the spelling allowlist, and the pint boundary.

Factors are checked against figures published independently of our data (the conversion tables
cited in reference_ranges/sources.yaml and the worked examples of shared/reference/clinical.md,
section 5), so a wrong molar mass or valence in an analyte file fails here.
"""
from __future__ import annotations

import math

import pytest

from service.core import InputError, KnowledgeError, LabRange, load_knowledge
from service.core import units as units_mod
from service.core.units import Unit, derive_factors

try:
    import core_helpers as h
except ImportError:  # pragma: no cover - if tests/ becomes a package
    from tests import core_helpers as h


def factor(analyte: str, from_unit: str, to_unit: str) -> float:
    """value in from_unit x factor = value in to_unit, from the factors derived at load."""
    f = h.kb().analytes[analyte].factors
    return f[from_unit] / f[to_unit]


# ------------------------------------------------------------------ published factors

# (analyte, from, to, published factor, absolute tolerance: half a unit in the last published digit,
#  one unit where the source truncates rather than rounds)
PUBLISHED = [
    ("vitamin_b12", "pg/mL", "pmol/L", 0.7378, 0.00005),   # Davis's [S31], clinical.md s5
    ("calcium", "mg/dL", "mmol/L", 0.2495, 0.00005),       # csmu, elephantcare [S73][S74]
    ("ionized_calcium", "mg/dL", "mmol/L", 0.2495, 0.00005),
    ("magnesium", "mg/dL", "mmol/L", 0.4114, 0.00005),     # Davis's, elephantcare [S31b][S74]
    ("magnesium", "mg/dL", "mEq/L", 0.8228, 0.0001),       # medicalalgorithms [S76], printed truncated
    ("potassium", "mEq/L", "mmol/L", 1.0, 1e-12),          # valence 1: mEq = mmol x 1 [S78]
    ("potassium", "mmol/L", "mEq/L", 1.0, 1e-12),
    ("potassium", "mg/dL", "mmol/L", 10 / 39.098, 1e-9),    # mmol = mg / formula weight [S78], MW [S15]
    ("calcium", "mmol/L", "mEq/L", 2.0, 1e-12),            # valence 2: mEq/L = 2 x mmol/L [S78]
    ("magnesium", "mmol/L", "mEq/L", 2.0, 1e-12),
    ("ionized_calcium", "mmol/L", "mEq/L", 2.0, 1e-12),
    ("ionized_calcium", "mEq/L", "mmol/L", 0.5, 1e-12),    # "Calcium ion mEq/L x 0.5 = mmol/L" [S73]
    ("calcium", "mEq/L", "mmol/L", 0.5, 1e-12),
    ("albumin", "g/L", "g/dL", 0.1, 1e-12),                # g/dL x 10 = g/L [S73][S74]
    ("albumin", "g/dL", "g/L", 10.0, 1e-12),
    ("vitamin_b12", "ng/L", "pg/mL", 1.0, 1e-12),          # ng/L is numerically pg/mL [S24][S26]
    ("calcium", "mg/L", "mg/dL", 0.1, 1e-12),              # unit arithmetic
    ("magnesium", "mg/L", "mg/dL", 0.1, 1e-12),
]


@pytest.mark.parametrize("analyte, src, dst, published, tol", PUBLISHED,
                         ids=[f"{a}:{s}->{d}" for a, s, d, *_ in PUBLISHED])
def test_factor_matches_published_figure(analyte, src, dst, published, tol):
    got = factor(analyte, src, dst)
    assert math.isclose(got, published, rel_tol=0, abs_tol=tol), (got, published)


def test_b12_pmol_factor_is_reciprocal_of_0_7378():
    # pg/mL x 0.7378 = pmol/L, so 1 pmol/L = 1/0.7378 pg/mL (Davis's [S31]).
    got = h.kb().analytes["vitamin_b12"].factors["pmol/L"]
    assert math.isclose(got, 1 / 0.7378, rel_tol=1e-4), got


@pytest.mark.parametrize("analyte", h.analyte_ids())
def test_canonical_unit_factor_is_one_and_every_factor_positive(analyte):
    a = h.kb().analytes[analyte]
    assert a.factors[a.canonical_unit] == pytest.approx(1.0, rel=1e-15)
    assert set(a.factors) == set(h.raw_analyte(analyte)["units"])
    for unit, f in a.factors.items():
        assert math.isfinite(f) and f > 0, (unit, f)


# Worked examples, clinical.md section 5: (analyte, conventional value, unit, SI text, SI unit).
# The SI figure is printed rounded, so the tolerance is half a unit in its last printed digit.
WORKED = [
    ("vitamin_b12", 200, "pg/mL", "147.6", "pmol/L"),
    ("vitamin_b12", 300, "pg/mL", "221.3", "pmol/L"),
    ("vitamin_b12", 900, "pg/mL", "664.0", "pmol/L"),
    ("vitamin_b12", 1000, "pg/mL", "737.8", "pmol/L"),
    ("vitamin_b12", 1084, "pg/mL", "800", "pmol/L"),
    ("vitamin_b12", 1355, "pg/mL", "1000", "pmol/L"),
    ("calcium", 8.6, "mg/dL", "2.146", "mmol/L"),
    ("calcium", 10.2, "mg/dL", "2.545", "mmol/L"),
    ("calcium", 12.0, "mg/dL", "2.994", "mmol/L"),
    ("magnesium", 1.7, "mg/dL", "0.699", "mmol/L"),
    ("magnesium", 1.7, "mg/dL", "1.40", "mEq/L"),
    ("magnesium", 2.4, "mg/dL", "0.987", "mmol/L"),
    ("magnesium", 5.0, "mg/dL", "2.057", "mmol/L"),
]


def _half_ulp(text: str) -> float:
    decimals = len(text.split(".")[1]) if "." in text else 0
    return 0.5 * 10 ** -decimals


@pytest.mark.parametrize("analyte, conv, conv_unit, si_text, si_unit", WORKED,
                         ids=[f"{a}-{c}{u}={s}{su}" for a, c, u, s, su in WORKED])
def test_worked_example_converts_within_rounding(analyte, conv, conv_unit, si_text, si_unit):
    si = float(si_text)
    tol = _half_ulp(si_text)
    assert abs(conv * factor(analyte, conv_unit, si_unit) - si) <= tol
    # and end to end: the SI value sent to the service normalizes to the conventional value
    r = h.one(analyte, si, si_unit)
    assert r.canonical_unit == conv_unit
    assert abs(r.normalized_value - conv) <= tol * factor(analyte, si_unit, conv_unit) + 1e-9


@pytest.mark.parametrize("low_text, high_text", [("147.6", "664.0")])
def test_default_b12_range_reported_in_pmol_matches_published_si_limits(low_text, high_text):
    # 200-900 pg/mL is 147.6-664.0 pmol/L (clinical.md s5): the range is echoed in the caller's unit.
    raw = h.raw_analyte("vitamin_b12")["reference_interval"]
    r = h.one("vitamin_b12", 500, "pmol/L")
    rr = r.reference_range.to_dict()
    assert rr["unit"] == "pmol/L"
    assert rr["canonical"] == {"low": raw["low"], "high": raw["high"], "unit": "pg/mL"}
    assert abs(rr["low"] - float(low_text)) <= _half_ulp(low_text)
    assert abs(rr["high"] - float(high_text)) <= _half_ulp(high_text)


# ------------------------------------------------------------------ spellings

ACCEPTED_SPELLINGS = [
    ("mg/dL", "mg/dL"), ("mg/dl", "mg/dL"), ("MG/DL", "mg/dL"), ("Mg/Dl", "mg/dL"), ("mg/100mL", "mg/dL"),
    ("mEq/L", "mEq/L"), ("meq/L", "mEq/L"), ("mEq/l", "mEq/L"), ("MEQ/L", "mEq/L"),
    ("pg/mL", "pg/mL"), ("pg/ml", "pg/mL"), ("PG/ML", "pg/mL"),
    ("pmol/L", "pmol/L"), ("PMOL/L", "pmol/L"), ("pmol/l", "pmol/L"),
    ("mmol/L", "mmol/L"), ("mmol / L", "mmol/L"), (" mmol/L ", "mmol/L"), ("MMOL/L", "mmol/L"),
    ("ng/l", "ng/L"), ("g/dl", "g/dL"), ("G/L", "g/L"), ("mg/l", "mg/L"),
]


@pytest.mark.parametrize("text, unit_id", ACCEPTED_SPELLINGS, ids=[t for t, _ in ACCEPTED_SPELLINGS])
def test_case_and_space_variants_are_accepted(text, unit_id):
    unit = h.kb().units.lookup(text)
    assert unit is not None and unit.id == unit_id


def _yaml_spellings():
    for u in h.load_yaml("units.yaml")["units"]:
        for s in {u["id"], u["ucum"], *u.get("spellings", [])}:
            yield u["id"], s


@pytest.mark.parametrize("unit_id, spelling", list(_yaml_spellings()))
def test_every_listed_spelling_resolves_in_any_case(unit_id, spelling):
    for variant in (spelling, spelling.upper(), spelling.lower(), f" {spelling} "):
        unit = h.kb().units.lookup(variant)
        assert unit is not None and unit.id == unit_id, variant


UNKNOWN_UNITS = [
    "mg/dL**999999999", "(" * 10000, "x" * 100_000, "", " ", "furlong", "mg/dL; DROP", "mg/dL; DROP TABLE x",
    "ng/mL", "mol/L", "mg", "kg/m**3", "g/mol", "meter", "mg/dL/dL", "1", "mg/dL*2", "__import__('os')",
    "mmol/L\x00", "mg / dL / 0",
]


@pytest.mark.parametrize("text", UNKNOWN_UNITS, ids=[repr(t[:20]) + f"[{len(t)}]" for t in UNKNOWN_UNITS])
def test_unknown_unit_strings_are_not_found(text):
    assert h.kb().units.lookup(text) is None


@pytest.mark.parametrize("text", UNKNOWN_UNITS, ids=[repr(t[:20]) + f"[{len(t)}]" for t in UNKNOWN_UNITS])
def test_unknown_unit_is_an_input_error_at_the_unit(text):
    with pytest.raises(InputError) as ei:
        h.run(h.panel(h.R("potassium", 4.0), h.R("calcium", 9.0, text)))
    assert h.pointers(ei.value) == ["/results/1/unit"]


@pytest.mark.parametrize("analyte, unit", [
    ("potassium", "pg/mL"), ("vitamin_b12", "mmol/L"), ("vitamin_b12", "mg/dL"), ("albumin", "mmol/L"),
    ("albumin", "mEq/L"), ("calcium", "g/dL"),
])
def test_known_unit_not_accepted_for_analyte(analyte, unit):
    assert unit not in h.raw_analyte(analyte)["units"]  # the premise, from the data
    with pytest.raises(InputError) as ei:
        h.run(h.panel(h.R(analyte, 1.0, unit)))
    assert h.pointers(ei.value) == ["/results/0/unit"]


# ------------------------------------------------------------------ no request string reaches pint

PINT_ENTRY_POINTS = ("parse_units", "parse_expression", "parse_unit_name", "Quantity", "Unit",
                     "get_dimensionality")

MANY_UNITS = [
    ("vitamin_b12", 300, "pmol/L"), ("vitamin_b12", 400, "ng/L"), ("vitamin_b12", 400, "PG/ML"),
    ("potassium", 3.4, "mEq/L"), ("potassium", 16, "mg/dL"), ("calcium", 2.2, "mmol/L"),
    ("calcium", 4.5, "meq/l"), ("calcium", 92, "mg/L"), ("ionized_calcium", 4.8, "mg/dL"),
    ("magnesium", 1.6, "mEq/L"), ("magnesium", 0.8, "mmol / L"), ("albumin", 38, "g/L"),
]


@pytest.fixture
def sealed_pint(monkeypatch):
    """Make every pint parse/construct entry point of the registry raise, and record any call."""
    h.kb()  # knowledge (and its factors) is loaded before sealing
    ureg = units_mod.registry()
    calls: list[tuple[str, tuple]] = []

    def refuse(name):
        def f(*args, **kwargs):
            calls.append((name, args))
            raise AssertionError(f"pint {name} reached with {args!r}")
        return f

    for name in PINT_ENTRY_POINTS:
        monkeypatch.setattr(ureg, name, refuse(name))
    return calls


def test_sealing_is_effective(sealed_pint):
    ureg = units_mod.registry()
    with pytest.raises(AssertionError):
        ureg.parse_units("mg/dL")
    with pytest.raises(AssertionError):
        ureg.Quantity(1, "mg/dL")
    assert [name for name, _ in sealed_pint] == ["parse_units", "Quantity"]


def test_interpretation_never_calls_pint(sealed_pint):
    results = [h.R(a, v, u) for a, v, u in MANY_UNITS]
    results.append(h.R("potassium", 3.4, "mmol/L", reference_range=LabRange(low=3.3, high=5.0, unit="mEq/L")))
    report = h.run(h.panel(*results, age=40))
    assert len(report.results) == len(results)
    for r, (a, v, u) in zip(report.results, MANY_UNITS):
        assert r.normalized_value == pytest.approx(v * h.kb().analytes[a].factors[h.kb().units.lookup(u).id])
    assert sealed_pint == []


@pytest.mark.parametrize("text", ["furlong", "mg/dL**999999999", "(" * 10000, "kg/m**3", "ng/mL"],
                         ids=["furlong", "power", "parens", "pint-valid", "ng/mL"])
def test_unknown_units_never_reach_pint(sealed_pint, text):
    with pytest.raises(InputError) as ei:
        h.run(h.panel(h.R("potassium", 4.0, text)))
    assert h.pointers(ei.value) == ["/results/0/unit"]
    with pytest.raises(InputError) as ei:
        h.run(h.panel(h.R("potassium", 4.0, reference_range=LabRange(low=3, high=5, unit=text))))
    assert h.pointers(ei.value) == ["/results/0/reference_range/unit"]
    assert sealed_pint == []


def test_interpretation_does_not_even_fetch_the_registry(monkeypatch):
    h.kb()

    def no_registry():
        raise AssertionError("the pint registry was requested while interpreting")

    monkeypatch.setattr(units_mod, "registry", no_registry)
    report = h.run(h.panel(*[h.R(a, v, u) for a, v, u in MANY_UNITS]))
    assert len(report.results) == len(MANY_UNITS)


# ------------------------------------------------------------------ derive_factors at load

def _u(uid: str, expr: str, kind: str) -> Unit:
    return Unit(uid, expr, uid, kind, ())


def test_derive_factors_refuses_equivalent_unit_without_valence():
    units = {"mmol/L": _u("mmol/L", "millimole / liter", "substance_concentration"),
             "mEq/L": _u("mEq/L", "milliequivalent / liter", "equivalent_concentration")}
    with pytest.raises(ValueError, match="valence"):
        derive_factors(units, "mmol/L", molar_mass=None, valence=None)
    # the same units with a valence are fine: 1 mEq/L = 1/z mmol/L
    assert derive_factors(units, "mmol/L", None, 2)["mEq/L"] == pytest.approx(0.5)


def test_loading_an_analyte_with_mEq_but_no_valence_fails(tmp_path):
    d = h.copy_ranges(tmp_path)
    h.edit_yaml(d, "magnesium.yaml", lambda a: a.__setitem__("valence", None))
    with pytest.raises(KnowledgeError) as ei:
        load_knowledge(d)
    msg = str(ei.value)
    assert "magnesium.yaml" in msg and "units" in msg and "valence" in msg


@pytest.mark.parametrize("src, dst", [("degC", "kelvin"), ("degF", "degC"), ("kelvin", "degC")])
def test_derive_factors_refuses_a_non_linear_conversion(src, dst):
    # An offset conversion is not value x factor; verification converts 1 and 1000 and compares.
    units = {"a": _u("a", src, "mass_concentration"), "b": _u("b", dst, "mass_concentration")}
    with pytest.raises(ValueError, match="linear"):
        derive_factors(units, "b", None, None)


def test_derive_factors_accepts_a_linear_conversion():
    units = {"a": _u("a", "milligram / deciliter", "mass_concentration"),
             "b": _u("b", "gram / liter", "mass_concentration")}
    assert derive_factors(units, "b", None, None) == {"a": pytest.approx(0.01), "b": pytest.approx(1.0)}


def test_derive_factors_refuses_molar_unit_without_molar_mass():
    units = {"g/dL": _u("g/dL", "gram / deciliter", "mass_concentration"),
             "mmol/L": _u("mmol/L", "millimole / liter", "substance_concentration")}
    with pytest.raises(ValueError, match="mmol/L"):
        derive_factors(units, "g/dL", molar_mass=None, valence=None)


def test_identities_are_an_immutable_index_of_clean_spellings_built_at_load():
    """How exact (analyte, code, unit) spellings resolve is computed once at load; requests never
    add to it, a bad spelling is reported every time, and other spellings resolve the same way."""
    from types import MappingProxyType

    from service.core import InputError, PanelInput, ResultInput, interpret_panel
    from service.core.identify import identify
    from service.core.knowledge import load_knowledge

    kb = load_knowledge()
    assert isinstance(kb.identities, MappingProxyType)
    assert ("potassium", None, "mmol/L") in kb.identities and ("k", "2823-3", "meq/L") in kb.identities
    assert all(not found.problems for found in kb.identities.values())
    before = dict(kb.identities)
    bad = ResultInput(value=4.0, unit="furlongs", analyte="potassium")
    for _ in range(2):
        with pytest.raises(InputError) as err:
            interpret_panel(PanelInput((bad,)), kb)
        assert [p.path for p in err.value.problems] == [("results", 0, "unit")]
    odd = ResultInput(value=4.0, unit=" MMOL/l ", analyte="Potassium ")
    assert interpret_panel(PanelInput((odd,)), kb).results[0].band == "normal"
    assert dict(kb.identities) == before  # requests changed nothing
    for key, found in list(kb.identities.items())[:50]:  # the index says what resolving says
        object.__setattr__(kb, "identities", MappingProxyType({}))
        assert identify(*key, kb) == found
        object.__setattr__(kb, "identities", MappingProxyType(before))

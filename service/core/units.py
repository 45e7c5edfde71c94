"""Unit allowlist and conversion factors.

pint derives each (analyte, unit) factor once, when the knowledge is loaded; requests only look a
spelling up in a dict and multiply. A unit string from a request never reaches pint: only the
`pint` expressions of the allowlist in `units.yaml` do.
"""
from __future__ import annotations

import math
import threading
import unicodedata
from dataclasses import dataclass
from typing import Any, cast
from collections.abc import Iterable, Mapping

MAX_UNIT_LENGTH = 32  # longer strings are not looked up at all

_registry: Any = None
_registry_lock = threading.Lock()


@dataclass(frozen=True)
class Unit:
    id: str
    pint: str
    ucum: str
    kind: str  # mass_concentration | substance_concentration | equivalent_concentration
    spellings: tuple[str, ...]


def unit_key(text: str) -> str:
    """Fold a unit spelling for lookup: case, spaces and the micro sign do not matter."""
    text = unicodedata.normalize("NFKC", text)
    return "".join(text.split()).casefold().replace("µ", "u").replace("μ", "u")


class UnitCatalogue:
    """Looks unit spellings up in the allowlist; nothing else is accepted."""

    def __init__(self, units: Iterable[Unit]):
        self.units: dict[str, Unit] = {}
        self._by_key: dict[str, Unit] = {}
        self._as_written: dict[str, Unit] = {}
        for unit in units:
            self.units[unit.id] = unit
            for spelling in (unit.id, unit.ucum, *unit.spellings):
                key = unit_key(spelling)
                other = self._by_key.get(key)
                if other is not None and other.id != unit.id:
                    raise ValueError(f"spelling {spelling!r} is claimed by both {other.id} and {unit.id}")
                self._by_key[key] = unit
                self._as_written[spelling] = unit

    def lookup(self, text: str) -> Unit | None:
        exact = self._as_written.get(text)  # the common case, without folding
        if exact is not None:
            return exact
        if len(text) > MAX_UNIT_LENGTH:
            return None
        return self._by_key.get(unit_key(text))


def registry() -> Any:
    """The process's one pint registry, with milliequivalents and a valence context added."""
    global _registry
    with _registry_lock:
        if _registry is None:
            import pint

            ureg: Any = pint.UnitRegistry()
            # UCUM treats eq as mol and does not endorse equivalents; clinically 1 mEq = 1 mmol x valence.
            ureg.define("equivalent = [charge_equivalent] = eq")
            ctx = pint.Context("valence", defaults={"z": 1})

            def to_eq(ureg: Any, x: Any, z: float = 1, **_: Any) -> Any:
                return x * z * ureg.equivalent / ureg.mole

            def from_eq(ureg: Any, x: Any, z: float = 1, **_: Any) -> Any:
                return x / z * ureg.mole / ureg.equivalent

            for suffix in ("", "/[length]**3"):
                ctx.add_transformation("[substance]" + suffix, "[charge_equivalent]" + suffix, cast(Any, to_eq))
                ctx.add_transformation("[charge_equivalent]" + suffix, "[substance]" + suffix, cast(Any, from_eq))
            ureg.add_context(ctx)
            _registry = ureg
        return _registry


# The LOINC property a unit kind reports: mass concentration (MCnc) or substance concentration (SCnc),
# of which equivalents are a kind (mEq = mmol x valence). The one statement of this rule.
LOINC_PROPERTY_OF_KIND = {"mass_concentration": "MCnc", "substance_concentration": "SCnc",
                          "equivalent_concentration": "SCnc"}


def property_of_kind(kind: str) -> str:
    return LOINC_PROPERTY_OF_KIND[kind]


_KIND_DIMENSIONS = {
    "mass_concentration": "[mass] / [length] ** 3",
    "substance_concentration": "[substance] / [length] ** 3",
    "equivalent_concentration": "[charge_equivalent] / [length] ** 3",
}


def check_kind(unit: Unit) -> None:
    """Raise ValueError when pint's reading of the unit does not match its declared kind."""
    ureg = registry()
    expected = ureg.get_dimensionality(_KIND_DIMENSIONS[unit.kind])
    actual = ureg.Quantity(1, unit.pint).dimensionality
    if actual != expected:
        raise ValueError(f"pint reads {unit.pint!r} as {actual}, not a {unit.kind}")


def _context_args(molar_mass: float | None, valence: float | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"z": valence or 1}
    if molar_mass is not None:
        kwargs["mw"] = registry().Quantity(molar_mass, "g/mol")
    return kwargs


def convert_with_pint(value: float, source: Unit, target: Unit, molar_mass: float | None,
                      valence: float | None) -> float:
    """One conversion by pint itself, with the analyte's contexts (start-up checks only: slow)."""
    q = registry().Quantity(value, source.pint)
    return float(q.to(target.pint, "chemistry", "valence", **_context_args(molar_mass, valence)).magnitude)


def derive_factors(
    units: Mapping[str, Unit], canonical: str, molar_mass: float | None, valence: float | None
) -> dict[str, float]:
    """Factor per unit id so that value_in_unit * factor = value in the canonical unit.

    Raises ValueError naming the unit when pint cannot convert it (e.g. a molar unit for an analyte
    without a molar mass) or when the conversion is not a pure factor.
    """
    ureg = registry()
    kwargs = _context_args(molar_mass, valence)
    target = ureg.Unit(units[canonical].pint)
    factors: dict[str, float] = {}
    for unit_id, unit in units.items():
        if unit.kind == "equivalent_concentration" and not valence:
            raise ValueError(f"{unit_id}: an equivalent unit needs the analyte's valence")
        source = ureg.Unit(unit.pint)
        try:
            one = ureg.Quantity(1.0, source).to(target, "chemistry", "valence", **kwargs).magnitude
            big = ureg.Quantity(1000.0, source).to(target, "chemistry", "valence", **kwargs).magnitude
        except Exception as exc:  # pint's DimensionalityError and friends
            raise ValueError(f"{unit_id}: cannot convert to {canonical}: {exc}") from None
        if not (math.isfinite(one) and one > 0 and math.isclose(big, one * 1000.0, rel_tol=1e-12)):
            raise ValueError(f"{unit_id}: conversion to {canonical} is not a positive linear factor")
        factors[unit_id] = float(one)
    return factors

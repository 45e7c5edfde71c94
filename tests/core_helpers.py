"""Shared helpers for the domain-core tests (tests/test_units.py, test_classify.py, ...).

Expectations are derived from the YAML files in reference_ranges/ (read here with yaml.safe_load,
independently of service.core) and from the semantics written in reference_ranges/README.md, so the
tests follow the data rather than the code.
"""
from __future__ import annotations

import functools
import shutil
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any
from collections.abc import Callable

import yaml

from service.core.knowledge import RESERVED_FILES
from service.core import (
    Context, InputError, LabRange, PanelInput, Patient, ResultInput, interpret_panel, load_knowledge,
)

ROOT = Path(__file__).resolve().parents[1]
RANGES = ROOT / "reference_ranges"
SEEDS_DIR = Path(__file__).resolve().parents[2] / "shared" / "seeds"
RESERVED = RESERVED_FILES  # the files of a folder that are not analytes, as the service says

# A fixed, timezone-aware collection time so that date rules never depend on the clock.
NOW = datetime(2026, 3, 15, 9, 30, tzinfo=UTC)

REGION_FLAGS = {"below": "L", "within": "N", "above": "H"}


# ------------------------------------------------------------------ the data, read independently

def load_yaml(name: str, directory: Path = RANGES) -> Any:
    return yaml.safe_load((directory / name).read_text(encoding="utf-8"))


def analyte_ids(directory: Path = RANGES) -> list[str]:
    return sorted(p.stem for p in directory.glob("*.yaml") if p.name not in RESERVED)


@functools.cache
def raw_analyte(analyte: str) -> dict[str, Any]:
    return load_yaml(f"{analyte}.yaml")


@functools.cache
def raw_notes() -> list[dict[str, Any]]:
    return load_yaml("notes.yaml")["notes"]


@functools.cache
def raw_sources() -> dict[str, dict[str, Any]]:
    return load_yaml("sources.yaml")["sources"]


@functools.cache
def raw_knowledge() -> dict[str, Any]:
    return load_yaml("knowledge.yaml")


@functools.lru_cache(maxsize=1)
def kb():
    """The bundled knowledge, loaded from an explicit path (LABINTERP_RANGES_DIR is not consulted)."""
    return load_knowledge(RANGES)


# ------------------------------------------------------------------ README semantics, re-stated

def limits_for(raw: dict[str, Any], age: float | None = None, sex: str | None = None):
    """(reference interval, critical limits, origin) for a patient, per README 'partitions'."""
    for part in raw.get("partitions") or []:
        if part.get("age_min") is not None and (age is None or age < part["age_min"]):
            continue
        if part.get("age_max") is not None and (age is None or age >= part["age_max"]):
            continue
        if part.get("sex") is not None and sex != part["sex"]:
            continue
        return part["reference_interval"], part.get("critical") or raw.get("critical"), "partition"
    return raw["reference_interval"], raw.get("critical"), "default"


def beyond_low(v: float, lim: dict[str, Any]) -> bool:
    """README: a value equal to a limit is beyond it only when the limit says `low_inclusive: true`."""
    return lim.get("low") is not None and (v < lim["low"] or (v == lim["low"] and lim.get("low_inclusive", False)))


def beyond_high(v: float, lim: dict[str, Any]) -> bool:
    return lim.get("high") is not None and (v > lim["high"] or (v == lim["high"] and lim.get("high_inclusive", False)))


def implausible(raw: dict[str, Any], v: float) -> bool:
    return beyond_low(v, raw["implausible"]) or beyond_high(v, raw["implausible"])


def expected_class(raw: dict[str, Any], v: float, age: float | None = None,
                   ri: dict[str, Any] | None = None) -> tuple[str, str | None, bool]:
    """(band, flag, critical) of a canonical value, straight from README 'boundary semantics': a
    critical limit always raises the alarm; an implausible value is its own band only where no
    critical limit applies."""
    default_ri, crit, _ = limits_for(raw, age)
    ri = ri or default_ri
    bands = raw["bands"]
    if crit:
        if beyond_low(v, crit):
            return bands["critical_below"], "LL", True
        if beyond_high(v, crit):
            return bands["critical_above"], "HH", True
    if implausible(raw, v):
        return "implausible", None, False
    if v < ri["low"]:  # reference interval inclusive at both ends
        region = "below"
    elif v > ri["high"]:
        region = "above"
    else:
        region = "within"
    band = bands[region]
    for sub in bands.get("subdivisions") or []:
        if sub["region"] != region:
            continue
        if "upper" in sub and (v < sub["upper"] or (sub.get("upper_inclusive", False) and v == sub["upper"])):
            band = sub["band"]
        if "lower" in sub and (v > sub["lower"] or (sub.get("lower_inclusive", True) and v == sub["lower"])):
            band = sub["band"]
    return band, REGION_FLAGS[region], False


def value_in(analyte: str, band: str) -> float:
    """A canonical value well inside `band` for a patient with no age given, from the YAML limits."""
    raw = raw_analyte(analyte)
    ri, crit, impl = raw["reference_interval"], raw.get("critical") or {}, raw["implausible"]
    b = raw["bands"]
    edges: dict[str, tuple[float, float]] = {}
    lo_floor = crit.get("low") if crit.get("low") is not None else impl["low"]
    hi_ceiling = crit.get("high") if crit.get("high") is not None else impl["high"]
    edges[b["below"]] = (lo_floor, ri["low"])
    edges[b["within"]] = (ri["low"], ri["high"])
    edges[b["above"]] = (ri["high"], hi_ceiling)
    if b.get("critical_below"):
        edges[b["critical_below"]] = (impl["low"], crit["low"])
    if b.get("critical_above"):
        edges[b["critical_above"]] = (crit["high"], impl["high"])
    for sub in b.get("subdivisions") or []:
        lo, hi = edges[b[sub["region"]]]
        if "upper" in sub:
            edges[sub["band"]] = (lo, sub["upper"])
            edges[b[sub["region"]]] = (sub["upper"], hi)
        else:
            edges[sub["band"]] = (sub["lower"], hi)
            edges[b[sub["region"]]] = (lo, sub["lower"])
    if band == "implausible":  # only analytes without a high critical limit have this band
        return impl["high"] * 2
    lo, hi = edges[band]
    return round((lo + hi) / 2, 6)


def canonical_unit(analyte: str) -> str:
    return raw_analyte(analyte)["canonical_unit"]


def fmt(x: float) -> str:
    """A number as plain decimal text, as a censored value string accepts it ("5.1", "1000")."""
    text = f"{x:.9f}".rstrip("0").rstrip(".")
    return text or "0"


# ------------------------------------------------------------------ building panels

def R(analyte: str, value: Any, unit: str | None = None, **kw: Any) -> ResultInput:
    return ResultInput(value=value, unit=canonical_unit(analyte) if unit is None else unit, analyte=analyte, **kw)


def at(analyte: str, band: str, **kw: Any) -> ResultInput:
    """A result of `analyte` in `band` (canonical unit), value taken from the YAML limits."""
    return R(analyte, value_in(analyte, band), **kw)


def panel(*results: ResultInput, age: float | None = None, sex: str | None = None,
          injection_days: float | None = None, therapy_days: float | None = None,
          meds: tuple[str, ...] = (), diet: str | None = None, symptoms: tuple[str, ...] = (),
          conditions: tuple[str, ...] = (), hemolyzed: bool = False,
          collected_at: datetime | None = NOW) -> PanelInput:
    base = collected_at or NOW
    ctx = Context(
        b12_injection_at=None if injection_days is None else base - timedelta(days=injection_days),
        b12_therapy_started_at=None if therapy_days is None else base - timedelta(days=therapy_days),
        medications=frozenset(meds), diet=diet, symptoms=frozenset(symptoms),
        conditions=frozenset(conditions), hemolyzed=hemolyzed,
    )
    return PanelInput(results=tuple(results), patient=Patient(age_years=age, sex=sex), context=ctx,
                      collected_at=collected_at)


def run(p: PanelInput, knowledge=None):
    return interpret_panel(p, knowledge or kb(), now=NOW)


def one(analyte: str, value: Any, unit: str | None = None, *, age: float | None = None,
        reference_range: LabRange | None = None, comparator: str | None = None, knowledge=None):
    """Interpret a single result and return its ResultReport."""
    p = panel(R(analyte, value, unit, comparator=comparator, reference_range=reference_range), age=age)
    return run(p, knowledge).results[0]


def pointers(exc: InputError) -> list[str]:
    return [p.pointer() for p in exc.problems]


def note_ids(report) -> dict[str, list[str]]:
    """note id -> where it was attached: analyte ids for result notes, 'panel' for panel notes."""
    out: dict[str, list[str]] = {}
    for r in report.results:
        for n in r.notes:
            out.setdefault(n.id, []).append(r.analyte)
    for n in report.notes:
        out.setdefault(n.id, []).append("panel")
    return out


def all_notes(report):
    return [n for r in report.results for n in r.notes] + list(report.notes)


# ------------------------------------------------------------------ knowledge-folder copies

def copy_ranges(tmp_path: Path, name: str = "ranges") -> Path:
    dest = tmp_path / name
    shutil.copytree(RANGES, dest)
    return dest


def edit_yaml(directory: Path, name: str, change: Callable[[Any], Any]) -> None:
    """Load a YAML file of a copied folder, let `change` mutate it in place, write it back."""
    path = directory / name
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)  # any return value is ignored
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")

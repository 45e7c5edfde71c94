"""Loads and validates the knowledge folder (reference_ranges/) into immutable domain objects.

Validation happens once, at start-up: structure with marshmallow, then cross-file references,
then pint derives and checks every conversion factor. Any failure raises KnowledgeError naming the
file and the field, so a bad lab-supplied folder stops the service instead of misclassifying.
"""
from __future__ import annotations

import functools
import os
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml
from marshmallow import Schema, ValidationError

from . import knowledge_schema as ks
from .errors import KnowledgeError, flatten_messages
from .report import Note
from .medications import MedicationCatalogue, MedicationsFileSchema, build_catalogue
from .rules import Predicate, RuleError, bands_needed, compile_condition
from .units import Unit, UnitCatalogue, check_kind, derive_factors

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "reference_ranges"
RESERVED_FILES = {"knowledge.yaml", "sources.yaml", "units.yaml", "notes.yaml", "medications.yaml"}
DERIVED_VALUES = ("albumin_adjusted_calcium",)


@dataclass(frozen=True)
class Source:
    tag: str
    citation: str
    url: str | None

    @property
    def reference(self) -> str:
        """What a response cites: the URL when there is one, else the citation."""
        return self.url or self.citation


@dataclass(frozen=True)
class Limits:
    low: float | None
    high: float | None
    low_source: str | None
    high_source: str | None


@dataclass(frozen=True)
class Subdivision:
    band: str
    region: str  # below | within | above
    upper: float | None
    upper_inclusive: bool
    lower: float | None
    lower_inclusive: bool
    source: str


@dataclass(frozen=True)
class Bands:
    below: str
    within: str
    above: str
    critical_below: str | None
    critical_above: str | None
    subdivisions: tuple[Subdivision, ...]

    def order(self) -> tuple[str, ...]:
        """Bands from lowest to highest value (implausible and indeterminate excluded)."""
        out: list[str] = [self.critical_below] if self.critical_below else []
        for region in ("below", "within", "above"):
            subs = [s for s in self.subdivisions if s.region == region]
            out += [s.band for s in subs if s.upper is not None]
            out.append(getattr(self, region))
            out += [s.band for s in subs if s.lower is not None]
        if self.critical_above:
            out.append(self.critical_above)
        return tuple(out)


@dataclass(frozen=True)
class Partition:
    age_min: float | None
    age_max: float | None
    sex: str | None
    reference_interval: Limits
    critical: Limits | None


@dataclass(frozen=True)
class LoincCode:
    code: str
    display: str
    property: str  # MCnc | SCnc
    specimen: str
    source: str


@dataclass(frozen=True)
class Analyte:
    id: str
    name: str
    aliases: tuple[str, ...]
    loinc: tuple[LoincCode, ...]
    canonical_unit: str
    units: tuple[str, ...]
    factors: Mapping[str, float]  # unit id -> factor to the canonical unit
    molar_mass: float | None
    valence: float | None
    reference_interval: Limits
    partitions: tuple[Partition, ...]
    critical: Limits | None
    implausible: Limits
    bands: Bands
    albumin_adjustment: Mapping[str, Any] | None
    sources: Mapping[str, str]  # field -> source tag, for the catalogue endpoint

    def loinc_for_kind(self, kind: str) -> str:
        """The primary serum/plasma LOINC code matching a unit kind (mass vs molar)."""
        prop = "MCnc" if kind == "mass_concentration" else "SCnc"
        for code in self.loinc:
            if code.property == prop and code.specimen == "serum_plasma":
                return code.code
        return self.loinc[0].code


@dataclass(frozen=True)
class NoteRule:
    id: str
    scope: str
    analyte: str | None
    severity: str
    text: str
    sources: tuple[str, ...]  # as written: seed file names or source tags
    references: tuple[str, ...]  # as cited in responses: seed file names or URLs
    placeholders: tuple[str, ...]
    test: Predicate
    bands: frozenset[str] | None = None  # result scope: the only bands it can fire for (None: any)

    @functools.cached_property
    def note(self) -> Note:
        """The note this rule adds when its text has no placeholders: built once, shared (immutable)."""
        return Note(self.id, self.severity, self.text, self.references)


@dataclass(frozen=True)
class Knowledge:
    directory: Path
    version: str
    name: str
    disclaimer: str
    seeds: tuple[str, ...]
    sources: Mapping[str, Source]
    units: UnitCatalogue
    analytes: Mapping[str, Analyte]
    by_name: Mapping[str, Analyte]  # folded id or alias -> analyte
    by_loinc: Mapping[str, Analyte]
    notes: tuple[NoteRule, ...]
    medications: MedicationCatalogue

    @functools.cached_property
    def result_notes(self) -> Mapping[str, tuple[NoteRule, ...]]:
        """Result-scope rules by analyte, grouped once rather than on every request."""
        grouped: dict[str, tuple[NoteRule, ...]] = {}
        for rule in self.notes:
            if rule.scope == "result" and rule.analyte:
                grouped[rule.analyte] = grouped.get(rule.analyte, ()) + (rule,)
        return grouped

    @functools.cached_property
    def panel_notes(self) -> tuple[NoteRule, ...]:
        return tuple(r for r in self.notes if r.scope == "panel")

    @functools.cached_property
    def _notes_by_band(self) -> dict[tuple[str, str], tuple[NoteRule, ...]]:
        out: dict[tuple[str, str], tuple[NoteRule, ...]] = {}
        for analyte, rules in self.result_notes.items():
            for band in (*self.analytes[analyte].bands.order(), *ks.SPECIAL_BANDS):
                out[(analyte, band)] = tuple(r for r in rules if r.bands is None or band in r.bands)
        return out

    def notes_for(self, analyte: str, band: str) -> tuple[NoteRule, ...]:
        """The result-scope rules that can fire for a result of this analyte and band, in file order."""
        return self._notes_by_band.get((analyte, band), ())

    @functools.cached_property
    def identities(self) -> dict[tuple[str | None, str | None, str | None], tuple[Analyte, Unit, str]]:
        """(analyte, code, unit) as written -> what they resolved to; filled by the core, bounded."""
        return {}

    @functools.cached_property
    def _names_as_written(self) -> dict[str, Analyte]:
        return {n: a for a in self.analytes.values() for n in (a.id, *a.aliases)}

    def find_analyte(self, name: str) -> Analyte | None:
        exact = self._names_as_written.get(name)  # the common case, without folding
        if exact is not None:
            return exact
        return self.by_name.get(name_key(name)) if len(name) <= 64 else None

    @functools.cached_property
    def _source_texts(self) -> dict[tuple[str | None, str | None], str]:
        return {}

    def source_text(self, low_tag: str | None, high_tag: str | None, lab_tag: str) -> str:
        """What a response cites for an interval's two sides (computed once per pair of tags)."""
        key = (low_tag, high_tag)
        text = self._source_texts.get(key)
        if text is None:
            tags = dict.fromkeys(t for t in key if t)
            text = "; ".join(lab_tag if t == lab_tag else self.sources[t].reference for t in tags)
            self._source_texts[key] = text
        return text


def name_key(text: str) -> str:
    """Fold an analyte id or alias: case, spaces, hyphens and underscores do not matter."""
    return re.sub(r"[\s_\-]+", "_", text.strip().casefold())


def _read(directory: Path, name: str, schema: Schema) -> dict[str, Any]:
    path = directory / name
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise KnowledgeError(name, "(file)", f"missing from {directory}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise KnowledgeError(name, "(file)", f"not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise KnowledgeError(name, "(file)", "expected a mapping at the top level")
    try:
        return schema.load(raw)
    except ValidationError as exc:
        pairs = [(".".join(str(k) for k in p.path) or "(file)", p.message) for p in flatten_messages(exc.messages)]
        detail = "; ".join(f"{f}: {m}" for f, m in pairs[1:])
        field, message = pairs[0]
        raise KnowledgeError(name, field, message + (f" (also {detail})" if detail else "")) from None


def _limits(raw: Mapping[str, Any] | None) -> Limits | None:
    if raw is None:
        return None
    shared = raw.get("source")
    return Limits(raw.get("low"), raw.get("high"), raw.get("low_source", shared), raw.get("high_source", shared))


def _check_tags(file: str, tags: Mapping[str, str | None], sources: Mapping[str, Source]) -> None:
    for field, tag in tags.items():
        if tag is not None and tag not in sources:
            raise KnowledgeError(file, field, f"source {tag!r} is not in sources.yaml")


def _analyte(file: str, raw: dict[str, Any], units: UnitCatalogue, sources: Mapping[str, Source]) -> Analyte:
    if raw["id"] + ".yaml" != file:
        raise KnowledgeError(file, "id", f"{raw['id']!r} does not match the file name")
    for i, unit_id in enumerate(raw["units"]):
        if unit_id not in units.units:
            raise KnowledgeError(file, f"units[{i}]", f"{unit_id!r} is not in units.yaml")
    tags: dict[str, str | None] = {}
    for key in ("reference_interval", "critical", "implausible"):
        lim = _limits(raw.get(key))
        if lim:
            tags[f"{key}.low_source"], tags[f"{key}.high_source"] = lim.low_source, lim.high_source
    for key in ("molar_mass", "valence", "albumin_adjustment"):
        if raw.get(key):
            tags[f"{key}.source"] = raw[key]["source"]
    for i, code in enumerate(raw["loinc"]):
        tags[f"loinc[{i}].source"] = code["source"]
    for i, sub in enumerate(raw["bands"]["subdivisions"]):
        tags[f"bands.subdivisions[{i}].source"] = sub["source"]
    for i, part in enumerate(raw["partitions"]):
        tags[f"partitions[{i}].reference_interval.source"] = part["reference_interval"].get("source")
    _check_tags(file, tags, sources)
    ri, impl, crit = _limits(raw["reference_interval"]), _limits(raw["implausible"]), _limits(raw["critical"])
    assert ri is not None and impl is not None
    if ri.low is None or ri.high is None or impl.low is None or impl.high is None:
        raise KnowledgeError(file, "reference_interval", "default and implausible limits need low and high")
    if not impl.low <= ri.low <= ri.high <= impl.high:
        raise KnowledgeError(file, "reference_interval", "must lie within the implausible limits")
    if crit and ((crit.low is not None and crit.low > ri.low) or (crit.high is not None and crit.high < ri.high)):
        raise KnowledgeError(file, "critical", "critical limits must lie outside the reference interval")
    b = raw["bands"]
    if crit and ((crit.low is not None) != bool(b.get("critical_below")) or (crit.high is not None) != bool(b.get("critical_above"))):
        raise KnowledgeError(file, "bands", "critical bands and critical limits must come together")
    try:
        factors = derive_factors({u: units.units[u] for u in raw["units"]}, raw["canonical_unit"],
                                 (raw["molar_mass"] or {}).get("value"), (raw["valence"] or {}).get("value"))
    except ValueError as exc:
        raise KnowledgeError(file, "units", str(exc)) from None
    return Analyte(
        id=raw["id"], name=raw["name"], aliases=tuple(raw["aliases"]),
        loinc=tuple(LoincCode(**c) for c in raw["loinc"]),
        canonical_unit=raw["canonical_unit"], units=tuple(raw["units"]), factors=factors,
        molar_mass=(raw["molar_mass"] or {}).get("value"), valence=(raw["valence"] or {}).get("value"),
        reference_interval=ri,
        partitions=tuple(Partition(p.get("age_min"), p.get("age_max"), p.get("sex"),
                                   _limits(p["reference_interval"]), _limits(p.get("critical")))  # type: ignore[arg-type]
                         for p in raw["partitions"]),
        critical=crit, implausible=impl,
        bands=Bands(b["below"], b["within"], b["above"], b.get("critical_below"), b.get("critical_above"),
                    tuple(Subdivision(s["band"], s["region"], s.get("upper"), s["upper_inclusive"], s.get("lower"),
                                      s["lower_inclusive"], s["source"]) for s in b["subdivisions"])),
        albumin_adjustment=raw["albumin_adjustment"],
        sources={k: v for k, v in tags.items() if v},
    )


def _notes(raw: dict[str, Any], analytes: Mapping[str, Analyte], seeds: tuple[str, ...],
           sources: Mapping[str, Source]) -> tuple[NoteRule, ...]:
    all_bands = sorted({band for a in analytes.values() for band in a.bands.order()} | set(ks.SPECIAL_BANDS))
    rules: list[NoteRule] = []
    seen: set[str] = set()
    for i, r in enumerate(raw["notes"]):
        where = f"notes[{i}]"
        if r["id"] in seen:
            raise KnowledgeError("notes.yaml", f"{where}.id", f"duplicate id {r['id']!r}")
        seen.add(r["id"])
        if r.get("analyte") and r["analyte"] not in analytes:
            raise KnowledgeError("notes.yaml", f"{where}.analyte", f"unknown analyte {r['analyte']!r}")
        bands = analytes[r["analyte"]].bands.order() + ks.SPECIAL_BANDS if r.get("analyte") else all_bands
        try:
            test = compile_condition(r["when"], "when", analytes=list(analytes), bands=bands,
                                     derived=DERIVED_VALUES, result_scope=r["scope"] == "result")
        except RuleError as exc:
            raise KnowledgeError("notes.yaml", f"{where}.{exc.field}", str(exc)) from None
        refs: list[str] = []
        for j, s in enumerate(r["sources"]):
            if s in seeds:
                refs.append(s)
            elif s in sources and sources[s].url:
                refs.append(sources[s].reference)
            elif s in sources:
                raise KnowledgeError("notes.yaml", f"{where}.sources[{j}]",
                                     f"{s!r} has no URL; a note cites seed files or sources with a URL")
            else:
                raise KnowledgeError("notes.yaml", f"{where}.sources[{j}]",
                                     f"{s!r} is neither a seed in knowledge.yaml nor a tag in sources.yaml")
        names = tuple(n for _, n, _, _ in string.Formatter().parse(r["text"]) if n is not None)
        for n in names:
            if n not in DERIVED_VALUES:
                raise KnowledgeError("notes.yaml", f"{where}.text", f"unknown placeholder {{{n}}}")
        rules.append(NoteRule(r["id"], r["scope"], r["analyte"] if r.get("analyte") else None, r["severity"],
                              r["text"].strip(), tuple(r["sources"]), tuple(dict.fromkeys(refs)), names, test,
                              bands_needed(r["when"]) if r["scope"] == "result" else None))
    return tuple(rules)


def load_knowledge(directory: str | os.PathLike[str] | None = None) -> Knowledge:
    """Load and validate a knowledge folder (default: LABINTERP_RANGES_DIR or reference_ranges/)."""
    path = Path(directory or os.environ.get("LABINTERP_RANGES_DIR") or DEFAULT_DIR)
    if not path.is_dir():
        raise KnowledgeError(str(path), "(folder)", "is not a directory")
    meta = _read(path, "knowledge.yaml", ks.KnowledgeFileSchema())
    sources = {tag: Source(tag, s["citation"], s["url"])
               for tag, s in _read(path, "sources.yaml", ks.SourcesFileSchema())["sources"].items()}
    unit_defs = [Unit(u["id"], u["pint"], u["ucum"], u["kind"], tuple(u["spellings"]))
                 for u in _read(path, "units.yaml", ks.UnitsFileSchema())["units"]]
    try:
        catalogue = UnitCatalogue(unit_defs)
    except ValueError as exc:
        raise KnowledgeError("units.yaml", "units", str(exc)) from None
    for i, unit in enumerate(unit_defs):
        try:
            check_kind(unit)
        except Exception as exc:
            raise KnowledgeError("units.yaml", f"units[{i}].pint", str(exc)) from None
    analytes: dict[str, Analyte] = {}
    for file in sorted(p.name for p in path.glob("*.yaml") if p.name not in RESERVED_FILES):
        analyte = _analyte(file, _read(path, file, ks.AnalyteSchema()), catalogue, sources)
        analytes[analyte.id] = analyte
    if not analytes:
        raise KnowledgeError(str(path), "(folder)", "holds no analyte files")
    by_name: dict[str, Analyte] = {}
    by_loinc: dict[str, Analyte] = {}
    for a in analytes.values():
        for name in (a.id, *a.aliases):
            other = by_name.setdefault(name_key(name), a)
            if other is not a:
                raise KnowledgeError(f"{a.id}.yaml", "aliases", f"{name!r} also names {other.id}")
        for code in a.loinc:
            other = by_loinc.setdefault(code.code, a)
            if other is not a:
                raise KnowledgeError(f"{a.id}.yaml", "loinc", f"{code.code} also belongs to {other.id}")
    seeds = tuple(s["file"] for s in meta["seeds"])
    notes = _notes(_read(path, "notes.yaml", ks.NotesFileSchema()), analytes, seeds, sources)
    medications = build_catalogue(_read(path, "medications.yaml", MedicationsFileSchema()), sources)
    kb = Knowledge(path, meta["version"], meta["name"], meta["disclaimer"].strip(), seeds, sources,
                   catalogue, analytes, by_name, by_loinc, notes, medications)
    kb._notes_by_band, kb.panel_notes, kb._names_as_written  # noqa: B018  (now, not on the first request)
    return kb

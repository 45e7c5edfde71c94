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
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from pathlib import Path
from typing import Any, NamedTuple
from collections.abc import Mapping

import yaml
from marshmallow import Schema, ValidationError

from . import knowledge_schema as ks
from .errors import KnowledgeError, flatten_messages
from .deltas import DeltaRule, HistoryLimits
from .identify import clean_identities
from .report import Citation, Note
from .medications import MedicationCatalogue, MedicationsFileSchema, build_catalogue
from .rules import (
    ANALYTE_DELTA, PLACEHOLDERS, Predicate, RuleError, RuleScope, analytes_needed, bands_needed, compile_condition,
    needs_previous,
)
from .units import Unit, UnitCatalogue, check_kind, derive_factors, property_of_kind
from .vocabulary import Term, Vocabulary

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "reference_ranges"
RESERVED_FILES = {"knowledge.yaml", "sources.yaml", "units.yaml", "notes.yaml", "medications.yaml",
                  "vocabulary.yaml", "deltas.yaml"}
SEED_KIND = "consumer"  # the seed documents are consumer texts: facts from them need a clinical source too


@dataclass(frozen=True)
class Source:
    tag: str
    citation: str
    url: str | None
    title: str | None = None
    kind: str | None = None
    read: str | None = None
    unconfirmed: str | None = None

    @property
    def reference(self) -> str:
        """What a response cites: the URL when there is one, else the citation."""
        return self.url or self.citation

    @property
    def shown(self) -> str:
        """What people are shown: the publisher's title (format 1 folders have only a citation)."""
        return self.title or self.citation


@dataclass(frozen=True)
class Limits:
    """Two limits with their sources. `low_inclusive` / `high_inclusive`: a value equal to a critical
    or implausible limit is beyond it (unused for the reference interval, which holds its limits)."""

    low: float | None
    high: float | None
    low_source: str | None
    high_source: str | None
    low_inclusive: bool = False
    high_inclusive: bool = False
    id: str | None = None
    why: str | None = None


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
        return tuple(dict.fromkeys(out))  # a band may refine two regions (B12 borderline)


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
    adjustment: Mapping[str, Any] | None  # a derived value: adjusted for another analyte (its `by`)
    sources: Mapping[str, str]  # field -> source tag, for the catalogue endpoint
    critical_alternatives: tuple[Limits, ...] = ()  # documented, not applied (a lab may select one)

    def loinc_for_kind(self, kind: str) -> str:
        """The primary serum/plasma LOINC code matching a unit kind (mass vs molar)."""
        prop = property_of_kind(kind)
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
    citations: tuple[Citation, ...] = ()  # the references with their titles, for people
    rationale: str | None = None
    when: Any = None  # the condition as written, for the rule table
    needs: frozenset[str] = frozenset()  # analytes without a result of which it cannot fire
    needs_previous: bool = False  # cannot fire for a result (panel) without an earlier result (history)

    @functools.cached_property
    def note(self) -> Note:
        """The note this rule adds when its text has no placeholders: built once, shared (immutable)."""
        return Note(self.id, self.severity, self.text, self.references, self.citations)


LAB_SOURCE = "laboratory"  # the tag of a limit the laboratory sent with the result


class RangeSource(NamedTuple):
    """What a response cites for an interval's two sides: references joined, and with titles."""

    text: str
    citations: tuple[Citation, ...]


@dataclass(frozen=True)
class Knowledge:
    """Everything the service knows, validated; built once by load_knowledge and never changed after
    (requests only read it, so one instance is shared by every request and thread)."""

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
    format: int
    vocabulary: Vocabulary
    seed_titles: Mapping[str, str]
    # Indexes, derived from the above in load_knowledge:
    names_as_written: Mapping[str, Analyte]  # ids and aliases exactly as written in the files
    panel_notes: tuple[NoteRule, ...]
    # (analyte, band, with an earlier result) -> the result rules that can fire
    rules_by_band: Mapping[tuple[str, str, bool], tuple[NoteRule, ...]]
    range_sources: Mapping[tuple[str | None, str | None], RangeSource]
    adjusted: tuple[Analyte, ...]  # the analytes with an `adjustment` (a derived value)
    adjusting: frozenset[str]  # the analytes another one is adjusted by
    # (analyte, code, unit) exactly as the files spell them -> their resolution (core.identify).
    identities: Mapping[tuple[str | None, str | None, str | None], Any] = field(
        default_factory=lambda: MappingProxyType({}))
    deltas: Mapping[str, tuple[DeltaRule, ...]] = field(default_factory=lambda: MappingProxyType({}))  # deltas.yaml
    history: HistoryLimits = field(default_factory=HistoryLimits)

    def notes_for(self, analyte: str, band: str, previous: bool = True) -> tuple[NoteRule, ...]:
        """The result-scope rules that can fire for a result of this analyte and band (`previous`: one
        with an earlier result), in file order."""
        return self.rules_by_band.get((analyte, band, previous), ())

    def find_analyte(self, name: str) -> Analyte | None:
        exact = self.names_as_written.get(name)  # the common case, without folding
        if exact is not None:
            return exact
        return self.by_name.get(name_key(name)) if len(name) <= 64 else None

    def citations(self, tags: Any) -> tuple[Citation, ...]:
        """Seed files and source tags as (title, reference, kind), each once, in order."""
        return _citations(tags, self.seed_titles, self.sources)

    def range_source(self, low_tag: str | None, high_tag: str | None) -> RangeSource:
        return self.range_sources[(low_tag, high_tag)]


def _citations(tags: Any, seed_titles: Mapping[str, str], sources: Mapping[str, Source]) -> tuple[Citation, ...]:
    out: list[Citation] = []
    for t in dict.fromkeys(t for t in tags if t):
        if t == LAB_SOURCE:
            out.append(Citation("The laboratory's own reference interval", LAB_SOURCE, "laboratory"))
        elif t in seed_titles:
            out.append(Citation(seed_titles[t], t, SEED_KIND))
        else:
            src = sources[t]
            out.append(Citation(src.shown, src.reference, src.kind or "unspecified"))
    return tuple(out)


def _range_sources(analytes: Mapping[str, Analyte], seed_titles: Mapping[str, str],
                   sources: Mapping[str, Source]) -> dict[tuple[str | None, str | None], RangeSource]:
    """Every pair of interval tags a result can carry: each interval's own, and the laboratory's on
    either side or both."""
    pairs: set[tuple[str | None, str | None]] = {(LAB_SOURCE, LAB_SOURCE)}
    for a in analytes.values():
        for ri in (a.reference_interval, *(p.reference_interval for p in a.partitions)):
            pairs |= {(ri.low_source, ri.high_source), (LAB_SOURCE, ri.high_source), (ri.low_source, LAB_SOURCE)}
    out = {}
    for pair in pairs:
        cites = _citations(pair, seed_titles, sources)
        out[pair] = RangeSource("; ".join(c.reference for c in cites), cites)
    return out


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
    return Limits(raw.get("low"), raw.get("high"), raw.get("low_source", shared), raw.get("high_source", shared),
                  bool(raw.get("low_inclusive", False)), bool(raw.get("high_inclusive", False)),
                  raw.get("id"), raw.get("why"))


def _check_tags(file: str, tags: Mapping[str, str | None], sources: Mapping[str, Source]) -> None:
    for field_name, tag in tags.items():
        if tag is not None and tag not in sources:
            raise KnowledgeError(file, field_name, f"source {tag!r} is not in sources.yaml")


def _limit_tags(key: str, raw: Mapping[str, Any] | None) -> dict[str, str | None]:
    lim = _limits(raw)
    return {} if lim is None else {f"{key}.low_source": lim.low_source, f"{key}.high_source": lim.high_source}


def _require_boundaries(file: str, key: str, raw: Mapping[str, Any] | None) -> None:
    """Format 2: every critical and implausible limit says whether the limit value itself is beyond it,
    as its source does ("<= 6.5" or "< 6.5"), instead of a convention nobody can check."""
    for side in ("low", "high"):
        if raw is not None and raw.get(side) is not None and f"{side}_inclusive" not in raw:
            raise KnowledgeError(file, f"{key}.{side}_inclusive",
                                 "state whether a value equal to the limit is beyond it (true or false), as the source does")


def _check_critical(file: str, key: str, crit: Limits, ri: Limits, impl: Limits) -> None:
    if (crit.low is not None and crit.low > ri.low) or (crit.high is not None and crit.high < ri.high):  # type: ignore[operator]
        raise KnowledgeError(file, key, "critical limits must lie outside the reference interval")
    if (crit.low is not None and crit.low < impl.low) or (crit.high is not None and crit.high > impl.high):  # type: ignore[operator]
        raise KnowledgeError(file, key, "critical limits must lie inside the implausible limits")


def _chosen_critical(file: str, raw: dict[str, Any]) -> tuple[Limits | None, tuple[Limits, ...]]:
    """The critical limits applied and the documented alternatives; `critical_use` selects one."""
    applied = _limits(raw["critical"])
    others = tuple(_limits(a) for a in raw["critical_alternatives"])
    for i, alt in enumerate(others):
        if alt is None or alt.id is None:
            raise KnowledgeError(file, f"critical_alternatives[{i}].id", "an alternative needs an id")
    ids = [a.id for a in others if a is not None] + ([applied.id] if applied and applied.id else [])
    if len(ids) != len(set(ids)):
        raise KnowledgeError(file, "critical_alternatives", "ids must be unique")
    use = raw.get("critical_use")
    if use is None or (applied is not None and applied.id == use):
        return applied, others  # type: ignore[return-value]
    chosen = next((a for a in others if a is not None and a.id == use), None)
    if chosen is None:
        raise KnowledgeError(file, "critical_use", f"{use!r} is not the id of a critical alternative; known: {ids}")
    rest = tuple(a for a in others if a is not chosen) + ((applied,) if applied is not None else ())
    return chosen, rest  # type: ignore[return-value]


def _analyte(file: str, raw: dict[str, Any], units: UnitCatalogue, sources: Mapping[str, Source],
             fmt: int, sexes: tuple[str, ...]) -> Analyte:
    if raw["id"] + ".yaml" != file:
        raise KnowledgeError(file, "id", f"{raw['id']!r} does not match the file name")
    legacy = raw.pop("albumin_adjustment", None)
    if legacy and raw["adjustment"]:
        raise KnowledgeError(file, "albumin_adjustment", "give `adjustment` only (albumin_adjustment is its format 1 spelling)")
    if legacy:
        raw["adjustment"] = {"id": f"albumin_adjusted_{raw['id']}", "by": "albumin", "coefficient": legacy["coefficient"],
                             "nominal": legacy["nominal_albumin"], "source": legacy["source"]}
    for i, unit_id in enumerate(raw["units"]):
        if unit_id not in units.units:
            raise KnowledgeError(file, f"units[{i}]", f"{unit_id!r} is not in units.yaml")
    tags: dict[str, str | None] = {}
    for key in ("reference_interval", "critical", "implausible"):
        tags |= _limit_tags(key, raw.get(key))
    for i, alt in enumerate(raw["critical_alternatives"]):
        tags |= _limit_tags(f"critical_alternatives[{i}]", alt)
    for key in ("molar_mass", "valence", "adjustment"):
        if raw.get(key):
            tags[f"{key}.source"] = raw[key]["source"]
    for i, code in enumerate(raw["loinc"]):
        tags[f"loinc[{i}].source"] = code["source"]
    for i, sub in enumerate(raw["bands"]["subdivisions"]):
        tags[f"bands.subdivisions[{i}].source"] = sub["source"]
    for i, part in enumerate(raw["partitions"]):
        tags[f"partitions[{i}].reference_interval.source"] = part["reference_interval"].get("source")
        tags |= _limit_tags(f"partitions[{i}].critical", part.get("critical"))
        if part.get("sex") is not None and part["sex"] not in sexes:
            raise KnowledgeError(file, f"partitions[{i}].sex", f"{part['sex']!r} is not a sex in vocabulary.yaml")
    _check_tags(file, tags, sources)
    if fmt >= 2:
        for key in ("critical", "implausible"):
            _require_boundaries(file, key, raw.get(key))
        for i, alt in enumerate(raw["critical_alternatives"]):
            _require_boundaries(file, f"critical_alternatives[{i}]", alt)
        for i, part in enumerate(raw["partitions"]):
            _require_boundaries(file, f"partitions[{i}].critical", part.get("critical"))
    ri, impl = _limits(raw["reference_interval"]), _limits(raw["implausible"])
    assert ri is not None and impl is not None
    if ri.low is None or ri.high is None or impl.low is None or impl.high is None:
        raise KnowledgeError(file, "reference_interval", "default and implausible limits need low and high")
    if not impl.low <= ri.low <= ri.high <= impl.high:
        raise KnowledgeError(file, "reference_interval", "must lie within the implausible limits")
    crit, alternatives = _chosen_critical(file, raw)
    for key, lim in (("critical", crit), *((f"critical_alternatives[{i}]", a) for i, a in enumerate(alternatives))):
        if lim is not None:
            _check_critical(file, key, lim, ri, impl)
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
        canonical_unit=raw["canonical_unit"], units=tuple(raw["units"]), factors=MappingProxyType(factors),
        molar_mass=(raw["molar_mass"] or {}).get("value"), valence=(raw["valence"] or {}).get("value"),
        reference_interval=ri,
        partitions=tuple(Partition(p.get("age_min"), p.get("age_max"), p.get("sex"),
                                   _limits(p["reference_interval"]), _limits(p.get("critical")))  # type: ignore[arg-type]
                         for p in raw["partitions"]),
        critical=crit, implausible=impl,
        bands=Bands(b["below"], b["within"], b["above"], b.get("critical_below"), b.get("critical_above"),
                    tuple(Subdivision(s["band"], s["region"], s.get("upper"), s["upper_inclusive"], s.get("lower"),
                                      s["lower_inclusive"], s["source"]) for s in b["subdivisions"])),
        adjustment=MappingProxyType(raw["adjustment"]) if raw["adjustment"] else None,
        sources=MappingProxyType({k: v for k, v in tags.items() if v}),
        critical_alternatives=alternatives,
    )


def _note_references(where: str, raw_sources: list[str], seeds: tuple[str, ...],
                     sources: Mapping[str, Source]) -> list[str]:
    refs: list[str] = []
    for j, s in enumerate(raw_sources):
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
    return refs


def derived_values(analytes: Mapping[str, Analyte]) -> tuple[str, ...]:
    """The ids of the values derived from several results (each analyte's `adjustment`)."""
    return tuple(a.adjustment["id"] for a in analytes.values() if a.adjustment)


def _notes(raw: dict[str, Any], analytes: Mapping[str, Analyte], seed_titles: Mapping[str, str],
           sources: Mapping[str, Source], vocabulary: Vocabulary, fmt: int) -> tuple[NoteRule, ...]:
    all_bands = sorted({band for a in analytes.values() for band in a.bands.order()} | set(ks.SPECIAL_BANDS))
    seeds = tuple(seed_titles)
    rules: list[NoteRule] = []
    seen: set[str] = set()
    for i, r in enumerate(raw["notes"]):
        where = f"notes[{i}]"
        if r["id"] in seen:
            raise KnowledgeError("notes.yaml", f"{where}.id", f"duplicate id {r['id']!r}")
        seen.add(r["id"])
        if r.get("analyte") and r["analyte"] not in analytes:
            raise KnowledgeError("notes.yaml", f"{where}.analyte", f"unknown analyte {r['analyte']!r}")
        if fmt >= 2 and not r.get("rationale"):
            raise KnowledgeError("notes.yaml", f"{where}.rationale", "say why the rule exists (format 2)")
        bands = analytes[r["analyte"]].bands.order() + ks.SPECIAL_BANDS if r.get("analyte") else tuple(all_bands)
        scope = RuleScope(tuple(analytes), tuple(bands), derived_values(analytes), r["scope"] == "result", vocabulary,
                          {a.id: a.bands.order() + ks.SPECIAL_BANDS for a in analytes.values()})
        try:
            test = compile_condition(r["when"], "when", scope)
        except RuleError as exc:
            raise KnowledgeError("notes.yaml", f"{where}.{exc.field}", str(exc)) from None
        refs = _note_references(where, r["sources"], seeds, sources)
        names = tuple(n for _, n, _, _ in string.Formatter().parse(r["text"]) if n is not None)
        # a derived value's id stands for its text; `<analyte>_delta` for the change of that analyte's result
        known = (*PLACEHOLDERS, *derived_values(analytes), *(f"{a}{ANALYTE_DELTA}" for a in analytes))
        for n in names:
            if n not in known:
                raise KnowledgeError("notes.yaml", f"{where}.text", f"unknown placeholder {{{n}}}; known: {sorted(known)}")
        rules.append(NoteRule(r["id"], r["scope"], r["analyte"] if r.get("analyte") else None, r["severity"],
                              r["text"].strip(), tuple(r["sources"]), tuple(dict.fromkeys(refs)), names, test,
                              bands_needed(r["when"]) if r["scope"] == "result" else None,
                              _citations(r["sources"], seed_titles, sources), r.get("rationale"), r["when"],
                              analytes_needed(r["when"]), needs_previous(r["when"])))
    return tuple(rules)


def _deltas(path: Path, analytes: Mapping[str, Analyte],
            sources: Mapping[str, Source]) -> tuple[Mapping[str, tuple[DeltaRule, ...]], HistoryLimits]:
    """deltas.yaml: delta-check rules per analyte and the history limits; a folder without it checks no
    deltas (history is still read, for the trend and the notes that compare with it)."""
    if not (path / "deltas.yaml").is_file():
        return MappingProxyType({}), HistoryLimits()
    raw = _read(path, "deltas.yaml", ks.DeltasFileSchema())
    out: dict[str, tuple[DeltaRule, ...]] = {}
    seen: set[str] = set()
    for analyte, rules in raw["deltas"].items():
        if analyte not in analytes:
            raise KnowledgeError("deltas.yaml", f"deltas.{analyte}", f"{analyte!r} is not an analyte of this folder")
        built = []
        for i, r in enumerate(rules):
            where = f"deltas.{analyte}[{i}]"
            if r["id"] in seen:
                raise KnowledgeError("deltas.yaml", f"{where}.id", f"duplicate id {r['id']!r}")
            seen.add(r["id"])
            if r["absolute"] is None and r["percent"] is None:
                raise KnowledgeError("deltas.yaml", where, "give `absolute`, `percent` or both")
            for key, tag in [("source", r["source"]), *((f"basis_sources[{j}]", t) for j, t in enumerate(r["basis_sources"]))]:
                if tag not in sources:
                    raise KnowledgeError("deltas.yaml", f"{where}.{key}", f"source {tag!r} is not in sources.yaml")
            built.append(DeltaRule(r["id"], analyte, r["window_hours"], r["direction"], r["absolute"], r["percent"],
                                   r["combine"], r["inclusive"], r["source"], sources[r["source"]].reference,
                                   r["confirmed"], r["why"].strip(), _citations((r["source"],), {}, sources)))
        out[analyte] = tuple(built)
    h = raw["history"]
    return MappingProxyType(out), HistoryLimits(h["max_age_days"], h["trend_points"])


def _vocabulary(path: Path, fmt: int) -> Vocabulary:
    if fmt < 2:
        return Vocabulary.legacy()
    raw = _read(path, "vocabulary.yaml", ks.VocabularyFileSchema())
    terms: dict[str, tuple[Term, ...]] = {}
    for kind, items in raw.items():
        ids = [t["id"] for t in items]
        if len(ids) != len(set(ids)):
            raise KnowledgeError("vocabulary.yaml", kind, "a term is listed twice")
        terms[kind] = tuple(Term(t["id"], t["label"]) for t in items)
    return Vocabulary(MappingProxyType(terms))


def _sources(path: Path, fmt: int) -> dict[str, Source]:
    out = {}
    for tag, s in _read(path, "sources.yaml", ks.SourcesFileSchema())["sources"].items():
        if fmt >= 2:
            for key in ("title", "kind"):
                if not s.get(key):
                    raise KnowledgeError("sources.yaml", f"sources.{tag}.{key}", "every source needs a title and a kind")
        out[tag] = Source(tag, s["citation"], s["url"], s.get("title"), s.get("kind"), s.get("read"), s.get("unconfirmed"))
    return out


def _indexes(analytes: Mapping[str, Analyte], notes: tuple[NoteRule, ...]) -> dict[str, Any]:
    """Lookups the request path uses, built once here rather than on a first request."""
    by_band: dict[tuple[str, str, bool], tuple[NoteRule, ...]] = {}
    for a in analytes.values():
        rules = [r for r in notes if r.scope == "result" and r.analyte in (a.id, None)]
        for band in (*a.bands.order(), *ks.SPECIAL_BANDS):
            fits = tuple(r for r in rules if r.bands is None or band in r.bands)
            by_band[(a.id, band, True)] = fits
            by_band[(a.id, band, False)] = tuple(r for r in fits if not r.needs_previous)
    return {"names_as_written": MappingProxyType({n: a for a in analytes.values() for n in (a.id, *a.aliases)}),
            "panel_notes": tuple(r for r in notes if r.scope == "panel"),
            "rules_by_band": MappingProxyType(by_band),
            "adjusted": tuple(a for a in analytes.values() if a.adjustment),
            "adjusting": frozenset(a.adjustment["by"] for a in analytes.values() if a.adjustment)}


def load_knowledge(directory: str | os.PathLike[str] | None = None) -> Knowledge:
    """Load and validate a knowledge folder (default: the bundled reference_ranges/). The service's
    folder is a setting (LABINTERP_RANGES_DIR, read by service/config.py), passed in here."""
    path = Path(directory or DEFAULT_DIR)
    if not path.is_dir():
        raise KnowledgeError(str(path), "(folder)", "is not a directory")
    meta = _read(path, "knowledge.yaml", ks.KnowledgeFileSchema())
    fmt = meta["format"]
    vocabulary = _vocabulary(path, fmt)
    sources = _sources(path, fmt)
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
    found: dict[str, Analyte] = {}
    for file in sorted(p.name for p in path.glob("*.yaml") if p.name not in RESERVED_FILES):
        analyte = _analyte(file, _read(path, file, ks.AnalyteSchema()), catalogue, sources, fmt,
                           vocabulary.ids("sex"))
        found[analyte.id] = analyte
    if not found:
        raise KnowledgeError(str(path), "(folder)", "holds no analyte files")
    for i, name in enumerate(meta["order"]):
        if name not in found:
            raise KnowledgeError("knowledge.yaml", f"order[{i}]", f"{name!r} is not an analyte of this folder")
    analytes = {name: found[name] for name in (*dict.fromkeys(meta["order"]), *found)}
    by_name: dict[str, Analyte] = {}
    by_loinc: dict[str, Analyte] = {}
    for a in analytes.values():
        if a.adjustment and a.adjustment["by"] not in analytes:
            raise KnowledgeError(f"{a.id}.yaml", "adjustment.by", f"{a.adjustment['by']!r} is not an analyte of this folder")
        for name in (a.id, *a.aliases):
            other = by_name.setdefault(name_key(name), a)
            if other is not a:
                raise KnowledgeError(f"{a.id}.yaml", "aliases", f"{name!r} also names {other.id}")
        for code in a.loinc:
            other = by_loinc.setdefault(code.code, a)
            if other is not a:
                raise KnowledgeError(f"{a.id}.yaml", "loinc", f"{code.code} also belongs to {other.id}")
    seed_titles = MappingProxyType({s["file"]: s["title"] for s in meta["seeds"]})
    notes = _notes(_read(path, "notes.yaml", ks.NotesFileSchema()), analytes, seed_titles, sources, vocabulary, fmt)
    medications = build_catalogue(_read(path, "medications.yaml", MedicationsFileSchema()), sources, vocabulary)
    deltas, history = _deltas(path, analytes, sources)
    kb = Knowledge(path, meta["version"], meta["name"], meta["disclaimer"].strip(), tuple(seed_titles),
                   MappingProxyType(sources), catalogue, MappingProxyType(analytes), MappingProxyType(by_name),
                   MappingProxyType(by_loinc), notes, medications, fmt, vocabulary, seed_titles,
                   range_sources=MappingProxyType(_range_sources(analytes, seed_titles, sources)),
                   deltas=deltas, history=history, **_indexes(analytes, notes))
    return replace(kb, identities=MappingProxyType(clean_identities(kb)))

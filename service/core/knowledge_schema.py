"""marshmallow schemas for the knowledge files: structure and value checks, one file at a time.

Cross-file checks (a source tag that exists, a unit in the allowlist, a known analyte) are made by
`knowledge.py` once every file has loaded.
"""
from __future__ import annotations

from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema
from .strict import StrictSchema
from .vocabulary import SEVERITIES

ELECTROLYTE_BANDS = ("critical_low", "low", "normal", "high", "critical_high")
B12_BANDS = ("deficient", "borderline", "normal", "high", "very_high")
SPECIAL_BANDS = ("implausible", "indeterminate")
ALL_BANDS = tuple(dict.fromkeys(ELECTROLYTE_BANDS + B12_BANDS + SPECIAL_BANDS))
UNIT_KINDS = ("mass_concentration", "substance_concentration", "equivalent_concentration")
LOINC_PROPERTIES = ("MCnc", "SCnc")
SOURCE_KINDS = ("laboratory_catalogue", "guideline", "textbook", "peer_reviewed", "regulator", "standard",
                "terminology", "consumer", "engineering")
KNOWLEDGE_FORMATS = (1, 2)  # 1: 2026.11.0 (no vocabulary.yaml, strict limits); 2: boundaries stated per limit

_band = fields.String(validate=validate.OneOf(ALL_BANDS))
_tag = fields.String(required=True, validate=validate.Length(min=1, max=40))
_positive: dict[str, Any] = {"validate": validate.Range(min=0, min_inclusive=False)}


class LimitsSchema(StrictSchema):
    """A pair of limits. For critical and implausible limits `low_inclusive` / `high_inclusive` say
    whether a value equal to the limit is beyond it (a source's "<= 6.5" is inclusive, "< 6.5" is not);
    the reference interval always contains its own limits (FHIR referenceRange)."""

    id = fields.String(validate=validate.Regexp(r"^[a-z0-9]+(-[a-z0-9]+)*$"))
    low = fields.Float(allow_none=True, **_positive)
    high = fields.Float(allow_none=True, **_positive)
    low_inclusive = fields.Boolean()
    high_inclusive = fields.Boolean()
    source = fields.String(validate=validate.Length(min=1, max=40))
    low_source = fields.String(validate=validate.Length(min=1, max=40))
    high_source = fields.String(validate=validate.Length(min=1, max=40))
    why = fields.String(validate=validate.Length(min=10, max=1000))

    @validates_schema
    def _check(self, data: dict, **_: object) -> None:
        low, high = data.get("low"), data.get("high")
        if low is None and high is None:
            raise ValidationError("give low, high or both", "low")
        if low is not None and high is not None and low > high:
            raise ValidationError(f"low ({low}) is above high ({high})", "low")
        for side in ("low", "high"):
            if data.get(side) is not None and not (data.get(f"{side}_source") or data.get("source")):
                raise ValidationError("every number needs a source", f"{side}_source")


class MeasureSchema(StrictSchema):
    value = fields.Float(required=True, **_positive)
    source = _tag


class SubdivisionSchema(StrictSchema):
    band = fields.String(required=True, validate=validate.OneOf(ALL_BANDS))
    region = fields.String(required=True, validate=validate.OneOf(("below", "within", "above")))
    upper = fields.Float(**_positive)
    upper_inclusive = fields.Boolean(load_default=False)
    lower = fields.Float(**_positive)
    lower_inclusive = fields.Boolean(load_default=True)
    source = _tag

    @validates_schema
    def _one_bound(self, data: dict, **_: object) -> None:
        if ("upper" in data) == ("lower" in data):
            raise ValidationError("give exactly one of upper or lower", "upper")


class BandsSchema(StrictSchema):
    below = fields.String(required=True, validate=validate.OneOf(ALL_BANDS))
    within = fields.String(required=True, validate=validate.OneOf(ALL_BANDS))
    above = fields.String(required=True, validate=validate.OneOf(ALL_BANDS))
    critical_below = fields.String(validate=validate.OneOf(ALL_BANDS))
    critical_above = fields.String(validate=validate.OneOf(ALL_BANDS))
    subdivisions = fields.List(fields.Nested(SubdivisionSchema), load_default=list)


class PartitionSchema(StrictSchema):
    age_min = fields.Float(validate=validate.Range(min=0, max=150))
    age_max = fields.Float(validate=validate.Range(min=0, max=150, min_inclusive=False))
    sex = fields.String(validate=validate.Length(min=1, max=40))  # checked against vocabulary.yaml
    reference_interval = fields.Nested(LimitsSchema, required=True)
    critical = fields.Nested(LimitsSchema)


class LoincSchema(StrictSchema):
    code = fields.String(required=True, validate=validate.Regexp(r"^\d{1,7}-\d$"))
    display = fields.String(required=True, validate=validate.Length(min=1, max=200))
    property = fields.String(required=True, validate=validate.OneOf(LOINC_PROPERTIES))
    specimen = fields.String(load_default="serum_plasma", validate=validate.OneOf(("serum_plasma", "blood")))
    source = _tag


class AdjustmentSchema(StrictSchema):
    """A derived value: this analyte adjusted for another one of the same panel,
    value + coefficient x (nominal - other), both in their canonical units."""

    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,59}$"))
    by = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,39}$"))
    coefficient = fields.Float(required=True, **_positive)
    nominal = fields.Float(required=True, **_positive)
    source = _tag


class LegacyAlbuminAdjustmentSchema(StrictSchema):
    """Format 1's spelling of calcium's adjustment for albumin (read as `adjustment`)."""

    coefficient = fields.Float(required=True, **_positive)
    nominal_albumin = fields.Float(required=True, **_positive)
    source = _tag


class AnalyteSchema(StrictSchema):
    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{0,39}$"))
    name = fields.String(required=True, validate=validate.Length(min=1, max=80))
    aliases = fields.List(fields.String(validate=validate.Length(min=1, max=40)), load_default=list)
    loinc = fields.List(fields.Nested(LoincSchema), required=True, validate=validate.Length(min=1))
    canonical_unit = fields.String(required=True)
    units = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    molar_mass = fields.Nested(MeasureSchema, allow_none=True, load_default=None)
    valence = fields.Nested(MeasureSchema, allow_none=True, load_default=None)
    reference_interval = fields.Nested(LimitsSchema, required=True)
    partitions = fields.List(fields.Nested(PartitionSchema), load_default=list)
    critical = fields.Nested(LimitsSchema, allow_none=True, load_default=None)
    # Other published critical limits, each with an id, a source and why it was not chosen; a laboratory
    # selects one with `critical_use: <id>` in its copy of the folder.
    critical_alternatives = fields.List(fields.Nested(LimitsSchema), load_default=list)
    critical_use = fields.String(validate=validate.Length(min=1, max=40))
    implausible = fields.Nested(LimitsSchema, required=True)
    bands = fields.Nested(BandsSchema, required=True)
    adjustment = fields.Nested(AdjustmentSchema, allow_none=True, load_default=None)
    albumin_adjustment = fields.Nested(LegacyAlbuminAdjustmentSchema, allow_none=True, load_default=None)

    @validates_schema
    def _canonical_listed(self, data: dict, **_: object) -> None:
        if data.get("canonical_unit") not in data.get("units", ()):
            raise ValidationError("the canonical unit must be one of `units`", "canonical_unit")


class UnitSchema(StrictSchema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=32))
    pint = fields.String(required=True, validate=validate.Length(min=1, max=80))
    ucum = fields.String(required=True, validate=validate.Length(min=1, max=32))
    kind = fields.String(required=True, validate=validate.OneOf(UNIT_KINDS))
    spellings = fields.List(fields.String(validate=validate.Length(min=1, max=32)), load_default=list)


class UnitsFileSchema(StrictSchema):
    units = fields.List(fields.Nested(UnitSchema), required=True, validate=validate.Length(min=1))


class SourceSchema(StrictSchema):
    """A source: `title` as its publisher gives it (what people are shown), `kind`, the `url` that is
    the reference, `citation` (authors, journal, year; or what the entry is), and `read`: what of it
    was read. `unconfirmed` names what could not be confirmed in it."""

    citation = fields.String(required=True, validate=validate.Length(min=1, max=300))
    url = fields.Url(allow_none=True, load_default=None, require_tld=True)
    title = fields.String(validate=validate.Length(min=3, max=300))
    kind = fields.String(validate=validate.OneOf(SOURCE_KINDS))
    read = fields.String(validate=validate.Length(min=3, max=300))
    unconfirmed = fields.String(validate=validate.Length(min=3, max=500))


class SourcesFileSchema(StrictSchema):
    sources = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=40)),
                          values=fields.Nested(SourceSchema), required=True)


class SeedSchema(StrictSchema):
    file = fields.String(required=True, validate=validate.Regexp(r"^[\w.-]+\.txt$"))
    title = fields.String(required=True)


class KnowledgeFileSchema(StrictSchema):
    format = fields.Integer(load_default=1, validate=validate.OneOf(KNOWLEDGE_FORMATS))
    version = fields.String(required=True, validate=validate.Length(min=1, max=40))
    name = fields.String(required=True)
    disclaimer = fields.String(required=True, validate=validate.Length(min=20))
    seeds = fields.List(fields.Nested(SeedSchema), load_default=list)
    # The order analytes are shown in (the form, the catalogue, CDS prefetch); others follow by file name.
    order = fields.List(fields.String(), load_default=list)


class NoteRuleSchema(StrictSchema):
    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9]+(-[a-z0-9]+)*$"))
    scope = fields.String(required=True, validate=validate.OneOf(("result", "panel")))
    analyte = fields.String()
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    when = fields.Dict(required=True)
    text = fields.String(required=True, validate=validate.Length(min=10, max=1200))
    rationale = fields.String(validate=validate.Length(min=10, max=600))  # why the rule exists (format 2)
    sources = fields.List(fields.String(), required=True, validate=validate.Length(min=1))

    @validates_schema
    def _scope(self, data: dict, **_: object) -> None:
        # A result-scope note without an analyte is attached to a result of any analyte.
        if data.get("scope") == "panel" and data.get("analyte"):
            raise ValidationError("a panel note has no analyte", "analyte")


class NotesFileSchema(StrictSchema):
    notes = fields.List(fields.Nested(NoteRuleSchema), required=True)



class TermSchema(StrictSchema):
    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9_]{1,39}$"))
    label = fields.String(required=True, validate=validate.Length(min=2, max=80))


def _terms() -> fields.List:
    return fields.List(fields.Nested(TermSchema), required=True, validate=validate.Length(min=1, max=40))


class VocabularyFileSchema(StrictSchema):
    """The context terms the API accepts, with the words people are shown (format 2)."""

    sex = _terms()
    diet = _terms()
    symptoms = _terms()
    conditions = _terms()
    medications = _terms()


class DeltaRuleSchema(StrictSchema):
    """One delta-check rule of deltas.yaml (limits in the analyte's canonical unit)."""

    id = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9]+(-[a-z0-9]+)*$"))
    window_hours = fields.Float(required=True, **_positive)
    direction = fields.String(required=True, validate=validate.OneOf(("any", "rise", "fall")))
    absolute = fields.Float(allow_none=True, load_default=None, **_positive)
    percent = fields.Float(allow_none=True, load_default=None, **_positive)
    combine = fields.String(load_default="any", validate=validate.OneOf(("any", "all")))
    inclusive = fields.Boolean(required=True)
    source = _tag
    basis_sources = fields.List(fields.String(validate=validate.Length(min=1, max=40)), load_default=list)
    confirmed = fields.Boolean(required=True)
    why = fields.String(required=True, validate=validate.Length(min=20))


class HistoryLimitsSchema(StrictSchema):
    max_age_days = fields.Float(required=True, **_positive)
    trend_points = fields.Integer(required=True, validate=validate.Range(min=2, max=100))


class DeltasFileSchema(StrictSchema):
    deltas = fields.Dict(keys=fields.String(), values=fields.List(fields.Nested(DeltaRuleSchema)), load_default=dict)
    history = fields.Nested(HistoryLimitsSchema, required=True)

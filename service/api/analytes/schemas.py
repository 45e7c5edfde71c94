"""Response schema of GET /v1/analytes (documentation only)."""
from __future__ import annotations

from marshmallow import Schema, fields

from ..interpretations.schemas import CitationSchema


class LimitsSchema(Schema):
    low = fields.Float(required=True, allow_none=True)
    high = fields.Float(required=True, allow_none=True)
    sources = fields.List(fields.String(), required=True)
    citations = fields.List(fields.Nested(CitationSchema), required=True)


class BoundedLimitsSchema(LimitsSchema):
    """Critical or implausible limits: whether a value equal to each limit is beyond it, as the source says."""

    low_inclusive = fields.Boolean(required=True)
    high_inclusive = fields.Boolean(required=True)
    id = fields.String(required=True, allow_none=True)
    why = fields.String(required=True, allow_none=True, metadata={"description": "Why these limits were chosen."})


class PartitionSchema(Schema):
    age_min = fields.Float(required=True, allow_none=True)
    age_max = fields.Float(required=True, allow_none=True)
    sex = fields.String(required=True, allow_none=True)
    reference_interval = fields.Nested(LimitsSchema, required=True)


class LoincSchema(Schema):
    code = fields.String(required=True)
    display = fields.String(required=True)
    property = fields.String(required=True)
    specimen = fields.String(required=True)


class UnitSchema(Schema):
    id = fields.String(required=True)
    ucum = fields.String(required=True)
    kind = fields.String(required=True)
    spellings = fields.List(fields.String(), required=True)
    factor_to_canonical = fields.Float(required=True)


class AnalyteSchema(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    aliases = fields.List(fields.String(), required=True)
    loinc = fields.List(fields.Nested(LoincSchema), required=True)
    canonical_unit = fields.String(required=True)
    units = fields.List(fields.Nested(UnitSchema), required=True)
    molar_mass_g_per_mol = fields.Float(required=True, allow_none=True)
    valence = fields.Float(required=True, allow_none=True)
    reference_interval = fields.Nested(LimitsSchema, required=True)
    partitions = fields.List(fields.Nested(PartitionSchema), required=True)
    critical = fields.Nested(BoundedLimitsSchema, required=True, allow_none=True)
    critical_alternatives = fields.List(fields.Nested(BoundedLimitsSchema), required=True, metadata={
        "description": "Other published critical limits, not applied; a laboratory selects one with `critical_use`."})
    implausible = fields.Nested(BoundedLimitsSchema, required=True)
    bands = fields.List(fields.String(), required=True)
    sources = fields.List(fields.String(), required=True)


class CatalogueSchema(Schema):
    knowledge_version = fields.String(required=True)
    analytes = fields.List(fields.Nested(AnalyteSchema), required=True)

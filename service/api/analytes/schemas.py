"""Response schema of GET /v1/analytes (documentation only)."""
from __future__ import annotations

from marshmallow import Schema, fields


class LimitsSchema(Schema):
    low = fields.Float(required=True, allow_none=True)
    high = fields.Float(required=True, allow_none=True)
    sources = fields.List(fields.String(), required=True)


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
    critical = fields.Nested(LimitsSchema, required=True, allow_none=True)
    implausible = fields.Nested(LimitsSchema, required=True)
    bands = fields.List(fields.String(), required=True)
    sources = fields.List(fields.String(), required=True)


class CatalogueSchema(Schema):
    knowledge_version = fields.String(required=True)
    analytes = fields.List(fields.Nested(AnalyteSchema), required=True)

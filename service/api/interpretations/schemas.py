"""Response schemas of /v1/interpretations: they document the contract, they do not dump."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from ...core.vocabulary import COMPARATORS, FLAGS, SEVERITIES
from ...http.problem_docs import ProblemSchema


class CitationSchema(Schema):
    title = fields.String(required=True, metadata={"description": "The source's title, as its publisher gives it."})
    reference = fields.String(required=True, metadata={"description": "Where to find it: a URL or a seed file name."})
    kind = fields.String(required=True, metadata={
        "description": "laboratory_catalogue, guideline, textbook, peer_reviewed, regulator, standard, terminology, "
                       "consumer (a consumer text, one of the seed documents), engineering, or laboratory."})


class NoteSchema(Schema):
    id = fields.String(required=True)
    severity = fields.String(required=True, validate=validate.OneOf(SEVERITIES))
    text = fields.String(required=True)
    sources = fields.List(fields.String(), required=True,
                          metadata={"description": "Seed document file names or URLs the note rests on."})
    citations = fields.List(fields.Nested(CitationSchema), required=True,
                            metadata={"description": "The same sources, in order, with their titles."})


class CanonicalRangeSchema(Schema):
    low = fields.Float(required=True, allow_none=True)
    high = fields.Float(required=True, allow_none=True)
    unit = fields.String(required=True)


class RangeUsedSchema(Schema):
    low = fields.Float(required=True, allow_none=True, metadata={"description": "In the caller's unit."})
    high = fields.Float(required=True, allow_none=True)
    unit = fields.String(required=True)
    canonical = fields.Nested(CanonicalRangeSchema, required=True)
    origin = fields.String(required=True, validate=validate.OneOf(("default", "partition", "laboratory")))
    source = fields.String(required=True)
    citations = fields.List(fields.Nested(CitationSchema), required=True)
    text = fields.String(required=True, allow_none=True, metadata={
        "description": "The laboratory's own wording of its interval (`reference_range.text` of the request), "
                       "echoed when that interval is the one applied; otherwise null."})


class NormalizedSchema(Schema):
    value = fields.Float(required=True)
    unit = fields.String(required=True)
    comparator = fields.String(required=True, allow_none=True, validate=validate.OneOf(COMPARATORS))


def _value_field() -> fields.Field:
    return fields.Raw(required=True, metadata={"oneOf": [{"type": "number"}, {"type": "string"}]})


class PreviousSchema(Schema):
    value = fields.Float(required=True, metadata={"description": "In the analyte's canonical unit."})
    unit = fields.String(required=True)
    comparator = fields.String(required=True, allow_none=True, validate=validate.OneOf(COMPARATORS))
    collected_at = fields.String(required=True, metadata={"format": "date-time"})


class DeltaSchema(Schema):
    previous = fields.Nested(PreviousSchema, required=True, metadata={
        "description": "The newest earlier result of the analyte (history within the look-back)."})
    change = fields.Float(required=True, allow_none=True, metadata={
        "description": "This result minus the previous one, canonical unit; null when either is censored."})
    change_percent = fields.Float(required=True, allow_none=True, metadata={
        "description": "The change relative to the previous value; null when it cannot be computed."})
    hours = fields.Float(required=True, metadata={"description": "From the previous collection to this one."})
    significant = fields.Boolean(required=True, metadata={
        "description": "Beyond the delta-check limit of `rule` (reference_ranges/deltas.yaml)."})
    rule = fields.String(required=True, allow_none=True, metadata={
        "description": "The delta rule that judged the change; null when none applies (beyond every window, "
                       "a direction no rule checks, a censored value)."})
    source = fields.String(required=True, allow_none=True, metadata={"description": "The rule's source tag."})
    citations = fields.List(fields.Nested(CitationSchema), required=True)


class TrendPointSchema(Schema):
    collected_at = fields.String(required=True, metadata={"format": "date-time"})
    value = fields.Float(required=True, metadata={"description": "In the analyte's canonical unit."})
    comparator = fields.String(required=True, allow_none=True, validate=validate.OneOf(COMPARATORS))


class ResultReportSchema(Schema):
    id = fields.String(required=True)
    analyte = fields.String(required=True)
    loinc = fields.String(required=True)
    value = _value_field()
    comparator = fields.String(required=True, allow_none=True, validate=validate.OneOf(COMPARATORS))
    unit = fields.String(required=True)
    normalized = fields.Nested(NormalizedSchema, required=True)
    band = fields.String(required=True)
    flag = fields.String(required=True, allow_none=True, validate=validate.OneOf(FLAGS))
    critical = fields.Boolean(required=True, metadata={
        "description": "Beyond a critical limit: needs prompt clinician attention, whatever else is said."})
    implausible = fields.Boolean(required=True, metadata={
        "description": "Beyond the plausibility limits: verify the specimen, unit and entry before acting. "
                       "It never replaces a critical alarm."})
    reference_range = fields.Nested(RangeUsedSchema, required=True)
    notes = fields.List(fields.Nested(NoteSchema), required=True)
    delta = fields.Nested(DeltaSchema, required=True, allow_none=True, metadata={
        "description": "The change from the newest earlier result of this analyte in `history`; null when "
                       "there is none."})
    trend = fields.List(fields.Nested(TrendPointSchema), required=True, metadata={
        "description": "This analyte's earlier results and this one, oldest first, at most the knowledge's "
                       "`trend_points` newest (10 by default); empty without an earlier result."})


class DerivedValueSchema(Schema):
    id = fields.String(required=True, metadata={"description": "e.g. albumin_adjusted_calcium."})
    value = fields.Float(required=True)
    unit = fields.String(required=True)
    analyte = fields.String(required=True, metadata={"description": "The analyte it estimates."})
    band = fields.String(required=True, metadata={
        "description": "Against the interval applied to that analyte's result; never critical."})
    flag = fields.String(required=True, allow_none=True, validate=validate.OneOf(FLAGS))
    inputs = fields.List(fields.String(), required=True, metadata={"description": "Ids of the results used."})


class ReportSchema(Schema):
    results = fields.List(fields.Nested(ResultReportSchema), required=True)
    notes = fields.List(fields.Nested(NoteSchema), required=True)
    derived = fields.List(fields.Nested(DerivedValueSchema), required=True, metadata={
        "description": "Values computed from several results of the panel, each classified."})
    knowledge_version = fields.String(required=True)
    disclaimer = fields.String(required=True)



class PanelOutcomeSchema(Schema):
    index = fields.Integer(required=True, metadata={"description": "The panel's position in the request."})
    status = fields.Integer(required=True, validate=validate.OneOf((200, 422)))
    report = fields.Nested(ReportSchema, metadata={"description": "When status is 200."})
    problem = fields.Nested(ProblemSchema, metadata={"description": "When status is 422."})


class BatchReportSchema(Schema):
    results = fields.List(fields.Nested(PanelOutcomeSchema), required=True)
    knowledge_version = fields.String(required=True)
    disclaimer = fields.String(required=True)

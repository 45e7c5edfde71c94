"""The JSON panel's request schemas, built from the knowledge (its enums) and the limits; marshmallow
checks shape here, the core checks content (service/core/values.py, interpret.py)."""
from __future__ import annotations


from marshmallow import Schema, ValidationError, fields, validate

from ..core.knowledge import Knowledge
from ..core.strict import StrictSchema
from ..core.values import CENSORED_PATTERN, MAX_VALUE
from ..core.vocabulary import COMPARATORS, Vocabulary
from .fields import NumberOrCensored, Rfc3339, StrictBoolean, StrictFloat, Text



def _no_repeats(items: list[str]) -> None:
    if len(set(items)) != len(items):
        raise ValidationError("Items must be unique.")


def _unique_list(choices: tuple[str, ...], description: str) -> fields.List:
    return fields.List(fields.String(validate=validate.OneOf(choices)),
                       validate=[validate.Length(max=len(choices)), _no_repeats],
                       load_default=list, metadata={"description": description, "uniqueItems": True})


class SpecimenSchema(StrictSchema):
    hemolyzed = StrictBoolean(load_default=False, metadata={"description": "The laboratory reported hemolysis."})


def _terms(vocabulary: Vocabulary, kind: str) -> str:
    return "; ".join(f"`{t.id}`: {t.label}" for t in vocabulary.terms[kind])


def _context_schemas(v: Vocabulary) -> tuple[type[Schema], type[Schema]]:
    """Patient and context, with the enums and their words from the knowledge's vocabulary."""

    class PatientSchema(StrictSchema):
        age_years = StrictFloat(validate=validate.Range(min=0, max=130), metadata={"description": "Age in years."})
        sex = fields.String(validate=validate.OneOf(v.ids("sex")), metadata={"description": _terms(v, "sex")})

    class ContextSchema(StrictSchema):
        b12_injection_at = Rfc3339(metadata={"description": "Last vitamin B12 injection (RFC 3339)."})
        b12_therapy_started_at = Rfc3339(metadata={
            "description": "When replacement for a B12 deficiency began (RFC 3339): the first days of treatment "
                           "are when potassium may fall."})
        medications = _unique_list(v.ids("medications"), "Current medications, by class: " + _terms(v, "medications"))
        diet = fields.String(validate=validate.OneOf(v.ids("diet")), metadata={"description": _terms(v, "diet")})
        symptoms = _unique_list(v.ids("symptoms"), "Symptoms reported: " + _terms(v, "symptoms"))
        conditions = _unique_list(v.ids("conditions"), "Known conditions: " + _terms(v, "conditions"))
        specimen = fields.Nested(SpecimenSchema)

    PatientSchema.__name__, ContextSchema.__name__ = "Patient", "Context"
    return PatientSchema, ContextSchema


def make_schemas(kb: Knowledge, max_results: int, max_string: int, max_history: int = 100) -> dict[str, type[Schema]]:
    """Build the request schema for this knowledge and these limits (enums come from the knowledge)."""
    PatientSchema, ContextSchema = _context_schemas(kb.vocabulary)
    names = sorted({n for a in kb.analytes.values() for n in (a.id, *a.aliases)})
    codes = sorted(kb.by_loinc)
    units = sorted({s for u in kb.units.units.values() for s in (u.id, u.ucum, *u.spellings)})
    value_doc = {"oneOf": [{"type": "number", "minimum": 0, "maximum": MAX_VALUE},
                           {"type": "string", "pattern": CENSORED_PATTERN, "maxLength": 40}],
                 "description": "The result: a number, or a censored value such as \"<50\" or \">=2000\"."}

    class LabRangeSchema(StrictSchema):
        low = StrictFloat(validate=validate.Range(min=0, max=MAX_VALUE))
        high = StrictFloat(validate=validate.Range(min=0, max=MAX_VALUE))
        unit = Text(validate=validate.Length(min=1, max=32), metadata={
            "description": "Unit of low and high; defaults to the result's unit.", "examples": units[:3]})
        text = Text(validate=validate.Length(max=max_string), metadata={
            "description": "The laboratory's wording of its interval, echoed in the report beside the limits used."})

    class ResultSchema(StrictSchema):
        id = Text(validate=validate.Length(min=1, max=64),
                  metadata={"description": "Caller's id, echoed back; generated when absent. Unique per panel."})
        # Analyte, code and unit are checked against the knowledge's allowlists by the core
        # (service/core/identify.py): any other string, however long or odd, is refused there by name.
        analyte = fields.String(metadata={
            "description": "Analyte id or alias (case-insensitive). Give this or `code`.",
            "x-known-values": names})
        code = fields.String(metadata={"description": "LOINC code. Give this or `analyte`.", "x-known-values": codes})
        value = NumberOrCensored(required=True, metadata=value_doc)
        comparator = fields.String(validate=validate.OneOf(COMPARATORS))
        unit = fields.String(required=True, metadata={
            "description": "Unit, in a common spelling or as a UCUM code (case-insensitive).",
            "x-known-values": units})
        reference_range = fields.Nested(LabRangeSchema, metadata={
            "description": "The laboratory's own reference interval; replaces the default normal limits."})

    class HistoryItemSchema(StrictSchema):
        analyte = fields.String(metadata={"description": "Analyte id or alias, as in a result. Give this or `code`.",
                                          "x-known-values": names})
        code = fields.String(metadata={"description": "LOINC code. Give this or `analyte`.", "x-known-values": codes})
        value = NumberOrCensored(required=True, metadata=value_doc)  # a censored one carries its sign: "<50"
        unit = fields.String(required=True, metadata={"description": "Any unit accepted for the analyte.",
                                                      "x-known-values": units})
        collected_at = Rfc3339(required=True, metadata={
            "description": "When the earlier specimen was collected (RFC 3339 with an offset), before the panel's "
                           "`collected_at`."})

    class PanelSchema(StrictSchema):
        patient = fields.Nested(PatientSchema)
        context = fields.Nested(ContextSchema)
        collected_at = Rfc3339(metadata={"description": "Specimen collection time (RFC 3339)."})
        # Nested(many=True) rather than List(Nested): one load of the result schema for the whole list.
        results = fields.Nested(ResultSchema, many=True, required=True, validate=validate.Length(min=1, max=max_results))
        history = fields.Nested(HistoryItemSchema, many=True, validate=validate.Length(max=max_history), metadata={
            "description": "The patient's earlier results, in any order: each result is compared with the newest "
                           "earlier one of its analyte (`delta`); earlier results of analytes not in the panel are "
                           "checked and otherwise unused. Needs the panel's `collected_at`."})

    LabRangeSchema.__name__, ResultSchema.__name__, PanelSchema.__name__ = "LabRange", "ResultInput", "Panel"
    HistoryItemSchema.__name__ = "HistoryItem"
    return {"LabRange": LabRangeSchema, "ResultInput": ResultSchema, "HistoryItem": HistoryItemSchema,
            "Panel": PanelSchema}

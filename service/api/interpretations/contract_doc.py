"""Refines the generated contract so that valid-by-schema means accepted.

marshmallow validates structure; which unit goes with which analyte (and LOINC code) is knowledge.
This writes that knowledge into the OpenAPI document as one object schema per analyte and way of
naming it (by name, or by a LOINC code of one property), so integration teams and schemathesis see
exactly the combinations the service accepts. Two rules stay outside JSON Schema and are documented
in the text: result ids must be unique within a panel, and a laboratory range's low must not exceed
its high.
"""
from __future__ import annotations

import copy
from typing import Any

from ...core.knowledge import Analyte, Knowledge
from ...core.units import property_of_kind

def _spellings(kb: Knowledge, unit_ids: list[str]) -> list[str]:
    return sorted({s for u in unit_ids for s in (u, kb.units.units[u].ucum, *kb.units.units[u].spellings)})


def _lab_range(base: dict[str, Any], units: list[str]) -> dict[str, Any]:
    schema = copy.deepcopy(base)
    schema["properties"]["unit"] = {**schema["properties"]["unit"], "enum": units}
    schema["properties"]["unit"].pop("examples", None)
    schema["anyOf"] = [{"required": ["low"]}, {"required": ["high"]}]
    schema["description"] = "The laboratory's own reference interval (low <= high), in one of the analyte's units."
    return schema


def _variants(a: Analyte, kb: Knowledge, common: dict[str, Any], lab_range_ref: str | None,
              prefix: str = "") -> dict[str, dict[str, Any]]:
    """One object schema per way of naming the analyte: by name, or by a LOINC code of one property
    (whose units are then those of that property). `lab_range_ref`: results may carry a lab range."""
    names = sorted({a.id, *a.aliases})
    extra = {} if lab_range_ref is None else {"reference_range": {"$ref": lab_range_ref}}
    out: dict[str, dict[str, Any]] = {}
    title = prefix + a.id.title().replace("_", "")
    out[f"{title}ByName"] = {
        "type": "object", "additionalProperties": False, "required": ["analyte", "value", "unit", *_required(common)],
        "description": f"{a.name}, named by id or alias.",
        "properties": {**common, "analyte": {"type": "string", "enum": names},
                       "unit": {"type": "string", "enum": _spellings(kb, list(a.units))}, **extra},
    }
    for prop in sorted({c.property for c in a.loinc}):
        units = [u for u in a.units if property_of_kind(kb.units.units[u].kind) == prop]
        if not units:
            continue
        out[f"{title}By{prop}Code"] = {
            "type": "object", "additionalProperties": False, "required": ["code", "value", "unit", *_required(common)],
            "description": f"{a.name}, named by a LOINC code of property {prop} (the unit must match it).",
            "properties": {**common, "analyte": {"type": "string", "enum": names},
                           "code": {"type": "string", "enum": [c.code for c in a.loinc if c.property == prop]},
                           "unit": {"type": "string", "enum": _spellings(kb, units)}, **extra},
        }
    for schema in out.values():
        # A comparator goes with a numeric value; a censored string carries its own sign.
        schema["if"] = {"required": ["comparator"]}
        schema["then"] = {"properties": {"value": {"type": "number"}}}
    return out


def _required(common: dict[str, Any]) -> list[str]:
    return ["collected_at"] if "collected_at" in common else []


def refine_contract(spec: dict[str, Any], kb: Knowledge) -> dict[str, Any]:
    """Replace the generic ResultInput with per-analyte variants (see the module docstring)."""
    spec = copy.deepcopy(spec)
    schemas = spec["components"]["schemas"]
    base, base_range, earlier = schemas.pop("ResultInput"), schemas.pop("LabRange"), schemas.pop("HistoryItem")
    named = ("analyte", "code", "unit", "reference_range")
    common = {k: v for k, v in base["properties"].items() if k not in named}
    earlier_common = {k: v for k, v in earlier["properties"].items() if k not in named}
    variants: dict[str, dict[str, Any]] = {}
    history: dict[str, dict[str, Any]] = {}
    for a in kb.analytes.values():
        range_name = f"LabRange{a.id.title().replace('_', '')}"
        schemas[range_name] = _lab_range(base_range, _spellings(kb, list(a.units)))
        variants.update(_variants(a, kb, common, f"#/components/schemas/{range_name}"))
        history.update(_variants(a, kb, earlier_common, None, prefix="Earlier"))
    schemas.update(variants)
    schemas.update(history)
    schemas["ResultInput"] = {
        "description": "One result. Name the analyte by `analyte` (id or alias) or by `code` (LOINC), with one "
                       "of that analyte's units. Ids must be unique within the panel.",
        "anyOf": [{"$ref": f"#/components/schemas/{n}"} for n in variants],
    }
    # An earlier result is compared in time with the panel, so history needs the panel's collection time.
    schemas["Panel"]["if"] = {"required": ["history"], "properties": {"history": {"minItems": 1}}}
    schemas["Panel"]["then"] = {"required": ["collected_at"]}
    schemas["HistoryItem"] = {
        "description": "An earlier result of the same patient: an analyte named as in a result, its value and "
                       "unit, and `collected_at`, which must be before the panel's `collected_at`. Two items of "
                       "one analyte at the same moment must agree.",
        "anyOf": [{"$ref": f"#/components/schemas/{n}"} for n in history],
    }
    return spec

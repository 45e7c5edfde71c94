"""GET /v1/analytes: every analyte with its names, codes, units, limits, bands and sources."""
from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue

from ...core.knowledge import Analyte, Knowledge, Limits
from ...http.contract import SECURED, ApiDoc, response
from ...http.door import Door
from ...http.writer import json_response
from .schemas import CatalogueSchema


def _limits(lim: Limits | None, kb: Knowledge, boundaries: bool = False) -> dict[str, Any] | None:
    if lim is None:
        return None
    cites = kb.citations((lim.low_source, lim.high_source))
    out: dict[str, Any] = {"low": lim.low, "high": lim.high, "sources": [c.reference for c in cites],
                           "citations": [c.to_dict() for c in cites]}
    if boundaries:  # critical and implausible limits: is a value equal to the limit beyond it?
        out.update(low_inclusive=lim.low_inclusive, high_inclusive=lim.high_inclusive, id=lim.id, why=lim.why)
    return out


def describe(a: Analyte, kb: Knowledge) -> dict[str, Any]:
    """The public description of one analyte (also used by the clinician form)."""
    return {
        "id": a.id, "name": a.name, "aliases": list(a.aliases),
        "loinc": [{"code": c.code, "display": c.display, "property": c.property, "specimen": c.specimen}
                  for c in a.loinc],
        "canonical_unit": a.canonical_unit,
        "units": [{"id": u, "ucum": kb.units.units[u].ucum, "kind": kb.units.units[u].kind,
                   "spellings": list(dict.fromkeys((u, kb.units.units[u].ucum, *kb.units.units[u].spellings))),
                   "factor_to_canonical": a.factors[u]} for u in a.units],
        "molar_mass_g_per_mol": a.molar_mass, "valence": a.valence,
        "reference_interval": _limits(a.reference_interval, kb),
        "partitions": [{"age_min": p.age_min, "age_max": p.age_max, "sex": p.sex,
                        "reference_interval": _limits(p.reference_interval, kb)} for p in a.partitions],
        "critical": _limits(a.critical, kb, boundaries=True),
        "critical_alternatives": [_limits(alt, kb, boundaries=True) for alt in a.critical_alternatives],
        "implausible": _limits(a.implausible, kb, boundaries=True),
        "bands": list(a.bands.order()),
        "sources": sorted({kb.sources[t].reference for t in a.sources.values()}),
    }


def make_door(kb: Knowledge) -> Door:
    bp = Blueprint("analytes", __name__, url_prefix="/v1")
    doc = ApiDoc("analytes", "The analytes and the knowledge behind them.", "/v1")
    catalogue = {"knowledge_version": kb.version, "analytes": [describe(a, kb) for a in kb.analytes.values()]}

    @bp.get("/analytes")
    @doc.operation("/analytes", "get", (401, 500), operationId="listAnalytes", security=SECURED,
                   responses={"200": response("The analyte catalogue.", CatalogueSchema)})
    def list_analytes() -> ResponseReturnValue:
        """List the analytes, their accepted units, reference limits and sources."""
        return json_response(catalogue)

    return Door(bp, doc)

"""Medication classes of the clinical context, recognised by RxNorm ingredient code or name.

Loaded from reference_ranges/medications.yaml. The FHIR front door uses it to turn a
MedicationAdministration or MedicationStatement into the context words the note rules use
(metformin, proton_pump_inhibitor, diuretic, statin; B12 as an injection or a supplement).
"""
from __future__ import annotations

import re
from types import MappingProxyType
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable, Mapping

from marshmallow import ValidationError, fields, validate, validates_schema

from .errors import KnowledgeError
from .vocabulary import Vocabulary
from .strict import StrictSchema

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
SNOMED = "http://snomed.info/sct"
B12 = "b12"  # the class of B12 products: an injection or a supplement, by route
ROUTE_KINDS = ("injection", "enteral")  # injection: IM, SC, IV; enteral: oral, sublingual, nasal


class IngredientSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(r"^[a-z][a-z0-9 ]{2,40}$"))
    rxcui = fields.String(validate=validate.Regexp(r"^[0-9]{1,10}$"))
    drug_class = fields.String(required=True, data_key="class", validate=validate.Length(min=2, max=40))
    source = fields.String(validate=validate.Length(min=1, max=40))

    @validates_schema
    def _code_has_source(self, data: dict, **_: object) -> None:
        if ("rxcui" in data) != ("source" in data):
            raise ValidationError("an rxcui needs a source, and a source belongs to an rxcui", "source")


class RouteSchema(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=2, max=40))
    snomed = fields.String(required=True, validate=validate.Regexp(r"^[0-9]{6,18}$"))
    kind = fields.String(required=True, validate=validate.OneOf(ROUTE_KINDS))
    source = fields.String(required=True, validate=validate.Length(min=1, max=40))


class MedicationsFileSchema(StrictSchema):
    ingredients = fields.List(fields.Nested(IngredientSchema), required=True, validate=validate.Length(min=1))
    routes = fields.List(fields.Nested(RouteSchema), required=True, validate=validate.Length(min=1))


@dataclass(frozen=True)
class Ingredient:
    name: str
    rxcui: str | None
    drug_class: str
    source: str | None


@dataclass(frozen=True)
class MedicationCatalogue:
    ingredients: tuple[Ingredient, ...]
    by_rxcui: Mapping[str, Ingredient]
    routes: Mapping[str, str]  # SNOMED code -> injection | enteral
    names: re.Pattern[str]  # every ingredient name as a whole word
    by_name: Mapping[str, Ingredient]

    def members(self, drug_class: str) -> tuple[str, ...]:
        """The ingredient names of a class, as the form shows them beside its label."""
        return tuple(i.name for i in self.ingredients if i.drug_class == drug_class)

    def recognise(self, codings: Iterable[Mapping[str, Any]], texts: Iterable[str]) -> Ingredient | None:
        """The ingredient named by an RxNorm ingredient code, else by its name as a word in the text."""
        for c in codings:
            if c.get("system") == RXNORM and str(c.get("code")) in self.by_rxcui:
                return self.by_rxcui[str(c.get("code"))]
        found = self.names.search(" ".join(str(t) for t in texts if t).casefold())
        return self.by_name[found.group(0)] if found else None

    def route_kind(self, codings: Iterable[Mapping[str, Any]]) -> str | None:
        return next((self.routes[str(c.get("code"))] for c in codings
                     if c.get("system") == SNOMED and str(c.get("code")) in self.routes), None)


def build_catalogue(raw: dict[str, Any], source_tags: Iterable[str], vocabulary: Vocabulary) -> MedicationCatalogue:
    """Cross-checks: every class is a medication of the vocabulary (or b12), every source tag exists,
    no code or name appears twice."""
    tags = set(source_tags)
    classes = {B12, *(m for m in vocabulary.ids("medications") if m != "b12_supplement")}
    by_rxcui: dict[str, Ingredient] = {}
    names: set[str] = set()
    ingredients = []
    for i, r in enumerate(raw["ingredients"]):
        if r["drug_class"] not in classes:
            raise KnowledgeError("medications.yaml", f"ingredients[{i}].class",
                                 f"{r['drug_class']!r} is not a medication of vocabulary.yaml; known: {sorted(classes)}")
        if r.get("source") is not None and r["source"] not in tags:
            raise KnowledgeError("medications.yaml", f"ingredients[{i}].source", f"{r['source']!r} is not in sources.yaml")
        if r.get("rxcui") in by_rxcui or r["name"] in names:
            raise KnowledgeError("medications.yaml", f"ingredients[{i}]", f"{r['name']} is listed twice")
        ing = Ingredient(r["name"], r.get("rxcui"), r["drug_class"], r.get("source"))
        ingredients.append(ing)
        names.add(ing.name)
        if ing.rxcui:
            by_rxcui[ing.rxcui] = ing
    routes: dict[str, str] = {}
    for i, r in enumerate(raw["routes"]):
        if r["source"] not in tags:
            raise KnowledgeError("medications.yaml", f"routes[{i}].source", f"{r['source']!r} is not in sources.yaml")
        routes[r["snomed"]] = r["kind"]
    return MedicationCatalogue(tuple(ingredients), MappingProxyType(by_rxcui), MappingProxyType(routes),
                               _name_pattern([i.name for i in ingredients]),
                               MappingProxyType({i.name: i for i in ingredients}))


def _name_pattern(names: list[str]) -> re.Pattern[str]:
    """Every ingredient name as a whole word; longer names first, so "vitamin b12" beats a shorter one."""
    ordered = sorted(names, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(n) for n in ordered) + r")\b")

"""Closed vocabularies of the clinical context: the words the API accepts and the note rules use.

The terms and their labels are knowledge (reference_ranges/vocabulary.yaml), so the JSON schema, the
form, FHIR and CDS cards all show the same words. Comparators and flags are protocol, not knowledge.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Mapping

COMPARATORS = ("<", "<=", ">", ">=")
FLAGS = ("LL", "L", "N", "H", "HH")
SEVERITIES = ("info", "warning", "critical")  # of a note; a CDS card's indicator is its note's
# Where a context term is written in the API's panel: the vocabulary's lists by name.
KINDS = ("sex", "diet", "symptoms", "conditions", "medications")

# The vocabulary of knowledge format 1 (2026.11.0), whose folders have no vocabulary.yaml: kept so that
# an older folder still loads (for `labinterp diff-knowledge`, or a laboratory not yet migrated).
LEGACY_TERMS: Mapping[str, tuple[str, ...]] = {
    "sex": ("female", "male", "other", "unknown"),
    "diet": ("omnivore", "vegetarian", "vegan"),
    "symptoms": ("muscle_cramps", "muscle_spasms", "twitching", "tingling_numbness", "weakness", "fatigue",
                 "balance_problems"),
    "conditions": ("malabsorption", "pernicious_anemia", "crohns_disease", "celiac_disease", "gastric_surgery",
                   "liver_disease", "kidney_disease", "diabetes"),
    "medications": ("metformin", "proton_pump_inhibitor", "diuretic", "statin", "b12_supplement"),
}


@dataclass(frozen=True)
class Term:
    id: str
    label: str


@dataclass(frozen=True)
class Vocabulary:
    """Each kind's terms, in the order the form shows them."""

    terms: Mapping[str, tuple[Term, ...]]

    def ids(self, kind: str) -> tuple[str, ...]:
        return tuple(t.id for t in self.terms[kind])

    def label(self, kind: str, term: str) -> str:
        return next((t.label for t in self.terms[kind] if t.id == term), term.replace("_", " "))

    @classmethod
    def legacy(cls) -> Vocabulary:
        return cls({kind: tuple(Term(t, t.replace("_", " ").capitalize()) for t in ids)
                    for kind, ids in LEGACY_TERMS.items()})

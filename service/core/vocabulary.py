"""Closed vocabularies of the clinical context: the API's enums and the note rules' words."""
from __future__ import annotations

SEXES = ("female", "male", "other", "unknown")
MEDICATIONS = ("metformin", "proton_pump_inhibitor", "diuretic", "statin", "b12_supplement")
DIETS = ("omnivore", "vegetarian", "vegan")
SYMPTOMS = (
    "muscle_cramps", "muscle_spasms", "twitching", "tingling_numbness", "weakness", "fatigue",
    "balance_problems",
)
CONDITIONS = (
    "malabsorption", "pernicious_anemia", "crohns_disease", "celiac_disease", "gastric_surgery",
    "liver_disease", "kidney_disease", "diabetes",
)
COMPARATORS = ("<", "<=", ">", ">=")
FLAGS = ("LL", "L", "N", "H", "HH")

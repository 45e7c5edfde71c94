"""The domain core: analytes, units, reference ranges, classification and notes. No Flask here.

    from service.core import interpret_panel, PanelInput, ResultInput
    report = interpret_panel(PanelInput(results=(ResultInput(value=180, unit="pg/mL", analyte="b12"),)))
"""
from .errors import InputError, KnowledgeError, Problem
from .interpret import default_knowledge, interpret_panel
from .knowledge import Analyte, Knowledge, load_knowledge
from .model import Context, LabRange, PanelInput, Patient, ResultInput
from .report import Note, PanelReport, ResultReport

__all__ = [
    "Analyte", "Context", "InputError", "Knowledge", "KnowledgeError", "LabRange", "Note", "PanelInput",
    "PanelReport", "Patient", "Problem", "ResultInput", "ResultReport", "default_knowledge",
    "interpret_panel", "load_knowledge",
]

"""docs/clinical-safety.md stays true: its rule table is the one the knowledge produces, every test it
names as a control exists, and the knowledge changelog describes the version in use."""
from __future__ import annotations

import ast
import re

from service.core import load_knowledge
from service.core.ruletable import END, START, describe, rule_table

from .conftest import ROOT

DOC = (ROOT / "docs" / "clinical-safety.md").read_text(encoding="utf-8")


def test_the_rule_table_is_the_one_the_knowledge_produces():
    kb = load_knowledge(ROOT / "reference_ranges")
    section = DOC[DOC.index(START):DOC.index(END) + len(END)]
    assert section == rule_table(kb), "docs/clinical-safety.md is stale: run `make rule-table`"
    for rule in kb.notes:  # and it says what each rule is
        assert f"| `{rule.id}` |" in section and rule.rationale and describe(rule.when) in section.replace("\\|", "|")


def test_every_test_named_as_a_control_exists():
    named = set(re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", DOC))
    assert len(named) >= 20
    for path, name in named:
        tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
        functions = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert name in functions, f"{path}::{name} is named in docs/clinical-safety.md but does not exist"


def test_every_clinical_case_named_exists():
    from .clinical_cases.check import load_cases

    ids = {c["id"] for c in load_cases()}
    named = {m for m in re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+){3,})`", DOC) if not m.startswith(("b12-", "potassium-low-cramps"))}
    cases = {m for m in named if m not in {r.id for r in load_knowledge(ROOT / "reference_ranges").notes}}
    assert cases and cases <= ids, sorted(cases - ids)


def test_the_changelog_names_the_current_version():
    kb = load_knowledge(ROOT / "reference_ranges")
    changelog = (ROOT / "reference_ranges" / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(kb.version)}\b", changelog, re.M), f"CHANGELOG.md has no entry for {kb.version}"

"""The clinical cases of tests/clinical_cases/: each panel through the JSON API, held to what a
laboratory-medicine specialist expects (see the README there)."""
from __future__ import annotations

import re

import pytest
import yaml

from .clinical_cases.check import failures, load_cases, request_body
from .conftest import ROOT

CASES = load_cases()
SOURCES = yaml.safe_load((ROOT / "reference_ranges" / "sources.yaml").read_text(encoding="utf-8"))["sources"]
SEEDS = {s["file"] for s in yaml.safe_load((ROOT / "reference_ranges" / "knowledge.yaml").read_text())["seeds"]}


def test_there_are_enough_cases_and_each_is_reviewable():
    assert len(CASES) >= 80
    ids = [c["id"] for c in CASES]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    for c in CASES:
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", c["id"]), c["id"]
        assert set(c) <= {"id", "rationale", "source", "panel", "expect", "file"}, c["id"]
        assert isinstance(c["rationale"], str) and 20 <= len(c["rationale"]) <= 200 and "\n" not in c["rationale"], c["id"]
        assert c["source"] in SOURCES or c["source"] in SEEDS, f"{c['id']}: unknown source {c['source']}"
        assert c["expect"], c["id"]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_clinical_case(case, client):
    resp = client.post("/v1/interpretations", json=request_body(case))
    assert resp.status_code == 200, resp.get_json()
    problems = failures(case, resp.get_json())
    assert not problems, "\n".join(problems)


def test_the_checker_sees_a_wrong_answer():
    """A case is only as good as its checker: a report that contradicts a case must fail it."""
    case = next(c for c in CASES if c["id"] == "potassium-10-5-stays-critical-and-asks-to-verify")
    wrong = {"results": [{"id": "k", "band": "implausible", "flag": None, "critical": False, "notes": []}],
             "notes": [], "derived": []}
    assert len(failures(case, wrong)) >= 4

"""Property-based contract tests: schemathesis drives every operation of openapi.yaml, as it comes.

Once in process (WSGI) with a bounded number of examples, and once with schemathesis's own command
line against a real gunicorn, exactly as an integration team runs it: `--checks all`, no hooks, no
check excluded, the API key as a header. The only failures allowed are the rules JSON Schema cannot
state, documented in the contract: a laboratory range's low above its high, a result id used twice in
one panel, an earlier result not before the panel's collection, and two earlier results of one analyte
at one moment with different values (each answered 422, naming the field).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from .conftest import AUTH, ROOT, make_app
from .servers import free_port, start_gunicorn, stop, wait_ready

MAX_EXAMPLES = int(os.environ.get("LABINTERP_CONTRACT_EXAMPLES", "40"))
CROSS_FIELD_MESSAGES = ("is above high", "duplicate id", "must be before the panel's collected_at",
                        "at the same moment with another value")

APP = make_app()
# The app serves the committed contract (test_contract_spec.py holds the two equal). The key goes in
# as configuration, as --header does on the command line, so the auth checks know it is the key.
schema = schemathesis.openapi.from_wsgi("/openapi.yaml", APP)
schema.config.update(headers=AUTH)


def only_cross_field(status: int, body: Any) -> bool:
    """A 422 whose every problem is one of the two documented cross-field rules."""
    if status != 422 or not isinstance(body, dict):
        return False
    errors = body.get("errors") or []
    return bool(errors) and all(any(m in e.get("message", "") for m in CROSS_FIELD_MESSAGES) for e in errors)


def positive_data_acceptance_but_cross_field(ctx: Any, response: Any, case: Any) -> bool | None:
    """schemathesis's positive_data_acceptance, with the one allowance this module states above."""
    try:
        return positive_data_acceptance(ctx, response, case)
    except AssertionError:
        try:
            body = json.loads(response.content)
        except ValueError:
            body = None
        if only_cross_field(response.status_code, body):
            return None
        raise


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_contract_in_process(case):
    case.call_and_validate(excluded_checks=[positive_data_acceptance],
                           additional_checks=[positive_data_acceptance_but_cross_field])


def _failure_blocks(report: Path) -> list[str]:
    """Each failure schemathesis reported, one text block each (junit report)."""
    blocks = []
    for failure in ET.parse(report).getroot().iter("failure"):
        blocks += [b for b in re.split(r"\n(?=\d+\. Test Case ID)", failure.text or "") if b.strip()]
    return blocks


def _allowed(block: str) -> bool:
    """An ST202 for one of the two cross-field rules (its 422 body quoted in the block)."""
    if "ST202" not in block or re.search(r"\bST(?!202)\d{3}\b", block):
        return False
    quoted = re.search(r"\[422\][^`]*`(\{.*?\})`", block, re.S)
    return bool(quoted) and only_cross_field(422, json.loads(quoted.group(1)))


@pytest.mark.server
def test_the_untouched_schemathesis_cli_against_gunicorn(tmp_path):
    port = free_port()
    proc = start_gunicorn(port, tmp_path / "gunicorn.log")
    try:
        wait_ready(port, proc)
        st = Path(sys.executable).with_name("schemathesis")
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}  # no hooks, no config
        run = subprocess.run(
            [str(st), "run", str(ROOT / "openapi.yaml"), "--url", f"http://127.0.0.1:{port}", "--checks", "all",
             "--header", f"Authorization: {AUTH['Authorization']}", "--max-examples", str(MAX_EXAMPLES),
             "--seed", "1", "--no-color", "--report", "junit", "--report-dir", str(tmp_path)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        summary = run.stdout[run.stdout.rfind("SUMMARY"):]
        print("\nschemathesis " + summary[:1500])
        report = next(tmp_path.glob("junit-*.xml"))
        blocks = _failure_blocks(report)
        refused = [b for b in blocks if not _allowed(b)]
        assert not refused, "\n\n".join(refused)[:8000]
        assert run.returncode in (0, 1) and "Tested: 11" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]
    finally:
        stop(proc)


def test_the_allowance_is_exactly_the_two_documented_rules():
    """The filter above passes only those two rules: anything else is a failure of the test."""
    low_high = {"errors": [{"pointer": "/results/0/reference_range/low", "message": "low (5) is above high (1)"}]}
    dup = {"errors": [{"pointer": "/results/1/id", "message": "duplicate id; also used by /results/0"}]}
    other = {"errors": [{"pointer": "/results/0/unit", "message": "unknown unit"}]}
    assert only_cross_field(422, low_high) and only_cross_field(422, dup)
    assert not only_cross_field(422, other) and not only_cross_field(400, low_high)
    assert not only_cross_field(422, {"errors": low_high["errors"] + other["errors"]})
    block = "1. Test Case ID: x\n- ST202 Schema-valid request rejected\n[422] Unprocessable Content:\n    `" + json.dumps(low_high) + "`"
    assert _allowed(block) and not _allowed(block.replace("ST202", "ST201"))
    assert not _allowed(block.replace(json.dumps(low_high), json.dumps(other)))

"""Property-based contract tests: schemathesis drives every operation of openapi.yaml.

In process (WSGI) with a bounded number of examples, and again with the schemathesis command line
against the real gunicorn server on loopback, as an integration team would run it. All checks run;
positive_data_acceptance is replaced by its variant in schemathesis_hooks.py (see there why).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from service.app import create_app
from service.config import Settings

from .conftest import ROOT
from .schemathesis_hooks import negative_data_rejection_or_precondition, positive_data_acceptance_within_json_schema
from .servers import free_port, start_gunicorn, stop, wait_ready

API_KEY = "contract-test-key-0123456789"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
MAX_EXAMPLES = int(os.environ.get("LABINTERP_CONTRACT_EXAMPLES", "40"))

APP = create_app(Settings(api_keys=(API_KEY,)))
# The app serves the committed contract (test_contract_spec.py holds the two equal).
schema = schemathesis.openapi.from_wsgi("/openapi.yaml", APP)


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_contract_in_process(case):
    case.call_and_validate(headers=AUTH, excluded_checks=[positive_data_acceptance, negative_data_rejection],
                           additional_checks=[positive_data_acceptance_within_json_schema,
                                              negative_data_rejection_or_precondition])


@pytest.mark.server
def test_contract_cli_against_gunicorn(tmp_path):
    port = free_port()
    proc = start_gunicorn(port, tmp_path / "gunicorn.log", {"LABINTERP_API_KEYS": API_KEY})
    try:
        wait_ready(port, proc)
        st = Path(sys.executable).with_name("schemathesis")
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.schemathesis_hooks", "PYTHONPATH": str(ROOT)}
        run = subprocess.run(
            [str(st), "run", str(ROOT / "openapi.yaml"), "--url", f"http://127.0.0.1:{port}",
             "--checks", "all", "--exclude-checks", "positive_data_acceptance,negative_data_rejection",
             "--header", f"Authorization: {AUTH['Authorization']}",
             "--max-examples", str(MAX_EXAMPLES), "--seed", "1", "--no-color",
             "--phases", "examples,coverage,fuzzing",
             "--report", "junit", "--report-dir", str(tmp_path)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        print(run.stdout[-4000:])
        assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    finally:
        stop(proc)

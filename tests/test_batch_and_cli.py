"""POST /v1/interpretations/batch and `labinterp interpret`: every panel its own answer, in order."""
from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from pathlib import Path

import pytest

from .conftest import ROOT, keyed_client, make_app

GOOD = {"results": [{"id": "k", "analyte": "k", "value": 3.1, "unit": "mmol/L"},
                    {"id": "b12", "analyte": "b12", "value": 180, "unit": "pg/mL"}]}
BAD_UNIT = {"results": [{"analyte": "k", "value": 3.1, "unit": "furlongs"}]}
NO_RESULTS = {"patient": {"age_years": 40}}
# Issue 15: history per panel; the second one's earlier result is after the panel's collection.
WITH_HISTORY = {"collected_at": "2026-11-20T08:00:00Z", "results": [{"id": "k", "analyte": "k", "value": 3.0, "unit": "mmol/L"}],
                "history": [{"analyte": "k", "value": 4.4, "unit": "mmol/L", "collected_at": "2026-11-18T08:00:00Z"}]}
BAD_HISTORY = {**WITH_HISTORY, "history": [{**WITH_HISTORY["history"][0], "collected_at": "2026-11-21T08:00:00Z"}]}
CLI = [str(Path(sys.executable).with_name("labinterp")), "interpret"]


def four_analyte_panel(i: int) -> dict:
    return {"collected_at": "2026-11-21T08:00:00Z", "context": {"b12_injection_at": "2026-11-19T08:00:00Z"},
            "results": [{"analyte": "b12", "value": 150 + i % 900, "unit": "pg/mL"},
                        {"analyte": "k", "value": 2.5 + (i % 40) / 10, "unit": "mmol/L"},
                        {"analyte": "mg", "value": 1.2 + (i % 15) / 10, "unit": "mg/dL"},
                        {"analyte": "ca", "value": 7.5 + (i % 40) / 10, "unit": "mg/dL"}]}


def test_each_panel_gets_its_own_answer_in_order(client, conform):
    panels = [GOOD, BAD_UNIT, 5, NO_RESULTS, GOOD]
    resp = client.post("/v1/interpretations/batch", json={"panels": panels})
    body = conform("post", "/v1/interpretations/batch", resp)
    assert resp.status_code == 200
    assert [(r["index"], r["status"]) for r in body["results"]] == [(0, 200), (1, 422), (2, 422), (3, 422), (4, 200)]
    single = client.post("/v1/interpretations", json=GOOD).get_json()
    assert body["results"][0]["report"] == single == body["results"][4]["report"]
    assert body["results"][1]["problem"]["errors"][0]["pointer"] == "/panels/1/results/0/unit"
    assert body["results"][2]["problem"]["errors"][0]["pointer"] == "/panels/2"
    assert body["results"][3]["problem"]["errors"][0]["pointer"] == "/panels/3/results"
    assert body["knowledge_version"] == single["knowledge_version"]


def test_a_thousand_four_analyte_panels(client):
    panels = [four_analyte_panel(i) for i in range(1000)]
    resp = client.post("/v1/interpretations/batch", json={"panels": panels})
    results = resp.get_json()["results"]
    assert resp.status_code == 200 and len(results) == 1000 and all(r["status"] == 200 for r in results)
    assert sum(len(r["report"]["results"]) for r in results) == 4000
    for i in (0, 517, 999):  # the same answer as the panel alone
        assert results[i]["report"] == client.post("/v1/interpretations", json=panels[i]).get_json()


@pytest.mark.parametrize("body, pointer", [
    ({"panels": []}, "/panels"),
    ({"panels": [GOOD] * 1001}, "/panels"),
    ({"panels": GOOD}, "/panels"),
    ({"panel": [GOOD]}, "/panel"),
    ([GOOD], ""),
])
def test_only_an_invalid_envelope_is_a_4xx(client, conform, body, pointer):
    resp = client.post("/v1/interpretations/batch", json=body)
    assert resp.status_code == 422
    assert pointer in [e["pointer"] for e in conform("post", "/v1/interpretations/batch", resp)["errors"]]


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], input=stdin, capture_output=True, text=True, cwd=ROOT, timeout=120)


def lines(out: str) -> list[dict]:
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("shape", ["panel", "batch", "array", "jsonl", "stdin"])
def test_the_command_line_gives_what_the_batch_endpoint_gives(client, tmp_path, shape):
    panels = [GOOD, BAD_UNIT, four_analyte_panel(3), WITH_HISTORY, BAD_HISTORY] if shape != "panel" else [GOOD]
    text = {"panel": json.dumps(GOOD), "batch": json.dumps({"panels": panels}), "array": json.dumps(panels),
            "jsonl": "\n".join(json.dumps(p) for p in panels) + "\n", "stdin": "\n".join(json.dumps(p) for p in panels)}[shape]
    file = tmp_path / "in.json"
    file.write_text(text)
    run = run_cli("-", stdin=text) if shape == "stdin" else run_cli(str(file))
    expected = client.post("/v1/interpretations/batch", json={"panels": panels}).get_json()["results"]
    got = lines(run.stdout)
    for item in expected:  # pointers are into the line's own panel, not into a batch envelope
        for error in item.get("problem", {}).get("errors", []):
            error["pointer"] = re.sub(r"^/panels/\d+", "", error["pointer"])
    assert got == expected
    if shape != "panel":
        delta = got[3]["report"]["results"][0]["delta"]
        assert (delta["previous"]["value"], delta["change"], delta["significant"]) == (4.4, -1.4, True)
        assert got[4]["status"] == 422 and got[4]["problem"]["errors"][0]["pointer"] == "/history/0/collected_at"
    assert run.returncode == (1 if any(r["status"] != 200 for r in got) else 0)
    assert run.stderr == ""  # no progress bar when stderr is not a terminal


def test_unreadable_input_exits_2_with_a_message(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"results": []}\n{not json\n')
    for run in (run_cli(str(bad)), run_cli(str(tmp_path / "missing.json")), run_cli("-", stdin="42")):
        assert run.returncode == 2 and run.stdout == "" and run.stderr.startswith("labinterp: cannot read")


def test_a_progress_bar_when_stderr_is_a_terminal(tmp_path):
    file = tmp_path / "in.json"
    file.write_text(json.dumps({"panels": [GOOD] * 50}))
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a terminal has a size
    try:
        proc = subprocess.run([*CLI, str(file)], stdout=subprocess.PIPE, stderr=follower, cwd=ROOT, timeout=120)
        os.close(follower)
        follower = -1
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(leader)
        if follower != -1:
            os.close(follower)
    assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 50
    assert b"50/50" in shown and b"panels" in shown


def test_a_batch_over_the_results_limit_is_refused_whole(conform):
    """All panels together may hold at most LABINTERP_MAX_BATCH_RESULTS results: the limit bounds
    a worker's memory, and it is checked before any panel is interpreted."""

    client = keyed_client(make_app(max_batch_results=10))
    panel = {"results": [{"analyte": "potassium", "value": 4.0, "unit": "mmol/L"}] * 5}
    ok = client.post("/v1/interpretations/batch", json={"panels": [panel, panel]})
    assert ok.status_code == 200 and len(ok.get_json()["results"]) == 2
    refused = client.post("/v1/interpretations/batch", json={"panels": [panel, panel, {"results": [panel["results"][0]]}]})
    problem = conform("post", "/v1/interpretations/batch", refused)
    assert refused.status_code == 422
    assert problem["errors"] == [{"pointer": "/panels", "message": "at most 10 results in one batch, all panels "
                                                                   "together; got 11: split the batch"}]

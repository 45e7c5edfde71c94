"""GET /readyz and the start-up self-test behind it."""
from __future__ import annotations

from dataclasses import replace

import pytest

from service.app import create_app
from service.config import Settings
from service.core import default_knowledge
from service.core.selfcheck import SelfCheckError, self_check


def test_readyz_reports_the_checks_it_passed(client, conform):
    data = conform("get", "/readyz", client.get("/readyz"))
    kb = default_knowledge()
    assert data["status"] == "ready" and data["knowledge_version"] == kb.version
    assert data["checks"]["analytes"] == len(kb.analytes)
    assert data["checks"]["conversions"] == sum(len(a.factors) for a in kb.analytes.values())


def test_readyz_stays_open_when_api_keys_are_required():
    locked = create_app(Settings(api_keys=("k1",))).test_client()
    assert locked.get("/readyz").status_code == 200
    assert locked.get("/v1/analytes").status_code == 401


def _with_factor(kb, analyte_id: str, unit: str, factor: float):
    analyte = kb.analytes[analyte_id]
    bad = replace(analyte, factors={**analyte.factors, unit: factor})
    analytes = {**kb.analytes, analyte_id: bad}
    return replace(kb, analytes=analytes, by_name={k: analytes[v.id] for k, v in kb.by_name.items()},
                   by_loinc={k: analytes[v.id] for k, v in kb.by_loinc.items()},
                   names_as_written={k: analytes[v.id] for k, v in kb.names_as_written.items()},
                   identities={})  # no remembered resolution may point at the good analyte


def test_a_wrong_conversion_factor_stops_start_up():
    kb = default_knowledge()
    wrong = _with_factor(kb, "magnesium", "mg/dL", kb.analytes["magnesium"].factors["mg/dL"] * 1.05)
    with pytest.raises(SelfCheckError, match="magnesium/mg/dL"):
        self_check(wrong)
    with pytest.raises(SelfCheckError):
        create_app(Settings(), knowledge=wrong)


def test_the_self_test_covers_every_accepted_unit():
    kb = default_knowledge()
    assert self_check(kb) == {"analytes": len(kb.analytes),
                              "conversions": sum(len(a.factors) for a in kb.analytes.values())}

"""POST /hl7v2/interpret: in process against the contract, and on a real gunicorn started as `make run`
starts it. Errors are HL7 ACKs (AR, with MSA-3 and ERR) in the request's media type."""
from __future__ import annotations

import hl7
import pytest
import requests

from service.app import create_app
from service.config import Settings
from service.core import default_knowledge
from service.hl7v2.enrich import enrich
from service.hl7v2.er7 import read_message

from .conftest import keyed_client, make_app
from .hl7_messages import GHH, K, OLIS, example, obx, oru
from .servers import free_port, start_gunicorn, stop, wait_ready

PATH = "/hl7v2/interpret"
ER7 = "x-application/hl7-v2+er7"


def ack_of(body: bytes) -> tuple[str, str, str]:
    """(MSA-1, MSA-2, ERR-3 code) of an ACK."""
    parsed = hl7.parse(body.decode("ascii"))
    msa = parsed.segment("MSA")
    err = parsed.segments("ERR")[0] if "\rERR" in body.decode() else None
    return str(msa(1)), str(msa(2)) if len(msa) > 2 else "", str(err(3)(1)(1)) if err else ""


@pytest.mark.parametrize("media_type", [ER7, "text/plain"])
def test_the_enriched_message_comes_back_in_the_same_media_type(client, conform, media_type):
    raw = oru(obx(1, K, "3.1"))
    resp = client.post(PATH, data=raw, content_type=media_type)
    conform("post", PATH, resp)
    assert resp.status_code == 200 and resp.mimetype == media_type
    assert resp.headers["Content-Type"] == f"{media_type}; charset=us-ascii"
    assert resp.data == enrich(read_message(raw), default_knowledge(), 100).raw
    assert b"|3.5-5.1|L|" in resp.data


def test_the_character_set_is_the_messages_own(client):
    raw = oru(obx(1, K, "3.1"), charset="8859/1", pid="PID|1||X||M\xfcller^A||19580312|F", encoding="latin-1")
    resp = client.post(PATH, data=raw, content_type="text/plain; charset=utf-8")  # MSH-18 decides, not this
    assert resp.headers["Content-Type"] == "text/plain; charset=iso-8859-1" and b"M\xfcller" in resp.data


def test_the_real_examples_come_back_unchanged(client):
    for name in (GHH, OLIS):
        raw = example(name)
        resp = client.post(PATH, data=raw, content_type=ER7)
        assert resp.status_code == 200 and resp.data == raw


@pytest.mark.parametrize("body, status, code, control_id", [
    (b"", 400, "100", ""),
    (b"PID|1||X", 400, "100", ""),
    (b"MSH|^~&|A|B", 400, "102", ""),
    (b"MSH|^~\\&|A|B|C|D|||ORU^R01|C77|P|2.5.1\r\x00\x01\x02", 400, "100", "C77"),
    (oru(obx(1, K, "3.1"), message_type="ADT^A01", control_id="C78"), 422, "200", "C78"),
    (oru(obx(1, K, "3.1"), version="2.7", control_id="C79"), 422, "203", "C79"),
])
def test_errors_are_acks_with_err_and_the_control_id(client, conform, body, status, code, control_id):
    resp = client.post(PATH, data=body, content_type=ER7)
    conform("post", PATH, resp)
    assert resp.status_code == status and resp.mimetype == ER7
    assert ack_of(resp.data) == ("AR", control_id, code)


def test_media_type_size_method_and_path_errors_are_acks_too(conform):
    client = keyed_client(make_app(max_body_bytes=2000))
    resp = client.post(PATH, data=b"{}", content_type="application/json")
    assert resp.status_code == 415 and resp.mimetype == ER7 and ack_of(resp.data)[0] == "AR"
    conform("post", PATH, resp)
    resp = client.post(PATH, data=oru(*[obx(n, K, "3.1") for n in range(1, 40)]), content_type="text/plain")
    assert resp.status_code == 413 and resp.mimetype == "text/plain" and ack_of(resp.data)[0] == "AR"
    conform("post", PATH, resp)
    resp = client.get(PATH)
    assert resp.status_code == 405 and "POST" in resp.headers["Allow"] and ack_of(resp.data)[0] == "AR"
    resp = client.post("/hl7v2/nothing", data=b"x", content_type=ER7)
    assert resp.status_code == 404 and ack_of(resp.data)[0] == "AR"


def test_the_api_key_protects_hl7v2(conform):
    client = create_app(Settings(api_keys=("k-123456",))).test_client()
    raw = oru(obx(1, K, "3.1"))
    resp = client.post(PATH, data=raw, content_type=ER7)
    conform("post", PATH, resp)
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert ack_of(resp.data)[0] == "AR"
    ok = client.post(PATH, data=raw, content_type=ER7, headers={"Authorization": "Bearer k-123456"})
    assert ok.status_code == 200


def test_results_interpreted_over_hl7v2_are_counted(client):
    from prometheus_client import REGISTRY

    def count() -> float:
        return REGISTRY.get_sample_value("labinterp_results_interpreted_total",
                                         {"analyte": "potassium", "band": "low"}) or 0.0

    before = count()
    client.post(PATH, data=oru(obx(1, K, "3.1"), obx(2, K, "3.2")), content_type=ER7)
    assert count() == before + 2


@pytest.mark.server
def test_on_a_real_gunicorn(tmp_path):
    port = free_port()
    proc = start_gunicorn(port, tmp_path / "gunicorn.log", {"LABINTERP_API_KEYS": "gk-987654",
                                                             "LABINTERP_MAX_BODY_BYTES": "65536"})
    url = f"http://127.0.0.1:{port}{PATH}"
    auth = {"Authorization": "Bearer gk-987654"}
    try:
        wait_ready(port, proc)
        raw = oru(obx(1, K, "3.1"), "ZXX|kept|\\F\\")
        with requests.post(url, data=raw, headers={"Content-Type": ER7, **auth}, timeout=30) as r:
            assert r.status_code == 200 and r.headers["Content-Type"] == f"{ER7}; charset=us-ascii"
            assert r.content == enrich(read_message(raw), default_knowledge(), 100).raw
        with requests.post(url, data=b"not hl7", headers={"Content-Type": "text/plain", **auth}, timeout=30) as r:
            assert r.status_code == 400 and r.headers["Content-Type"].startswith("text/plain")
            assert ack_of(r.content)[0] == "AR"
        with requests.post(url, data=raw, headers={"Content-Type": ER7}, timeout=30) as r:
            assert r.status_code == 401 and ack_of(r.content)[0] == "AR"
        big = oru(obx(1, K, "3.1"), "NTE|1|L|" + "x" * 70000)
        with requests.post(url, data=big, headers={"Content-Type": ER7, **auth}, timeout=30) as r:
            assert r.status_code == 413 and ack_of(r.content)[0] == "AR"
        with requests.post(url, data=example(GHH), headers={"Content-Type": ER7, **auth}, timeout=30) as r:
            assert r.status_code == 200 and r.content == example(GHH)
    finally:
        assert stop(proc) == 0

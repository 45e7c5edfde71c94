"""Scale-out for MLLP: the real deploy/nginx.conf (its `stream` block) in front of two listener processes,
one of them stopped (or killed) mid-run, and not one message lost.

Senders are python-hl7's MLLPClient, behaving as an integration engine does: a message that got no AA
(an AE, a closed connection, a timeout) is kept and sent again, on a new connection if need be. The
downstream system (tests/mllp_peers.py) answers AA after a short delay, and AE to one message in 23.
Afterwards every message must have been acknowledged AA to its sender and accepted downstream, exactly
once when the listener was stopped gracefully, at least once when it was killed (a message it had
forwarded but not yet answered for is sent again: the duplicates are counted and reported).
Logs and a report stay under test-output/mllp-scale-out/.
"""
from __future__ import annotations

import json
import re
import shutil
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from hl7.client import MLLPClient

from .conftest import ROOT
from .hl7_messages import B12, CA, K, MG, obx, oru
from .mllp_peers import DownstreamPeer, msa
from .nginx import Nginx, require_nginx
from .servers import free_port, start_listener, wait_listening

pytestmark = pytest.mark.server

OUT = ROOT / "test-output" / "mllp-scale-out"
SENDERS = 6
PER_SENDER = 150
MAX_ATTEMPTS = 200
ANALYTES = [(K, "3.1"), (CA, "11.0"), (B12, "150"), (MG, "1.5")]


def _message(sender: int, n: int) -> tuple[str, bytes]:
    control_id = f"S{sender}-{n}"
    analyte, value = ANALYTES[n % len(ANALYTES)]
    return control_id, oru(obx(1, analyte, value), control_id=control_id)


@dataclass
class Tally:
    lock: threading.Lock = field(default_factory=threading.Lock)
    attempts: int = 0
    codes: Counter = field(default_factory=Counter)  # every answer a sender got: AA, AE, AR, none
    accepted: set[str] = field(default_factory=set)  # control ids acknowledged AA to their sender
    failed: list[str] = field(default_factory=list)

    def note(self, code: str) -> None:
        with self.lock:
            self.attempts += 1
            self.codes[code] += 1


def _sender(port: int, sender: int, tally: Tally, progress: threading.Semaphore) -> None:
    client: MLLPClient | None = None
    for n in range(PER_SENDER):
        control_id, message = _message(sender, n)
        for _ in range(MAX_ATTEMPTS):
            try:
                if client is None:
                    client = MLLPClient("127.0.0.1", port)
                    client.socket.settimeout(15)
                answer = client.send_message(message)
                code, acked = msa(answer.strip(b"\x0b\x1c\r")) if answer else ("none", "")
            except (OSError, ValueError, IndexError):
                code, acked = "none", ""
            tally.note(code)
            if code == "AA" and acked == control_id:
                with tally.lock:
                    tally.accepted.add(control_id)
                progress.release()
                break
            if code in ("none", "AR") or acked != control_id:  # a fresh connection for the resend
                if client is not None:
                    client.close()
                client = None
            time.sleep(0.02)
        else:
            with tally.lock:
                tally.failed.append(control_id)
    if client is not None:
        client.close()


def _wait_for(progress: threading.Semaphore, count: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    for _ in range(count):
        assert progress.acquire(timeout=max(0.1, deadline - time.monotonic())), "the load stalled"


def _downstream_behaviour(message: bytes, n: int) -> str:
    return "AE" if n % 23 == 7 else "slow"


@pytest.fixture()
def out(request):
    path = OUT / request.node.name
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _run(out, stop_signal: int, capsys) -> dict:
    require_nginx()
    peer = DownstreamPeer(_downstream_behaviour, stall_seconds=0.01)
    env = {"LABINTERP_MLLP_FORWARD": peer.address, "LABINTERP_MLLP_FORWARD_TIMEOUT": "5",
           "LABINTERP_LOG_LEVEL": "warning"}
    a_port, b_port = free_port(), free_port()
    a = start_listener(a_port, out / "listener-a.log", env)
    b = start_listener(b_port, out / "listener-b.log", env)
    nginx = None
    threads: list[threading.Thread] = []
    try:
        wait_listening(a_port, a)
        wait_listening(b_port, b)
        nginx = Nginx(out, [free_port()], [a_port, b_port])
        tally, progress = Tally(), threading.Semaphore(0)
        threads = [threading.Thread(target=_sender, args=(nginx.mllp_port, s, tally, progress), daemon=True)
                   for s in range(SENDERS)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        total = SENDERS * PER_SENDER
        _wait_for(progress, total // 3)
        a.send_signal(stop_signal)  # A's senders are cut off and come back through nginx to B
        assert a.wait(timeout=30) == (0 if stop_signal == signal.SIGTERM else -signal.SIGKILL)
        for thread in threads:
            thread.join(180)
        assert not any(t.is_alive() for t in threads), "the senders did not finish"
        duration = time.monotonic() - started
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=30) == 0
        nginx.close()

        delivered = Counter(re.search(rb"\|ORU\^R01\^ORU_R01\|([^|]+)\|", m).group(1).decode() for m in peer.acked)
        sessions = nginx.mllp_sessions()
        report = {
            "stop": signal.Signals(stop_signal).name, "messages": total, "attempts": tally.attempts,
            "answers": dict(tally.codes), "acknowledged_AA": len(tally.accepted),
            "received_downstream": len(peer.received), "delivered_downstream": len(delivered),
            "duplicates_downstream": sum(n - 1 for n in delivered.values()), "failed": len(tally.failed),
            "sessions_via_a": sum(f"127.0.0.1:{a_port}" in s for s in sessions),
            "sessions_via_b": sum(f"127.0.0.1:{b_port}" in s for s in sessions),
            "duration_s": round(duration, 1),
        }
        (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        with capsys.disabled():
            print(f"\nmllp scale-out ({report['stop']}): {total} messages, {tally.attempts} sends, answers "
                  f"{dict(tally.codes)}, AA to senders {len(tally.accepted)}, delivered downstream "
                  f"{len(delivered)} ({report['duplicates_downstream']} duplicates), {duration:.1f} s")
        assert tally.failed == [] and tally.codes["AR"] == 0
        expected = {_message(s, n)[0] for s in range(SENDERS) for n in range(PER_SENDER)}
        # No message lost: every one was acknowledged AA to its sender, and only after the downstream took it.
        assert tally.accepted == expected
        assert set(delivered) == expected
        assert report["sessions_via_a"] > 0 and report["sessions_via_b"] > 0
        return report
    finally:
        for thread in threads:
            thread.join(1)
        if nginx:
            nginx.close()
        for proc in (a, b):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        peer.close()


def test_a_listener_stopped_mid_run_loses_nothing_and_duplicates_nothing(out, capsys):
    report = _run(out, signal.SIGTERM, capsys)
    assert report["duplicates_downstream"] == 0  # it finished what it had forwarded before it left


def test_a_listener_killed_mid_run_loses_nothing(out, capsys):
    report = _run(out, signal.SIGKILL, capsys)
    # A message the killed listener had forwarded but not answered for is sent again: at most one per sender.
    assert report["duplicates_downstream"] <= SENDERS

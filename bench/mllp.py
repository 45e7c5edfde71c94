"""`make bench-mllp`: messages per second through the MLLP listener, forwarding to a local ACKing peer.

The listener runs as labinterp-serve starts it (`python -m service.hl7v2.listener`, production log
level: one line per message, to /dev/null here). This process holds the senders (BENCH_MLLP_CONNECTIONS
connections, each sending its next message when the previous one was acknowledged, as MLLP senders do)
and the downstream peer, which answers AA at once; both are asyncio on one core, the listener has the
other. Two workloads: an ORU^R01 with the four analytes (enriched on the way) and an ADT^A08 of the
same size (forwarded unchanged: the cost of the MLLP path without the interpretation).
Printed as a table and written to bench/results/mllp-<time>.json; never asserted in `make test`.
"""
from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, UTC
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SECONDS = float(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_MLLP_CONNECTIONS", "4"))
START, END = b"\x0b", b"\x1c\x0d"

SEGMENTS = [
    "PID|1||PATID1234^^^HOSP^MR||DOE^JANE||19580312|F",
    "OBR|1|ORD448811|FIL448811|24323-8^Metabolic panel^LN|||20261119080000+0100",
    "OBX|1|NM|2823-3^Potassium^LN||3.1|mmol/L^mmol/L^UCUM|||||F",
    "OBX|2|NM|17861-6^Calcium^LN||8.1|mg/dL^mg/dL^UCUM|||||F",
    "OBX|3|SN|2132-9^Vitamin B12^LN||<^150|pg/mL^pg/mL^UCUM|||||F",
    "OBX|4|NM|19123-9^Magnesium^LN||1.5|mg/dL^mg/dL^UCUM|||||F",
]


def message(kind: str, n: int) -> bytes:
    msh = f"MSH|^~\\&|LIS|LAB|EHR|HOSP|20261119083000+0100||{kind}|B{n}|P|2.5.1"
    return ("\r".join([msh] + SEGMENTS) + "\r").encode()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def peer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """The downstream system: AA at once, MSA-2 taken from MSH-10 without parsing the rest."""
    try:
        while True:
            frame = await reader.readuntil(END)
            control_id = frame[1:frame.index(b"\r")].split(b"|")[9]
            writer.write(START + b"MSH|^~\\&|EHR|HOSP|LIS|LAB|||ACK|A|P|2.5.1\rMSA|AA|" + control_id + b"\r" + END)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):  # the run is over
        writer.close()


async def sender(port: int, kind: str, deadline: float, latencies: list[float], codes: dict[str, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    n = 0
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        writer.write(START + message(kind, n) + END)
        await writer.drain()
        ack = await reader.readuntil(END)
        latencies.append(time.perf_counter() - started)
        code = ack.split(b"\rMSA|", 1)[1][:2].decode()
        codes[code] = codes.get(code, 0) + 1
        n += 1
    writer.close()


async def measure(port: int, kind: str, seconds: float) -> dict[str, float]:
    latencies: list[float] = []
    codes: dict[str, int] = {}
    await asyncio.gather(*(sender(port, kind, time.perf_counter() + 1, [], {}) for _ in range(CONNECTIONS)))  # warm
    started = time.perf_counter()
    await asyncio.gather(*(sender(port, kind, started + seconds, latencies, codes) for _ in range(CONNECTIONS)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"messages_per_s": round(len(latencies) / elapsed, 1),
            "p50_ms": round(statistics.median(latencies) * 1000, 2),
            "p99_ms": round(latencies[int(len(latencies) * 0.99)] * 1000, 2),
            "messages": len(latencies), "not_AA": sum(v for k, v in codes.items() if k != "AA")}


async def main() -> dict[str, object]:
    server = await asyncio.start_server(peer, "127.0.0.1", 0)
    peer_port = server.sockets[0].getsockname()[1]
    port = free_port()
    env = {**os.environ, "HOST": "127.0.0.1", "LABINTERP_MLLP_PORT": str(port),
           "LABINTERP_MLLP_FORWARD": f"127.0.0.1:{peer_port}"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    listener = subprocess.Popen([sys.executable, "-m", "service.hl7v2.listener"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.05)
        figures = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "connections": CONNECTIONS,
                   "seconds": SECONDS,
                   "oru_r01_enriched": await measure(port, "ORU^R01^ORU_R01", SECONDS),
                   "adt_a08_passed_on": await measure(port, "ADT^A08^ADT_A01", SECONDS)}
    finally:
        listener.send_signal(signal.SIGTERM)
        listener.wait(timeout=30)
        server.close()
    return figures


if __name__ == "__main__":
    figures = asyncio.run(main())
    print(f"MLLP through the listener to an ACKing peer, {CONNECTIONS} connections, {SECONDS:g} s each:")
    print(f"{'workload':<22}{'messages/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'not AA':>8}")
    for name in ("oru_r01_enriched", "adt_a08_passed_on"):
        f = figures[name]
        print(f"{name:<22}{f['messages_per_s']:>12}{f['p50_ms']:>9}{f['p99_ms']:>9}{f['not_AA']:>8}")
    out = ROOT / "bench" / "results" / f"mllp-{str(figures['when']).replace(':', '')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"written to {out.relative_to(ROOT)}")

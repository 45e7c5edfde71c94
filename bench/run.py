"""`make bench`: the figures of issue 6, printed as one table and written to bench/results/<time>.json.

1. HTTP: POST /v1/interpretations (four-analyte panel with context) under gunicorn.conf.py on
   loopback, driven by wrk, side by side in the same run with the floor: the echo app
   (bench/floor_app.py) under plain `gunicorn -w N` (N as the service's); the echo app under
   gunicorn.conf.py is a second figure.
2. The batch endpoint with 1,000 panels (4,000 results): time per request and per result.
3. The core in process: microseconds per result, and the same panel through a naive path that builds
   a pint Quantity per value.
4. Start-up to first served request, and peak RSS per worker.

Speed is measured here and never asserted in `make test`: the machine is shared and noisy.
"""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, UTC
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from service.api.interpretations.examples import PANEL_EXAMPLE

DURATION = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "8"))
TARGETS = {"history_cost": 1.5, "throughput_ratio": 0.60, "p99_ms": 10.0, "batch_ms": 150.0, "core_us_per_result": 10.0,
           "naive_speedup": 20.0, "startup_s": 1.5, "rss_mb": 80.0}


BENCH_KEY = "bench-key-0123456789abcdef"
UNITS = {"vitamin_b12": "pmol/L", "k": "mEq/L", "2823-3": "mmol/L", "magnesium": "mmol/L", "calcium": "mmol/L"}


def history_panel(items: int = 20) -> dict[str, Any]:
    """The example panel with `items` earlier results (issue 15): five per analyte over the month
    before, in another unit than the panel's where one exists, newest last."""
    base = PANEL_EXAMPLE
    collected = datetime.fromisoformat(base["collected_at"])
    history = []
    for i in range(items):
        r = base["results"][i % len(base["results"])]
        name = {"code": r["code"]} if "code" in r else {"analyte": r["analyte"]}
        unit = UNITS.get(r.get("analyte") or r.get("code"), r["unit"])
        history.append({**name, "value": r["value"] if unit == r["unit"] else round(r["value"] / 4, 3), "unit": unit,
                        "collected_at": (collected - timedelta(days=1 + (items - i) * 1.5)).isoformat()})
    return {**base, "history": history}
  # the service always needs one; the floor ignores it


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


WORKERS = int(os.environ.get("LABINTERP_WORKERS", os.environ.get("WEB_CONCURRENCY", "2")))  # as gunicorn.conf.py


def start(app: str, port: int, plain: bool = False) -> tuple[subprocess.Popen, float]:
    """gunicorn with the production configuration, or (plain) `gunicorn -w N` with nothing of the
    project's configuration; seconds from spawn to the first 200."""
    # Production settings, request log included (its lines go to /dev/null here).
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LABINTERP_API_KEYS": BENCH_KEY}
    config = ["-w", str(WORKERS), "-b", f"127.0.0.1:{port}"] if plain else ["-c", "gunicorn.conf.py"]
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("gunicorn")), *config, app],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"{app} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc, time.perf_counter() - t0
        except OSError:
            time.sleep(0.01)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)


def _latency_ms(out: str, percentile: str) -> float:
    match = re.search(rf"^\s*{percentile}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    if match is None:
        raise SystemExit(f"wrk printed no {percentile}% latency:\n{out}")
    value, unit = match.groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def wrk(port: int, body: dict[str, Any], seconds: int = DURATION) -> dict[str, float]:
    script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)  # noqa: SIM115 - wrk reads it by name
    script.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                 f'wrk.headers["Authorization"] = "Bearer {BENCH_KEY}"\n'
                 f"wrk.body = {json.dumps(json.dumps(body))}\n")
    script.close()
    out = subprocess.run(["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "--latency", "-s", script.name,
                          f"http://127.0.0.1:{port}/v1/interpretations"], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
            "p50_ms": _latency_ms(out, "50"), "p99_ms": _latency_ms(out, "99"),
            "errors": float(non2xx.group(1)) if non2xx else 0.0}


def worker_peak_rss_mb(master: int) -> float:
    children = subprocess.run(["ps", "-o", "pid=", "--ppid", str(master)], capture_output=True, text=True).stdout.split()
    peaks = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024)  # type: ignore[union-attr]
    return max(peaks)


def batch(port: int, runs: int = 7) -> dict[str, float]:
    """The batch endpoint with 1,000 four-result panels: the server's own time (its Server-Timing
    header, request parsed to response built) and the client's (with HTTP transfer and the client's
    JSON parsing of a ~4 MB answer)."""
    panels = [PANEL_EXAMPLE] * 1000
    data = json.dumps({"panels": panels}).encode()
    server, client = [], []
    for _ in range(runs):
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/interpretations/batch", data=data,
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {BENCH_KEY}"})
        t0 = time.perf_counter()
        with urllib.request.urlopen(req, timeout=60) as r:
            body = json.loads(r.read())
            timing = r.headers["Server-Timing"]
        client.append((time.perf_counter() - t0) * 1000)
        server.append(float(re.search(r"dur=([\d.]+)", timing).group(1)))  # type: ignore[union-attr]
        assert all(x["status"] == 200 for x in body["results"])
    ms = statistics.median(server)
    return {"batch_ms": ms, "batch_us_per_result": ms * 1000 / 4000, "batch_client_ms": statistics.median(client)}


def core(n: int = 3000) -> dict[str, float]:
    from service.core import default_knowledge, interpret_panel
    from service.core.units import registry
    from service.panels import Panels

    kb = default_knowledge()
    panel = Panels(kb).read(PANEL_EXAMPLE)
    for _ in range(300):
        interpret_panel(panel, kb)
    t0 = time.perf_counter()
    for _ in range(n):
        interpret_panel(panel, kb)
    cached = (time.perf_counter() - t0) / n / len(panel.results) * 1e6

    ureg = registry()
    report = interpret_panel(panel, kb)

    def naive() -> None:
        """The pipeline as a naive implementation runs it: each number the core converts with a cached
        factor (the value to the canonical unit; the interval's low and high back to the caller's
        unit, as the report shows them) is converted instead through a pint Quantity, with the
        analyte's contexts, on every request."""
        for r, out in zip(panel.results, report.results):
            analyte = kb.find_analyte(r.analyte or "") or kb.by_loinc[r.code or ""]
            unit = kb.units.lookup(r.unit or "").pint  # type: ignore[union-attr]
            canonical = kb.units.units[analyte.canonical_unit].pint
            kwargs: dict[str, Any] = {"z": analyte.valence or 1}
            if analyte.molar_mass:
                kwargs["mw"] = ureg.Quantity(analyte.molar_mass, "g/mol")
            _ = ureg.Quantity(float(r.value), unit).to(canonical, "chemistry", "valence", **kwargs).magnitude
            for limit in (out.reference_range.low, out.reference_range.high):
                if limit is not None:
                    _ = ureg.Quantity(limit, canonical).to(unit, "chemistry", "valence", **kwargs).magnitude
        interpret_panel(panel, kb)

    for _ in range(30):
        naive()
    m = max(200, n // 10)
    t0 = time.perf_counter()
    for _ in range(m):
        naive()
    slow = (time.perf_counter() - t0) / m / len(panel.results) * 1e6
    return {"core_us_per_result": cached, "naive_us_per_result": slow, "naive_speedup": slow / cached,
            **application(kb)}


def application(kb: Any, n: int = 2000) -> dict[str, float]:
    """The application layer in process (schemas, core, report to JSON), without and with 20 history items."""
    import orjson

    from service.panels import Panels

    panels = Panels(kb)
    out = {}
    for name, body in (("panel_us", PANEL_EXAMPLE), ("history_panel_us", history_panel())):
        for _ in range(200):
            orjson.dumps(panels.interpret(body).report.to_dict())  # type: ignore[union-attr]
        t0 = time.perf_counter()
        for _ in range(n):
            orjson.dumps(panels.interpret(body).report.to_dict())  # type: ignore[union-attr]
        out[name] = (time.perf_counter() - t0) / n * 1e6
    return out


def main() -> int:
    figures: dict[str, Any] = {"when": datetime.now(UTC).isoformat(timespec="seconds"),
                               "cpus": os.cpu_count(), "seconds": DURATION, "connections": CONNECTIONS,
                               "workers": os.environ.get("LABINTERP_WORKERS", "2")}
    servers = {}
    # The floor (issue 14): the echo app under plain `gunicorn -w N`, default sync workers, N as the
    # service's. The same app under gunicorn.conf.py is kept as a second figure, for comparison.
    for name, app, plain in (("service", "service.app:create_app()", False),
                             ("floor", "bench.floor_app:create_app()", True),
                             ("floor_project_conf", "bench.floor_app:create_app()", False)):
        port = free_port()
        proc, startup = start(app, port, plain)
        servers[name] = (proc, port)
        figures[f"{name}_startup_s"] = startup
    try:
        for name, (_, port) in servers.items():  # one after the other, on the same machine, same run
            wrk(port, PANEL_EXAMPLE, seconds=2)  # warm-up
            figures[name] = wrk(port, PANEL_EXAMPLE)
        figures["service_history"] = wrk(servers["service"][1], history_panel())  # issue 15
        figures.update(batch(servers["service"][1]))
        figures["service_worker_rss_mb"] = worker_peak_rss_mb(servers["service"][0].pid)
        figures["floor_worker_rss_mb"] = worker_peak_rss_mb(servers["floor"][0].pid)
    finally:
        for proc, _ in servers.values():
            stop(proc)
    figures.update(core())
    figures["throughput_ratio"] = figures["service"]["rps"] / figures["floor"]["rps"]
    figures["history_cost"] = figures["service"]["rps"] / figures["service_history"]["rps"]
    figures["throughput_ratio_project_conf"] = figures["service"]["rps"] / figures["floor_project_conf"]["rps"]
    rows = [
        ("single panel: service req/s", f"{figures['service']['rps']:.0f}", ""),
        ("single panel: floor req/s", f"{figures['floor']['rps']:.0f}", ""),
        ("single panel: floor under gunicorn.conf.py req/s", f"{figures['floor_project_conf']['rps']:.0f}", ""),
        ("throughput service / floor (plain gunicorn -w N)", f"{figures['throughput_ratio']:.2f}",
         f">= {TARGETS['throughput_ratio']}"),
        ("throughput service / floor under gunicorn.conf.py", f"{figures['throughput_ratio_project_conf']:.2f}", ""),
        ("panel with 20 history items req/s", f"{figures['service_history']['rps']:.0f}", ""),
        ("cost of 20 history items (x a plain panel, HTTP)", f"{figures['history_cost']:.2f}",
         f"<= {TARGETS['history_cost']}"),
        ("same in process: us plain / with history", f"{figures['panel_us']:.0f} / {figures['history_panel_us']:.0f}"
         f" ({figures['history_panel_us'] / figures['panel_us']:.2f}x)", ""),
        ("service p50 / p99 ms", f"{figures['service']['p50_ms']:.2f} / {figures['service']['p99_ms']:.2f}",
         f"p99 < {TARGETS['p99_ms']}"),
        ("floor p50 / p99 ms", f"{figures['floor']['p50_ms']:.2f} / {figures['floor']['p99_ms']:.2f}", ""),
        ("batch 1000 panels: server ms", f"{figures['batch_ms']:.1f}", f"< {TARGETS['batch_ms']}"),
        ("batch 1000 panels: client ms (loopback)", f"{figures['batch_client_ms']:.1f}", ""),
        ("batch us per result", f"{figures['batch_us_per_result']:.1f}", ""),
        ("core us per result", f"{figures['core_us_per_result']:.1f}", f"< {TARGETS['core_us_per_result']}"),
        ("naive pint us per result", f"{figures['naive_us_per_result']:.1f}", ""),
        ("naive / core", f"{figures['naive_speedup']:.1f}x", f">= {TARGETS['naive_speedup']}x"),
        ("start-up to first request s", f"{figures['service_startup_s']:.2f}", f"< {TARGETS['startup_s']}"),
        ("peak RSS per worker MB", f"{figures['service_worker_rss_mb']:.1f} (floor {figures['floor_worker_rss_mb']:.1f})",
         f"< {TARGETS['rss_mb']}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"labinterp bench, {figures['when']}, {figures['cpus']} CPUs, wrk {CONNECTIONS} connections x {DURATION}s")
    for label, value, target in rows:
        print(f"  {label:<{width}}  {value:>18}  {target}")
    out = ROOT / "bench" / "results" / f"{figures['when'].replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

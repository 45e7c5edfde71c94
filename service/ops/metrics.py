"""Prometheus metrics (prometheus-client). Under gunicorn the workers share PROMETHEUS_MULTIPROC_DIR
(gunicorn.conf.py sets it up), so any worker answering GET /metrics reports the whole instance.

Every metric has labels, so the gunicorn master, which imports this module before forking, never
creates a value file of its own; label values come from bounded sets (route templates, the
knowledge's analytes and bands, HTTP statuses), never from request content."""
from __future__ import annotations

import functools
import os
from contextvars import ContextVar, Token
from collections import Counter as Tally
from typing import Any
from collections.abc import Iterable

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import disable_created_metrics, multiprocess

from ..core.report import PanelReport

disable_created_metrics()  # the *_created series only add noise to every scrape

REQUESTS = Counter("labinterp_http_requests_total", "HTTP requests answered, by route template, method and status.",
                   ["route", "method", "status"])
LATENCY = Histogram("labinterp_http_request_duration_seconds", "Time from request to response, by route template.",
                    ["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
RESULTS = Counter("labinterp_results_interpreted_total", "Results interpreted, by analyte and band.",
                  ["analyte", "band"])
CRITICAL = Counter("labinterp_critical_results_total", "Results beyond a critical limit, by analyte.", ["analyte"])
# The MLLP listener (service/hl7v2/listener.py): a separate process that writes into the same
# multiprocess directory when `labinterp-serve` starts it, so GET /metrics reports it too.
MLLP_MESSAGES = Counter("labinterp_mllp_messages_total", "MLLP messages answered, by the ACK code sent to the sender "
                        "and the outcome (delivered, downstream_error, downstream_timeout, unparseable, ...).",
                        ["ack", "outcome"])
MLLP_FORWARD = Histogram("labinterp_mllp_forward_seconds", "Time from forwarding a message downstream to its answer, "
                         "by the downstream's ACK code (none: no answer).", ["ack"],
                         buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0))
MLLP_CONNECTIONS = Counter("labinterp_mllp_connections_total", "MLLP connections, by event (accepted, refused over "
                           "the limit, read_timeout, idle_timeout).", ["event"])


@functools.lru_cache(maxsize=4096)  # label sets are bounded (see above); this skips re-validating them
def _child(metric: Any, *labels: str) -> Any:
    return metric.labels(*labels)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    _child(REQUESTS, route, method, str(status)).inc()
    _child(LATENCY, route).observe(seconds)


class RequestTally:
    """The results `observe_reports` saw while one request was answered (for its log line)."""

    __slots__ = ("token", "total")

    def __init__(self) -> None:
        self.total = 0
        self.token: Token[RequestTally | None] | None = None


_THIS_REQUEST: ContextVar[RequestTally | None] = ContextVar("labinterp_results_of_this_request", default=None)


def count_results() -> RequestTally:
    """Start counting the results of the request being answered; `stop_counting` when it is."""
    tally = RequestTally()
    tally.token = _THIS_REQUEST.set(tally)
    return tally


def stop_counting(tally: RequestTally) -> None:
    if tally.token is not None:
        _THIS_REQUEST.reset(tally.token)


def observe_reports(reports: Iterable[PanelReport]) -> int:
    """Count the results of these reports by analyte and band; returns how many there were."""
    bands: Tally[tuple[str, str]] = Tally()
    critical: Tally[str] = Tally()
    for report in reports:
        for r in report.results:
            bands[(r.analyte, r.band)] += 1
            if r.critical:
                critical[r.analyte] += 1
    for (analyte, band), n in bands.items():
        _child(RESULTS, analyte, band).inc(n)
    for analyte, n in critical.items():
        _child(CRITICAL, analyte).inc(n)
    total = sum(bands.values())
    tally = _THIS_REQUEST.get()
    if tally is not None:
        tally.total += total
    return total


def observe_mllp(ack: str, outcome: str) -> None:
    _child(MLLP_MESSAGES, ack, outcome).inc()


def observe_forward(ack: str, seconds: float) -> None:
    _child(MLLP_FORWARD, ack).observe(seconds)


def observe_connection(event: str) -> None:
    _child(MLLP_CONNECTIONS, event).inc()


def exposition() -> tuple[bytes, str]:
    """The Prometheus text format of every worker's metrics (or this process's, outside gunicorn)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST

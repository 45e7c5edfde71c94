"""The one production gunicorn configuration (`make run`, the container image and the tests use it).

Sizes come from the environment with small defaults: cpu_count() sees the host's CPUs in a container.
Timeouts match docker-compose.yml: its stop_grace_period (40 s) exceeds graceful_timeout (30 s), so
a stopping container finishes the requests it holds before it is killed.
"""
import contextlib
import gc
import ipaddress
import os
import socket
import shutil
import tempfile

from service.config import Settings
from service.ops.logs import log_level

HOST = os.environ.get("HOST", "127.0.0.1")
bind = f"{HOST}:{os.environ.get('PORT', '8000')}"
# Open mode (no key for loopback peers) exists only where nothing but this host can connect.
if os.environ.get("LABINTERP_AUTH") == "open-on-loopback" and not ipaddress.ip_address(
        socket.getaddrinfo(HOST, None)[0][4][0]).is_loopback:
    raise SystemExit(f"LABINTERP_AUTH=open-on-loopback needs HOST on loopback, not {HOST!r}: set a key instead")
workers = int(os.environ.get("LABINTERP_WORKERS", os.environ.get("WEB_CONCURRENCY", "2")))
threads = int(os.environ.get("LABINTERP_THREADS", "1"))
worker_class = "sync" if threads == 1 else "gthread"
preload_app = True  # knowledge and pint factors are built once, then shared copy-on-write
timeout = int(os.environ.get("LABINTERP_TIMEOUT", "30"))
# A sync worker does not report alive while it drains what a refused body left unread
# (service/ops/drain.py): that must end well before this timeout would have the worker killed.
if 2 * Settings.from_env().drain_seconds >= timeout:
    raise ValueError("LABINTERP_DRAIN_SECONDS must be less than half of LABINTERP_TIMEOUT")
graceful_timeout = int(os.environ.get("LABINTERP_GRACEFUL_TIMEOUT", "30"))
keepalive = 2
max_requests = int(os.environ.get("LABINTERP_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
control_socket_disable = True  # its default path breaks non-root containers without a writable HOME
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
limit_request_line = 4094
limit_request_fields = 100

# Logs: the service writes one JSON line per request itself (request id, route, status, duration,
# result count; never a body), so gunicorn writes no access log, and its own messages are JSON too.
accesslog = None
errorlog = "-"
loglevel = log_level().lower()  # LABINTERP_LOG_LEVEL, read and checked as the service reads it
logger_class = "service.ops.gunicorn_logging.JsonGunicornLogger"

# Prometheus multiprocess mode: every worker writes its metrics under one directory, and whichever
# worker answers GET /metrics reports them all. The variable is set here, in the master, before the
# app (and prometheus-client) is imported, so the workers inherit it; by default a fresh directory of
# this master's own, removed at exit. In a container, /tmp is a tmpfs.
_METRICS_OWNED = "PROMETHEUS_MULTIPROC_DIR" not in os.environ
if _METRICS_OWNED:
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.path.join(tempfile.gettempdir(), f"labinterp-metrics-{os.getpid()}")


def when_ready(server):
    """The app is loaded (preload_app): move everything it built into the permanent generation, so
    the workers' garbage collections never walk it (a full collection of the preloaded heap costs
    tens of milliseconds inside some request) and copy-on-write pages stay shared."""
    gc.freeze()


def on_starting(server):
    """Start from an empty metrics directory: files of an earlier run would be counted again."""
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _METRICS_OWNED:
        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)

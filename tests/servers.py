"""Real gunicorn and MLLP listener processes on loopback for the tests: started as `make run` starts them."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

from .conftest import ROOT, TEST_KEY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gunicorn(port: int, log_path: Path, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    """gunicorn as `make run` starts it; its output goes to a file (a pipe nobody reads would fill and block it)."""
    gunicorn = Path(sys.executable).with_name("gunicorn")
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LABINTERP_WORKERS": "2",
           "LABINTERP_API_KEYS": TEST_KEY, **(env_extra or {})}
    with open(log_path, "wb") as log:
        return subprocess.Popen([str(gunicorn), "-c", "gunicorn.conf.py", "service.app:create_app()"],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


@contextlib.contextmanager
def gunicorn(log_dir: Path, env_extra: dict[str, str] | None = None) -> Iterator[int]:
    """A ready gunicorn on a free port for the block (its port); stopped after it, and it must stop cleanly."""
    port = free_port()
    proc = start_gunicorn(port, log_dir / "gunicorn.log", env_extra)
    try:
        wait_ready(port, proc)
        yield port
    finally:
        assert stop(proc) == 0


def stop(proc: subprocess.Popen) -> int:
    """SIGTERM, then wait for the graceful shutdown (kill only if it never comes)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _wait_until(probe: Callable[[], bool], proc: subprocess.Popen, seconds: float, pause: float,
                what: str, failure: str) -> None:
    """Poll `probe` (an OSError counts as not yet) until it holds; fail if `proc` exits or time runs out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{what} exited early with {proc.returncode}")
        try:
            if probe():
                return
        except OSError:
            pass
        time.sleep(pause)
    raise AssertionError(failure)


def _healthy(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
        return r.status == 200


def _accepting(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1):
        return True


def wait_ready(port: int, proc: subprocess.Popen, seconds: float = 20) -> None:
    _wait_until(lambda: _healthy(port), proc, seconds, 0.1, "gunicorn", "gunicorn did not become ready")


def start_listener(port: int, log_path: Path, env_extra: dict[str, str] | None = None) -> subprocess.Popen:
    """The MLLP listener as labinterp-serve starts it (`python -m service.hl7v2.listener`)."""
    env = {**os.environ, "HOST": "127.0.0.1", "LABINTERP_MLLP_PORT": str(port), **(env_extra or {})}
    with open(log_path, "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "service.hl7v2.listener"], cwd=ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def wait_listening(port: int, proc: subprocess.Popen, seconds: float = 20) -> None:
    """Until something accepts TCP connections on the port (the listener, once it has loaded the knowledge)."""
    _wait_until(lambda: _accepting(port), proc, seconds, 0.05, "the process", f"nothing listened on port {port}")

"""`labinterp-serve`: the whole service in one command (`make run`, and the container image's CMD).

It starts gunicorn with ./gunicorn.conf.py (HTTP on HOST:PORT) and, unless LABINTERP_MLLP=off, the
MLLP listener (HOST:LABINTERP_MLLP_PORT), and watches both:
- SIGTERM or SIGINT is passed to both, and each stops gracefully (gunicorn finishes its requests,
  the listener the messages in flight); SIGHUP goes to gunicorn (reload).
- If either exits on its own, the other is stopped and labinterp-serve exits non-zero, so that the
  orchestrator restarts the whole: one half of the service never runs on unnoticed.
- Both write their metrics into one PROMETHEUS_MULTIPROC_DIR, so GET /metrics reports the listener's
  too. The listener starts once gunicorn listens, after gunicorn has emptied that directory.
- As a container's PID 1 it also reaps the orphans the kernel hands it.
"""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from .config import Settings

GUNICORN_ARGS = ["-c", "gunicorn.conf.py", "service.app:create_app()"]


def _gunicorn() -> list[str]:
    script = Path(sys.executable).with_name("gunicorn")
    return [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]


def _listening(host: str, port: int) -> bool:
    target = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    try:
        with socket.create_connection((target, port), timeout=0.5):
            return True
    except OSError:
        return False


class Supervisor:
    def __init__(self) -> None:
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self.stopping = False

    def start(self, name: str, argv: list[str]) -> None:
        self.children[name] = subprocess.Popen(argv)

    def signal_all(self, signum: int) -> None:
        for proc in self.children.values():
            if proc.returncode is None:
                try:
                    proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGHUP:
            if "gunicorn" in self.children:
                self.children["gunicorn"].send_signal(signal.SIGHUP)
            return
        self.stopping = True
        self.signal_all(signal.SIGTERM)

    def wait_for_gunicorn(self, host: str, port: int) -> bool:
        """Until gunicorn listens (True), or it exits or a stop is asked for (False)."""
        gunicorn = self.children["gunicorn"]
        while not self.stopping and gunicorn.poll() is None:
            if _listening(host, port):
                return True
            time.sleep(0.1)
        return False

    def run(self) -> int:
        """Reap children (and orphans) until every child has exited; the exit status to return."""
        status = 0
        while any(p.returncode is None for p in self.children.values()):
            try:
                pid, raw = os.wait()
            except ChildProcessError:
                break
            for name, proc in self.children.items():
                if proc.pid == pid and proc.returncode is None:
                    proc.returncode = os.waitstatus_to_exitcode(raw)
                    if not self.stopping:  # it exited on its own: stop the other half too
                        print(f"labinterp-serve: {name} exited with {proc.returncode}; stopping",
                              file=sys.stderr, flush=True)
                        self.stopping = True
                        self.signal_all(signal.SIGTERM)
                        status = proc.returncode or 1
                    elif proc.returncode not in (0, -signal.SIGTERM):
                        status = status or proc.returncode
        return status


def main() -> int:
    try:
        settings = Settings.from_env()  # a bad setting stops here, named, before anything starts
    except ValueError as exc:
        print(f"labinterp-serve: {exc}", file=sys.stderr)
        return 2
    host, port = os.environ.get("HOST", "127.0.0.1"), int(os.environ.get("PORT", "8000"))
    owned = None
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        owned = tempfile.mkdtemp(prefix="labinterp-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = owned
    supervisor = Supervisor()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, supervisor.on_signal)
    try:
        supervisor.start("gunicorn", _gunicorn() + GUNICORN_ARGS)
        if settings.mllp and supervisor.wait_for_gunicorn(host, port):
            supervisor.start("mllp", [sys.executable, "-m", "service.hl7v2.listener"])
        return supervisor.run()
    finally:
        if owned:
            shutil.rmtree(owned, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

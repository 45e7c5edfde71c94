"""The real deploy/nginx.conf on loopback for the scale-out tests: HTTP in front of gunicorns, MLLP
(the `stream` block) in front of listeners.

Only the upstream servers, the two ports and the pid, log and temp paths are substituted; every other
line is the one compose deploys. Debian's nginx has the stream module as a dynamic module
(libnginx-mod-stream, which `make test` installs with nginx): when this binary was built so, a
`load_module` line is put first, as nginx.org's image, which has it built in, does not need.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests

from .conftest import ROOT
from .servers import free_port

NGINX = Path(os.environ.get("LABINTERP_NGINX", "/usr/sbin/nginx"))
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
# nginx error-log lines of an upstream failure after which nginx passes the request to the next upstream.
UPSTREAM_ERROR = re.compile(r"upstream prematurely closed connection|Connection reset by peer|"
                            r"connect\(\) failed|upstream timed out")


def _skip(reason: str) -> None:
    print(reason)
    pytest.skip(reason)


def require_nginx() -> None:
    if not os.access(NGINX, os.X_OK):
        _skip(f"nginx binary {NGINX} is missing: `make test` installs Debian's nginx when run as root "
              "(or set LABINTERP_NGINX)")


def stream_module() -> str | None:
    """The `load_module` line this nginx needs for the stream block, or None when it is built in;
    skips the test when the module is dynamic and not installed."""
    built = subprocess.run([str(NGINX), "-V"], capture_output=True, text=True, timeout=10).stderr
    if "--with-stream=dynamic" not in built:
        return None if "--with-stream" in built else _skip(f"{NGINX} was built without the stream module")
    found = re.search(r"--modules-path=(\S+)", built)
    module = Path(found.group(1) if found else "/usr/lib/nginx/modules") / "ngx_stream_module.so"
    if not module.exists():
        _skip(f"{module} is missing: `make test` installs Debian's libnginx-mod-stream when run as root")
    return f"load_module {module};\n"


def _servers(text: str, marker: str, ports: list[int]) -> tuple[str, str, Callable[[re.Match], str], int]:
    """The substitution of the `server` lines between `# <marker>:begin/end` by loopback ones."""
    block = re.search(rf"# {marker}:begin\n(.*?)# {marker}:end", text, re.DOTALL)
    assert block, f"deploy/nginx.conf has lost its `# {marker}:begin/end` markers"
    line = re.fullmatch(r"([ \t]*)server[ \t]+\S+((?:[ \t]+\w+=\S+)*);\n[ \t]*", block.group(1))
    assert line, f"expected one `server host:port params;` line between the markers, found {block.group(1)!r}"
    indent, params = line.groups()  # the real max_fails/fail_timeout, kept for every test server
    servers = "".join(f"{indent}server 127.0.0.1:{p}{params};\n" for p in ports)
    return (marker, rf"(# {marker}:begin\n).*?(?=[ \t]*# {marker}:end)", lambda m: m.group(1) + servers, 1)


def render_nginx_conf(upstream_ports: list[int], port: int, run_dir: Path, error_log: Path, access_log: Path,
                      mllp_ports: list[int] | None = None, mllp_port: int | None = None,
                      mllp_log: Path | None = None, load_stream: str | None = None) -> str:
    """deploy/nginx.conf with loopback upstreams, free ports and every written path in run_dir or the logs.
    Without MLLP upstreams the stream block points at a port nobody listens on."""
    text = NGINX_CONF.read_text(encoding="utf-8")
    http, found, stream = text.partition("\nstream {")
    assert found, "deploy/nginx.conf has lost its `stream` block"
    stream = found + stream
    mllp_port = mllp_port or free_port()
    substitutions: list[tuple[str, str, Callable[[re.Match], str], int]] = [
        _servers(http, "upstream-servers", upstream_ports),
        ("listen 8080", r"^([ \t]*listen[ \t]+)8080;", lambda m: f"{m.group(1)}127.0.0.1:{port};", 1),
        ("pid", r"^(pid[ \t]+)\S+;", lambda m: f"{m.group(1)}{run_dir / 'nginx.pid'};", 1),
        ("error_log stderr", r"^(error_log[ \t]+)stderr\b", lambda m: f"{m.group(1)}{error_log}", 1),
        ("access_log /dev/stdout", r"^([ \t]*access_log[ \t]+)/dev/stdout\b", lambda m: f"{m.group(1)}{access_log}", 1),
        ("*_temp_path /tmp/...", r"^([ \t]*[a-z_]+_temp_path[ \t]+)/tmp/([^;/\s]+);",
         lambda m: f"{m.group(1)}{run_dir / m.group(2)};", 5),
    ]
    stream_substitutions: list[tuple[str, str, Callable[[re.Match], str], int]] = [
        _servers(stream, "mllp-servers", mllp_ports or [free_port()]),
        ("listen 2575", r"^([ \t]*listen[ \t]+)2575;", lambda m: f"{m.group(1)}127.0.0.1:{mllp_port};", 1),
        ("stream access_log /dev/stdout", r"^([ \t]*access_log[ \t]+)/dev/stdout\b",
         lambda m: f"{m.group(1)}{mllp_log or run_dir / 'mllp-access.log'}", 1),
    ]
    for part, subs in ((0, substitutions), (1, stream_substitutions)):
        piece = (http, stream)[part]
        for what, pattern, replacement, expected in subs:
            piece, n = re.subn(pattern, replacement, piece, flags=re.MULTILINE | re.DOTALL)
            assert n == expected, f"deploy/nginx.conf: expected {expected} `{what}` to substitute, found {n}"
        if part:
            stream = piece
        else:
            http = piece
    return (load_stream or "") + http + stream


class Nginx:
    """nginx -c <rendered deploy/nginx.conf> -g 'daemon off;', its logs in `out`."""

    def __init__(self, out: Path, upstream_ports: list[int], mllp_ports: list[int] | None = None):
        self.port, self.mllp_port = free_port(), free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # Temp files outside test-output/: as root nginx's workers run as `nobody`, and they must reach them.
        self.run_dir = Path(tempfile.mkdtemp(prefix="labinterp-nginx-"))
        self.run_dir.chmod(0o755)
        self.error_log, self.access_log = out / "nginx-error.log", out / "nginx-access.log"
        self.mllp_log = out / "nginx-mllp.log"
        conf = out / "nginx.conf"
        conf.write_text(render_nginx_conf(upstream_ports, self.port, self.run_dir, self.error_log, self.access_log,
                                          mllp_ports, self.mllp_port, self.mllp_log, stream_module()),
                        encoding="utf-8")
        with open(out / "nginx.out", "wb") as log:
            self.proc = subprocess.Popen([str(NGINX), "-p", str(self.run_dir), "-c", str(conf),
                                          "-e", str(self.error_log), "-g", "daemon off;"],
                                         stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, seconds: float = 20) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited with {self.proc.returncode}: {self.errors()}")
            try:
                with requests.get(f"{self.url}/nginx-health", timeout=2) as r:
                    if r.status_code == 200:
                        return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"nginx did not answer /nginx-health: {self.errors()}")

    def close(self) -> None:
        """Graceful quit (SIGQUIT), as compose stops it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its workers too
                self.proc.wait()
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def errors(self) -> str:
        return self.error_log.read_text(errors="replace") if self.error_log.exists() else ""

    def upstream_errors(self) -> list[str]:
        return [line for line in self.errors().splitlines() if UPSTREAM_ERROR.search(line)]

    def access(self, rid: str) -> str:
        """The access-log line of the request with this id."""
        lines = [line for line in self.access_log.read_text().splitlines() if line.endswith(f" rid={rid}")]
        assert len(lines) == 1, (rid, lines)
        return lines[0]

    def served(self, port: int, after: int = 0) -> bool:
        """Whether the upstream on this port answered a request logged past byte `after` of the access log."""
        for line in self.access_log.read_bytes()[after:].decode().splitlines():
            found = re.search(r" upstream=(.+?) upstream_status=(.+?) upstream_time=", line)
            if found and (f"127.0.0.1:{port}", "200") in zip(found[1].split(", "), found[2].split(", ")):
                return True
        return False

    def retried(self) -> int:
        """Requests that nginx passed to more than one upstream."""
        return sum(1 for line in self.access_log.read_text().splitlines() if re.search(r" upstream=\S+, ", line))

    def mllp_sessions(self) -> list[str]:
        """The stream access-log lines: one per MLLP connection, written when it ends."""
        return self.mllp_log.read_text().splitlines() if self.mllp_log.exists() else []

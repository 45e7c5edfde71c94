"""The container deployment keeps its promises: Dockerfile, .dockerignore and docker-compose.yml.

No Docker engine runs on the test machines, so the files are read as text, docker-compose.yml is validated
against the Compose specification's JSON schema (tests/data/compose-spec.json, see tests/data/README.md),
and the image's health probe is run against a real gunicorn started as `make run` starts it
(tests/test_serve.py runs labinterp-serve itself, the image's command).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import runpy
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from service.config import Settings

from .conftest import ROOT
from .servers import free_port, start_gunicorn, stop, wait_ready

DATA = Path(__file__).resolve().parent / "data"
COMPOSE_SCHEMA = DATA / "compose-spec.json"


# --- docker-compose.yml --------------------------------------------------------------------------------

_VARIABLE = re.compile(r"\$\$|\$\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
                       r"|\$(?P<bare>[A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's variable interpolation of every string value: ${VAR}, $VAR, ${VAR:-default}, ${VAR-default},
    ${VAR:+other}, ${VAR:?error}, and $$ for a literal dollar. Compose validates the interpolated file."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def one(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group("braced") or m.group("bare")
        op, arg = m.group("op"), m.group("arg") or ""
        current = env.get(name)
        unset_or_empty = not current
        if op in (":-", "-"):
            return arg if (unset_or_empty if op == ":-" else current is None) else current
        if op in (":+", "+"):
            return "" if (unset_or_empty if op == ":+" else current is None) else arg
        if op in (":?", "?") and (unset_or_empty if op == ":?" else current is None):
            raise KeyError(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(one, value)


COMPOSE_KEY = "compose-key-0123456789abcdef"


def load_compose(env: dict[str, str] | None = None, with_key: bool = True) -> dict[str, Any]:
    """docker-compose.yml as Compose reads it: with `env`, and the API key every deployment must set."""
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return interpolate(raw, {**({"LABINTERP_API_KEYS": COMPOSE_KEY} if with_key else {}), **(env or {})})


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_compose()


@pytest.fixture(scope="module")
def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)  # the draft the schema declares in $schema
    cls.check_schema(schema)
    return cls(schema)


def schema_errors(validator: jsonschema.protocols.Validator, document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(document)]


def test_the_vendored_schema_is_the_recorded_draft_2020_12_copy(compose_validator):
    digest = hashlib.sha256(COMPOSE_SCHEMA.read_bytes()).hexdigest()
    assert digest in (DATA / "README.md").read_text(encoding="utf-8"), "tests/data/README.md records another file"
    assert type(compose_validator) is jsonschema.Draft202012Validator
    assert (DATA / "LICENSE.compose-spec").read_text(encoding="utf-8").lstrip().startswith("Apache License")


def test_compose_file_is_valid_against_the_compose_specification(compose_validator, compose):
    assert schema_errors(compose_validator, compose) == []
    assert "version" not in compose  # obsolete in the Compose specification


def _set(path: str, value: Any):
    def change(doc: dict[str, Any]) -> None:
        *parents, last = path.split("/")
        for key in parents:
            doc = doc[key]
        doc[last] = value
    return change


# (`read_only: "yes please"` would pass: the schema lets strings through for interpolated values, which is
# why test_both_services_are_read_only_unprivileged_and_limited asserts `is True`.)
@pytest.mark.parametrize("change, culprit", [
    (_set("services/labinterp/read_onyl", True), "read_onyl"),  # a misspelt key is not ignored
    (_set("services/labinterp/cap_drop", "ALL"), "cap_drop"),  # a string where a list is required
    (_set("services/labinterp/deploy/resources/limits/memroy", "256M"), "memroy"),
    (_set("services/nginx/healthcheck/start-period", "10s"), "start-period"),
    (_set("services/labinterp/depends_on", {"nginx": {"condition": "when_ready"}}), "depends_on"),
    (_set("servics", {}), "servics"),
], ids=["misspelt-key", "cap_drop-not-a-list", "misspelt-limit", "dashed-healthcheck-key",
        "unknown-depends-condition", "misspelt-top-level-key"])
def test_compose_validation_rejects_a_broken_copy(compose_validator, compose, change, culprit):
    broken = json.loads(json.dumps(compose))
    change(broken)
    errors = schema_errors(compose_validator, broken)
    assert any(culprit in error for error in errors), errors


def test_interpolation_takes_defaults_and_overrides():
    assert interpolate("${A:-2}", {}) == "2" and interpolate("${A:-2}", {"A": "5"}) == "5"
    assert interpolate("${A:-2}", {"A": ""}) == "2" and interpolate("${A-2}", {"A": ""}) == ""
    assert interpolate("$$A ${B} $C", {"B": "b", "C": "c"}) == "$A b c"
    with pytest.raises(KeyError):
        interpolate("${A:?needed}", {})


def test_replicas_default_to_two_and_follow_the_variable(compose):
    assert int(compose["services"]["labinterp"]["deploy"]["replicas"]) == 2
    assert int(load_compose({"LABINTERP_REPLICAS": "4"})["services"]["labinterp"]["deploy"]["replicas"]) == 4


@pytest.mark.parametrize("name", ["labinterp", "nginx"])
def test_both_services_are_read_only_unprivileged_and_limited(compose, name):
    service = compose["services"][name]
    assert service["read_only"] is True
    assert service["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in service["security_opt"]
    uid = service["user"].split(":")[0]
    assert uid.isdigit() and int(uid) != 0
    resources = service["deploy"]["resources"]
    for key in ("cpus", "memory"):
        assert key in resources["limits"] and key in resources["reservations"]
    assert float(resources["reservations"]["cpus"]) <= float(resources["limits"]["cpus"])
    assert _bytes(resources["reservations"]["memory"]) <= _bytes(resources["limits"]["memory"])
    assert service["healthcheck"]["test"][0] == "CMD"  # exec form: no shell in the probe
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in service["healthcheck"]


def _bytes(size: str) -> int:
    m = re.fullmatch(r"(\d+)([kmg]?)b?", str(size).lower())
    assert m, f"not a Compose byte size: {size!r}"
    return int(m.group(1)) * 1024 ** " kmg".index(m.group(2) or " ")


def _seconds(duration: str) -> float:
    """A Compose duration such as 40s, 1m30s or 1h."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|s|m|h)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a Compose duration: {duration!r}"
    scale = {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600}
    return sum(float(n) * scale[u] for n, u in parts)


def test_duration_and_size_parsers():
    assert _seconds("1m30s") == 90 and _seconds("40s") == 40 and _bytes("256M") == 256 * 1024 ** 2
    with pytest.raises(AssertionError):
        _seconds("40")


def test_only_tmp_is_writable_and_metrics_live_there(compose):
    service = compose["services"]["labinterp"]
    assert service["tmpfs"] == ["/tmp"]
    metrics = service["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert Path(metrics).is_relative_to("/tmp") and Path(metrics) != Path("/tmp")
    assert {"/var/cache/nginx", "/var/run"} <= set(compose["services"]["nginx"]["tmpfs"])


def test_the_knowledge_folder_is_mounted_read_only_where_the_service_reads_it(compose):
    service = compose["services"]["labinterp"]
    ranges_dir = service["environment"]["LABINTERP_RANGES_DIR"]
    mounts = [v.split(":") for v in service["volumes"]]
    assert [source for source, target, mode in mounts if target == ranges_dir and mode == "ro"] == [
        "./reference_ranges"]
    assert (ROOT / "reference_ranges" / "knowledge.yaml").is_file()
    lab = load_compose({"LABINTERP_RANGES_HOST_DIR": "/srv/lab-ranges"})["services"]["labinterp"]["volumes"]
    assert "/srv/lab-ranges:" + ranges_dir + ":ro" in lab
    assert dockerfile_env(final_stage())["LABINTERP_RANGES_DIR"] == ranges_dir  # the image agrees


def test_replicas_publish_no_host_port_and_nginx_publishes_http_and_mllp(compose):
    labinterp, nginx = compose["services"]["labinterp"], compose["services"]["nginx"]
    assert "ports" not in labinterp
    assert labinterp["expose"] == [dockerfile_env(final_stage())["PORT"], str(Settings().mllp_port)]
    # MLLP has no authentication: on loopback until the laboratory network's address is named.
    assert nginx["ports"] == ["8080:8080", "127.0.0.1:2575:2575"]
    moved = load_compose({"LABINTERP_PORT": "9000", "LABINTERP_MLLP_PUBLISHED_PORT": "6661",
                          "LABINTERP_MLLP_PUBLISH_ADDRESS": "10.20.0.5"})
    assert moved["services"]["nginx"]["ports"] == ["9000:8080", "10.20.0.5:6661:2575"]
    assert nginx["depends_on"] == {"labinterp": {"condition": "service_healthy"}}
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in nginx["volumes"]
    assert re.fullmatch(r"nginx:\d+\.\d+[\w.-]*", nginx["image"]), "pin nginx to a version"


def test_nginx_conf_fits_the_container_compose_gives_it(compose):
    conf_path = ROOT / "deploy" / "nginx.conf"
    if not conf_path.exists():
        pytest.skip("deploy/nginx.conf (written separately) is not in this tree yet")
    conf = re.sub(r"#.*", "", conf_path.read_text(encoding="utf-8"))
    nginx = compose["services"]["nginx"]
    probe = urlsplit(nginx["healthcheck"]["test"][-1])
    assert re.search(r"\blocation\s+(=\s*)?" + re.escape(probe.path) + r"\s*\{", conf), "the probe's path"
    container_ports = [p.rsplit(":", 1)[1] for p in nginx["ports"]]  # HTTP, then MLLP
    assert re.findall(r"^\s*listen\s+(\d+)\s*;", conf, re.MULTILINE) == container_ports
    assert container_ports[0] == str(probe.port)
    # Run as a non-root user with no capabilities: no `user` directive, nothing on port 80 from conf.d.
    assert not re.search(r"^\s*user\s", conf, re.MULTILINE) and "conf.d" not in conf
    # Every file nginx writes is on a tmpfs of the read-only container.
    written = re.findall(r"^\s*(?:pid|\w+_temp_path)\s+(\S+?)\s*;", conf, re.MULTILINE)
    assert written and all(any(Path(w).is_relative_to(t) for t in nginx["tmpfs"]) for w in written), written
    upstream = re.findall(r"^\s*server\s+([\w.-]+):(\d+)\b", conf, re.MULTILINE)
    assert upstream == [("labinterp", port) for port in compose["services"]["labinterp"]["expose"]]
    # MLLP goes through the stream (TCP) module, HTTP through the http module.
    assert re.search(r"^stream\s*\{.*\blisten\s+" + container_ports[1] + r"\s*;", conf, re.MULTILINE | re.DOTALL)


def test_the_compose_probe_is_the_image_probe(compose):
    test = compose["services"]["labinterp"]["healthcheck"]["test"]
    assert test[1:] == healthcheck_command(final_stage())
    assert "/readyz" in test[-1]


def _gunicorn_settings(monkeypatch, env: dict[str, str]) -> dict[str, Any]:
    for name in list(os.environ):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # gunicorn.conf.py sets PROMETHEUS_MULTIPROC_DIR when it is absent; set-then-delete records the
    # variable with monkeypatch, so it is removed again and never leaks into later gunicorns.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", env.get("PROMETHEUS_MULTIPROC_DIR", ""))
    if "PROMETHEUS_MULTIPROC_DIR" not in env:
        monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    return runpy.run_path(str(ROOT / "gunicorn.conf.py"))


def test_the_stop_grace_period_outlasts_gunicorns_and_the_listeners_graceful_shutdown(compose, monkeypatch):
    from service.hl7v2.listener import STOP_MARGIN

    service = compose["services"]["labinterp"]
    assert service["stop_signal"] == "SIGTERM"
    grace = _seconds(service["stop_grace_period"])
    assert grace > _gunicorn_settings(monkeypatch, {})["graceful_timeout"]
    as_deployed = {k: str(v) for k, v in service["environment"].items()}
    assert grace > _gunicorn_settings(monkeypatch, as_deployed)["graceful_timeout"]
    # The listener stops once the messages in flight are forwarded and answered, or their time is up.
    assert grace > Settings.from_env(as_deployed).mllp_forward_timeout + STOP_MARGIN


def _gunicorn_variables() -> set[str]:
    """Variables gunicorn.conf.py reads, itself or through the log-level reader it shares with the service."""
    text = "".join((ROOT / path).read_text(encoding="utf-8") for path in ("gunicorn.conf.py", "service/ops/logs.py"))
    return set(re.findall(r"os\.environ(?:\.get\(|\[)\s*[\"'](LABINTERP_\w+)[\"']", text))


def known_setting(name: str) -> bool:
    """A LABINTERP_* variable that the service (Settings) or gunicorn.conf.py reads."""
    settings = {"LABINTERP_" + f.name.upper() for f in dataclasses.fields(Settings)}
    return name in settings or name in _gunicorn_variables()


def test_every_labinterp_variable_in_compose_is_a_real_setting(compose):
    assert known_setting("LABINTERP_WORKERS") and known_setting("LABINTERP_MAX_RESULTS")
    assert not known_setting("LABINTERP_WORKRES")
    environment = compose["services"]["labinterp"]["environment"]
    unknown = [name for name in environment if name.startswith("LABINTERP_") and not known_setting(name)]
    assert unknown == []
    for name in ("LABINTERP_WORKERS", "LABINTERP_THREADS", "LABINTERP_TIMEOUT", "LABINTERP_GRACEFUL_TIMEOUT",
                 "LABINTERP_LOG_LEVEL", "LABINTERP_API_KEYS", "LABINTERP_FORM", "LABINTERP_MAX_BODY_BYTES",
                 "LABINTERP_MAX_RESULTS", "LABINTERP_MAX_BATCH_BYTES", "LABINTERP_RANGES_DIR", "LABINTERP_MLLP",
                 "LABINTERP_MLLP_FORWARD", "LABINTERP_MLLP_FORWARD_TIMEOUT", "LABINTERP_MLLP_READ_TIMEOUT",
                 "LABINTERP_MLLP_IDLE_TIMEOUT", "LABINTERP_MLLP_MAX_CONNECTIONS", "LABINTERP_MLLP_ALLOW"):
        assert name in environment


def test_compose_refuses_to_start_replicas_without_a_shared_key():
    with pytest.raises(KeyError, match="LABINTERP_API_KEYS"):
        load_compose(with_key=False)


def test_the_compose_defaults_are_settings_the_service_accepts(compose, monkeypatch):
    environment = {k: str(v) for k, v in compose["services"]["labinterp"]["environment"].items()}
    settings = Settings.from_env(environment)
    assert settings.api_keys == (COMPOSE_KEY,) and settings.form is True
    assert settings.ranges_dir == "/app/reference_ranges"
    # behind nginx, the listener's peer is nginx on the project's private network
    assert settings.mllp_allow == ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
    # the other defaults are the service's
    assert dataclasses.replace(settings, ranges_dir=None, api_keys=(), mllp_allow=Settings().mllp_allow) == Settings()
    gunicorn = _gunicorn_settings(monkeypatch, environment)
    assert (gunicorn["workers"], gunicorn["threads"], gunicorn["timeout"], gunicorn["loglevel"]) == (2, 1, 30, "info")


# --- Dockerfile ----------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined; comment lines (also inside continuations) dropped."""
    instructions, pending = [], ""
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        keyword, _, args = (pending + stripped).partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
        pending = ""
    assert not pending, "the Dockerfile ends inside a continuation"
    return instructions


def stages(instructions: list[Instruction]) -> tuple[dict[str, str], list[list[Instruction]]]:
    """The global ARG defaults (before the first FROM) and the stages, each starting with its FROM."""
    args: dict[str, str] = {}
    result: list[list[Instruction]] = []
    for ins in instructions:
        if ins.keyword == "FROM":
            result.append([ins])
        elif result:
            result[-1].append(ins)
        elif ins.keyword == "ARG":
            name, _, default = ins.args.partition("=")
            args[name] = default
    return args, result


def base_image(stage: list[Instruction], args: dict[str, str]) -> str:
    image = stage[0].args.split()[0]
    return re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), image)


def final_stage(text: str | None = None) -> list[Instruction]:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8") if text is None else text
    return stages(parse_dockerfile(text))[1][-1]


def dockerfile_env(stage: list[Instruction]) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in stage:
        if ins.keyword == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(ins.args))
    return env


def exec_form(args: str) -> list[str] | None:
    """The JSON array of an exec-form CMD, or None for the shell form."""
    try:
        value = json.loads(args)
    except ValueError:
        return None
    return value if isinstance(value, list) and value and all(isinstance(v, str) for v in value) else None


def healthcheck_command(stage: list[Instruction]) -> list[str] | None:
    checks = [ins.args for ins in stage if ins.keyword == "HEALTHCHECK"]
    if len(checks) != 1:
        return None
    m = re.match(r"((?:--\S+\s+)*)CMD\s+(.*)", checks[0], re.DOTALL)
    return exec_form(m.group(2)) if m else None


BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|cc|clang|make|build-essential|python3?-dev|libc6?-dev|\S+-dev)\b")


def dockerfile_problems(text: str) -> list[str]:
    """What keeps a Dockerfile from being this service's production image (empty when nothing does)."""
    args, all_stages = stages(parse_dockerfile(text))
    if not all_stages:
        return ["no FROM"]
    final = all_stages[-1]
    problems = []
    if not re.fullmatch(r"python:3\.\d+(\.\d+)?-slim(-\w+)?", base_image(final, args)):
        problems.append(f"final stage is not a slim Python image: {base_image(final, args)}")
    keywords = [ins.keyword for ins in final]
    users = [(i, ins.args) for i, ins in enumerate(final) if ins.keyword == "USER"]
    cmd_at = max((i for i, k in enumerate(keywords) if k == "CMD"), default=None)
    if cmd_at is None or exec_form(final[cmd_at].args) is None:
        problems.append("CMD is missing or not in exec form")
    if not users or users[-1][1].split(":")[0] in ("root", "0") or (cmd_at is not None and users[-1][0] > cmd_at):
        problems.append("the service does not run as a non-root USER")
    probe = healthcheck_command(final)
    if probe is None:
        problems.append("HEALTHCHECK is missing or not in exec form")
    elif probe[:2] != ["python", "-c"] or "urllib" not in probe[2] or "/readyz" not in probe[2]:
        problems.append("HEALTHCHECK does not probe /readyz with Python's urllib")
    for ins in final:
        if ins.keyword == "RUN" and ("apt-get" in ins.args or "apk " in ins.args) and BUILD_TOOLS.search(ins.args):
            problems.append(f"build tools installed in the final stage: {ins.args}")
    ranges_dir = dockerfile_env(final).get("LABINTERP_RANGES_DIR", "")
    copies = [ins.args.split() for ins in final if ins.keyword == "COPY" and "--from" not in ins.args]
    if not ranges_dir or not any(c[0].rstrip("/") == "reference_ranges" and c[-1].rstrip("/") == ranges_dir
                                 for c in copies):
        problems.append("reference_ranges/ is not copied to LABINTERP_RANGES_DIR")
    return problems


def test_the_dockerfile_is_a_production_image():
    assert dockerfile_problems((ROOT / "Dockerfile").read_text(encoding="utf-8")) == []


GOOD = """\
ARG IMAGE=python:3.11.7-slim-bookworm
FROM ${IMAGE} AS builder
RUN python -m venv /opt/venv && /opt/venv/bin/pip install .
FROM ${IMAGE}
ENV LABINTERP_RANGES_DIR=/app/reference_ranges
COPY --from=builder /opt/venv /opt/venv
COPY reference_ranges/ /app/reference_ranges/
USER 10001
HEALTHCHECK --interval=30s \\
    # a comment inside the continuation
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz')"]
CMD ["gunicorn", "service.app:create_app()"]
"""


@pytest.mark.parametrize("old, new, problem", [
    ("FROM ${IMAGE}\n", "FROM python:3.11\n", "not a slim Python image"),
    ("USER 10001", "USER root", "non-root USER"),
    ("USER 10001\n", "", "non-root USER"),
    ('CMD ["gunicorn", "service.app:create_app()"]', "CMD gunicorn service.app:create_app()", "exec form"),
    ('CMD ["python", "-c", "import urllib.request; urllib.request.urlopen(\'http://127.0.0.1:8000/readyz\')"]',
     "CMD python -c 'import urllib'", "HEALTHCHECK is missing or not in exec form"),
    ("/readyz", "/", "does not probe /readyz"),
    ("COPY reference_ranges/ /app/reference_ranges/\n", "", "reference_ranges/ is not copied"),
    ("USER 10001\n", "RUN apt-get update && apt-get install -y build-essential\nUSER 10001\n", "build tools"),
], ids=["fat-base", "root", "no-user", "shell-cmd", "shell-healthcheck", "probe-path", "no-ranges", "compilers"])
def test_the_dockerfile_check_finds_each_problem(old, new, problem):
    assert dockerfile_problems(GOOD) == []
    assert old in GOOD
    found = dockerfile_problems(GOOD.replace(old, new))
    assert any(problem in p for p in found), found


def test_the_image_is_built_from_one_python_in_both_stages_without_test_extras():
    args, (builder, final) = stages(parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8")))
    assert base_image(builder, args) == base_image(final, args)  # the venv links to the image's python
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["requires-python"]
    image_python = tuple(int(n) for n in re.search(r"python:(3)\.(\d+)", base_image(final, args)).groups())
    assert requires.startswith(">=") and image_python >= tuple(int(n) for n in requires[2:].split("."))
    # The runtime lock (tests/test_lock.py checks it), then the project itself: not editable, no test extras.
    installs = [ins.args for ins in builder if ins.keyword == "RUN" and "pip install" in ins.args]
    assert len(installs) == 2 and "-r requirements/runtime.txt" in installs[0]
    assert re.search(r"pip install --no-deps \.(\s|$)", installs[1])
    assert all(" -e" not in a and "[test]" not in a and "requirements/test.txt" not in a for a in installs)
    assert [ins.args for ins in final if ins.keyword == "COPY" and "--from" in ins.args] == [
        "--from=builder /opt/venv /opt/venv"]
    env = dockerfile_env(final)
    assert env["PATH"].startswith("/opt/venv/bin:")
    assert {k: env[k] for k in ("PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED", "HOST", "PORT")} == {
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "HOST": "0.0.0.0", "PORT": "8000"}
    assert [ins.args for ins in final if ins.keyword == "EXPOSE"] == [f"{env['PORT']} {Settings().mllp_port}"]


def test_the_image_starts_what_make_run_starts(compose):
    from service.serve import GUNICORN_ARGS

    final = final_stage()
    assert exec_form([ins.args for ins in final if ins.keyword == "CMD"][-1]) == ["labinterp-serve"]
    assert "labinterp-serve" in tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["scripts"]
    assert re.search(r"^run:.*\n\t.*\$\(BIN\)/labinterp-serve$", (ROOT / "Makefile").read_text(encoding="utf-8"),
                     re.MULTILINE)
    # labinterp-serve runs gunicorn with ./gunicorn.conf.py: the image copies it into the working directory.
    config = GUNICORN_ARGS[GUNICORN_ARGS.index("-c") + 1]
    workdir = [ins.args for ins in final if ins.keyword == "WORKDIR"][-1]
    assert ["gunicorn.conf.py", str(Path(workdir) / config)] in [ins.args.split() for ins in final if ins.keyword == "COPY"]
    user = [ins.args for ins in final if ins.keyword == "USER"][-1]
    assert user == compose["services"]["labinterp"]["user"]


def test_the_build_context_holds_what_the_dockerfile_copies_and_nothing_else():
    lines = [ln.strip() for ln in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()]
    patterns = [ln for ln in lines if ln and not ln.startswith("#")]
    assert patterns[0] == "*"  # an allowlist: .git, .venv, tests, test-output, caches stay out
    allowed = {p[1:].rstrip("/") for p in patterns if p.startswith("!")}
    copied = set()
    for ins in parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8")):
        if ins.keyword == "COPY" and "--from" not in ins.args:
            copied.update(source.rstrip("/") for source in ins.args.split()[:-1])
    assert copied == allowed
    assert all((ROOT / path).exists() for path in copied)


# --- the health probe against a real server ------------------------------------------------------------

def run_probe(code: str, port: int) -> subprocess.CompletedProcess:
    """The image's probe as Docker runs it, with PORT as in the container and no proxy in the way."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    return subprocess.run([sys.executable, "-c", code], check=False, env={**env, "PORT": str(port)},
                          capture_output=True, timeout=15)


@pytest.fixture(scope="module")
def probe_code() -> str:
    command = healthcheck_command(final_stage())
    assert command[:2] == ["python", "-c"]
    return command[2]


def test_the_probe_fails_when_nothing_listens(probe_code):
    assert run_probe(probe_code, free_port()).returncode != 0


@pytest.mark.server
def test_the_probe_passes_on_a_ready_server_and_fails_on_any_other_answer(probe_code, tmp_path):
    port = free_port()
    proc = start_gunicorn(port, tmp_path / "gunicorn.log")
    try:
        wait_ready(port, proc)
        ready = run_probe(probe_code, port)
        assert ready.returncode == 0, ready.stderr.decode(errors="replace")
        assert run_probe(probe_code.replace("/readyz", "/no-such-page"), port).returncode != 0  # a 404
    finally:
        assert stop(proc) == 0

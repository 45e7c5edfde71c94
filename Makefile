# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
HOST   ?= 127.0.0.1
PORT   ?= 8000
BIN    := $(VENV)/bin

.PHONY: run test lint fuzz bench bench-mllp install install-test browser-deps nginx-deps axe-deps bench-deps clean openapi rule-table lock sbom

# The locks (docs/dependencies.md): every package at one version with its hashes, compiled from pyproject.toml.
# The image installs the runtime lock; `make test` the test lock (runtime pins plus the test extras).
LOCK_RUNTIME := requirements/runtime.txt
LOCK_TEST    := requirements/test.txt
SBOM         := sbom/labinterp-python.cdx.json

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files so a second `make` does not reinstall; they change when pyproject.toml or a lock does.
# The dependencies come from the lock only (--require-hashes: a pin without its hashes, or a file whose
# hash is not listed, stops the install); the project itself is then added without its dependencies.
$(VENV)/.installed: pyproject.toml $(LOCK_RUNTIME) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK_RUNTIME)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(LOCK_TEST) | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes -r $(LOCK_TEST)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# gunicorn (HTTP on HOST:PORT) and the MLLP listener (HOST:LABINTERP_MLLP_PORT), started and stopped together.
run: install
	HOST=$(HOST) PORT=$(PORT) exec $(BIN)/labinterp-serve

# Debian packages some tests drive (never downloaded by the tests themselves). As root they are
# installed with apt-get; otherwise, or if that fails, those tests skip and say why.
# $(call debian_tool,binary,package,the tests that need it,command to run after installing)
define debian_tool
	@if [ -e "$(1)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's $(2) for $(3)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  if apt-get install -y -q $(2) >/dev/null 2>&1 || \
	     { apt-get update -q >/dev/null && apt-get install -y -q $(2) >/dev/null; }; then $(4) :; \
	  else echo "could not install $(2): $(3) will be skipped"; fi; \
	else echo "$(1) is missing and this is not root: $(3) will be skipped"; fi
endef

# Chromium for the browser tests of the clinician form (Playwright drives this binary).
CHROMIUM ?= /usr/bin/chromium
browser-deps:
	$(call debian_tool,$(CHROMIUM),chromium,the browser tests,)

# nginx for the scale-out tests (deploy/nginx.conf in front of two gunicorns, and of two MLLP listeners
# through its stream module, a separate Debian package); the system service the packages may start is
# stopped: the tests run their own nginx.
NGINX ?= /usr/sbin/nginx
NGINX_STREAM ?= /usr/lib/nginx/modules/ngx_stream_module.so
nginx-deps:
	$(call debian_tool,$(NGINX),nginx,the scale-out tests,invoke-rc.d nginx stop >/dev/null 2>&1 || true;)
	$(call debian_tool,$(NGINX_STREAM),libnginx-mod-stream,the MLLP scale-out test,invoke-rc.d nginx stop >/dev/null 2>&1 || true;)

# axe-core for the accessibility tests of the form, from the npm registry at the version package-lock.json
# pins (`npm ci`; node_modules/ is never committed). Again only when it changes; without npm, or if the
# install fails, those tests are skipped and say why.
axe-deps:
	@if [ -f node_modules/.package-lock.json ] && [ node_modules/.package-lock.json -nt package-lock.json ] && \
	    [ -f node_modules/axe-core/axe.min.js ]; then :; \
	elif command -v npm >/dev/null 2>&1; then \
	  echo "installing axe-core (package-lock.json) with npm ci for the accessibility tests"; \
	  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null || \
	    echo "npm ci failed: the axe tests will be skipped"; \
	else echo "npm is missing: the axe tests will be skipped"; fi

# ruff (pyproject.toml [tool.ruff]), mypy ([tool.mypy]) and import-linter's layer contracts
# ([tool.importlinter]); part of `make test`.
lint: install-test
	$(BIN)/ruff check service tests bench gunicorn.conf.py
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install-test lint browser-deps nginx-deps axe-deps
	LABINTERP_CHROMIUM=$(CHROMIUM) LABINTERP_NGINX=$(NGINX) $(BIN)/python -m pytest

# A longer fuzz run of the request, censored-value and unit parsers (FUZZ_EXAMPLES to change its size).
fuzz: install-test
	$(BIN)/python -m tests.fuzz_run

# Figures of bench/run.py (wrk from Debian; installed as root when missing). Never part of `make test`.
bench-deps:
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; } || \
	  { echo "wrk is missing: install Debian's wrk (apt-get install wrk)"; exit 1; }

bench: install-test bench-deps
	$(BIN)/python bench/run.py

# Messages per second through the MLLP listener, forwarding to a local ACKing peer (bench/mllp.py).
bench-mllp: install
	$(BIN)/python bench/mllp.py

# Regenerate openapi.yaml from the code (a test fails when the committed file drifts).
openapi: install
	$(BIN)/python -m service.contract > openapi.yaml

# Regenerate the note-rule table of docs/clinical-safety.md from the knowledge (a test fails when stale).
rule-table: install
	$(BIN)/labinterp rule-table --write docs/clinical-safety.md

# `make lock`: the one command that refreshes the locks. Both are recompiled from pyproject.toml with the
# newest versions its ranges allow (LOCK_UPGRADE= keeps the current pins where they still fit), the
# runtime lock from the test lock so both pin each runtime package alike, and the SBOM is rewritten.
# The tools live in their own environment, at fixed versions, never in .venv or the image.
TOOLS        ?= .venv-tools
LOCK_TOOLS   ?= pip-tools==7.6.2 cyclonedx-bom==7.5.0
LOCK_UPGRADE ?= --upgrade
PIP_COMPILE  := CUSTOM_COMPILE_COMMAND='make lock' $(TOOLS)/bin/pip-compile --quiet --generate-hashes \
                --allow-unsafe --strip-extras --no-emit-index-url --no-emit-find-links

$(TOOLS)/.installed: Makefile
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet $(LOCK_TOOLS)
	touch $@

lock: $(TOOLS)/.installed
	$(PIP_COMPILE) $(LOCK_UPGRADE) --extra test -o $(LOCK_TEST) pyproject.toml
	cp $(LOCK_TEST) $(LOCK_RUNTIME)
	$(PIP_COMPILE) -o $(LOCK_RUNTIME) pyproject.toml
	$(MAKE) --no-print-directory sbom

# The CycloneDX SBOM of the image's Python packages: the runtime lock's pins and hashes, with the project
# (pyproject.toml) as the root component; no timestamp or serial number, so it changes only with the lock.
sbom: $(TOOLS)/.installed
	@mkdir -p $(dir $(SBOM))
	PYTHONWARNINGS=ignore::UserWarning $(TOOLS)/bin/cyclonedx-py requirements --pyproject pyproject.toml \
	  --output-reproducible --of JSON -o $(SBOM) $(LOCK_RUNTIME)

clean:
	rm -rf $(VENV) $(TOOLS) .pytest_cache .hypothesis test-output node_modules

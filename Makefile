# The two set-up commands of the README: `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
HOST   ?= 127.0.0.1
PORT   ?= 8000
BIN    := $(VENV)/bin

.PHONY: run test fuzz bench install install-test browser-deps nginx-deps bench-deps clean openapi

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamp files so a second `make` does not reinstall; they change when pyproject.toml does.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

run: install
	HOST=$(HOST) PORT=$(PORT) $(BIN)/gunicorn -c gunicorn.conf.py 'service.app:create_app()'

# Debian's Chromium for the browser tests (Playwright drives it; no browser is ever downloaded).
# As root it is installed with apt-get; otherwise, or if that fails, the browser tests skip and say why.
CHROMIUM ?= /usr/bin/chromium
browser-deps:
	@if [ -x "$(CHROMIUM)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the browser tests"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { apt-get update -q >/dev/null && apt-get install -y -q chromium >/dev/null; } || \
	  echo "could not install chromium: the browser tests will be skipped"; \
	else echo "$(CHROMIUM) is missing and this is not root: the browser tests will be skipped"; fi

# Debian's nginx for the scale-out tests (deploy/nginx.conf in front of two gunicorn instances).
# As root it is installed with apt-get (and the system service the package may start is stopped: the
# tests run their own nginx); otherwise, or if that fails, those tests skip and say why.
NGINX ?= /usr/sbin/nginx
nginx-deps:
	@if [ -x "$(NGINX)" ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's nginx for the scale-out tests"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  if apt-get install -y -q nginx >/dev/null 2>&1 || \
	     { apt-get update -q >/dev/null && apt-get install -y -q nginx >/dev/null; }; then \
	    invoke-rc.d nginx stop >/dev/null 2>&1 || true; \
	  else echo "could not install nginx: the scale-out tests will be skipped"; fi; \
	else echo "$(NGINX) is missing and this is not root: the scale-out tests will be skipped"; fi

test: install-test browser-deps nginx-deps
	LABINTERP_CHROMIUM=$(CHROMIUM) LABINTERP_NGINX=$(NGINX) $(BIN)/python -m pytest

# A longer fuzz run of the request, censored-value and unit parsers (FUZZ_EXAMPLES to change its size).
fuzz: install-test
	$(BIN)/python fuzz/fuzz_parsers.py

# Figures of bench/run.py (wrk from Debian; installed as root when missing). Never part of `make test`.
bench-deps:
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && DEBIAN_FRONTEND=noninteractive apt-get install -y -q wrk >/dev/null; } || \
	  { echo "wrk is missing: install Debian's wrk (apt-get install wrk)"; exit 1; }

bench: install-test bench-deps
	$(BIN)/python bench/run.py

# Regenerate openapi.yaml from the code (a test fails when the committed file drifts).
openapi: install
	$(BIN)/python -m service.contract > openapi.yaml

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis test-output

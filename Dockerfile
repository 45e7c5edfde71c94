# labinterp: the service as a container image, run by labinterp-serve: gunicorn with gunicorn.conf.py
# (HTTP, port 8000) and the MLLP listener (HL7 v2, port 2575), as `make run` runs them.
#
#   docker build -t labinterp .
#   docker run --rm --read-only --tmpfs /tmp -p 8000:8000 -p 2575:2575 labinterp
#
# Two stages on the same Python image: the builder installs the runtime lock (requirements/runtime.txt,
# with hashes), then the project (not editable, no test extras) into a virtual environment at /opt/venv;
# the final stage copies only that environment, the knowledge folder, the gunicorn configuration and the
# SBOM. Every dependency ships a wheel, so no compiler is needed anywhere.
# Both stages must use the same image: the environment's python is a link to the image's interpreter.
ARG PYTHON_IMAGE=python:3.11.7-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
# The dependencies are the runtime lock's, at its versions, each file checked against its hashes
# (docs/dependencies.md; `make lock` refreshes it). A layer of its own: it is rebuilt only when the lock changes.
COPY requirements/runtime.txt ./requirements/runtime.txt
RUN /opt/venv/bin/pip install --require-hashes -r requirements/runtime.txt
# README.md is the package's long description (pyproject.toml names it), so the build needs it.
COPY pyproject.toml README.md ./
COPY service/ ./service/
# The project itself, without its dependencies (the lock brought them). The running service installs
# nothing: the installer itself stays out of the image.
RUN /opt/venv/bin/pip install --no-deps . \
    && /opt/venv/bin/python -m pip uninstall --yes setuptools pip

FROM ${PYTHON_IMAGE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    LABINTERP_RANGES_DIR=/app/reference_ranges
# A fixed uid/gid so volumes and `user:` in compose can name it; no home, no shell: nothing is written
# outside /tmp (gunicorn's heartbeat files go to /dev/shm, see gunicorn.conf.py).
RUN groupadd --system --gid 10001 labinterp \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin labinterp
# Owned by root and not writable by the service: it cannot change its own code or knowledge.
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY gunicorn.conf.py /app/gunicorn.conf.py
COPY reference_ranges/ /app/reference_ranges/
# The CycloneDX SBOM of /opt/venv's packages (`make sbom`, from the same runtime lock; docs/dependencies.md).
COPY sbom/labinterp-python.cdx.json /app/sbom.cdx.json
USER 10001:10001
EXPOSE 8000 2575
# slim images have no curl: the probe is Python's urllib. It exits 1 when /readyz answers anything but 200
# or does not answer (urlopen raises on 4xx/5xx, refusals and time-outs).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '8000'), timeout=3).status == 200 else 1)"]
# labinterp-serve is PID 1 (exec form, no shell): it receives SIGTERM and passes it to gunicorn and the
# listener, which shut down gracefully. It runs gunicorn with ./gunicorn.conf.py, the file copied above.
STOPSIGNAL SIGTERM
CMD ["labinterp-serve"]

# syntax=docker/dockerfile:1
# The service's container image (docs/deployment.md). Two stages: the build stage installs the
# project and its pinned dependencies into a virtual environment; the run stage copies only that
# environment onto a slim base, runs as an unprivileged user, and needs nothing written outside
# its data folder and /tmp (run it with a read-only root file system).

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY cds_hooks ./cds_hooks
COPY iris_prompt ./iris_prompt
COPY codesets ./codesets
COPY docs/rules.md ./docs/rules.md
RUN python -m venv /opt/iris-prompt \
    && /opt/iris-prompt/bin/pip install -c constraints.txt '.[postgres]' \
    && /opt/iris-prompt/bin/iris-prompt codesets validate

FROM python:3.11-slim-bookworm AS run
RUN groupadd --system --gid 10001 iris \
    && useradd --system --uid 10001 --gid iris --home-dir /var/lib/iris-prompt \
       --no-create-home --shell /usr/sbin/nologin iris \
    && install -d -o iris -g iris -m 0700 /var/lib/iris-prompt
COPY --from=build /opt/iris-prompt /opt/iris-prompt
ENV PATH=/opt/iris-prompt/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    IRIS_HOST=0.0.0.0 \
    IRIS_PORT=8000 \
    IRIS_METRICS_PORT=9100 \
    IRIS_LOG_FORMAT=json \
    IRIS_DATA_DIR=/var/lib/iris-prompt
USER 10001:10001
WORKDIR /var/lib/iris-prompt
VOLUME ["/var/lib/iris-prompt"]
EXPOSE 8000 9100
STOPSIGNAL SIGTERM
# Liveness: the process answers. (Readiness, /readyz, is for the load balancer: see the compose
# file and the Kubernetes probes.)
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["iris-prompt", "serve", "--workers", "2"]

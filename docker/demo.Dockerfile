# Image of the `demo` service in docker-compose.yml: otel-aitrack with its command-line extra (`[cli]`), whose
# `otel-aitrack demo` drives the real openai SDK against a built-in fake provider and exports the telemetry
# over OTLP to the collector.
# Built by `docker compose up --build` with the repository root as context; .dockerignore at the root keeps
# that context to what `pip install` needs (pyproject.toml, README.md, otel_aitrack/).
# Alone: docker build -f docker/demo.Dockerfile -t otel-aitrack-demo . && docker run --rm -it otel-aitrack-demo
# Overrides: compose's `command:` (`otel-aitrack demo --duration 0`) and `environment:` (the OTEL_* settings)
# win over CMD and ENV here.

# Python 3.11 on Debian slim; the tag pins the Python minor version, patch releases come with a rebuild.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY pyproject.toml README.md /tmp/otel-aitrack/
COPY otel_aitrack /tmp/otel-aitrack/otel_aitrack
# A regular (non-editable) install, so the source copy can go.
RUN pip install "/tmp/otel-aitrack[cli]" && rm -rf /tmp/otel-aitrack

# The demo needs no privileges: it only listens on the container's loopback and sends OTLP out.
RUN useradd --create-home --uid 10001 aitrack
USER aitrack
WORKDIR /home/aitrack

CMD ["otel-aitrack", "demo"]

# syntax=docker/dockerfile:1
# The pipeline application image: `pipeline` (CLI, e.g. `pipeline db upgrade`) and
# `pipeline-worker` (e.g. `pipeline-worker sensors`). Used by compose.yaml.
#   docker build -t pipeline .
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11
WORKDIR /app
# Dependencies first (cached while only the sources change) — exactly the locked versions.
# Without the dev tools and without the compiled decode core (the `native` group needs a
# Rust toolchain): the image decodes with fastavro.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-group native --no-install-project
# Then the project itself. Migrations, Avro schemas and connector configs are read from the
# source tree (/app/migrations, /app/schemas, /app/connectors), next to src/.
COPY src ./src
COPY migrations ./migrations
COPY schemas ./schemas
COPY connectors ./connectors
COPY alembic.ini ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-group native

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 pipeline \
 && useradd --system --uid 10001 --gid pipeline --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin pipeline
WORKDIR /app
COPY --from=build --chown=root:root /app /app
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIPELINE_LOG_FORMAT=json
USER pipeline:pipeline
CMD ["pipeline", "--help"]

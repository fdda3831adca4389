# syntax=docker/dockerfile:1
# changegate: one image for `serve`, `worker` and `db upgrade`.
#   docker build -t changegate .
#   docker run -p 8000:8000 -v changegate-data:/data changegate
# The base is pinned by digest (python:3.12-slim-bookworm); refresh it deliberately with
# `docker buildx imagetools inspect python:3.12-slim-bookworm` and review the change.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm@sha256:782412e85d0f0984994c290652577d4018aff08145c85b262bb63dc0c7522254

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md app.yml ./
COPY bot ./bot
COPY policies ./policies
COPY alembic ./alembic
RUN python -m venv /venv \
    && /venv/bin/pip install --no-cache-dir . \
    && /venv/bin/pip uninstall --yes pip

FROM ${PYTHON_IMAGE} AS runtime
RUN useradd --system --uid 10001 --home-dir /data --create-home changegate
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CHANGEGATE_DATABASE_URL=sqlite:////data/changegate.db
WORKDIR /data
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["changegate", "serve", "--host", "0.0.0.0", "--port", "8000"]

# The bot as an image: `docker build -t courier-dispatch .`, or `docker compose up` with the
# docker-compose.yml beside this file. Settings come from the environment; none is baked in.

# Stage 1: the dependencies, from the hash-pinned lock file, into a virtual environment.
FROM python:3.12-slim AS dependencies
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN /opt/venv/bin/pip install --require-hashes --no-deps -r /tmp/requirements.lock

# Stage 2: the code and that environment, run by a user without privileges.
FROM python:3.12-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    WEB_HOST=0.0.0.0 \
    WEB_PORT=8080
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin dispatch
WORKDIR /app
COPY --from=dependencies /opt/venv /opt/venv
COPY alembic.ini pyproject.toml ./
COPY api api
COPY bot bot
COPY db db
COPY handlers handlers
COPY playground playground
COPY services services
# Only for a SQLite database inside the container (mount a volume here); Compose uses PostgreSQL.
RUN mkdir data && chown dispatch data
USER dispatch
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=90s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ['WEB_PORT'], timeout=4)"]
CMD ["python", "-m", "bot"]

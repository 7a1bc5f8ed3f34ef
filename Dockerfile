# syntax=docker/dockerfile:1
# One image for every dbsync role; the command picks the role (see docker-compose.yml):
#   worker  celery -A workers.app worker     (default CMD; serves /  and /metrics on 8089)
#   beat    celery -A beat.app beat
#   flower  celery -A workers.app flower
#   CLI     dbsync sync | verify | status | check-config | serve | health --check

# ---- build: install the package and its pinned dependencies into a virtualenv ----------
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml ./
COPY dbsync ./dbsync
COPY workers ./workers
COPY beat ./beat
RUN pip install . && pip check

# ---- runtime: the virtualenv only, no compilers, no sources, a non-root user -------------
FROM python:3.11-slim AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TABLES_CONFIG=/app/tables.json \
    HEALTH_PORT=8089 \
    PROMETHEUS_MULTIPROC_DIR=/tmp/dbsync-metrics
RUN groupadd --system --gid 10001 dbsync \
    && useradd --system --uid 10001 --gid dbsync --create-home --home-dir /home/dbsync \
       --shell /usr/sbin/nologin dbsync \
    && mkdir -p /var/lib/dbsync /tmp/dbsync-metrics \
    && chown dbsync:dbsync /var/lib/dbsync /tmp/dbsync-metrics
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY tables.json /app/tables.json
# Flower's task list columns and their formatting (celery ... flower --conf=/app/flowerconfig.py)
COPY workers/flowerconfig.py /app/flowerconfig.py
USER 10001:10001
EXPOSE 8089
# Workers answer on 8089; in containers that serve nothing there (beat) the check falls back
# to probing the source and target databases directly. Exit 0 healthy/degraded, 1 otherwise.
HEALTHCHECK --interval=30s --timeout=15s --start-period=60s --retries=3 \
    CMD ["dbsync", "health", "--check"]
CMD ["celery", "-A", "workers.app", "worker", "--loglevel=INFO"]

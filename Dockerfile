# Base image and every Python dependency pinned (requirements.lock): a rebuild installs the same bits.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

COPY pyproject.toml README.md requirements.lock ./
COPY watcher ./watcher
RUN pip install -c requirements.lock . && useradd --create-home --uid 10001 watcher && mkdir -p /app/data && chown watcher /app/data

COPY config ./config
COPY seeds ./seeds
USER watcher

# The schema is migrated on start; several replicas may start at once on PostgreSQL.
ENTRYPOINT ["watcher"]
CMD ["run"]

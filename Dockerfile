# Base image and every Python dependency pinned (requirements.lock): a rebuild installs the same bits.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app

# The base image's standard library has no bytecode (its build deletes every .pyc), and nothing at
# run time may write any: without this step every start compiled the ~240 standard modules watcher
# imports, ~0.5 s more on `watcher run`'s start-up (benchmarks/FINDINGS.md, Start-up). pip compiles
# what it installs below, watcher included.
RUN python -m compileall -q -j 0 -x '/(test|tests|idle_test)/' "$(python -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')"

COPY pyproject.toml README.md requirements.lock ./
COPY watcher ./watcher
RUN pip install -c requirements.lock . && useradd --create-home --uid 10001 watcher && mkdir -p /app/data && chown watcher /app/data

COPY config ./config
COPY seeds ./seeds
USER watcher

# The schema is migrated on start; several replicas may start at once on PostgreSQL.
ENTRYPOINT ["watcher"]
CMD ["run"]

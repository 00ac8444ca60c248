# syntax=docker/dockerfile:1
# The serving image (default target), a baked-model variant and the training job's image.
#
#   docker build -t titanic-serving .                                 # pulls the model at start
#   docker build --target serving-baked -t titanic-serving:baked .    # serves ./model (see README)
#   docker build --target training -t titanic-training .              # python -m training.champion
#
# BASE_IMAGE: any Debian bookworm with python3 (3.11) and its venv module: the official
# python:3.11-slim-bookworm, or a local debootstrap base (containers/base-image.sh) where no
# registry is reachable. Behind a TLS-intercepting proxy, pass its CA bundle as the build secret
# `pip-ca` (--secret id=pip-ca,src=/etc/ssl/certs/ca-certificates.crt): used by pip, never stored.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS python
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# -- serving dependencies: only what serving needs, at the versions pinned in requirements.lock --
FROM python AS serving-deps
WORKDIR /build
COPY requirements.lock containers/requirements-serving.txt ./
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install -r requirements-serving.txt -c requirements.lock \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes setuptools pip \
    && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

# -- the serving image: the venv and serving/, nothing else, as a non-root user --
FROM python AS serving
RUN groupadd --system --gid 10001 serving \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /app \
        --shell /usr/sbin/nologin serving
COPY --from=serving-deps /opt/venv /opt/venv
WORKDIR /app
COPY serving/ serving/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    SERVING_HOST=0.0.0.0 \
    SERVING_PORT=5000 \
    SERVING_WORKERS=2 \
    SERVING_MODEL_URI=models:/titanic@champion
# MLFLOW_TRACKING_URI names the registry (e.g. http://mlflow:5000): set it at `docker run`.
USER 10001:10001
EXPOSE 5000
# Healthy means ready: /ready answers 200 only once a model is loaded and self-checked.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/ready' % os.environ.get('SERVING_PORT', '5000'), timeout=4)"]
ENTRYPOINT ["python", "-m", "serving"]

# -- the same server with a model baked in: build with the model downloaded into ./model --
FROM serving AS serving-baked
COPY --chown=10001:10001 model/ /opt/model/
# ./model comes from `python -m serving.bake --model-uri models:/titanic@champion --output model`:
# the model plus registry.json (its name, version and tags). No registry is opened at start.
ENV SERVING_MODEL_URI=/opt/model

# -- the training job: the whole lock (dvc, mlflow, ...) and the pipeline's sources --
FROM python AS training-deps
WORKDIR /build
COPY requirements.lock ./
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install -r requirements.lock \
    && /opt/venv/bin/pip check \
    && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

FROM python AS training
RUN groupadd --system --gid 10001 training \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /app \
        --shell /usr/sbin/nologin training
COPY --from=training-deps /opt/venv /opt/venv
WORKDIR /app
COPY --chown=10001:10001 pyproject.toml params.yaml dvc.yaml dvc.lock .dvcignore ./
COPY --chown=10001:10001 .dvc/config .dvc/config
COPY --chown=10001:10001 data/raw.dvc data/raw.dvc
COPY --chown=10001:10001 training/ training/
COPY --chown=10001:10001 serving/ serving/
# No git in the image: DVC runs without SCM, and the lineage tags say git_commit=unknown.
# The DVC remote (../../shared/dvc-remote from .dvc/) resolves to /shared/dvc-remote: mount it.
RUN chown 10001:10001 /app \
    && /opt/venv/bin/dvc config --local core.no_scm true \
    && chown -R 10001:10001 /app/.dvc
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app
USER 10001:10001
CMD ["sh", "-c", "dvc pull --quiet data/raw.dvc && exec python -m training.champion"]

# -- the MLflow tracking server for compose.yaml: mlflow (locked) plus the Postgres driver --
FROM python AS tracking-deps
ARG PSYCOPG2_BINARY_VERSION=2.9.13
WORKDIR /build
COPY requirements.lock ./
RUN --mount=type=secret,id=pip-ca \
    if [ -s /run/secrets/pip-ca ]; then export PIP_CERT=/run/secrets/pip-ca; fi \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install mlflow "psycopg2-binary==${PSYCOPG2_BINARY_VERSION}" \
        -c requirements.lock \
    && /opt/venv/bin/pip check \
    && /opt/venv/bin/pip uninstall --yes setuptools pip \
    && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

FROM python AS tracking
RUN groupadd --system --gid 10001 mlflow \
    && useradd --system --no-log-init --uid 10001 --gid 10001 --home-dir /srv/mlflow \
        --shell /usr/sbin/nologin mlflow \
    && mkdir -p /srv/mlflow/artifacts \
    && chown -R 10001:10001 /srv/mlflow
COPY --from=tracking-deps /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /srv/mlflow
USER 10001:10001
EXPOSE 5000
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:5000/health', timeout=4)"]
ENTRYPOINT ["mlflow", "server"]
CMD ["--host", "0.0.0.0", "--port", "5000", "--artifacts-destination", "/srv/mlflow/artifacts"]

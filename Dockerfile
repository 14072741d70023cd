# Container image of the gateway: `gateway serve` on port 8000, as an unprivileged user.
#
# Build:  docker build -t gateway .
#         (podman: add --format docker, or the OCI format drops the HEALTHCHECK)
# The base is an argument so the image can be built from an internal mirror or a locally
# built Debian image; builder and runtime must use the same base, because the virtualenv
# copied between them points at that base's Python interpreter. NODE_IMAGE is an argument for
# the same reasons; it only runs `npm ci` in the assets stage, so any image with node and npm
# will do (@gouvfr/dsfr asks for node 20.19+; older ones build it with an EBADENGINE warning).

ARG BASE_IMAGE=python:3.12-slim
ARG NODE_IMAGE=node:20-slim

# ---------------------------------------------------------------------------------------------
# assets: the French State design system (DSFR) for the ops console, from the npm registry at the
# version the committed lock pins; node stays in this stage, never in the runtime image
# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
# Source maps are two thirds of dist/ (about 57 of 86 MB) and only serve browser devtools; the
# unminified files stay for debugging. The licence travels with the files it covers (MIT, with
# restricted use of the Marianne font).
RUN npm ci --ignore-scripts --no-audit --no-fund \
    && mkdir dsfr \
    && cp -r node_modules/@gouvfr/dsfr/dist/. dsfr/ \
    && cp node_modules/@gouvfr/dsfr/LICENSE.md dsfr/ \
    && find dsfr -name '*.map' -delete

# ---------------------------------------------------------------------------------------------
# builder: wheels of the project and of every dependency, installed into /opt/gateway
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Same path as in the runtime stage: a virtualenv's scripts hard-code its absolute path.
RUN python3 -m venv /opt/gateway

WORKDIR /src
# Only what the wheel is made of; tests, benchmarks and local state stay out of the image.
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY connectors ./connectors
COPY mocks ./mocks
COPY migrations ./migrations

# The console's DSFR assets, built in the `assets` stage, travel inside the wheel as package data.
COPY --from=assets /assets/dsfr ./gateway/console/static/dsfr

# Installing from the wheels just built, with no index, guarantees the venv holds exactly what
# was resolved once. The cache mount only speeds up rebuilds; it never ends up in a layer.
# pip and setuptools then leave the venv: nothing installs packages at run time.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/gateway/bin/pip wheel --wheel-dir /wheels . \
    && /opt/gateway/bin/pip install --no-index --find-links /wheels dlnuf-gateway \
    && /opt/gateway/bin/pip uninstall --yes setuptools pip \
    && /opt/gateway/bin/gateway --help > /dev/null

# ---------------------------------------------------------------------------------------------
# runtime: the base image plus the virtualenv; no compiler, no source tree, no build tools
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

LABEL org.opencontainers.image.title="dlnuf-gateway" \
      org.opencontainers.image.description="Tell-us-once data-exchange gateway (URSSAF)" \
      org.opencontainers.image.licenses="EUPL-1.2"

# A fixed uid/gid, outside the range of host and distribution accounts, so volume ownership
# and Kubernetes' runAsNonRoot checks do not depend on the base image's /etc/passwd.
# (--no-log-init: a large uid would otherwise grow a sparse /var/log/lastlog into the layer)
RUN groupadd --gid 10001 gateway \
    && useradd --uid 10001 --gid gateway --home-dir /var/lib/gateway --no-create-home \
        --no-log-init --shell /usr/sbin/nologin gateway \
    && install -d -o gateway -g gateway -m 0750 /var/lib/gateway

# Owned by root: the running process can read its code but not change it.
COPY --from=builder /opt/gateway /opt/gateway

# The embedded default keeps its SQLite file and master key in GATEWAY_VAR_DIR; mount a volume
# there to keep them. Production sets GATEWAY_DATABASE_URL to PostgreSQL and GATEWAY_MASTER_KEY.
ENV PATH=/opt/gateway/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_VAR_DIR=/var/lib/gateway \
    GATEWAY_DATABASE_URL=sqlite:////var/lib/gateway/gateway.db \
    GATEWAY_LOG_FORMAT=json

USER 10001:10001
WORKDIR /var/lib/gateway
EXPOSE 8000

# Slim images have no curl; urlopen raises (exit 1) on a refused connection or a non-2xx answer.
# The port is the one CMD binds: change both together.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["/opt/gateway/bin/python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]

ENTRYPOINT ["gateway"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]

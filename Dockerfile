# The traefik-gen sidecar: `traefik-gen watch` as an unprivileged user.
# Build from the repository root: docker build -t traefik-gen:0.1.0 .

FROM python:3.12.11-slim-bookworm AS build

# A venv under one prefix is copied whole into the final stage: pip's build
# dependencies and the source tree stay behind in this stage.
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY traefik_gen ./traefik_gen
COPY templates ./templates
RUN python -m venv /opt/traefik-gen \
    && /opt/traefik-gen/bin/pip install --no-cache-dir . \
    && /opt/traefik-gen/bin/pip uninstall --yes pip

FROM python:3.12.11-slim-bookworm

# The uid/gid a Dokploy host grants write access to (README.md: setfacl on the
# dynamic directory), fixed so that the grant outlives every rebuild of the image.
RUN groupadd --system --gid 10001 traefik-gen \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin traefik-gen

COPY --from=build /opt/traefik-gen /opt/traefik-gen

ENV PATH=/opt/traefik-gen/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    TRAEFIK_GEN_LISTEN=0.0.0.0:9180

USER 10001:10001
EXPOSE 9180

# urllib, not curl: the slim image has no curl. The port follows TRAEFIK_GEN_LISTEN.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as r; port = os.environ.get('TRAEFIK_GEN_LISTEN', ':9180').rpartition(':')[2]; r.urlopen('http://127.0.0.1:' + port + '/healthz', timeout=3)"]

ENTRYPOINT ["traefik-gen"]
CMD ["watch"]

# One image for every part of redline; `redline` is the entrypoint:
#   docker build -t redline:0.1.0 .
#   docker run --read-only --cap-drop ALL redline:0.1.0 ambassador --listen 0.0.0.0:15080 ...
# Runs as a non-root user and needs no writable path: bytecode is compiled at build time.

FROM python:3.11-slim-bookworm AS build
# A C compiler for the ambassador's splice relay and the mypyc-compiled hot modules
# (hatch_build.py; the python image has Python's headers); this stage is discarded.
# libc6-dev follows Debian's security updates, so its version is not pinned.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc=4:12.2.0-3 libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md hatch_build.py ./
COPY tools/compile.py ./tools/
COPY redline ./redline
# The image ships every C extension of hatch_build.py (the splice relay, the log and head
# readers) and every hot module compiled by mypyc (the hook runs tools/compile.py): the build
# fails rather than fall back to pure Python.
RUN python -m venv /opt/redline \
 && /opt/redline/bin/pip install --no-cache-dir /src \
 && /opt/redline/bin/python -W error -c "from redline import build as b, compiled as c; \
assert b.compiled_modules() == b.OPTIONAL_MODULES, b.describe(); \
assert c.compiled_modules() == c.MYPYC_MODULES, b.describe()" \
 && /opt/redline/bin/python -m compileall -q /opt/redline

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="redline" \
      org.opencontainers.image.description="RED and USE metrics: sidecars, dashboards, alerts"
COPY --from=build /opt/redline /opt/redline
# The one writable place, for a volume shared by an app and the adapter (a new named volume
# takes this owner, so the non-root user can write there with a read-only root filesystem).
RUN mkdir -p /var/log/redline && chown 65532:65532 /var/log/redline
ENV PATH=/opt/redline/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# 65532: the conventional "nonroot" uid; inject's securityContext runs the sidecars as it too.
USER 65532:65532
EXPOSE 15080 9901 9902 9100 8443
ENTRYPOINT ["redline"]
CMD ["--help"]

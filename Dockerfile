# bodega in a container: docker build -t bodega . && docker run -p 127.0.0.1:3141:3141 bodega
# (or `docker compose up -d` with compose.yaml). The cache lives on the volume at
# /var/lib/bodega; the first start initialises it.

# Build: a virtual environment with bodega and its dependencies, made where it will run.
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /opt/bodega \
    && /opt/bodega/bin/pip install --no-cache-dir .

# Run: the same base without build leftovers; the venv keeps pip, which bodega asks for the
# public index's address.
FROM python:3.11-slim-bookworm
RUN useradd --system --user-group --uid 10001 --no-create-home \
        --home-dir /var/lib/bodega --shell /usr/sbin/nologin bodega \
    && install -d -o bodega -g bodega -m 0750 /var/lib/bodega
COPY --from=build /opt/bodega /opt/bodega
# BODEGA_HOST: all interfaces inside the container; publish the port on loopback (compose.yaml).
# BODEGA_SHUTDOWN_TIMEOUT: under the 10 s that `docker stop` waits before it kills.
ENV PATH=/opt/bodega/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    BODEGA_HOST=0.0.0.0 \
    BODEGA_PORT=3141 \
    BODEGA_DATA_DIR=/var/lib/bodega \
    BODEGA_SHUTDOWN_TIMEOUT=8
# Numeric, so a runtime can check it is not root without reading /etc/passwd.
USER 10001:10001
WORKDIR /var/lib/bodega
VOLUME ["/var/lib/bodega"]
EXPOSE 3141
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/-/health' % os.environ['BODEGA_PORT'], timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["bodega"]
CMD ["serve"]

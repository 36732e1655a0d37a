# gwi's web process in a container: docs/deploy.md. Build with `docker build -t gwi .`
FROM python:3.11-slim

# git is the one system tool gwi needs (fetching, merging, pushing approved commits).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*

# Never root: a bug in a merge tool or a hostile repository gets an unprivileged user at most.
RUN useradd --create-home --uid 10001 gwi \
    && mkdir /data \
    && chown gwi:gwi /data

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
RUN pip install --no-cache-dir .

USER gwi
# Run bundles, the queue database, the repository cache and (unless GWI_SIGNING_KEY points
# elsewhere) the signing key: keep them on a volume that survives the container.
ENV GWI_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

CMD ["gwi", "serve"]

# aurora-sync: `docker run --env-file .env -v $PWD/ca-cert.pem:/app/ca-cert.pem:ro aurora-sync check`
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY sync ./sync
COPY bootstrap ./bootstrap
RUN pip install . && rm -rf /src

WORKDIR /app
COPY schemas ./schemas
COPY config ./config
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin aurora \
    && chown -R aurora:aurora /app
USER aurora

# The schemas are not inside the installed package; init finds them here. The HTTP endpoints
# listen on every interface so the platform (and Prometheus) can reach them.
ENV AURORA_SYNC_SCHEMAS_DIR=/app/schemas \
    AURORA_SYNC_MAPPING=/app/config/mapping.yaml \
    AURORA_SYNC_HTTP_ADDR=0.0.0.0:9108
EXPOSE 9108

# The slim image has no curl: ask /healthz with Python's standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["aurora-sync"]
CMD ["run"]

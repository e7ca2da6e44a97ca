# plowshare: one image for the API server, the ingest worker and the migration step.
#   docker build -t plowshare .
#   docker run plowshare plowshare serve | plowshare ingest | plowshare migrate

# Map assets come from npm at build time (no CDN at run time).
FROM node:20-bookworm-slim AS assets
WORKDIR /src/static
COPY static/package.json static/package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN useradd --system --uid 10001 --user-group --home-dir /app --shell /usr/sbin/nologin plowshare
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app app
COPY ingest ingest
COPY geo geo
RUN pip install . && rm -rf build *.egg-info
COPY migrations migrations
COPY static static
COPY --from=assets /src/static/node_modules/maplibre-gl/dist static/node_modules/maplibre-gl/dist
ENV PLOWSHARE_ENVIRONMENT=production \
    PLOWSHARE_DATABASE_MIGRATIONS_DIR=/app/migrations \
    PLOWSHARE_HTTP_STATIC_DIR=/app/static \
    PLOWSHARE_HTTP_HOST=0.0.0.0
USER plowshare
EXPOSE 8000
# The health check belongs to the API service (docker-compose.yml): the same image also
# runs the ingest worker and the migration step, which serve no HTTP.
CMD ["plowshare", "serve"]

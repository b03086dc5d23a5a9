# One image for every role; the role is the command (see compose.yaml):
#   pek dev | pek hub | pek realm | pek router
# Stage 1 installs GraphiQL's assets from npm (they are never committed).
FROM node:20-slim AS graphiql-assets
WORKDIR /assets
COPY router/static/package.json router/static/package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
# The code is root-owned and read-only for the server; .dockerignore keeps local state out of
# the image (signing keys, SQLite files, virtualenvs, node_modules, .env, deploy/).
COPY . .
COPY --from=graphiql-assets /assets/node_modules router/static/node_modules
# Everything the server writes lives under /app/var, owned by the unprivileged user `pek`
# (uid 10001): the all-in-one SQLite file and the hub's signing keys (/app/var/keys, mode 0700;
# compose mounts a named volume there, which starts with this owner and mode).
RUN pip install -e . \
    && useradd --uid 10001 --user-group --create-home pek \
    && mkdir -p /app/var/keys \
    && chown -R pek:pek /app/var \
    && chmod 0700 /app/var/keys
USER pek
ENV PEK_HUB_DATABASE_URL=sqlite+aiosqlite:////app/var/pek.sqlite3 \
    PEK_REALM_DATABASE_URL=sqlite+aiosqlite:////app/var/pek.sqlite3 \
    PEK_KEY_DIR=/app/var/keys
EXPOSE 8000
CMD ["pek", "dev", "--host", "0.0.0.0", "--port", "8000"]

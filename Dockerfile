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
COPY . .
COPY --from=graphiql-assets /assets/node_modules router/static/node_modules
RUN pip install -e . && useradd --create-home pek && mkdir -p /app/var && chown pek /app/var
USER pek
ENV PEK_HUB_DATABASE_URL=sqlite+aiosqlite:////app/var/pek.sqlite3 \
    PEK_REALM_DATABASE_URL=sqlite+aiosqlite:////app/var/pek.sqlite3
EXPOSE 8000
CMD ["pek", "dev", "--host", "0.0.0.0", "--port", "8000"]

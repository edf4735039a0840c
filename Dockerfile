# spillway container image.
#
#   docker build -t spillway .
#   docker run --rm -p 8080:8080 -p 9901:9901 \
#     -v "$PWD/my-gateway.yaml:/etc/spillway/gateway.yaml:ro" spillway
#
# The image reads its configuration from /etc/spillway/gateway.yaml. The file baked in is only a
# placeholder (a copy of config/demo.yaml, whose backends on 127.0.0.1:9001-9003 do not exist in
# the container): mount your own file over it, or a directory over /etc/spillway.
# Validate a file with the same image:
#   docker run --rm -v "$PWD/my-gateway.yaml:/etc/spillway/gateway.yaml:ro" spillway \
#     node dist/cli/main.js check --config /etc/spillway/gateway.yaml
#
# Inside a container both listeners must bind 0.0.0.0 to be reachable through published ports
# and by orchestrator probes; the placeholder reads that from SPILLWAY_LISTEN_HOST and
# SPILLWAY_ADMIN_HOST (set below). The HEALTHCHECK expects the admin listener on port 9901.
#
# The admin listener on 0.0.0.0 needs a token for /admin/* (reload, state, config); without one
# it answers them 401 and logs a warning (/healthz, /readyz and /metrics stay open). Pass it at run
# time, never in the image:
#   docker run --rm -p 8080:8080 -p 127.0.0.1:9901:9901 \
#     -e SPILLWAY_ADMIN_TOKEN="$(openssl rand -hex 32)" \
#     -v "$PWD/my-gateway.yaml:/etc/spillway/gateway.yaml:ro" spillway
#   curl -H "Authorization: Bearer $SPILLWAY_ADMIN_TOKEN" http://127.0.0.1:9901/admin/upstreams
# (or `--env-file`, a Docker/Kubernetes secret exposed as SPILLWAY_ADMIN_TOKEN). docs/security.md.

# ---- build: compile TypeScript with the dev dependencies ------------------------------------
FROM node:24-slim AS build
WORKDIR /src

# Dependencies first, so this layer is cached while only sources change.
# --ignore-scripts: the only install script in the tree is the `node` devDependency's, which
# downloads a second Node binary the image already has; it would also run the package's
# `prepare` (a tsc build) before the sources are copied.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund

COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

# ---- runtime: production dependencies, compiled JavaScript, config --------------------------
FROM node:24-slim AS runtime
ENV NODE_ENV=production \
    SPILLWAY_LISTEN_HOST=0.0.0.0 \
    SPILLWAY_ADMIN_HOST=0.0.0.0
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force

COPY --from=build /src/dist ./dist
COPY config ./config
# Placeholder configuration: mount your own over /etc/spillway/gateway.yaml.
COPY config/demo.yaml /etc/spillway/gateway.yaml

# Application files stay owned by root (read-only for the process); it runs as the image's
# unprivileged `node` user.
USER node

EXPOSE 8080 9901

# slim images have no curl: probe the admin listener with node itself.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:9901/healthz',{signal:AbortSignal.timeout(2500)}).then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]

# spillway stops gracefully on SIGTERM (finishes in-flight requests, exits 0).
STOPSIGNAL SIGTERM
CMD ["node", "dist/cli/main.js", "--config", "/etc/spillway/gateway.yaml"]

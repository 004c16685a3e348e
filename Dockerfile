# syntax=docker/dockerfile:1
# Multi-stage: dependencies are installed (with their native install scripts) in the build stage; the runtime stage holds
# production dependencies only and runs as the unprivileged `node` user. The service runs compiled
# (dist/); the short-lived CLIs (migrate, audit, token) run their TypeScript through tsx.

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    API_HOST=0.0.0.0 \
    RADIUS_HOST=:: \
    DATA_DIR=/var/lib/campus-aaa
WORKDIR /app
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --chown=node:node package.json tsconfig.json ./
COPY --from=build --chown=node:node /app/dist ./dist
COPY --chown=node:node src ./src
COPY --chown=node:node migrations ./migrations
COPY --chown=node:node dictionaries ./dictionaries
COPY --chown=node:node docker/entrypoint.sh /usr/local/bin/campus-aaa-entrypoint
RUN mkdir -p /var/lib/campus-aaa && chown node:node /var/lib/campus-aaa && chmod 0755 /usr/local/bin/campus-aaa-entrypoint
USER node
EXPOSE 1812/udp 1813/udp 8080/tcp
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.API_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
ENTRYPOINT ["/usr/local/bin/campus-aaa-entrypoint"]
CMD ["start"]

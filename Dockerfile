# mailops for CI pipelines: `docker run --rm -v "$PWD:/work" -w /work mailops validate site.yaml`
# BASE is an official Node 20 image; any Debian-based image with node and npm on PATH works.
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS build
WORKDIR /opt/mailops
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY templates ./templates
COPY playbooks ./playbooks
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM ${BASE}
ENV NODE_ENV=production
WORKDIR /opt/mailops
COPY --from=build /opt/mailops/package.json ./
COPY --from=build /opt/mailops/node_modules ./node_modules
COPY --from=build /opt/mailops/dist ./dist
COPY --from=build /opt/mailops/templates ./templates
COPY --from=build /opt/mailops/playbooks ./playbooks
RUN ln -s /opt/mailops/dist/cli.js /usr/local/bin/mailops
WORKDIR /work
ENTRYPOINT ["node", "/opt/mailops/dist/cli.js"]
CMD ["--help"]

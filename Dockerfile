# mailops for CI pipelines: `docker run --rm -v "$PWD:/work" -w /work mailops validate site.yaml`.
# `mailops test` in it drives the host's Docker engine through its socket, on the host's network (the
# throwaway containers publish their ports on the host's 127.0.0.1):
#   docker run --rm --network host -v /var/run/docker.sock:/var/run/docker.sock -v "$PWD:/work" mailops test site.yaml
# BASE is an official Node 20 image; any Debian-based image with node and npm on PATH works.
ARG BASE=node:20-bookworm-slim

FROM ${BASE} AS build
WORKDIR /opt/mailops
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY templates ./templates
COPY playbooks ./playbooks
COPY scripts/build.mjs ./scripts/build.mjs
RUN npm ci --no-audit --no-fund && npm prune --omit=dev --no-audit --no-fund

FROM ${BASE}
ENV NODE_ENV=production
WORKDIR /opt/mailops
COPY --from=build /opt/mailops/package.json ./
COPY --from=build /opt/mailops/node_modules ./node_modules
COPY --from=build /opt/mailops/dist ./dist
COPY --from=build /opt/mailops/templates ./templates
COPY --from=build /opt/mailops/playbooks ./playbooks
# mailops test: the Docker client (the engine is the host's), debootstrap for the test images' Debian
# base, git for --base REV, dig and nsupdate for the zones it publishes, ssh-keygen for the test key, and the image recipes.
RUN apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker.io debootstrap git bind9-dnsutils openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY images ./images
RUN ln -s /opt/mailops/dist/cli.js /usr/local/bin/mailops
WORKDIR /work
ENTRYPOINT ["node", "/opt/mailops/dist/cli.js"]
CMD ["--help"]

#!/usr/bin/env bash
# The whole test suite, with its own set-up: dependencies, build, system tools, Docker engine, images.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*" >&2; }

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi
log "building"
npm run --silent build

need=()
command -v named-checkzone >/dev/null || need+=(bind9-utils)
command -v openssl >/dev/null || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${need[*]}"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them, e.g. apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

log "unit tests"
npx vitest run --project unit "$@"
if [ -z "${MAILOPS_SKIP_INTEGRATION:-}" ]; then
  log "integration tests (Docker engine and images are set up on demand)"
  npx vitest run --project integration "$@"
fi

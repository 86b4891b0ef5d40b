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
command -v sslscan >/dev/null || need+=(sslscan)
command -v openssl >/dev/null || need+=(openssl)
command -v nsupdate >/dev/null || need+=(bind9-dnsutils)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v sudo >/dev/null || need+=(sudo)
# A real BIND for the DNS engine's own tests (never started as a service: see policy-rc.d below).
command -v named >/dev/null || [ -x /usr/sbin/named ] || need+=(bind9)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "installing ${need[*]}"
    # Packages must not start their daemons on this machine (sshd, named): policy-rc.d says no.
    ours=; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && ours=1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    [ -z "$ours" ] || rm -f /usr/sbin/policy-rc.d
  else
    echo "missing: ${need[*]} (install them, e.g. apt-get install ${need[*]})" >&2
    exit 1
  fi
fi

results=$(mktemp -d)
status=0
log "unit tests"
npx vitest run --project unit --reporter=default --reporter=json --outputFile="$results/unit.json" "$@" || status=1
if [ -z "${MAILOPS_SKIP_INTEGRATION:-}" ]; then
  log "integration tests (Docker engine and images are set up on demand)"
  npx vitest run --project integration --reporter=default --reporter=json --outputFile="$results/integration.json" "$@" || status=1
fi
# One closing line for both runs.
node -e '
  const fs = require("node:fs");
  let p = 0, f = 0;
  for (const n of fs.readdirSync(process.argv[1])) {
    const r = JSON.parse(fs.readFileSync(`${process.argv[1]}/${n}`, "utf8"));
    p += r.numPassedTests; f += r.numFailedTests;
  }
  console.log(`mailops: ${p} passed, ${f} failed`);
' "$results" || true
rm -rf "$results"
exit $status

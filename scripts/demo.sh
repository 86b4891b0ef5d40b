#!/usr/bin/env bash
# The main job on the embedded default target: a local sandbox VPS container gets the example
# playbook applied and verified over the wire. Sets itself up (npm packages, Docker engine, images).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build
mailops() { node dist/cli.js "$@"; }

work=.mailops/demo
mkdir -p "$work"
chmod 700 .mailops "$work"
cp playbooks/examples/sandbox.yaml "$work/site.yaml"
# The example's mailbox passwords come from the environment; keep generated ones across runs.
if [ ! -f "$work/passwords.env" ]; then
  umask 077
  printf 'MAILOPS_ALICE_PASSWORD=%s\nMAILOPS_BOB_PASSWORD=%s\n' "$(openssl rand -hex 12)" "$(openssl rand -hex 12)" > "$work/passwords.env"
fi
set -a; . "$work/passwords.env"; set +a

echo "== 1/4 validate" >&2
mailops validate "$work/site.yaml"
echo "== 2/4 sandbox up (builds the VPS image the first time)" >&2
mailops sandbox up "$work/site.yaml"
echo "== 3/4 apply" >&2
mailops apply --sandbox --yes "$work/site.yaml"
echo "== 4/4 verify" >&2
mailops verify --sandbox "$work/site.yaml"
mailops dns --out "$work/zones" "$work/site.yaml"
cat >&2 <<MSG

Done: the sandbox runs the example playbook ($work/site.yaml) and every check passed.
  re-apply (nothing to do):  node dist/cli.js apply --sandbox --yes $work/site.yaml
  see the plan:              node dist/cli.js plan --sandbox $work/site.yaml
  DNS zones:                 $work/zones/
  mailbox passwords:         $work/passwords.env
  how to reach it:           node dist/cli.js sandbox status
  remove it:                 node dist/cli.js sandbox down
MSG

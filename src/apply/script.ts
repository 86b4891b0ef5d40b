/**
 * The activation script: one remote run that does everything a plan says, in this order —
 * lock, check the host is as planned, packages, users, directories, prepare commands, validate the staged
 * files with the daemons' own checkers, back up and swap files in (each by rename), activate commands,
 * handlers once, check services are active and listening, then the commands that need them running; on
 * any failure after the swap, put the previous files back and restart. It ignores SIGHUP, so a dropped
 * connection does not cut it in half.
 * Pure: builds text from the plan.
 */
import type { DesiredHost } from '../model/desired.js';
import type { HostFacts } from '../model/facts.js';
import type { Change, HostPlan } from '../model/plan.js';
import { packagesStep, stepOf } from './steps.js';
import { LOCK_FILE, shq, shqAll, unitAndInstances, unitOf } from '../facts/shell.js';
import { sha256 } from '../plan/plan.js';
import { dkimCacheCommand, dkimPublicCommand, tlsFingerprintCommand } from '../facts/script.js';

export const STATE_DIR = '/var/lib/mailops';
export { MARK } from './steps.js';
import { MARK } from './steps.js';

export interface ActivationInput {
  desired: DesiredHost;
  facts: HostFacts;
  plan: HostPlan;
  /** Digest of the playbook, recorded in the host's apply history. */
  digest: string;
  /** Seconds to wait for another apply's lock. */
  lockWait?: number;
}

/** Paths of the files to upload: every file of a component that has a created or changed file. */
export function stagedFiles(desired: DesiredHost, plan: HostPlan): DesiredHost['files'] {
  const comps = new Set(plan.changes.filter((c) => c.kind === 'file' && c.action !== 'metadata').map((c) => (c as { component: string }).component));
  return desired.files.filter((f) => comps.has(f.component));
}

/** TLS ports and how a handshake starts on them (openssl s_client arguments). */
export const TLS_PORTS: Record<number, string> = { 25: '-starttls smtp', 587: '-starttls smtp', 465: '', 143: '-starttls imap', 993: '', 110: '-starttls pop3', 995: '' };

/**
 * Shell lines that refuse a certificate and key that cannot serve: not a certificate, not a key, not a
 * pair, expired. One that does not name the host is a warning (a client will complain, mail still flows).
 */
export function tlsCheck(cert: string, key: string, hostname: string): string[] {
  const c = shq(cert);
  const k = shq(key);
  const fail = (why: string) => `{ say "${MARK} fail tls ${why}"; detail "$out"; finish failed 1; }`;
  return [
    'step check certificate',
    `out=$(openssl x509 -in ${c} -noout 2>&1) || ${fail(`${cert} is not a certificate (PEM): nothing was activated`)}`,
    `out=$(openssl pkey -in ${k} -noout 2>&1) || ${fail(`${key} is not a private key (PEM, without a passphrase): nothing was activated`)}`,
    `out=; [ "$(openssl x509 -in ${c} -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform DER 2>/dev/null | sha256sum)" = "$(openssl pkey -in ${k} -pubout -outform DER 2>/dev/null | sha256sum)" ] || ${fail(`${cert} does not belong to the key ${key}: nothing was activated`)}`,
    `out=$(openssl x509 -in ${c} -noout -enddate 2>&1); openssl x509 -in ${c} -noout -checkend 0 >/dev/null 2>&1 || ${fail(`${cert} has expired (${'$'}out): nothing was activated`)}`,
    `openssl x509 -in ${c} -noout -checkhost ${shq(hostname)} 2>/dev/null | grep -q 'does match' || warn "the certificate ${cert} does not name ${hostname}: clients will warn"`,
  ];
}


export function activationScript(input: ActivationInput): string {
  const { desired, facts, plan } = input;
  const os = desired.os;
  const changed = plan.changes;
  const staged = stagedFiles(desired, plan);
  // Every file the swap writes or removes (a removed file is backed up like a replaced one).
  const swapPaths = changed.filter((c) => c.kind === 'file' && c.action !== 'metadata').map((c) => (c as { path: string }).path);
  const removed = new Set(changed.filter((c) => c.kind === 'file' && c.action === 'remove').map((c) => (c as { path: string }).path));
  const metaOnly = changed.filter((c) => c.kind === 'file' && c.action === 'metadata') as Array<{ path: string; owner: string; group: string; mode: string }>;
  const L: string[] = [];
  const add = (...xs: string[]) => L.push(...xs);

  add(
    'set -u',
    'trap "" HUP PIPE',
    'umask 022',
    'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; LC_ALL=C; export PATH LC_ALL',
    // The previous files are kept apart from the run (its own filesystem may be mounted there).
    `RUN="$1"; STAGE="$RUN/stage"; BACKUP=${STATE_DIR}/backup/"$(basename "$RUN")"; LOG="$RUN/log"; export STAGE`,
    `say() { printf '%s\\n' "$*" >>"$LOG"; printf '%s\\n' "$*" 2>/dev/null; return 0; }`,
    `step() { say "${MARK} step $*"; }`,
    // fail STEP MESSAGE: report a failure with a multi-line detail.
    `detail() { printf '%s\\n' "$1" | tail -n 40 | while IFS= read -r l; do say "${MARK} detail $l"; done; }`,
    `record() { printf '%s\\t%s\\t%s\\t%s\\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" ${shq(input.digest)} "$1" ${changed.length} >> ${STATE_DIR}/history.log; }`,
    `finish() { say "${MARK} result $1"; record "$1"; phase "$1"; for k in runs backup; do ls -1dt ${STATE_DIR}/$k/* 2>/dev/null | tail -n +6 | xargs -r rm -rf; done; exit "$2"; }`,
    // The journal says how far the run got; a run killed on the way (reboot, OOM, SIGKILL) leaves its phase there.
    // An operator can hold a run at a phase to look at the host: /run/mailops/hold names the phase.
    `phase() { echo "$1" > "$RUN/journal"; while [ "$(cat /run/mailops/hold 2>/dev/null)" = "$1" ]; do sleep 0.2; done; }`,
    'warn() { say "' + MARK + ' warn $*"; }',
    `exec 9>${LOCK_FILE}`,
    `if ! flock -n 9; then step lock waiting; if ! flock -w ${input.lockWait ?? 300} 9; then say "${MARK} fail lock another mailops apply holds ${LOCK_FILE}"; exit 75; fi; fi`,
    'step lock ok',
    'phase started',
    // Earlier runs that were killed: this run sees them (the plan said so); they are settled now.
    `for d in ${STATE_DIR}/runs/*/; do [ "$d" = "$RUN/" ] || [ ! -f "$d/journal" ] || grep -q '^${MARK} result ' "$d/log" 2>/dev/null || { printf '%s\\n' '${MARK} result interrupted' >> "$d/log"; echo interrupted > "$d/journal"; }; done`,
    // A policy-rc.d left by a run killed during package installation.
    `grep -q mailops /usr/sbin/policy-rc.d 2>/dev/null && rm -f /usr/sbin/policy-rc.d`,
  );

  // The host must still be as planned (another apply may have run while we waited).
  const expect: string[] = [];
  for (const c of changed) {
    if (c.kind !== 'file' || c.action === 'metadata') continue;
    const before = facts.files[c.path];
    expect.push(before ? `[ "$(sha256sum < ${shq(c.path)} 2>/dev/null | cut -c1-64)" = ${before.sha256} ] || drift=${shq(c.path)}` : `[ ! -e ${shq(c.path)} ] || drift=${shq(c.path)}`);
  }
  if (expect.length) {
    add('drift=', ...expect, `if [ -n "$drift" ]; then say "${MARK} fail drift $drift changed on the host since it was planned: run mailops again"; exit 75; fi`);
  }

  // The changes' own steps (steps.ts), in this order: packages (one transaction), users, directories.
  add(...packagesStep(desired, changed.filter((c) => c.kind === 'package').map((c) => (c as { name: string }).name)));
  for (const c of changed) if (c.kind === 'user' || c.kind === 'directory') add(...stepOf(c, desired));
  const commands = changed.filter((c) => c.kind === 'command') as Array<Extract<Change, { kind: 'command' }>>;
  const runCommand = (c: Extract<Change, { kind: 'command' }>) => add(...stepOf(c, desired));
  add('CMDFAIL=');
  for (const c of commands) if (desired.commands[c.index]!.phase === 'prepare') runCommand(c);
  add('[ -z "$CMDFAIL" ] || finish failed 1');

  // The certificate the services will present: refused before anything is activated when it is not one.
  if (desired.tlsCert && desired.tlsKey && changed.length) add(...tlsCheck(desired.tlsCert, desired.tlsKey, desired.host.hostname));

  // Validate the staged files with the daemons' own checkers; nothing is in place yet.
  const stagedComps = new Set(staged.map((f) => f.component));
  const validations = desired.validations.filter((x) => stagedComps.has(x.component));
  // The desired files that are not staged are unchanged: their copies in place join the staged ones, so
  // the checkers read the whole new configuration (dovecot.conf includes replication.conf, of another
  // component; when only dovecot.conf changed, doveconf found no file to include).
  const stagedPaths = new Set(staged.map((f) => f.path));
  const unchanged = desired.files.filter((f) => !stagedPaths.has(f.path)).map((f) => f.path);
  if (validations.length && unchanged.length) add(`for f in ${shqAll(unchanged)}; do [ -f "$f" ] && { mkdir -p "$STAGE\${f%/*}" && cp -p "$f" "$STAGE$f"; } 2>>"$LOG"; done`);
  for (const v of validations) {
    add(`step validate ${shq(v.name)}`, `out=$( ( ${v.run} ) 2>&1 </dev/null ) || { say "${MARK} fail validate ${v.name.replace(/["$`\\]/g, '')}"; detail "$out"; finish failed 1; }`);
  }

  // Swap: back up, then rename each new file into place.
  if (swapPaths.length || metaOnly.length) {
    // Every previous file is copied aside first; if one copy fails (a full or read-only disk), nothing is swapped.
    add('step backup', 'phase backup', 'BACKFAIL=; { mkdir -p "$BACKUP" && : > "$RUN/created"; } 2>>"$LOG" || BACKFAIL="$BACKUP"');
    for (const path of swapPaths) {
      const p = shq(path);
      add(
        `if [ -e ${p} ]; then { mkdir -p "$BACKUP$(dirname ${p})" && cp -p ${p} "$BACKUP"${p} && cmp -s ${p} "$BACKUP"${p}; } 2>>"$LOG" || BACKFAIL=${p}; else echo ${p} >> "$RUN/created" || BACKFAIL=${p}; fi`,
      );
    }
    add(`[ -z "$BACKFAIL" ] || { say "${MARK} fail backup could not keep a copy of $BACKFAIL in $BACKUP (is the disk full or read-only?): nothing was swapped"; detail "$(tail -n 5 "$LOG" | grep -v '^${MARK}')"; finish failed 1; }`);
    add('step swap', 'phase swapping', 'SWAPFAIL=');
    for (const c of changed) if (c.kind === 'file') add(...stepOf(c, desired));
    // SELinux (RHEL): new files get the context policy gives their path, not the staging directory's.
    const labelled = [...swapPaths.filter((p) => !removed.has(p)), ...metaOnly.map((m) => m.path)];
    if (os.selinux && labelled.length) add(`command -v restorecon >/dev/null 2>&1 && restorecon -F ${shqAll(labelled)} 2>>"$LOG"`);
    add('phase swapped');
  } else add('SWAPFAIL=');

  // Rollback: previous files back, new ones removed, services restarted.
  const touchedUnits = [...new Set(changed.filter((c) => c.kind === 'service').map((c) => unitOf((c as { unit: string }).unit)))];
  // The services that ran before this run must run again after a rollback (a retired one enabled again too).
  const wereActive = [...new Set([...desired.services, ...desired.retired.units].filter((s) => facts.services[s.unit]?.active === 'active').map((s) => unitOf(s.unit)))];
  const reEnable = [...new Set(desired.retired.units.filter((x) => facts.services[x.unit]?.enabled === 'enabled').map((x) => unitOf(x.unit)))].filter((u) => touchedUnits.includes(u));
  add(
    'rollback() {',
    '  say "' + MARK + ' step rollback"',
    '  phase rolling-back',
    // Each previous file goes back by rename (a copy beside it first: the backup may be on another filesystem).
    '  (cd "$BACKUP" 2>/dev/null && find . -type f) | while IFS= read -r f; do t="/${f#./}"; { cp -p "$BACKUP/${f#./}" "$t.mailops-old" && mv -f "$t.mailops-old" "$t"; } 2>>"$LOG" || say "' + MARK + ' fail rollback could not put back $t"; done',
    '  while IFS= read -r f; do rm -f "$f"; done < "$RUN/created" 2>/dev/null',
    '  systemctl daemon-reload 2>/dev/null',
    ...reEnable.map((u) => `  systemctl enable ${shq(u)} >/dev/null 2>&1`),
    ...touchedUnits.map((u) => (wereActive.includes(u) ? `  systemctl restart ${shq(u)} >/dev/null 2>&1` : `  systemctl stop ${shq(u)} >/dev/null 2>&1`)),
    '  RBDOWN=',
    ...wereActive.map((u) => `  i=0; while [ "$(systemctl is-active ${shq(u)} 2>/dev/null)" != active ] && [ $i -lt 20 ]; do sleep 0.5; i=$((i+1)); done; [ "$(systemctl is-active ${shq(u)} 2>/dev/null)" = active ] || RBDOWN="$RBDOWN ${u}"`),
    '  if [ -n "$RBDOWN" ]; then say "' + MARK + ' fail rollback the previous files are back, but these services did not come back:$RBDOWN"; finish rollback-failed 1; fi',
    '  finish rolled-back 1',
    '}',
    `[ -z "$SWAPFAIL" ] || { say "${MARK} fail swap could not install $SWAPFAIL"; rollback; }`,
  );

  for (const c of commands) if (desired.commands[c.index]!.phase === 'activate') runCommand(c);
  add('[ -z "$CMDFAIL" ] || rollback');

  add('phase handlers');
  if (swapPaths.some((p) => p.startsWith('/etc/systemd/'))) add('systemctl daemon-reload');
  // The MTA this one replaces stops first (it holds the ports); the services of a feature that is off stop
  // last, after the reloads that stop using them (the MTA's milter or spam check).
  const services = changed.filter((c) => c.kind === 'service') as Array<Extract<Change, { kind: 'service' }>>;
  const replaced = (c: Extract<Change, { kind: 'service' }>) => c.action === 'stop-disable' && desired.replaces.some((x) => x.unit === c.unit);
  const retired = (c: Extract<Change, { kind: 'service' }>) => c.action === 'stop-disable' && !replaced(c);
  const serviceChanges = [...services.filter(replaced), ...services.filter((c) => c.action !== 'stop-disable'), ...services.filter(retired)];
  for (const c of serviceChanges) add(...stepOf(c, desired));

  // Every service active, every port listening (they may take a moment after a restart).
  if (changed.length) {
    add('phase checking', 'step check services');
    for (const s of desired.services) {
      const u = shq(unitOf(s.unit));
      add(
        `i=0; while [ "$(systemctl is-active ${u} 2>/dev/null)" != active ] && [ $i -lt 30 ]; do sleep 0.5; i=$((i+1)); done`,
        `if [ "$(systemctl is-active ${u} 2>/dev/null)" != active ]; then say "${MARK} fail check ${s.unit} is not active"; detail "$(journalctl -u ${u} -n 20 --no-pager 2>/dev/null)"; rollback; fi`,
      );
    }
    // The service this one replaces (the other MTA) is down, instances included: else it may be what holds
    // the ports checked below, while the new one waits to bind them.
    for (const r of desired.replaces) add(`if systemctl is-active --quiet ${unitAndInstances(r.unit)} 2>/dev/null; then say "${MARK} fail check ${r.unit} still runs: it was to be replaced"; rollback; fi`);
    const ports = [...new Set(desired.ports.filter((p) => p.listen).map((p) => p.port))].sort((a, b) => a - b);
    if (ports.length) {
      add(
        // ss when present; otherwise the kernel's own tables (state 0A = LISTEN, port in hex).
        `listening() { if command -v ss >/dev/null 2>&1; then ss -Hltn 2>/dev/null | awk '{print $4}' | sed 's/.*://' | grep -qx "$1"; else h=$(printf '%04X' "$1"); cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk -v p=":$h" '$4 == "0A" && substr($2, length($2) - 4) == p { f = 1 } END { exit !f }'; fi; }`,
        ...ports.map(
          (p) =>
            `i=0; while ! listening ${p} && [ $i -lt 30 ]; do sleep 0.5; i=$((i+1)); done; listening ${p} || { say "${MARK} fail check nothing listens on port ${p}"; rollback; }`,
        ),
      );
    }
  }
  // Every TLS port this host serves completes a handshake with the certificate in place.
  const tlsPorts = [...new Set(desired.ports.filter((p) => p.listen && TLS_PORTS[p.port] !== undefined).map((p) => p.port))].sort((a, b) => a - b);
  if (changed.length && tlsPorts.length) {
    add(
      'step check tls',
      `handshake() { out=$(timeout 15 openssl s_client -brief -connect "127.0.0.1:$1" -servername ${shq(desired.host.hostname)} $2 </dev/null 2>&1); printf '%s\n' "$out" | grep -q '^CONNECTION ESTABLISHED'; }`,
      ...tlsPorts.map((p) => `handshake ${p} ${shq(TLS_PORTS[p]!)} || { say "${MARK} fail check no TLS handshake on port ${p}"; detail "$out"; rollback; }`),
    );
  }
  // Commands that need the services running with the new files (a failure puts the previous files back).
  const running = commands.filter((c) => desired.commands[c.index]!.phase === 'running');
  if (running.length) {
    add('phase running');
    for (const c of running) runCommand(c);
    add('[ -z "$CMDFAIL" ] || rollback');
  }
  add('phase done');
  // Public halves of the DKIM keys, for the site state file.
  if (desired.dkimKeys.length) add(`dkimline() { say "${MARK} dkim $1 $2 $3"; }`);
  for (const k of desired.dkimKeys) add(dkimPublicCommand(k.keyFile, k.domain, k.selector, 'dkimline'));
  // The same, cached for the next fact scripts (a failure to cache changes nothing: facts run openssl then).
  if (desired.dkimKeys.length) add(`( ${dkimCacheCommand(desired.os.paths.dkimKeys)} ) >/dev/null 2>&1 || :`);
  if (desired.tlsCert) add(`fp=$(${tlsFingerprintCommand(desired.tlsCert)}); [ -n "$fp" ] && say "${MARK} tls $fp"`);
  add('finish ok 0');
  return `${L.join('\n')}\n`;
}

/** The command that unpacks the payload (tar on stdin: activate.sh + stage/) and runs it, detached from SIGHUP. */
export function activationCommand(runId: string): string {
  const run = `${STATE_DIR}/runs/${runId}`;
  return `trap "" HUP PIPE; umask 077; mkdir -p ${STATE_DIR}/runs && chmod 700 ${STATE_DIR} && mkdir ${run} && tar -x -o -C ${run} -f - && sh ${run}/activate.sh ${run}`;
}

export { sha256 };

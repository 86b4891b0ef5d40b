/**
 * One change, one step (dnscontrol's `Correction{Msg, F}`): the exact shell lines that carry out a change
 * of the plan. `plan` shows them (`--steps`, and `run` in `--json`); the activation script is composed of
 * them, between its fixed frame (lock, drift check, backup, rollback, checks). Pure.
 *
 * The lines run inside the activation script and use its helpers: `say`, `detail`, `finish`, `rollback`,
 * `$STAGE` (the uploaded files) and `$LOG`; a failed step either stops the run before anything is
 * activated (`finish failed`) or, once files are swapped, rolls back.
 */
import { shq, shqAll, unitAndInstances, unitOf } from '../facts/shell.js';
import type { DesiredHost } from '../model/desired.js';
import type { Change } from '../model/plan.js';

export const MARK = '@@mailops';

const clean = (s: string) => s.replace(/["$`\\]/g, '');

/** Every package of the plan in one transaction, with no daemon started while they install (Debian). */
export function packagesStep(desired: DesiredHost, names: string[]): string[] {
  if (names.length === 0) return [];
  if (desired.os.packageManager === 'apt') {
    // Debian starts a package's daemon with its default configuration as it installs it (Postfix as an
    // "Internet Site", Dovecot on 143/993 with system users): policy-rc.d forbids that, so the daemons
    // first start with the validated configuration, from the handlers. Every package here is new on the
    // host, so dpkg unpacks without a sync per file (--force-unsafe-io, a fifth less time): a crash in the
    // middle leaves them half-installed, which the facts report as missing and the next apply reinstalls.
    return [
      `step packages ${shqAll(names)}`,
      `inst() { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends -o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-unsafe-io ${shqAll(names)}; }`,
      "POLICY=; [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\\n# mailops: no daemon starts while packages install\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d && POLICY=1; }",
      `out=$(inst 2>&1) || out=$( (apt-get update -q && inst) 2>&1) || { [ -z "$POLICY" ] || rm -f /usr/sbin/policy-rc.d; say "${MARK} fail packages apt-get install failed"; detail "$out"; finish failed 1; }`,
      '[ -z "$POLICY" ] || rm -f /usr/sbin/policy-rc.d',
    ];
  }
  // dnf starts no daemon on install (systemd presets at most enable them).
  return [
    `step packages ${shqAll(names)}`,
    `inst() { dnf install -y -q ${shqAll(names)}; }`,
    `out=$(inst 2>&1) || out=$( (dnf install -y -q epel-release && inst) 2>&1) || { say "${MARK} fail packages dnf install failed"; detail "$out"; finish failed 1; }`,
  ];
}

/** The shell lines of one change. Packages: see packagesStep (they share one transaction). */
export function stepOf(c: Change, desired: DesiredHost): string[] {
  switch (c.kind) {
    case 'package':
      return packagesStep(desired, [c.name]);
    case 'user':
      return [
        `step user ${shq(c.name)}`,
        `getent group ${shq(c.group)} >/dev/null || groupadd -r ${c.uid !== undefined ? `-g ${c.uid} ` : ''}${shq(c.group)} || { say "${MARK} fail user groupadd ${clean(c.group)} failed"; finish failed 1; }`,
        `getent passwd ${shq(c.name)} >/dev/null || useradd -r ${c.uid !== undefined ? `-u ${c.uid} ` : ''}-g ${shq(c.group)} -d ${shq(c.home)} -M -s /usr/sbin/nologin ${shq(c.name)} || { say "${MARK} fail user useradd ${clean(c.name)} failed"; finish failed 1; }`,
      ];
    case 'directory':
      return [
        `step directory ${shq(c.path)}`,
        `out=$( (mkdir -p ${shq(c.path)} && chown ${shq(`${c.owner}:${c.group}`)} ${shq(c.path)} && chmod ${c.mode} ${shq(c.path)}) 2>&1) || { say "${MARK} fail directory ${clean(c.path)}"; detail "$out"; finish failed 1; }`,
      ];
    case 'command': {
      const cmd = desired.commands[c.index]!;
      const guard = cmd.creates !== undefined ? `[ -e ${shq(cmd.creates)} ] || ` : cmd.unless !== undefined ? `( ${cmd.unless} ) >/dev/null 2>&1 </dev/null || ` : '';
      const [label, fail] = [`step command ${shq(c.name)}`, `say "${MARK} fail command ${clean(c.name)}"`];
      if (!cmd.warn) return [label, `out=$( ${guard}( ${cmd.run} ) 2>&1 </dev/null ) || { ${fail}; detail "$out"; CMDFAIL=1; }`];
      // Its stderr apart: warnings when it succeeds, the detail (before its stdout) when it fails.
      return [label, `if out=$( ${guard}( ${cmd.run} ) 2>"$LOG.err" </dev/null ); then while IFS= read -r l; do [ -z "$l" ] || warn "${clean(c.name)}: $l"; done <"$LOG.err"; else ${fail}; detail "$(cat "$LOG.err"; printf '%s' "$out")"; CMDFAIL=1; fi; rm -f "$LOG.err"`];
    }
    case 'file': {
      const p = shq(c.path);
      if (c.action === 'remove') return [`rm -f ${p} 2>>"$LOG" || SWAPFAIL=${p}`];
      if (c.action === 'metadata') return [`{ chown ${shq(`${c.owner}:${c.group}`)} ${p} && chmod ${c.mode} ${p}; } 2>>"$LOG" || SWAPFAIL=${p}`];
      // A copy of the staged file beside the target, then one rename: readers see the old or the new file.
      return [`{ mkdir -p "$(dirname ${p})" && cp "$STAGE"${p} ${p}.mailops-new && chown ${shq(`${c.owner}:${c.group}`)} ${p}.mailops-new && chmod ${c.mode} ${p}.mailops-new && mv -f ${p}.mailops-new ${p}; } 2>>"$LOG" || SWAPFAIL=${p}`];
    }
    case 'service': {
      const u = shq(unitOf(c.unit));
      if (c.action === 'enable') return [`step service enable ${u}`, `out=$(systemctl enable ${u} 2>&1) || { say "${MARK} fail service systemctl enable ${clean(c.unit)}"; detail "$out"; rollback; }`];
      // Its instances too: stopping postfix.service alone could leave Postfix on port 25 (unitAndInstances).
      if (c.action === 'stop-disable') return [`step service stop ${u}`, `systemctl disable --now ${u} >/dev/null 2>&1; systemctl stop ${unitAndInstances(c.unit)} >/dev/null 2>&1 || true`];
      const verb = c.action === 'start' ? 'restart' : c.action;
      // A reload that leaves the unit inactive is followed by a start: a unit not running by then (stopped by a
      // package of this run) or one whose reload stops it (Postfix right after an upgrade from Debian 12 to
      // 13: systemd still takes it for active, its master is gone, and `postfix reload` stops the unit).
      const run = verb === 'reload' ? `systemctl reload-or-restart ${u} 2>&1 && { systemctl is-active --quiet ${u} || systemctl restart ${u} 2>&1; }` : `systemctl ${verb} ${u} 2>&1`;
      return [
        `step service ${verb} ${u}`,
        `out=$(${run}) || { say "${MARK} fail service systemctl ${verb} ${clean(c.unit)}"; detail "$out"; detail "$(journalctl -u ${u} -n 20 --no-pager 2>/dev/null)"; rollback; }`,
      ];
    }
  }
}

/** Every change with `run`: the shell step apply runs for it (plan --json). */
export function withSteps(changes: Change[], desired: DesiredHost): Array<Change & { run: string }> {
  return changes.map((c) => ({ ...c, run: stepOf(c, desired).join('\n') }));
}

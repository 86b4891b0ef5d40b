import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { applyPlanned, closeAll, planOrder, planSite, planState, recordDkim } from '../apply/site.js';
import type { HostOutcome } from '../apply/site.js';
import { memoFile, openMemo } from '../apply/memo.js';
import { dnsTarget, pushZones } from '../dns/publish.js';
import type { DnsOutcome } from '../dns/publish.js';
import { renderZones } from '../dns/zone.js';
import { UserError } from '../errors.js';
import type { Site } from '../model/site.js';
import { statePath, writeState } from '../state/state.js';
import type { SiteState } from '../state/state.js';
import { connectShared as connect, persistSeconds } from '../ssh/shared.js';
import { green, info, json, out, red, yellow } from './output.js';
import { formatDnsPlan, formatPlan } from './plan-output.js';
import { progressView, timings } from './progress.js';
import { checkResolver, dnsOptions, remoteOptions, targetFor } from './remote.js';
import type { RemoteFlags } from './remote.js';
import { load, persistSerials } from './site-io.js';
import { sandboxDns, sandboxOverrides, sandboxSite } from './sandbox-target.js';
import { planZones, txtResolver } from '../dns/publish.js';

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/** Record what the hosts hold (DKIM public keys, certificate fingerprints) and the zones' serials. */
function recordState(site: Site, next: SiteState, dns: DnsOutcome | undefined): SiteState {
  const live = Object.fromEntries((dns?.zones ?? []).flatMap((z) => (z.serial !== undefined ? [[z.zone, z.serial]] : [])));
  try {
    if (writeState(site.file, next)) info(`recorded the hosts' DKIM public keys and certificates in ${statePath(site.file)}`);
  } catch (e) {
    info(red(`could not record the DKIM public keys in ${statePath(site.file)}: ${(e as Error).message}`));
  }
  persistSerials(site, next, renderZones(site, next, { live }));
  return next;
}

export function registerApply(p: Command): void {
  dnsOptions(remoteOptions(p.command('apply').description('converge every host to the playbook, then push the DNS changes (asks for confirmation on a terminal; --yes skips it)')))
    .option('--yes', 'apply without asking')
    .option('--timings', 'print how long every step of every host took, slowest first')
    .action(async (file: string, o: RemoteFlags & { yes?: boolean }) => {
      await runApply(file, o, 'apply');
    });
}

export type ApplyFlags = RemoteFlags & {
  yes?: boolean;
  /** Print every step's duration, slowest first, at the end. */
  timings?: boolean;
  /** Where the per-host lines and the summary go (default: stdout, or stderr with --json). */
  say?: (line: string) => void;
};

/** What one apply run did: the object `apply --json` prints. */
export interface ApplyReport {
  changes: number;
  order?: ReturnType<typeof planOrder>;
  hosts: Array<{ name: string; changes: number; ok: boolean; /** What the host runs (os-release's PRETTY_NAME). */ os?: string; applied?: false; error?: string; warnings?: string[]; plan?: NonNullable<HostOutcome['plan']>['changes'] }>;
  dns?: { server: string; changes: number; ok: boolean; error?: string; zones: Array<{ zone: string; changes: number; ok: boolean; error?: string; records: unknown[] }> };
  /** Every host converged and every zone pushed. */
  ok: boolean;
}

/** What the DKIM lifecycle did on each host, in words. */
const sayNotes = (outcomes: HostOutcome[]) => {
  for (const x of outcomes) for (const n of x.plan?.notes ?? []) info(`${x.name}: ${n}`);
};

/** Hosts whose new DKIM keys wait for DNS: after the push, they are planned again and switched over. */
const waiting = (outcomes: HostOutcome[]) => outcomes.filter((x) => x.ok && x.dkim?.some((k) => k.status === 'pending')).map((x) => x.name);

/**
 * apply, and `dkim rotate` (apply with new DKIM keys for some domains): converge the hosts, record what
 * they hold, push the zones, and switch signing to the new DKIM keys that DNS now serves.
 */
export async function runApply(file: string, o: ApplyFlags, verb: string, rotate?: ReadonlySet<string>): Promise<ApplyReport> {
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  if (!o.yes && !interactive) throw new UserError(`${verb} needs confirmation: no terminal to ask on, so pass --yes to apply without asking`);
  checkResolver(o.resolver);
  persistSeconds(); // a bad MAILOPS_SSH_PERSIST is one error, before any host is reached
  const loaded = load(file);
  const site = sandboxSite(loaded.site, o);
  const state = loaded.state;
  const target = dnsTarget(site, o, sandboxDns(o));
  const view = progressView(false);
  const clock = o.timings ? timings() : undefined;
  const progress = clock ? { update: (h: string, s: string) => (clock.update(h, s), view.update(h, s)), done: () => view.done() } : view;
  const run = { target: targetFor(o, sandboxOverrides(site, o)), connect, resolveTxt: txtResolver(target, o.resolver), memo: openMemo(memoFile(site.file)) };
  const planned = await planSite(site, { ...(o.host ? { hosts: o.host } : {}), ...run, state, ...(rotate ? { rotate } : {}), progress: progress.update });
  const pending = planned.reduce((n, x) => n + (x.planned?.plan.changes.length ?? 0), 0);
  if (!o.yes) {
    const dnsPlan = target ? await planZones(site, planState(site, state, planned), target, state) : [];
    const dnsPending = dnsPlan.reduce((n, z) => n + z.changes.length, 0);
    if (pending + dnsPending > 0) {
      progress.done();
      for (const x of planned) if (x.planned) info(formatPlan(x.planned.plan));
      if (target) info(formatDnsPlan(dnsPlan, target.server));
      if (!(await confirm(`Apply ${pending + dnsPending} change${pending + dnsPending === 1 ? '' : 's'}? [y/N] `))) {
        await closeAll(planned);
        throw new UserError(`${verb} cancelled: nothing was changed`);
      }
    }
  }
  const phases = planOrder(planned);
  if (phases.length > 1) info(`order: ${phases.map((ph, i) => `${i + 1}. ${ph.hosts.join(', ')} (${ph.why})`).join('; ')}`);
  let outcomes: HostOutcome[];
  try {
    outcomes = await applyPlanned(site, planned, { progress: progress.update });
  } finally {
    progress.done();
    await closeAll(planned);
  }
  const failedHosts = outcomes.filter((x) => !x.ok);
  sayNotes(outcomes);
  // DNS after the hosts: a DKIM key generated in this run is published in the same run.
  let held = recordDkim(state, outcomes, site);
  let dns: DnsOutcome | undefined;
  let dnsSkipped: string | undefined;
  if (target && failedHosts.length === 0) {
    dns = await pushZones(site, held, target, state);
  } else if (target) dnsSkipped = `DNS not pushed: ${failedHosts.map((x) => `${x.name} ${x.skipped ? 'not applied' : 'failed'}`).join(', ')} (the zones would publish a host that does not work)`;
  recordState(site, held, dns);
  // A second round, in this same run, for what the first one made known:
  // - publish first, then sign: new DKIM keys that DNS now serves take over signing;
  // - replicated mailbox hosts trust each other's certificate by the fingerprint the state records: a
  //   certificate made or changed in the first round is pinned on the other host.
  const switching = dns?.ok ? waiting(outcomes) : [];
  const replicas = site.stack.replication ? outcomes.filter((x) => x.ok && site.hosts.find((h) => h.name === x.name)?.role !== 'backup-mx').map((x) => x.name) : [];
  const certOf = (s: typeof state, name: string) => s.tls[site.hosts.find((h) => h.name === name)?.hostname ?? ''];
  const pinning = replicas.some((n) => certOf(held, n) !== certOf(state, n)) ? replicas : [];
  const secondRound = [...new Set([...switching, ...pinning])];
  if (secondRound.length) {
    const again = await planSite(site, { hosts: secondRound, ...run, state: held, progress: progress.update });
    let second: HostOutcome[];
    try {
      second = await applyPlanned(site, again, { progress: progress.update });
    } finally {
      progress.done();
      await closeAll(again);
    }
    outcomes = outcomes.map((x) => {
      const y = second.find((z) => z.name === x.name);
      if (!y) return x;
      return { ...y, changes: x.changes + y.changes, plan: { ...y.plan!, changes: [...(x.plan?.changes ?? []), ...(y.plan?.changes ?? [])] }, warnings: [...(x.warnings ?? []), ...(y.warnings ?? [])] };
    });
    for (const y of second) if (!y.ok) failedHosts.push(y);
    sayNotes(second);
    held = recordState(site, recordDkim(held, second, site), undefined);
  }

  const hostChanges = outcomes.reduce((n, x) => n + x.changes, 0);
  const total = hostChanges + (dns?.changes ?? 0);
  const say = o.say ?? (o.json ? info : out);
  for (const x of outcomes) {
    if (x.skipped) say(red(`${x.name}: ${x.error ?? 'not applied'}`));
    else if (!x.ok) say(red(`${x.name}: failed\n${x.error ?? ''}`));
    else say(`${x.name}: ${x.changes ? green(`changed (${x.changes} change${x.changes === 1 ? '' : 's'})`) : 'unchanged'}`);
    for (const w of x.warnings ?? []) say(`${x.name}: ${yellow('warning:')} ${w}`);
  }
  for (const z of dns?.zones ?? []) {
    if (z.error) say(red(`dns ${z.zone}: failed (the hosts stay converged)\n${z.error}`));
    else say(`dns ${z.zone}: ${z.changes.length ? green(`updated (${z.changes.length} record set${z.changes.length === 1 ? '' : 's'})`) : 'up to date'}`);
  }
  if (dnsSkipped) say(red(dnsSkipped));
  const dnsFailed = dns ? dns.zones.filter((z) => z.error).length : 0;
  say(
    `Apply: ${total} change${total === 1 ? '' : 's'} on ${outcomes.length} host${outcomes.length === 1 ? '' : 's'}${dns ? ` and ${dns.zones.length} zone${dns.zones.length === 1 ? '' : 's'}` : ''}` +
      `${failedHosts.length ? red(`, ${failedHosts.length} host${failedHosts.length === 1 ? '' : 's'} failed`) : ''}${dnsFailed ? red(`, ${dnsFailed} zone${dnsFailed === 1 ? '' : 's'} failed`) : ''}`,
  );
  const report: ApplyReport = {
    changes: total,
    ...(phases.length > 1 ? { order: phases } : {}),
    hosts: outcomes.map((x) => ({ name: x.name, changes: x.changes, ok: x.ok, ...(x.plan?.os ? { os: x.plan.os } : {}), ...(x.skipped ? { applied: false as const } : {}), ...(x.error ? { error: x.error } : {}), ...(x.warnings ? { warnings: x.warnings } : {}), ...(x.plan ? { plan: x.plan.changes } : {}) })),
    ...(target
      ? {
          dns: {
            server: target.server,
            changes: dns?.changes ?? 0,
            ok: Boolean(dns?.ok),
            ...(dnsSkipped ? { error: dnsSkipped } : {}),
            zones: (dns?.zones ?? []).map((z) => ({ zone: z.zone, changes: z.changes.length, ok: !z.error, ...(z.error ? { error: z.error } : {}), records: z.changes })),
          },
        }
      : {}),
    ok: !(failedHosts.length || dnsFailed || dnsSkipped),
  };
  if (o.json) {
    const { ok: _ok, ...printed } = report;
    void _ok;
    json(printed);
  }
  if (clock) info(['timings (slowest first):', ...clock.report()].join('\n'));
  process.exitCode = report.ok ? 0 : 1;
  return report;
}

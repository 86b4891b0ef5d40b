import type { Command } from 'commander';
import { closeAll, planSite, planState } from '../apply/site.js';
import { memoFile, openMemo } from '../apply/memo.js';
import { dnsTarget, planZones, txtResolver } from '../dns/publish.js';
import type { ZonePlan } from '../dns/publish.js';
import { connectShared as connect, persistSeconds } from '../ssh/shared.js';
import { stepOf, withSteps } from '../apply/steps.js';
import { info, json, out, red } from './output.js';
import { formatDnsPlan, formatPlan } from './plan-output.js';
import { progressView } from './progress.js';
import { checkResolver, dnsOptions, remoteOptions, targetFor } from './remote.js';
import type { RemoteFlags } from './remote.js';
import { load } from './site-io.js';
import { sandboxDns, sandboxOverrides, sandboxSite } from './sandbox-target.js';

export function registerPlan(p: Command): void {
  dnsOptions(remoteOptions(p.command('plan').description('connect, gather facts, print what apply would change (unified diffs of files, packages, services, users, and DNS records); changes nothing')))
    .option('--detailed-exitcode', 'exit 0 when nothing to do, 2 when changes are pending, 1 on error')
    .option('--steps', 'show under each change the exact shell step that apply runs for it')
    .action(async (file: string, o: RemoteFlags & { detailedExitcode?: boolean; steps?: boolean }) => {
      checkResolver(o.resolver);
      persistSeconds(); // a bad MAILOPS_SSH_PERSIST is one error, before any host is reached
      const loaded = load(file);
      const site = sandboxSite(loaded.site, o);
      const target = dnsTarget(site, o, sandboxDns(o));
      const progress = progressView(false);
      const planned = await planSite(site, { ...(o.host ? { hosts: o.host } : {}), target: targetFor(o, sandboxOverrides(site, o)), connect, state: loaded.state, resolveTxt: txtResolver(target, o.resolver), progress: progress.update, memo: openMemo(memoFile(site.file)) });
      progress.done();
      await closeAll(planned);
      // The DNS changes against what the hosts hold now (a key that apply has yet to generate is not there).
      const zones: ZonePlan[] = target ? await planZones(site, planState(site, loaded.state, planned), target, loaded.state) : [];
      const failed = planned.filter((p) => p.error);
      const dnsFailed = zones.filter((z) => z.error);
      const hostChanges = planned.reduce((n, p) => n + (p.planned?.plan.changes.length ?? 0), 0);
      const dnsChanges = zones.reduce((n, z) => n + z.changes.length, 0);
      const total = hostChanges + dnsChanges;
      const show = o.json ? info : out;
      for (const p of planned) {
        if (p.planned) {
          const pl = p.planned;
          show(formatPlan(pl.plan, true, o.steps ? (c) => stepOf(c, pl.desired) : undefined));
        }
        else info(red(`${p.host.name}: ${p.error}`));
      }
      if (target) show(formatDnsPlan(zones, target.server));
      const hostsOk = planned.length - failed.length;
      show(
        `Plan: ${total} change${total === 1 ? '' : 's'} on ${hostsOk} host${hostsOk === 1 ? '' : 's'}${target ? ` and ${zones.length - dnsFailed.length} zone${zones.length - dnsFailed.length === 1 ? '' : 's'}` : ''}` +
          `${failed.length ? `, ${failed.length} host${failed.length === 1 ? '' : 's'} failed` : ''}${dnsFailed.length ? `, ${dnsFailed.length} zone${dnsFailed.length === 1 ? '' : 's'} failed` : ''}`,
      );
      if (o.json) {
        json({
          changes: total,
          hosts: planned.map((p) => ({
            name: p.host.name,
            changes: p.planned?.plan.changes.length ?? 0,
            ok: !p.error,
            ...(p.planned ? { os: p.planned.plan.os, plan: p.planned.plan.changes.length ? withSteps(p.planned.plan.changes, p.planned.desired) : [], warnings: p.planned.plan.warnings, ...(p.planned.plan.notes ? { notes: p.planned.plan.notes } : {}) } : { error: p.error }),
          })),
          ...(target
            ? { dns: { server: target.server, changes: dnsChanges, ok: dnsFailed.length === 0, zones: zones.map((z) => ({ zone: z.zone, changes: z.changes.length, ok: !z.error, ...(z.error ? { error: z.error } : {}), records: z.changes })) } }
            : {}),
        });
      }
      process.exitCode = failed.length || dnsFailed.length ? 1 : o.detailedExitcode && total > 0 ? 2 : 0;
    });
}

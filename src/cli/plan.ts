import type { Command } from 'commander';
import { closeAll, planSite } from '../apply/site.js';
import { connect } from '../ssh/ssh2.js';
import { info, json, out, red } from './output.js';
import { formatPlan } from './plan-output.js';
import { progressView } from './progress.js';
import { remoteOptions, targetFor } from './remote.js';
import type { RemoteFlags } from './remote.js';
import { load } from './site-io.js';
import { sandboxOverrides } from './sandbox-target.js';

export function registerPlan(p: Command): void {
  remoteOptions(p.command('plan').description('connect, gather facts, print what apply would change (unified diffs of files, packages, services, users); changes nothing'))
    .option('--detailed-exitcode', 'exit 0 when nothing to do, 2 when changes are pending, 1 on error')
    .action(async (file: string, o: RemoteFlags & { detailedExitcode?: boolean }) => {
      const { site } = load(file);
      const progress = progressView(false);
      const planned = await planSite(site, { ...(o.host ? { hosts: o.host } : {}), target: targetFor(o, sandboxOverrides(site, o)), connect, progress: progress.update });
      progress.done();
      await closeAll(planned);
      const failed = planned.filter((p) => p.error);
      const total = planned.reduce((n, p) => n + (p.planned?.plan.changes.length ?? 0), 0);
      const show = o.json ? info : out;
      for (const p of planned) {
        if (p.planned) show(formatPlan(p.planned.plan));
        else info(red(`${p.host.name}: ${p.error}`));
      }
      show(`Plan: ${total} change${total === 1 ? '' : 's'} on ${planned.length - failed.length} host${planned.length - failed.length === 1 ? '' : 's'}${failed.length ? `, ${failed.length} failed` : ''}`);
      if (o.json) {
        json({
          changes: total,
          hosts: planned.map((p) => ({
            name: p.host.name,
            changes: p.planned?.plan.changes.length ?? 0,
            ok: !p.error,
            ...(p.planned ? { os: p.planned.plan.os, plan: p.planned.plan.changes, warnings: p.planned.plan.warnings } : { error: p.error }),
          })),
        });
      }
      process.exitCode = failed.length ? 1 : o.detailedExitcode && total > 0 ? 2 : 0;
    });
}

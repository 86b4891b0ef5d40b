import { createInterface } from 'node:readline/promises';
import type { Command } from 'commander';
import { applyPlanned, closeAll, planSite, recordDkim } from '../apply/site.js';
import { UserError } from '../errors.js';
import { statePath, writeState } from '../state/state.js';
import { connect } from '../ssh/ssh2.js';
import { green, info, json, out, red } from './output.js';
import { formatPlan } from './plan-output.js';
import { progressView } from './progress.js';
import { remoteOptions, targetFor } from './remote.js';
import type { RemoteFlags } from './remote.js';
import { load } from './site-io.js';
import { sandboxOverrides } from './sandbox-target.js';

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export function registerApply(p: Command): void {
  remoteOptions(p.command('apply').description('converge every host to the playbook (asks for confirmation on a terminal; --yes skips it)'))
    .option('--yes', 'apply without asking')
    .action(async (file: string, o: RemoteFlags & { yes?: boolean }) => {
      const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
      if (!o.yes && !interactive) throw new UserError('apply needs confirmation: no terminal to ask on, so pass --yes to apply without asking');
      const { site, state } = load(file);
      const progress = progressView(false);
      const planned = await planSite(site, { ...(o.host ? { hosts: o.host } : {}), target: targetFor(o, sandboxOverrides(site, o)), connect, progress: progress.update });
      const pending = planned.reduce((n, x) => n + (x.planned?.plan.changes.length ?? 0), 0);
      if (!o.yes && pending > 0) {
        progress.done();
        for (const x of planned) if (x.planned) info(formatPlan(x.planned.plan));
        if (!(await confirm(`Apply ${pending} change${pending === 1 ? '' : 's'}? [y/N] `))) {
          await closeAll(planned);
          throw new UserError('apply cancelled: nothing was changed');
        }
      }
      let outcomes;
      try {
        outcomes = await applyPlanned(site, planned, { progress: progress.update });
      } finally {
        progress.done();
        await closeAll(planned);
      }
      const next = recordDkim(state, outcomes);
      if (JSON.stringify(next.dkim) !== JSON.stringify(state.dkim)) {
        try {
          if (writeState(site.file, next)) info(`recorded DKIM public keys in ${statePath(site.file)} (publish them: mailops dns ${file})`);
        } catch (e) {
          info(red(`could not record DKIM public keys in ${statePath(site.file)}: ${(e as Error).message}`));
        }
      }
      const total = outcomes.reduce((n, x) => n + x.changes, 0);
      const say = o.json ? info : out;
      for (const x of outcomes) {
        if (!x.ok) say(red(`${x.name}: failed\n${x.error ?? ''}`));
        else say(`${x.name}: ${x.changes ? green(`changed (${x.changes} change${x.changes === 1 ? '' : 's'})`) : 'unchanged'}`);
      }
      const failed = outcomes.filter((x) => !x.ok).length;
      say(`Apply: ${total} change${total === 1 ? '' : 's'} on ${outcomes.length} host${outcomes.length === 1 ? '' : 's'}${failed ? red(`, ${failed} failed`) : ''}`);
      if (o.json) {
        json({ changes: total, hosts: outcomes.map((x) => ({ name: x.name, changes: x.changes, ok: x.ok, ...(x.error ? { error: x.error } : {}), ...(x.plan ? { plan: x.plan.changes } : {}) })) });
      }
      process.exitCode = failed ? 1 : 0;
    });
}

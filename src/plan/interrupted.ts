/**
 * An earlier apply that was killed on the host (SIGKILL, OOM, reboot) left its phase in its journal.
 * The plan says what it left behind; when it got as far as swapping files in, the files on the host may
 * already be the new ones while the daemons still run the old configuration (or a mix of files is in
 * place), so every service of the host is restarted (or started) by this run. Pure.
 */
import type { DesiredHost } from '../model/desired.js';
import type { HostFacts } from '../model/facts.js';
import type { Change } from '../model/plan.js';

const AFTER_SWAP = new Set(['swapping', 'swapped', 'handlers', 'checking', 'rolling-back']);

const LEFT: Record<string, string> = {
  started: 'nothing was changed yet',
  backup: 'nothing was swapped (it was copying the previous files aside)',
  swapping: 'some files were swapped in, others not: a mix; its backup keeps the previous files',
  swapped: 'the new files are in place, but the services were not restarted with them',
  handlers: 'the new files are in place; some services were restarted, maybe not all',
  checking: 'the new files are in place and the services restarted; the final checks did not finish',
  running: 'the new files are in place and the services run; the commands that work with them had not all finished',
  'rolling-back': 'it was putting the previous files back: some may be back, others not',
};

export function interruptedRuns(desired: DesiredHost, facts: HostFacts, changes: Change[]): { warnings: string[]; changes: Change[] } {
  const runs = facts.interrupted ?? [];
  if (runs.length === 0) return { warnings: [], changes: [] };
  const warnings = runs.map((r) => `an earlier apply (run ${r.run}) was interrupted during "${r.phase}": ${LEFT[r.phase] ?? 'it left no record of how far it got'}; this apply converges the host`);
  if (!runs.some((r) => AFTER_SWAP.has(r.phase))) return { warnings, changes: [] };
  const planned = new Set(changes.filter((c) => c.kind === 'service' && c.action !== 'enable').map((c) => (c as { unit: string }).unit));
  const extra: Change[] = desired.services
    .filter((s) => !planned.has(s.unit))
    .map((s) => ({ kind: 'service', action: 'restart', unit: s.unit, key: s.key, reason: 'an earlier apply was interrupted after swapping files in' }) as Change);
  return { warnings, changes: extra };
}

/** Human rendering of plans and apply results. */
import type { Change, HostPlan } from '../model/plan.js';
import type { ZonePlan } from '../dns/publish.js';
import { formatDnsChanges } from '../dns/update.js';
import { green, red, yellow } from './output.js';

function changeLine(c: Change): string[] {
  switch (c.kind) {
    case 'package':
      return [`${green('+')} package ${c.name}`];
    case 'user':
      return [`${green('+')} user ${c.name} (group ${c.group}${c.uid !== undefined ? `, uid ${c.uid}` : ''}, home ${c.home})`];
    case 'directory':
      return [`${c.action === 'create' ? green('+') : yellow('~')} directory ${c.path} (${c.owner}:${c.group} ${c.mode})${c.action === 'update' ? `: ${c.detail}` : ''}`];
    case 'file': {
      if (c.action === 'remove') return [`${red('-')} file ${c.path} (${c.reason})`];
      const head = `${c.action === 'create' ? green('+') : yellow('~')} file ${c.path} (${c.owner}:${c.group} ${c.mode})${c.action === 'metadata' ? ' metadata' : ''}`;
      // Unified diff lines, or for a secret users file one line per mailbox ("+", "-", "~ mailbox ...").
      const paint = (l: string) => (l.startsWith('+') && !l.startsWith('+++') ? green(l) : l.startsWith('-') && !l.startsWith('---') ? red(l) : l.startsWith('~ ') ? yellow(l) : l);
      const body = c.diff.split('\n').map((l) => `      ${paint(l)}`);
      return [head, ...body];
    }
    case 'command':
      return [`${yellow('!')} run: ${c.name}`];
    case 'service':
      return [`${yellow('↻')} service ${c.unit}: ${c.action} (${c.reason})`];
  }
}

/** A plan for people; with `steps` (change → its shell lines), each change shows what apply will run for it. */
export function formatPlan(p: HostPlan, withDiffs = true, steps?: (c: Change) => string[]): string {
  const n = p.changes.length;
  const head = `${p.host} (${p.os || p.family}): ${n === 0 ? green('up to date, nothing to do') : `${n} change${n === 1 ? '' : 's'}`}`;
  const lines = [head];
  for (const c of p.changes) {
    const l = changeLine(c);
    lines.push(...(withDiffs ? l : l.slice(0, 1)).map((x) => `  ${x}`));
    if (steps) lines.push(...steps(c).map((x) => `      $ ${x}`));
  }
  if (n > 0 && p.ports.length) lines.push(`  firewall: inbound tcp ${p.ports.join(', ')} allowed, the rest dropped`);
  for (const note of p.notes ?? []) lines.push(`  note: ${note}`);
  for (const w of p.warnings) lines.push(`  ${yellow('warning:')} ${w}`);
  return lines.join('\n');
}

/** The DNS part of a plan: per zone, the record sets that change, or why the zone could not be read. */
export function formatDnsPlan(zones: ZonePlan[], server: string): string {
  const lines: string[] = [];
  for (const z of zones) {
    if (z.error) lines.push(`dns ${z.zone} (${server}): ${red('cannot be planned')}: ${z.error}`);
    else if (z.changes.length === 0) lines.push(`dns ${z.zone} (${server}): ${green('up to date, nothing to do')}`);
    else lines.push(formatDnsChanges(z.changes).trimEnd().replace(/^dns (\S+):/, `dns $1 (${server}):`));
  }
  return lines.join('\n');
}

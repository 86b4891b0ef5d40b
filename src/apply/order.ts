/**
 * The order in which apply converges the hosts of a site. A backup MX accepts a recipient only to forward it
 * to a mailbox host, so the two must not disagree for long: a backup that accepts an address the mailbox
 * hosts do not know yet (or no longer know) takes the message, is refused when it forwards it and bounces
 * it to a sender that is often forged. So when the backup MXs' recipients grow, the mailbox hosts converge
 * first; when they shrink, the backup MXs first. Hosts of one phase run in parallel; a phase runs only when
 * every host of the phases before it converged. Pure: plain data in, phases out.
 */
import type { DesiredHost } from '../model/desired.js';
import type { HostFacts } from '../model/facts.js';
import type { Host } from '../model/site.js';

/** The file of a backup MX listing whom it accepts (Postfix relay_recipient_maps, Exim's list): one address or @domain per line. */
export const RECIPIENT_MAP = '/relay_recipients';

export interface RecipientChange {
  name: string;
  role: Host['role'];
  /** Addresses (or @domain) the host's recipient map gains in this run, and loses. */
  gained: string[];
  lost: string[];
}

export interface Phase {
  hosts: string[];
  /** Why these hosts go at this point, in words. */
  why: string;
}

/** The addresses of a recipient map, whichever MTA wrote it ("alice@example.com OK", "alice@example.com:"). */
export function recipientsOf(content: string): string[] {
  return content
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(/[\s:]/)[0]!.toLowerCase());
}

/** What a host's recipient map gains and loses, from its desired state and its facts (the map's current text). */
export function recipientChange(host: Host, desired: DesiredHost, facts: HostFacts): RecipientChange {
  const file = desired.files.find((f) => f.path.endsWith(RECIPIENT_MAP));
  const none = { name: host.name, role: host.role, gained: [], lost: [] };
  if (!file) return none;
  const current = facts.files[file.path];
  const after = new Set(recipientsOf(file.content));
  // A map that exists but whose text was not read is unchanged (its text is read when it changes).
  if (current && current.content === undefined) return none;
  const before = new Set(current?.content !== undefined ? recipientsOf(current.content) : []);
  return { name: host.name, role: host.role, gained: [...after].filter((a) => !before.has(a)).sort(), lost: [...before].filter((a) => !after.has(a)).sort() };
}

const list = (names: string[]) => names.join(', ');

/**
 * The phases of an apply. With no backup MX whose recipients change, one phase of every host. When any
 * backup MX gains recipients, the mailbox hosts first (a backup never accepts an address before they do);
 * when backup MXs only lose recipients, the backup MXs first (they stop accepting an address before the
 * mailbox hosts drop it). When recipients are both added and removed, the mailbox hosts go first: the
 * removed addresses stay accepted by the backups until their phase, a window of one host's apply.
 */
export function applyOrder(hosts: RecipientChange[]): Phase[] {
  const backups = hosts.filter((h) => h.role === 'backup-mx');
  const mailbox = hosts.filter((h) => h.role !== 'backup-mx').map((h) => h.name);
  const gains = backups.filter((h) => h.gained.length > 0);
  const losses = backups.filter((h) => h.lost.length > 0);
  const all = hosts.map((h) => h.name);
  if ((gains.length === 0 && losses.length === 0) || mailbox.length === 0 || backups.length === 0) return all.length ? [{ hosts: all, why: 'no backup MX changes its recipients: every host at once' }] : [];
  const backupNames = backups.map((h) => h.name);
  if (gains.length > 0) {
    return [
      { hosts: mailbox, why: `${list(gains.map((h) => h.name))} will accept new recipients: the mailbox hosts accept them first` },
      { hosts: backupNames, why: `after the mailbox hosts (${list(mailbox)})` },
    ];
  }
  return [
    { hosts: backupNames, why: `${list(losses.map((h) => h.name))} will refuse removed recipients: the backup MXs stop accepting them first` },
    { hosts: mailbox, why: `after the backup MXs (${list(backupNames)})` },
  ];
}

/** Why a host of a later phase was not applied, naming what it keeps. */
export function notAppliedReason(host: { name: string; role: Host['role'] }, failed: string[]): string {
  const first = `not applied: ${list(failed)} failed first`;
  return host.role === 'backup-mx'
    ? `${first}, so ${host.name} keeps its old recipients (it accepts exactly what it accepted before this run)`
    : `${first}, so ${host.name} keeps its old mailboxes and aliases (run apply again once ${list(failed)} converges)`;
}

export interface PhaseOutcome {
  name: string;
  ok: boolean;
}

/**
 * Run the phases in order, the hosts of one phase in parallel. `run` applies one host; `skipped` makes the
 * outcome of a host that is not applied because an earlier phase failed. Outcomes keep the input order.
 */
export async function runPhases<T extends PhaseOutcome>(phases: Phase[], order: string[], run: (name: string) => Promise<T>, skipped: (name: string, failed: string[]) => T): Promise<T[]> {
  const done = new Map<string, T>();
  const failed: string[] = [];
  for (const phase of phases) {
    if (failed.length) {
      for (const n of phase.hosts) done.set(n, skipped(n, [...failed]));
      continue;
    }
    const results = await Promise.all(phase.hosts.map(run));
    for (const r of results) {
      done.set(r.name, r);
      if (!r.ok) failed.push(r.name);
    }
  }
  return order.map((n) => done.get(n)!);
}

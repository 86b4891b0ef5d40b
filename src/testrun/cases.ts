/**
 * The checks `mailops test` derives from a playbook: what its mailboxes, aliases, catch-alls, send_as
 * lists and limits promise, as cases to prove over the wire. Pure: a Site in, a list of cases out.
 */
import type { Mailbox, Site } from '../model/site.js';
import { mailPolicy } from '../render/limits.js';

export type Protocol = 'imap' | 'pop3' | 'smtp';

export type TestCase =
  /** A login over IMAP (993), POP3 (995) or SMTP AUTH (587) succeeds, or is refused (disabled mailbox). */
  | { kind: 'login'; name: string; mailbox: string; protocol: Protocol; expect: 'ok' | 'refused' }
  /** A stranger (the peer) sends to `to`; each mailbox and each outside address gets it exactly once. */
  | { kind: 'deliver'; name: string; to: string; mailboxes: string[]; outside: string[] }
  /** RCPT from a stranger on port 25 is refused with this reply class (e.g. "550 5.2.1"). */
  | { kind: 'refused-rcpt'; name: string; to: string; expect: string }
  /** An authenticated mailbox may (or may not) use `from` as its envelope sender. */
  | { kind: 'send-as'; name: string; login: string; from: string; allowed: boolean }
  /** send: false: submission refused at RCPT with 550 5.7.1. */
  | { kind: 'send-off'; name: string; login: string }
  /** send_limit: at most `count` recipients are accepted, then 450 4.7.1. */
  | { kind: 'send-limit'; name: string; login: string; count: number; per: 'hour' | 'day' }
  /** IMAP reports the mailbox's storage limit. */
  | { kind: 'quota'; name: string; mailbox: string; bytes: number }
  /** A case that cannot be proven in a throwaway world, with the reason. */
  | { kind: 'skip'; name: string; reason: string };

/** Largest send_limit proven by sending up to it (a larger one would flood the peer). */
export const MAX_LIMIT_PROBE = 25;

/** An address that is no mailbox and no alias of the domain (the same for one run). */
export const unknownLocal = (domain: string, token: string) => `nobody-${token}@${domain}`;

export function deriveCases(site: Site, token = 'probe'): TestCase[] {
  const cases: TestCase[] = [];
  const policy = mailPolicy(site.domains);
  const refused = new Set(policy.refused);
  const mailboxes = new Map<string, Mailbox>(site.domains.flatMap((d) => d.mailboxes.map((m) => [m.address, m] as const)));
  const aliases = new Map(site.domains.flatMap((d) => d.aliases.map((a) => [a.address, a.targets] as const)));
  const ours = new Set(site.domains.map((d) => d.name));
  const catchAll = new Map(site.domains.flatMap((d) => (d.catchAll ? [[d.name, d.catchAll] as const] : [])));
  const domainOf = (a: string) => a.slice(a.lastIndexOf('@') + 1);

  /** Where mail to an address ends up: enabled mailboxes and outside addresses (aliases followed). */
  const expand = (address: string, seen = new Set<string>()): { mailboxes: Set<string>; outside: Set<string> } => {
    const out = { mailboxes: new Set<string>(), outside: new Set<string>() };
    if (seen.has(address)) return out;
    seen.add(address);
    const add = (r: { mailboxes: Set<string>; outside: Set<string> }) => {
      for (const m of r.mailboxes) out.mailboxes.add(m);
      for (const o of r.outside) out.outside.add(o);
    };
    if (!ours.has(domainOf(address))) out.outside.add(address);
    else if (mailboxes.has(address)) {
      if (mailboxes.get(address)!.enabled) out.mailboxes.add(address);
    } else if (aliases.has(address)) for (const t of aliases.get(address)!) add(expand(t, seen));
    else if (catchAll.has(domainOf(address))) add(expand(catchAll.get(domainOf(address))!, seen));
    return out;
  };
  const deliver = (name: string, to: string) => {
    const r = expand(to);
    cases.push({ kind: 'deliver', name, to, mailboxes: [...r.mailboxes].sort(), outside: [...r.outside].sort() });
  };

  const protocols: Protocol[] = [...(site.stack.imap ? (['imap'] as const) : []), ...(site.stack.pop3 ? (['pop3'] as const) : []), 'smtp'];
  for (const d of site.domains) {
    for (const m of d.mailboxes) {
      if (!m.enabled) {
        for (const p of protocols) cases.push({ kind: 'login', name: `${m.address} (enabled: false): ${p.toUpperCase()} login refused`, mailbox: m.address, protocol: p, expect: 'refused' });
        cases.push({ kind: 'refused-rcpt', name: `${m.address} (enabled: false): refused at RCPT`, to: m.address, expect: '550 5.2.1' });
        continue;
      }
      for (const p of protocols) cases.push({ kind: 'login', name: `${m.address}: ${p.toUpperCase()} login`, mailbox: m.address, protocol: p, expect: 'ok' });
      deliver(`${m.address}: mail from a stranger is delivered`, m.address);
      if (m.quotaBytes !== undefined && site.stack.imap) cases.push({ kind: 'quota', name: `${m.address}: quota ${m.quota} reported over IMAP`, mailbox: m.address, bytes: m.quotaBytes });
    }
    for (const a of d.aliases) {
      if (refused.has(a.address)) {
        cases.push({ kind: 'refused-rcpt', name: `alias ${a.address} (every target disabled): refused at RCPT`, to: a.address, expect: '550 5.2.1' });
        continue;
      }
      deliver(`alias ${a.address} delivers to ${a.targets.join(', ')}`, a.address);
    }
    const unknown = unknownLocal(d.name, token);
    if (d.catchAll) {
      if (refused.has(d.catchAll)) cases.push({ kind: 'refused-rcpt', name: `catch-all of ${d.name} (its target ${d.catchAll} is disabled): unknown addresses refused at RCPT`, to: unknown, expect: '550' });
      else deliver(`catch-all of ${d.name} delivers unknown addresses to ${d.catchAll}`, unknown);
    } else cases.push({ kind: 'refused-rcpt', name: `${d.name}: an unknown recipient is refused at RCPT`, to: unknown, expect: '550 5.1.1' });
  }

  // Sending: who may use which envelope sender, send: false, and the limits (last: they use up the allowance).
  const all = site.domains.flatMap((d) => d.mailboxes).filter((m) => m.enabled);
  const owners = new Map<string, Set<string>>();
  for (const m of all) for (const a of [m.address, ...m.sendAs]) owners.set(a, (owners.get(a) ?? new Set()).add(m.address));
  const limits: TestCase[] = [];
  for (const m of all) {
    if (!m.send) {
      cases.push({ kind: 'send-off', name: `${m.address} (send: false): submission refused`, login: m.address });
      continue;
    }
    if (m.sendLimit) {
      if (m.sendLimit.count <= MAX_LIMIT_PROBE) limits.push({ kind: 'send-limit', name: `${m.address}: send_limit ${m.sendLimit.count}/${m.sendLimit.per} enforced`, login: m.address, count: m.sendLimit.count, per: m.sendLimit.per });
      else limits.push({ kind: 'skip', name: `${m.address}: send_limit ${m.sendLimit.count}/${m.sendLimit.per} enforced`, reason: `proving it would take ${m.sendLimit.count + 1} messages; limits up to ${MAX_LIMIT_PROBE} are proven` });
      // Its allowance is for the limit case: sending as itself is shown there.
      continue;
    }
    for (const from of [m.address, ...m.sendAs]) cases.push({ kind: 'send-as', name: `${m.address} may send as ${from}`, login: m.address, from, allowed: true });
    // Some address of the site it does not own: another mailbox's, else an unknown one of its domain.
    const other = all.find((x) => x.address !== m.address && !owners.get(x.address)?.has(m.address))?.address ?? unknownLocal(domainOf(m.address), token);
    cases.push({ kind: 'send-as', name: `${m.address} may not send as ${other}`, login: m.address, from: other, allowed: false });
  }
  return [...cases, ...limits];
}

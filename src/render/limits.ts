/**
 * What the per-mailbox switches (send, send_limit, enabled) mean for the configs: who may not submit, who
 * is rate-limited, which addresses are refused at RCPT as disabled, and what the aliases and catch-alls
 * still deliver to. Pure.
 */
import type { AuthBan, Domain } from '../model/site.js';

/** Seconds of a send_limit period. */
const PERIOD_SECONDS = { hour: 3600, day: 86400 } as const;

export interface SendLimitView {
  /** The SASL login (the mailbox address). */
  login: string;
  count: number;
  per: 'hour' | 'day';
  seconds: number;
}

export interface MailPolicy {
  /** Logins that may log in and receive but not submit (send: false), sorted. */
  sendBlocked: string[];
  /** Logins with a send_limit (and allowed to send), sorted by login. */
  sendLimits: SendLimitView[];
  /**
   * Addresses refused at RCPT as disabled: the disabled mailboxes and the aliases that reach none but
   * disabled mailboxes (through other aliases too), sorted.
   */
  refused: string[];
  /** Disabled mailboxes only (login refused), sorted. */
  disabledLogins: string[];
  /** Alias address → its targets without disabled mailboxes and refused aliases (aliases left with none are absent). */
  aliasTargets: Map<string, string[]>;
  /** Catch-all per domain whose target still takes mail. */
  catchAlls: Array<{ domain: string; target: string }>;
}

const sorted = (xs: Iterable<string>): string[] => [...xs].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));

export function mailPolicy(domains: Domain[]): MailPolicy {
  const mailboxes = domains.flatMap((d) => d.mailboxes);
  const aliases = new Map(domains.flatMap((d) => d.aliases.map((a) => [a.address, a.targets] as const)));
  const disabled = new Set(mailboxes.filter((m) => !m.enabled).map((m) => m.address));

  // Aliases whose every target is refused are refused themselves, until nothing changes (chains of aliases).
  const refused = new Set(disabled);
  for (let changed = true; changed; ) {
    changed = false;
    for (const [address, targets] of aliases) {
      if (!refused.has(address) && targets.length > 0 && targets.every((t) => refused.has(t))) {
        refused.add(address);
        changed = true;
      }
    }
  }
  const aliasTargets = new Map<string, string[]>();
  for (const [address, targets] of aliases) {
    if (refused.has(address)) continue;
    aliasTargets.set(address, targets.filter((t) => !refused.has(t)));
  }
  const catchAlls = domains.filter((d) => d.catchAll !== undefined && !refused.has(d.catchAll)).map((d) => ({ domain: d.name, target: d.catchAll! }));
  return {
    sendBlocked: sorted(mailboxes.filter((m) => m.enabled && !m.send).map((m) => m.address)),
    sendLimits: mailboxes
      .filter((m) => m.enabled && m.send && m.sendLimit)
      .map((m) => ({ login: m.address, count: m.sendLimit!.count, per: m.sendLimit!.per, seconds: PERIOD_SECONDS[m.sendLimit!.per] }))
      .sort((a, b) => (a.login < b.login ? -1 : 1)),
    refused: sorted(refused),
    disabledLogins: sorted(disabled),
    aliasTargets,
    catchAlls,
  };
}

/** The ban settings as fail2ban takes them; the database keeps a ban at least as long as it lasts (default 1 day). */
export interface AuthBanView extends AuthBan {
  dbPurgeAge: number;
}

export const authBanView = (b: AuthBan): AuthBanView => ({ ...b, dbPurgeAge: Math.max(86400, b.ban) });

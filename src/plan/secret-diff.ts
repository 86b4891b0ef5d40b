/**
 * What changed in a secret file, without its secrets. The Dovecot users file (a passwd-file: one
 * `user:password:uid:gid:gecos:home:shell:extra fields` line per mailbox) holds password hashes, so its
 * diff is never shown; instead, per mailbox: added, removed, quota old → new, password changed yes/no,
 * and the names of the other fields that changed. No password field ever reaches the output. Pure.
 */

/** One line of a passwd-file. */
export interface PasswdEntry {
  user: string;
  password: string;
  uid: string;
  gid: string;
  gecos: string;
  home: string;
  shell: string;
  /** Extra fields (`key=value`, space separated), in order; a bare `key` has the value ''. */
  extra: Array<[string, string]>;
}

export type AccountChange =
  | { account: string; action: 'add'; quota: string | null }
  | { account: string; action: 'remove' }
  | {
      account: string;
      action: 'update';
      password: boolean;
      /** Present when the quota changed: the storage limit before and after (null: none). */
      quota?: { before: string | null; after: string | null };
      /** Other fields that changed (uid, gid, gecos, home, shell, extra field names); never their values. */
      fields: string[];
    };

const QUOTA_KEYS = new Set(['userdb_quota_rule', 'quota_rule']);

/** The entries of a passwd-file by user, or null when a line is not one (or a user appears twice). */
export function parsePasswdFile(text: string): Map<string, PasswdEntry> | null {
  const out = new Map<string, PasswdEntry>();
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    if (line.trim() === '' || line.startsWith('#')) continue;
    const f = line.split(':');
    if (f.length < 2 || f[0] === '' || /\s/.test(f[0]!)) return null;
    const user = f[0]!;
    if (out.has(user)) return null;
    // Extra fields may hold ':' themselves (userdb_quota_rule=*:storage=2G): everything after the 7th ':'.
    const extraText = f.slice(7).join(':');
    const extra = extraText
      .split(' ')
      .filter(Boolean)
      .map((x): [string, string] => {
        const eq = x.indexOf('=');
        return eq < 0 ? [x, ''] : [x.slice(0, eq), x.slice(eq + 1)];
      });
    out.set(user, { user, password: f[1] ?? '', uid: f[2] ?? '', gid: f[3] ?? '', gecos: f[4] ?? '', home: f[5] ?? '', shell: f[6] ?? '', extra });
  }
  return out;
}

/** The storage limit of an entry's quota rule (`*:storage=2G` → 2G), or null. */
export function quotaOf(e: PasswdEntry): string | null {
  for (const [k, v] of e.extra) {
    if (!QUOTA_KEYS.has(k)) continue;
    const m = /(?:^|:)storage=([^:\s]+)/.exec(v);
    if (m) return m[1]!;
  }
  return null;
}

function otherFields(a: PasswdEntry, b: PasswdEntry): string[] {
  const out: string[] = [];
  for (const k of ['uid', 'gid', 'gecos', 'home', 'shell'] as const) if (a[k] !== b[k]) out.push(k);
  const ea = new Map(a.extra.filter(([k]) => !QUOTA_KEYS.has(k)));
  const eb = new Map(b.extra.filter(([k]) => !QUOTA_KEYS.has(k)));
  for (const k of [...new Set([...ea.keys(), ...eb.keys()])].sort()) if (ea.get(k) !== eb.get(k)) out.push(k);
  // A quota rule that changed in something else than its storage limit (that one is the quota line).
  const rules = (e: PasswdEntry) =>
    e.extra
      .filter(([k]) => QUOTA_KEYS.has(k))
      .map(([k, v]) => `${k}=${v.replace(/(^|:)storage=[^:\s]+/, '$1storage=')}`)
      .filter((r) => !/^\w+=\*:storage=$/.test(r))
      .join(' ');
  if (rules(a) !== rules(b)) out.push('quota rule');
  return out;
}

/** Per account, what changed between two passwd-files (accounts in the order of `after`, then the removed ones). */
export function accountChanges(before: Map<string, PasswdEntry>, after: Map<string, PasswdEntry>): AccountChange[] {
  const out: AccountChange[] = [];
  for (const [user, b] of after) {
    const a = before.get(user);
    if (!a) {
      out.push({ account: user, action: 'add', quota: quotaOf(b) });
      continue;
    }
    const qa = quotaOf(a);
    const qb = quotaOf(b);
    const password = a.password !== b.password;
    const fields = otherFields(a, b);
    if (!password && qa === qb && fields.length === 0) continue;
    out.push({ account: user, action: 'update', password, ...(qa !== qb ? { quota: { before: qa, after: qb } } : {}), fields });
  }
  for (const user of before.keys()) if (!after.has(user)) out.push({ account: user, action: 'remove' });
  return out;
}

/** One line per change, as the plan prints them under the file. */
export function formatAccountChanges(changes: AccountChange[]): string[] {
  return changes.map((c) => {
    switch (c.action) {
      case 'add':
        return `+ mailbox ${c.account}${c.quota !== null ? ` (quota ${c.quota})` : ''}`;
      case 'remove':
        return `- mailbox ${c.account}`;
      case 'update': {
        const parts: string[] = [];
        if (c.quota) parts.push(`quota ${c.quota.before ?? 'none'} → ${c.quota.after ?? 'none'}`);
        parts.push(`password changed: ${c.password ? 'yes' : 'no'}`);
        if (c.fields.length) parts.push(`other fields changed: ${c.fields.join(', ')}`);
        return `~ mailbox ${c.account}: ${parts.join('; ')}`;
      }
    }
  });
}

/** Is this text a passwd-file whose changes {@link passwdFileDiff} can describe? */
export const isPasswdFile = (text: string): boolean => parsePasswdFile(text) !== null;

/**
 * The plan's account of a change to a secret passwd-file: a header line, then one line per changed
 * mailbox. `before` undefined: the file is new. Null when either text is not a passwd-file (the caller
 * then says only that the content changed), or, as a last guard, when a password field of either
 * version would appear in the output.
 */
export function passwdFileDiff(path: string, before: string | undefined, after: string): string | null {
  const a = before === undefined ? new Map<string, PasswdEntry>() : parsePasswdFile(before);
  const b = parsePasswdFile(after);
  if (!a || !b) return null;
  const changes = accountChanges(a, b);
  const n = changes.length;
  const count = (k: number, what: string) => `${k} ${what}${k === 1 ? '' : 'es'}`;
  const head =
    before === undefined
      ? `--- ${path} (new, secret: password hashes not shown; ${count(b.size, 'mailbox')})`
      : n === 0
        ? `--- ${path} (secret: password hashes not shown; no mailbox changed, only the order or the layout of the file)`
        : `--- ${path} (secret: password hashes not shown; ${count(n, 'mailbox')} changed)`;
  const text = [head, ...formatAccountChanges(changes)].join('\n');
  const passwords = [...a.values(), ...b.values()].map((e) => e.password).filter((p) => p.length >= 4);
  if (passwords.some((p) => text.includes(p))) return null;
  return text;
}

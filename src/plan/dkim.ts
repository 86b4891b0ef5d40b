/**
 * The DKIM key lifecycle of one host, as a pure function of what the playbook asks for, what the host
 * holds and what DNS serves. Each host signs with keys of its own, one per domain and algorithm (an
 * Ed25519 domain also signs with an RSA companion, RFC 8463). A key is in one of three states:
 *
 * - `signing`: it signs, and is published;
 * - `pending`: made to replace a signing key (another type or size, or `mailops dkim rotate`); it is
 *   published first and signs only once DNS serves it (checked at every apply; with dns.update, in the
 *   same apply, after the push);
 * - `retired`: it no longer signs but stays published for the domain's grace period (`dkim.grace`, 7
 *   days), so mail in queues and forwarded mail still verifies; then it is unpublished and deleted.
 *
 * A key keeps its selector for its whole life: the lifecycle file on the host (and the state file) say
 * which host holds which selector, so reordering or renaming other hosts never renames a key. New keys
 * take the host's base selector (the playbook's on the first host, `<selector>-N` on the others;
 * `<selector>-rsa` for an RSA companion) when it is free, and `<base>-YYYYMMDD` when they replace one.
 */
import type { Domain, Host, Site } from '../model/site.js';
import type { SiteState } from '../state/state.js';

export type DkimStatus = 'signing' | 'pending' | 'retired';
export type DkimAlgorithm = 'rsa' | 'ed25519';

export interface DkimKeyState {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  bits: number;
  status: DkimStatus;
  /** Unix seconds: when a retired key stopped signing. */
  since?: number;
}

/** A key file found on the host (its type read from the key itself). */
export interface HeldKey {
  domain: string;
  selector: string;
  algorithm: DkimAlgorithm;
  bits?: number;
  publicKey?: string;
}

export interface DkimInput {
  site: Site;
  host: Host;
  /** The key files the host holds. */
  held: HeldKey[];
  /**
   * The lifecycle the host recorded (record name → status), or undefined when it has none (a first run,
   * or keys made by an older mailops: each key on disk that carries one of the host's selectors signs).
   */
  lifecycle?: Record<string, { status: DkimStatus; since?: number }>;
  /** Record names (<selector>._domainkey.<domain>) that other hosts hold: never taken by this one. */
  taken: ReadonlySet<string>;
  /** Whether DNS serves a pending key with its public key (asked only for pending keys). */
  served: (k: DkimKeyState) => boolean;
  /** Unix seconds. */
  now: number;
  /** Domains whose signing keys are to be replaced by new ones (`mailops dkim rotate`). */
  rotate?: ReadonlySet<string>;
}

export interface DkimPlan {
  /** Every key the host keeps, in lifecycle order (domain, algorithm, status). */
  keys: DkimKeyState[];
  /** Keys to delete from the host (retired past their grace, or pending keys no longer wanted). */
  remove: DkimKeyState[];
  /** What the lifecycle does in this run, in words (for the plan). */
  notes: string[];
}

export const record = (k: { selector: string; domain: string }) => `${k.selector}._domainkey.${k.domain}`;

const ORDER: Record<DkimStatus, number> = { signing: 0, pending: 1, retired: 2 };

/** The selector of a host's first key: the playbook's on the first host, `<selector>-N` on the others. */
export function hostSelector(selector: string, hostIndex: number): string {
  return hostIndex === 0 ? selector : `${selector.slice(0, 60)}-${hostIndex + 1}`;
}

/** The selector of the RSA companion of an Ed25519 key. */
export function rsaCompanion(selector: string): string {
  return `${selector.slice(0, 59)}-rsa`;
}

/** The keys a domain wants a host to sign with: one per algorithm, and the selector a first key takes. */
export function wantedSlots(site: Site, d: Domain, host: Host): Array<{ algorithm: DkimAlgorithm; bits: number; base: string }> {
  // A backup MX sends no mail of its own (it forwards what it queued, signed or not by its sender): no keys.
  if (!d.dkim || host.role === 'backup-mx') return [];
  const i = site.hosts.findIndex((h) => h.name === host.name);
  if (d.dkim.key === 'ed25519') {
    return [
      { algorithm: 'ed25519', bits: 256, base: hostSelector(d.dkim.selector, i) },
      { algorithm: 'rsa', bits: 2048, base: hostSelector(rsaCompanion(d.dkim.selector), i) },
    ];
  }
  return [{ algorithm: 'rsa', bits: d.dkim.key === 'rsa-4096' ? 4096 : 2048, base: hostSelector(d.dkim.selector, i) }];
}

const ymd = (now: number) => new Date(now * 1000).toISOString().slice(0, 10).replace(/-/g, '');

export function planDkim(input: DkimInput): DkimPlan {
  const { site, host, now } = input;
  const keys: DkimKeyState[] = [];
  const remove: DkimKeyState[] = [];
  const notes: string[] = [];
  const domains = new Map(site.domains.map((d) => [d.name, d]));
  const grace = (domain: string) => domains.get(domain)?.dkim?.grace ?? 7 * 86400;
  const bitsOf = (h: HeldKey) => h.bits ?? (h.algorithm === 'ed25519' ? 256 : 2048);

  // What the host has, with its status.
  const legacySelectors = new Set(site.domains.flatMap((d) => wantedSlots(site, d, host).map((s) => record({ selector: s.base, domain: d.name }))));
  const current: DkimKeyState[] = [];
  const orphans: HeldKey[] = [];
  for (const h of [...input.held].sort((a, b) => (record(a) < record(b) ? -1 : 1))) {
    const rec = input.lifecycle?.[record(h)];
    const base = { domain: h.domain, selector: h.selector, algorithm: h.algorithm, bits: bitsOf(h) };
    if (rec) current.push({ ...base, status: rec.status, ...(rec.since !== undefined ? { since: rec.since } : {}) });
    else if (!input.lifecycle && legacySelectors.has(record(h))) current.push({ ...base, status: 'signing' });
    else orphans.push(h);
  }
  // A selector is free when no host holds it and no file on this host carries it.
  const used = new Set([...input.taken, ...input.held.map(record)]);
  const fresh = (d: Domain, slot: { algorithm: DkimAlgorithm; bits: number; base: string }, status: DkimStatus, replacing: boolean): DkimKeyState => {
    // A key file that no lifecycle names (a run that did not finish) is reused when it is of the right type.
    const reuse = orphans.find((o) => o.domain === d.name && o.algorithm === slot.algorithm && bitsOf(o) === slot.bits && (o.selector === slot.base || o.selector.startsWith(`${slot.base}-`)));
    if (reuse) {
      orphans.splice(orphans.indexOf(reuse), 1);
      return { domain: d.name, selector: reuse.selector, algorithm: slot.algorithm, bits: slot.bits, status };
    }
    const stem = replacing || used.has(record({ selector: slot.base, domain: d.name })) ? `${slot.base.slice(0, 54)}-${ymd(now)}` : slot.base;
    let selector = stem;
    for (let n = 2; used.has(record({ selector, domain: d.name })); n++) selector = `${stem.slice(0, 60 - String(n).length)}-${n}`;
    used.add(record({ selector, domain: d.name }));
    return { domain: d.name, selector, algorithm: slot.algorithm, bits: slot.bits, status };
  };

  const handled = new Set<DkimKeyState>();
  // The host's keys by domain and algorithm, and the domains one of them signs for: looked up, not
  // searched, for every domain (a site of thousands of domains).
  const held = new Map<string, DkimKeyState[]>();
  const signs = new Set<string>();
  for (const k of current) {
    const at = `${k.domain} ${k.algorithm}`;
    held.set(at, [...(held.get(at) ?? []), k]);
    if (k.status === 'signing') signs.add(k.domain);
  }
  const domainSigns = (d: Domain) => signs.has(d.name);
  for (const d of site.domains) {
    for (const slot of wantedSlots(site, d, host)) {
      const mine = held.get(`${d.name} ${slot.algorithm}`) ?? [];
      mine.forEach((k) => handled.add(k));
      const signing = mine.filter((k) => k.status === 'signing');
      const pending = mine.filter((k) => k.status === 'pending');
      const retired = mine.filter((k) => k.status === 'retired');
      const fits = (k: DkimKeyState) => k.bits === slot.bits;
      const next = pending.find(fits);
      // Pending keys of a type the playbook no longer asks for never signed: they go at once.
      for (const p of pending) if (p !== next) remove.push(p);
      for (const s of signing.slice(1)) retired.push(retire(s, now));
      const sign = signing[0];
      if (!sign && !domainSigns(d)) {
        // Nothing signs for this domain yet: there is nothing to replace, so the first key signs at once.
        const k = next ? { ...next, status: 'signing' as const } : fresh(d, slot, 'signing', false);
        keys.push(k);
        if (!next) notes.push(`DKIM ${record(k)}: new ${kind(k)} key, signs from this run on`);
      } else if (!sign) {
        // Another algorithm joins keys that sign already: published first, like a replacement.
        if (next && input.served(next)) {
          keys.push({ ...next, status: 'signing' });
          notes.push(`DKIM ${record(next)}: DNS serves it, so it signs from now on`);
        } else if (next) {
          keys.push(next);
          notes.push(`DKIM ${record(next)}: waiting for DNS to serve it before it signs`);
        } else {
          const k = fresh(d, slot, 'pending', false);
          keys.push(k);
          notes.push(`DKIM ${record(k)}: new ${kind(k)} key; it is published first and signs once DNS serves it (with dns.update, in this apply after the DNS push)`);
        }
      } else if (fits(sign) && !next && !input.rotate?.has(d.name)) {
        keys.push(sign);
      } else if (!next) {
        const k = fresh(d, slot, 'pending', true);
        keys.push(sign, k);
        notes.push(
          `DKIM ${record(k)}: new ${kind(k)} key to replace ${record(sign)} (${kind(sign)}); it is published first and signs once DNS serves it (with dns.update, in this apply after the DNS push)`,
        );
      } else if (input.served(next)) {
        keys.push({ ...next, status: 'signing' }, retire(sign, now));
        notes.push(`DKIM ${record(next)}: DNS serves it, so it signs from now on; ${record(sign)} stops signing and stays published for ${human(grace(d.name))}`);
      } else {
        keys.push(sign, next);
        notes.push(`DKIM ${record(next)}: waiting for DNS to serve it before it signs; ${record(sign)} signs until then`);
      }
      keepOrDrop(retired);
    }
  }
  // Keys of domains or algorithms the playbook no longer signs with.
  const gone = current.filter((k) => !handled.has(k));
  for (const k of gone) {
    if (k.status === 'pending') remove.push(k);
    else if (k.status === 'signing') {
      keys.push(retire(k, now));
      notes.push(`DKIM ${record(k)}: no longer used by the playbook; it stops signing and stays published for ${human(grace(k.domain))}`);
    }
  }
  keepOrDrop(gone.filter((k) => k.status === 'retired'));
  // The playbook's domain order (domains it no longer has last), then algorithm, status and selector.
  const order = new Map(site.domains.map((d, i) => [d.name, i]));
  const rank = (domain: string) => order.get(domain) ?? site.domains.length;
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  keys.sort((a, b) => rank(a.domain) - rank(b.domain) || cmp(a.domain, b.domain) || cmp(a.algorithm, b.algorithm) || ORDER[a.status] - ORDER[b.status] || cmp(a.selector, b.selector));
  return { keys, remove, notes };

  function keepOrDrop(retired: DkimKeyState[]): void {
    for (const r of retired) {
      if (now >= (r.since ?? now) + grace(r.domain)) {
        remove.push(r);
        notes.push(`DKIM ${record(r)}: retired for ${human(now - (r.since ?? now))} (grace ${human(grace(r.domain))}): unpublished and deleted`);
      } else keys.push(r);
    }
  }
}

const retire = (k: DkimKeyState, now: number): DkimKeyState => ({ ...k, status: 'retired', since: k.status === 'retired' ? (k.since ?? now) : now });

export const kind = (k: { algorithm: DkimAlgorithm; bits?: number }) => (k.algorithm === 'ed25519' ? 'ed25519' : `rsa-${k.bits ?? '?'}`);

export function human(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  for (const [n, unit] of [
    [86400, 'day'],
    [3600, 'hour'],
    [60, 'minute'],
  ] as const) {
    if (s >= n && s % n === 0) return `${s / n} ${unit}${s / n === 1 ? '' : 's'}`;
  }
  return `${s} second${s === 1 ? '' : 's'}`;
}

/** The lifecycle file the host keeps beside its keys: one line per key. */
export function lifecycleText(keys: readonly DkimKeyState[]): string {
  return `# DKIM keys of this host, managed by mailops: domain selector algorithm bits status [retired-since]\n${keys
    .map((k) => `${k.domain} ${k.selector} ${k.algorithm} ${k.bits} ${k.status}${k.since !== undefined && k.status === 'retired' ? ` ${k.since}` : ''}\n`)
    .join('')}`;
}

export function parseLifecycle(lines: readonly string[]): Record<string, { status: DkimStatus; since?: number }> {
  const out: Record<string, { status: DkimStatus; since?: number }> = {};
  for (const l of lines) {
    const f = l.trim().split(/\s+/);
    if (f.length < 5 || f[0]!.startsWith('#')) continue;
    const [domain, selector, , , status, since] = f as [string, string, string, string, string, string?];
    if (status !== 'signing' && status !== 'pending' && status !== 'retired') continue;
    out[record({ domain, selector })] = { status, ...(since && /^\d+$/.test(since) ? { since: Number(since) } : {}) };
  }
  return out;
}

/** The host a state entry belongs to: recorded with it, or (older state files) the one whose selector it is. */
export function ownerOf(site: Site, rec: string, entry: SiteState['dkim'][string]): string | undefined {
  if (entry.host) return entry.host;
  const domain = domainOf(rec);
  const d = site.domains.find((x) => x.name === domain);
  return d && site.hosts.find((h) => wantedSlots(site, d, h).some((slot) => record({ selector: slot.base, domain }) === rec))?.name;
}

export const domainOf = (rec: string) => rec.slice(rec.indexOf('._domainkey.') + 12);

/** The DKIM lifecycle of a host from the state file alone (what the last apply recorded). */
export function stateDkim(site: Site, host: Host, state: SiteState | undefined, now: number): DkimPlan {
  const held: HeldKey[] = [];
  const lifecycle: Record<string, { status: DkimKeyState['status']; since?: number }> = {};
  for (const [rec, e] of Object.entries(state?.dkim ?? {})) {
    if (ownerOf(site, rec, e) !== host.name) continue;
    held.push({ domain: domainOf(rec), selector: e.selector, algorithm: e.algorithm, ...(e.bits ? { bits: e.bits } : {}), publicKey: e.publicKey });
    lifecycle[rec] = { status: e.status ?? 'signing', ...(e.since !== undefined ? { since: e.since } : {}) };
  }
  return planDkim({ site, host, held, lifecycle, taken: takenBy(site, host, state), served: () => false, now });
}

/** Record names of the DKIM keys that other hosts hold. */
export function takenBy(site: Site, host: Host, state: SiteState | undefined): Set<string> {
  return new Set(Object.entries(state?.dkim ?? {}).flatMap(([rec, e]) => (ownerOf(site, rec, e) !== host.name ? [rec] : [])));
}


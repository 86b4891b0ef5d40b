/**
 * The DNS checks of `mailops verify`: what the world sees of the site, asked of one resolver. Each
 * record set mailops renders is compared with the answer (MX, SPF, DMARC, every DKIM key, TLS-RPT, the
 * client names and SRV records, A/AAAA of the host names, NS), plus what a receiver judges beyond
 * equality: SPF within 10 DNS lookups, PTR of every host address equal to its host name and confirmed
 * forward, and no MX pointing anywhere but at the playbook's hosts.
 */
import { isIPv6 } from 'node:net';
import { Resolver } from 'node:dns/promises';
import { publishedKeys, zoneModel } from '../dns/records.js';
import type { DnsRecord } from '../dns/records.js';
import { countSpfLookups } from '../dns/spf.js';
import { canonicalName, canonicalRdata, normalizeIPv6 } from '../dns/rrset.js';
import type { Host, Site } from '../model/site.js';
import type { SiteState } from '../state/state.js';

export type DnsResolver = Pick<Resolver, 'resolve4' | 'resolve6' | 'resolveMx' | 'resolveTxt' | 'resolveCname' | 'resolveSrv' | 'resolveNs' | 'reverse'>;

type Outcome = { status: 'ok' | 'failed' | 'skipped'; detail: string };
export type Run = (subject: string, name: string, f: () => Promise<Outcome>) => Promise<void>;

const ok = (detail: string): Outcome => ({ status: 'ok', detail });
const failed = (detail: string): Outcome => ({ status: 'failed', detail });

export { resolverFor } from '../dns/client.js';

const NOT_FOUND = new Set(['ENOTFOUND', 'ENODATA']);

/** Canonical text of one record (rrset.ts's form; TXT as the text its strings stand for), comparable across answers. */
function canonical(type: DnsRecord['type'], data: string | string[]): string {
  return type === 'TXT' ? (Array.isArray(data) ? data.join('') : data) : canonicalRdata(type, Array.isArray(data) ? data.join(' ') : data);
}

/** The answers for name/type in canonical text; [] when the name or type does not exist. */
async function lookup(r: DnsResolver, name: string, type: DnsRecord['type']): Promise<string[]> {
  const n = name.replace(/\.$/, '');
  try {
    switch (type) {
      case 'A':
        return await r.resolve4(n);
      case 'AAAA':
        return (await r.resolve6(n)).map(normalizeIPv6);
      case 'MX':
        return (await r.resolveMx(n)).map((m) => canonical('MX', `${m.priority} ${m.exchange || '.'}`));
      case 'TXT':
        return (await r.resolveTxt(n)).map((parts) => parts.join(''));
      case 'CNAME':
        return (await r.resolveCname(n)).map((c) => canonical('CNAME', c));
      case 'SRV':
        return (await r.resolveSrv(n)).map((s) => canonical('SRV', `${s.priority} ${s.weight} ${s.port} ${s.name || '.'}`));
      case 'NS':
        return (await r.resolveNs(n)).map((x) => canonical('NS', x));
      default:
        return [];
    }
  } catch (e) {
    if (NOT_FOUND.has((e as NodeJS.ErrnoException).code ?? '')) return [];
    throw new Error(`${n} ${type}: the resolver answered ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
}

interface Wanted {
  subject: string;
  label: string;
  name: string;
  type: DnsRecord['type'];
  values: string[];
  /** TXT: only answers starting with this prefix belong to the set (v=spf1, v=DMARC1...). */
  prefix?: string;
}

const sameSet = (a: string[], b: string[]) => a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

function labelOf(r: DnsRecord, domain: string, name: string): string {
  if (r.type === 'TXT' && r.name === '@' && r.comment === 'SPF') return `SPF of ${domain}`;
  if (r.type === 'TXT' && r.name === '_dmarc') return `DMARC of ${domain}`;
  if (r.type === 'TXT' && r.name === '_smtp._tls') return `TLS-RPT of ${domain}`;
  if (r.type === 'TXT' && r.name === '_mta-sts') return `MTA-STS of ${domain}`;
  if (r.type === 'TXT' && r.name.endsWith('._domainkey')) return `DKIM ${name.replace(/\.$/, '')}`;
  if (r.type === 'TXT') return `SPF of ${name.replace(/\.$/, '')} (HELO name)`;
  return `${r.type} of ${name.replace(/\.$/, '')}`;
}

const TXT_PREFIX: Array<[RegExp, string]> = [
  [/^v=spf1( |$)/i, 'v=spf1'],
  [/^v=DMARC1/i, 'v=DMARC1'],
  [/^v=TLSRPTv1/i, 'v=TLSRPTv1'],
  [/^v=STSv1/i, 'v=STSv1'],
  [/^v=DKIM1/i, 'v=DKIM1'],
];

/** Every record set the zones should hold, grouped by owner name and type. */
function wanted(site: Site, state: SiteState): Wanted[] {
  const out: Wanted[] = [];
  const hostNames = new Set(site.hosts.map((h) => canonicalName(h.hostname)));
  for (const d of site.domains) {
    const model = zoneModel(site, d, state);
    const groups = new Map<string, DnsRecord[]>();
    for (const r of model.records) {
      const key = `${r.name} ${r.type}`;
      groups.set(key, [...(groups.get(key) ?? []), r]);
    }
    for (const rs of groups.values()) {
      const r0 = rs[0]!;
      const name = canonicalName(r0.name, d.name);
      // The addresses of the host names are checked per host (hostAddressChecks).
      if ((r0.type === 'A' || r0.type === 'AAAA') && hostNames.has(name)) continue;
      const prefix = r0.type === 'TXT' ? TXT_PREFIX.find(([re]) => re.test(Array.isArray(r0.data) ? r0.data.join('') : r0.data))?.[1] : undefined;
      const subject = r0.comment?.startsWith('DKIM of ') ? r0.comment.slice(8) : d.name;
      out.push({ subject, label: labelOf(r0, d.name, name), name, type: r0.type, values: rs.map((r) => canonical(r.type, r.data)), ...(prefix ? { prefix } : {}) });
    }
  }
  return out;
}

function describe(values: string[]): string {
  return values.length ? values.join(' | ') : 'nothing';
}

/** The checks that concern the zones: once per site. */
export async function zoneChecks(site: Site, state: SiteState, r: DnsResolver, run: Run): Promise<void> {
  const hostTargets = new Set(site.hosts.map((h) => canonicalName(h.hostname)));
  for (const w of wanted(site, state)) {
    await run(w.subject, w.label, async () => {
      let got = await lookup(r, w.name, w.type);
      if (w.prefix) got = got.filter((v) => v.toLowerCase().startsWith(w.prefix!.toLowerCase()));
      if (w.type === 'MX') {
        const stray = got.filter((v) => !hostTargets.has(v.split(' ')[1] ?? ''));
        if (stray.length) return failed(`MX ${stray.join(', ')} ${stray.length === 1 ? 'is' : 'are'} not a host of the playbook (a provider's leftover?): mail sent there never reaches the mailboxes; remove it. Expected only: ${describe(w.values)}`);
      }
      if (w.prefix && got.length > 1) return failed(`${w.name} has ${got.length} ${w.prefix} records; receivers treat more than one as an error: ${describe(got)}`);
      if (!sameSet(got, w.values)) return failed(`${w.name} ${w.type} is ${describe(got)}; the playbook publishes ${describe(w.values)}`);
      if (w.label.startsWith('SPF of ') && !w.label.endsWith('(HELO name)')) {
        const n = await countSpfLookups(w.name.replace(/\.$/, ''), (x) => r.resolveTxt(x));
        if (n.lookups > 10) return failed(`SPF needs ${n.lookups} DNS lookups (${n.detail.join(', ')}); receivers give up after 10 (RFC 7208 §4.6.4): flatten some includes`);
        return ok(`${describe(got)} (${n.lookups} of at most 10 DNS lookups)`);
      }
      return ok(describe(got));
    });
  }
  // Every host signs every DKIM domain with a key that DNS publishes (compared above with the key the host holds).
  for (const d of site.domains) {
    if (!d.dkim) continue;
    const keys = publishedKeys(site, d, state);
    for (const h of site.hosts) {
      if (keys.some((k) => k.host === h.name && k.status === 'signing')) continue;
      await run(h.name, `DKIM signing key for ${d.name}`, async () => failed(`no DKIM key of ${h.name} is recorded for ${d.name} yet: run mailops apply (it generates the key and publishes it with dns.update)`));
    }
  }
}

/** A (and AAAA) of a host name: exactly the playbook's addresses. */
export async function hostAddressChecks(host: Host, r: DnsResolver, run: Run): Promise<void> {
  const want: Array<['A' | 'AAAA', string]> = [['A', host.ipv4], ...(host.ipv6 ? [['AAAA', normalizeIPv6(host.ipv6)] as ['AAAA', string]] : [])];
  for (const [type, ip] of want) {
    await run(host.name, `${type} of ${host.hostname}`, async () => {
      const got = await lookup(r, host.hostname, type);
      if (got.length === 1 && got[0] === ip) return ok(`${host.hostname} → ${ip}`);
      return failed(`${host.hostname} ${type} is ${describe(got)}; the playbook says ${ip}`);
    });
  }
}

/** PTR of every address of a host: equal to its host name, and confirmed by the forward lookup. */
export async function ptrChecks(host: Host, r: DnsResolver, run: Run): Promise<void> {
  for (const ip of [host.ipv4, ...(host.ipv6 ? [host.ipv6] : [])]) {
    await run(host.name, `PTR of ${ip}`, async () => {
      let names: string[] = [];
      try {
        names = (await r.reverse(ip)).map((n) => n.replace(/\.$/, '').toLowerCase());
      } catch (e) {
        if (!NOT_FOUND.has((e as NodeJS.ErrnoException).code ?? '')) throw e;
      }
      const fix = `ask the provider of ${host.name} to set the reverse DNS of ${ip} to ${host.hostname}`;
      if (names.length === 0) return failed(`${ip} has no PTR record; receivers refuse such mail ("cannot find your hostname"): ${fix}`);
      if (!names.includes(host.hostname.toLowerCase())) return failed(`${ip} → ${names.join(', ')}, not ${host.hostname} (the HELO name): ${fix}`);
      const forward = isIPv6(ip) ? await lookup(r, host.hostname, 'AAAA') : await lookup(r, host.hostname, 'A');
      if (!forward.includes(isIPv6(ip) ? normalizeIPv6(ip) : ip)) return failed(`${ip} → ${host.hostname}, but ${host.hostname} resolves to ${describe(forward)}: not forward-confirmed`);
      return ok(`${ip} → ${host.hostname} → ${ip} (forward-confirmed)`);
    });
  }
}

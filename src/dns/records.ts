/** The DNS records of one mail domain, as data. Pure. */
import type { Domain, Host, Site } from '../model/site.js';
import type { SiteState } from '../state/state.js';
import { domainOf, ownerOf, record, stateDkim } from '../plan/dkim.js';
import { clientHost, mailboxHosts, serviceLabels } from '../render/names.js';
import { mtaStsPolicy } from '../clients/autoconfig.js';
import type { DkimKeyState, DkimStatus } from '../plan/dkim.js';

export interface DnsRecord {
  /** Owner name relative to the zone origin ("@" for the apex). */
  name: string;
  type: 'SOA' | 'NS' | 'A' | 'AAAA' | 'MX' | 'TXT' | 'CNAME' | 'SRV';
  /** Presentation-format data (TXT: the strings, unquoted, each <= 255 bytes). */
  data: string | string[];
  comment?: string;
}

export interface ZoneModel {
  domain: string;
  ttl: number;
  records: DnsRecord[];
  /** Lines of commentary (no data): PTR to set at the provider, DKIM not generated yet... */
  notes: string[];
}

const fq = (n: string) => (n.endsWith('.') ? n : `${n}.`);

/** Name of `fqdn` relative to `origin`, or null when it lies outside the zone. */
export function relativeName(fqdn: string, origin: string): string | null {
  const n = fqdn.replace(/\.$/, '').toLowerCase();
  if (n === origin) return '@';
  return n.endsWith(`.${origin}`) ? n.slice(0, -(origin.length + 1)) : null;
}

/** Split a TXT value into character-strings of at most 255 bytes. */
export function splitTxt(value: string, max = 255): string[] {
  const out: string[] = [];
  for (let i = 0; i < value.length; i += max) out.push(value.slice(i, i + max));
  return out.length ? out : [''];
}

export function reverseName(ip: string): string {
  if (ip.includes(':')) {
    const parts = ip.split('::');
    const head = parts[0] ? parts[0].split(':') : [];
    const tail = parts.length > 1 && parts[1] ? parts[1].split(':') : [];
    const groups = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
    const nibbles = groups.map((g) => g.padStart(4, '0')).join('');
    return `${[...nibbles].reverse().join('.')}.ip6.arpa.`;
  }
  return `${ip.split('.').reverse().join('.')}.in-addr.arpa.`;
}


/**
 * MX records: the mailbox hosts first, then the backup MXs (a higher preference number, so a sender tries
 * them only when no mailbox host answers). With replication both mailbox hosts hold every mailbox and
 * share the lowest preference; otherwise they keep the playbook's order (10, 20, ...).
 */
export function mxRecords(site: Site): Array<{ preference: number; host: string }> {
  const out: Array<{ preference: number; host: string }> = [];
  let pref = 0;
  for (const h of mailboxHosts(site)) out.push({ preference: site.stack.replication ? 10 : (pref += 10), host: h.hostname });
  pref = Math.max(...out.map((m) => m.preference));
  for (const h of site.hosts.filter((x) => x.role === 'backup-mx')) out.push({ preference: (pref += 10), host: h.hostname });
  return out;
}

export function spfValue(site: Site, d: Domain): string {
  const ips = site.hosts.flatMap((h) => [`ip4:${h.ipv4}`, ...(h.ipv6 ? [`ip6:${h.ipv6}`] : [])]);
  return ['v=spf1', ...new Set(ips), ...d.spf.include.map((i) => `include:${i}`), d.spf.policy].join(' ');
}

export function dmarcValue(d: Domain): string {
  const m = d.dmarc ?? { policy: 'none' as const };
  const parts = ['v=DMARC1', `p=${m.policy}`];
  if (m.pct !== undefined) parts.push(`pct=${m.pct}`);
  if (m.rua) parts.push(`rua=${m.rua.startsWith('mailto:') ? m.rua : `mailto:${m.rua}`}`);
  if (m.ruf) parts.push(`ruf=${m.ruf.startsWith('mailto:') ? m.ruf : `mailto:${m.ruf}`}`);
  return parts.join('; ');
}

export function tlsrptValue(address: string): string {
  return `v=TLSRPTv1; rua=${address.startsWith('mailto:') ? address : `mailto:${address}`}`;
}

export function dkimValue(algorithm: 'rsa' | 'ed25519', publicKey: string): string {
  return `v=DKIM1; k=${algorithm}; p=${publicKey}`;
}

/** Every record of the zone of `d`, in a stable order. The SOA is added by the zone writer. */
export function zoneModel(site: Site, d: Domain, state: SiteState): ZoneModel {
  const origin = d.name;
  const records: DnsRecord[] = [];
  const notes: string[] = [];
  for (const ns of site.dns.nameservers) records.push({ name: '@', type: 'NS', data: fq(ns) });
  for (const mx of mxRecords(site)) records.push({ name: '@', type: 'MX', data: `${mx.preference} ${fq(mx.host)}` });
  const taken = new Set<string>();
  // Glue: a name server inside this zone needs its address here, or no server loads the zone.
  for (const ns of site.dns.nameservers) {
    const rel = relativeName(ns, origin);
    const glue = site.dns.nameserverAddresses[ns];
    if (rel === null || site.hosts.some((h) => h.hostname.toLowerCase() === ns)) continue;
    if (!glue) {
      notes.push(`NS ${ns}. lies inside this zone but the playbook gives no address for it: add { name: ${ns}, ipv4: ... } to dns.nameservers.`);
      continue;
    }
    taken.add(rel);
    if (glue.ipv4) records.push({ name: rel, type: 'A', data: glue.ipv4, comment: 'name server' });
    if (glue.ipv6) records.push({ name: rel, type: 'AAAA', data: glue.ipv6, comment: 'name server' });
  }
  for (const h of site.hosts) {
    const rel = relativeName(h.hostname, origin);
    if (rel === null) continue;
    taken.add(rel);
    records.push({ name: rel, type: 'A', data: h.ipv4 });
    if (h.ipv6) records.push({ name: rel, type: 'AAAA', data: h.ipv6 });
    // HELO identity: receivers check SPF of the name the host greets with.
    if (rel !== '@') records.push({ name: rel, type: 'TXT', data: splitTxt(`v=spf1 ip4:${h.ipv4}${h.ipv6 ? ` ip6:${h.ipv6}` : ''} -all`) });
  }
  records.push({ name: '@', type: 'TXT', data: splitTxt(spfValue(site, d)), comment: 'SPF' });
  records.push({ name: '_dmarc', type: 'TXT', data: splitTxt(dmarcValue(d)), comment: 'DMARC' });
  if (site.dns.tlsrpt) records.push({ name: '_smtp._tls', type: 'TXT', data: splitTxt(tlsrptValue(site.dns.tlsrpt)), comment: 'TLS reporting (RFC 8460)' });
  // Each host's keys (and an RSA companion per Ed25519 key): signing ones, new ones published before they
  // sign, and retired ones for their grace period; as the last apply recorded them.
  for (const k of publishedKeys(site, d, state)) {
    records.push({ name: `${k.selector}._domainkey`, type: 'TXT', data: splitTxt(dkimValue(k.algorithm, k.publicKey)), comment: `DKIM of ${k.host}` });
  }
  // The keys a host makes at its next apply (what it signs with while nothing is recorded for it).
  for (const h of d.dkim ? site.hosts : []) {
    const published = new Set(publishedKeys(site, d, state).filter((k) => k.host === h.name).map((k) => k.record));
    for (const k of upcomingKeys(site, state, h, d.name).filter((x) => !published.has(record(x)))) {
      notes.push(`DKIM: ${record(k)}. TXT is published once the key exists: run \`mailops apply\` (it generates the key on ${h.name} and records its public half), then render this zone again.`);
    }
  }
  // Clients (IMAP, POP3, submission, autoconfiguration) go to the first mailbox host: a backup MX has none.
  const primary = clientHost(site);
  const target = fq(primary.hostname);
  const s = site.stack;
  // The names clients use (and the certificate of that host covers: src/render/names.ts).
  for (const { label, on } of serviceLabels(site)) if (on && !taken.has(label)) records.push({ name: label, type: 'CNAME', data: target });
  // RFC 6186: "0 0 0 ." says a service is not offered.
  const srv: Array<[string, number, boolean]> = [
    ['_submission._tcp', 587, true],
    ['_submissions._tcp', 465, true],
    ['_imap._tcp', 143, s.imap],
    ['_imaps._tcp', 993, s.imap],
    ['_pop3._tcp', 110, s.pop3],
    ['_pop3s._tcp', 995, s.pop3],
  ];
  for (const [name, port, on] of srv) records.push({ name, type: 'SRV', data: on ? `0 1 ${port} ${target}` : '0 0 0 .' });
  // Outlook's autodiscover by SRV (the target is the host name: an SRV target may not be a CNAME).
  if (s.autoconfig) records.push({ name: '_autodiscover._tcp', type: 'SRV', data: `0 1 443 ${target}` });
  const sts = mtaStsPolicy(site);
  if (sts) records.push({ name: '_mta-sts', type: 'TXT', data: splitTxt(`v=STSv1; id=${sts.id}`), comment: `MTA-STS (${s.mtaSts}): the policy is at https://mta-sts.${d.name}/.well-known/mta-sts.txt` });
  for (const h of site.hosts) {
    notes.push(`PTR (set at the provider of ${h.name}): ${reverseName(h.ipv4)} PTR ${fq(h.hostname)}`);
    if (h.ipv6) notes.push(`PTR (set at the provider of ${h.name}): ${reverseName(h.ipv6)} PTR ${fq(h.hostname)}`);
  }
  return { domain: d.name, ttl: site.dns.ttl, records, notes };
}

export interface PublishedKey {
  host: string;
  selector: string;
  algorithm: 'rsa' | 'ed25519';
  publicKey: string;
  status: DkimStatus;
  /** <selector>._domainkey.<domain> */
  record: string;
}

/**
 * The DKIM keys a domain publishes, from the state: each host's keys with their lifecycle. An entry of an
 * older state file (no host) belongs to the host whose selector it is; keys of hosts the playbook no
 * longer has are not published.
 */
export function publishedKeys(site: Site, d: Domain, state: SiteState): PublishedKey[] {
  return stateKeys(site, state).published.get(d.name) ?? [];
}

/** The DKIM keys each host makes at its next apply, by domain (stateDkim: what it signs with while nothing is recorded for it). */
function upcomingKeys(site: Site, state: SiteState, host: Host, domain: string): DkimKeyState[] {
  const views = stateKeys(site, state).upcoming;
  let byDomain = views.get(host.name);
  if (!byDomain) {
    byDomain = new Map();
    for (const k of stateDkim(site, host, state, 0).keys) byDomain.set(k.domain, [...(byDomain.get(k.domain) ?? []), k]);
    views.set(host.name, byDomain);
  }
  return byDomain.get(domain) ?? [];
}

/**
 * What the zones read of the state's DKIM keys, worked out once for a site and a state, not once for each
 * of their domains (a site of thousands of domains): both are values, never changed once made.
 */
const derived = new WeakMap<SiteState, WeakMap<Site, { published: Map<string, PublishedKey[]>; upcoming: Map<string, Map<string, DkimKeyState[]>> }>>();

function stateKeys(site: Site, state: SiteState) {
  let bySite = derived.get(state);
  if (!bySite) derived.set(state, (bySite = new WeakMap()));
  let view = bySite.get(site);
  if (view) return view;
  const published = new Map<string, PublishedKey[]>();
  for (const [rec, e] of Object.entries(state.dkim)) {
    // <selector>._domainkey.<domain>, the selector one label.
    const at = rec.indexOf('._domainkey.');
    if (at < 0 || rec.slice(0, at).includes('.')) continue;
    const host = ownerOf(site, rec, e);
    if (!host || !site.hosts.some((h) => h.name === host)) continue;
    const domain = domainOf(rec);
    published.set(domain, [...(published.get(domain) ?? []), { host, selector: e.selector, algorithm: e.algorithm, publicKey: e.publicKey, status: e.status ?? 'signing', record: rec }]);
  }
  for (const keys of published.values()) keys.sort((a, b) => (a.selector < b.selector ? -1 : a.selector > b.selector ? 1 : 0));
  view = { published, upcoming: new Map() };
  bySite.set(site, view);
  return view;
}

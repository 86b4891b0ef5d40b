/**
 * What the HTTPS endpoint of the client host must serve, from the same model as the files `apply` writes
 * (src/clients/autoconfig.ts), and how a served answer is compared with it: exact bodies for the static
 * files, the fields of Outlook's POX answer, the MTA-STS policy's `mx:` lines against DNS. Pure.
 */
import { create } from 'xmlbuilder2';
import { appleProfile, autodiscoverJson, autodiscoverXml, mtaStsPolicy, thunderbirdConfig } from '../clients/autoconfig.js';
import type { Domain, Host, Site } from '../model/site.js';
import { webNames } from '../render/names.js';
import { certCovers } from './wire.js';

export const POLICY_PATH = '/.well-known/mta-sts.txt';

/** One URL the endpoint must answer with 200, and what the answer must be. */
export interface WebResource {
  /** The name of the check. */
  check: string;
  /** The name asked for: SNI and Host header. */
  name: string;
  path: string;
  method: 'GET' | 'POST';
  /** The request body (POST). */
  body?: string;
  /** The media type of the answer (Content-Type without its parameters). */
  type: string;
  /** exact: the body, byte for byte; autodiscover: the fields of a POX answer (autodiscoverDifference). */
  expect: { kind: 'exact' | 'autodiscover'; body: string };
}

/** What Outlook POSTs to autodiscover.xml. */
export const autodiscoverRequest = (address: string) =>
  `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>${address}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`;

/** An address of the domain to ask about (Outlook sends the user's). */
const someAddress = (d: Domain) => d.mailboxes[0]?.address ?? `postmaster@${d.name}`;

/** Every URL of a domain the client host serves, with what it must answer. */
export function webResources(site: Site, d: Domain): WebResource[] {
  const out: WebResource[] = [];
  const url = (name: string, path: string) => `https://${name}${path}`;
  if (site.stack.autoconfig) {
    const ac = `autoconfig.${d.name}`;
    const ad = `autodiscover.${d.name}`;
    const tb = thunderbirdConfig(site, d);
    for (const path of ['/mail/config-v1.1.xml', '/.well-known/autoconfig/mail/config-v1.1.xml']) {
      out.push({ check: `HTTPS Thunderbird autoconfig: ${url(ac, path)}`, name: ac, path, method: 'GET', type: 'application/xml', expect: { kind: 'exact', body: tb } });
    }
    const pox = '/autodiscover/autodiscover.xml';
    out.push({ check: `HTTPS Outlook autodiscover (POX): ${url(ad, pox)}`, name: ad, path: pox, method: 'POST', body: autodiscoverRequest(someAddress(d)), type: 'application/xml', expect: { kind: 'autodiscover', body: autodiscoverXml(site, d) } });
    const json = '/autodiscover/autodiscover.json';
    out.push({ check: `HTTPS Outlook autodiscover (JSON): ${url(ad, json)}`, name: ad, path: `${json}/v1.0/${someAddress(d)}?Protocol=AutodiscoverV1`, method: 'GET', type: 'application/json', expect: { kind: 'exact', body: autodiscoverJson(d) } });
    for (const m of d.mailboxes) {
      const path = `/apple/${m.local}.mobileconfig`;
      out.push({ check: `HTTPS Apple profile: ${url(ac, path)}`, name: ac, path, method: 'GET', type: 'application/x-apple-aspen-config', expect: { kind: 'exact', body: appleProfile(site, d, m) } });
    }
  }
  const sts = mtaStsPolicy(site);
  if (sts) {
    const name = `mta-sts.${d.name}`;
    out.push({ check: `HTTPS MTA-STS policy: ${url(name, POLICY_PATH)}`, name, path: POLICY_PATH, method: 'GET', type: 'text/plain', expect: { kind: 'exact', body: sts.text } });
  }
  return out;
}

/**
 * URLs that must answer 404 for a domain: a path nothing serves on each of its HTTPS names, the profile
 * of an address that is no mailbox, and the MTA-STS policy anywhere but at mta-sts.<domain>.
 */
export function notFoundProbes(site: Site, d: Domain): Array<{ name: string; path: string }> {
  const names = webNames(site, d);
  const probes = names.map((name) => ({ name, path: '/mailops-verify/no-such-path' }));
  if (site.stack.autoconfig) {
    const locals = new Set(d.mailboxes.map((m) => m.local));
    let local = 'mailops-verify-no-such-mailbox';
    while (locals.has(local)) local += '-x';
    probes.push({ name: `autoconfig.${d.name}`, path: `/apple/${local}.mobileconfig` });
  }
  if (site.stack.mtaSts !== 'none') for (const name of names.filter((n) => !n.startsWith('mta-sts.'))) probes.push({ name, path: POLICY_PATH });
  return probes;
}

/** The host's own name serves nothing over HTTPS (nginx's default server): a name the site does not serve. */
export const hostNameProbe = (host: Host) => ({ name: host.hostname, path: '/mail/config-v1.1.xml' });

const show = (s: string, max = 100) => JSON.stringify(s.length > max ? `${s.slice(0, max)}…` : s);

/** The line of `s` around index i (without its line end). */
function lineAt(s: string, i: number): string {
  const start = s.lastIndexOf('\n', i - 1) + 1;
  const end = s.indexOf('\n', i);
  return s.slice(start, end < 0 ? undefined : end).replace(/\r$/, '');
}

/** Where a served body first differs from the expected one, for a person; undefined when they are equal. */
export function bodyDifference(want: string, got: string): string | undefined {
  if (want === got) return undefined;
  let i = 0;
  while (i < want.length && i < got.length && want[i] === got[i]) i++;
  const line = want.slice(0, i).split('\n').length;
  if (i === got.length) return `the body served ends early, at line ${line} (${got.length} of ${want.length} characters); missing from there: ${show(want.slice(i))}`;
  if (i === want.length) return `the body served goes on after the expected end, at line ${line}: ${show(got.slice(i))} (${got.length - want.length} characters more)`;
  return `line ${line} differs: served ${show(lineAt(got, i))}, the playbook gives ${show(lineAt(want, i))}`;
}

/** The account fields of an Outlook POX answer and its Protocol entries (leaf fields by name). */
export function autodiscoverFields(xml: string): { account: Record<string, string>; protocols: Array<Record<string, string>> } {
  let doc: unknown;
  try {
    doc = create(xml).end({ format: 'object' });
  } catch (e) {
    throw new Error(`the answer is not XML: ${(e as Error).message}`);
  }
  const account = (doc as { Autodiscover?: { Response?: { Account?: Record<string, unknown> } } }).Autodiscover?.Response?.Account;
  if (!account || typeof account !== 'object') throw new Error(`the answer has no Autodiscover/Response/Account: ${show(xml)}`);
  const leaves = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).filter(([k, v]) => !k.startsWith('@') && typeof v === 'string')) as Record<string, string>;
  const raw = account['Protocol'];
  const list = (Array.isArray(raw) ? raw : raw ? [raw] : []) as Array<Record<string, unknown>>;
  return { account: leaves(account), protocols: list.map(leaves) };
}

/** What differs between two POX answers, field by field (Protocol entries matched by Type); [] when they agree. */
export function autodiscoverDifference(wantXml: string, gotXml: string): string[] {
  const want = autodiscoverFields(wantXml);
  const got = autodiscoverFields(gotXml);
  const problems: string[] = [];
  const fields = (where: string, w: Record<string, string>, g: Record<string, string>) => {
    for (const [k, v] of Object.entries(w)) if (g[k] !== v) problems.push(`${where}${k} is ${g[k] === undefined ? 'missing' : show(g[k]!)}, the playbook gives ${show(v)}`);
    for (const k of Object.keys(g)) if (!(k in w)) problems.push(`${where}${k} ${show(g[k]!)} is not in the playbook's answer`);
  };
  fields('', want.account, got.account);
  const types = (l: Array<Record<string, string>>) => l.map((p) => p['Type'] ?? '?');
  for (const w of want.protocols) {
    const g = got.protocols.find((p) => p['Type'] === w['Type']);
    if (!g) problems.push(`no Protocol ${w['Type']} (served: ${types(got.protocols).join(', ') || 'none'})`);
    else fields(`Protocol ${w['Type']}: `, w, g);
  }
  for (const t of types(got.protocols)) if (!types(want.protocols).includes(t)) problems.push(`Protocol ${t} is served, but the playbook has none`);
  return problems;
}

/** The `mx:` patterns of an MTA-STS policy, in order. */
export function policyMx(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => /^mx:\s*(\S+)\s*$/.exec(l)?.[1])
    .filter((x): x is string => x !== undefined);
}

/**
 * The policy's mx: patterns against the MX host names DNS serves (RFC 8461 §4.1: a pattern is a name or
 * "*." and one label, matched as certificate names are): every MX must match a pattern, or senders that
 * enforce the policy refuse to deliver to it; and every pattern should match an MX. [] when they agree.
 */
export function mxDifference(patterns: string[], mx: string[]): string[] {
  const problems: string[] = [];
  const hosts = mx.map((m) => m.toLowerCase().replace(/\.$/, ''));
  if (hosts.length === 0) problems.push('DNS serves no MX record');
  for (const h of hosts) if (!certCovers(patterns, h)) problems.push(`MX ${h} is not in the policy: senders that enforce MTA-STS will not deliver to it`);
  for (const p of patterns) if (!hosts.some((h) => certCovers([p], h))) problems.push(`the policy lists mx: ${p}, which is no MX of the domain`);
  return problems;
}

/** The id of the `_mta-sts` TXT record (v=STSv1; id=...), or undefined. */
export function stsRecordId(txt: string): string | undefined {
  return /(?:^|;)\s*id=([A-Za-z0-9]{1,32})\s*(?:;|$)/.exec(txt)?.[1];
}

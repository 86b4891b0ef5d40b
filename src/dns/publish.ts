/**
 * DNS as a step of plan and apply: read every zone from its primary server (AXFR, TSIG-signed), compare
 * the record sets mailops renders with what is there, and push the difference in one signed UPDATE
 * per zone. Only the rendered sets (name + type) are managed; every other record stays. The pure parts
 * (desiredRrsets, diffZone, nsupdateScript) live beside this file; this is the thin I/O around them.
 */
import { Resolver, lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { UserError } from '../errors.js';
import type { Site } from '../model/site.js';
import type { SiteState } from '../state/state.js';
import pLimit from 'p-limit';
import { axfr, formatServer, parseServer, pushChanges, readTsigKey, resolverFor } from './client.js';
import type { TsigKeySource } from './client.js';
import { zoneModel } from './records.js';
import { desiredRrsets } from './rrset.js';
import { diffZone } from './update.js';
import type { DnsChange } from './update.js';

export interface DnsTarget {
  /** "HOST[:PORT]". */
  server: string;
  key: TsigKeySource;
}

export interface ZonePlan {
  zone: string;
  changes: DnsChange[];
  /** The live SOA serial, when the zone could be read. */
  serial?: number;
  /** Why the zone could not be read or updated (names the server and the zone). */
  error?: string;
}

export interface DnsOutcome {
  zones: ZonePlan[];
  changes: number;
  ok: boolean;
}

/**
 * Where zones go: the flags first, then the sandbox's server, then the playbook's dns.update. The key is
 * read and parsed here, before any host is touched: a missing or malformed key changes nothing anywhere.
 */
export function dnsTarget(site: Site, flags: { dnsServer?: string; tsigKey?: string }, sandbox?: { server: string; keyFile: string }): DnsTarget | undefined {
  const t = locateTarget(site, flags, sandbox);
  if (t) readTsigKey(t.key);
  return t;
}

function locateTarget(site: Site, flags: { dnsServer?: string; tsigKey?: string }, sandbox?: { server: string; keyFile: string }): DnsTarget | undefined {
  const server = flags.dnsServer ?? sandbox?.server ?? site.dns.update?.server;
  if (server === undefined) {
    if (flags.tsigKey !== undefined) throw new UserError('--tsig-key needs a server to sign updates for: --dns-server HOST[:PORT] or dns.update.server in the playbook');
    return undefined;
  }
  formatServer(parseServer(server));
  if (flags.tsigKey !== undefined) return { server, key: { file: flags.tsigKey } };
  if (sandbox && flags.dnsServer === undefined) return { server, key: { file: sandbox.keyFile } };
  const ref = site.dns.update?.key;
  if (!ref) throw new UserError(`DNS updates to ${server} need a TSIG key: --tsig-key FILE, or dns.update.key in the playbook`);
  if (ref.kind === 'file') return { server, key: { file: ref.path } };
  const text = process.env[ref.name];
  if (text === undefined || text.trim() === '') throw new UserError(`dns.update.key: environment variable ${ref.name} is ${text === undefined ? 'not set' : 'empty'} (it holds the text of a BIND key file)`);
  return { server, key: { text, origin: `environment variable ${ref.name}` } };
}

const message = (e: unknown) => {
  if (e instanceof UserError) return e.message;
  throw e;
};

/**
 * How many zones are read (AXFR) or updated at once: a site of hundreds of domains would otherwise open a
 * TCP connection per zone at the same time, past what a server serves at once (BIND: tcp-clients, 150).
 */
const ZONES_AT_ONCE = 8;

/**
 * What every zone needs, read from the server. Zones that cannot be read carry an error. `previous`: the
 * state the zones were last rendered from; what it published and `state` no longer does is deleted.
 */
export async function planZones(site: Site, state: SiteState, target: DnsTarget, previous?: SiteState): Promise<ZonePlan[]> {
  const one = async (d: Site['domains'][number]): Promise<ZonePlan> => {
    try {
      const live = await axfr(target.server, d.name, target.key);
      const desired = desiredRrsets(zoneModel(site, d, state));
      const withdrawn = previous ? desiredRrsets(zoneModel(site, d, previous)) : [];
      return { zone: d.name, changes: diffZone(d.name, desired, live.rrsets, withdrawn), serial: live.soa.serial };
    } catch (e) {
      return { zone: d.name, changes: [], error: message(e) };
    }
  };
  const limit = pLimit(ZONES_AT_ONCE);
  return Promise.all(site.domains.map((d) => limit(() => one(d))));
}

/**
 * Push every zone's changes (one atomic UPDATE per zone), then read the zone again: a server that took
 * the update but still differs (it silently drops what it must not hold, RFC 2136 §3.4.2) is an error.
 */
export async function pushZones(site: Site, state: SiteState, target: DnsTarget, previous?: SiteState): Promise<DnsOutcome> {
  const plans = await planZones(site, state, target, previous);
  const one = async (p: ZonePlan): Promise<ZonePlan> => {
    if (p.error || p.changes.length === 0) return p;
    try {
      await pushChanges(target.server, p.zone, p.changes, target.key);
      const [after] = await planZones({ ...site, domains: site.domains.filter((d) => d.name === p.zone) }, state, target, previous);
      if (after?.error) return { ...p, error: after.error };
      if (after && after.changes.length) {
        const left = after.changes.map((c) => `${c.name} ${c.type}`).join(', ');
        return { ...p, error: `${formatServer(parseServer(target.server))} accepted the update of zone ${p.zone} but still does not hold ${left}: is another record in the way (a CNAME rule)?` };
      }
      return { ...p, ...(after?.serial !== undefined ? { serial: after.serial } : {}) };
    } catch (e) {
      return { ...p, error: message(e) };
    }
  };
  const limit = pLimit(ZONES_AT_ONCE);
  const zones = await Promise.all(plans.map((p) => limit(() => one(p))));
  const ok = zones.every((z) => !z.error);
  return { zones, ok, changes: zones.reduce((n, z) => n + (z.error ? 0 : z.changes.length), 0) };
}

/**
 * TXT lookups for DKIM's publish-first rule: at the resolver given, else at the server mailops pushes to
 * (it serves what was pushed at once), else at the system's resolver (zones published some other way).
 */
export function txtResolver(target?: DnsTarget, resolver?: string): (name: string) => Promise<string[][]> {
  const server = resolver ?? target?.server;
  let made: Promise<Resolver> | undefined;
  const make = async (): Promise<Resolver> => {
    if (!server) return new Resolver({ timeout: 3000, tries: 2 });
    const s = parseServer(server);
    return resolverFor(formatServer({ host: isIP(s.host) ? s.host : (await lookup(s.host)).address, port: s.port }));
  };
  return async (name) => (await (made ??= make())).resolveTxt(name);
}

/** BIND zone files: the records of dns/records.ts laid out by templates/dns/zone.hbs, with a content-derived serial. */
import { createHash } from 'node:crypto';
import { readTemplate } from '../components/load.js';
import type { Site } from '../model/site.js';
import { compile } from '../render/handlebars.js';
import type { SiteState, ZoneSerial } from '../state/state.js';
import { zoneModel } from './records.js';
import { chooseSerial } from './serial.js';
import type { DnsRecord } from './records.js';

export interface RenderedZone {
  domain: string;
  serial: number;
  digest: string;
  text: string;
}

function quoteTxt(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

export function recordLine(r: DnsRecord): string {
  const data = r.type === 'TXT' ? (Array.isArray(r.data) ? r.data : [r.data]).map(quoteTxt).join(' ') : String(r.data);
  const line = `${r.name.padEnd(24)} IN ${r.type.padEnd(5)} ${data}`;
  return r.comment ? `${line} ; ${r.comment}` : line;
}

/** SOA RNAME: hostmaster@example.com → hostmaster.example.com. (dots in the local part escaped). */
export function rname(email: string): string {
  const at = email.lastIndexOf('@');
  return `${email.slice(0, at).replace(/\./g, '\\.')}.${email.slice(at + 1)}.`;
}

export interface SerialOptions {
  /** The clock for date-based serials (default: SOURCE_DATE_EPOCH when set, else now). */
  now?: Date;
  /** Live SOA serials by zone, when a server is known. */
  live?: Record<string, number>;
}

/** SOURCE_DATE_EPOCH (reproducible builds) when set, else the current time. */
export function clock(): Date {
  const e = process.env['SOURCE_DATE_EPOCH'];
  return e !== undefined && /^\d+$/.test(e) ? new Date(Number(e) * 1000) : new Date();
}

export function renderZone(site: Site, domain: string, state: SiteState, opts: SerialOptions = {}): RenderedZone {
  const d = site.domains.find((x) => x.name === domain);
  if (!d) throw new Error(`internal: unknown domain ${domain}`);
  const model = zoneModel(site, d, state);
  const template = compile(readTemplate('dns/zone.hbs'), 'dns/zone.hbs');
  const ctx = {
    domain: d.name,
    ttl: model.ttl,
    primaryNs: `${site.dns.nameservers[0]}.`,
    rname: rname(site.dns.hostmaster || `hostmaster@${d.name}`),
    records: model.records.map(recordLine),
    notes: model.notes,
  };
  const body = template({ ...ctx, serial: '@SERIAL@' });
  const digest = createHash('sha256').update(body).digest('hex');
  const recorded: ZoneSerial | undefined = state.zones[d.name];
  const live = opts.live?.[d.name];
  const serial = chooseSerial({ digest, ...(recorded ? { recorded } : {}), ...(live !== undefined ? { live } : {}), now: opts.now ?? clock() });
  return { domain: d.name, serial, digest, text: body.replace('@SERIAL@', String(serial)) };
}

export function renderZones(site: Site, state: SiteState, opts: SerialOptions = {}): RenderedZone[] {
  return site.domains.map((d) => renderZone(site, d.name, state, opts));
}

/** The state with every zone's serial recorded. */
export function recordSerials(state: SiteState, zones: RenderedZone[]): SiteState {
  const next = { ...state, zones: { ...state.zones } };
  for (const z of zones) next.zones[z.domain] = { serial: z.serial, digest: z.digest };
  return next;
}

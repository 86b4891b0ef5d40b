/** BIND zone files: the records of dns/records.ts laid out by templates/dns/zone.hbs, with a content-derived serial. */
import { createHash } from 'node:crypto';
import { readTemplate } from '../components/load.js';
import type { Site } from '../model/site.js';
import { compile } from '../render/handlebars.js';
import type { SiteState, ZoneSerial } from '../state/state.js';
import { zoneModel } from './records.js';
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

/** The serial for content `digest`: unchanged content keeps its serial, changed content gets the next one. */
export function nextSerial(digest: string, prev: ZoneSerial | undefined): number {
  if (!prev) return 1;
  return prev.digest === digest ? prev.serial : prev.serial + 1;
}

export function renderZone(site: Site, domain: string, state: SiteState): RenderedZone {
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
  const serial = nextSerial(digest, state.zones[d.name]);
  return { domain: d.name, serial, digest, text: body.replace('@SERIAL@', String(serial)) };
}

export function renderZones(site: Site, state: SiteState): RenderedZone[] {
  return site.domains.map((d) => renderZone(site, d.name, state));
}

/** The state with every zone's serial recorded. */
export function recordSerials(state: SiteState, zones: RenderedZone[]): SiteState {
  const next = { ...state, zones: { ...state.zones } };
  for (const z of zones) next.zones[z.domain] = { serial: z.serial, digest: z.digest };
  return next;
}

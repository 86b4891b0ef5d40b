/**
 * The changes that bring a live zone to the record sets mailops renders, the RFC 2136 update that makes
 * them (an nsupdate script), and what nsupdate says when that fails. Pure.
 *
 * mailops manages only the record sets it renders (name + type); every other set is left alone, and it
 * never deletes a set it does not render (it cannot know whether it once rendered it). Two refinements:
 * - A TXT set whose rendered records all carry a version tag (v=spf1, v=DMARC1, v=DKIM1, v=TLSRPTv1,
 *   v=STSv1...) is managed only in the records with that tag: a google-site-verification TXT beside the
 *   SPF record at the apex stays (`kept`). Without this the apex SPF would wipe every other apex TXT.
 * - CNAME excludes other data at its name (RFC 1034 §3.6.2; RFC 2136 §3.4.2.2 makes a server silently
 *   ignore an add that breaks this). When the render puts a CNAME where the zone has other sets (imap
 *   from A to CNAME) or other data where the zone has a CNAME, the change `replaces` those sets: they are
 *   deleted in the same message and the plan lists each of them, so nothing goes without being shown.
 *
 * Each change in the script is guarded by a prerequisite on the live set as it was read (RFC 2136 §2.4),
 * so the message (one per zone, applied atomically) fails with NXRRSET/YXRRSET instead of overwriting
 * what someone changed after the plan was made.
 */
import type { DnsFailure, ToolOutput } from './axfr.js';
import { rcodeFailure } from './axfr.js';
import { canonicalName, sameRdata, txtText } from './rrset.js';
import type { RRset } from './rrset.js';

export interface DnsChange {
  /** The zone (domain name, no trailing dot). */
  zone: string;
  name: string;
  type: string;
  /** delete: a set mailops published and no longer renders (a retired DKIM key): its records go. */
  action: 'create' | 'update' | 'delete';
  /** The live records mailops manages at name + type (absent: none, a create). */
  before?: RRset;
  after: RRset;
  /** Live records at name + type that mailops does not manage (TXT of another protocol); they stay. */
  kept?: string[];
  /** Live sets at the same name that cannot coexist with `after` (CNAME rules); deleted by this change. */
  replaces?: RRset[];
}

/** Types that may sit beside a CNAME (DNSSEC). */
const BESIDE_CNAME = new Set(['RRSIG', 'NSEC', 'KEY']);

const keyOf = (s: { name: string; type: string }) => `${s.name} ${s.type}`;

function conflicts(desiredType: string, liveType: string): boolean {
  if (desiredType === liveType || BESIDE_CNAME.has(desiredType) || BESIDE_CNAME.has(liveType)) return false;
  return desiredType === 'CNAME' || liveType === 'CNAME';
}

/** The version tag of a TXT value ("v=spf1 ..." → "spf1"), lower case. */
export function txtTag(rdata: string): string | undefined {
  return /^v=([a-z0-9]+)(?=[;\s]|$)/i.exec(txtText(rdata).trim())?.[1]?.toLowerCase();
}

/** The live records of a set that mailops manages, and the ones it leaves alone. */
function ownership(desired: RRset, live: RRset | undefined): { owned: string[]; kept: string[] } {
  if (!live) return { owned: [], kept: [] };
  if (desired.type !== 'TXT') return { owned: live.rdata, kept: [] };
  const tags = desired.rdata.map(txtTag);
  if (tags.some((t) => t === undefined)) return { owned: live.rdata, kept: [] };
  const owned = live.rdata.filter((r) => tags.includes(txtTag(r)));
  return { owned, kept: live.rdata.filter((r) => !owned.includes(r)) };
}

/**
 * The changes that make `live` hold `desired`, in the order of `desired`. `withdrawn` are sets that
 * mailops rendered before and renders no more (a DKIM key past its grace): exactly their records are
 * deleted, whatever else sits at the name stays.
 */
export function diffZone(zone: string, desired: readonly RRset[], live: readonly RRset[], withdrawn: readonly RRset[] = []): DnsChange[] {
  const zoneName = canonicalName(zone).replace(/\.$/, '');
  const liveByKey = new Map(live.map((s) => [keyOf(s), s]));
  const desiredKeys = new Set(desired.map(keyOf));
  const claimed = new Set<string>();
  const changes: DnsChange[] = [];
  for (const d of desired) {
    const l = liveByKey.get(keyOf(d));
    const { owned, kept } = ownership(d, l);
    const before = l && owned.length ? { ...l, rdata: owned } : undefined;
    const replaces = live.filter((s) => s.name === d.name && conflicts(d.type, s.type) && !desiredKeys.has(keyOf(s)) && !claimed.has(keyOf(s)));
    for (const s of replaces) claimed.add(keyOf(s));
    const ttlDiffers = l !== undefined && l.ttl !== d.ttl;
    if (before && sameRdata(before, d) && !ttlDiffers && replaces.length === 0) continue;
    changes.push({
      zone: zoneName,
      name: d.name,
      type: d.type,
      action: before ? 'update' : 'create',
      ...(before ? { before } : {}),
      after: d,
      ...(kept.length ? { kept } : {}),
      ...(replaces.length ? { replaces } : {}),
    });
  }
  for (const w of withdrawn) {
    const l = liveByKey.get(keyOf(w));
    if (!l || desiredKeys.has(keyOf(w))) continue;
    const same = (a: string, b: string) => (w.type === 'TXT' ? txtText(a) === txtText(b) : a === b);
    const owned = l.rdata.filter((r) => w.rdata.some((x) => same(r, x)));
    if (!owned.length) continue;
    const kept = l.rdata.filter((r) => !owned.includes(r));
    changes.push({ zone: zoneName, name: w.name, type: w.type, action: 'delete', before: { ...l, rdata: owned }, after: { ...l, rdata: [] }, ...(kept.length ? { kept } : {}) });
  }
  return changes;
}

export interface UpdateServer {
  host: string;
  port: number;
}

/**
 * One nsupdate message for the zone: prerequisites on every set it touches as it was read, then per
 * change: delete the sets it replaces, add every record of `after` (an add of an existing record with
 * another TTL replaces it, RFC 2136 §3.4.2.2), delete the managed records that are no longer wanted.
 * Adding before deleting keeps the apex NS set from ever being empty (a server ignores that delete).
 */
export function nsupdateScript(server: UpdateServer, zone: string, changes: readonly DnsChange[]): string {
  const origin = canonicalName(zone);
  const lines = [`server ${server.host} ${server.port}`, `zone ${origin}`];
  for (const c of changes) {
    const live = [...(c.before?.rdata ?? []), ...(c.kept ?? [])];
    if (live.length === 0) lines.push(`prereq nxrrset ${c.name} ${c.type}`);
    for (const r of live) lines.push(`prereq yxrrset ${c.name} ${c.type} ${r}`);
    for (const s of c.replaces ?? []) lines.push(`prereq yxrrset ${s.name} ${s.type}`);
  }
  for (const c of changes) {
    for (const s of c.replaces ?? []) lines.push(`update delete ${s.name} ${s.type}`);
    for (const r of c.after.rdata) lines.push(`update add ${c.after.name} ${c.after.ttl} ${c.type} ${r}`);
    for (const r of c.before?.rdata ?? []) if (!c.after.rdata.includes(r)) lines.push(`update delete ${c.name} ${c.type} ${r}`);
  }
  lines.push('send');
  return `${lines.join('\n')}\n`;
}

const show = (type: string, r: string) => (type === 'TXT' ? JSON.stringify(txtText(r)) : r);
const showSet = (s: RRset) => s.rdata.map((r) => show(s.type, r)).join(', ');

function relative(name: string, zone: string): string {
  const origin = canonicalName(zone);
  if (name === origin) return '@';
  return name.endsWith(`.${origin}`) ? name.slice(0, -(origin.length + 1)) : name;
}

/** For people, per zone: "+ name TYPE rdata", "~ name TYPE: old → new", in the style of a plan. */
export function formatDnsChanges(changes: readonly DnsChange[]): string {
  const zones = [...new Set(changes.map((c) => c.zone))];
  const out: string[] = [];
  for (const zone of zones) {
    const mine = changes.filter((c) => c.zone === zone);
    out.push(`dns ${zone}: ${mine.length} change${mine.length === 1 ? '' : 's'}`);
    for (const c of mine) {
      const name = relative(c.name, zone);
      const keeps = c.kept?.length ? ` (keeps ${c.kept.length} other ${c.type} record${c.kept.length === 1 ? '' : 's'})` : '';
      if (c.replaces?.length) {
        const old = [...(c.before ? [c.before] : []), ...c.replaces].map((s) => `${s.type} ${showSet(s)}`).join('; ');
        out.push(`  ~ ${name}: ${old} → ${c.type} ${showSet(c.after)}${keeps}`);
      } else if (!c.before) {
        for (const r of c.after.rdata) out.push(`  + ${name} ${c.type} ${show(c.type, r)}${keeps}`);
      } else if (c.action === 'delete') {
        for (const r of c.before.rdata) out.push(`  - ${name} ${c.type} ${show(c.type, r)}${keeps}`);
      } else {
        const ttl = c.before.ttl !== c.after.ttl ? `ttl ${c.before.ttl} → ${c.after.ttl}` : '';
        const data = sameRdata(c.before, c.after) ? '' : `${showSet(c.before)} → ${showSet(c.after)}`;
        out.push(`  ~ ${name} ${c.type}: ${[data, ttl].filter(Boolean).join(', ')}${keeps}`);
      }
    }
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

const firstLine = (text: string, re: RegExp) => text.split('\n').find((l) => re.test(l))?.trim();

/** Why nsupdate failed, or null when the update went through (test/fixtures/dns/nsupdate-*.json). */
export function nsupdateFailure(r: ToolOutput): DnsFailure | null {
  const all = `${r.stdout}\n${r.stderr}`;
  if (r.exitCode === 127 || /command not found|ENOENT/.test(r.stderr)) return { kind: 'missing-tool', detail: firstLine(all, /not found|ENOENT/) ?? 'nsupdate not found' };
  // nsupdate goes on unsigned after a key it cannot read, so this comes before the REFUSED it then gets.
  const keyFile = firstLine(all, /could not (read|create) key/i);
  if (keyFile) return { kind: 'key-file', detail: keyFile };
  const noAddress = firstLine(all, /couldn't get address for/i);
  if (noAddress) return { kind: 'no-address', detail: noAddress };
  const failed = /update failed: ([A-Z]+)(?:\(([A-Z]+)\))?/.exec(all);
  const tsigLine = firstLine(all, /TSIG error|tsig verify failure/i);
  if (failed?.[2] || tsigLine) {
    const rcode = failed?.[2] ?? (tsigLine && /unsynchronized/.test(tsigLine) ? 'BADTIME' : undefined);
    return { kind: 'tsig', ...(rcode ? { rcode } : {}), detail: (tsigLine ?? failed![0]).replace(/^;+\s*/, '') };
  }
  if (failed) return rcodeFailure(failed[1]!, failed[0]);
  const comm = firstLine(all, /Communication with .* failed|timed out|connection refused|no servers could be reached/i);
  if (r.exitCode === null || (comm && /timed out/i.test(comm))) return { kind: 'timeout', detail: (comm ?? 'no answer in time').replace(/^;+\s*/, '') };
  if (comm) return { kind: 'unreachable', detail: comm.replace(/^;+\s*/, '') };
  if (r.exitCode !== 0) {
    const last = all.trim().split('\n').filter((l) => l.trim()).pop() ?? `exit ${r.exitCode}`;
    return { kind: 'failed', detail: last.replace(/^;+\s*/, '') };
  }
  return null;
}

/**
 * Record sets (name + type) in one canonical presentation form, so the rendered zone and what a server
 * returns compare equal when they mean the same thing. Pure.
 *
 * Canonical form: owner names absolute, lower-case, with the trailing dot; domain names inside rdata the
 * same (MX, SRV, CNAME, NS, PTR, SOA); AAAA in the RFC 5952 text form; TXT as quoted strings of at most
 * 255 bytes with one escaping (`\"`, `\\`, `\DDD` for bytes outside printable ASCII), compared by the
 * concatenation of its strings. rdata sorted by that comparison key and without duplicates.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { ZoneModel } from './records.js';

export interface RRset {
  /** Absolute, lower-case, with the trailing dot. */
  name: string;
  type: string;
  ttl: number;
  /** Canonical presentation form, sorted by rdataKey(). */
  rdata: string[];
}

/** Types whose rdata is a single domain name. */
const NAME_TYPES = new Set(['CNAME', 'NS', 'PTR', 'DNAME']);

/** Lower-case with the trailing dot; a name without it is taken relative to `origin` ('@' is the origin). */
export function canonicalName(name: string, origin?: string): string {
  const n = name.trim();
  if (n === '@' && origin !== undefined) return canonicalName(origin);
  if (n === '.' || n.endsWith('.')) return n.toLowerCase();
  return (origin === undefined ? `${n}.` : `${n}.${canonicalName(origin)}`).toLowerCase().replace(/\.\.$/, '.');
}

/** The RFC 5952 form of an IPv6 address (lower case, no leading zeros, the longest zero run as "::"). */
export function normalizeIPv6(address: string): string {
  const a = address.trim().toLowerCase();
  if (!isIPv6(a)) return a;
  let text = a;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4 && isIPv4(v4[1]!)) {
    const [p, q, r, s] = v4[1]!.split('.').map(Number) as [number, number, number, number];
    text = `${text.slice(0, -v4[1]!.length)}${((p << 8) | q).toString(16)}:${((r << 8) | s).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t].map((g) => parseInt(g, 16).toString(16));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j > i ? j : i + 1;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** The character-strings of TXT rdata in presentation form (quoted or bare, with \X and \DDD escapes). */
export function parseTxtStrings(text: string): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  const s = text;
  while (i < s.length) {
    while (i < s.length && /\s/.test(s[i]!)) i++;
    if (i >= s.length) break;
    const quoted = s[i] === '"';
    if (quoted) i++;
    const bytes: number[] = [];
    while (i < s.length && (quoted ? s[i] !== '"' : !/\s/.test(s[i]!))) {
      if (s[i] === '\\' && i + 1 < s.length) {
        const d = /^\d{3}/.exec(s.slice(i + 1, i + 4));
        if (d) {
          bytes.push(Number(d[0]) & 0xff);
          i += 4;
          continue;
        }
        i++;
      }
      const cp = s.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...Buffer.from(ch, 'utf8'));
      i += ch.length;
    }
    if (quoted) i++;
    out.push(Buffer.from(bytes));
  }
  return out;
}

/** Quoted character-strings with the canonical escaping. */
export function formatTxtStrings(strings: readonly Buffer[]): string {
  const one = (b: Buffer) => {
    let t = '';
    for (const c of b) {
      if (c === 0x22 || c === 0x5c) t += `\\${String.fromCharCode(c)}`;
      else if (c >= 0x20 && c < 0x7f) t += String.fromCharCode(c);
      else t += `\\${String(c).padStart(3, '0')}`;
    }
    return `"${t}"`;
  };
  return (strings.length ? strings : [Buffer.alloc(0)]).map(one).join(' ');
}

/** TXT rdata for a value: its UTF-8 bytes in strings of at most 255 bytes, not splitting a character. */
export function txtRdata(value: string): string {
  const bytes = Buffer.from(value, 'utf8');
  const parts: Buffer[] = [];
  let i = 0;
  while (i < bytes.length) {
    let end = Math.min(i + 255, bytes.length);
    while (end < bytes.length && end > i + 1 && (bytes[end]! & 0xc0) === 0x80) end--;
    parts.push(bytes.subarray(i, end));
    i = end;
  }
  return formatTxtStrings(parts);
}

/** The text a TXT rdata stands for: its strings concatenated (UTF-8, invalid bytes replaced). */
export function txtText(rdata: string): string {
  return Buffer.concat(parseTxtStrings(rdata)).toString('utf8');
}

/** Canonical presentation of one rdata of `type` (domain names without a dot are relative to `origin`). */
export function canonicalRdata(type: string, text: string, origin?: string): string {
  const t = type.toUpperCase();
  const words = text.trim().split(/\s+/);
  const name = (n: string | undefined) => canonicalName(n ?? '', origin);
  switch (t) {
    case 'A':
      return words[0] ?? '';
    case 'AAAA':
      return normalizeIPv6(words[0] ?? '');
    case 'MX':
      return `${Number(words[0])} ${name(words[1])}`;
    case 'SRV':
      return `${words.slice(0, 3).map(Number).join(' ')} ${name(words[3])}`;
    case 'SOA':
      return [name(words[0]), name(words[1]), ...words.slice(2).map(Number)].join(' ');
    case 'TXT':
    case 'SPF':
      return formatTxtStrings(parseTxtStrings(text));
    default:
      if (NAME_TYPES.has(t)) return name(words[0]);
      return text.includes('"') ? text.trim() : words.join(' ');
  }
}

/** What two rdata are compared by: TXT by the concatenation of its strings, the rest by the canonical text. */
export function rdataKey(type: string, rdata: string): string {
  const t = type.toUpperCase();
  return t === 'TXT' || t === 'SPF' ? `txt:${Buffer.concat(parseTxtStrings(rdata)).toString('hex')}` : rdata;
}

/** Sorted by key, one rdata per key. */
export function sortRdata(type: string, rdata: readonly string[]): string[] {
  const byKey = new Map<string, string>();
  for (const r of rdata) if (!byKey.has(rdataKey(type, r))) byKey.set(rdataKey(type, r), r);
  return [...byKey.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).map((k) => byKey.get(k)!);
}

/** Whether two record sets hold the same data (TTL aside). */
export function sameRdata(a: RRset, b: RRset): boolean {
  const ka = new Set(a.rdata.map((r) => rdataKey(a.type, r)));
  const kb = new Set(b.rdata.map((r) => rdataKey(b.type, r)));
  return ka.size === kb.size && [...ka].every((k) => kb.has(k));
}

/** Record sets of the zone mailops renders, in the order of the model, without the SOA. */
export function desiredRrsets(model: ZoneModel): RRset[] {
  const origin = canonicalName(model.domain);
  const sets = new Map<string, RRset>();
  for (const r of model.records) {
    const type = r.type.toUpperCase();
    if (type === 'SOA') continue;
    const name = canonicalName(r.name, origin);
    const ttl = (r as { ttl?: number }).ttl ?? model.ttl;
    const rdata =
      type === 'TXT' ? txtRdata(Array.isArray(r.data) ? r.data.join('') : r.data) : canonicalRdata(type, Array.isArray(r.data) ? r.data.join(' ') : r.data, origin);
    const key = `${name} ${type}`;
    const set = sets.get(key);
    if (set) set.rdata.push(rdata);
    else sets.set(key, { name, type, ttl, rdata: [rdata] });
  }
  const out = [...sets.values()].map((s) => ({ ...s, rdata: sortRdata(s.type, s.rdata) }));
  for (const s of out) {
    if (s.type === 'CNAME' && out.some((o) => o.name === s.name && o.type !== 'CNAME')) {
      throw new Error(`internal: zone ${model.domain} renders a CNAME at ${s.name} beside other data`);
    }
  }
  return out;
}

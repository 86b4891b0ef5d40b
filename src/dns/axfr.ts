/**
 * The output of dig (bind9-dnsutils): records of an AXFR or a query into record sets, and the ways dig
 * says it failed. Pure; test/fixtures/dns/dig-*.json hold what dig 9.18 prints in every case.
 *
 * client.ts runs `dig +tcp +noall +answer +comments +additional ...`: the comments carry the response
 * code (";; ->>HEADER<<- opcode: QUERY, status: REFUSED") and the TSIG pseudo-section carries the TSIG
 * error (BADKEY, BADSIG, BADTIME); plain `+noall +answer` output (records only) parses too.
 */
import { canonicalName, canonicalRdata, sortRdata } from './rrset.js';
import type { RRset } from './rrset.js';

export interface DigRecord {
  name: string;
  ttl: number;
  class: string;
  type: string;
  /** rdata as dig printed it. */
  rdata: string;
}

export interface SoaRecord {
  name: string;
  ttl: number;
  mname: string;
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  minimum: number;
}

export type DnsFailureKind =
  | 'missing-tool' // dig or nsupdate is not installed
  | 'no-address' // the server name does not resolve
  | 'unreachable' // connection refused, network unreachable
  | 'timeout' // no answer in time
  | 'key-file' // the tool could not read the key (and would go on unsigned)
  | 'tsig' // the server rejected the signature: rcode BADKEY, BADSIG, BADTIME...
  | 'refused' // REFUSED: no transfer/update rights
  | 'notauth' // NOTAUTH: the server does not serve the zone
  | 'notzone' // NOTZONE: a name outside the zone
  | 'prereq' // YXRRSET, NXRRSET, YXDOMAIN, NXDOMAIN of a prerequisite: the zone changed meanwhile
  | 'servfail'
  | 'incomplete' // a transfer without its closing SOA
  | 'failed'; // anything else

export interface DnsFailure {
  kind: DnsFailureKind;
  /** REFUSED, NOTAUTH, BADSIG, ... when the server said so. */
  rcode?: string;
  /** The tool's own line that says what went wrong (may hold paths; never a secret after redaction). */
  detail: string;
}

export interface ToolOutput {
  /** null when the process was killed (timeout). */
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

/** One record line: owner, TTL, class, type, rdata (tabs or spaces; rdata kept as printed). */
export function parseRecordLine(line: string): DigRecord | null {
  const m = /^(\S+)\s+(\d+)\s+(IN|CH|HS|ANY|NONE|CLASS\d+)\s+([A-Za-z0-9-]+)(?:\s+(.*))?$/.exec(line.trim());
  if (!m) return null;
  return { name: m[1]!, ttl: Number(m[2]), class: m[3]!.toUpperCase(), type: m[4]!.toUpperCase(), rdata: (m[5] ?? '').trim() };
}

export interface DigOutput {
  /** Response codes of the messages (";; ->>HEADER<<- ... status: X"), in order; empty without +comments. */
  statuses: string[];
  /** Records of the answer sections (every record line when the output has no section headers). */
  answer: DigRecord[];
  /** TSIG records of the TSIG pseudo-sections: key name and error field. */
  tsig: Array<{ name: string; error: string }>;
}

export function parseDigOutput(text: string): DigOutput {
  const out: DigOutput = { statuses: [], answer: [], tsig: [] };
  let section = 'ANSWER';
  for (const raw of text.split('\n')) {
    const line = raw.replace(/\r$/, '');
    const status = /->>HEADER<<-.*\bstatus:\s*([A-Z0-9]+)/.exec(line);
    if (status) {
      out.statuses.push(status[1]!);
      continue;
    }
    const header = /^;; ([A-Z]+) (?:PSEUDO)?SECTION:/.exec(line);
    if (header) {
      section = header[1]!;
      continue;
    }
    if (line.startsWith(';') || !line.trim()) continue;
    const r = parseRecordLine(line);
    if (!r) continue;
    if (r.type === 'TSIG') {
      // rdata: algorithm time fudge mac-size [mac] original-id error other-len [other]
      const w = r.rdata.split(/\s+/);
      const macSize = Number(w[3]);
      const error = w[macSize > 0 ? 6 : 5] ?? '';
      out.tsig.push({ name: r.name, error });
      continue;
    }
    if (section === 'ANSWER' && r.type !== 'OPT') out.answer.push(r);
  }
  return out;
}

/** Records grouped into record sets (first-seen order; SOA left out), names and rdata canonical. */
export function groupRrsets(records: readonly DigRecord[]): RRset[] {
  const sets = new Map<string, RRset>();
  for (const r of records) {
    if (r.type === 'SOA' || r.type === 'TSIG' || r.type === 'OPT') continue;
    const name = canonicalName(r.name);
    const key = `${name} ${r.type}`;
    const rdata = canonicalRdata(r.type, r.rdata);
    const set = sets.get(key);
    if (!set) sets.set(key, { name, type: r.type, ttl: r.ttl, rdata: [rdata] });
    else {
      set.rdata.push(rdata);
      set.ttl = Math.min(set.ttl, r.ttl);
    }
  }
  return [...sets.values()].map((s) => ({ ...s, rdata: sortRdata(s.type, s.rdata) }));
}

export function parseSoa(r: DigRecord): SoaRecord {
  const w = r.rdata.split(/\s+/);
  const n = (i: number) => Number(w[i]);
  return { name: canonicalName(r.name), ttl: r.ttl, mname: canonicalName(w[0] ?? '.'), rname: canonicalName(w[1] ?? '.'), serial: n(2), refresh: n(3), retry: n(4), expire: n(5), minimum: n(6) };
}

const line = (text: string, re: RegExp) => text.split('\n').find((l) => re.test(l))?.trim();

/**
 * Why dig failed, or null when it did not. `query` is 'AXFR' for a transfer (which must end with the
 * SOA it began with) or the type of a plain query.
 */
export function digFailure(r: ToolOutput, query: string): DnsFailure | null {
  const all = `${r.stdout}\n${r.stderr}`;
  if (r.exitCode === 127 || /command not found|ENOENT/.test(r.stderr)) return { kind: 'missing-tool', detail: line(all, /not found|ENOENT/) ?? 'dig not found' };
  const noAddress = line(all, /couldn't get address for/i);
  if (noAddress) return { kind: 'no-address', detail: noAddress.replace(/^dig:\s*/, '') };
  const keyFile = line(all, /(couldn't|could not) (read|create) key/i);
  if (keyFile) return { kind: 'key-file', detail: keyFile.replace(/^;+\s*/, '') };
  const parsed = parseDigOutput(r.stdout);
  const tsigError = parsed.tsig.map((t) => t.error).find((e) => e && e !== 'NOERROR');
  const verify = line(all, /Couldn't verify signature|tsig verify failure|TSIG error/i);
  if (tsigError || verify) {
    const rcode = tsigError ?? (verify && /unsynchronized/.test(verify) ? 'BADTIME' : undefined);
    return { kind: 'tsig', ...(rcode ? { rcode } : {}), detail: (verify ?? `TSIG error ${rcode}`).replace(/^;+\s*/, '') };
  }
  const bad = parsed.statuses.find((s) => s !== 'NOERROR');
  if (bad) {
    const ede = line(r.stdout, /^; EDE:/)?.replace(/^;\s*/, '');
    const f = rcodeFailure(bad, `the server answered ${bad}${ede ? ` (${ede})` : ''}`);
    // A query has no prerequisites: NXDOMAIN there means the server has no such zone.
    return f.kind === 'prereq' ? { ...f, kind: 'notauth' } : f;
  }
  if (r.exitCode === null || /timed out/i.test(all)) return { kind: 'timeout', detail: (line(all, /timed out/i) ?? 'no answer in time').replace(/^;+\s*/, '') };
  const unreachable = line(all, /connection refused|network unreachable|host unreachable|communications error|no servers could be reached|failed:/i);
  if (unreachable) return { kind: 'unreachable', detail: unreachable.replace(/^;+\s*/, '') };
  const failed = line(all, /Transfer failed|^dig: |^;; .*\b(failed|error)\b/i);
  if (failed || r.exitCode !== 0) return { kind: 'failed', detail: (failed ?? lastLine(all)).replace(/^;+\s*/, '') };
  if (query.toUpperCase() === 'AXFR' && parsed.answer.filter((a) => a.type === 'SOA').length < 2) {
    return { kind: 'incomplete', detail: 'the transfer did not end with the SOA record' };
  }
  return null;
}

/** The failure a DNS response code stands for. */
export function rcodeFailure(rcode: string, detail: string): DnsFailure {
  const kinds: Record<string, DnsFailureKind> = {
    REFUSED: 'refused',
    NOTAUTH: 'notauth',
    NOTZONE: 'notzone',
    YXRRSET: 'prereq',
    NXRRSET: 'prereq',
    YXDOMAIN: 'prereq',
    NXDOMAIN: 'prereq',
    SERVFAIL: 'servfail',
    BADKEY: 'tsig',
    BADSIG: 'tsig',
    BADTIME: 'tsig',
    BADTRUNC: 'tsig',
  };
  return { kind: kinds[rcode] ?? 'failed', rcode, detail: detail.replace(/^;+\s*/, '') };
}

function lastLine(text: string): string {
  return text.trim().split('\n').filter((l) => l.trim()).pop() ?? 'no output';
}

/** The record sets and SOA of a transfer, or the reason it failed. */
export function parseAxfr(r: ToolOutput): { soa: SoaRecord; rrsets: RRset[] } | { failure: DnsFailure } {
  const failure = digFailure(r, 'AXFR');
  if (failure) return { failure };
  const { answer } = parseDigOutput(r.stdout);
  const soa = answer.find((a) => a.type === 'SOA');
  if (!soa) return { failure: { kind: 'incomplete', detail: 'no SOA record in the transfer' } };
  return { soa: parseSoa(soa), rrsets: groupRrsets(answer) };
}

/** The SOA of a query's answer for `zone`, or the reason there is none. */
export function parseSoaQuery(r: ToolOutput, zone: string): { soa: SoaRecord } | { failure: DnsFailure } {
  const failure = digFailure(r, 'SOA');
  if (failure) return { failure };
  const name = canonicalName(zone);
  const soa = parseDigOutput(r.stdout).answer.find((a) => a.type === 'SOA' && canonicalName(a.name) === name);
  if (!soa) return { failure: { kind: 'notauth', detail: `no SOA record for ${name} in the answer` } };
  return { soa: parseSoa(soa) };
}

/** Parsers of the fact script's sections: text in, HostFacts out. Pure; tested on recorded outputs. */
import { X509Certificate, createHash, createPublicKey } from 'node:crypto';
import type { HostFacts } from '../model/facts.js';
import type { OsFamily } from '../model/site.js';
import { SECTION } from './script.js';
import { FAMILY_FACTS } from './host-facts.js';

export function splitSections(output: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let current: string[] | null = null;
  for (const line of output.split('\n')) {
    if (line.startsWith(`${SECTION} `)) {
      const name = line.slice(SECTION.length + 1).trim();
      current = out.get(name) ?? [];
      out.set(name, current);
    } else if (current) current.push(line);
  }
  for (const lines of out.values()) while (lines.length && lines[lines.length - 1] === '') lines.pop();
  return out;
}

const nonEmpty = (lines: string[] | undefined) => (lines ?? []).filter((l) => l.trim() !== '');

export function osField(osRelease: string[], key: string): string {
  for (const l of osRelease) {
    const m = new RegExp(`^${key}=(.*)$`).exec(l);
    if (m) return m[1]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');
  }
  return '';
}

/** dpkg-query `${Package}\t${Version}\t${db:Status-Abbrev}` or rpm `NAME\tVERSION-RELEASE\tii `: installed ones only. */
export function parsePackages(lines: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of nonEmpty(lines)) {
    const [name, version, status] = l.split('\t');
    if (name && version && status?.startsWith('ii')) out[name] = version;
  }
  return out;
}

export function parseSha256(lines: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const l of nonEmpty(lines)) {
    const m = /^([0-9a-f]{64}) [ *](.+)$/.exec(l);
    if (m) out[m[2]!] = m[1]!;
  }
  return out;
}

/** stat -c '%n\t%a\t%U\t%G' */
export function parseStat(lines: string[]): Record<string, { mode: string; owner: string; group: string }> {
  const out: Record<string, { mode: string; owner: string; group: string }> = {};
  for (const l of nonEmpty(lines)) {
    const [path, mode, owner, group] = l.split('\t');
    if (path && mode && owner && group) out[path] = { mode: mode.padStart(4, '0'), owner, group };
  }
  return out;
}

/**
 * The services section: `systemctl list-units --all --plain` lines (UNIT LOAD ACTIVE SUB DESCRIPTION) and
 * `systemctl show -p Id -p UnitFileState -p ActiveState` blocks (template instances), then `unitFiles`, the
 * unitfiles section: `systemctl list-unit-files --plain` lines (UNIT STATE [PRESET]). A unit in neither is
 * not loaded and has no unit file: absent, which plan takes as inactive and not-found.
 */
export function parseServices(lines: string[], unitFiles: string[] = []): Record<string, { enabled: string; active: string }> {
  const out: Record<string, { enabled: string; active: string }> = {};
  const name = (unit: string) => unit.replace(/\.service$/, '');
  const entry = (unit: string) => (out[name(unit)] ??= { enabled: 'not-found', active: 'inactive' });
  let cur: Record<string, string> = {};
  const flush = () => {
    if (cur['Id']) out[name(cur['Id'])] = { enabled: cur['UnitFileState'] || 'not-found', active: cur['ActiveState'] || 'inactive' };
    cur = {};
  };
  for (const l of lines) {
    const kv = /^([A-Za-z]+)=(.*)$/.exec(l);
    if (kv) cur[kv[1]!] = kv[2]!;
    else {
      flush();
      const [unit, , active] = l.trim().split(/\s+/);
      if (unit && active) entry(unit).active = active;
    }
  }
  flush();
  for (const l of unitFiles) {
    const [unit, state] = l.trim().split(/\s+/);
    if (unit && state) entry(unit).enabled = state;
  }
  return out;
}

export function parsePasswd(lines: string[]): Record<string, { uid: number; gid: number; home: string }> {
  const out: Record<string, { uid: number; gid: number; home: string }> = {};
  for (const l of nonEmpty(lines)) {
    const f = l.split(':');
    if (f.length >= 7) out[f[0]!] = { uid: Number(f[2]), gid: Number(f[3]), home: f[5]! };
  }
  return out;
}

export function parseGroups(lines: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of nonEmpty(lines)) {
    const f = l.split(':');
    if (f.length >= 3) out[f[0]!] = Number(f[2]);
  }
  return out;
}

/**
 * What DNS publishes for a DKIM public key, from its DER SubjectPublicKeyInfo (base64): the algorithm, its
 * size and the p= value (RSA: the SPKI itself; Ed25519, RFC 8463: the raw 32-byte key). Null when the
 * bytes are no RSA or Ed25519 public key.
 */
export function dkimFromSpki(spki: string): { algorithm: 'rsa' | 'ed25519'; bits: number; publicKey: string } | null {
  if (!/^[A-Za-z0-9+/]+=*$/.test(spki)) return null;
  try {
    const der = Buffer.from(spki, 'base64');
    const key = createPublicKey({ key: der, format: 'der', type: 'spki' });
    if (key.asymmetricKeyType === 'ed25519') return { algorithm: 'ed25519', bits: 256, publicKey: der.subarray(-32).toString('base64') };
    if (key.asymmetricKeyType === 'rsa' && key.asymmetricKeyDetails?.modulusLength) return { algorithm: 'rsa', bits: key.asymmetricKeyDetails.modulusLength, publicKey: spki };
  } catch {
    // not a public key
  }
  return null;
}

/** The base64 bodies of the PEM blocks in these lines, each after the lines before it. */
function pemBlocks(lines: string[]): Array<{ before: string[]; der: Buffer }> {
  const out: Array<{ before: string[]; der: Buffer }> = [];
  let before: string[] = [];
  let body: string[] | null = null;
  for (const l of lines) {
    const t = l.trim();
    if (/^-----BEGIN [A-Z ]+-----$/.test(t)) body = [];
    else if (/^-----END [A-Z ]+-----$/.test(t) && body) {
      out.push({ before, der: Buffer.from(body.join(''), 'base64') });
      before = [];
      body = null;
    } else if (body) body.push(t);
    else before.push(l);
  }
  return out;
}

/**
 * `key<TAB>domain<TAB>selector` lines, each followed by that key's public half: in PEM (from openssl), or
 * as `spki<TAB>base64 DER` (from the activation's cache). A key without either is not reported.
 */
export function parseDkim(lines: string[]): HostFacts['dkim'] {
  const out: HostFacts['dkim'] = {};
  let current: { domain: string; selector: string } | null = null;
  let pem: string[] | null = null;
  const take = (spki: string) => {
    const key = current ? dkimFromSpki(spki) : null;
    if (current && key) out[`${current.selector}._domainkey.${current.domain}`] = { selector: current.selector, ...key };
    current = null;
  };
  for (const l of lines) {
    const t = l.trim();
    if (pem) {
      if (/^-----END [A-Z ]+-----$/.test(t)) {
        take(pem.join(''));
        pem = null;
      } else pem.push(t);
      continue;
    }
    const [tag, a, b] = l.split('\t');
    if (tag === 'key' && a && b) current = { domain: a, selector: b };
    else if (tag === 'spki' && a) take(a.trim());
    else if (/^-----BEGIN [A-Z ]+-----$/.test(t)) pem = [];
  }
  return out;
}

/**
 * The first certificate in PEM lines: its SHA-256 fingerprint (lower-case hex, of the DER), and what it
 * names and how long it is valid (when it parses as X.509).
 */
export function tlsFact(lines: string[]): Pick<HostFacts, 'tlsFingerprint' | 'tlsCert'> {
  const cert = pemBlocks(lines)[0];
  if (!cert?.der.length) return {};
  const out: Pick<HostFacts, 'tlsFingerprint' | 'tlsCert'> = { tlsFingerprint: createHash('sha256').update(cert.der).digest('hex') };
  try {
    const x = new X509Certificate(cert.der);
    const names = (x.subjectAltName ?? '').split(', ').filter(Boolean);
    const notAfter = Date.parse(x.validTo) / 1000;
    const notBefore = Date.parse(x.validFrom) / 1000;
    if (Number.isFinite(notAfter) && Number.isFinite(notBefore)) out.tlsCert = { names, notAfter, notBefore };
  } catch {
    // not a certificate: no guard holds on it
  }
  return out;
}

export function parseFacts(output: string): HostFacts {
  const s = splitSections(output);
  if (!s.has('end')) throw new Error('the fact script did not finish (no end marker)');
  const fam = nonEmpty(s.get('family'))[0]?.trim();
  const family: OsFamily | null = fam === 'debian' || fam === 'rhel' ? fam : null;
  const os = s.get('os') ?? [];
  const queues: Record<string, number> = {};
  for (const l of nonEmpty(s.get('queues'))) {
    const [mta, n] = l.split('\t');
    if (mta && n !== undefined && /^\s*[0-9]+\s*$/.test(n)) queues[mta] = Number(n);
  }
  return {
    family,
    osName: osField(os, 'PRETTY_NAME') || osField(os, 'NAME') || 'unknown OS',
    osVersion: osField(os, 'VERSION_ID'),
    ...(osField(os, 'ID') ? { osId: osField(os, 'ID') } : {}),
    packages: {},
    files: {},
    directories: {},
    services: {},
    users: {},
    groups: {},
    dkim: {},
    commandsDone: [],
    // Each fact of the host's family, parsed by the fact that printed it (host-facts.ts).
    ...Object.assign({}, ...FAMILY_FACTS.map((f) => f.parse(s.get(f.section) ?? [], s))),
    locked: nonEmpty(s.get('lock'))[0]?.trim() === 'held',
    interrupted: nonEmpty(s.get('interrupted')).flatMap((l) => {
      const [run, phase] = l.split('\t');
      return run && phase ? [{ run: run.trim(), phase: phase.trim() }] : [];
    }),
    queues,
  };
}

/**
 * OpenSSH known_hosts, read the way `ssh` reads it: host patterns (comma lists, `[host]:port`,
 * `*`/`?` wildcards, `!` negation), hashed names (`|1|salt|hmac`), `@revoked` and `@cert-authority`
 * markers. Also fingerprints, pinned `host_key` lines and the line `--accept-new` records. Pure.
 */
import { createHash, createHmac } from 'node:crypto';

export type HostKeyStatus = 'match' | 'unknown' | 'changed' | 'revoked';

export type HostKeyVerdict =
  | { status: 'match'; line: number }
  /** The file holds no (unrevoked) plain key for this host. */
  | { status: 'unknown' }
  /**
   * The host is known by another key: `line` (1-based) holds another key of the offered type, or, when the
   * file knows the host only by keys of other types, the first of those; `keyType` is the type of that key.
   */
  | { status: 'changed'; line: number; keyType: string }
  | { status: 'revoked'; line: number };

export interface KnownHostEntry {
  /** 1-based line number in the file. */
  line: number;
  marker: '' | '@revoked' | '@cert-authority';
  hosts: string;
  keyType: string;
  key: Buffer;
}

/** The key type inside an SSH public key blob (its first string), or '' when the blob is malformed. */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return '';
  const n = blob.readUInt32BE(0);
  if (n === 0 || 4 + n > blob.length) return '';
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** `SHA256:<base64, no padding>`, exactly as `ssh-keygen -lf` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The name a host has in known_hosts: `host`, or `[host]:port` when the port is not 22 (lower case, as ssh writes it). */
export function hostPattern(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

/** The plain (unhashed) line `--accept-new` appends, without the newline. */
export function knownHostsLine(host: string, port: number, keyType: string, blob: Buffer): string {
  return `${hostPattern(host, port)} ${keyType} ${blob.toString('base64')}`;
}

/** Decode a base64 key blob whose inner type must equal `type`; null when it is not one. */
function decodeKey(type: string, b64: string): Buffer | null {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return null;
  const blob = Buffer.from(b64, 'base64');
  return keyTypeOf(blob) === type ? blob : null;
}

/** Every well-formed entry of a known_hosts file; comments, blank and malformed lines are skipped (as ssh does). */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (!raw || raw.startsWith('#')) continue;
    let fields = raw.split(/\s+/);
    let marker: KnownHostEntry['marker'] = '';
    if (fields[0]!.startsWith('@')) {
      if (fields[0] !== '@revoked' && fields[0] !== '@cert-authority') continue;
      marker = fields[0];
      fields = fields.slice(1);
    }
    const [hosts, keyType, b64] = fields;
    if (!hosts || !keyType || !b64) continue;
    const key = decodeKey(keyType, b64);
    if (!key) continue;
    entries.push({ line: i + 1, marker, hosts, keyType, key });
  }
  return entries;
}

/** OpenSSH's glob: `*` any run of characters, `?` one character, everything else literal (the name is lower case). */
function globMatch(pattern: string, name: string): boolean {
  const re = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's').test(name);
}

/**
 * Does a host field name this host? `name` is what {@link hostPattern} returns. A hashed field is one
 * HMAC-SHA1 of the name; a plain field is a comma list where a matching `!pattern` vetoes the line.
 */
export function hostFieldMatches(field: string, name: string): boolean {
  const lname = name.toLowerCase();
  if (field.startsWith('|1|')) {
    const [, , salt, hash, extra] = field.split('|');
    if (!salt || !hash || extra !== undefined) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(lname).digest('base64') === hash;
  }
  let matched = false;
  for (const p of field.toLowerCase().split(',')) {
    if (!p) continue;
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), lname)) return false;
    } else if (globMatch(p, lname)) matched = true;
  }
  return matched;
}

/** The entries whose host field names host:port, in file order. */
export function entriesFor(text: string, host: string, port: number): KnownHostEntry[] {
  const name = hostPattern(host, port);
  return parseKnownHosts(text).filter((e) => hostFieldMatches(e.hosts, name));
}

/**
 * Look the offered key up. Among the lines naming this host: `@revoked` with this key → revoked (wins over
 * everything); a plain line with this key → match; a plain line with another key of the same type →
 * changed; a host known only by keys of other types → changed too. OpenSSH calls that last case a new
 * host ("keys of different type are already known for this host") and would record the key on
 * accept-new; but the client asks for the recorded types first (see `hostKeyAlgorithms`), and in SSH the
 * server must use the first host key algorithm of the client's list that it supports (RFC 4253, 7.1), so a
 * server offering another type no longer holds (or offers) any key on record: a man in the middle looks
 * exactly like that. Keys that are `@revoked` for the host do not make it known.
 * `@cert-authority` lines only vouch for host certificates, never for a plain key: they are ignored.
 */
export function lookup(text: string, host: string, port: number, keyType: string, blob: Buffer): HostKeyVerdict {
  const entries = entriesFor(text, host, port);
  const revoked = entries.filter((e) => e.marker === '@revoked');
  let match: number | null = null;
  let sameType: number | null = null;
  let otherType: KnownHostEntry | null = null;
  for (const e of entries) {
    if (e.marker === '@revoked') {
      if (e.key.equals(blob)) return { status: 'revoked', line: e.line };
      continue;
    }
    if (e.marker === '@cert-authority') continue;
    if (e.key.equals(blob)) match ??= e.line;
    else if (e.keyType === keyType) sameType ??= e.line;
    else if (!revoked.some((r) => r.key.equals(e.key))) otherType ??= e;
  }
  if (match !== null) return { status: 'match', line: match };
  if (sameType !== null) return { status: 'changed', line: sameType, keyType };
  if (otherType !== null) return { status: 'changed', line: otherType.line, keyType: otherType.keyType };
  return { status: 'unknown' };
}

/** Key types known_hosts holds plain keys of for host:port (not revoked ones), in file order. */
export function knownKeyTypes(text: string, host: string, port: number): string[] {
  const entries = entriesFor(text, host, port);
  const revoked = entries.filter((e) => e.marker === '@revoked');
  const types = entries.filter((e) => e.marker === '' && !revoked.some((r) => r.key.equals(e.key))).map((e) => e.keyType);
  return [...new Set(types)];
}

export interface PinnedKey {
  keyType: string;
  key: Buffer;
}

/**
 * A pinned `host_key`: "ssh-ed25519 AAAA... [comment]" (a whole known_hosts line is accepted too: the
 * first "type base64" pair whose blob carries that type). Null when there is no such pair.
 */
export function parsePinned(pinned: string): PinnedKey | null {
  const t = pinned.trim().split(/\s+/);
  for (let i = 0; i + 1 < t.length; i++) {
    const key = decodeKey(t[i]!, t[i + 1]!);
    if (key) return { keyType: t[i]!, key };
  }
  return null;
}

/** Does the offered key equal the pinned one (type and blob)? */
export function pinnedMatches(pinned: string, keyType: string, blob: Buffer): boolean {
  const p = parsePinned(pinned);
  return p !== null && p.keyType === keyType && p.key.equals(blob);
}

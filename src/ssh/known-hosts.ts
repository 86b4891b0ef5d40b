/** OpenSSH known_hosts: lookup of a host's key, fingerprints, and the line `--accept-new` records. Pure. */
import { createHash, createHmac } from 'node:crypto';

export type HostKeyVerdict = { status: 'match' } | { status: 'unknown' } | { status: 'changed'; line: number } | { status: 'revoked'; line: number };

/** The key type inside an SSH public key blob (its first string). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const n = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + n).toString('latin1');
}

/** SHA256:... as `ssh-keygen -l` prints it. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The name a host has in known_hosts: `host`, or `[host]:port` when the port is not 22. */
export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

export function knownHostsLine(host: string, port: number, blob: Buffer): string {
  return `${hostPattern(host, port)} ${keyTypeOf(blob)} ${blob.toString('base64')}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

/** Does a known_hosts host field (comma list, wildcards, negation, or |1|salt|hash) name this host? */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const p of field.split(',')) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), name)) return false;
    } else if (globMatch(p, name)) matched = true;
  }
  return matched;
}

/** A pinned "type base64 [comment]" line against the offered key. */
export function pinnedMatches(pinned: string, blob: Buffer): boolean {
  const [type, b64] = pinned.trim().split(/\s+/);
  return type === keyTypeOf(blob) && b64 === blob.toString('base64');
}

/** Look the offered key up, as OpenSSH does: a revoked key is refused; a known key of the same type that differs is "changed". */
export function lookup(text: string, host: string, port: number, blob: Buffer): HostKeyVerdict {
  const name = hostPattern(host, port);
  const type = keyTypeOf(blob);
  const b64 = blob.toString('base64');
  let changed: number | null = null;
  let match = false;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i]!.trim();
    if (!raw || raw.startsWith('#')) continue;
    let fields = raw.split(/\s+/);
    let marker = '';
    if (fields[0]!.startsWith('@')) {
      marker = fields[0]!;
      fields = fields.slice(1);
    }
    const [hosts, ktype, key] = fields;
    if (!hosts || !ktype || !key) continue;
    if (marker === '@cert-authority') continue;
    if (marker === '@revoked') {
      if (key === b64) return { status: 'revoked', line: i + 1 };
      continue;
    }
    if (!hostFieldMatches(hosts, name)) continue;
    if (ktype === type && key === b64) match = true;
    else if (ktype === type && changed === null) changed = i + 1;
  }
  if (match) return { status: 'match' };
  if (changed !== null) return { status: 'changed', line: changed };
  return { status: 'unknown' };
}

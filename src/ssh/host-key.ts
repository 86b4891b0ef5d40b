/**
 * Host key policy: the pinned `host_key`, else known_hosts; trust on first use only with --accept-new, and
 * only for a host known_hosts holds no key for. A host known by another key, of its type or of another
 * type, is refused as changed, with or without --accept-new.
 */
import { appendFileSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { UserError } from '../errors.js';
import type { ConnectOptions } from './connection.js';
import { fingerprint, knownHostsLine, knownKeyTypes, lookup, parseKnownHosts, parsePinned } from './known-hosts.js';

/** `host mx1 (203.0.113.10:22)`: how every message names the far end. */
export function where(opts: Pick<ConnectOptions, 'name' | 'address' | 'port'>): string {
  const addr = opts.address.includes(':') ? `[${opts.address}]` : opts.address;
  return `host ${opts.name} (${addr}:${opts.port})`;
}

/** The host key algorithms ssh2 negotiates by default, in its order. */
const DEFAULT_ALGORITHMS = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];

/** The negotiation names of a key type ssh2 can verify ([] when it cannot). */
function algorithmsFor(keyType: string): string[] {
  if (keyType === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  if (keyType === 'ssh-dss') return ['ssh-dss'];
  return DEFAULT_ALGORITHMS.includes(keyType) ? [keyType] : [];
}

export interface HostKeyCheck {
  /** Null when the key is accepted; otherwise the one-line refusal. */
  refusal: string | null;
  /** With --accept-new: the line to append to knownHostsFile once the server has proved it holds the key. */
  record?: string;
}

/** The known_hosts text ('' when the file does not exist). */
export function readKnownHosts(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return '';
    throw new UserError(`cannot read the known_hosts file ${file}: ${code ?? (e as Error).message}`);
  }
}

/**
 * Like OpenSSH, offer first the algorithms of the key types we already know for the host (pinned, or in
 * known_hosts), so a host with several keys is checked against the one on record. The server must pick
 * the first algorithm of this list that it supports (RFC 4253, 7.1): a host that offers another type does
 * not hold any key on record, and `checkHostKey` refuses it as changed. The other algorithms stay in the
 * list (rather than failing the handshake with "no matching host key format") so that the refusal can
 * name the key the host offered, with its fingerprint.
 */
export function hostKeyAlgorithms(opts: ConnectOptions): string[] {
  let known: string[];
  if (opts.hostKey) known = [parsePinned(opts.hostKey)?.keyType ?? ''];
  else {
    try {
      known = knownKeyTypes(readKnownHosts(opts.knownHostsFile), opts.address, opts.port);
    } catch {
      known = []; // unreadable: checkHostKey says so once the host offers its key
    }
  }
  const first = known.flatMap(algorithmsFor);
  return [...new Set([...first, ...DEFAULT_ALGORITHMS])];
}

/** Fail early on a pinned host_key that is not a public key line. */
export function checkPinnedSyntax(opts: ConnectOptions): void {
  if (opts.hostKey !== undefined && parsePinned(opts.hostKey) === null) {
    throw new UserError(`host ${opts.name}: ssh.host_key is not a public key line like "ssh-ed25519 AAAA..." (copy it from /etc/ssh/ssh_host_ed25519_key.pub on the host)`);
  }
}

/** Decide on the key the server offered (its raw blob, as ssh2 hands it to the host verifier). */
export function checkHostKey(opts: ConnectOptions, keyType: string, blob: Buffer): HostKeyCheck {
  const at = where(opts);
  const offered = `${fingerprint(blob)} (${keyType})`;
  if (opts.hostKey) {
    const pinned = parsePinned(opts.hostKey);
    if (pinned && pinned.keyType === keyType && pinned.key.equals(blob)) return { refusal: null };
    const want = pinned ? `${fingerprint(pinned.key)} (${pinned.keyType})` : 'an unreadable key';
    return { refusal: `${at}: host key ${offered} does not match the host_key pinned in the playbook, ${want}: refusing to connect (possible man-in-the-middle)` };
  }
  const file = opts.knownHostsFile;
  let text: string;
  try {
    text = readKnownHosts(file);
  } catch (e) {
    return { refusal: `${at}: ${(e as Error).message}` };
  }
  const v = lookup(text, opts.address, opts.port, keyType, blob);
  switch (v.status) {
    case 'match':
      return { refusal: null };
    case 'revoked':
      return { refusal: `${at}: host key ${offered} is marked @revoked in ${file}:${v.line}: refusing to connect` };
    case 'changed': {
      const old = parseKnownHosts(text).find((e) => e.line === v.line);
      const was = old ? ` (${fingerprint(old.key)})` : '';
      const never = `Refusing to connect, with or without --accept-new (possible man-in-the-middle)`;
      if (v.keyType === keyType) {
        return {
          refusal:
            `${at}: WARNING: HOST KEY CHANGED: the host now offers ${offered}, but ${file}:${v.line} holds another ${keyType} key for it${was}. ` +
            `${never}; if the host was really reinstalled, check the new key on it and remove line ${v.line} of ${file}.`,
        };
      }
      if (algorithmsFor(v.keyType).length === 0) {
        // We could not ask for the recorded type: the host may still hold that key, but nothing can check it.
        return {
          refusal:
            `${at}: the host offers ${offered}, but ${file}:${v.line} knows it by its ${v.keyType} key${was}, a type mailops cannot ask for or check. ` +
            `${never}; check the ${keyType} key on the host, then add it to ${file} yourself or pin it with ssh.host_key.`,
        };
      }
      // We asked for the recorded type first: a server that still held that key would have offered it.
      return {
        refusal:
          `${at}: WARNING: HOST KEY CHANGED: the host now offers ${offered}, but ${file}:${v.line} holds its ${v.keyType} key${was}, which it no longer offers. ` +
          `${never}; if the host's keys were really replaced, check the new key on it and remove line ${v.line} of ${file}.`,
      };
    }
    case 'unknown':
      break;
  }
  if (!opts.acceptNew) {
    return { refusal: `${at}: unknown host key ${offered}; check it, then re-run with --accept-new to record it in ${file}` };
  }
  return { refusal: null, record: knownHostsLine(opts.address, opts.port, keyType, blob) };
}

/** Append a line --accept-new decided to record (the file and its directory are created, 0600/0700). */
export function recordHostKey(opts: ConnectOptions, line: string): void {
  const file = opts.knownHostsFile;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
    const text = readKnownHosts(file);
    if (text.split('\n').some((l) => l.trim() === line)) return; // another connection recorded it meanwhile
    appendFileSync(file, `${text && !text.endsWith('\n') ? '\n' : ''}${line}\n`, { mode: 0o600 });
  } catch (e) {
    const why = e instanceof UserError ? e.message : `cannot record the host key in ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
    throw new UserError(`${where(opts)}: ${why}`);
  }
}

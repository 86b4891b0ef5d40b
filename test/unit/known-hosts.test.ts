/** known_hosts parsing and lookup, checked against OpenSSH's own tools (ssh-keygen -l, -H, -F); the host key policy. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  entriesFor,
  fingerprint,
  hostFieldMatches,
  hostPattern,
  keyTypeOf,
  knownHostsLine,
  knownKeyTypes,
  lookup,
  parseKnownHosts,
  parsePinned,
  pinnedMatches,
} from '../../src/ssh/known-hosts.js';
import { checkHostKey, hostKeyAlgorithms } from '../../src/ssh/host-key.js';
import type { ConnectOptions } from '../../src/ssh/connection.js';

const dir = mkdtempSync(join(tmpdir(), 'mailops-kh-'));
let n = 0;

interface Key {
  type: string;
  blob: Buffer;
  /** "type base64 comment", as in the .pub file. */
  line: string;
  pub: string;
}

function newKey(type = 'ed25519', bits?: number): Key {
  const file = join(dir, `key${n++}`);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', 'test@example', '-f', file]);
  const line = readFileSync(`${file}.pub`, 'utf8').trim();
  const [t, b64] = line.split(' ');
  return { type: t!, blob: Buffer.from(b64!, 'base64'), line, pub: `${file}.pub` };
}

/** What `ssh-keygen -F name -f file` finds: the line numbers it reports. */
function opensshFinds(text: string, name: string): number[] {
  const f = join(dir, `kh${n++}`);
  writeFileSync(f, text);
  const r = spawnSync('ssh-keygen', ['-F', name, '-f', f], { encoding: 'utf8' });
  return [...r.stdout.matchAll(/found: line (\d+)/g)].map((m) => Number(m[1]));
}

const ed = newKey('ed25519');
const ed2 = newKey('ed25519');
const rsa = newKey('rsa', 2048);
const ecdsa = newKey('ecdsa', 256);
const ecdsa384 = newKey('ecdsa', 384);
const plain = (k: Key) => k.line.split(' ').slice(0, 2).join(' ');

describe('fingerprints and key types', () => {
  it.each([ed, rsa, ecdsa, ecdsa384])('equals ssh-keygen -lf for $type', (k) => {
    const out = execFileSync('ssh-keygen', ['-lf', k.pub], { encoding: 'utf8' });
    expect(out.split(' ')[1]).toBe(fingerprint(k.blob));
    expect(fingerprint(k.blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    expect(keyTypeOf(k.blob)).toBe(k.type);
  });

  it('a malformed blob has no type', () => {
    expect(keyTypeOf(Buffer.from([0, 0]))).toBe('');
    expect(keyTypeOf(Buffer.from([0, 0, 0, 200, 1, 2]))).toBe('');
  });
});

describe('parsing', () => {
  it('skips comments, blank and malformed lines, keeps markers and 1-based line numbers (CRLF too)', () => {
    const text = [
      '# a comment',
      '',
      `  mx.example.com,192.0.2.1 ${ed.line}`,
      `@revoked * ${plain(rsa)}`,
      `@cert-authority *.example.com ${plain(ecdsa)}`,
      '@bogus host ssh-ed25519 AAAA',
      'onlyahost',
      `badtype ssh-rsa ${ed.line.split(' ')[1]}`,
      `crlf.example.com ${plain(ed2)}\r`,
    ].join('\n');
    const e = parseKnownHosts(text);
    expect(e.map((x) => [x.line, x.marker, x.hosts, x.keyType])).toEqual([
      [3, '', 'mx.example.com,192.0.2.1', 'ssh-ed25519'],
      [4, '@revoked', '*', 'ssh-rsa'],
      [5, '@cert-authority', '*.example.com', 'ecdsa-sha2-nistp256'],
      [9, '', 'crlf.example.com', 'ssh-ed25519'],
    ]);
    expect(e[0]!.key.equals(ed.blob)).toBe(true);
  });
});

describe('host patterns, as ssh-keygen -F sees them', () => {
  const cases: Array<[string, string, boolean]> = [
    ['mx.example.com,192.0.2.1', '192.0.2.1', true],
    ['mx.example.com,192.0.2.1', 'MX.Example.COM', true],
    ['mx.example.com', 'mx.example.co', false],
    ['[127.0.0.1]:2222', '[127.0.0.1]:2222', true],
    ['[127.0.0.1]:2222', '127.0.0.1', false],
    ['127.0.0.1', '[127.0.0.1]:2222', false],
    ['*.example.com,!bad.example.com', 'mx.example.com', true],
    ['*.example.com,!bad.example.com', 'bad.example.com', false],
    ['!bad.example.com,*.example.com', 'bad.example.com', false],
    ['mx?.example.com', 'mx1.example.com', true],
    ['mx?.example.com', 'mx12.example.com', false],
    ['[*.example.com]:*', '[mx.example.com]:2222', true],
    ['192.0.2.*', '192.0.2.77', true],
    ['!192.0.2.1', '192.0.2.1', false],
    ['!192.0.2.1', '192.0.2.2', false],
    ['2001:db8::10', '2001:db8::10', true],
    ['[2001:db8::10]:2222', '[2001:db8::10]:2222', true],
  ];
  it.each(cases)('%s names %s: %s', (field, name, want) => {
    expect(hostFieldMatches(field, name)).toBe(want);
    expect(opensshFinds(`${field} ${ed.line}\n`, name).length > 0).toBe(want);
  });

  it('names a host by [host]:port off port 22, lower case', () => {
    expect(hostPattern('MX.example.com', 22)).toBe('mx.example.com');
    expect(hostPattern('10.0.0.1', 2222)).toBe('[10.0.0.1]:2222');
  });
});

describe('hashed entries', () => {
  function hashed(lines: string): string {
    const f = join(dir, `hashed${n++}`);
    writeFileSync(f, lines);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', f], { stdio: 'ignore' });
    return readFileSync(f, 'utf8');
  }

  it('matches lines hashed by ssh-keygen -H, for port 22 and [host]:port', () => {
    const text = hashed(`${knownHostsLine('10.1.2.3', 2222, ed.type, ed.blob)}\n${knownHostsLine('mx.example.com', 22, rsa.type, rsa.blob)}\n`);
    expect(text.split('\n').filter(Boolean).every((l) => l.startsWith('|1|'))).toBe(true);
    expect(lookup(text, '10.1.2.3', 2222, ed.type, ed.blob)).toEqual({ status: 'match', line: 1 });
    expect(lookup(text, '10.1.2.3', 22, ed.type, ed.blob)).toEqual({ status: 'unknown' });
    expect(lookup(text, 'MX.example.com', 22, rsa.type, rsa.blob)).toEqual({ status: 'match', line: 2 });
    expect(lookup(text, 'mx.example.com', 22, ed.type, ed.blob)).toEqual({ status: 'changed', line: 2, keyType: 'ssh-rsa' });
  });

  it('precomputed entries (HMAC-SHA1 of the name, keyed with the salt)', () => {
    const salt = 'BwcHBwcHBwcHBwcHBwcHBwcHBwc=';
    expect(hostFieldMatches(`|1|${salt}|qEBKDABkpn1niCd8k+BuWleaME4=`, 'example.net')).toBe(true);
    expect(hostFieldMatches(`|1|${salt}|qEBKDABkpn1niCd8k+BuWleaME4=`, 'example.org')).toBe(false);
    expect(hostFieldMatches(`|1|${salt}|vFfFFhdKmDzcz5uuU2NwzPkVCiI=`, '[example.net]:2222')).toBe(true);
    expect(hostFieldMatches('|1|broken', 'example.net')).toBe(false);
    const text = `|1|${salt}|vFfFFhdKmDzcz5uuU2NwzPkVCiI= ${plain(ed)}\n`;
    expect(lookup(text, 'example.net', 2222, ed.type, ed.blob)).toEqual({ status: 'match', line: 1 });
    expect(opensshFinds(text, '[example.net]:2222')).toEqual([1]);
  });
});

describe('lookup', () => {
  const text = [
    '# known hosts',
    knownHostsLine('192.0.2.1', 22, ed.type, ed.blob),
    `[192.0.2.2]:2222 ${plain(ed2)}`,
    `192.0.2.3 ${plain(rsa)}`,
    `192.0.2.3 ${plain(ecdsa)}`,
    `@cert-authority 192.0.2.4 ${plain(ed)}`,
    `@revoked 192.0.2.5 ${plain(ed)}`,
    `192.0.2.5 ${plain(ed)}`,
    `192.0.2.6 ${plain(ecdsa)}`,
  ].join('\n');

  it('match, with the line', () => {
    expect(lookup(text, '192.0.2.1', 22, ed.type, ed.blob)).toEqual({ status: 'match', line: 2 });
    expect(lookup(text, '192.0.2.3', 22, ecdsa.type, ecdsa.blob)).toEqual({ status: 'match', line: 5 });
  });

  it('unknown host', () => {
    expect(lookup(text, '192.0.2.9', 22, ed.type, ed.blob)).toEqual({ status: 'unknown' });
    expect(lookup(text, '192.0.2.1', 2222, ed.type, ed.blob)).toEqual({ status: 'unknown' });
  });

  it('changed: another key of the same type for the host', () => {
    expect(lookup(text, '192.0.2.2', 2222, ed.type, ed.blob)).toEqual({ status: 'changed', line: 3, keyType: 'ssh-ed25519' });
    expect(lookup(text, '192.0.2.1', 22, ed2.type, ed2.blob)).toEqual({ status: 'changed', line: 2, keyType: 'ssh-ed25519' });
  });

  it('a host known only by keys of other types is changed, naming the line and type on record (not unknown, as OpenSSH has it)', () => {
    expect(lookup(text, '192.0.2.1', 22, rsa.type, rsa.blob)).toEqual({ status: 'changed', line: 2, keyType: 'ssh-ed25519' });
    expect(lookup(text, '192.0.2.6', 22, ecdsa384.type, ecdsa384.blob)).toEqual({ status: 'changed', line: 9, keyType: 'ecdsa-sha2-nistp256' });
    // Another key of the offered type wins over keys of other types: the line to look at is that one.
    expect(lookup(`192.0.2.3 ${plain(ed2)}\n${text}`, '192.0.2.3', 22, ed.type, ed.blob)).toEqual({ status: 'changed', line: 1, keyType: 'ssh-ed25519' });
  });

  it('keys revoked for the host do not make it known', () => {
    const t = `@revoked 192.0.2.7 ${plain(rsa)}\n192.0.2.7 ${plain(rsa)}\n`;
    expect(lookup(t, '192.0.2.7', 22, ed.type, ed.blob)).toEqual({ status: 'unknown' });
    expect(lookup(`${t}192.0.2.7 ${plain(ecdsa)}\n`, '192.0.2.7', 22, ed.type, ed.blob)).toEqual({ status: 'changed', line: 3, keyType: 'ecdsa-sha2-nistp256' });
  });

  it('revoked wins over a plain entry; @revoked is scoped by its host pattern', () => {
    expect(lookup(text, '192.0.2.5', 22, ed.type, ed.blob)).toEqual({ status: 'revoked', line: 7 });
    expect(lookup(`@revoked * ${plain(ed)}\n${text}`, '192.0.2.1', 22, ed.type, ed.blob)).toEqual({ status: 'revoked', line: 1 });
    expect(lookup(text, '192.0.2.1', 22, ed.type, ed.blob).status).toBe('match');
  });

  it('@cert-authority lines never vouch for a plain key', () => {
    expect(lookup(text, '192.0.2.4', 22, ed.type, ed.blob)).toEqual({ status: 'unknown' });
  });

  it('knownKeyTypes lists the plain, unrevoked types in file order', () => {
    expect(knownKeyTypes(text, '192.0.2.3', 22)).toEqual(['ssh-rsa', 'ecdsa-sha2-nistp256']);
    expect(knownKeyTypes(text, '192.0.2.5', 22)).toEqual([]);
    expect(entriesFor(text, '192.0.2.5', 22).map((e) => e.line)).toEqual([7, 8]);
  });
});

describe('recording and pinning', () => {
  it('knownHostsLine is plain, [host]:port off 22, and ssh-keygen -F finds it', () => {
    expect(knownHostsLine('192.0.2.1', 22, ed.type, ed.blob)).toBe(`192.0.2.1 ${plain(ed)}`);
    const line = knownHostsLine('Mail.Example.com', 2222, ed.type, ed.blob);
    expect(line).toBe(`[mail.example.com]:2222 ${plain(ed)}`);
    expect(opensshFinds(`${line}\n`, '[mail.example.com]:2222')).toEqual([1]);
    expect(lookup(`${line}\n`, 'mail.example.com', 2222, ed.type, ed.blob).status).toBe('match');
  });

  it('a pinned host_key compares type and blob, with or without a comment or host field', () => {
    expect(pinnedMatches(ed.line, ed.type, ed.blob)).toBe(true);
    expect(pinnedMatches(`  ${plain(ed)}  `, ed.type, ed.blob)).toBe(true);
    expect(pinnedMatches(`[127.0.0.1]:2222 ${plain(ed)}`, ed.type, ed.blob)).toBe(true);
    expect(pinnedMatches(ed2.line, ed.type, ed.blob)).toBe(false);
    expect(pinnedMatches(`ssh-rsa ${ed.line.split(' ')[1]}`, 'ssh-rsa', ed.blob)).toBe(false);
    expect(parsePinned('ssh-ed25519 not-base64!')).toBeNull();
    expect(parsePinned('')).toBeNull();
    expect(parsePinned(rsa.line)?.keyType).toBe('ssh-rsa');
  });
});

describe('the host key policy (checkHostKey, hostKeyAlgorithms)', () => {
  const opts = (text: string | null, o: Partial<ConnectOptions> = {}): ConnectOptions => {
    const knownHostsFile = join(dir, `policy${n++}`, 'known_hosts');
    if (text !== null) {
      mkdirSync(dirname(knownHostsFile), { recursive: true });
      writeFileSync(knownHostsFile, text);
    }
    return { name: 'mx1', address: '192.0.2.10', port: 2222, user: 'root', knownHostsFile, acceptNew: false, ...o };
  };
  const at = 'host mx1 (192.0.2.10:2222)';
  const offered = `${fingerprint(ed.blob)} (ssh-ed25519)`;

  it('a host known by an RSA key that offers an Ed25519 key is refused as CHANGED, naming the line and both fingerprints', () => {
    const o = opts(`# mine\n[192.0.2.10]:2222 ${plain(rsa)}\n`);
    const c = checkHostKey(o, ed.type, ed.blob);
    expect(c.record).toBeUndefined();
    expect(c.refusal).toBe(
      `${at}: WARNING: HOST KEY CHANGED: the host now offers ${offered}, but ${o.knownHostsFile}:2 holds its ssh-rsa key (${fingerprint(rsa.blob)}), which it no longer offers. ` +
        `Refusing to connect, with or without --accept-new (possible man-in-the-middle); if the host's keys were really replaced, check the new key on it and remove line 2 of ${o.knownHostsFile}.`,
    );
  });

  it('--accept-new records nothing for it', () => {
    const o = opts(`[192.0.2.10]:2222 ${plain(ecdsa)}\n`, { acceptNew: true });
    const c = checkHostKey(o, ed.type, ed.blob);
    expect(c.record).toBeUndefined();
    expect(c.refusal).toContain(`WARNING: HOST KEY CHANGED: the host now offers ${offered}, but ${o.knownHostsFile}:1 holds its ecdsa-sha2-nistp256 key (${fingerprint(ecdsa.blob)})`);
  });

  it('a changed key of the same type, a match, an unknown host with and without --accept-new', () => {
    const text = `[192.0.2.10]:2222 ${plain(ed2)}\n`;
    expect(checkHostKey(opts(text, { acceptNew: true }), ed.type, ed.blob).refusal).toMatch(/WARNING: HOST KEY CHANGED: .* holds another ssh-ed25519 key for it \(SHA256:/);
    expect(checkHostKey(opts(text), ed2.type, ed2.blob)).toEqual({ refusal: null });
    const unknown = opts(null);
    expect(checkHostKey(unknown, ed.type, ed.blob).refusal).toBe(`${at}: unknown host key ${offered}; check it, then re-run with --accept-new to record it in ${unknown.knownHostsFile}`);
    expect(checkHostKey({ ...unknown, acceptNew: true }, ed.type, ed.blob)).toEqual({ refusal: null, record: `[192.0.2.10]:2222 ${plain(ed)}` });
  });

  it('a host known only by a key type mailops cannot ask for is refused too, saying so', () => {
    // A security-key Ed25519 host key (no hardware here): the blob's type, key and application strings.
    const str = (b: Buffer) => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(b.length);
      return Buffer.concat([len, b]);
    };
    const sk = Buffer.concat([str(Buffer.from('sk-ssh-ed25519@openssh.com')), str(Buffer.alloc(32, 7)), str(Buffer.from('ssh:'))]);
    const o = opts(`[192.0.2.10]:2222 sk-ssh-ed25519@openssh.com ${sk.toString('base64')}\n`, { acceptNew: true });
    const c = checkHostKey(o, ed.type, ed.blob);
    expect(c.record).toBeUndefined();
    expect(c.refusal).toBe(
      `${at}: the host offers ${offered}, but ${o.knownHostsFile}:1 knows it by its sk-ssh-ed25519@openssh.com key (${fingerprint(sk)}), a type mailops cannot ask for or check. ` +
        `Refusing to connect, with or without --accept-new (possible man-in-the-middle); check the ssh-ed25519 key on the host, then add it to ${o.knownHostsFile} yourself or pin it with ssh.host_key.`,
    );
  });

  it('asks for the recorded types first, then the others', () => {
    expect(hostKeyAlgorithms(opts(`[192.0.2.10]:2222 ${plain(rsa)}\n[192.0.2.10]:2222 ${plain(ecdsa384)}\n`))).toEqual([
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
      'ecdsa-sha2-nistp384',
      'ssh-ed25519',
      'ecdsa-sha2-nistp256',
      'ecdsa-sha2-nistp521',
    ]);
    expect(hostKeyAlgorithms(opts(null))[0]).toBe('ssh-ed25519');
    expect(hostKeyAlgorithms(opts(null, { hostKey: rsa.line })).slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
  });
});

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fingerprint, hostFieldMatches, keyTypeOf, knownHostsLine, lookup, pinnedMatches } from '../../src/ssh/known-hosts.js';

function newKey(type = 'ed25519'): { blob: Buffer; line: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'mailops-kh-'));
  const file = join(dir, 'key');
  execFileSync('ssh-keygen', ['-q', '-t', type, '-N', '', '-f', file]);
  const line = readFileSync(`${file}.pub`, 'utf8').trim();
  return { blob: Buffer.from(line.split(' ')[1]!, 'base64'), line, file: `${file}.pub` };
}

describe('known_hosts', () => {
  const k = newKey();
  const other = newKey();

  it('fingerprints exactly as ssh-keygen -l', () => {
    const out = execFileSync('ssh-keygen', ['-lf', k.file], { encoding: 'utf8' });
    expect(out.split(' ')[1]).toBe(fingerprint(k.blob));
    expect(keyTypeOf(k.blob)).toBe('ssh-ed25519');
  });

  it('matches plain, bracketed-port, wildcard and negated host fields', () => {
    expect(hostFieldMatches('mx.example.com,192.0.2.1', '192.0.2.1')).toBe(true);
    expect(hostFieldMatches('[127.0.0.1]:2222', '[127.0.0.1]:2222')).toBe(true);
    expect(hostFieldMatches('[127.0.0.1]:2222', '127.0.0.1')).toBe(false);
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'mx.example.com')).toBe(true);
    expect(hostFieldMatches('*.example.com,!bad.example.com', 'bad.example.com')).toBe(false);
  });

  it('matches hashed entries made by ssh-keygen -H', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mailops-kh-'));
    const f = join(dir, 'known_hosts');
    writeFileSync(f, `${knownHostsLine('10.1.2.3', 2222, k.blob)}\n`);
    execFileSync('ssh-keygen', ['-q', '-H', '-f', f], { stdio: 'ignore' });
    const text = readFileSync(f, 'utf8');
    expect(text).toMatch(/^\|1\|/);
    expect(lookup(text, '10.1.2.3', 2222, k.blob)).toEqual({ status: 'match' });
    expect(lookup(text, '10.1.2.3', 22, k.blob)).toEqual({ status: 'unknown' });
  });

  it('tells match, unknown, changed and revoked apart', () => {
    const text = `# comment\n\n${knownHostsLine('192.0.2.1', 22, k.blob)}\n[192.0.2.2]:2222 ${other.line}\n`;
    expect(lookup(text, '192.0.2.1', 22, k.blob)).toEqual({ status: 'match' });
    expect(lookup(text, '192.0.2.9', 22, k.blob)).toEqual({ status: 'unknown' });
    expect(lookup(text, '192.0.2.2', 2222, k.blob)).toEqual({ status: 'changed', line: 4 });
    expect(lookup(`@revoked * ${k.line}\n`, '192.0.2.1', 22, k.blob)).toEqual({ status: 'revoked', line: 1 });
    const rsa = newKey('rsa');
    expect(lookup(text, '192.0.2.1', 22, rsa.blob)).toEqual({ status: 'unknown' });
  });

  it('compares a pinned host_key', () => {
    expect(pinnedMatches(`${k.line} comment`, k.blob)).toBe(true);
    expect(pinnedMatches(other.line, k.blob)).toBe(false);
    expect(knownHostsLine('192.0.2.1', 22, k.blob)).toBe(`192.0.2.1 ${k.line.split(' ').slice(0, 2).join(' ')}`);
  });
});

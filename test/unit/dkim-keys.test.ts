/** DKIM public keys are read from the key files themselves; a key of another type than asked is named in the plan. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dkimPublicCommand } from '../../src/facts/script.js';
import { parseDkim } from '../../src/facts/parse.js';
import type { DesiredHost } from '../../src/model/desired.js';
import type { HostFacts } from '../../src/model/facts.js';
import { dkimKeyWarnings } from '../../src/plan/dkim.js';

const dir = mkdtempSync(join(tmpdir(), 'mailops-dkim-'));
const rsa = join(dir, 'rsa.key');
const ed = join(dir, 'ed.key');
execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsa], { stdio: 'ignore' });
execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', ed], { stdio: 'ignore' });
const der = (k: string) => execFileSync('openssl', ['pkey', '-in', k, '-pubout', '-outform', 'DER']);

const line = (file: string) => spawnSync('sh', ['-c', dkimPublicCommand(file, 'example.com', 'mail', "printf '%s\\t%s\\t%s\\t%s\\t%s\\n'")], { encoding: 'utf8' }).stdout.trim();

describe('DKIM public keys from the host', () => {
  it('reads the algorithm and size from the key itself, and the p= value as DNS publishes it', () => {
    expect(parseDkim([line(rsa)])).toEqual({ 'mail._domainkey.example.com': { selector: 'mail', algorithm: 'rsa', bits: 2048, publicKey: der(rsa).toString('base64') } });
    // Ed25519 (RFC 8463): p= is the raw 32-byte key, not the DER structure.
    expect(parseDkim([line(ed)])).toEqual({ 'mail._domainkey.example.com': { selector: 'mail', algorithm: 'ed25519', bits: 256, publicKey: der(ed).subarray(-32).toString('base64') } });
    expect(line(join(dir, 'missing.key'))).toBe('');
  });

  it('a key of another type or size than the playbook asks for is a plan warning, published as what it is', () => {
    const desired = { dkimKeys: [{ domain: 'example.com', selector: 'mail', algorithm: 'ed25519', bits: 256, keyFile: '/etc/dkimkeys/example.com.mail.key' }] } as unknown as DesiredHost;
    const facts = { dkim: parseDkim([line(rsa)]) } as unknown as HostFacts;
    expect(dkimKeyWarnings(desired, facts)).toEqual([
      'DKIM key mail._domainkey.example.com on the host is rsa-2048, the playbook asks for ed25519: the rsa-2048 key keeps signing and stays published as rsa-2048; to change it, remove /etc/dkimkeys/example.com.mail.key on the host, and the next apply makes a ed25519 key and publishes it',
    ]);
    expect(dkimKeyWarnings({ dkimKeys: [{ ...desired.dkimKeys[0]!, algorithm: 'rsa', bits: 2048 }] } as DesiredHost, facts)).toEqual([]);
  });
});

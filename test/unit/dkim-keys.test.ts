/** DKIM public keys are read from the key files themselves. */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dkimPublicCommand } from '../../src/facts/script.js';
import { parseDkim } from '../../src/facts/parse.js';

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
});

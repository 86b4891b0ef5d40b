/** DKIM public keys are read from the key files themselves. */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dkimCacheCommand, dkimPublicCommand, tlsFingerprintCommand } from '../../src/facts/script.js';
import { DKIM_PUBLIC_CACHE } from '../../src/facts/shell.js';
import { dkimFromSpki, parseDkim } from '../../src/facts/parse.js';
import { FAMILY_FACTS } from '../../src/facts/host-facts.js';
import { parseReport } from '../../src/apply/report.js';
import type { DesiredHost } from '../../src/model/desired.js';

const dir = mkdtempSync(join(tmpdir(), 'mailops-dkim-'));
const rsa = join(dir, 'rsa.key');
const ed = join(dir, 'ed.key');
execFileSync('openssl', ['genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048', '-out', rsa], { stdio: 'ignore' });
execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', ed], { stdio: 'ignore' });
const der = (k: string) => execFileSync('openssl', ['pkey', '-in', k, '-pubout', '-outform', 'DER']);

const line = (file: string) => spawnSync('sh', ['-c', dkimPublicCommand(file, 'example.com', 'mail', "printf '%s %s %s\\n'")], { encoding: 'utf8' }).stdout.trim();

describe('DKIM public keys from the host', () => {
  it('the facts: every key of the directory, its algorithm and size read from the key itself, and the p= value as DNS publishes it', () => {
    const keys = mkdtempSync(join(tmpdir(), 'mailops-dkimkeys-'));
    copyFileSync(rsa, join(keys, 'example.com.mail.key'));
    copyFileSync(ed, join(keys, 'mail.example.org.2026.key'));
    writeFileSync(join(keys, 'broken.test.x.key'), 'not a key\n');
    writeFileSync(join(keys, 'lifecycle'), 'example.com\tmail\tactive\t1700000000\n');
    const fact = FAMILY_FACTS.find((f) => f.section === 'dkim')!;
    const out = spawnSync('sh', ['-c', fact.command({ os: { paths: { dkimKeys: keys } } } as unknown as DesiredHost).join('\n')], { encoding: 'utf8' }).stdout.split('\n');
    expect(parseDkim(out)).toEqual({
      'mail._domainkey.example.com': { selector: 'mail', algorithm: 'rsa', bits: 2048, publicKey: der(rsa).toString('base64') },
      // Ed25519 (RFC 8463): p= is the raw 32-byte key, not the DER structure.
      '2026._domainkey.mail.example.org': { selector: '2026', algorithm: 'ed25519', bits: 256, publicKey: der(ed).subarray(-32).toString('base64') },
    });
    expect(out).toContain('lifecycle\texample.com\tmail\tactive\t1700000000');
  });

  it('the facts read the public halves the activation cached, for exactly those keys; a changed key is read by openssl again', () => {
    const keys = mkdtempSync(join(tmpdir(), 'mailops-dkimkeys-'));
    const cache = join(mkdtempSync(join(tmpdir(), 'mailops-dkimcache-')), 'dkim-public');
    copyFileSync(rsa, join(keys, 'example.com.mail.key'));
    copyFileSync(ed, join(keys, 'example.org.2026.key'));
    // An openssl that fails: what the facts find without it came from the cache.
    const noOpenssl = mkdtempSync(join(tmpdir(), 'mailops-noopenssl-'));
    writeFileSync(join(noOpenssl, 'openssl'), '#!/bin/sh\nexit 1\n');
    chmodSync(join(noOpenssl, 'openssl'), 0o755);
    const fact = FAMILY_FACTS.find((f) => f.section === 'dkim')!;
    const facts = (path = process.env['PATH']!) =>
      parseDkim(spawnSync('sh', ['-c', fact.command({ os: { paths: { dkimKeys: keys } } } as unknown as DesiredHost).join('\n').replaceAll(DKIM_PUBLIC_CACHE, cache)], { encoding: 'utf8', env: { ...process.env, PATH: path } }).stdout.split('\n'));
    const both = {
      'mail._domainkey.example.com': { selector: 'mail', algorithm: 'rsa', bits: 2048, publicKey: der(rsa).toString('base64') },
      '2026._domainkey.example.org': { selector: '2026', algorithm: 'ed25519', bits: 256, publicKey: der(ed).subarray(-32).toString('base64') },
    };
    expect(facts(`${noOpenssl}:${process.env['PATH']}`)).toEqual({});
    const fill = () => expect(spawnSync('sh', ['-c', dkimCacheCommand(keys, cache)]).status).toBe(0);
    fill();
    expect(readdirSync(cache)).toHaveLength(2);
    expect(facts(`${noOpenssl}:${process.env['PATH']}`)).toEqual(both);
    // The RSA key replaced by another: its cached half is not its own any more.
    const other = join(dir, 'other.key');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', other], { stdio: 'ignore' });
    copyFileSync(other, join(keys, 'example.com.mail.key'));
    expect(facts(`${noOpenssl}:${process.env['PATH']}`)).toEqual({ '2026._domainkey.example.org': both['2026._domainkey.example.org'] });
    const replaced = { ...both, 'mail._domainkey.example.com': { selector: 'mail', algorithm: 'ed25519', bits: 256, publicKey: der(other).subarray(-32).toString('base64') } };
    expect(facts()).toEqual(replaced);
    // The next activation caches the new key and drops the old one's entry.
    fill();
    expect(readdirSync(cache)).toHaveLength(2);
    expect(facts(`${noOpenssl}:${process.env['PATH']}`)).toEqual(replaced);
    mkdirSync(join(cache, 'stray-dir'));
    writeFileSync(join(cache, 'stale'), 'x\n');
    fill();
    expect(readdirSync(cache).sort()).toHaveLength(3); // the two keys' entries and the directory, which is not a cache entry
  });

  it('the activation\'s report: the same keys, read from the line it prints', () => {
    const report = (file: string) => parseReport(`@@mailops dkim ${line(file)}\n@@mailops result ok\n`).dkim;
    expect(report(rsa)).toEqual([{ domain: 'example.com', selector: 'mail', algorithm: 'rsa', publicKey: der(rsa).toString('base64') }]);
    expect(report(ed)).toEqual([{ domain: 'example.com', selector: 'mail', algorithm: 'ed25519', publicKey: der(ed).subarray(-32).toString('base64') }]);
    expect(line(join(dir, 'missing.key'))).toBe('');
  });
});

describe('certificate fingerprints from the host', () => {
  const cert = (name: string) => {
    const key = join(dir, `${name}.key`);
    const crt = join(dir, `${name}.crt`);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ed25519', '-nodes', '-days', '2', '-subj', `/CN=${name}`, '-keyout', key, '-out', crt], { stdio: 'ignore' });
    return crt;
  };
  const fingerprint = (file: string) => spawnSync('sh', ['-c', tlsFingerprintCommand(file)], { encoding: 'utf8' }).stdout.trim();
  const fact = (file: string) => {
    const tls = FAMILY_FACTS.find((f) => f.section === 'tls')!;
    return tls.parse(spawnSync('sh', ['-c', tls.command({ tlsCert: file } as unknown as DesiredHost).join('\n')], { encoding: 'utf8' }).stdout.split('\n'), new Map());
  };
  const openssl = (file: string) => execFileSync('openssl', ['x509', '-in', file, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).replace(/^.*=/, '').replace(/:/g, '').trim().toLowerCase();

  it('is the SHA-256 of the first certificate, as openssl x509 -fingerprint gives it', () => {
    const leaf = cert('leaf');
    const chain = join(dir, 'fullchain.pem');
    writeFileSync(chain, readFileSync(leaf, 'utf8') + readFileSync(cert('issuer'), 'utf8'));
    expect(fingerprint(leaf)).toMatch(/^[0-9a-f]{64}$/);
    expect(fingerprint(leaf)).toBe(openssl(leaf));
    expect(fingerprint(chain)).toBe(openssl(leaf));
    // The facts: the PEM of the first certificate, hashed by mailops.
    expect(fact(chain).tlsFingerprint).toBe(openssl(leaf));
    expect(fact(leaf)).toEqual(fact(chain));
  });

  it('prints nothing for a missing file or one without a certificate', () => {
    const junk = join(dir, 'junk.pem');
    writeFileSync(junk, 'not a certificate\n');
    expect(fingerprint(join(dir, 'missing.crt'))).toBe('');
    expect(fingerprint(junk)).toBe('');
    expect(fact(junk)).toEqual({});
    expect(fact(join(dir, 'missing.crt'))).toEqual({});
  });
});

describe('DKIM public keys as DNS publishes them', () => {
  it('takes RSA and Ed25519 keys and refuses anything else', () => {
    expect(dkimFromSpki(der(rsa).toString('base64'))).toEqual({ algorithm: 'rsa', bits: 2048, publicKey: der(rsa).toString('base64') });
    expect(dkimFromSpki(der(ed).toString('base64'))?.publicKey).toBe(der(ed).subarray(-32).toString('base64'));
    expect(dkimFromSpki('bm90IGEga2V5')).toBeNull();
    expect(dkimFromSpki('not base64!')).toBeNull();
  });
});

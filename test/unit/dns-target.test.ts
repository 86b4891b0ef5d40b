/** Where zones are pushed: flags over the sandbox over the playbook; the key from a file or the environment. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dnsTarget } from '../../src/dns/publish.js';
import type { Site } from '../../src/model/site.js';

const dir = mkdtempSync(join(tmpdir(), 'mailops-tsig-'));
const KEY = 'key "mailops-tsig" {\n\talgorithm hmac-sha256;\n\tsecret "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=";\n};\n';
const keyFile = (name: string, text = KEY) => {
  const f = join(dir, name);
  writeFileSync(f, text, { mode: 0o600 });
  return f;
};
const [pk, fk, sk] = [keyFile('p.key'), keyFile('f.key'), keyFile('sandbox.key')];

const site = (update?: Site['dns']['update']): Site =>
  ({
    site: 't',
    file: '/tmp/site.yaml',
    hosts: [],
    stack: {} as Site['stack'],
    dns: { ttl: 3600, nameservers: ['ns1.example.net'], nameserverAddresses: {}, hostmaster: '', ...(update ? { update } : {}) },
    domains: [],
  }) as Site;

describe('dns target', () => {
  it('none without dns.update, flags or sandbox; --tsig-key alone is an error', () => {
    expect(dnsTarget(site(), {})).toBeUndefined();
    expect(() => dnsTarget(site(), { tsigKey: '/k' })).toThrow(/--tsig-key needs a server/);
  });

  it('the playbook: a key file, or the key text from the environment (never echoed)', () => {
    expect(dnsTarget(site({ server: '192.0.2.53', key: { kind: 'file', path: pk } }), {})).toEqual({ server: '192.0.2.53', key: { file: pk } });
    process.env['IT_TSIG'] = KEY;
    expect(dnsTarget(site({ server: '192.0.2.53:5353', key: { kind: 'env', name: 'IT_TSIG' } }), {})).toEqual({ server: '192.0.2.53:5353', key: { text: process.env['IT_TSIG'], origin: 'environment variable IT_TSIG' } });
    delete process.env['IT_TSIG'];
    expect(() => dnsTarget(site({ server: '192.0.2.53', key: { kind: 'env', name: 'IT_TSIG' } }), {})).toThrow(/dns.update.key: environment variable IT_TSIG is not set/);
  });

  it('flags override the playbook; the sandbox is used unless a flag names another server', () => {
    const s = site({ server: '192.0.2.53', key: { kind: 'file', path: pk } });
    expect(dnsTarget(s, { dnsServer: '198.51.100.1:53', tsigKey: fk })).toEqual({ server: '198.51.100.1:53', key: { file: fk } });
    expect(dnsTarget(s, { dnsServer: '198.51.100.1' })).toEqual({ server: '198.51.100.1', key: { file: pk } });
    expect(dnsTarget(s, {}, { server: '127.0.0.1:5300', keyFile: sk })).toEqual({ server: '127.0.0.1:5300', key: { file: sk } });
    expect(() => dnsTarget(site(), { dnsServer: '198.51.100.1' })).toThrow(/need a TSIG key: --tsig-key FILE, or dns.update.key/);
    expect(() => dnsTarget(site(), { dnsServer: 'not a server', tsigKey: fk })).toThrow(/DNS server "not a server"/);
  });

  it('a key file that is missing or not a key is refused before any host is touched, never echoing the secret', () => {
    expect(() => dnsTarget(site(), { dnsServer: '192.0.2.53', tsigKey: join(dir, 'missing.key') })).toThrow(/^TSIG key file .*missing\.key: not found; check dns.update.key \(or --tsig-key\)$/);
    const bad = keyFile('bad.key', 'key "k" { algorithm hmac-sha256; secret "not base64!"; };');
    expect(() => dnsTarget(site(), { dnsServer: '192.0.2.53', tsigKey: bad })).toThrow(/the secret of key k is not base64/);
    process.env['IT_TSIG'] = 'hmac-sha256:k:c2VjcmV0';
    expect(() => dnsTarget(site({ server: '192.0.2.53', key: { kind: 'env', name: 'IT_TSIG' } }), {})).toThrow(/the TSIG key in environment variable IT_TSIG: no key in it/);
    delete process.env['IT_TSIG'];
  });
});

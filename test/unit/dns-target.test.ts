/** Where zones are pushed: flags over the sandbox over the playbook; the key from a file or the environment. */
import { describe, expect, it } from 'vitest';
import { dnsTarget } from '../../src/dns/publish.js';
import type { Site } from '../../src/model/site.js';

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
    expect(dnsTarget(site({ server: '192.0.2.53', key: { kind: 'file', path: '/etc/mailops/tsig.key' } }), {})).toEqual({ server: '192.0.2.53', key: { file: '/etc/mailops/tsig.key' } });
    process.env['IT_TSIG'] = 'key "k" { algorithm hmac-sha256; secret "c2VjcmV0"; };';
    expect(dnsTarget(site({ server: '192.0.2.53:5353', key: { kind: 'env', name: 'IT_TSIG' } }), {})).toEqual({ server: '192.0.2.53:5353', key: { text: process.env['IT_TSIG'], origin: 'environment variable IT_TSIG' } });
    delete process.env['IT_TSIG'];
    expect(() => dnsTarget(site({ server: '192.0.2.53', key: { kind: 'env', name: 'IT_TSIG' } }), {})).toThrow(/dns.update.key: environment variable IT_TSIG is not set/);
  });

  it('flags override the playbook; the sandbox is used unless a flag names another server', () => {
    const s = site({ server: '192.0.2.53', key: { kind: 'file', path: '/p.key' } });
    expect(dnsTarget(s, { dnsServer: '198.51.100.1:53', tsigKey: '/f.key' })).toEqual({ server: '198.51.100.1:53', key: { file: '/f.key' } });
    expect(dnsTarget(s, { dnsServer: '198.51.100.1' })).toEqual({ server: '198.51.100.1', key: { file: '/p.key' } });
    expect(dnsTarget(s, {}, { server: '127.0.0.1:5300', keyFile: '/sandbox.key' })).toEqual({ server: '127.0.0.1:5300', key: { file: '/sandbox.key' } });
    expect(() => dnsTarget(site(), { dnsServer: '198.51.100.1' })).toThrow(/need a TSIG key: --tsig-key FILE, or dns.update.key/);
    expect(() => dnsTarget(site(), { dnsServer: 'not a server', tsigKey: '/k' })).toThrow(/DNS server "not a server"/);
  });
});

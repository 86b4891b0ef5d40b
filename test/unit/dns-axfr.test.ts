import { describe, expect, it } from 'vitest';
import { digFailure, parseAxfr, parseDigOutput, parseRecordLine, parseSoaQuery } from '../../src/dns/axfr.js';
import { txtText } from '../../src/dns/rrset.js';
import { fixture, fixtureNames } from '../fixtures/dns/load.js';

const transfer = (name: string) => {
  const r = parseAxfr(fixture(name));
  if ('failure' in r) throw new Error(`${name}: ${JSON.stringify(r.failure)}`);
  return r;
};

describe('dig output', () => {
  it('parses record lines with tabs, any case, class and TTL', () => {
    expect(parseRecordLine('Mail.example.com.\t3600\tIN\tA\t203.0.113.10')).toEqual({ name: 'Mail.example.com.', ttl: 3600, class: 'IN', type: 'A', rdata: '203.0.113.10' });
    expect(parseRecordLine('_submission._tcp.example.com. 3600 IN\tSRV\t0 1 587 MAIL.example.com.')!.rdata).toBe('0 1 587 MAIL.example.com.');
    expect(parseRecordLine('; Transfer failed.')).toBeNull();
  });

  it('reads a good transfer: the SOA apart, every other set canonical', () => {
    const { soa, rrsets } = transfer('dig-axfr-ok');
    expect(soa).toMatchObject({ name: 'example.com.', serial: 2024010100, mname: 'ns1.example-dns.net.', minimum: 300 });
    const get = (name: string, type: string) => rrsets.find((s) => s.name === name && s.type === type);
    expect(rrsets.some((s) => s.type === 'SOA' || s.type === 'TSIG')).toBe(false);
    expect(get('example.com.', 'MX')!.rdata).toEqual(['10 mail.example.com.']);
    expect(get('example.com.', 'TXT')!.rdata).toEqual(['"google-site-verification=abc123"', '"v=spf1 ip4:203.0.113.10 -all"']);
    expect(get('mail.example.com.', 'A')!.rdata).toEqual(['203.0.113.10']);
    expect(get('mail.example.com.', 'AAAA')!.rdata).toEqual(['2001:db8::10']);
    expect(get('_submission._tcp.example.com.', 'SRV')!.rdata).toEqual(['0 1 587 mail.example.com.']);
    expect(get('www.example.com.', 'A')!.ttl).toBe(300);
    const odd = get('odd.example.com.', 'TXT')!.rdata[0]!;
    expect(txtText(odd)).toBe('say "hi"back\\slashtab\theresemi;coloncafé');
    const dkim = get('long.example.com.', 'TXT')!.rdata[0]!;
    expect(txtText(dkim)).toMatch(/^v=DKIM1; k=rsa; p=MIIB.*IDAQAB$/);
  });

  it('reads a transfer of several messages, each with its header and TSIG record', () => {
    const f = fixture('dig-axfr-multi-message');
    expect(parseDigOutput(f.stdout).statuses.length).toBeGreaterThan(1);
    expect(parseDigOutput(f.stdout).tsig.every((t) => t.error === 'NOERROR')).toBe(true);
    const { soa, rrsets } = transfer('dig-axfr-multi-message');
    expect(soa.serial).toBe(7);
    expect(rrsets.filter((s) => s.type === 'TXT')).toHaveLength(400);
  });

  it('reads plain +noall +answer output too', () => {
    const plain = 'example.com.\t\t3600\tIN\tSOA\tns1.x. h.x. 5 1 2 3 4\nwww.example.com.\t300\tIN\tA\t192.0.2.1\nexample.com.\t\t3600\tIN\tSOA\tns1.x. h.x. 5 1 2 3 4\n';
    const r = parseAxfr({ exitCode: 0, stdout: plain, stderr: '' });
    expect('failure' in r ? r.failure : r.rrsets).toEqual([{ name: 'www.example.com.', type: 'A', ttl: 300, rdata: ['192.0.2.1'] }]);
  });

  it('reads the serial of a SOA query', () => {
    const r = parseSoaQuery(fixture('dig-soa-ok'), 'example.com');
    expect('soa' in r && r.soa.serial).toBe(2024010100);
  });

  it('calls a transfer without its closing SOA incomplete', () => {
    const f = fixture('dig-axfr-ok');
    const cut = f.stdout.split('\n').filter((l, i, all) => !(l.includes('\tSOA\t') && all.indexOf(l) !== i)).join('\n');
    expect(digFailure({ ...f, stdout: cut }, 'AXFR')).toMatchObject({ kind: 'incomplete' });
  });
});

describe('dig failures, as recorded', () => {
  const expected: Record<string, { kind: string; rcode?: string; detail: RegExp }> = {
    'dig-axfr-no-key': { kind: 'refused', rcode: 'REFUSED', detail: /^the server answered REFUSED \(EDE: 18 \(Prohibited\)\)$/ },
    'dig-axfr-key-not-allowed': { kind: 'refused', rcode: 'REFUSED', detail: /REFUSED/ },
    'dig-axfr-wrong-secret': { kind: 'tsig', rcode: 'BADSIG', detail: /Couldn't verify signature: tsig indicates error/ },
    'dig-axfr-unknown-key': { kind: 'tsig', rcode: 'BADKEY', detail: /Couldn't verify signature/ },
    'dig-axfr-badtime': { kind: 'tsig', rcode: 'BADTIME', detail: /clocks are unsynchronized/ },
    'dig-axfr-not-served': { kind: 'notauth', rcode: 'NOTAUTH', detail: /^the server answered NOTAUTH$/ },
    'dig-axfr-not-listening': { kind: 'unreachable', detail: /connection refused/ },
    'dig-axfr-timeout': { kind: 'timeout', detail: /timed out/ },
    'dig-axfr-no-address': { kind: 'no-address', detail: /couldn't get address for 'no..such.invalid': not found/ },
    'dig-axfr-garbage-key-file': { kind: 'key-file', detail: /Couldn't read key from .*garbage.key/ },
    'dig-axfr-bad-base64-key': { kind: 'key-file', detail: /Couldn't create key mailops-tsig: bad base64 encoding/ },
    'dig-soa-not-served': { kind: 'refused', rcode: 'REFUSED', detail: /answered REFUSED/ },
    'dig-soa-not-listening': { kind: 'unreachable', detail: /connection refused/ },
  };

  for (const name of fixtureNames.filter((n) => n.startsWith('dig-'))) {
    it(name, () => {
      const f = fixture(name);
      const query = f.argv.at(-1)!;
      const failure = digFailure(f, query);
      const want = expected[name];
      if (!want) {
        expect(failure, `${name} should succeed`).toBeNull();
        return;
      }
      expect(failure).toMatchObject({ kind: want.kind, ...(want.rcode ? { rcode: want.rcode } : {}) });
      expect(failure!.detail).toMatch(want.detail);
    });
  }

  it('takes NXDOMAIN of a query for a zone the server does not have', () => {
    const f = fixture('dig-soa-not-served');
    expect(digFailure({ ...f, stdout: f.stdout.replace('REFUSED', 'NXDOMAIN') }, 'SOA')).toMatchObject({ kind: 'notauth', rcode: 'NXDOMAIN' });
  });

  it('knows a missing dig', () => {
    expect(digFailure({ exitCode: 127, stdout: '', stderr: 'dig: command not found' }, 'AXFR')).toMatchObject({ kind: 'missing-tool' });
  });

  it('knows a killed dig (our own timeout)', () => {
    expect(digFailure({ exitCode: null, stdout: '', stderr: '' }, 'AXFR')).toMatchObject({ kind: 'timeout' });
  });
});

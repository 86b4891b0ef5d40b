import { describe, expect, it } from 'vitest';
import { parseAxfr } from '../../src/dns/axfr.js';
import type { ZoneModel } from '../../src/dns/records.js';
import { desiredRrsets } from '../../src/dns/rrset.js';
import type { RRset } from '../../src/dns/rrset.js';
import { diffZone, formatDnsChanges, nsupdateFailure, nsupdateScript, txtTag } from '../../src/dns/update.js';
import type { DnsChange } from '../../src/dns/update.js';
import { fixture, fixtureNames } from '../fixtures/dns/load.js';

const live = (() => {
  const r = parseAxfr(fixture('dig-axfr-ok'));
  if ('failure' in r) throw new Error(r.failure.detail);
  return r.rrsets;
})();

const model: ZoneModel = {
  domain: 'example.com',
  ttl: 3600,
  notes: [],
  records: [
    { name: '@', type: 'NS', data: 'ns1.example-dns.net.' },
    { name: '@', type: 'NS', data: 'ns2.example-dns.net.' },
    { name: '@', type: 'MX', data: '10 mail.example.com.' },
    { name: 'mail', type: 'A', data: '203.0.113.10' },
    { name: 'mail', type: 'AAAA', data: '2001:db8::10' },
    { name: '@', type: 'TXT', data: ['v=spf1 ip4:203.0.113.10 ip6:2001:db8::10 -all'] },
    { name: '_dmarc', type: 'TXT', data: ['v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@example.com'] },
    { name: 'imap', type: 'CNAME', data: 'mail.example.com.' },
    { name: 'smtp', type: 'CNAME', data: 'mail.example.com.' },
    { name: '_submission._tcp', type: 'SRV', data: '0 1 587 mail.example.com.' },
  ],
};

/** What a server does with the changes (for the idempotence check). */
function applyChanges(sets: readonly RRset[], changes: readonly DnsChange[]): RRset[] {
  let out = sets.map((s) => ({ ...s, rdata: [...s.rdata] }));
  for (const c of changes) {
    const gone = new Set((c.replaces ?? []).map((s) => `${s.name} ${s.type}`));
    out = out.filter((s) => !gone.has(`${s.name} ${s.type}`) && !(s.name === c.name && s.type === c.type));
    out.push({ ...c.after, rdata: [...c.after.rdata, ...(c.kept ?? [])] });
  }
  return out;
}

describe('diffZone', () => {
  const desired = desiredRrsets(model);
  const changes = diffZone('example.com', desired, live);
  const find = (name: string, type: string) => changes.find((c) => c.name === name && c.type === type);

  it('changes only what differs, in the order of the render', () => {
    expect(changes.map((c) => `${c.action} ${c.name} ${c.type}`)).toEqual([
      'update example.com. TXT',
      'create _dmarc.example.com. TXT',
      'create imap.example.com. CNAME',
    ]);
  });

  it('ignores differences of case, TXT split and AAAA spelling', () => {
    for (const t of ['MX', 'NS']) expect(find('example.com.', t)).toBeUndefined();
    expect(find('mail.example.com.', 'AAAA')).toBeUndefined();
    expect(find('_submission._tcp.example.com.', 'SRV')).toBeUndefined();
    const dkim = live.find((s) => s.name === 'long.example.com.')!;
    const resplit = desiredRrsets({ ...model, records: [{ name: 'long', type: 'TXT', data: [dkimText()] }] });
    expect(diffZone('example.com', resplit, live)).toEqual([]);
    expect(dkim.rdata[0]).not.toBe(resplit[0]!.rdata[0]);
  });

  it('manages only the SPF record of the apex TXT set and keeps the others', () => {
    const spf = find('example.com.', 'TXT')!;
    expect(spf.before!.rdata).toEqual(['"v=spf1 ip4:203.0.113.10 -all"']);
    expect(spf.kept).toEqual(['"google-site-verification=abc123"']);
    expect(txtTag('"v=DMARC1; p=none"')).toBe('dmarc1');
    expect(txtTag('"google-site-verification=x"')).toBeUndefined();
  });

  it('replaces the A set where the render puts a CNAME (and the CNAME where it puts data)', () => {
    expect(find('imap.example.com.', 'CNAME')!.replaces).toEqual([{ name: 'imap.example.com.', type: 'A', ttl: 3600, rdata: ['203.0.113.10'] }]);
    const smtpA = desiredRrsets({ ...model, records: [{ name: 'smtp', type: 'A', data: '192.0.2.25' }, { name: 'smtp', type: 'TXT', data: ['v=spf1 -all'] }] });
    const c = diffZone('example.com', smtpA, live);
    expect(c.map((x) => [x.type, x.replaces?.map((r) => r.type)])).toEqual([['A', ['CNAME']], ['TXT', undefined]]);
  });

  it('leaves every set it does not render alone', () => {
    const touched = changes.flatMap((c) => [`${c.name} ${c.type}`, ...(c.replaces ?? []).map((r) => `${r.name} ${r.type}`)]);
    for (const n of ['www.example.com. A', 'odd.example.com. TXT', 'long.example.com. TXT']) expect(touched).not.toContain(n);
  });

  it('sees a TTL change', () => {
    const c = diffZone('example.com', desiredRrsets({ ...model, ttl: 7200, records: [model.records[2]!] }), live);
    expect(c).toMatchObject([{ action: 'update', type: 'MX', before: { ttl: 3600 }, after: { ttl: 7200 } }]);
  });

  it('deletes exactly the records of a set it published before and renders no more (a retired DKIM key), and shows it', () => {
    const before = desiredRrsets({ ...model, records: [{ name: 'long', type: 'TXT', data: [dkimText()] }] });
    const c = diffZone('example.com', desiredRrsets(model), live, [...before, ...desiredRrsets(model)]);
    const del = c.filter((x) => x.action === 'delete');
    expect(del).toMatchObject([{ name: 'long.example.com.', type: 'TXT', after: { rdata: [] } }]);
    expect(del[0]!.before!.rdata).toHaveLength(1);
    expect(formatDnsChanges(del)).toMatch(/^dns example\.com: 1 change\n {2}- long TXT "v=DKIM1; k=rsa; p=MIIB/);
    const script = nsupdateScript({ host: '192.0.2.53', port: 53 }, 'example.com', del);
    expect(script).toMatch(/^prereq yxrrset long\.example\.com\. TXT "v=DKIM1; /m);
    expect(script).toMatch(/^update delete long\.example\.com\. TXT "v=DKIM1; /m);
    expect(script).not.toMatch(/^update add/m);
    // A record it never published at that name stays; a set it still renders is not withdrawn.
    expect(diffZone('example.com', [], live, desiredRrsets({ ...model, records: [{ name: 'long', type: 'TXT', data: ['v=DKIM1; k=rsa; p=other'] }] }))).toEqual([]);
    expect(diffZone('example.com', before, live, before)).toEqual([]);
  });

  it('finds nothing to do once the changes are made', () => {
    expect(diffZone('example.com', desired, applyChanges(live, changes))).toEqual([]);
    expect(diffZone('example.com', desired, [])).toHaveLength(desired.length);
  });
});

function dkimText(): string {
  return 'v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gunVTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxKLxoS2tFczGkPLPgizskuemMghRniWaoLcyehkd3qqGElvW/VDL5AaWTg0nLVkjRo9z+40RQzuVaE8AkAFmxZzow3x+VJYKdxykkhlrYRmMiYGKRAZFGXMIKC9ZA63nHBdM4ACkwUg1H/vXbbH6PvfsO3+mqdY3+ZF46nt5kETHT5rszbPhEiyZV1OD6vD9LXZB3KeRjN6Y0HwUZzShFTcKz2Fi0Ixn2d1BZsC7s2wwIDAQAB';
}

describe('nsupdateScript', () => {
  const changes = diffZone('example.com', desiredRrsets(model), live);

  it('is one guarded message: prerequisites, then deletes and adds per change, then send', () => {
    expect(nsupdateScript({ host: '192.0.2.53', port: 53 }, 'example.com', changes)).toBe(
      [
        'server 192.0.2.53 53',
        'zone example.com.',
        'prereq yxrrset example.com. TXT "v=spf1 ip4:203.0.113.10 -all"',
        'prereq yxrrset example.com. TXT "google-site-verification=abc123"',
        'prereq nxrrset _dmarc.example.com. TXT',
        'prereq nxrrset imap.example.com. CNAME',
        'prereq yxrrset imap.example.com. A',
        'update add example.com. 3600 TXT "v=spf1 ip4:203.0.113.10 ip6:2001:db8::10 -all"',
        'update delete example.com. TXT "v=spf1 ip4:203.0.113.10 -all"',
        'update add _dmarc.example.com. 3600 TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@example.com"',
        'update delete imap.example.com. A',
        'update add imap.example.com. 3600 CNAME mail.example.com.',
        'send',
        '',
      ].join('\n'),
    );
  });

  it('quotes TXT with escapes and adds the new apex NS before deleting the old one', () => {
    const ns: RRset = { name: 'example.com.', type: 'NS', ttl: 3600, rdata: ['ns3.example-dns.net.'] };
    const txt: RRset = { name: 'q.example.com.', type: 'TXT', ttl: 60, rdata: [String.raw`"a \"quoted\" \\ caf\195\169"`] };
    const script = nsupdateScript({ host: '2001:db8::53', port: 5353 }, 'example.com.', diffZone('example.com', [ns, txt], live));
    expect(script).toContain('server 2001:db8::53 5353\n');
    const lines = script.split('\n');
    expect(lines.indexOf('update add example.com. 3600 NS ns3.example-dns.net.')).toBeLessThan(lines.indexOf('update delete example.com. NS ns1.example-dns.net.'));
    expect(script).toContain(String.raw`update add q.example.com. 60 TXT "a \"quoted\" \\ caf\195\169"`);
  });
});

describe('formatDnsChanges', () => {
  it('prints a plan per zone', () => {
    const changes = diffZone('example.com', desiredRrsets({ ...model, records: [...model.records, { name: 'www', type: 'A', data: '198.51.100.7' }] }), live);
    expect(formatDnsChanges(changes)).toBe(
      [
        'dns example.com: 4 changes',
        '  ~ @ TXT: "v=spf1 ip4:203.0.113.10 -all" → "v=spf1 ip4:203.0.113.10 ip6:2001:db8::10 -all" (keeps 1 other TXT record)',
        '  + _dmarc TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc-reports@example.com"',
        '  ~ imap: A 203.0.113.10 → CNAME mail.example.com.',
        '  ~ www A: ttl 300 → 3600',
        '',
      ].join('\n'),
    );
    expect(formatDnsChanges([])).toBe('');
  });
});

describe('nsupdate failures, as recorded', () => {
  const expected: Record<string, { kind: string; rcode?: string; detail: RegExp }> = {
    'nsupdate-wrong-secret': { kind: 'tsig', rcode: 'BADSIG', detail: /TSIG error with server: tsig indicates error/ },
    'nsupdate-unknown-key': { kind: 'tsig', rcode: 'BADKEY', detail: /tsig indicates error/ },
    'nsupdate-badtime': { kind: 'tsig', rcode: 'BADTIME', detail: /clocks are unsynchronized/ },
    'nsupdate-key-not-allowed': { kind: 'refused', rcode: 'REFUSED', detail: /update failed: REFUSED/ },
    'nsupdate-no-key': { kind: 'refused', rcode: 'REFUSED', detail: /REFUSED/ },
    'nsupdate-zone-not-updatable': { kind: 'refused', rcode: 'REFUSED', detail: /REFUSED/ },
    'nsupdate-not-served': { kind: 'notauth', rcode: 'NOTAUTH', detail: /update failed: NOTAUTH/ },
    'nsupdate-notzone': { kind: 'notzone', rcode: 'NOTZONE', detail: /NOTZONE/ },
    'nsupdate-prereq-nxrrset': { kind: 'prereq', rcode: 'NXRRSET', detail: /NXRRSET/ },
    'nsupdate-prereq-yxrrset': { kind: 'prereq', rcode: 'YXRRSET', detail: /YXRRSET/ },
    'nsupdate-not-listening': { kind: 'unreachable', detail: /Communication with 127.0.0.1#\d+ failed: operation canceled/ },
    'nsupdate-timeout': { kind: 'timeout', detail: /failed: timed out/ },
    'nsupdate-no-address': { kind: 'no-address', detail: /couldn't get address for 'no..such.invalid'/ },
    'nsupdate-garbage-key-file': { kind: 'key-file', detail: /could not read key from .*garbage/ },
    'nsupdate-bad-base64-key': { kind: 'key-file', detail: /could not create key from/ },
    'nsupdate-missing-key-file': { kind: 'key-file', detail: /file not found/ },
  };

  for (const name of fixtureNames.filter((n) => n.startsWith('nsupdate-'))) {
    it(name, () => {
      const failure = nsupdateFailure(fixture(name));
      const want = expected[name];
      if (!want) {
        expect(failure, `${name} should succeed`).toBeNull();
        return;
      }
      expect(failure).toMatchObject({ kind: want.kind, ...(want.rcode ? { rcode: want.rcode } : {}) });
      expect(failure!.detail).toMatch(want.detail);
    });
  }
});

import { describe, expect, it } from 'vitest';
import type { ZoneModel } from '../../src/dns/records.js';
import { canonicalName, canonicalRdata, desiredRrsets, normalizeIPv6, parseTxtStrings, rdataKey, sameRdata, txtRdata, txtText } from '../../src/dns/rrset.js';

const model: ZoneModel = {
  domain: 'Example.COM',
  ttl: 3600,
  notes: [],
  records: [
    { name: '@', type: 'SOA', data: 'ns1.example-dns.net. hostmaster.example.com. 1 3600 900 1209600 300' },
    { name: '@', type: 'NS', data: 'NS2.example-dns.net.' },
    { name: '@', type: 'NS', data: 'ns1.example-dns.net.' },
    { name: '@', type: 'MX', data: '10 Mail.Example.com.' },
    { name: 'Mail', type: 'A', data: '203.0.113.10' },
    { name: 'mail', type: 'AAAA', data: '2001:DB8:0:0:0:0:0:10' },
    { name: '@', type: 'TXT', data: ['v=spf1 ip4:203.0.113.10 -all'], comment: 'SPF' },
    { name: 'mail._domainkey', type: 'TXT', data: ['v=DKIM1; k=rsa; p=' + 'A'.repeat(237), 'B'.repeat(100)] },
    { name: 'imap', type: 'CNAME', data: 'mail.example.com.' },
    { name: 'pop', type: 'CNAME', data: 'mail' },
    { name: '_submission._tcp', type: 'SRV', data: '0 1 587 mail.example.com.' },
    { name: '_pop3s._tcp', type: 'SRV', data: '0 0 0 .' },
  ],
};

describe('canonical forms', () => {
  it('makes names absolute, lower-case, with the trailing dot', () => {
    expect(canonicalName('@', 'example.com')).toBe('example.com.');
    expect(canonicalName('Mail', 'Example.com.')).toBe('mail.example.com.');
    expect(canonicalName('MAIL.Example.com.')).toBe('mail.example.com.');
    expect(canonicalName('.')).toBe('.');
  });

  it('writes AAAA in the RFC 5952 form', () => {
    expect(normalizeIPv6('2001:0DB8:0000:0000:0000:0000:0000:0010')).toBe('2001:db8::10');
    expect(normalizeIPv6('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1');
    expect(normalizeIPv6('2001:db8:0:1:1:1:1:1')).toBe('2001:db8:0:1:1:1:1:1');
    expect(normalizeIPv6('::')).toBe('::');
    expect(normalizeIPv6('::1')).toBe('::1');
    expect(normalizeIPv6('fe80::')).toBe('fe80::');
    expect(normalizeIPv6('::ffff:192.0.2.1')).toBe(normalizeIPv6('0:0:0:0:0:ffff:c000:0201'));
  });

  it('reads TXT presentation with every escape and writes one canonical escaping', () => {
    const raw = String.raw`"say \"hi\"" "back\\slash" "tab\009here" "semi;colon" "caf\195\169" bare`;
    const strings = parseTxtStrings(raw).map((b) => b.toString('utf8'));
    expect(strings).toEqual(['say "hi"', 'back\\slash', 'tab\there', 'semi;colon', 'café', 'bare']);
    expect(canonicalRdata('TXT', raw)).toBe(String.raw`"say \"hi\"" "back\\slash" "tab\009here" "semi;colon" "caf\195\169" "bare"`);
    expect(txtText(raw)).toBe('say "hi"back\\slashtab\theresemi;coloncafébare');
  });

  it('splits TXT into strings of at most 255 bytes without cutting a character', () => {
    const value = 'x'.repeat(254) + 'é' + 'y'.repeat(300);
    const strings = parseTxtStrings(txtRdata(value));
    for (const s of strings) expect(s.length).toBeLessThanOrEqual(255);
    expect(strings[0]!.length).toBe(254);
    expect(Buffer.concat(strings).toString('utf8')).toBe(value);
    expect(txtRdata('')).toBe('""');
  });

  it('compares TXT by the concatenation of its strings', () => {
    expect(rdataKey('TXT', '"ab" "c"')).toBe(rdataKey('TXT', '"abc"'));
    expect(rdataKey('TXT', '"ab" "c"')).not.toBe(rdataKey('TXT', '"ab c"'));
    const a = { name: 'x.', type: 'TXT', ttl: 1, rdata: ['"ab" "c"', '"d"'] };
    expect(sameRdata(a, { ...a, rdata: ['"d"', '"a" "bc"'] })).toBe(true);
  });

  it('canonicalises names inside MX, SRV, CNAME and SOA rdata', () => {
    expect(canonicalRdata('MX', '10  Mail.Example.COM.')).toBe('10 mail.example.com.');
    expect(canonicalRdata('SRV', '0 1 587 MAIL.example.com.')).toBe('0 1 587 mail.example.com.');
    expect(canonicalRdata('CNAME', 'mail', 'example.com')).toBe('mail.example.com.');
    expect(canonicalRdata('SOA', 'NS1.x. Host.x. 5 1 2 3 4')).toBe('ns1.x. host.x. 5 1 2 3 4');
  });
});

describe('desiredRrsets', () => {
  const sets = desiredRrsets(model);
  const find = (name: string, type: string) => sets.find((s) => s.name === name && s.type === type);

  it('groups the records of the model into sets, in model order, without the SOA', () => {
    expect(sets.map((s) => `${s.name} ${s.type}`)).toEqual([
      'example.com. NS',
      'example.com. MX',
      'mail.example.com. A',
      'mail.example.com. AAAA',
      'example.com. TXT',
      'mail._domainkey.example.com. TXT',
      'imap.example.com. CNAME',
      'pop.example.com. CNAME',
      '_submission._tcp.example.com. SRV',
      '_pop3s._tcp.example.com. SRV',
    ]);
    expect(sets.every((s) => s.ttl === 3600)).toBe(true);
  });

  it('writes every rdata in canonical form, sorted', () => {
    expect(find('example.com.', 'NS')!.rdata).toEqual(['ns1.example-dns.net.', 'ns2.example-dns.net.']);
    expect(find('example.com.', 'MX')!.rdata).toEqual(['10 mail.example.com.']);
    expect(find('mail.example.com.', 'AAAA')!.rdata).toEqual(['2001:db8::10']);
    expect(find('pop.example.com.', 'CNAME')!.rdata).toEqual(['mail.example.com.']);
    expect(find('_pop3s._tcp.example.com.', 'SRV')!.rdata).toEqual(['0 0 0 .']);
    expect(find('example.com.', 'TXT')!.rdata).toEqual(['"v=spf1 ip4:203.0.113.10 -all"']);
  });

  it('re-splits TXT by bytes whatever the split of the model', () => {
    const dkim = find('mail._domainkey.example.com.', 'TXT')!.rdata[0]!;
    expect(parseTxtStrings(dkim).map((b) => b.length)).toEqual([255, 100]);
    expect(txtText(dkim)).toBe('v=DKIM1; k=rsa; p=' + 'A'.repeat(237) + 'B'.repeat(100));
  });

  it('refuses a CNAME beside other data (a bug in the model)', () => {
    const bad: ZoneModel = { ...model, records: [...model.records, { name: 'imap', type: 'A', data: '192.0.2.1' }] };
    expect(() => desiredRrsets(bad)).toThrow(/CNAME at imap.example.com. beside other data/);
  });
});

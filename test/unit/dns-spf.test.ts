import { describe, expect, it } from 'vitest';
import { countSpfLookups, parseSpf } from '../../src/dns/spf.js';
import type { ResolveTxt } from '../../src/dns/spf.js';

function fakeResolver(zone: Record<string, string | string[][]>): ResolveTxt & { asked: string[] } {
  const asked: string[] = [];
  const fn = async (name: string) => {
    asked.push(name);
    const v = zone[name];
    if (v === undefined) throw Object.assign(new Error(`queryTxt ENOTFOUND ${name}`), { code: 'ENOTFOUND' });
    return typeof v === 'string' ? [[v]] : v;
  };
  return Object.assign(fn, { asked });
}

describe('parseSpf', () => {
  it('reads mechanisms with qualifiers and modifiers', () => {
    expect(parseSpf('v=spf1 ip4:203.0.113.10 ip6:2001:db8::10 a mx/24 ~include:_spf.example -all redirect=_spf.x exp=explain.x')).toEqual({
      mechanisms: [
        { qualifier: '+', name: 'ip4', value: '203.0.113.10' },
        { qualifier: '+', name: 'ip6', value: '2001:db8::10' },
        { qualifier: '+', name: 'a' },
        { qualifier: '+', name: 'mx', value: '/24' },
        { qualifier: '~', name: 'include', value: '_spf.example' },
        { qualifier: '-', name: 'all' },
      ],
      modifiers: { redirect: '_spf.x', exp: 'explain.x' },
      invalid: [],
    });
  });

  it('is null for what is not SPF, and lists unknown terms', () => {
    expect(parseSpf('v=spf10 a')).toBeNull();
    expect(parseSpf('google-site-verification=x')).toBeNull();
    expect(parseSpf('V=SPF1 -all')).not.toBeNull();
    expect(parseSpf('v=spf1 foo:bar -all')!.invalid).toEqual(['foo:bar']);
  });
});

describe('countSpfLookups (RFC 7208 §4.6.4)', () => {
  it('counts include, a, mx, ptr, exists and redirect, through includes', async () => {
    const resolve = fakeResolver({
      'example.com': [['v=spf1 ip4:203.0.113.10 a mx include:_spf.crm.example ', '-all'], ['google-site-verification=x']],
      '_spf.crm.example': 'v=spf1 include:_a.crm.example exists:%{i}._spf.crm.example ptr ~all',
      '_a.crm.example': 'v=spf1 ip4:192.0.2.0/24 redirect=_b.crm.example',
      '_b.crm.example': 'v=spf1 a:mail.crm.example -all',
    });
    const r = await countSpfLookups('Example.com.', resolve);
    expect(r.lookups).toBe(8);
    expect(r.detail).toEqual([
      'example.com: a (1)',
      'example.com: mx (2)',
      'example.com: include:_spf.crm.example (3)',
      '_spf.crm.example: include:_a.crm.example (4)',
      '_a.crm.example: redirect=_b.crm.example (5)',
      '_b.crm.example: a:mail.crm.example (6)',
      '_spf.crm.example: exists:%{i}._spf.crm.example (7)',
      '_spf.crm.example: ptr (8)',
    ]);
    expect(r.problems).toEqual([]);
  });

  it('reports more than 10', async () => {
    const includes = Array.from({ length: 11 }, (_, i) => `include:s${i}.example`).join(' ');
    const zone: Record<string, string> = { 'example.com': `v=spf1 ${includes} -all` };
    for (let i = 0; i < 11; i++) zone[`s${i}.example`] = 'v=spf1 ip4:192.0.2.1 -all';
    const r = await countSpfLookups('example.com', fakeResolver(zone));
    expect(r.lookups).toBe(11);
    expect(r.problems).toEqual(['11 DNS lookups: more than the 10 RFC 7208 allows (receivers return permerror)']);
  });

  it('detects loops and stops at the cap', async () => {
    const loop = await countSpfLookups('a.example', fakeResolver({ 'a.example': 'v=spf1 include:b.example -all', 'b.example': 'v=spf1 include:a.example -all' }));
    expect(loop.lookups).toBe(2);
    expect(loop.problems).toContain('a.example → b.example → a.example: loop, not followed');
    const self = await countSpfLookups('a.example', fakeResolver({ 'a.example': 'v=spf1 redirect=a.example' }));
    expect(self.problems).toContain('a.example → a.example: loop, not followed');

    // A wide tree that is no loop: every level includes the next twice.
    const zone: Record<string, string> = {};
    for (let i = 0; i < 12; i++) zone[`l${i}.example`] = `v=spf1 include:l${i + 1}.example include:l${i + 1}.example -all`;
    zone['l12.example'] = 'v=spf1 -all';
    const wide = await countSpfLookups('l0.example', fakeResolver(zone));
    expect(wide.lookups).toBe(50);
    expect(wide.problems).toContain('stopped counting at 50 lookups');
  });

  it('ignores redirect when the record has all, and reports missing or double records', async () => {
    const r = await countSpfLookups('x.example', fakeResolver({ 'x.example': 'v=spf1 include:none.example -all redirect=y.example', 'none.example': 'hello' }));
    expect(r.lookups).toBe(1);
    expect(r.problems).toEqual(['none.example: no SPF record']);
    const two = await countSpfLookups('x.example', fakeResolver({ 'x.example': [['v=spf1 -all'], ['v=spf1 a -all']] }));
    expect(two.problems).toEqual(['x.example: 2 SPF records (receivers return permerror)']);
    const gone = await countSpfLookups('x.example', fakeResolver({}));
    expect(gone).toEqual({ lookups: 0, detail: [], problems: ['x.example: no TXT records (ENOTFOUND)'] });
  });

  it('does not follow macros', async () => {
    const resolve = fakeResolver({ 'x.example': 'v=spf1 include:%{d}.spf.example -all' });
    const r = await countSpfLookups('x.example', resolve);
    expect(r.lookups).toBe(1);
    expect(resolve.asked).toEqual(['x.example']);
  });
});

/** verify's DNS checks against a fake resolver that answers from plain data (the rendered zones). */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { zoneModel } from '../../src/dns/records.js';
import { reverseName } from '../../src/dns/records.js';
import type { Site } from '../../src/model/site.js';
import { loadSite } from '../../src/site/load.js';
import { readState } from '../../src/state/state.js';
import type { SiteState } from '../../src/state/state.js';
import { hostAddressChecks, ptrChecks, zoneChecks } from '../../src/verify/dns.js';
import type { DnsResolver, Run } from '../../src/verify/dns.js';

const golden = new URL('../golden/', import.meta.url).pathname;

type Answers = Map<string, string[][] | string[] | Array<Record<string, unknown>>>;

const notFound = (n: string) => Object.assign(new Error(`queryTxt ENOTFOUND ${n}`), { code: 'ENOTFOUND' });

/** A resolver answering from name+type → data, as node:dns/promises shapes it. */
function fake(answers: Answers): DnsResolver {
  const get = (type: string) => async (name: string) => {
    const v = answers.get(`${name.toLowerCase().replace(/\.$/, '')} ${type}`);
    if (!v) throw notFound(name);
    return v;
  };
  return {
    resolve4: get('A'),
    resolve6: get('AAAA'),
    resolveMx: get('MX'),
    resolveTxt: get('TXT'),
    resolveCname: get('CNAME'),
    resolveSrv: get('SRV'),
    resolveNs: get('NS'),
    reverse: get('PTR'),
  } as unknown as DnsResolver;
}

/** What a server loaded with the rendered zones (and the PTRs a provider set) answers. */
function published(site: Site, state: SiteState): Answers {
  const a: Answers = new Map();
  const add = (k: string, v: unknown) => a.set(k, [...((a.get(k) as unknown[]) ?? []), v] as string[]);
  for (const d of site.domains) {
    for (const r of zoneModel(site, d, state).records) {
      const name = r.name === '@' ? d.name : `${r.name}.${d.name}`;
      const data = Array.isArray(r.data) ? r.data : [r.data];
      const f = data.join(' ').split(' ');
      if (r.type === 'TXT') add(`${name} TXT`, data);
      else if (r.type === 'MX') add(`${name} MX`, { priority: Number(f[0]), exchange: f[1]!.replace(/\.$/, '') });
      else if (r.type === 'SRV') add(`${name} SRV`, { priority: Number(f[0]), weight: Number(f[1]), port: Number(f[2]), name: f[3] === '.' ? '' : f[3]!.replace(/\.$/, '') });
      else add(`${name} ${r.type}`, String(r.data).replace(/\.$/, ''));
    }
  }
  for (const h of site.hosts) for (const ip of [h.ipv4, ...(h.ipv6 ? [h.ipv6] : [])]) a.set(`${ip} PTR`, [h.hostname]);
  a.set('_spf.crm-provider.example TXT', [['v=spf1 ip4:198.51.100.0/24 -all']]);
  return a;
}

async function checks(site: Site, state: SiteState, r: DnsResolver) {
  const out: Array<{ host: string; name: string; status: string; detail: string }> = [];
  const run: Run = async (host, name, f) => {
    try {
      out.push({ host, name, ...(await f()) });
    } catch (e) {
      out.push({ host, name, status: 'failed', detail: (e as Error).message });
    }
  };
  await zoneChecks(site, state, r, run);
  for (const h of site.hosts) {
    await hostAddressChecks(h, r, run);
    await ptrChecks(h, r, run);
  }
  return out;
}

let site: Site;
let state: SiteState;
beforeAll(() => {
  process.env['MAILOPS_BOB_PASSWORD'] = 'x';
  site = loadSite(join(golden, 'contract', 'site.yaml')).site;
  state = readState(site.file);
});

describe('verify: DNS checks', () => {
  it('all pass on a zone as rendered, each record set by name, PTR forward-confirmed', async () => {
    const res = await checks(site, state, fake(published(site, state)));
    expect(res.filter((c) => c.status !== 'ok'), JSON.stringify(res, null, 1)).toEqual([]);
    const names = res.map((c) => c.name);
    for (const n of ['MX of example.com', 'SPF of example.com', 'DMARC of example.com', 'DKIM mail._domainkey.example.com', 'CNAME of imap.example.com', 'SRV of _submission._tcp.example.com', 'NS of example.com', 'A of mail.example.com', 'AAAA of mail.example.com', 'PTR of 203.0.113.10', 'PTR of 2001:db8::10']) {
      expect(names).toContain(n);
    }
    expect(res.find((c) => c.name === 'SPF of example.com')!.detail).toMatch(/\(1 of at most 10 DNS lookups\)/);
    expect(res.find((c) => c.name === 'PTR of 203.0.113.10')!.detail).toBe('203.0.113.10 → mail.example.com → 203.0.113.10 (forward-confirmed)');
  });

  it('flags a leftover MX that is not a host of the playbook', async () => {
    const a = published(site, state);
    a.set('example.com MX', [...(a.get('example.com MX') as unknown[]), { priority: 0, exchange: 'example.com' }] as string[]);
    const mx = (await checks(site, state, fake(a))).find((c) => c.name === 'MX of example.com')!;
    expect(mx.status).toBe('failed');
    expect(mx.detail).toMatch(/^MX 0 example\.com\. is not a host of the playbook/);
  });

  it('flags a missing PTR, one naming another host, and one not confirmed forward', async () => {
    const a = published(site, state);
    a.delete('203.0.113.10 PTR');
    a.set('2001:db8::10 PTR', ['static.10.203-0-113.provider.example']);
    const res = await checks(site, state, fake(a));
    expect(res.find((c) => c.name === 'PTR of 203.0.113.10')).toMatchObject({ status: 'failed', detail: expect.stringMatching(/has no PTR record/) });
    expect(res.find((c) => c.name === 'PTR of 2001:db8::10')).toMatchObject({ status: 'failed', detail: expect.stringMatching(/→ static\.10\.203-0-113\.provider\.example, not mail\.example\.com/) });
    const b = published(site, state);
    b.set('mail.example.com A', ['198.51.100.7']);
    const fwd = (await checks(site, state, fake(b))).find((c) => c.name === 'PTR of 203.0.113.10')!;
    expect(fwd).toMatchObject({ status: 'failed', detail: expect.stringMatching(/not forward-confirmed/) });
  });

  it('flags SPF over 10 DNS lookups, a second SPF record, a DKIM key that is not the host\'s, and a wrong DMARC', async () => {
    const a = published(site, state);
    a.set('_spf.crm-provider.example TXT', [['v=spf1 ' + Array.from({ length: 10 }, (_, i) => `include:s${i}.example`).join(' ') + ' -all']]);
    for (let i = 0; i < 10; i++) a.set(`s${i}.example TXT`, [['v=spf1 -all']]);
    a.set('mail._domainkey.example.com TXT', [['v=DKIM1; k=rsa; p=AAAAother']]);
    a.set('_dmarc.example.com TXT', [['v=DMARC1; p=none']]);
    const res = await checks(site, state, fake(a));
    expect(res.find((c) => c.name === 'SPF of example.com')).toMatchObject({ status: 'failed', detail: expect.stringMatching(/SPF needs 11 DNS lookups/) });
    expect(res.find((c) => c.name === 'DKIM mail._domainkey.example.com')).toMatchObject({ status: 'failed' });
    expect(res.find((c) => c.name === 'DMARC of example.com')).toMatchObject({ status: 'failed', detail: expect.stringMatching(/is v=DMARC1; p=none; the playbook publishes v=DMARC1; p=quarantine/) });
    const b = published(site, state);
    b.set('example.com TXT', [...(b.get('example.com TXT') as string[][]), ['v=spf1 -all'], ['google-site-verification=abc']]);
    expect((await checks(site, state, fake(b))).find((c) => c.name === 'SPF of example.com')).toMatchObject({ status: 'failed', detail: expect.stringMatching(/has 2 v=spf1 records/) });
  });

  it('a backup MX has no DKIM key and needs none; a mailbox host without one is flagged', async () => {
    const { ipv6: _, ...first } = site.hosts[0]!;
    const withBackup: Site = { ...site, hosts: [...site.hosts, { ...first, name: 'mx2', hostname: 'mx2.example.com', ipv4: '203.0.113.11', role: 'backup-mx' }] };
    const res = await checks(withBackup, state, fake(published(withBackup, state)));
    expect(res.filter((c) => c.status !== 'ok'), JSON.stringify(res, null, 1)).toEqual([]);
    expect(res.find((c) => c.name === 'MX of example.com')!.detail).toBe('10 mail.example.com. | 20 mx2.example.com.');
    const twoMailbox: Site = { ...withBackup, hosts: withBackup.hosts.map((h) => ({ ...h, role: 'mailbox' as const })) };
    expect((await checks(twoMailbox, state, fake(published(twoMailbox, state)))).filter((c) => c.status !== 'ok').map((c) => `${c.host}: ${c.name}`)).toEqual(['mx2: DKIM signing key for example.com']);
  });

  it('a resolver that does not answer fails the checks, it does not skip them', async () => {
    const dead = fake(new Map());
    (dead as unknown as Record<string, unknown>)['resolveMx'] = async () => {
      throw Object.assign(new Error('queryMx ECONNREFUSED example.com'), { code: 'ECONNREFUSED' });
    };
    const mx = (await checks(site, state, dead)).find((c) => c.name === 'MX of example.com')!;
    expect(mx.status).toBe('failed');
    expect(mx.detail).toMatch(/ECONNREFUSED/);
  });
});
